// inspect::Diagnostics: what is recorded, when, and how (the plots are in inspect/diagnostics_html.cpp).
#include "inspect/diagnostics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "nn/attention.h"
#include "nn/embedding.h"

namespace xgrad::inspect {

namespace {

struct Moments {
    double mean = 0.0, std = 0.0;
};

Moments moments(const float* v, std::size_t n)
{
    if (n == 0) return {};
    double sum = 0.0;
    for (std::size_t i = 0; i < n; ++i) sum += v[i];
    const double mean = sum / double(n);
    double sq = 0.0;
    for (std::size_t i = 0; i < n; ++i) sq += (v[i] - mean) * (v[i] - mean);
    return {mean, n > 1 ? std::sqrt(sq / double(n - 1)) : 0.0};   // torch.std's unbiased estimate
}

// the slope of GELU's exact form, Phi(x) + x phi(x)
double gelu_slope(double x)
{
    constexpr double inv_sqrt2 = 0.70710678118654752, inv_sqrt_2pi = 0.39894228040143268;
    return 0.5 * (1.0 + std::erf(x * inv_sqrt2)) + x * inv_sqrt_2pi * std::exp(-0.5 * x * x);
}

void walk_modules(nn::Module& m, const std::string& prefix, std::vector<std::pair<std::string, nn::Module*>>& out)
{
    for (const auto& [name, child] : m.children()) {
        const std::string path = prefix.empty() ? name : prefix + "." + name;
        out.emplace_back(path, child.get());
        walk_modules(*child, path, out);
    }
}

std::string csv_field(const std::string& s)
{
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string out = "\"";
    for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

std::string num(double v)
{
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.6g", v);
    return buffer;
}

}  // namespace

Diagnostics::Diagnostics(nn::Module& model, std::int64_t every, std::size_t histogram_bins)
    : every_(every), armed_(std::make_shared<bool>(false)), hook_step_(std::make_shared<std::int64_t>(0)),
      layers_(std::make_shared<std::vector<LayerStat>>())
{
    XGRAD_CHECK(every >= 0, "inspect::Diagnostics: every must be 0 (off) or more, got ", every);
    XGRAD_CHECK(histogram_bins >= 1, "inspect::Diagnostics: histogram_bins must be at least 1");
    for (const auto& [name, p] : model.named_parameters()) {
        if (p.requires_grad()) watched_.push_back({name, p, {}});
    }
    std::vector<std::pair<std::string, nn::Module*>> modules;
    walk_modules(model, "", modules);
    for (auto& [path, module] : modules) {
        if (const auto* table = dynamic_cast<const nn::Embedding*>(module)) {
            tables_.push_back({path + ".weight", module, table->weight});
        }
        const bool is_gelu = dynamic_cast<const nn::GELU*>(module) != nullptr;
        hooks_.push_back(module->register_forward_hook(
            [armed = armed_, step = hook_step_, layers = layers_, name = path, is_gelu, histogram_bins](
                const nn::Module& m, const std::vector<Tensor>& inputs, const Tensor& output) {
                if (!*armed) return;
                const Values values = output.values();
                const float* v = values.data();
                const std::size_t n = output.numel();
                LayerStat stat{*step, name, m.describe(), 0.0, 0.0, std::nan(""), 0.0, 0.0, std::vector<std::size_t>(histogram_bins)};
                const Moments mo = moments(v, n);
                stat.mean = mo.mean, stat.std = mo.std;
                if (n > 0) {
                    const auto [lo, hi] = std::minmax_element(v, v + n);
                    stat.lo = *lo, stat.hi = *hi;
                }
                const double width = (stat.hi - stat.lo) / double(histogram_bins);
                for (std::size_t i = 0; i < n; ++i) {
                    const double k = width > 0 ? (v[i] - stat.lo) / width : 0.0;
                    ++stat.histogram[std::min(histogram_bins - 1, static_cast<std::size_t>(k))];
                }
                if (is_gelu && !inputs.empty()) {
                    std::size_t flat = 0;
                    for (float x : inputs[0].values()) flat += std::abs(gelu_slope(x)) < 0.01;
                    stat.saturated = double(flat) / double(std::max<std::size_t>(1, inputs[0].numel()));
                }
                layers->push_back(std::move(stat));
            }));
    }
}

Diagnostics::~Diagnostics()
{
    for (auto& h : hooks_) h.remove();
}

void Diagnostics::begin_step(std::int64_t step)
{
    step_ = step;
    recording_ = records(step);
    *armed_ = recording_;
    *hook_step_ = step;
}

void Diagnostics::after_backward()
{
    *armed_ = false;   // evaluations and samples after the step are not training activity
    if (!recording_) return;
    for (Watched& w : watched_) {
        double norm = 0.0;
        if (Tensor g = w.param.grad(); g.defined()) {
            for (float v : g.values()) norm += double(v) * v;
        } else if (const RowSparse* s = w.param.sparse_grad()) {
            for (float v : s->values) norm += double(v) * v;
        }
        w.before = w.param.to_array();   // a copy
        params_.push_back({step_, w.name, std::sqrt(norm), std::nan("")});
    }
}

void Diagnostics::after_update()
{
    if (!recording_) return;
    recording_ = false;
    std::size_t k = params_.size() - watched_.size();
    for (Watched& w : watched_) {
        const Array update = w.param.to_array() - w.before;
        const double update_std = moments(update.data(), update.size()).std;
        const double data_std = moments(w.before.data(), w.before.size()).std;   // as makemore: the data updated
        params_[k++].update_ratio_log10 = update_std > 0 && data_std > 0 ? std::log10(update_std / data_std)
                                                                         : -std::numeric_limits<double>::infinity();
        for (const Table& t : tables_) {
            if (!t.weight.is_same(w.param)) continue;
            const auto& table = static_cast<const nn::Embedding&>(*t.module);
            const std::size_t V = table.num_embeddings(), C = table.embedding_dim();
            std::vector<bool> touched(V, false);
            for (std::int64_t id : table.last_ids()) touched[static_cast<std::size_t>(id)] = true;
            double drift[2] = {0.0, 0.0};
            std::size_t count[2] = {0, 0};
            for (std::size_t r = 0; r < V; ++r) {
                double sq = 0.0;
                for (std::size_t c = 0; c < C; ++c) sq += double(update(r, c)) * update(r, c);
                drift[touched[r]] += std::sqrt(sq);
                ++count[touched[r]];
            }
            embeddings_.push_back({step_, t.name, double(count[1]) / double(V), count[1] ? drift[1] / double(count[1]) : 0.0,
                                   count[0] ? drift[0] / double(count[0]) : 0.0});
        }
        w.before = Array();
    }
}

std::string Diagnostics::params_csv() const
{
    std::ostringstream out;
    out << "step,parameter,grad_norm,update_to_data_log10\n";
    for (const auto& p : params_) out << p.step << "," << csv_field(p.name) << "," << num(p.grad_norm) << "," << num(p.update_ratio_log10) << "\n";
    return out.str();
}

std::string Diagnostics::layers_csv() const
{
    std::ostringstream out;
    out << "step,layer,module,mean,std,saturated,histogram_min,histogram_max,histogram_counts\n";
    for (const auto& l : *layers_) {
        out << l.step << "," << csv_field(l.name) << "," << csv_field(l.kind) << "," << num(l.mean) << "," << num(l.std) << ","
            << (std::isnan(l.saturated) ? "" : num(l.saturated)) << "," << num(l.lo) << "," << num(l.hi) << ",";
        for (std::size_t i = 0; i < l.histogram.size(); ++i) out << (i ? ";" : "") << l.histogram[i];
        out << "\n";
    }
    return out.str();
}

std::string Diagnostics::embeddings_csv() const
{
    std::ostringstream out;
    out << "step,table,touched_fraction,touched_row_drift,untouched_row_drift\n";
    for (const auto& e : embeddings_) {
        out << e.step << "," << csv_field(e.name) << "," << num(e.touched_fraction) << "," << num(e.touched_drift) << ","
            << num(e.untouched_drift) << "\n";
    }
    return out.str();
}

std::vector<EmbeddingStat> Diagnostics::read_embeddings_csv(const std::string& csv, const std::string& source)
{
    std::vector<EmbeddingStat> out;
    std::istringstream in(csv);
    std::string line;
    XGRAD_CHECK(std::getline(in, line) && line == "step,table,touched_fraction,touched_row_drift,untouched_row_drift",
                "read_embeddings_csv: '", source, "' does not start with diagnostics_embeddings.csv's header");
    for (int number = 2; std::getline(in, line); ++number) {
        std::istringstream row(line);
        std::string field[5];
        for (auto& f : field) std::getline(row, f, ',');
        char* end[4] = {};
        EmbeddingStat e{std::strtoll(field[0].c_str(), &end[0], 10), field[1], std::strtod(field[2].c_str(), &end[1]),
                        std::strtod(field[3].c_str(), &end[2]), std::strtod(field[4].c_str(), &end[3])};
        bool ok = !field[4].empty() && !field[1].empty();
        for (int k = 0; k < 4; ++k) ok = ok && end[k] != nullptr && *end[k] == '\0' && end[k] != field[k == 0 ? 0 : k + 1].c_str();
        XGRAD_CHECK(ok, "read_embeddings_csv: line ", number, " of '", source, "' is not step,table,fraction,drift,drift: '", line, "'");
        out.push_back(std::move(e));
    }
    return out;
}

}  // namespace xgrad::inspect
