// The optimizer base: groups, zero_grad, state save and load.
#include "optim/optimizer.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/check.h"

namespace xgrad::optim {

namespace {

std::string exact(double v)   // a decimal that reads back as exactly the same double
{
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.17g", v);
    return buffer;
}

// Numbers read back from a checkpoint's metadata: the whole text must be the number, or the error
// names the file, the key and what it holds (a hand-edited file must not silently read as 0).
double positive_number(const std::string& what, const std::string& key, const std::string& text)
{
    char* end = nullptr;
    const double value = std::strtod(text.c_str(), &end);
    XGRAD_CHECK(!text.empty() && *end == '\0' && std::isfinite(value) && value > 0.0, what, "has '", key, "' = '", text,
          "', expected a positive number");
    return value;
}

std::int64_t step_count(const std::string& what, const std::string& key, const std::string& text)
{
    std::int64_t value = -1;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    XGRAD_CHECK(error == std::errc() && end == text.data() + text.size() && value >= 0, what, "has '", key, "' = '", text,
          "', expected a whole number of steps (0 or more)");
    return value;
}

}  // namespace

void check_option(bool ok, const std::string& optimizer, const char* option, double value, const char* expected)
{
    XGRAD_CHECK(ok, optimizer, ": ", option, " must be ", expected, ", got ", value);
}

Optimizer::Optimizer(std::string name, std::vector<ParamGroup> groups, double lr, double weight_decay,
                     std::vector<std::string> slots)
    : name_(std::move(name)), slot_names_(std::move(slots))
{
    for (std::size_t g = 0; g < groups.size(); ++g) {
        const double group_lr = groups[g].options.lr_.value_or(lr);
        const double group_decay = groups[g].options.weight_decay_.value_or(weight_decay);
        auto who = [&](bool set_by_group) { return set_by_group ? name_ + " group " + std::to_string(g) : name_; };
        check_option(group_lr > 0.0, who(groups[g].options.lr_.has_value()), "lr", group_lr, "positive");
        check_option(group_decay >= 0.0, who(groups[g].options.weight_decay_.has_value()), "weight_decay", group_decay,
                     "non-negative");
        for (std::size_t i = 0; i < groups[g].params.size(); ++i) {
            const Tensor& p = groups[g].params[i];
            XGRAD_CHECK(p.defined() && p.is_leaf(), name_, ": group ", g, " holds a tensor that is not a leaf parameter");
            // A tensor listed twice would be stepped twice per step(), with two sets of moments.
            for (std::size_t h = 0; h <= g; ++h) {
                const auto& earlier = h < g ? groups_[h].params : groups[g].params;
                const std::size_t until = h < g ? earlier.size() : i;
                for (std::size_t j = 0; j < until; ++j) {
                    XGRAD_CHECK(!earlier[j].is_same(p), name_, ": parameter ", i, " of group ", g,
                          " is the same tensor as parameter ", j, " of group ", h,
                          "; each parameter may appear only once (PyTorch refuses it too)");
                }
            }
        }
        groups_.push_back({std::move(groups[g].params), group_lr, group_decay, group_lr, groups[g].options});
        for (std::size_t i = 0; i < groups_.back().params.size(); ++i) states_.push_back({0, std::vector<std::optional<Tensor>>(slot_names_.size())});
    }
    XGRAD_CHECK(!states_.empty(), name_, ": got an empty parameter list (", groups_.size(),
          " groups, no parameters); there is nothing to optimize");
}

void Optimizer::check_before_step() const
{
    std::size_t k = 0;
    for (std::size_t g = 0; g < groups_.size(); ++g) {
        for (std::size_t i = 0; i < groups_[g].params.size(); ++i) {
            const Tensor& p = groups_[g].params[i];
            const State& state = states_[k++];
            const std::string which = name_ + ": parameter " + std::to_string(i) + " of group " + std::to_string(g) +
                                      " (shape " + shape_str(p.shape()) + ")";
            const Tensor grad = p.grad();
            XGRAD_CHECK(!grad.defined() || grad.shape() == p.shape(), which, " has a gradient of shape ",
                        shape_str(grad.defined() ? grad.shape() : Shape{}), "; its data was replaced by data of another ",
                        "shape after the gradient was computed (zero_grad() and run backward again)");
            if (const RowSparse* sparse = p.sparse_grad()) {
                const bool fits = p.dim() == 2 && sparse->values.shape()[1] == p.shape()[1] &&
                                  (sparse->rows.empty() || static_cast<std::size_t>(sparse->rows.back()) < p.shape()[0]);
                XGRAD_CHECK(fits, which, " has a row-sparse gradient of rows of ", sparse->values.shape()[1],
                            " values up to row ", sparse->rows.empty() ? 0 : sparse->rows.back(), "; its data was replaced ",
                            "by data of another shape after the gradient was computed");
            }
            for (std::size_t s = 0; s < state.slots.size(); ++s) {
                XGRAD_CHECK(!state.slots[s] || state.slots[s]->numel() == p.numel(), which, " has its ", slot_names_[s],
                            " made for shape ", shape_str(state.slots[s] ? state.slots[s]->shape() : Shape{}),
                            ": its data was replaced by data of another shape after the optimizer's first step (make the ",
                            "optimizer again, or give the parameter data of its old shape)");
            }
            XGRAD_CHECK(p.is_contiguous() || (!grad.defined() && !p.sparse_grad()), which, " is not contiguous (strides ",
                        shape_str(p.stride()), "); give it contiguous data (p.set_data(t.contiguous()))");
        }
    }
}

void Optimizer::zero_grad(bool set_to_none)
{
    for (auto& group : groups_) {
        for (auto& p : group.params) p.zero_grad(set_to_none);
    }
}

void Optimizer::save_state(io::NamedTensors& tensors, io::Metadata& metadata) const
{
    metadata["optimizer"] = name_;
    for (std::size_t g = 0; g < groups_.size(); ++g) {
        metadata["optimizer.group." + std::to_string(g) + ".lr"] = exact(groups_[g].lr);
    }
    for (std::size_t k = 0; k < states_.size(); ++k) {
        const std::string prefix = "optimizer.state." + std::to_string(k) + ".";
        metadata[prefix + "step"] = std::to_string(states_[k].step);
        for (std::size_t s = 0; s < slot_names_.size(); ++s) {
            if (states_[k].slots[s]) tensors.emplace_back(prefix + slot_names_[s], *states_[k].slots[s]);
        }
    }
}

void Optimizer::load_state(const io::Safetensors& file, const std::string& path)
{
    const std::string what = "load: " + path + " ";
    auto meta = [&](const std::string& key) -> const std::string& {
        auto it = file.metadata.find(key);
        XGRAD_CHECK(it != file.metadata.end(), what, "has no optimizer state '", key, "' (was it saved with an optimizer?)");
        return it->second;
    };
    XGRAD_CHECK(meta("optimizer") == name_, what, "holds the state of ", meta("optimizer"), ", not of ", name_);

    // Read everything into new state first; only then replace this optimizer's.
    std::vector<double> lrs;
    for (std::size_t g = 0; g < groups_.size(); ++g) {
        const std::string key = "optimizer.group." + std::to_string(g) + ".lr";
        lrs.push_back(positive_number(what, key, meta(key)));
    }
    std::vector<State> loaded(states_.size(), State{0, std::vector<std::optional<Tensor>>(slot_names_.size())});
    std::size_t k = 0;
    for (const auto& group : groups_) {
        for (const auto& p : group.params) {
            const std::string prefix = "optimizer.state." + std::to_string(k) + ".";
            loaded[k].step = step_count(what, prefix + "step", meta(prefix + "step"));
            for (std::size_t s = 0; s < slot_names_.size(); ++s) {
                for (const auto& [name, values] : file.tensors) {
                    if (name != prefix + slot_names_[s]) continue;
                    XGRAD_CHECK(values.shape() == p.shape(), what, "has ", name, " of shape ", shape_str(values.shape()),
                                " for a parameter of shape ", shape_str(p.shape()));
                    XGRAD_CHECK(values.is_floating_point(), what, "has ", name, " of dtype ", dtype_name(values.dtype()),
                                "; optimizer state is float");
                    loaded[k].slots[s] = values.to(p.dtype()).clone();   // the parameter's dtype, a buffer of its own
                }
            }
            ++k;
        }
    }
    // A state saved before any step() has step counts but no moment tensors: its parameter and group
    // counts show in the metadata keys alone, so those are checked too.
    for (const auto& [key, value] : file.metadata) {
        if (key.rfind("optimizer.state.", 0) == 0) {
            const std::size_t index = std::strtoull(key.c_str() + 16, nullptr, 10);
            XGRAD_CHECK(index < states_.size(), what, "has optimizer state ", key, " for parameter ", index, ", but ", name_,
                  " has ", states_.size(), " parameters");
        } else if (key.rfind("optimizer.group.", 0) == 0) {
            const std::size_t index = std::strtoull(key.c_str() + 16, nullptr, 10);
            XGRAD_CHECK(index < groups_.size(), what, "has optimizer settings ", key, " for group ", index, ", but ", name_,
                  " has ", groups_.size(), " groups");
        }
    }
    for (const auto& [name, values] : file.tensors) {
        if (name.rfind("optimizer.state.", 0) != 0) continue;
        const std::size_t index = std::strtoull(name.c_str() + 16, nullptr, 10);
        XGRAD_CHECK(index < states_.size(), what, "has optimizer state ", name, " for parameter ", index, ", but ", name_,
              " has ", states_.size(), " parameters");
    }
    states_ = std::move(loaded);
    for (std::size_t g = 0; g < groups_.size(); ++g) groups_[g].lr = lrs[g];
}

}  // namespace xgrad::optim
