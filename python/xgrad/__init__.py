"""xgrad from Python: PyTorch's everyday API over xgrad's C++ tensors, autograd, nn and optim.

    import xgrad as torch
    import xgrad.nn as nn
    tok, pos = nn.Embedding(65, 64), nn.Embedding(64, 64)
    h = tok(torch.tensor([[1, 0, 2, 2, 3]])) + pos(torch.arange(5))     # (1, 5, 64)

Tensors have torch's dtypes: float32 (the default) and float64 with autograd, int64 (``xgrad.long``:
ids), int32, int16, int8, uint8 and bool (masks), with float16 and bfloat16 as storage types. Everything
runs on the CPU; ``device="cpu"`` is accepted so that ported code runs. Tensors share storage as
PyTorch's do: ``view``, ``reshape`` (when the strides allow), ``transpose``, basic indexing, ``expand``,
``detach()`` and ``.data`` are views; in-place ops write through them, and a version counter makes
``backward()`` refuse values written after the forward used them. ``t.numpy()`` and
``torch.from_numpy`` share memory both ways.
"""
import contextlib as _contextlib
import functools as _functools
import builtins as _builtins
import collections as _collections
import math as _math

import numpy as _np

from . import _xgrad
from ._xgrad import (Tensor, dtype, manual_seed, set_num_threads, get_num_threads, is_grad_enabled,
                     exp, log, sqrt, rsqrt, tanh, sin, cos, sigmoid, relu, neg, square, abs, clamp, clip, masked_fill, where,
                     add, sub, mul, div, pow, eq, ne, lt, le, gt, ge, matmul, mm, bmm,
                     reshape, permute, transpose, unsqueeze, squeeze, flatten, clone, cat, concat, concatenate, stack,
                     narrow, diagonal, as_strided,
                     split, chunk, select, tril, triu, sum, mean, max, min, argmax, argmin, var, std, softmax, log_softmax, topk,
                     multinomial, empty_cache, floor_divide, remainder, bitwise_and, bitwise_or, bitwise_xor, logical_and,
                     logical_or, logical_xor, logical_not, unbind, numel, detach, t, unflatten, flip, roll, gather, maximum, minimum)
from ._repr import tensor_repr as _tensor_repr

dtype.__repr__ = dtype.__str__ = lambda self: "xgrad." + self.name
float32 = float = dtype.float32
float64 = double = dtype.float64
float16 = half = dtype.float16   # storage types: converted, printed, indexed; ops compute in float32/float64
bfloat16 = dtype.bfloat16
int64 = long = dtype.int64
int32 = int = dtype.int32
int16 = short = dtype.int16
int8 = dtype.int8
uint8 = dtype.uint8
bool = dtype.bool          # as torch.bool (it shadows the builtin inside this module only)
_builtin_bool = __builtins__["bool"] if isinstance(__builtins__, dict) else __builtins__.bool


class device:
    """torch.device for the one device xgrad has: device("cpu")."""

    def __init__(self, type="cpu", index=None):
        _xgrad._check_device(type if not isinstance(type, device) else type.type)
        self.type, self.index = "cpu", None

    def __repr__(self):
        return "device(type='cpu')"

    def __str__(self):
        return "cpu"

    def __eq__(self, other):
        return isinstance(other, (device, str)) and str(other) == "cpu"

    def __hash__(self):
        return hash("cpu")


class _Cuda:
    """torch.cuda, as far as CPU-only scripts ask it: nothing is available."""

    @staticmethod
    def is_available():
        return False

    @staticmethod
    def device_count():
        return 0

    @staticmethod
    def manual_seed(seed):
        pass

    manual_seed_all = manual_seed

    @staticmethod
    def is_bf16_supported():
        return False


cuda = _Cuda()


# ---- creation ------------------------------------------------------------------------------------
def _finish(t, dtype, device, requires_grad):
    _xgrad._check_device(device)
    if dtype is not None and t.dtype != _as_dtype(dtype):
        t = t._to_dtype(dtype)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _as_dtype(d):
    return _xgrad._dtype(d) if d is not None else None


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor holding a copy of data (a number, nested lists, a numpy array or a tensor)."""
    t = _xgrad._tensor(data.detach() if isinstance(data, Tensor) else data, dtype)
    if isinstance(data, Tensor) and t._is_same(data):
        t = t.clone()
    return _finish(t, None, device, requires_grad)


as_tensor = tensor


def from_numpy(array):
    """The array's memory shared as a tensor of its dtype (its strides kept; writes show through both ways,
    and the array stays alive as long as the tensor), as torch.from_numpy; a dtype torch lacks (uint16,
    complex, ...) is a TypeError."""
    if not isinstance(array, _np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(array).__name__})")
    return _xgrad._from_numpy(array)


def _creator(make_float, name):
    def create(*size, dtype=None, device=None, requires_grad=False, out=None, layout=None, pin_memory=False):
        shape = _xgrad._shape(name, *size)
        return _finish(make_float(shape, dtype), None, device, requires_grad)
    create.__name__ = name
    return create


zeros = _creator(lambda s, d: _xgrad._zeros(s, _as_dtype(d) or get_default_dtype()), "zeros")
empty = _creator(lambda s, d: _xgrad._zeros(s, _as_dtype(d) or get_default_dtype()), "empty")
ones = _creator(lambda s, d: _xgrad._full(s, 1.0, _as_dtype(d) or get_default_dtype()), "ones")


def get_default_dtype():
    """The dtype of a float tensor made without one (zeros, ones, full, arange of floats, Python floats): float32
    unless set."""
    return _xgrad._get_default_dtype()


def set_default_dtype(d):
    """As torch.set_default_dtype: float32 or float64, which factories, float arange and Python floats then make."""
    if _as_dtype(d) not in (float32, float64):
        raise TypeError(f"only floating-point types are supported as the default type, and of those float32 and "
                        f"float64; got {d!r}")
    _xgrad._set_default_dtype(_as_dtype(d))


def _random(make, name):
    def create(*size, generator=None, dtype=None, device=None, requires_grad=False, out=None, layout=None,
               pin_memory=False):
        dtype = _as_dtype(dtype) or get_default_dtype()
        if not dtype.is_floating_point:
            raise RuntimeError(f"{name}(): expected a floating-point dtype, got {dtype!r}")
        return _finish(make(_xgrad._shape(name, *size), generator, dtype), None, device, requires_grad)   # float64 draws in double
    create.__name__ = name
    return create


randn = _random(_xgrad._randn, "randn")
rand = _random(_xgrad._rand, "rand")


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    shape = _xgrad._shape("full", size)
    if dtype is None:
        dtype = long if isinstance(fill_value, _builtins.int) and not isinstance(fill_value, _builtin_bool) else get_default_dtype()
    return _finish(_xgrad._full(shape, fill_value, _as_dtype(dtype)), None, device, requires_grad)


def randint(low, high=None, size=None, dtype=None, device=None, requires_grad=False, generator=None):
    """Uniform integers in [low, high) (or [0, low) with one bound), as int64: torch.randint."""
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint() missing required argument 'size'")
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    t = _xgrad._randint(_builtins.int(low), _builtins.int(high), _xgrad._shape("randint", size), generator)
    return _finish(t, dtype, device, requires_grad)


def randperm(n, generator=None, dtype=None, device=None, requires_grad=False):
    return _finish(_xgrad._randperm(_builtins.int(n), generator), dtype, device, requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    return _finish(_xgrad._tensor(_np.linspace(start, end, _builtins.int(steps), dtype=_np.float32), None), dtype, device,
                   requires_grad)


def log10(input):
    return log(input) * (1.0 / _math.log(10.0))


def log2(input):
    return log(input) * (1.0 / _math.log(2.0))


def log1p(input):
    return log(input + 1.0)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    """[start, start + step, ...) below end, as torch.arange: int64 when all bounds are ints."""
    if end is None:
        start, end = 0, start
    bounds = [b.item() if isinstance(b, Tensor) else b for b in (start, end, step)]
    if dtype is None:
        dtype = long if _builtins.all(isinstance(b, _builtins.int) for b in bounds) else get_default_dtype()
    if _as_dtype(dtype) == _as_dtype(long):   # as torch: integral bounds first, toward zero (arange(4.2) has 4)
        bounds = [_builtins.int(b) for b in bounds]
    return _finish(_xgrad._arange(*[_builtin_float(b) for b in bounds], _as_dtype(dtype)), None, device, requires_grad)


_builtin_float = __builtins__["float"] if isinstance(__builtins__, dict) else __builtins__.float


def _like(make):
    def like(input, dtype=None, device=None, requires_grad=False, **unused):
        return make(*input.shape, dtype=dtype if dtype is not None else input.dtype, requires_grad=requires_grad)
    return like


zeros_like = _like(zeros)
ones_like = _like(ones)
empty_like = _like(empty)
randn_like = _like(randn)
rand_like = _like(rand)


def full_like(input, fill_value, dtype=None, device=None, requires_grad=False):
    return full(input.shape, fill_value, dtype=dtype if dtype is not None else input.dtype, requires_grad=requires_grad)


def is_tensor(obj):
    return isinstance(obj, Tensor)


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    return _builtin_bool(_np.allclose(input.numpy(force=True), _np.asarray(other.numpy(force=True)
                                      if isinstance(other, Tensor) else other), rtol, atol, equal_nan))


def equal(input, other):
    return input.shape == other.shape and _builtin_bool((input == other).all())


# ---- grad mode ------------------------------------------------------------------------------------
class no_grad(_contextlib.ContextDecorator):
    """Records no graph inside: `with xgrad.no_grad():`, or `@xgrad.no_grad()` on a function."""

    def __enter__(self):
        guard = _xgrad._NoGrad()
        guard.enter()
        self._guards = getattr(self, "_guards", []) + [guard]   # re-entrant: a decorated recursive call
        return None

    def __exit__(self, *exc):
        self._guards.pop().exit()
        return False


inference_mode = no_grad


class set_grad_enabled(_contextlib.ContextDecorator):
    """set_grad_enabled(False) as no_grad; set_grad_enabled(True) keeps the current mode."""

    def __init__(self, mode):
        self._mode = mode
        self._guard = None

    def __enter__(self):
        if not self._mode:
            self._guard = _xgrad._NoGrad()
            self._guard.enter()

    def __exit__(self, *exc):
        if self._guard is not None:
            self._guard.exit()
        return False


# ---- saving --------------------------------------------------------------------------------------
def save(obj, f, metadata=None):
    """Writes a {name: Tensor} dict (a state_dict) as a safetensors file, atomically."""
    if hasattr(obj, "state_dict") and not isinstance(obj, dict):
        obj = obj.state_dict()
    if not isinstance(obj, dict) or not _builtins.all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items()):
        raise TypeError("xgrad.save: expected a dict of str -> Tensor (a state_dict), got " + type(obj).__name__)
    _xgrad._save_safetensors(str(f), list(obj.items()), dict(metadata or {}))


def load(f, map_location=None, weights_only=None):
    """The {name: Tensor} dict of a safetensors file, as xgrad.save (or nn::save in C++) writes it."""
    named, _ = _xgrad._load_safetensors(str(f))
    return dict(named)


# ---- Tensor methods written in Python ------------------------------------------------------------
def _to(self, *args, **kwargs):
    """x.to("cpu"), x.to(xgrad.long), x.to(other), x.to(device, dtype)."""
    target = kwargs.get("dtype")
    for a in list(args) + [kwargs.get("device")]:
        if isinstance(a, dtype):
            target = a
        elif isinstance(a, Tensor):
            target = a.dtype
        elif a is not None:
            _xgrad._check_device(a)
    return self if target is None or target == self.dtype else self._to_dtype(target)


def _converter(d):   # x.float(), x.long() ...: x itself when it has that dtype
    return lambda self: self if self.dtype == d else self._to_dtype(d)


def _iter(self):
    if self.dim() == 0:
        raise TypeError("iteration over a 0-d tensor")
    return (self[i] for i in range(len(self)))


def _scalar_of(self, kind):
    if self.numel() != 1:
        raise RuntimeError(f"a Tensor with {self.numel()} elements cannot be converted to Scalar")
    return kind(self.item())


def _truth(self):
    if self.numel() != 1:
        raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
    return _builtin_bool(self.item())


def _index(self):
    if self.dtype.is_floating_point or self.numel() != 1:
        raise TypeError("only integer tensors of a single element can be converted to an index")
    return _builtins.int(self.item())


def _all(self, dim=None):
    return _xgrad._tensor(_np.all(self.numpy(force=True), axis=dim), None)


def _any(self, dim=None):
    return _xgrad._tensor(_np.any(self.numpy(force=True), axis=dim), None)


_Histogram = _collections.namedtuple("histogram", ["hist", "bin_edges"])


def histogram(input, bins=100, *, range=None, weight=None, density=False):   # noqa: A002 (torch's names)
    """torch.histogram: (hist, bin_edges) of the values, as float tensors (numpy counts them)."""
    values = input.detach().numpy().ravel()
    w = None if weight is None else weight.detach().numpy().ravel()
    hist, edges = _np.histogram(values, bins=bins, range=range, weights=w, density=density)
    return _Histogram(tensor(hist.astype(_np.float32)), tensor(edges.astype(_np.float32)))


def all(input, dim=None):     # noqa: A001 (torch.all; the module uses _builtins.all)
    return _all(input, dim)


def any(input, dim=None):     # noqa: A001 (torch.any)
    return _any(input, dim)


def _norm(self, p=2, dim=None, keepdim=False):
    if p == 2:
        return (self * self).sum(dim=dim, keepdim=keepdim).sqrt()
    return (self.abs() ** p).sum(dim=dim, keepdim=keepdim) ** (1.0 / p)


class _Storage:
    """What x.untyped_storage() (and 1.13's x.storage()) tells of a tensor's storage: where it starts,
    the same for every tensor that shares it."""

    def __init__(self, tensor):
        self._ptr = tensor._storage_ptr()

    def data_ptr(self):
        return self._ptr


def _type_as(self, other):
    return _to(self, other.dtype)


def _grad_fn(self):
    name = self._op_name
    if not name:
        return None
    return _GradFn(name, self.dim())


# xgrad's op names against the class names of PyTorch 1.13's grad_fn where they differ (printed by
# torch for the same expressions); by the result's rank where torch's op depends on it. Any other op
# is named from its own name: "gelu" -> GeluBackward0; indexing records torch's names (select,
# slice, unsqueeze, alias, index). Compositions (x.clamp, x.abs, ...) read as the last xgrad op they
# ran.
_TORCH_GRAD_FN = {
    "add_scalar": "AddBackward0", "mul_scalar": "MulBackward0", "rsub_scalar": "RsubBackward1",
    "rdiv_scalar": "MulBackward0", "reshape": "UnsafeViewBackward0",
    "concat": "CatBackward0", "cross_entropy": "NllLossBackward0", "embedding_lookup": "EmbeddingBackward0",
    "layer_norm": "NativeLayerNormBackward0", "dropout": "MulBackward0", "clamp": "ClampBackward1",
    "fill_": "FillBackward2", "copy_": "torch::autograd::CopyBackwards", "copy_slices": "torch::autograd::CopySlices",
    "squeeze_dim": "SqueezeBackward1", "unbind": "UnbindBackward0",
}
_TORCH_GRAD_FN_BY_RANK = {   # op: its name by the rank of the result
    "sum": lambda d: "SumBackward0" if d == 0 else "SumBackward1",
    "mean": lambda d: "MeanBackward0" if d == 0 else "MeanBackward1",
    "max": lambda d: "MaxBackward1" if d == 0 else "MaxBackward0",
    "min": lambda d: "MinBackward1" if d == 0 else "MinBackward0",
    "matmul": lambda d: "MmBackward0" if d == 2 else "UnsafeViewBackward0",
    "linear": lambda d: "AddmmBackward0" if d == 2 else "UnsafeViewBackward0",
}


class _GradFn:
    def __init__(self, op, dim=None):
        self._op = op
        self._dim = dim

    def name(self):
        if self._op in _TORCH_GRAD_FN:
            return _TORCH_GRAD_FN[self._op]
        if self._op in _TORCH_GRAD_FN_BY_RANK and self._dim is not None:
            return _TORCH_GRAD_FN_BY_RANK[self._op](self._dim)
        return "".join(part.capitalize() for part in self._op.split("_")) + "Backward0"

    def __repr__(self):
        return f"<{self.name()}>"


def _rebuild_tensor(cls, values, requires_grad, state):
    """What pickle and copy rebuild a tensor (or a Parameter, a Buffer) from: its class, a copy of its
    values, requires_grad, and the attributes of a subclass."""
    t = tensor(values)
    if cls is not Tensor:
        obj = cls.__new__(cls)
        Tensor.__init__(obj, t)
        obj.__dict__.update(state)
        t = obj
    return t.requires_grad_(requires_grad)


def _reduce_ex(self, protocol=None):
    # without it pickle's protocols 0 and 1 went through object.__reduce_ex__, which cannot make a
    # pybind11 object and aborted the interpreter
    return (_rebuild_tensor, (type(self), self.detach().numpy().copy(), self.requires_grad, getattr(self, "__dict__", {})))


for _name, _fn in {
    "__reduce_ex__": _reduce_ex, "__reduce__": lambda self: _reduce_ex(self),
    "to": _to, "cpu": lambda self: self, "cuda": lambda self, *a, **k: _to(self, "cuda"),
    "float": _converter(float32), "double": _converter(float64), "long": _converter(long), "bool": _converter(bool),
    "int": _converter(int32), "half": _converter(float16),
    "tolist": lambda self: (self.float() if self.dtype == bfloat16 else self).numpy(force=True).tolist(),
    "__iter__": _iter, "__bool__": _truth, "__float__": lambda self: _scalar_of(self, _builtin_float),
    "__int__": lambda self: _scalar_of(self, _builtins.int), "__index__": _index,
    "__iadd__": lambda self, other: self.add_(other), "__isub__": lambda self, other: self.sub_(other),
    "__imul__": lambda self, other: self.mul_(other), "__itruediv__": lambda self, other: self.div_(other),
    "__repr__": _tensor_repr, "__array__": lambda self, dtype=None: _np.asarray(self.numpy(), dtype=dtype),
    "log10": log10, "log2": log2, "log1p": log1p, "nelement": lambda self: self.numel(),
    "all": _all, "any": _any, "norm": _norm, "type_as": _type_as,
    "untyped_storage": lambda self: _Storage(self), "storage": lambda self: _Storage(self),
    "is_floating_point": lambda self: self.dtype.is_floating_point, "element_size": lambda self: self.dtype.itemsize,
}.items():
    setattr(Tensor, _name, _fn)
Tensor.grad_fn = property(_grad_fn)
Tensor.__format__ = lambda self, spec: format(self.item(), spec) if self.dim() == 0 else repr(self)

from . import autograd  # noqa: E402
from . import nn  # noqa: E402
from . import optim  # noqa: E402
from ._xgrad import text  # noqa: E402
from ._xgrad.text import Generator  # noqa: E402

__all__ = [n for n in dir() if not n.startswith("_")]
