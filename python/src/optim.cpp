// optim for Python: the C++ optimizers (Adam, AdamW, SparseAdam, SGD) over parameter groups, their
// state as named arrays, the schedules and clip_grad_norm. xgrad/optim/__init__.py gives them
// PyTorch's signatures and param_groups dicts.
#include "python/src/pytensor.h"

namespace xgrad::python {

namespace {

// [(params, lr or None, weight_decay or None, {option: value} the group sets itself), ...] -> the C++
// groups; every parameter a float tensor. The optimizer refuses an option it does not have.
std::vector<optim::ParamGroup> groups_of(const py::list& groups)
{
    std::vector<optim::ParamGroup> out;
    for (py::handle g : groups) {
        auto item = g.cast<py::tuple>();
        optim::ParamGroup group;
        for (py::handle p : item[0]) {
            const PyTensor* found = tensor_of(p);
            if (found == nullptr) throw py::type_error(std::string("optimizer params must be Tensors, got ") + Py_TYPE(p.ptr())->tp_name);
            const PyTensor& t = *found;
            if (!t.is_float()) throw py::value_error(std::string("optimizer can only optimize Tensors of floating point dtype, got ") + dtype_name(t.dtype()));
            if (!t.value.is_leaf()) throw py::value_error("can't optimize a non-leaf Tensor");
            group.params.push_back(t.value);
        }
        if (!item[1].is_none()) group.options.lr(item[1].cast<double>());
        if (!item[2].is_none()) group.options.weight_decay(item[2].cast<double>());
        for (auto [key, value] : item[3].cast<py::dict>()) {
            const auto name = key.cast<std::string>();
            auto& o = group.options;
            if (name == "betas") {
                const auto betas = value.cast<std::pair<double, double>>();
                o.betas(betas.first, betas.second);
            }
            else if (name == "eps") o.eps(value.cast<double>());
            else if (name == "amsgrad") o.amsgrad(value.cast<bool>());
            else if (name == "maximize") o.maximize(value.cast<bool>());
            else if (name == "momentum") o.momentum(value.cast<double>());
            else if (name == "dampening") o.dampening(value.cast<double>());
            else if (name == "nesterov") o.nesterov(value.cast<bool>());
            else throw py::value_error("xgrad: a parameter group sets '" + name + "', which xgrad's optimizers cannot "
                                       "set per group");
        }
        out.push_back(std::move(group));
    }
    return out;
}

// An optimizer's constructor: its option checks (lr < 0, ...) are ValueErrors, as PyTorch's.
template <class Make>
auto construct(Make make)
{
    try {
        return make();
    } catch (const Error& e) {
        throw py::value_error(e.what());
    }
}

}  // namespace

void bind_optim(py::module_& m)
{
    using A = py::arg;
    py::class_<optim::Optimizer, std::shared_ptr<optim::Optimizer>>(m, "_Optimizer")
        .def("step", [](optim::Optimizer& o) {
            py::gil_scoped_release release;
            o.step();
        })
        .def("zero_grad", &optim::Optimizer::zero_grad, A("set_to_none") = true)
        .def_property_readonly("name", &optim::Optimizer::name)
        .def("num_groups", [](const optim::Optimizer& o) { return o.param_groups().size(); })
        .def("set_group", [](optim::Optimizer& o, std::size_t g, double lr, double weight_decay) {
            XGRAD_CHECK(g < o.param_groups().size(), "optimizer: group ", g, " is out of range for ", o.param_groups().size(), " groups");
            o.param_groups()[g].lr = lr;
            o.param_groups()[g].weight_decay = weight_decay;
        })
        .def("group", [](const optim::Optimizer& o, std::size_t g) {
            XGRAD_CHECK(g < o.param_groups().size(), "optimizer: group ", g, " is out of range for ", o.param_groups().size(), " groups");
            const auto& group = o.param_groups()[g];
            return py::make_tuple(group.lr, group.weight_decay, group.initial_lr);
        })
        // the state as {name: array} and {key: text}: "optimizer.state.<k>.exp_avg", ".step", group lrs
        .def("save_state", [](const optim::Optimizer& o) {
            io::NamedTensors tensors;
            io::Metadata metadata;
            o.save_state(tensors, metadata);
            py::dict arrays;
            for (auto& [name, a] : tensors) arrays[py::str(name)] = PyTensor::of(a.clone());
            return py::make_tuple(arrays, metadata);
        })
        .def("load_state", [](optim::Optimizer& o, const py::dict& arrays, const io::Metadata& metadata) {
            io::Safetensors file;
            for (auto [name, t] : arrays) file.tensors.emplace_back(name.cast<std::string>(), to_tensor(t).value);
            file.metadata = metadata;
            o.load_state(file, "state_dict");
        });

    py::class_<optim::Adam, optim::Optimizer, std::shared_ptr<optim::Adam>>(m, "_Adam")
        .def(py::init([](const py::list& groups, double lr, double beta1, double beta2, double eps, double weight_decay,
                         bool amsgrad, bool maximize, bool decoupled) {
                 return construct([&]() -> std::shared_ptr<optim::Adam> {
                     const auto o = optim::AdamOptions().lr(lr).betas(beta1, beta2).eps(eps).weight_decay(weight_decay)
                                        .amsgrad(amsgrad).maximize(maximize);
                     if (decoupled) return std::make_shared<optim::AdamW>(groups_of(groups), o);
                     return std::make_shared<optim::Adam>(groups_of(groups), o);
                 });
             }), A("groups"), A("lr"), A("beta1"), A("beta2"), A("eps"), A("weight_decay"), A("amsgrad"), A("maximize"),
             A("decoupled"));
    py::class_<optim::SparseAdam, optim::Optimizer, std::shared_ptr<optim::SparseAdam>>(m, "_SparseAdam")
        .def(py::init([](const py::list& groups, double lr, double beta1, double beta2, double eps) {
                 return construct([&] {
                     return std::make_shared<optim::SparseAdam>(groups_of(groups),
                                                                optim::SparseAdamOptions().lr(lr).betas(beta1, beta2).eps(eps));
                 });
             }), A("groups"), A("lr"), A("beta1"), A("beta2"), A("eps"));
    py::class_<optim::SGD, optim::Optimizer, std::shared_ptr<optim::SGD>>(m, "_SGD")
        .def(py::init([](const py::list& groups, double lr, double momentum, double dampening, double weight_decay,
                         bool nesterov, bool maximize) {
                 return construct([&] {
                     return std::make_shared<optim::SGD>(groups_of(groups), optim::SGDOptions(lr).momentum(momentum)
                                                                                .dampening(dampening).weight_decay(weight_decay)
                                                                                .nesterov(nesterov).maximize(maximize));
                 });
             }), A("groups"), A("lr"), A("momentum"), A("dampening"), A("weight_decay"), A("nesterov"), A("maximize"));

    // the schedules as functions of (step, initial_lr), for the Python lr_scheduler classes
    m.def("_step_lr", [](std::int64_t step, double initial_lr, std::int64_t step_size, double gamma) {
        return construct([&] { return optim::StepLR(step_size, gamma).lr(step, initial_lr); });
    });
    m.def("_warmup_cosine_lr", [](std::int64_t step, double initial_lr, std::int64_t warmup, std::int64_t decay, double min_ratio) {
        return construct([&] { return optim::WarmupCosine(warmup, decay, min_ratio).lr(step, initial_lr); });
    });

    m.def("_clip_grad_norm", [](const std::vector<PyTensor>& params, double max_norm) {
        std::vector<Tensor> ps;
        for (const auto& p : params) {
            if (p.is_float()) ps.push_back(p.value);
        }
        py::gil_scoped_release release;
        return optim::clip_grad_norm(ps, max_norm);
    });

    // safetensors files of named tensors of any dtype (xgrad.save / xgrad.load)
    m.def("_save_safetensors", [](const std::string& path, const std::vector<std::pair<std::string, PyTensor>>& named,
                                  const io::Metadata& metadata) {
        io::NamedTensors tensors;
        for (const auto& [name, t] : named) tensors.emplace_back(name, t.value);
        py::gil_scoped_release release;
        io::save_safetensors(path, tensors, metadata);
    });
    m.def("_load_safetensors", [](const std::string& path) {
        io::Safetensors file;
        {
            py::gil_scoped_release release;
            file = io::load_safetensors(path);
        }
        std::vector<std::pair<std::string, PyTensor>> named;
        for (auto& [name, a] : file.tensors) named.emplace_back(name, PyTensor::of(std::move(a)));
        return py::make_tuple(named, file.metadata);
    });
}

}  // namespace xgrad::python
