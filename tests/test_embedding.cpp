// nn::Embedding: PyTorch's semantics against reference values, the scatter-add backward, its
// determinism across threads, sparse gradients, errors, and the seed's tok + pos embedding.
#include <catch2/catch.hpp>

#include <cstring>

#include <xtensor/xview.hpp>

#include "close.h"
#include "gradcheck.h"
#include "reference.h"

using namespace xgrad;
using namespace xgrad::testing;
using Catch::Matchers::Contains;

namespace {

nn::EmbeddingOptions options_from(const nlohmann::json& o)
{
    nn::EmbeddingOptions options;
    if (o.contains("padding_idx")) options.padding_idx(o["padding_idx"].get<std::int64_t>());
    if (o.contains("max_norm")) options.max_norm(o["max_norm"].get<float>());
    if (o.contains("norm_type")) options.norm_type(o["norm_type"].get<float>());
    if (o.contains("scale_grad_by_freq")) options.scale_grad_by_freq(o["scale_grad_by_freq"].get<bool>());
    return options;
}

}  // namespace

TEST_CASE("embedding forward, backward and max_norm renormalisation match PyTorch")
{
    for (const char* name : {"embedding_plain", "embedding_padding_idx", "embedding_negative_padding_idx",
                             "embedding_scale_grad_by_freq", "embedding_max_norm", "embedding_max_norm_l1"}) {
        INFO(name);
        const auto& c = reference("nn_reference.json")[name];
        nn::Embedding emb(6, 3, options_from(c["options"]));
        assign(emb.weight, ref_array(c["weight"], {6, 3}));
        Shape ids_shape = c["ids_shape"].get<Shape>();
        IdArray ids = ref_ids(c["ids"], ids_shape);
        Shape out_shape = ids_shape;
        out_shape.push_back(3);

        Tensor out = emb.forward(ids);
        CHECK(out.shape() == out_shape);
        check_close(out.to_array(), ref_array(c["out"], out_shape));
        out.backward(Tensor(ref_array(c["upstream"], out_shape)));
        check_close(emb.weight.to_array(), ref_array(c["weight_after"], {6, 3}));
        check_close(emb.weight.grad().to_array(), ref_array(c["grad_weight"], {6, 3}));
    }
}

TEST_CASE("embedding backward sums gradients of repeated ids")
{
    nn::Embedding emb(4, 2);
    IdArray ids = {1, 0, 2, 2, 3};   // "hello": l appears twice
    Tensor upstream = reshape(arange(10.0f), {5, 2});
    emb.forward(ids).backward(upstream);
    Array g = emb.weight.grad().to_array();
    CHECK(g(2, 0) == 4.0f + 6.0f);   // rows 2 and 3 of the upstream
    CHECK(g(2, 1) == 5.0f + 7.0f);
    CHECK(g(1, 0) == 0.0f);
    CHECK(g(0, 1) == 3.0f);
}

TEST_CASE("padding_idx zeroes its row at construction and passes it no gradient")
{
    nn::Embedding emb(5, 3, nn::EmbeddingOptions().padding_idx(-2));   // row 3
    const float padding_row_sum = xt::sum(xt::abs(xt::view(emb.weight.to_array(), 3, xt::all())))();
    CHECK(padding_row_sum == 0.0f);
    {
        NoGradGuard no_grad;
        emb.weight.select(0, 3).select(0, 0).fill_(7.0f);                          // the forward returns what the row holds
    }
    IdArray ids = {3, 1, 3};
    Tensor out = emb.forward(ids);
    CHECK(out.to_array()(0, 0) == 7.0f);
    out.backward(ones({3, 3}));
    CHECK(emb.weight.grad().to_array()(3, 0) == 0.0f);
    CHECK(emb.weight.grad().to_array()(1, 0) == 1.0f);
    CHECK_THROWS_WITH(nn::Embedding(5, 3, nn::EmbeddingOptions().padding_idx(5)),
                      Contains("padding_idx 5 must be within num_embeddings = 5"));
}

TEST_CASE("embedding gradients pass the finite-difference check")
{
    // padding_idx and scale_grad_by_freq change the gradient on purpose, as in PyTorch: the expected
    // gradient is the true (numeric) one with the padding row zeroed, or each row divided by its count.
    IdArray ids = {{1, 2, 2}, {0, 2, 4}};
    const std::vector<float> count = {1, 1, 3, 0, 1};
    struct Variant {
        const char* name;
        nn::EmbeddingOptions options;
    };
    for (const auto& [name, options] : std::vector<Variant>{
             {"repeated ids", {}},
             {"padding_idx", nn::EmbeddingOptions().padding_idx(2)},
             {"scale_grad_by_freq", nn::EmbeddingOptions().scale_grad_by_freq(true)},
         }) {
        INFO(name);
        nn::Embedding emb(5, 3, options);
        Gradients g = gradients([&](const std::vector<Tensor>& in) {
            emb.weight = in[0];                       // the module looks up the perturbed table
            return emb.forward(ids);
        }, {Tensor(Array(emb.weight.to_array() * 0.2f))});
        Array& expected = g.numeric[0];
        for (std::size_t v = 0; v < 5; ++v) {
            for (std::size_t c = 0; c < 3; ++c) {
                if (options.padding_idx_ && static_cast<std::int64_t>(v) == *options.padding_idx_) expected(v, c) = 0.0f;
                if (options.scale_grad_by_freq_ && count[v] > 0) expected(v, c) /= count[v];
            }
        }
        auto result = compare(g);
        INFO(result.report);
        CHECK(result.ok);
    }
}

TEST_CASE("max_norm renormalises the rows a forward uses, outside autograd: the gradient is the plain lookup's")
{
    // finite differences cannot check this case (each nudge of a row at max_norm renormalises it
    // again), so the gradient is checked against its definition: the renormalisation is an in-place
    // edit of the table, as torch.embedding_renorm_, and the lookup's gradient is the scatter-add
    IdArray ids = {{1, 2, 2}, {0, 2, 4}};
    manual_seed(5);
    nn::Embedding emb(5, 3, nn::EmbeddingOptions().max_norm(1.0f));
    assign(emb.weight, emb.weight.to_array() * 3.0f + 0.5f);
    const Array before = emb.weight.to_array();
    auto row_norm = [](const Array& w, std::size_t v) {
        return std::sqrt(w(v, 0) * w(v, 0) + w(v, 1) * w(v, 1) + w(v, 2) * w(v, 2));
    };
    for (std::size_t v = 0; v < 5; ++v) REQUIRE(row_norm(before, v) > 1.2f);   // every row starts outside
    const Tensor up = randn({2, 3, 3});
    emb.forward(ids).backward(up);
    for (std::size_t v : {0, 1, 2, 4}) CHECK(row_norm(emb.weight.to_array(), v) == Approx(1.0f).epsilon(1e-6));
    for (std::size_t c = 0; c < 3; ++c) CHECK(emb.weight.to_array()(3, c) == before(3, c));   // unused: untouched
    Array expected = xt::zeros<float>({5, 3});
    for (std::size_t i = 0; i < 6; ++i) {
        for (std::size_t c = 0; c < 3; ++c) expected(ids.data()[i], c) += up.data_ptr()[i * 3 + c];
    }
    check_close(emb.weight.grad().to_array(), expected);
}

TEST_CASE("sparse mode gives the touched rows of the dense gradient, and accumulates")
{
    manual_seed(1);
    nn::Embedding dense(8, 4), sparse(8, 4, nn::EmbeddingOptions().sparse(true));
    assign(sparse.weight, dense.weight.to_array());
    IdArray ids = {{6, 1, 6}, {3, 1, 6}};
    Tensor upstream = randn({2, 3, 4});
    dense.forward(ids).backward(upstream);
    sparse.forward(ids).backward(upstream);
    CHECK_FALSE(sparse.weight.grad().defined());
    const RowSparse* g = sparse.weight.sparse_grad();
    REQUIRE(g != nullptr);
    CHECK(g->rows == std::vector<std::int64_t>{1, 3, 6});
    CHECK(std::memcmp(g->to_dense(8).data(), dense.weight.grad().data_ptr(), 32 * sizeof(float)) == 0);

    IdArray more = {0, 6};                                  // a second backward merges the row sets
    Tensor upstream2 = randn({2, 4});
    dense.forward(more).backward(upstream2);
    sparse.forward(more).backward(upstream2);
    CHECK(sparse.weight.sparse_grad()->rows == std::vector<std::int64_t>{0, 1, 3, 6});
    check_close(sparse.weight.sparse_grad()->to_dense(8), dense.weight.grad().to_array());
    sparse.zero_grad();
    CHECK(sparse.weight.sparse_grad() == nullptr);
}

TEST_CASE("the scatter-add is bitwise identical on 1, 2 and 4 threads, dense and sparse")
{
    const int saved = get_num_threads();
    const std::size_t V = 6000, C = 192, N = 8192;
    Generator rng(9);
    IdArray all_equal = xt::full_like(IdArray(Shape{N}), 7), all_distinct(Shape{V}), random(Shape{N});
    for (std::size_t i = 0; i < V; ++i) all_distinct(i) = static_cast<std::int64_t>((i * 7919) % V);
    for (auto& id : random) id = static_cast<std::int64_t>(rng.below(V));
    for (const IdArray* ids : {&all_equal, &all_distinct, &random}) {
        REQUIRE(ids->size() * C >= 2 * parallel_floats);   // enough upstream rows for two threads' rows
    }
    for (bool sparse : {false, true}) {
        for (bool by_freq : {false, true}) {
            for (const IdArray* ids : {&all_equal, &all_distinct, &random}) {
                INFO("sparse " << sparse << ", scale_grad_by_freq " << by_freq << ", " << ids->size() << " ids");
                std::vector<Array> grads;
                for (int threads : {1, 2, 4}) {
                    set_num_threads(threads);
                    manual_seed(4);
                    nn::Embedding emb(V, C, nn::EmbeddingOptions().sparse(sparse).scale_grad_by_freq(by_freq).padding_idx(3));
                    Tensor upstream = randn({ids->size(), C});
                    Tensor out = emb.forward(*ids);
                    const std::uint64_t before = threaded_loops();
                    out.backward(upstream);
                    if (threads > 1 && ids != &all_equal) REQUIRE(threaded_loops() > before);   // the scatter ran threaded
                    grads.push_back(sparse ? emb.weight.sparse_grad()->values : emb.weight.grad().to_array());
                }
                for (std::size_t k = 1; k < grads.size(); ++k) {
                    REQUIRE(grads[k].shape() == grads[0].shape());
                    CHECK(std::memcmp(grads[k].data(), grads[0].data(), grads[0].size() * sizeof(float)) == 0);
                }
            }
        }
    }
    set_num_threads(saved);
}

TEST_CASE("an id out of range throws before anything changes, naming the module, id, position and range")
{
    struct Model : nn::Module {
        std::shared_ptr<nn::Embedding> tok = register_module("tok_emb", std::make_shared<nn::Embedding>(65, 8));
        std::shared_ptr<nn::Embedding> pos = register_module(
            "pos_emb", std::make_shared<nn::Embedding>(64, 8, nn::EmbeddingOptions().position_table(true).max_norm(0.5f)));
    } model;
    IdArray ids = xt::zeros<std::int64_t>({4, 16});
    ids(3, 12) = 70;
    CHECK_THROWS_WITH(model.tok->forward(ids),
                      Contains("nn::Embedding 'tok_emb': id 70 at position (3, 12) is out of range for num_embeddings = 65"));
    ids(3, 12) = -1;
    CHECK_THROWS_WITH(model.tok->forward(ids), Contains("id -1 at position (3, 12)") && Contains("valid ids are 0 to 64"));

    Array before = model.pos->weight.to_array();
    IdArray positions = xt::arange<std::int64_t>(70);   // a sequence of 70 against block_size 64
    CHECK_THROWS_WITH(model.pos->forward(positions),
                      Contains("'pos_emb': id 64 at position (64,)") &&
                          Contains("the sequence is longer than block_size = 64"));
    CHECK((model.pos->weight.to_array() == before));          // max_norm did not touch any row
}

TEST_CASE("from_pretrained copies the weights and freezes them unless asked not to")
{
    Tensor w = tensor({{1, 2}, {3, 4}, {5, 6}});
    auto frozen = nn::Embedding::from_pretrained(w);
    CHECK_FALSE(frozen->weight.requires_grad());
    CHECK(frozen->forward(IdArray{2}).to_array()(0, 1) == 6.0f);
    {
        NoGradGuard no_grad;
        w.select(0, 2).select(0, 1).fill_(0.0f);
    }
    CHECK(frozen->weight.to_array()(2, 1) == 6.0f);           // a copy, not a view
    auto trainable = nn::Embedding::from_pretrained(w, false);
    CHECK(trainable->weight.requires_grad());
    CHECK_THROWS_WITH(nn::Embedding::from_pretrained(arange(3.0f)), Contains("expected 2-D weights"));
}

TEST_CASE("grad_report lists the touched rows, their counts and gradient norms")
{
    nn::Embedding emb(5, 2);
    IdArray ids = {4, 1, 4};
    emb.forward(ids).backward(tensor({{3, 4}, {1, 0}, {0, 0}}));
    auto report = emb.grad_report();
    REQUIRE(report.rows.size() == 2);
    CHECK(report.rows[0].id == 1);
    CHECK(report.rows[0].count == 1);
    CHECK(report.rows[0].grad_norm == Approx(1.0f));
    CHECK(report.rows[1].id == 4);
    CHECK(report.rows[1].count == 2);
    CHECK(report.rows[1].grad_norm == Approx(5.0f));
    CHECK(report.untouched == 3);
}

TEST_CASE("the seed's tok(x) + pos(arange(T)) broadcasts over the batch")
{
    const std::size_t n_embd = 64, block_size = 64, B = 3, T = 5;
    manual_seed(0);
    nn::Embedding tok(65, n_embd), pos(block_size, n_embd, nn::EmbeddingOptions().position_table(true));
    IdArray x = {{1, 0, 2, 2, 3}, {3, 3, 3, 3, 3}, {0, 1, 2, 3, 4}};
    Tensor out = tok.forward(x) + pos.forward(xt::arange<std::int64_t>(T));   // (B, T, C) + (T, C)
    REQUIRE(out.shape() == Shape{B, T, n_embd});
    for (std::size_t b = 0; b < B; ++b) {
        for (std::size_t t = 0; t < T; ++t) {
            for (std::size_t c = 0; c < n_embd; ++c) {
                REQUIRE(out.to_array()(b, t, c) == tok.weight.to_array()(x(b, t), c) + pos.weight.to_array()(t, c));
            }
        }
    }
    sum(out).backward();
    CHECK(pos.weight.grad().to_array()(0, 0) == float(B));   // every batch row used position 0
    CHECK(pos.weight.grad().to_array()(T, 0) == 0.0f);
}
