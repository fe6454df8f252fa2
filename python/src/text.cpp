// xgrad.text: the C++ example corpus tools (core of train_lm), so that a Python script trains on
// exactly the characters, split and batches the C++ example does.
#include "python/src/pytensor.h"

namespace xgrad::python {

void bind_text(py::module_& m)
{
    using A = py::arg;
    py::module_ t = m.def_submodule("text", "character tokenizer and corpus batches, as examples/train_lm uses them");
    // xgrad.Generator, as torch.Generator: g = xgrad.Generator().manual_seed(42); randn(3, generator=g)
    py::class_<Generator>(t, "Generator")
        .def(py::init([](std::uint64_t seed, py::object device) {
                 check_device(device);
                 return Generator(seed);
             }), A("seed") = 0, A("device") = py::none())
        .def("manual_seed", [](Generator& g, std::uint64_t seed) -> Generator& {
            g.manual_seed(seed);
            return g;
        }, py::return_value_policy::reference_internal)
        .def("uniform", &Generator::uniform);
    t.def("read_text_file", [](const std::string& path) { return py::bytes(text::read_text_file(path)); });
    t.def("normalize_line_ends", [](const py::bytes& s) { return py::bytes(text::normalize_line_ends(s)); });
    t.def("shuffle_lines", [](const py::bytes& s, std::uint64_t seed) { return py::bytes(text::shuffle_lines(s, seed)); });
    py::class_<text::CharTokenizer>(t, "CharTokenizer")
        .def(py::init([](const py::bytes& s) { return text::CharTokenizer(std::string(s)); }), A("text"))
        .def("encode", [](const text::CharTokenizer& k, const py::bytes& s) {   // a 1-D xgrad.long tensor
            const auto ids = k.encode(std::string(s));
            return PyTensor::of(id_tensor(text::to_ids(ids)));
        })
        .def("decode", [](const text::CharTokenizer& k, const std::vector<std::int64_t>& ids) { return py::bytes(k.decode(ids)); })
        .def_property_readonly("vocab_size", &text::CharTokenizer::vocab_size)
        .def_property_readonly("vocabulary", [](const text::CharTokenizer& k) {
            std::vector<std::string> chars;
            for (char32_t c : k.vocabulary()) chars.push_back(text::encode_utf8(c));
            return chars;
        });
    t.def("sample_batch", [](const PyTensor& tokens, std::size_t batch_size, std::size_t block_size,
                             Generator& rng, const std::vector<std::size_t>& starts) {
        const IdArray ids = id_array(tokens.ids("sample_batch"), "sample_batch");
        text::Batch b = text::sample_batch(std::vector<std::int64_t>(ids.begin(), ids.end()), batch_size, block_size, rng, starts);
        return py::make_tuple(PyTensor::of(id_tensor(b.x)), PyTensor::of(id_tensor(b.y)));
    }, A("tokens"), A("batch_size"), A("block_size"), A("rng"), A("starts") = std::vector<std::size_t>{});
    t.def("offsets_after", [](const PyTensor& tokens, std::int64_t separator, std::size_t block_size) {
        const IdArray ids = id_array(tokens.ids("offsets_after"), "offsets_after");
        return text::offsets_after(std::vector<std::int64_t>(ids.begin(), ids.end()), separator, block_size);
    }, A("tokens"), A("separator"), A("block_size"));
}

}  // namespace xgrad::python
