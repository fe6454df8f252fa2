// The autograd graph behind a tensor as a picture, in Graphviz's DOT language (micrograd's draw_dot):
// one node per op and per leaf, labelled with the op's name (or the parameter's registered name), the
// shape, and after a backward the norm of the gradient that reached it; edges run from inputs to the
// ops that use them.
//
//     inspect::Graph graph(loss, {.names = model.named_parameters()});   // before backward()
//     loss.backward();
//     io::write_file_atomic("graph.svg", inspect::render_svg(graph.dot()));
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace xgrad::inspect {

struct GraphOptions {
    // Leaves found here are labelled with their name ("tok_emb.weight"): pass model.named_parameters().
    std::vector<std::pair<std::string, Tensor>> names;
    // A larger graph is drawn up to this many nodes, those nearest the output, and one more node says
    // how many were left out.
    std::size_t max_nodes = 60;
};

// Records the graph behind `root` as it is now. It registers a hook on every op's output, so that a
// backward() afterwards records the norm of the gradient flowing into each (a leaf's is its grad());
// the hooks are removed when the Graph dies. It holds no op output alive.
class Graph {
public:
    explicit Graph(const Tensor& root, GraphOptions options = {});
    ~Graph();
    Graph(const Graph&) = delete;
    Graph& operator=(const Graph&) = delete;

    std::string dot() const;
    std::size_t num_nodes() const { return nodes_.size(); }   // all of them, drawn or not

private:
    struct Node {
        std::string label;            // the op, or the leaf's name
        std::string shape;
        bool leaf = false, parameter = false;
        Tensor leaf_handle;           // a leaf's, for its grad() at dot() time
        std::vector<std::size_t> inputs;
        std::size_t depth = 0;        // edges from the root
    };
    std::vector<Node> nodes_;         // inputs before the ops that use them; the root last
    std::shared_ptr<std::vector<double>> grad_norms_;   // per node, filled by the hooks; < 0: none yet
    std::vector<HookHandle> hooks_;
    std::size_t max_nodes_;
};

// The graph behind `root`, drawn now (no gradients).
std::string graph_dot(const Tensor& root, GraphOptions options = {});

// DOT text rendered to SVG by Graphviz's `dot` program (Debian's graphviz). Throws if it is missing
// or fails, with its message.
std::string render_svg(const std::string& dot);

}  // namespace xgrad::inspect
