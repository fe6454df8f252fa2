// inspect/graph.h: the autograd graph as DOT text, with names, shapes, and gradient norms by hooks.
#include <catch2/catch.hpp>

#include <cstdlib>

#include "xgrad.h"

using namespace xgrad;
using Catch::Matchers::Contains;

TEST_CASE("the DOT of a small known graph is exactly the expected text", "[graph]")
{
    Tensor w = tensor({{1.0f, 2.0f}, {3.0f, 4.0f}}).requires_grad_();   // (2, 2)
    Tensor x = tensor({1.0f, -1.0f});                                    // a constant
    Tensor b = tensor({0.5f, 0.5f}).requires_grad_();                    // a leaf with no name
    Tensor loss = sum(matmul(w, reshape(x, {2, 1})) * 3.0f + reshape(b, {2, 1}));
    inspect::Graph graph(loss, {.names = {{"layer.weight", w}}});
    const char* before =
        "digraph autograd {\n"
        "  rankdir=LR;\n"
        "  node [fontname=\"Helvetica\", fontsize=10];\n"
        "  n0 [shape=box, style=filled, fillcolor=\"#dbe9f6\", label=\"layer.weight\\n(2, 2)\"];\n"
        "  n1 [shape=box, label=\"constant\\n(2, 1)\"];\n"     // reshape(x): x needs no grad, so no op is recorded
        "  n2 [shape=ellipse, label=\"matmul\\n(2, 1)\"];\n"
        "  n3 [shape=ellipse, label=\"mul_scalar\\n(2, 1)\"];\n"
        "  n4 [shape=box, label=\"leaf\\n(2,)\"];\n"
        "  n5 [shape=ellipse, label=\"view\\n(2, 1)\"];\n"   // a reshape that is a view: torch's ViewBackward0
        "  n6 [shape=ellipse, label=\"add\\n(2, 1)\"];\n"
        "  n7 [shape=ellipse, label=\"sum\\n()\"];\n"
        "  n0 -> n2;\n"
        "  n1 -> n2;\n"
        "  n2 -> n3;\n"
        "  n4 -> n5;\n"
        "  n3 -> n6;\n"
        "  n5 -> n6;\n"
        "  n6 -> n7;\n"
        "}\n";
    CHECK(graph.dot() == before);
    CHECK(graph.num_nodes() == 8);
    loss.backward();
    const std::string after = graph.dot();
    // d loss / d w = 3 x^T per row: rows (3, -3): norm sqrt(36) = 6; b's gradient (1, 1): sqrt(2)
    CHECK_THAT(after, Contains("label=\"layer.weight\\n(2, 2)\\ngrad norm 6\"") &&
                          Contains("label=\"leaf\\n(2,)\\ngrad norm 1.414\"") &&
                          Contains("label=\"sum\\n()\\ngrad norm 1\"") &&
                          Contains("label=\"mul_scalar\\n(2, 1)\\ngrad norm 1.414\"") &&
                          Contains("label=\"matmul\\n(2, 1)\\ngrad norm 4.243\"") &&
                          Contains("label=\"constant\\n(2, 1)\"]"));   // no gradient for a constant
}

TEST_CASE("a large graph is drawn up to max_nodes, nearest the output, saying how many were left out", "[graph]")
{
    Tensor x = tensor({1.0f}).requires_grad_();
    Tensor h = x;
    for (int i = 0; i < 50; ++i) h = tanh(h);   // 51 nodes
    const std::string dot = inspect::graph_dot(h, {.max_nodes = 10});
    CHECK_THAT(dot, Contains("more [shape=note, label=\"41 more nodes not drawn (max_nodes = 10)\"];") &&
                        Contains("more -> n41;") && Contains("n49 -> n50;") && !Contains("n40 ") && !Contains("leaf"));
}

TEST_CASE("a Graph made after backward() freed the graph says to make it before", "[graph]")
{
    Tensor x = tensor({1.0f}).requires_grad_();
    Tensor y = sum(x * 2.0f);
    y.backward();
    CHECK_THROWS_WITH(inspect::Graph(y), Contains("freed by an earlier backward()") && Contains("before calling backward()"));
}

TEST_CASE("a Graph that dies before backward leaves the graph's gradients as without it", "[graph]")
{
    auto grad_of_x = [](bool with_graph) {
        Tensor x = tensor({1.0f, 2.0f}).requires_grad_();
        Tensor y = sum(tanh(x) * 2.0f);
        if (with_graph) inspect::Graph graph(y);   // its hooks go with it; none may touch the dead Graph
        y.backward();
        return x.grad();
    };
    const Tensor plain = grad_of_x(false), after_graph = grad_of_x(true);
    CHECK((plain.to_array() == after_graph.to_array()));
}

TEST_CASE("Graphviz renders the DOT to a well-formed SVG", "[graph]")
{
    if (std::system("command -v dot >/dev/null 2>&1") != 0) {
        FAIL("Graphviz's dot is not installed: scripts/setup.sh installs graphviz");
    }
    nn::Embedding tok(4, 3), pos(5, 3);
    Tensor h = tok.forward(IdArray{{1, 0, 2, 2, 3}}) + pos.forward(xt::arange<std::int64_t>(5));
    Tensor loss = sum(h * h);
    inspect::Graph graph(loss, {.names = {{"tok.weight", tok.weight}, {"pos.weight", pos.weight}}});
    loss.backward();
    const std::string svg = inspect::render_svg(graph.dot());
    CHECK_THAT(svg, Contains("<svg") && Contains("</svg>") && Contains("tok.weight") && Contains("embedding_lookup"));
    CHECK_THROWS_WITH(inspect::render_svg("digraph { this is not dot"), Contains("Graphviz's 'dot' failed") && Contains("syntax error"));
}
