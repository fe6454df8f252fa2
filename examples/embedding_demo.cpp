// The seed, in C++: text -> integers -> token + position embeddings, and what backprop does to them.
//
//   1. "hello" -> [1, 0, 2, 2, 3] -> tok(x) + pos(arange(T)): shape (1, 5, 64)
//   2. "cat sat" and "sat cat": without positions, the same rows in another order
//   3. one backward pass: the gradient row of 'l' (used twice) is the sum of its two upstream rows
//
// It checks each claim as it prints it, and exits non-zero if one does not hold.
#include <cmath>
#include <cstdio>
#include <string>

#include <xtensor/xview.hpp>

#include "xgrad.h"

using namespace xgrad;

namespace {

constexpr std::size_t n_embd = 64, block_size = 64;
bool all_claims_hold = true;

void claim(const char* what, bool holds)
{
    std::printf("  %-66s %s\n", what, holds ? "yes" : "NO");
    all_claims_hold = all_claims_hold && holds;
}

void print_row(const char* label, const Array& x, std::size_t t)
{
    std::printf("  %-6s [", label);
    for (std::size_t c = 0; c < 6; ++c) std::printf("%s%7.3f", c ? ", " : "", x(0, t, c));
    std::printf(", ...]\n");
}

// Is every row (token position) of a (1, T, C) array equal to some row of b?
bool rows_are_a_permutation(const Array& a, const Array& b)
{
    const std::size_t T = a.shape()[1];
    std::vector<bool> used(T, false);
    for (std::size_t i = 0; i < T; ++i) {
        bool found = false;
        for (std::size_t j = 0; j < T && !found; ++j) {
            if (!used[j] && xt::view(a, 0, i, xt::all()) == xt::view(b, 0, j, xt::all())) found = used[j] = true;
        }
        if (!found) return false;
    }
    return true;
}

}  // namespace

int main()
{
    manual_seed(1337);

    // 1. "hello" through the tokenizer and the two embedding tables
    std::printf("1. text -> integers -> token + position embeddings\n");
    const std::string text = "hello";
    text::CharTokenizer tokenizer(text);
    std::printf("  vocabulary:");
    for (std::size_t id = 0; id < tokenizer.vocab_size(); ++id) std::printf(" %s=%zu", tokenizer.token(static_cast<std::int64_t>(id)).c_str(), id);
    std::printf("\n");
    const auto ids = tokenizer.encode(text);
    std::printf("  ids: [");
    for (std::size_t i = 0; i < ids.size(); ++i) std::printf("%s%lld", i ? ", " : "", static_cast<long long>(ids[i]));
    std::printf("]\n");

    nn::Embedding tok(tokenizer.vocab_size(), n_embd);
    nn::Embedding pos(block_size, n_embd, nn::EmbeddingOptions().position_table(true));
    const IdArray x = text::to_ids(ids, /*as_batch=*/true);                       // (B, T) = (1, 5)
    const std::size_t T = x.shape()[1];
    Tensor out = tok.forward(x) + pos.forward(xt::arange<std::int64_t>(T));      // (1, 5, 64) + (5, 64)
    std::printf("  tok(x) + pos(arange(T)): shape %s\n", shape_str(out.shape()).c_str());
    for (std::size_t t = 0; t < T; ++t) {
        const std::string label = "'" + tokenizer.token(ids[t]) + "'@" + std::to_string(t);
        print_row(label.c_str(), out.to_array(), t);
    }
    claim("both 'l's share a token vector but get different position vectors",
          xt::view(out.to_array(), 0, 2, xt::all()) != xt::view(out.to_array(), 0, 3, xt::all()));

    // 2. order only reaches the vectors through the position table
    std::printf("\n2. \"cat sat\" vs \"sat cat\"\n");
    text::CharTokenizer cats("cat sat");
    nn::Embedding cat_tok(cats.vocab_size(), n_embd);
    const IdArray a = text::to_ids(cats.encode("cat sat"), true), b = text::to_ids(cats.encode("sat cat"), true);
    const Tensor positions = pos.forward(xt::arange<std::int64_t>(a.shape()[1]));
    const Tensor tok_a = cat_tok.forward(a), tok_b = cat_tok.forward(b);
    const Tensor full_a = tok_a + positions, full_b = tok_b + positions;
    claim("token vectors only: \"sat cat\" is \"cat sat\"'s rows in another order",
          rows_are_a_permutation(tok_b.to_array(), tok_a.to_array()));
    auto row = [](const Tensor& t, std::size_t i) { return Array(xt::view(t.to_array(), 0, i, xt::all())); };
    claim("with positions added: 'c'@0 in one and 'c'@4 in the other differ", row(full_a, 0) != row(full_b, 4));
    claim("while 'a'@1, at the same place in both, is the same vector", row(full_a, 1) == row(full_b, 1));
    claim("so the two sentences get different vectors", full_a.to_array() != full_b.to_array());

    // 3. backward: an embedding's gradient is a scatter-add of the upstream rows
    std::printf("\n3. one backward pass through tok(x) + pos(arange(T))\n");
    Tensor upstream = randn(out.shape());                       // dL/d out, as a loss would send back
    inspect::Graph graph(out, {.names = {{"tok.weight", tok.weight}, {"pos.weight", pos.weight}}});   // before backward
    out.backward(upstream);
    const Array& g = tok.weight.grad().to_array();                  // (V, C)
    const std::int64_t l = tokenizer.encode("l")[0];
    const Array expected = xt::view(upstream.to_array(), 0, 2, xt::all()) + xt::view(upstream.to_array(), 0, 3, xt::all());
    const float error = xt::amax(xt::abs(xt::view(g, l, xt::all()) - expected))();
    std::printf("  grad of 'l' (id %lld): [", static_cast<long long>(l));
    for (std::size_t c = 0; c < 4; ++c) std::printf("%s%7.3f", c ? ", " : "", g(l, c));
    std::printf(", ...]\n  upstream[2] + upstream[3]: [");
    for (std::size_t c = 0; c < 4; ++c) std::printf("%s%7.3f", c ? ", " : "", expected(c));
    std::printf(", ...]\n");
    claim("the gradient row of 'l' is the sum of its two upstream rows", error == 0.0f);
    auto report = tok.grad_report();
    std::printf("  rows touched:");
    for (const auto& row : report.rows) {
        std::printf(" '%s' x%zu (|grad| %.2f)", tokenizer.token(row.id).c_str(), row.count, row.grad_norm);
    }
    std::printf("\n");
    claim("every position row 0..4 got exactly its own upstream row",
          xt::view(pos.weight.grad().to_array(), xt::range(0, 5), xt::all()) == xt::view(upstream.to_array(), 0, xt::all(), xt::all()));

    std::printf("\n  the graph and the gradient norms that reached each node, as Graphviz DOT\n"
                "  (embedding_lookup's backward is the scatter-add; `dot -Tsvg` draws it):\n%s",
                graph.dot().c_str());

    std::printf("\n%s\n", all_claims_hold ? "all claims hold" : "SOME CLAIMS DO NOT HOLD");
    return all_claims_hold ? 0 : 1;
}
