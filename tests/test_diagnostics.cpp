// inspect/diagnostics.h: recorded at the right steps, and each figure as a direct computation gives it.
#include <catch2/catch.hpp>

#include <cmath>

#include "xgrad.h"

using namespace xgrad;
using Catch::Matchers::Contains;

namespace {

struct Toy : nn::Module {
    Toy(bool sparse)
    {
        emb = register_module("emb", std::make_shared<nn::Embedding>(6, 4, nn::EmbeddingOptions().sparse(sparse)));
        act = register_module("act", std::make_shared<nn::GELU>());
        head = register_module("head", std::make_shared<nn::Linear>(4, 6));
    }
    Tensor forward(const IdArray& ids) const { return head->forward(act->forward(emb->forward(ids) * 3.0f)); }
    std::shared_ptr<nn::Embedding> emb;
    std::shared_ptr<nn::GELU> act;
    std::shared_ptr<nn::Linear> head;
};

double unbiased_std(const Array& a)   // unbiased, as torch.std
{
    double mean = 0.0, sq = 0.0;
    for (float v : a) mean += v;
    mean /= double(a.size());
    for (float v : a) sq += (v - mean) * (v - mean);
    return std::sqrt(sq / double(a.size() - 1));
}

double norm(const Array& a)
{
    double s = 0.0;
    for (float v : a) s += double(v) * v;
    return std::sqrt(s);
}

}  // namespace

TEST_CASE("diagnostics are recorded at the right steps and match a direct computation on one step", "[diagnostics]")
{
    manual_seed(7);
    Toy model(false);
    optim::Adam adam(model.parameters(), optim::AdamOptions().lr(0.05));
    inspect::Diagnostics diag(model, 2, 10);
    const IdArray ids = {{0, 1, 1, 3}};   // rows 2, 4 and 5 untouched
    Array gelu_input, gelu_output, w_before, w_grad, emb_before, emb_after;
    for (std::int64_t step = 0; step < 5; ++step) {
        diag.begin_step(step);
        adam.zero_grad();
        Tensor loss = nn::functional::cross_entropy(model.forward(ids), IdArray{{1, 3, 0, 2}});
        loss.backward();
        diag.after_backward();
        if (step == 2) {   // the direct computation of step 2's figures
            NoGradGuard no_grad;
            gelu_input = (model.emb->forward(ids) * 3.0f).to_array();
            gelu_output = gelu(Tensor(gelu_input)).to_array();
            w_before = model.head->weight.to_array();
            w_grad = model.head->weight.grad().to_array();
            emb_before = model.emb->weight.to_array();
        }
        adam.step();
        if (step == 2) emb_after = model.emb->weight.to_array();
        diag.after_update();
    }
    REQUIRE(diag.params().size() == 3 * 3);   // steps 0, 2, 4 x (emb.weight, head.weight, head.bias)
    CHECK(diag.params()[0].step == 0);
    CHECK(diag.params()[3].step == 2);
    CHECK(diag.params()[8].step == 4);

    const inspect::ParamStat& w = diag.params()[4];
    REQUIRE(w.name == "head.weight");
    CHECK(w.grad_norm == Approx(norm(w_grad)).epsilon(1e-6));

    // the GELU layer's output at step 2
    const inspect::LayerStat* act = nullptr;
    for (const auto& l : diag.layers()) {
        if (l.step == 2 && l.name == "act") act = &l;
    }
    REQUIRE(act != nullptr);
    CHECK(act->kind == "GELU(approximate='none')");
    CHECK(act->std == Approx(unbiased_std(gelu_output)).epsilon(1e-6));
    std::size_t flat = 0;
    for (float x : gelu_input) {
        const double slope = 0.5 * (1 + std::erf(x / std::sqrt(2.0))) + x * std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI);
        flat += std::abs(slope) < 0.01;
    }
    CHECK(act->saturated == Approx(double(flat) / double(gelu_input.size())));
    std::size_t counted = 0;
    for (auto c : act->histogram) counted += c;
    CHECK(counted == gelu_output.size());
    CHECK(act->lo == Approx(xt::amin(gelu_output)()));
    CHECK(act->hi == Approx(xt::amax(gelu_output)()));
    CHECK(diag.layers().size() == 3 * 3);   // emb, act, head at three steps; none from other forwards
    CHECK(std::isnan(diag.layers()[0].saturated));   // only GELU's is measured

    // the embedding at step 2: 3 of 6 rows touched; the others never were, so even Adam has no momentum for them
    const inspect::EmbeddingStat& e = diag.embeddings()[1];
    CHECK(e.step == 2);
    CHECK(e.touched_fraction == Approx(0.5));
    CHECK(e.untouched_drift == 0.0);
    double touched = 0.0;
    for (std::size_t row : {0, 1, 3}) {
        double sq = 0.0;
        for (std::size_t c = 0; c < 4; ++c) sq += std::pow(double(emb_after(row, c) - emb_before(row, c)), 2);
        touched += std::sqrt(sq) / 3.0;
    }
    CHECK(e.touched_drift == Approx(touched).epsilon(1e-6));
    CHECK_THAT(diag.params_csv(), Contains("step,parameter,grad_norm,update_to_data_log10\n0,emb.weight,"));
    CHECK_THAT(diag.embeddings_csv(), Contains("2,emb.weight,0.5,"));
    const auto back = inspect::Diagnostics::read_embeddings_csv(diag.embeddings_csv(), "here");   // the CSV reads back
    REQUIRE(back.size() == diag.embeddings().size());
    CHECK(back[1].step == 2);
    CHECK(back[1].touched_drift == Approx(e.touched_drift).epsilon(1e-5));
    CHECK_THROWS_WITH(inspect::Diagnostics::read_embeddings_csv("step,table\n", "x.csv"), Contains("'x.csv' does not start"));
    CHECK_THROWS_WITH(inspect::Diagnostics::read_embeddings_csv(
                          "step,table,touched_fraction,touched_row_drift,untouched_row_drift\n2,emb,0.5,oops,0\n", "x.csv"),
                      Contains("line 2 of 'x.csv'") && Contains("'2,emb,0.5,oops,0'"));
    CHECK_THAT(diag.html(diag.embeddings(), "dense", "sparse"), Contains("sparse: emb.weight untouched rows") &&
                                                                   Contains("dense: emb.weight touched rows"));
    CHECK_THAT(diag.html(), Contains("Update-to-data ratio") && Contains("<svg") && Contains("emb.weight untouched rows"));
}

TEST_CASE("the update-to-data ratio is log10(std(new - old) / std(old)) of the step it was recorded at", "[diagnostics]")
{
    manual_seed(2);
    Toy model(false);
    optim::SGD sgd(model.parameters(), optim::SGDOptions(0.1));
    inspect::Diagnostics diag(model, 1);
    diag.begin_step(0);
    sum(model.forward(IdArray{{1, 2}})).backward();
    diag.after_backward();
    const Array before = model.head->weight.to_array();
    sgd.step();
    diag.after_update();
    const double expected = std::log10(unbiased_std(model.head->weight.to_array() - before) / unbiased_std(before));
    CHECK(diag.params()[1].name == "head.weight");
    CHECK(diag.params()[1].update_ratio_log10 == Approx(expected).epsilon(1e-9));
}

TEST_CASE("with sparse gradients the untouched embedding rows do not move at all (PyTorch issue 18404)", "[diagnostics]")
{
    for (bool sparse : {false, true}) {
        manual_seed(7);
        Toy model(sparse);
        optim::Adam adam(model.parameters(), optim::AdamOptions().lr(0.05));
        inspect::Diagnostics diag(model, 1);
        for (std::int64_t step = 0; step < 3; ++step) {
            diag.begin_step(step);
            adam.zero_grad();
            const IdArray ids = step == 0 ? IdArray{{2, 4, 5}} : IdArray{{0, 1}};   // 2, 4, 5 then untouched
            sum(model.forward(ids)).backward();
            diag.after_backward();
            adam.step();
            diag.after_update();
        }
        const inspect::EmbeddingStat& last = diag.embeddings().back();
        INFO("sparse " << sparse);
        CHECK(last.touched_fraction == Approx(2.0 / 6.0));
        if (sparse) {
            CHECK(last.untouched_drift == 0.0);
        } else {
            CHECK(last.untouched_drift > 1e-3);   // Adam's momentum from step 0 still moves rows 2, 4 and 5
        }
    }
}

TEST_CASE("diagnostics that record every 0 steps record nothing and say so", "[diagnostics]")
{
    Toy model(false);
    inspect::Diagnostics diag(model, 0);
    diag.begin_step(0);
    sum(model.forward(IdArray{{1, 2}})).backward();
    diag.after_backward();
    diag.after_update();
    CHECK(diag.params().empty());
    CHECK(diag.layers().empty());
    CHECK_THAT(diag.html(), Contains("No step was recorded"));
    CHECK_THROWS_WITH(inspect::Diagnostics(model, -1), Contains("every must be 0 (off) or more, got -1"));
}
