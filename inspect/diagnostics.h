// The training diagnostics of the makemore lectures, recorded every N steps with hooks: per parameter
// the gradient norm and the update-to-data ratio, per layer the output's statistics and histogram, per
// embedding the rows a step touched and how far the untouched ones moved anyway.
//
//     inspect::Diagnostics diag(model, /*every=*/100);
//     for (step ...) {
//         diag.begin_step(step);          // on a recording step, arms the layers' forward hooks
//         loss = ...; loss.backward(); clip...;
//         diag.after_backward();          // gradient norms; the weights as they are before the update
//         optimizer.step();
//         diag.after_update();            // update-to-data ratios and embedding drift
//     }
//     diag.params_csv(); diag.layers_csv(); diag.embeddings_csv(); diag.html();
//
// Not constructed, it costs nothing; constructed, a step that does not record pays one test per layer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nn/module.h"

namespace xgrad::inspect {

struct ParamStat {
    std::int64_t step;
    std::string name;
    double grad_norm;            // L2 norm of the gradient the optimizer saw (after clipping)
    double update_ratio_log10;   // log10(std(update) / std(data)), the update being new - old weights
};

struct LayerStat {
    std::int64_t step;
    std::string name, kind;      // "fc1", "Linear(64, 256)"
    double mean, std;
    double saturated;            // GELU: fraction of inputs where |slope| < 0.01 (x below about -3); else NaN
    double lo, hi;               // the histogram's range: the output's min and max
    std::vector<std::size_t> histogram;
};

struct EmbeddingStat {
    std::int64_t step;
    std::string name;
    double touched_fraction;     // rows the step's ids used, of all rows
    double touched_drift;        // mean L2 norm of the update of a touched row
    double untouched_drift;      // the same for the rows the step did not use: 0 only with a sparse update
};

class Diagnostics {
public:
    Diagnostics(nn::Module& model, std::int64_t every, std::size_t histogram_bins = 40);
    ~Diagnostics();
    Diagnostics(const Diagnostics&) = delete;
    Diagnostics& operator=(const Diagnostics&) = delete;

    bool records(std::int64_t step) const { return every_ > 0 && step % every_ == 0; }
    void begin_step(std::int64_t step);
    void after_backward();
    void after_update();

    const std::vector<ParamStat>& params() const { return params_; }
    const std::vector<LayerStat>& layers() const { return *layers_; }
    const std::vector<EmbeddingStat>& embeddings() const { return embeddings_; }

    std::string params_csv() const;
    std::string layers_csv() const;       // with the histogram's counts as one ';'-separated column
    std::string embeddings_csv() const;
    // A self-contained HTML section (inline SVG): the update-to-data ratios over training with the
    // rule-of-thumb band near -3, gradient norms, layer histograms at a few steps, embedding drift.
    std::string html() const;

private:
    struct Watched {
        std::string name;
        Tensor param;
        Array before;                     // the weights before the update, on a recording step
    };
    struct Table {
        std::string name;
        const nn::Module* module;         // an nn::Embedding
        Tensor weight;
    };
    std::int64_t every_, step_ = -1;
    bool recording_ = false;
    std::vector<Watched> watched_;
    std::vector<Table> tables_;
    std::vector<HookHandle> hooks_;
    std::shared_ptr<bool> armed_;        // read by the forward hooks
    std::shared_ptr<std::int64_t> hook_step_;
    std::shared_ptr<std::vector<LayerStat>> layers_;
    std::vector<ParamStat> params_;
    std::vector<EmbeddingStat> embeddings_;
};

}  // namespace xgrad::inspect
