// The op table's machinery (table.h): signatures parsed once, a call's arguments matched to them by
// position and keyword, converted with torch's TypeErrors, and the table installed as methods and
// functions.
#include "python/src/table.h"

#include <cstring>
#include <deque>

namespace xgrad::python {

namespace {

std::string trim(std::string_view s)
{
    const auto first = s.find_first_not_of(' ');
    if (first == std::string_view::npos) return {};
    return std::string(s.substr(first, s.find_last_not_of(' ') - first + 1));
}

// "sum(input, dim=None, keepdim=False, *, axis=None)": names, defaults (Python literals), `*` before
// the keyword-only ones, `*size` for a variadic one
Signature parse_signature(const char* text, Dtypes dtypes)
{
    const std::string_view spec(text);
    const auto open = spec.find('('), close = spec.rfind(')');
    if (open == std::string_view::npos || close == std::string_view::npos) throw std::logic_error(std::string("bad signature: ") + text);
    Signature sig{trim(spec.substr(0, open)), text, {}, dtypes};
    static const auto* literal = new py::object(py::module_::import("ast").attr("literal_eval"));   // leaked, as the signatures
    bool keyword_only = false;
    std::string_view rest = spec.substr(open + 1, close - open - 1);
    while (!rest.empty()) {
        const auto comma = rest.find(',');
        const std::string part = trim(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        if (part == "*") {
            keyword_only = true;
            continue;
        }
        Param p;
        const auto eq = part.find('=');
        p.name = trim(std::string_view(part).substr(0, eq));
        if (p.name.starts_with('*')) p.variadic = true, p.name.erase(0, 1);
        if (eq != std::string::npos) p.default_value = (*literal)(part.substr(eq + 1));
        p.keyword_only = keyword_only;
        p.interned = py::reinterpret_steal<py::object>(PyUnicode_InternFromString(p.name.c_str()));
        sig.params.push_back(std::move(p));
    }
    if (sig.params.size() > max_params) throw std::logic_error(std::string("too many parameters: ") + text);
    return sig;
}

std::size_t keyword_index(const Signature& sig, PyObject* key)
{
    for (std::size_t i = 0; i < sig.params.size(); ++i) {
        if (sig.params[i].interned.ptr() == key) return i;
    }
    for (std::size_t i = 0; i < sig.params.size(); ++i) {
        if (PyUnicode_Compare(sig.params[i].interned.ptr(), key) == 0) return i;
    }
    throw py::type_error(sig.name + "() got an unexpected keyword argument '" + py::str(key).cast<std::string>() + "'");
}

std::size_t positional_count(const Signature& sig)
{
    std::size_t n = 0;
    while (n < sig.params.size() && !sig.params[n].keyword_only) ++n;
    return n;
}

}  // namespace

void argument_error(const Where& w, PyObject* obj, const char* expected)
{
    throw py::type_error(w.sig.name + "(): argument '" + w.sig.params[w.index].name + "' (position " + std::to_string(w.index + 1) +
                         ") must be " + expected + ", not " + Py_TYPE(obj)->tp_name);
}

void collect(const Signature& sig, PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames, Slots& out)
{
    const std::size_t positional = positional_count(sig);
    std::size_t next = 0;
    if (self != nullptr) out.at[next++] = self;
    for (Py_ssize_t i = 0; i < nargs; ++i) {
        if (next >= positional) {
            throw py::type_error(sig.name + "() takes " + std::to_string(positional) + " positional arguments but " +
                                 std::to_string(static_cast<std::size_t>(nargs) + (self ? 1 : 0)) + " were given");
        }
        if (sig.params[next].variadic) {   // x.view(2, 8): the rest of them, as one tuple
            out.variadic = py::reinterpret_steal<py::object>(PyTuple_New(nargs - i));
            for (Py_ssize_t j = i; j < nargs; ++j) {
                Py_INCREF(args[j]);
                PyTuple_SET_ITEM(out.variadic.ptr(), j - i, args[j]);
            }
            out.at[next++] = out.variadic.ptr();
            break;
        }
        out.at[next++] = args[i];
    }
    const Py_ssize_t keywords = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < keywords; ++k) {
        const std::size_t i = keyword_index(sig, PyTuple_GET_ITEM(kwnames, k));
        if (out.at[i] != nullptr) throw py::type_error(sig.name + "() got multiple values for argument '" + sig.params[i].name + "'");
        out.at[i] = args[nargs + k];
    }
    for (std::size_t i = 0; i < sig.params.size(); ++i) {
        if (out.at[i] != nullptr) continue;
        if (!sig.params[i].default_value) {
            throw py::type_error(sig.name + "() missing required argument '" + sig.params[i].name + "' (position " + std::to_string(i + 1) + ")");
        }
        out.at[i] = sig.params[i].default_value.ptr();
    }
}

void check_dtypes(const Signature& sig, const Slots& slots)
{
    const PyTensor* t = tensor_of(slots.at[0]);
    if (sig.dtypes == Dtypes::floating && t && !t->value.is_floating_point()) {
        throw std::runtime_error("\"" + sig.name + "\" not implemented for '" + scalar_type_name(t->dtype()) +
                                 "': it takes float32 or float64 tensors (convert with .float())");
    }
}

// ---- conversions ----------------------------------------------------------------------------------------
double Arg<double>::get(PyObject* o, const Where& w)
{
    if (PyFloat_CheckExact(o)) return PyFloat_AS_DOUBLE(o);
    if (const PyTensor* t = tensor_of(o)) {
        if (t->numel() != 1) argument_error(w, o, "a number (a tensor of one element)");
        return t->value.item<double>();
    }
    if (!PyNumber_Check(o) || PyUnicode_Check(o)) argument_error(w, o, "a number");
    const double v = PyFloat_AsDouble(o);
    if (v == -1.0 && PyErr_Occurred()) throw py::error_already_set();
    return v;
}

std::int64_t Arg<std::int64_t>::get(PyObject* o, const Where& w)
{
    if (PyLong_Check(o)) {
        const long long v = PyLong_AsLongLong(o);
        if (v == -1 && PyErr_Occurred()) throw py::error_already_set();   // OverflowError past int64
        return v;
    }
    if (!PyIndex_Check(o)) argument_error(w, o, "int");
    return index_value(o);
}

bool Arg<bool>::get(PyObject* o, const Where& w)
{
    if (PyBool_Check(o) || PyLong_Check(o)) return PyObject_IsTrue(o) == 1;
    if (std::strcmp(Py_TYPE(o)->tp_name, "numpy.bool_") == 0) return PyObject_IsTrue(o) == 1;
    argument_error(w, o, "bool");
}

std::string Arg<std::string>::get(PyObject* o, const Where& w)
{
    if (!PyUnicode_Check(o)) argument_error(w, o, "str");
    return PyUnicode_AsUTF8(o);
}

std::vector<std::int64_t> Arg<std::vector<std::int64_t>>::get(PyObject* o, const Where& w)
{
    if (!PyTuple_Check(o) && !PyList_Check(o)) return {Arg<std::int64_t>::get(o, w)};
    py::sequence items = py::reinterpret_borrow<py::sequence>(o);
    if (items.size() == 1 && (PyTuple_Check(items[0].ptr()) || PyList_Check(items[0].ptr()))) {   // view((2, 8)) as view(2, 8)
        return get(items[0].ptr(), w);
    }
    std::vector<std::int64_t> out;
    out.reserve(items.size());
    for (py::handle item : items) {
        if (!PyIndex_Check(item.ptr())) argument_error(w, item.ptr(), "a tuple of ints");
        out.push_back(index_value(item));
    }
    return out;
}

std::vector<Tensor> Arg<std::vector<Tensor>>::get(PyObject* o, const Where& w)
{
    if (!PyTuple_Check(o) && !PyList_Check(o)) argument_error(w, o, "a tuple or list of Tensors");
    std::vector<Tensor> out;
    for (py::handle item : py::reinterpret_borrow<py::sequence>(o)) {
        const PyTensor* t = tensor_of(item);
        if (t == nullptr) argument_error(w, item.ptr(), "a tuple or list of Tensors");
        out.push_back(t->value);
    }
    return out;
}

PyObject* to_python(std::vector<Tensor> pieces)
{
    py::tuple out(pieces.size());
    for (std::size_t i = 0; i < pieces.size(); ++i) out[i] = py::reinterpret_steal<py::object>(new_tensor(std::move(pieces[i])));
    return out.release().ptr();
}

// ---- installation -------------------------------------------------------------------------------------
void install(py::module_& m, std::span<const Def> table)
{
    // leaked on purpose: the generated functions read their signatures for as long as the process runs,
    // CPython keeps pointers to the definitions, and Python objects must not be freed after the interpreter
    static auto& signatures = *new std::deque<Signature>;
    static auto& defs = *new std::deque<PyMethodDef>;
    py::handle type(reinterpret_cast<PyObject*>(tensor_type));
    for (const Def& line : table) {
        const Signature& sig = signatures.emplace_back(parse_signature(line.signature, line.dtypes));
        *line.parsed = &sig;
        const int flags = METH_FASTCALL | METH_KEYWORDS;
        if (line.door != Door::function) {
            PyMethodDef& def = defs.emplace_back(PyMethodDef{sig.name.c_str(), reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(line.method)),
                                                             flags, sig.text.c_str()});
            py::object descr = py::reinterpret_steal<py::object>(PyDescr_NewMethod(tensor_type, &def));
            if (!descr) throw py::error_already_set();
            type.attr(sig.name.c_str()) = descr;   // setattr on a type: a dunder name also sets its slot
        }
        if (line.door != Door::method) {
            PyMethodDef& def = defs.emplace_back(PyMethodDef{sig.name.c_str(), reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(line.function)),
                                                             flags, sig.text.c_str()});
            py::object fn = py::reinterpret_steal<py::object>(PyCFunction_NewEx(&def, nullptr, m.attr("__name__").ptr()));
            if (!fn) throw py::error_already_set();
            m.attr(sig.name.c_str()) = fn;
        }
    }
}

}  // namespace xgrad::python
