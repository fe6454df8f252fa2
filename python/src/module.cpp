// The extension module xgrad._xgrad: its parts (tensor.cpp, ops.cpp, nn.cpp, optim.cpp, text.cpp),
// grad mode, anomaly detection, threads and seeds, and how xgrad's errors reach Python.
#include "python/src/pytensor.h"

namespace py = pybind11;
using namespace xgrad;
using namespace xgrad::python;

namespace {

// A guard owned by a Python context manager: made in __enter__, destroyed in __exit__.
template <class Guard>
struct Scoped {
    std::unique_ptr<Guard> guard;
    void enter() { guard = std::make_unique<Guard>(); }
    void exit() { guard.reset(); }
};

}  // namespace

PYBIND11_MODULE(_xgrad, m)
{
    m.doc() = "xgrad's C++ core: tensors with autograd, nn, optim (import xgrad, not this module)";

    // xgrad::Error carries the op, what it expected and what it got: the error PyTorch raises for it
    // (IndexError for an index or id out of range, RuntimeError for the rest), with that text
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const Error&) {
            set_python_error();
        }
    });

    bind_tensor(m);
    bind_ops(m);
    bind_nn(m);
    bind_optim(m);
    bind_text(m);
    bind_bench(m);

    py::class_<Scoped<NoGradGuard>>(m, "_NoGrad")
        .def(py::init<>())
        .def("enter", &Scoped<NoGradGuard>::enter)
        .def("exit", &Scoped<NoGradGuard>::exit);
    py::class_<Scoped<DetectAnomalyGuard>>(m, "_DetectAnomaly")
        .def(py::init<>())
        .def("enter", &Scoped<DetectAnomalyGuard>::enter)
        .def("exit", &Scoped<DetectAnomalyGuard>::exit);
    m.def("is_grad_enabled", &is_grad_enabled);
    m.def("is_anomaly_enabled", &is_anomaly_enabled);

    m.def("manual_seed", [](std::uint64_t seed) { manual_seed(seed); }, py::arg("seed"));
    m.def("set_num_threads", [](int n) {
        if (n < 1) throw py::value_error("set_num_threads expects a positive integer, got " + std::to_string(n));
        set_num_threads(n);
    }, py::arg("n"));
    m.def("get_num_threads", &get_num_threads);
    m.def("empty_cache", &empty_cache);
    m.def("live_storage_bytes", &live_storage_bytes);
    m.def("peak_storage_bytes", &peak_storage_bytes);
    m.def("reset_peak_storage_bytes", &reset_peak_storage_bytes);
}
