// nn for Python: the functional ops (linear, embedding, layer_norm, cross_entropy, dropout, gelu,
// scaled_dot_product_attention) and the C++ layers. xgrad/nn/__init__.py wraps these in
// torch-style Python modules; the simple layers take their initial weights from the C++
// constructors (so a seed gives the same weights from Python and C++), the composite ones
// (MultiheadAttention, CausalSelfAttention, TransformerBlock) also run their C++ forward.
#include "python/src/table.h"

namespace xgrad::python {

namespace {

PyTensor T(Tensor t) { return PyTensor::of(std::move(t)); }
Tensor opt(const std::optional<PyTensor>& t) { return t ? t->f() : Tensor(); }

nn::EmbeddingOptions embedding_options(std::optional<std::int64_t> padding_idx, std::optional<float> max_norm,
                                       float norm_type, bool scale_grad_by_freq, bool sparse, bool position_table)
{
    nn::EmbeddingOptions o;
    if (padding_idx) o.padding_idx(*padding_idx);
    if (max_norm) o.max_norm(*max_norm);
    return o.norm_type(norm_type).scale_grad_by_freq(scale_grad_by_freq).sparse(sparse).position_table(position_table);
}

// ids for an embedding or a loss: an int64 tensor, or a list or numpy array of ints; floats refused
IdArray ids_of(py::handle input, const char* who)
{
    return id_array((tensor_of(input) ? *tensor_of(input) : to_tensor(input)).ids(who), who);
}

std::optional<PyTensor> tensor_or_none(py::handle h)
{
    if (h.is_none()) return std::nullopt;
    return to_tensor(h);
}

// ---- torch.nn.functional's ops: the op table (table.h) --------------------------------------------------
Tensor cross_entropy_of(const PyTensor& input, py::handle target, std::optional<PyTensor> weight, std::int64_t ignore_index,
                        const std::string& reduction, float label_smoothing)
{
    if (tensor_of(target) && tensor_of(target)->value.is_floating_point()) {
        throw std::runtime_error("cross_entropy: expected class indices of dtype xgrad.long as target (probabilities "
                                 "as targets are not supported by xgrad)");
    }
    const IdArray ids = ids_of(target, "cross_entropy");
    Tensor logits = input.f();
    const std::size_t n = logits.dim();
    if (n > 2) {   // (N, C, d...) -> (N, d..., C): xgrad's op wants the classes last
        std::vector<int> perm = {0};
        for (std::size_t d = 2; d < n; ++d) perm.push_back(static_cast<int>(d));
        perm.push_back(1);
        logits = permute(logits, perm);
    }
    auto options = nn::functional::CrossEntropyOptions().ignore_index(ignore_index).label_smoothing(label_smoothing).reduction(reduction);
    if (weight) options.weight(weight->f());
    py::gil_scoped_release release;
    return nn::functional::cross_entropy(logits, ids, options);
}

// SDPA's bool mask: True = takes part in attention; a float mask is added to the scores
Tensor attention_of(const PyTensor& q, const PyTensor& k, const PyTensor& v, py::handle attn_mask, float dropout_p, bool is_causal,
                    std::optional<float> scale)
{
    AttentionOptions o;
    o.dropout_p(dropout_p).is_causal(is_causal);
    if (scale) o.scale(*scale);
    if (auto mask = tensor_or_none(attn_mask)) o.attn_mask(mask->dtype() == kBool ? mask->value : mask->f());
    Tensor qs = q.f(), ks = k.f(), vs = v.f();
    py::gil_scoped_release release;
    return scaled_dot_product_attention(qs, ks, vs, o);
}

const Def functional[] = {
    {"linear(input, weight, bias=None)", function, [](const PyTensor& x, const PyTensor& weight, std::optional<PyTensor> bias) {
         Tensor xs = x.f(), w = weight.f(), b = opt(bias);
         py::gil_scoped_release release;
         return linear(xs, w, b);
     }},
    {"embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False, sparse=False, "
     "position_table=False)", function,
     [](py::handle input, const Tensor& weight, std::optional<std::int64_t> padding_idx, std::optional<float> max_norm, float norm_type,
        bool scale_grad_by_freq, bool sparse, bool position_table) {
         const IdArray ids = ids_of(input, "embedding");
         if (padding_idx && *padding_idx < 0 && weight.dim() > 0) *padding_idx += static_cast<std::int64_t>(weight.size(0));
         const auto options = embedding_options(padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse, position_table);
         py::gil_scoped_release release;   // the weight as it is: max_norm renormalises the table's own rows in place
         return nn::functional::embedding(ids, weight, options);
     }},
    {"layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-05)", function,
     [](const PyTensor& x, py::handle normalized_shape, std::optional<PyTensor> weight, std::optional<PyTensor> bias, float eps) {
         const Shape shape = shape_from("layer_norm", normalized_shape);
         Tensor xs = x.f(), w = opt(weight), b = opt(bias);
         py::gil_scoped_release release;
         return nn::functional::layer_norm(xs, shape, w, b, eps);
     }},
    // input (N, C) with target (N), or (N, C, d...) with (N, d...) as PyTorch's: classes on axis 1
    {"cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction='mean', "
     "label_smoothing=0.0)", function,   // size_average and reduce: torch's deprecated spellings of reduction, not read
     [](const PyTensor& input, py::handle target, std::optional<PyTensor> weight, py::handle, std::int64_t ignore_index, py::handle,
        const std::string& reduction, float label_smoothing) {
         return cross_entropy_of(input, target, weight, ignore_index, reduction, label_smoothing);
     }},
    {"dropout(input, p=0.5, training=True, inplace=False)", function, [](const PyTensor& x, float p, bool training, bool) {
         if (p < 0.0f || p > 1.0f) throw py::value_error("dropout probability has to be between 0 and 1, but got " + std::to_string(p));
         return dropout(x.f(), p, training);
     }},
    {"gelu(input, approximate='none')", function, [](const PyTensor& x, const std::string& approximate) { return gelu(x.f(), approximate); }},
    {"softplus(input, beta=1.0, threshold=20.0)", function, [](const PyTensor& x, float beta, float threshold) {
         return softplus(x.f(), beta, threshold);
     }},
    {"scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None)", function,
     [](const PyTensor& q, const PyTensor& k, const PyTensor& v, py::handle attn_mask, float dropout_p, bool is_causal,
        std::optional<float> scale) { return attention_of(q, k, v, attn_mask, dropout_p, is_causal, scale); }},
};

}  // namespace

void bind_nn(py::module_& m)
{
    using A = py::arg;
    py::module_ f = m.def_submodule("_functional", "torch.nn.functional's ops on xgrad");
    install(f, functional);

    // ---- C++ modules ----
    py::class_<nn::Module, std::shared_ptr<nn::Module>>(m, "_Module")
        .def("named_parameters", [](const nn::Module& mod) {
            std::vector<std::pair<std::string, PyTensor>> out;
            for (auto& [name, p] : mod.named_parameters()) out.emplace_back(name, T(p));
            return out;
        })
        .def("train", [](nn::Module& mod, bool on) { mod.train(on); }, A("mode") = true)
        .def_property_readonly("training", &nn::Module::is_training)
        .def("describe", &nn::Module::describe);

    py::class_<nn::Embedding, nn::Module, std::shared_ptr<nn::Embedding>>(m, "_Embedding")
        .def(py::init([](std::size_t n, std::size_t d, std::optional<std::int64_t> padding_idx, std::optional<float> max_norm,
                         float norm_type, bool scale_grad_by_freq, bool sparse, bool position_table) {
                 return std::make_shared<nn::Embedding>(
                     n, d, embedding_options(padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse, position_table));
             }), A("num_embeddings"), A("embedding_dim"), A("padding_idx") = py::none(), A("max_norm") = py::none(),
             A("norm_type") = 2.0f, A("scale_grad_by_freq") = false, A("sparse") = false, A("position_table") = false)
        .def_property_readonly("weight", [](const nn::Embedding& e) { return T(e.weight); })
        .def_property_readonly("padding_idx", [](const nn::Embedding& e) { return e.options().padding_idx_; });

    py::class_<nn::Linear, nn::Module, std::shared_ptr<nn::Linear>>(m, "_Linear")
        .def(py::init<std::size_t, std::size_t, bool>(), A("in_features"), A("out_features"), A("bias") = true)
        .def_property_readonly("weight", [](const nn::Linear& l) { return T(l.weight); })
        .def_property_readonly("bias", [](const nn::Linear& l) -> py::object {
            return l.bias.defined() ? py::cast(T(l.bias)) : py::none();
        });

    py::class_<nn::MultiheadAttention, nn::Module, std::shared_ptr<nn::MultiheadAttention>>(m, "_MultiheadAttention")
        .def(py::init([](std::size_t embed_dim, std::size_t num_heads, float dropout, bool bias, bool add_bias_kv,
                         bool add_zero_attn, std::size_t kdim, std::size_t vdim, bool batch_first) {
                 return std::make_shared<nn::MultiheadAttention>(
                     embed_dim, num_heads, nn::MultiheadAttentionOptions().dropout(dropout).bias(bias).add_bias_kv(add_bias_kv)
                                               .add_zero_attn(add_zero_attn).kdim(kdim).vdim(vdim).batch_first(batch_first));
             }), A("embed_dim"), A("num_heads"), A("dropout") = 0.0f, A("bias") = true, A("add_bias_kv") = false,
             A("add_zero_attn") = false, A("kdim") = 0, A("vdim") = 0, A("batch_first") = false)
        // key_padding_mask and attn_mask: True = masked out (MultiheadAttention's convention), or float masks added
        .def("forward", [](const nn::MultiheadAttention& mha, const PyTensor& q, const PyTensor& k, const PyTensor& v,
                           py::handle key_padding_mask, bool need_weights, py::handle attn_mask, bool average_attn_weights,
                           bool is_causal) {
            nn::MultiheadAttentionForward args;
            if (auto kpm = tensor_or_none(key_padding_mask)) args.key_padding_mask = kpm->dtype() == kBool ? kpm->value : kpm->f();
            if (auto mask = tensor_or_none(attn_mask)) args.attn_mask = mask->dtype() == kBool ? mask->value : mask->f();
            args.need_weights = need_weights, args.average_attn_weights = average_attn_weights, args.is_causal = is_causal;
            Tensor qs = q.f(), ks = k.f(), vs = v.f();
            std::pair<Tensor, Tensor> out;
            {
                py::gil_scoped_release release;
                out = mha.forward(qs, ks, vs, args);
            }
            return py::make_tuple(T(out.first), out.second.defined() ? py::cast(T(out.second)) : py::none());
        }, A("query"), A("key"), A("value"), A("key_padding_mask") = py::none(), A("need_weights") = true,
           A("attn_mask") = py::none(), A("average_attn_weights") = true, A("is_causal") = false);

    auto transformer_options = [](std::size_t n_embd, std::size_t n_head, float dropout, bool bias, const std::string& gelu) {
        return nn::TransformerOptions().n_embd(n_embd).n_head(n_head).dropout(dropout).bias(bias).gelu(gelu);
    };
    py::class_<nn::CausalSelfAttention, nn::Module, std::shared_ptr<nn::CausalSelfAttention>>(m, "_CausalSelfAttention")
        .def(py::init([=](std::size_t n_embd, std::size_t n_head, float dropout, bool bias) {
                 return std::make_shared<nn::CausalSelfAttention>(transformer_options(n_embd, n_head, dropout, bias, "none"));
             }), A("n_embd"), A("n_head"), A("dropout") = 0.0f, A("bias") = true)
        .def("forward", [](const nn::CausalSelfAttention& a, const PyTensor& x) {
            Tensor xs = x.f();
            py::gil_scoped_release release;
            return T(a.forward(xs));
        });
    py::class_<nn::TransformerBlock, nn::Module, std::shared_ptr<nn::TransformerBlock>>(m, "_TransformerBlock")
        .def(py::init([=](std::size_t n_embd, std::size_t n_head, float dropout, bool bias, const std::string& gelu) {
                 return std::make_shared<nn::TransformerBlock>(transformer_options(n_embd, n_head, dropout, bias, gelu));
             }), A("n_embd"), A("n_head"), A("dropout") = 0.0f, A("bias") = true, A("gelu") = "none")
        .def("forward", [](const nn::TransformerBlock& b, const PyTensor& x) {
            Tensor xs = x.f();
            py::gil_scoped_release release;
            return T(b.forward(xs));
        });
}

}  // namespace xgrad::python
