// inspect::Graph: the autograd graph recorded once, its gradient norms by hooks, drawn as DOT.
#include "inspect/graph.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <numeric>
#include <sstream>
#include <unordered_map>

#include "core/node.h"

extern char** environ;

namespace xgrad::inspect {

using detail::Access;

namespace {

double norm_of(const Array& g)
{
    double s = 0.0;
    for (float v : g) s += static_cast<double>(v) * v;
    return std::sqrt(s);
}

std::string escaped(const std::string& s)
{
    std::string out;
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out;
}

std::string number(double v)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4g", v);
    return buf;
}

}  // namespace

Graph::Graph(const Tensor& root, GraphOptions options)
    : grad_norms_(std::make_shared<std::vector<double>>()), max_nodes_(std::max<std::size_t>(options.max_nodes, 1))
{
    XGRAD_CHECK(root.defined(), "inspect::Graph: the tensor is undefined");
    const std::shared_ptr<detail::Node> root_node = Access::impl(root).node;
    XGRAD_CHECK(!root_node || !root_node->graph_freed, "inspect::Graph: the graph behind this tensor was freed by an ",
                "earlier backward(); build the Graph before calling backward() (or pass retain_graph = true)");
    std::unordered_map<const void*, std::string> names;
    for (const auto& [name, t] : options.names) {
        if (t.defined() && Access::node(t)) names.emplace(Access::node(t), name);
    }

    // An iterative depth-first walk over every input, numbering each vertex after its inputs. A vertex
    // is a node (an op, or a leaf that requires grad), or a tensor without one (a constant).
    struct Vertex {
        Tensor tensor;
        std::shared_ptr<detail::Node> node;
        const void* key() const { return node ? static_cast<const void*>(node.get()) : Access::ptr(tensor).get(); }
    };
    std::unordered_map<const void*, std::size_t> index;
    std::vector<std::pair<Vertex, std::size_t>> stack{{Vertex{root, root_node}, 0}};
    std::vector<Vertex> handles;   // dropped once the walk is done: the Graph keeps only leaves alive
    while (!stack.empty()) {
        auto& [v, next] = stack.back();
        const detail::Node* n = v.node.get();
        if (n && next < n->inputs.size()) {
            const detail::Edge& e = n->inputs[next++];
            Vertex input{e.tensor, e.node};
            if (!index.contains(input.key())) stack.emplace_back(std::move(input), 0);   // a DAG: never on the stack
            continue;
        }
        Node node;
        node.leaf = !n || n->is_leaf();
        auto name = names.find(v.key());
        node.parameter = name != names.end();
        node.label = node.parameter ? name->second : !node.leaf ? n->op : n && n->requires_grad ? "leaf" : "constant";
        node.shape = shape_str(n ? n->shape : Access::impl(v.tensor).shape);
        if (n) {
            for (const detail::Edge& e : n->inputs) node.inputs.push_back(index.at(Vertex{e.tensor, e.node}.key()));
        }
        if (node.leaf) node.leaf_handle = v.tensor;
        index.emplace(v.key(), nodes_.size());
        if (!node.leaf && n->requires_grad) {
            const std::size_t i = nodes_.size();
            std::weak_ptr<std::vector<double>> norms = grad_norms_;
            hooks_.push_back(detail::register_node_hook(v.node, [norms, i](const Tensor& g) {
                if (auto v = norms.lock()) (*v)[i] = norm_of(g.to_array());
                return Tensor();
            }));
        }
        nodes_.push_back(std::move(node));
        handles.push_back(std::move(v));
        stack.pop_back();
    }
    grad_norms_->assign(nodes_.size(), -1.0);

    // depth: the fewest edges to the root, which is last
    for (auto& node : nodes_) node.depth = nodes_.size();
    nodes_.back().depth = 0;
    for (std::size_t i = nodes_.size(); i-- > 0;) {
        for (std::size_t input : nodes_[i].inputs) nodes_[input].depth = std::min(nodes_[input].depth, nodes_[i].depth + 1);
    }
}

Graph::~Graph()
{
    for (auto& h : hooks_) h.remove();
}

std::string Graph::dot() const
{
    // the drawn nodes: the max_nodes nearest the root (ties: the later, nearer in the walk)
    std::vector<std::size_t> by_nearness(nodes_.size());
    std::iota(by_nearness.begin(), by_nearness.end(), 0);
    std::stable_sort(by_nearness.begin(), by_nearness.end(), [this](std::size_t a, std::size_t b) {
        return nodes_[a].depth != nodes_[b].depth ? nodes_[a].depth < nodes_[b].depth : a > b;
    });
    std::vector<bool> drawn(nodes_.size(), false);
    for (std::size_t k = 0; k < std::min(max_nodes_, nodes_.size()); ++k) drawn[by_nearness[k]] = true;
    const std::size_t left_out = nodes_.size() - std::min(max_nodes_, nodes_.size());

    std::ostringstream out;
    out << "digraph autograd {\n"
        << "  rankdir=LR;\n"
        << "  node [fontname=\"Helvetica\", fontsize=10];\n";
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        if (!drawn[i]) continue;
        const Node& n = nodes_[i];
        std::string label = escaped(n.label) + "\\n" + n.shape;
        double g = (*grad_norms_)[i];
        if (n.leaf && n.leaf_handle.requires_grad()) {
            if (n.leaf_handle.grad().defined()) g = norm_of(n.leaf_handle.grad().to_array());
            if (const RowSparse* s = n.leaf_handle.sparse_grad()) g = norm_of(s->values);
        }
        if (g >= 0.0) label += "\\ngrad norm " + number(g);
        out << "  n" << i << " [";
        if (n.parameter) {
            out << "shape=box, style=filled, fillcolor=\"#dbe9f6\", ";
        } else if (n.leaf) {
            out << "shape=box, ";
        } else {
            out << "shape=ellipse, ";
        }
        out << "label=\"" << label << "\"];\n";
    }
    if (left_out > 0) {
        out << "  more [shape=note, label=\"" << left_out << " more nodes not drawn (max_nodes = " << max_nodes_ << ")\"];\n";
    }
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        if (!drawn[i]) continue;
        bool from_more = false;
        for (std::size_t input : nodes_[i].inputs) {
            if (drawn[input]) {
                out << "  n" << input << " -> n" << i << ";\n";
            } else if (!from_more) {
                out << "  more -> n" << i << ";\n";
                from_more = true;
            }
        }
    }
    out << "}\n";
    return out.str();
}

std::string graph_dot(const Tensor& root, GraphOptions options) { return Graph(root, std::move(options)).dot(); }

namespace {

// A temporary file removed when it goes out of scope.
struct TempFile {
    std::string path;
    explicit TempFile(const char* suffix)
    {
        const char* dir = std::getenv("TMPDIR");
        path = std::string(dir && *dir ? dir : "/tmp") + "/xgrad-graph-XXXXXX" + suffix;
        const int fd = mkstemps(path.data(), static_cast<int>(std::string(suffix).size()));
        XGRAD_CHECK(fd >= 0, "render_svg: cannot create a temporary file in ", dir && *dir ? dir : "/tmp");
        close(fd);
    }
    ~TempFile() { std::remove(path.c_str()); }
    std::string read() const
    {
        std::ifstream in(path, std::ios::binary);
        return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    }
};

}  // namespace

std::string render_svg(const std::string& dot)
{
    TempFile in(".dot"), out(".svg"), err(".txt");
    {
        std::ofstream f(in.path, std::ios::binary);
        f << dot;
        XGRAD_CHECK(f.good(), "render_svg: cannot write the DOT text to ", in.path);
    }
    const std::string o = "-o" + out.path;
    const char* argv[] = {"dot", "-Tsvg", o.c_str(), in.path.c_str(), nullptr};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.path.c_str(), O_WRONLY | O_TRUNC, 0);
    pid_t pid = 0;
    const int rc = posix_spawnp(&pid, "dot", &actions, nullptr, const_cast<char* const*>(argv), environ);
    posix_spawn_file_actions_destroy(&actions);
    XGRAD_CHECK(rc == 0, "render_svg: cannot run Graphviz's 'dot' (", std::strerror(rc),
                "); install it with: apt-get install graphviz");
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    XGRAD_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "render_svg: Graphviz's 'dot' failed: ", err.read());
    return out.read();
}

}  // namespace xgrad::inspect
