"""Differential fuzzing of xgrad against PyTorch 1.13: hypothesis draws calls of every public op (shapes of
rank 0-4 with empty dims and broadcasting, dims in and out of range, float32/int64/bool and, rarely,
float64; values with NaN, +-inf, -0.0, huge, tiny and denormal ones), runs each on both libraries and
compares: both raise or neither (and the same kind of exception), result dtypes, shapes, values, and the
gradients of (out * w).sum() for random weights w.

    XGRAD_FUZZ_EXAMPLES=N   examples per op (default 25: this file in about a minute on 2 cores)
    XGRAD_FUZZ_SEED=S       another run's cases (default 0: the same cases in every CI run)
    XGRAD_FUZZ_OPS=a,b      only these ops (the table's names, e.g. Tensor.add_,xgrad.cat)
    XGRAD_FUZZ_COLLECT=F    append each disagreement to F (JSON lines) and go on, instead of failing
    XGRAD_FUZZ_STATS=F      append the cases run per op to F (JSON lines)

A long run: XGRAD_FUZZ_EXAMPLES=600 XGRAD_FUZZ_SEED=$RANDOM python3 -m pytest -q test_differential.py.
Each disagreement found is kept as a fixed case in differential_regressions.py (with torch's answer
stored, so it runs without torch); the fuzzer passes over the differences listed there as known.
"""
import collections
import json
import math
import operator
import os
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import xgrad
import xgrad.nn.functional  # noqa: F401 (xgrad.nn.functional, as torch.nn.functional)

try:
    import torch
    import torch.nn.functional  # noqa: F401
except ImportError:   # the fuzzer needs torch; the stored regression cases do not
    torch = None

import differential_regressions as R

# torch's deprecation and broadcasting warnings are about the calls drawn, not about xgrad
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
needs_torch = pytest.mark.skipif(torch is None, reason="the differential fuzzer compares with PyTorch, which is "
                                                       "not installed (apt-get install python3-torch)")
EXAMPLES = int(os.environ.get("XGRAD_FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("XGRAD_FUZZ_SEED", "0"))
COLLECT = os.environ.get("XGRAD_FUZZ_COLLECT")
COUNTS = collections.Counter()     # cases run, by op
FOUND = collections.Counter()      # disagreements found, by op and aspect (known ones included)

inf, nan = math.inf, math.nan


# ---- values ------------------------------------------------------------------------------------------
NC, DT, Const = R.NC, R.DT, R.Const   # defined there, so that the stored cases can use them without torch


XGRAD_DTYPES = {"float32", "float64", "int64", "int32", "int16", "int8", "uint8", "bool"}   # float16/bfloat16: storage only
SPECIAL = np.array([nan, inf, -inf, 0.0, -0.0, 1e38, -1e38, 3.4e38, 1e-38, -1e-38, 1e-45, -1e-45, 3e-39, 1.0,
                    -1.0, 0.5, 88.5, -104.0])
MODES = ["normal", "normal", "special", "special", "ints", "tiny", "huge"]


def make_array(shape, dtype, mode, s):
    rng = np.random.default_rng(s)
    if dtype == "bool":
        return np.asarray(rng.random(shape) < 0.5)
    if dtype == "int64":
        v = rng.integers(-4, 5, shape)
        if mode == "special":   # wrap-around and beyond float32's exact integers
            big = rng.choice(np.array([2 ** 31, -2 ** 31, 2 ** 24 + 1, 2 ** 62, -2 ** 63, 0]), shape)
            v = np.where(rng.random(shape) < 0.3, big, v)
        return np.asarray(v, dtype=np.int64)
    if mode == "normal":
        v = rng.standard_normal(shape)
    elif mode == "ints":     # ties, exact zeros, integral powers
        v = rng.integers(-3, 4, shape).astype(np.float64)
    elif mode == "tiny":
        v = rng.choice(np.array([1e-38, -1e-38, 1e-45, -1e-45, 3e-39, 0.0, -0.0, 1e-20, 1e-7]), shape)
    elif mode == "huge":
        v = rng.choice(np.array([1e38, -1e38, 3e38, 1e20, -1e20, 88.5, -88.5, 1e4, 2.0]), shape)
    else:
        v = np.where(rng.random(shape) < 0.4, rng.choice(SPECIAL, shape), rng.standard_normal(shape))
    return np.asarray(v, dtype=np.dtype(dtype))


SIDE = st.integers(0, 9).map(lambda i: 0 if i == 0 else 1 + (i - 1) % 4)   # 0-4, an empty dim one time in ten


def shapes(lo=0, hi=4, side=SIDE):
    return st.lists(side, min_size=lo, max_size=hi).map(tuple)


FLOAT = ("float32",)
MOSTLY_FLOAT = ("float32",) * 7 + ("int64", "bool", "float64")
NUMERIC = ("float32",) * 5 + ("int64",) * 2 + ("float64",)


@st.composite
def arrays(draw, shape=None, dtypes=MOSTLY_FLOAT, lo=0, hi=4, mode=None, noncontig=True):
    shape = draw(shapes(lo, hi)) if shape is None else tuple(shape)
    dtype = draw(st.sampled_from(dtypes))
    a = make_array(shape, dtype, mode or draw(st.sampled_from(MODES)), draw(st.integers(0, 2 ** 32 - 1)))
    if noncontig and dtype == "float32" and a.ndim >= 2 and draw(st.integers(0, 4)) == 0:
        return NC(a)
    return a


def ids(shape, lo, hi):
    return st.builds(lambda s: np.asarray(np.random.default_rng(s).integers(lo, max(hi, lo + 1), shape), np.int64),
                     st.integers(0, 2 ** 32 - 1))


def dims(rank, extra=1):
    """A dim for a tensor of `rank`: valid ones, and `extra` out of range on each side."""
    r = max(rank, 1)
    return st.integers(-r - extra, r - 1 + extra)


SCALARS = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.0, 0.5, -2.5, 3.0, nan, inf, -inf, 1e38, 1e-38, 1e300, 3, 0, -2, 1,
                     True, False, 2 ** 40, 10 ** 20]),
    st.floats(-10, 10, width=32), st.integers(-5, 5))


@st.composite
def broadcast_shape(draw, shape):
    """A shape that broadcasts with `shape` (one time in twelve one that does not)."""
    shape = list(shape)
    if draw(st.integers(0, 11)) == 0 and shape:
        i = draw(st.integers(0, len(shape) - 1))
        shape[i] = shape[i] + 2 if shape[i] > 1 else 3 - shape[i]   # neither 1 nor the same
        return tuple(shape)
    shape = shape[draw(st.integers(0, len(shape))):] if draw(st.booleans()) else shape
    shape = [1 if draw(st.integers(0, 2)) == 0 else d for d in shape]
    if len(shape) < 4 and draw(st.integers(0, 4)) == 0:
        shape = [draw(st.sampled_from([1, 2]))] + shape
    return tuple(shape)


@st.composite
def pair(draw, dtypes=MOSTLY_FLOAT, scalar=True, dtypes2=None):
    """(x, y): y broadcasts with x (either way round), or is a Python number."""
    x = draw(arrays(dtypes=dtypes))
    if scalar and draw(st.integers(0, 3)) == 0:
        return x, draw(SCALARS)
    other = draw(broadcast_shape(x.shape))
    y = draw(arrays(shape=other, dtypes=dtypes2 or dtypes))
    return (x, y) if draw(st.booleans()) else (y, x)


def case(args=(), kwargs=None):
    return st.tuples(st.just(tuple(args)), st.just(dict(kwargs or {})))


def C(*parts, **kw):
    """A strategy for (args, kwargs) from strategies of each argument (kwargs' None values left out)."""
    return st.tuples(st.tuples(*parts), st.fixed_dictionaries(kw)).map(
        lambda ak: (ak[0], {k: v for k, v in ak[1].items() if v is not _OMIT}))


_OMIT = object()


def maybe(strategy, p_absent=2):
    """An optional argument: left out (a keyword not passed) in p_absent of 4 draws."""
    return st.integers(0, 3).flatmap(lambda i: st.just(_OMIT) if i < p_absent else strategy)


# ---- the op table ------------------------------------------------------------------------------------
class Op:
    def __init__(self, name, cases, call, grad=True, flags=(), covers=None):
        self.name, self.cases, self.call, self.grad = name, cases, call, grad
        self.flags = frozenset(flags)   # random: values not compared; order: float32 rounding depends on the
        self.covers = covers if covers is not None else [name]   # order of a sum (compare with a float64 twin)


OPS = {}


def op(name, cases, call, **kw):
    OPS[name] = Op(name, cases, call, **kw)


TORCH_NAMES = {"concatenate": "cat"}   # torch 1.13 has no torch.concatenate


def fn(L, name):
    return getattr(L, TORCH_NAMES.get(name, name) if L is torch else name)


def F(L):
    return L.nn.functional


def method(name):
    return lambda L, x, *a, **k: getattr(x, name)(*a, **k)


def function(name):
    return lambda L, *a, **k: fn(L, name)(*a, **k)


def both(name, cases, **kw):
    """xgrad.name(x, ...) and x.name(...)"""
    op("xgrad." + name, cases, function(name), **kw)
    op("Tensor." + name, cases, method(name), **kw)


any_x = C(arrays())

# element-wise maps: torch's result dtype rules (ints to float, or kept) are part of what is compared
for _n in ["exp", "log", "sqrt", "rsqrt", "tanh", "sin", "cos", "sigmoid", "relu", "neg", "square", "abs", "log10",
           "log2", "log1p"]:
    both(_n, any_x)
for _n in ["relu", "sigmoid", "tanh", "silu"]:
    op("F." + _n, any_x, (lambda n: lambda L, x: getattr(F(L), n)(x))(_n))
op("F.gelu", C(arrays(), approximate=maybe(st.sampled_from(["none", "tanh", "bogus"]))),
   lambda L, x, **k: F(L).gelu(x, **k))
op("F.softplus", C(arrays(), beta=maybe(st.sampled_from([1.0, 2.0, 0.5, -1.0, 0.0])),
                   threshold=maybe(st.sampled_from([20.0, 1.0, 0.0, -5.0]))), lambda L, x, **k: F(L).softplus(x, **k))
for _n in ["__neg__", "__pos__", "__invert__"]:
    op("Tensor." + _n, any_x, method(_n))
op("Tensor.__abs__", any_x, lambda L, x: abs(x), covers=[])

clamp_bound = st.one_of(st.none(), st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, nan, inf, -inf, 1e38, 2]),
                        st.floats(-3, 3, width=32))
clamp_case = C(arrays(), min=maybe(clamp_bound, 1), max=maybe(clamp_bound, 1))
for _n in ["clamp", "clip"]:
    both(_n, clamp_case)

# binary arithmetic and comparisons: tensors that broadcast (or not), Python numbers
BINARY = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": operator.truediv,
          "floordiv": operator.floordiv, "mod": operator.mod, "pow": operator.pow, "eq": operator.eq,
          "ne": operator.ne, "lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge,
          "and": operator.and_, "or": operator.or_, "xor": operator.xor}
for _n, _f in BINARY.items():
    op(f"Tensor.__{_n}__", C(pair()).map(lambda ak: (ak[0][0], {})), (lambda f: lambda L, x, y: f(x, y))(_f))
    if _n in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "and", "or", "xor"):   # number OP tensor
        op(f"Tensor.__r{_n}__", C(SCALARS, arrays()), (lambda f: lambda L, s, x: f(s, x))(_f))
for _n in ["add", "sub", "mul", "div", "pow", "eq", "ne", "lt", "le", "gt", "ge", "floor_divide", "remainder",
           "bitwise_and", "bitwise_or", "bitwise_xor", "logical_and", "logical_or", "logical_xor"]:
    both(_n, C(pair()).map(lambda ak: (ak[0][0], {})))
both("logical_not", any_x)
for _n in ["maximum", "minimum"]:
    both(_n, C(pair()).map(lambda ak: (ak[0][0], {})))
op("xgrad.add[alpha]", C(pair(), ).map(lambda ak: (ak[0][0], {})).flatmap(
    lambda ak: st.sampled_from([0.5, -1.0, 2, 0.0]).map(lambda a: (ak[0], {"alpha": a}))),
   lambda L, x, y, **k: L.add(x, y, **k), covers=[])
op("xgrad.pow[number, tensor]", C(SCALARS, arrays()), lambda L, s, x: L.pow(s, x), covers=[])
op("Tensor.__matmul__", None, lambda L, a, b: a @ b)   # cases below, with matmul's


@st.composite
def matmul_pair(draw, ranks=(1, 2, 3, 4)):
    ra, rb = draw(st.sampled_from(ranks)), draw(st.sampled_from(ranks))
    n, k, m = draw(SIDE), draw(SIDE), draw(SIDE)
    k2 = k if draw(st.integers(0, 9)) else k + 1   # inner sizes that differ, one time in ten
    batch = draw(shapes(0, 2))
    bb = draw(broadcast_shape(batch)) if batch else ()
    a = (k,) if ra == 1 else batch[len(batch) - min(ra - 2, len(batch)):] + (n, k) if ra > 2 else (n, k)
    b = (k2,) if rb == 1 else bb[len(bb) - min(rb - 2, len(bb)):] + (k2, m) if rb > 2 else (k2, m)
    return draw(arrays(shape=a, dtypes=NUMERIC)), draw(arrays(shape=b, dtypes=NUMERIC))


matmul_case = C(matmul_pair()).map(lambda ak: (ak[0][0], {}))
OPS["Tensor.__matmul__"].cases = matmul_case
for _n in ["matmul", "mm", "bmm"]:
    both(_n, matmul_case, flags={"order"})
OPS["Tensor.__matmul__"].flags = frozenset({"order"})
op("Tensor.__rmatmul__", matmul_case, lambda L, a, b: b.__rmatmul__(a), flags={"order"})

# in place: on a clone (so autograd runs through it), or on the leaf itself (refused when it requires grad)
target = st.sampled_from(["clone", "clone", "leaf"])


def in_place(name):
    def call(L, x, *a, _on="clone", **k):
        t = x.clone() if _on == "clone" else x
        r = getattr(t, name)(*a, **k)
        return t, r is t   # the result is the tensor itself
    return call


for _n in ["add_", "sub_", "mul_", "div_"]:
    op("Tensor." + _n, C(pair(), _on=target).map(lambda ak: (ak[0][0], ak[1])), in_place(_n))
op("Tensor.add_[alpha]", C(pair(scalar=False), _on=target, alpha=st.sampled_from([0.5, -1.0, 2, 0.0])).map(
    lambda ak: (ak[0][0], ak[1])), in_place("add_"), covers=[])
for _n, _f in {"__iadd__": operator.iadd, "__isub__": operator.isub, "__imul__": operator.imul,
               "__itruediv__": operator.itruediv}.items():
    def _call(L, x, y, _on="clone", f=_f):
        t = x.clone() if _on == "clone" else x
        r = f(t, y)
        return t, r is t
    op("Tensor." + _n, C(pair(), _on=target).map(lambda ak: (ak[0][0], ak[1])), _call)
for _n in ["exp_", "log_", "sqrt_", "tanh_", "sigmoid_", "relu_", "neg_", "zero_"]:
    op("Tensor." + _n, C(arrays(), _on=target), in_place(_n))
for _n in ["clamp_", "clip_"]:
    op("Tensor." + _n, C(arrays(), _on=target, min=maybe(clamp_bound, 1), max=maybe(clamp_bound, 1)), in_place(_n))
op("Tensor.pow_", C(arrays(), st.one_of(SCALARS, arrays(dtypes=FLOAT, hi=1)), _on=target), in_place("pow_"))
op("Tensor.fill_", C(arrays(), st.one_of(SCALARS, arrays(shape=(), dtypes=MOSTLY_FLOAT), arrays(shape=(2,))),
                     _on=target), in_place("fill_"))
op("Tensor.copy_", C(pair(scalar=False), _on=target).map(lambda ak: (ak[0][0], ak[1])), in_place("copy_"))


@st.composite
def mask_for(draw, shape, dtypes=("bool",) * 6 + ("int64", "float32")):
    return draw(arrays(shape=draw(broadcast_shape(shape)), dtypes=dtypes, noncontig=False))


@st.composite
def masked_fill_case(draw, inplace=False):
    x = draw(arrays())
    value = draw(st.one_of(SCALARS, arrays(shape=(), dtypes=MOSTLY_FLOAT), arrays(shape=(1,), dtypes=FLOAT)))
    kw = {"_on": draw(target)} if inplace else {}
    return (x, draw(mask_for(x.shape)), value), kw


both("masked_fill", masked_fill_case())
op("Tensor.masked_fill_", masked_fill_case(True), in_place("masked_fill_"))


@st.composite
def where_case(draw):
    x, y = draw(pair(scalar=False))
    cond = draw(mask_for(draw(broadcast_shape(np.broadcast_shapes(x.shape, y.shape)
                                              if _broadcasts(x.shape, y.shape) else x.shape))))
    if draw(st.integers(0, 4)) == 0:
        y = draw(SCALARS)
    return (cond, x, y), {}


def _broadcasts(*shapes):
    try:
        np.broadcast_shapes(*shapes)
        return True
    except ValueError:
        return False


op("xgrad.where", where_case(), lambda L, c, x, y: L.where(c, x, y))
op("Tensor.where", where_case(), lambda L, c, x, y: x.where(c, y))


# ---- reductions ----
@st.composite
def reduce_case(draw, tuple_dims=True, dtypes=MOSTLY_FLOAT, extra=None):
    x = draw(arrays(dtypes=dtypes))
    kw = {}
    how = draw(st.integers(0, 3))
    if how == 1 or (how == 2 and not tuple_dims):
        kw["dim"] = draw(dims(x.ndim))
    elif how == 2:
        kw["dim"] = tuple(draw(st.lists(dims(x.ndim), max_size=3)))
    if "dim" in kw and draw(st.booleans()):
        kw["keepdim"] = draw(st.booleans())
    for k, s in (extra or {}).items():
        v = draw(maybe(s))
        if v is not _OMIT:
            kw[k] = v
    return (x,), kw


for _n in ["sum", "mean"]:
    both(_n, reduce_case(), flags={"order"})
for _n in ["var", "std"]:
    op("Tensor." + _n, reduce_case(extra={"unbiased": st.booleans()}), method(_n), flags={"order"})
    op("xgrad." + _n, reduce_case(extra={"unbiased": st.booleans()}), function(_n), flags={"order"})
for _n in ["max", "min", "argmax", "argmin"]:
    both(_n, reduce_case(tuple_dims=False))
for _n in ["all", "any"]:
    both(_n, reduce_case(tuple_dims=False))
op("Tensor.norm", reduce_case(extra={"p": st.sampled_from([2, 1, 3, 2.5, inf, -inf, 0, "fro"])}), method("norm"),
   flags={"order"})


@st.composite
def dim_case(draw, dtypes=MOSTLY_FLOAT):
    x = draw(arrays(dtypes=dtypes))
    return (x, draw(dims(x.ndim))), {}


for _n in ["softmax", "log_softmax"]:
    both(_n, dim_case(), flags={"order"})
    op("F." + _n, dim_case(), (lambda n: lambda L, x, d: getattr(F(L), n)(x, d))(_n), flags={"order"})


@st.composite
def topk_case(draw):
    x = draw(arrays(dtypes=MOSTLY_FLOAT))
    d = draw(dims(x.ndim))
    size = x.shape[d] if -x.ndim <= d < x.ndim else 1
    kw = {k: draw(st.booleans()) for k in ("largest", "sorted") if draw(st.booleans())}
    return (x, draw(st.integers(-1, size + 1)), d), kw


def topk_call(L, x, k, d, _method=False, **kw):
    values, indices = x.topk(k, d, **kw) if _method else L.topk(x, k, d, **kw)
    # ties may come in either order: the indices must point at the values, not be torch's
    i = indices.numpy()
    picked = np.take_along_axis(_np_of(x), i, d) if x.dim() else _np_of(x).reshape(1)[i.reshape(-1)].reshape(i.shape)
    return values, picked, indices.dtype, tuple(indices.shape)


def _np_of(t):
    return t.detach().numpy()


op("xgrad.topk", topk_case(), topk_call, flags={"ties"})
op("Tensor.topk", topk_case(), lambda L, *a, **k: topk_call(L, *a, _method=True, **k), flags={"ties"})


# ---- shapes and views ----
@st.composite
def reshape_spec(draw, shape):
    n = int(np.prod(shape))
    if draw(st.integers(0, 7)) == 0:   # one that does not fit
        return tuple(draw(st.lists(st.integers(-2, 5), max_size=4)))
    spec = []
    rest = n
    for _ in range(draw(st.integers(0, 3))):
        f = draw(st.sampled_from([d for d in range(1, 5) if rest % d == 0] + ([0] if n == 0 else [])))
        spec.append(f)
        rest = rest // f if f else rest
    spec.append(rest if n else draw(st.integers(0, 3)))
    if draw(st.booleans()):
        spec[draw(st.integers(0, len(spec) - 1))] = -1
    return tuple(draw(st.permutations(spec)))


@st.composite
def reshape_case(draw):
    x = draw(arrays())
    return (x, draw(reshape_spec(x.shape))), {}


op("Tensor.view", reshape_case(), lambda L, x, s: x.view(*s))
op("Tensor.reshape", reshape_case(), lambda L, x, s: x.reshape(*s))
op("xgrad.reshape", reshape_case(), lambda L, x, s: L.reshape(x, s))
op("Tensor.view[tuple]", reshape_case(), lambda L, x, s: x.view(s), covers=[])


@st.composite
def perm_case(draw):
    x = draw(arrays())
    p = list(draw(st.permutations(range(x.ndim))))
    if draw(st.integers(0, 5)) == 0 and x.ndim:   # a repeated or out-of-range dim
        p[draw(st.integers(0, x.ndim - 1))] = draw(st.integers(-x.ndim - 1, x.ndim))
    elif draw(st.booleans()):
        p = [d - x.ndim if draw(st.booleans()) else d for d in p]
    return (x, tuple(p)), {}


op("Tensor.permute", perm_case(), lambda L, x, p: x.permute(*p))
op("xgrad.permute", perm_case(), lambda L, x, p: L.permute(x, p))
both("transpose", any_x.flatmap(lambda ak: C(st.just(ak[0][0]), dims(ak[0][0].ndim), dims(ak[0][0].ndim))))
op("Tensor.T", C(arrays(hi=2)), lambda L, x: x.T)   # .T of more than 2 dims is deprecated in torch
op("Tensor.mT", any_x, lambda L, x: x.mT)
op("Tensor.t", any_x, lambda L, x: x.t())
op("xgrad.t", any_x, lambda L, x: L.t(x))
both("unsqueeze", any_x.flatmap(lambda ak: C(st.just(ak[0][0]), dims(ak[0][0].ndim + 1))))
both("squeeze", any_x.flatmap(lambda ak: C(st.just(ak[0][0]), dim=maybe(dims(ak[0][0].ndim)))))
both("flatten", any_x.flatmap(lambda ak: C(st.just(ak[0][0]), start_dim=maybe(dims(ak[0][0].ndim)),
                                           end_dim=maybe(dims(ak[0][0].ndim)))))
both("clone", any_x)
op("xgrad.detach", any_x, lambda L, x: L.detach(x))
for _n in ["contiguous", "detach", "cpu", "float", "double", "long", "bool", "int", "half"]:
    op("Tensor." + _n, any_x, method(_n))
op("Tensor.data", any_x, lambda L, x: x.data)


@st.composite
def unflatten_case(draw):
    x = draw(arrays(lo=1))
    d = draw(dims(x.ndim))
    size = x.shape[d] if -x.ndim <= d < x.ndim else 1
    return (x, d, draw(reshape_spec((size,)))), {}


op("Tensor.unflatten", unflatten_case(), lambda L, x, d, s: x.unflatten(d, s))


@st.composite
def flip_case(draw):
    x = draw(arrays())
    return (x, tuple(draw(st.lists(dims(x.ndim), max_size=3)))), {}


@st.composite
def roll_case(draw):
    x = draw(arrays())
    k = draw(st.integers(0, 2))
    shifts = tuple(draw(st.integers(-7, 7)) for _ in range(max(k, 1)))
    if k == 0:
        return (x, shifts[0]), {}
    return (x, shifts, tuple(draw(dims(x.ndim)) for _ in range(k))), {}


@st.composite
def repeat_case(draw):
    x = draw(arrays(hi=3))
    return (x, tuple(draw(st.integers(0, 3)) for _ in range(max(1, x.ndim + draw(st.integers(-1, 1)))))), {}


@st.composite
def gather_case(draw):
    x = draw(arrays(lo=1, hi=3))
    d = draw(dims(x.ndim))
    axis = d % x.ndim if -x.ndim <= d < x.ndim else 0
    shape = tuple(draw(st.integers(0, 4)) if i == axis else draw(st.integers(0, s)) for i, s in enumerate(x.shape))
    bad = draw(st.integers(0, 9)) == 0   # an id out of range, one time in ten
    return (x, d, draw(ids(shape, -1 if bad else 0, x.shape[axis] + (1 if bad else 0)))), {}


op("Tensor.repeat", repeat_case(), lambda L, x, r: x.repeat(*r))
op("Tensor.gather", gather_case(), lambda L, x, d, i: x.gather(d, i))
op("xgrad.gather", gather_case(), lambda L, x, d, i: L.gather(x, d, i))
op("Tensor.flip", flip_case(), lambda L, x, d: x.flip(d))
op("xgrad.flip", flip_case(), lambda L, x, d: L.flip(x, d))
op("Tensor.roll", roll_case(), lambda L, x, *a: x.roll(*a))
op("xgrad.roll", roll_case(), lambda L, x, *a: L.roll(x, *a))
op("xgrad.unflatten", unflatten_case(), lambda L, x, d, s: L.unflatten(x, d, s))


@st.composite
def cat_case(draw, stack=False):
    x = draw(arrays(dtypes=MOSTLY_FLOAT))
    d = draw(dims(x.ndim + (1 if stack else 0)))
    parts = [x]
    for _ in range(draw(st.integers(0, 2))):
        shape = list(x.shape)
        if not stack and x.ndim and -x.ndim <= d < x.ndim:
            shape[d] = draw(SIDE)
        if draw(st.integers(0, 9)) == 0:   # a mismatch elsewhere, or another rank
            shape = list(draw(shapes()))
        parts.append(draw(arrays(shape=shape, dtypes=MOSTLY_FLOAT if draw(st.integers(0, 4)) == 0
                                 else (x.dtype.name,))))
    if draw(st.integers(0, 19)) == 0:
        parts = []
    return (parts, d) if draw(st.integers(0, 4)) else (tuple(parts), d), {}


for _n in ["cat", "concat", "concatenate"]:
    op("xgrad." + _n, cat_case(), (lambda n: lambda L, xs, d: fn(L, n)(xs, d))(_n))
op("xgrad.stack", cat_case(stack=True), lambda L, xs, d: L.stack(xs, d))


@st.composite
def split_case(draw):
    x = draw(arrays())
    d = draw(dims(x.ndim))
    size = x.shape[d] if -x.ndim <= d < x.ndim else 1
    if draw(st.booleans()):
        return (x, draw(st.integers(-1, size + 1)), d), {}
    sizes = draw(st.lists(st.integers(0, size), max_size=3))
    if draw(st.integers(0, 2)):
        sizes.append(size - sum(sizes)) if size >= sum(sizes) else None
    return (x, sizes, d), {}


both("split", split_case())
both("chunk", any_x.flatmap(lambda ak: C(st.just(ak[0][0]), st.integers(-1, 5), dims(ak[0][0].ndim))))
both("unbind", any_x.flatmap(lambda ak: C(st.just(ak[0][0]), dims(ak[0][0].ndim))))


@st.composite
def select_case(draw, narrow=False):
    x = draw(arrays())
    d = draw(dims(x.ndim))
    size = x.shape[d] if -x.ndim <= d < x.ndim else 1
    i = draw(st.integers(-size - 1, size))
    if narrow:
        return (x, d, i, draw(st.integers(-1, size + 1))), {}
    return (x, d, i), {}


both("select", select_case())
both("narrow", select_case(narrow=True))
both("diagonal", any_x.flatmap(lambda ak: C(st.just(ak[0][0]), offset=maybe(st.integers(-4, 4)),
                                            dim1=maybe(dims(ak[0][0].ndim)), dim2=maybe(dims(ak[0][0].ndim)))))
both("tril", any_x.flatmap(lambda ak: C(st.just(ak[0][0]), diagonal=maybe(st.integers(-4, 4)))))
both("triu", any_x.flatmap(lambda ak: C(st.just(ak[0][0]), diagonal=maybe(st.integers(-4, 4)))))


@st.composite
def as_strided_case(draw):
    x = draw(arrays(dtypes=("float32",) * 5 + ("int64",)))
    n = draw(st.integers(0, 3))
    size = tuple(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    stride = tuple(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    return (x, size, stride), ({"storage_offset": draw(st.integers(0, 4))} if draw(st.booleans()) else {})


both("as_strided", as_strided_case())


@st.composite
def expand_case(draw):
    x = draw(arrays())
    lead = draw(st.integers(0, 2))
    spec = [draw(st.sampled_from([1, 2])) for _ in range(lead)]
    for d in x.shape:   # keep (d or -1), or stretch a 1
        spec.append(draw(st.sampled_from([1, 2, 3, 0, -1])) if d == 1 else draw(st.sampled_from([d, d, -1])))
    if draw(st.integers(0, 9)) == 0:   # sizes that do not fit
        spec = list(draw(st.lists(st.integers(-2, 3), max_size=4)))
    return (x, tuple(spec)), {}


op("Tensor.expand", expand_case(), lambda L, x, s: x.expand(*s))
op("Tensor.expand_as", expand_case(), lambda L, x, s: x.expand_as(L.zeros(tuple(max(v, 0) for v in s))))


# ---- indexing ----
@st.composite
def index_item(draw, size):
    kind = draw(st.sampled_from(["int"] * 3 + ["slice"] * 3 + ["none", "ellipsis", "list", "long", "mask", "float"]))
    if kind == "int":
        return draw(st.integers(-size - 1, size))
    if kind == "slice":
        b = st.one_of(st.none(), st.integers(-size - 2, size + 2))
        return slice(draw(b), draw(b), draw(st.sampled_from([None, None, 1, 2, 3, 0, -1])))
    if kind == "none":
        return None
    if kind == "ellipsis":
        return Ellipsis
    if kind == "list":
        return draw(st.lists(st.integers(-size, max(size - 1, 0) + (1 if draw(st.integers(0, 9)) == 0 else 0)),
                             max_size=3))
    if kind == "long":
        return draw(ids(draw(shapes(0, 2)), -size, max(size, 1)))
    if kind == "mask":
        return draw(arrays(shape=(size if draw(st.integers(0, 7)) else size + 1,), dtypes=("bool",)))
    return 1.0


@st.composite
def index_case(draw, setting=False):
    x = draw(arrays())
    items = []
    for d in range(draw(st.integers(0, x.ndim + 1))):
        items.append(draw(index_item(x.shape[d] if d < x.ndim else 1)))
    index = items[0] if len(items) == 1 and draw(st.booleans()) else tuple(items)
    if not setting:
        return (x, index), {}
    try:   # numpy's indexing agrees with torch's where it matters here: what shape the value must fit
        np_index = tuple(i.arr if isinstance(i, NC) else i for i in (index if isinstance(index, tuple) else (index,)))
        picked = np.empty(x.shape)[np_index].shape
    except (IndexError, ValueError, TypeError):
        picked = x.shape
    value = draw(st.one_of(SCALARS.filter(lambda v: not isinstance(v, int) or abs(v) < 2 ** 31),
                           arrays(shape=draw(broadcast_shape(picked)), dtypes=MOSTLY_FLOAT)))
    return (x, index, value), {}


op("Tensor.__getitem__", index_case(), lambda L, x, i: x[i])


def setitem(L, x, index, value):
    t = x.clone()
    t[index] = value
    return t


op("Tensor.__setitem__", index_case(setting=True), setitem)


# ---- conversions and facts about a tensor ----
def fact(f):
    return lambda L, x: f(x)


for _n, _f in {"dim": lambda x: x.dim(), "ndim": lambda x: x.ndim, "shape": lambda x: x.shape,
               "size": lambda x: (x.size(), [x.size(d) for d in range(-x.dim(), x.dim())]),
               "numel": lambda x: x.numel(), "nelement": lambda x: x.nelement(),
               "element_size": lambda x: x.element_size(), "is_floating_point": lambda x: x.is_floating_point(),
               "is_contiguous": lambda x: x.is_contiguous() if x.numel() else None,   # unspecified when empty
               "stride": lambda x: (x.stride(), [x.stride(d) for d in range(-x.dim(), x.dim())]) if x.numel() else None,
               "storage_offset": lambda x: x.storage_offset(), "item": lambda x: x.item(),
               "tolist": lambda x: x.tolist(), "__len__": len, "__bool__": bool, "__float__": float,
               "__int__": int, "__index__": operator.index, "__iter__": list, "numpy": lambda x: x.numpy(),
               "__array__": np.asarray, "dtype": lambda x: x.dtype, "__format__": lambda x: format(x, ".3f")}.items():
    op("Tensor." + _n, any_x, fact(_f), grad=_n in ("__iter__",))
op("xgrad.numel", any_x, lambda L, x: L.numel(x))
op("xgrad.is_tensor", C(st.one_of(arrays(), SCALARS)), lambda L, x: L.is_tensor(x))
op("Tensor.to", C(arrays(), st.sampled_from([DT("float32"), DT("int64"), DT("bool"), "cpu", DT("float64")])),
   lambda L, x, d: x.to(d))
op("Tensor.type_as", C(pair(scalar=False)).map(lambda ak: (ak[0][0], {})), lambda L, x, y: x.type_as(y))
op("Tensor.storage_offset[view]", C(arrays(lo=1)), lambda L, x: x[1:].storage_offset() if x.numel() else None, covers=[])
op("xgrad.equal", C(pair(scalar=False)).map(lambda ak: (ak[0][0], {})), lambda L, x, y: L.equal(x, y))
op("xgrad.allclose", C(pair(scalar=False, dtypes=FLOAT)).map(lambda ak: (ak[0][0], {})).flatmap(
    lambda ak: C(st.just(ak[0][0]), st.just(ak[0][1]), rtol=maybe(st.sampled_from([1e-5, 0.0, 0.1])),
                 atol=maybe(st.sampled_from([1e-8, 0.0, 1.0])), equal_nan=maybe(st.booleans()))),
   lambda L, x, y, **k: L.allclose(x, y, **k))


# ---- creation ----
size_args = st.one_of(shapes(0, 3).map(lambda s: (s,)), shapes(0, 3),
                      st.lists(st.integers(-2, 3), max_size=3).map(tuple))
dtype_arg = maybe(st.sampled_from([DT("float32"), DT("int64"), DT("bool"), DT("float32"), DT("float64")]))
for _n in ["zeros", "ones", "empty"]:
    op("xgrad." + _n, st.tuples(size_args, st.fixed_dictionaries({"dtype": dtype_arg})).map(
        lambda ak: (ak[0], {k: v for k, v in ak[1].items() if v is not _OMIT})), function(_n),
       grad=False, flags={"random"} if _n == "empty" else ())
op("xgrad.full", C(shapes(0, 3), SCALARS, dtype=dtype_arg), function("full"), grad=False)
for _n in ["zeros_like", "ones_like", "empty_like"]:
    op("xgrad." + _n, C(arrays(), dtype=dtype_arg), function(_n), grad=False,
       flags={"random"} if _n == "empty_like" else ())
op("xgrad.full_like", C(arrays(), SCALARS, dtype=dtype_arg), function("full_like"), grad=False)
for _n in ["rand", "randn"]:
    op("xgrad." + _n, st.tuples(size_args, st.fixed_dictionaries({"dtype": dtype_arg})).map(
        lambda ak: (ak[0], {k: v for k, v in ak[1].items() if v is not _OMIT})), function(_n),
       grad=False, flags={"random"})
for _n in ["rand_like", "randn_like"]:
    op("xgrad." + _n, C(arrays()), function(_n), grad=False, flags={"random"})
op("xgrad.randint", C(st.integers(-3, 5), st.integers(-3, 9), shapes(0, 3)), function("randint"), grad=False,
   flags={"random"})
op("xgrad.randperm", C(st.integers(-2, 6)), function("randperm"), grad=False, flags={"random"})
for _n in ["normal_", "uniform_"]:
    op("Tensor." + _n, C(arrays(), _on=st.just("clone")), in_place(_n), grad=False, flags={"random"})
op("xgrad.multinomial", C(arrays(hi=2, dtypes=("float32",) * 4 + ("int64",), mode="ints"), st.integers(-1, 5),
                          replacement=maybe(st.booleans())), function("multinomial"), grad=False, flags={"random"})
op("Tensor.multinomial", C(arrays(lo=1, hi=2, dtypes=FLOAT), st.integers(0, 4)).map(
    lambda ak: ((np.abs(ak[0][0].arr if isinstance(ak[0][0], NC) else ak[0][0]), ak[0][1]), {})),
   method("multinomial"), grad=False, flags={"random"})
bound = st.one_of(st.integers(-5, 5), st.floats(-5, 5, width=32), st.sampled_from([0.5, -0.0, inf, nan]))
op("xgrad.arange", st.one_of(C(bound), C(bound, bound), C(bound, bound, st.one_of(
    st.sampled_from([1, 2, -1, 0, 0.5, -0.25, 3]), st.floats(0.25, 3, width=32)))).flatmap(
    lambda ak: C(*[st.just(a) for a in ak[0]], dtype=dtype_arg)), function("arange"), grad=False)
op("xgrad.linspace", C(bound, bound, st.integers(-1, 6), dtype=dtype_arg), function("linspace"), grad=False)


@st.composite
def data_case(draw):
    a = draw(arrays(dtypes=("float32", "int64", "bool", "float64"), noncontig=False))
    data = a.tolist()
    what = draw(st.integers(0, 9))
    if what == 0:
        data = [[1, 2], [3]]          # ragged
    elif what == 1:
        data = [True, 2, 3.5]         # mixed: promoted
    elif what == 2:
        data = a                      # the numpy array itself
    elif what == 3:
        data = ["a"]
    return (data,), ({"dtype": draw(dtype_arg.filter(lambda d: d is not _OMIT))} if draw(st.booleans()) else {})


op("xgrad.tensor", data_case(), function("tensor"), grad=False)
op("xgrad.as_tensor", data_case(), function("as_tensor"), grad=False)
op("xgrad.from_numpy", C(arrays(dtypes=("float32", "int64", "bool", "float64", "int32", "uint8", "float16"),
                                noncontig=False)), lambda L, a: L.from_numpy(a.copy()), grad=False)
op("xgrad.histogram", C(arrays(dtypes=("float32",) * 5 + ("int64",)), bins=maybe(st.integers(-1, 5)),
                        range=maybe(st.sampled_from([(0.0, 1.0), (-2.0, 2.0), (1.0, 1.0), (2.0, 1.0)])),
                        density=maybe(st.booleans())),
   lambda L, x, **k: L.histogram(x, **k), grad=False)


# ---- nn.functional ----
@st.composite
def linear_case(draw):
    x = draw(arrays(lo=1, dtypes=("float32",) * 6 + ("int64",)))
    i = x.shape[-1] if draw(st.integers(0, 9)) else x.shape[-1] + 1
    o = draw(SIDE)
    w = draw(arrays(shape=(o, i), dtypes=FLOAT))
    b = draw(st.one_of(st.none(), arrays(shape=draw(st.sampled_from([(o,), (o,), (), (o + 1,)])), dtypes=FLOAT)))
    return (x, w, b), {}


op("F.linear", linear_case(), lambda L, x, w, b: F(L).linear(x, w, b), flags={"order"})


@st.composite
def layer_norm_case(draw):
    x = draw(arrays(dtypes=("float32",) * 6 + ("int64",)))
    k = draw(st.integers(0, x.ndim))
    shape = x.shape[x.ndim - k:] if draw(st.integers(0, 9)) else (draw(SIDE),)
    w = draw(st.one_of(st.none(), arrays(shape=shape, dtypes=FLOAT)))
    b = draw(st.one_of(st.none(), arrays(shape=shape, dtypes=FLOAT)))
    eps = draw(maybe(st.sampled_from([1e-5, 0.0, 1.0, 1e-12])))
    return (x, list(shape) if draw(st.booleans()) else tuple(shape), w, b), ({} if eps is _OMIT else {"eps": eps})


op("F.layer_norm", layer_norm_case(), lambda L, x, s, w, b, **k: F(L).layer_norm(x, s, w, b, **k), flags={"order"})


@st.composite
def embedding_case(draw):
    v, c = draw(st.integers(0, 5)), draw(SIDE)
    i = draw(ids(draw(shapes(0, 3)), -1 if draw(st.integers(0, 9)) == 0 else 0, v + (draw(st.integers(0, 9)) == 0)))
    w = draw(arrays(shape=(v, c), dtypes=FLOAT, noncontig=False))
    kw = {}
    if draw(st.booleans()):
        kw["padding_idx"] = draw(st.integers(-v - 1, v))
    return (i, w), kw


op("F.embedding", embedding_case(), lambda L, i, w, **k: F(L).embedding(i, w, **k))


@st.composite
def one_hot_case(draw):
    i = draw(ids(draw(shapes(0, 3)), -1 if draw(st.integers(0, 9)) == 0 else 0, 4))
    if draw(st.integers(0, 9)) == 0:
        i = i.astype(np.float32)
    return (i,), ({"num_classes": draw(st.integers(-2, 6))} if draw(st.booleans()) else {})


op("F.one_hot", one_hot_case(), lambda L, i, **k: F(L).one_hot(i, **k), grad=False)


@st.composite
def class_loss_case(draw, nll=False):
    n, c = draw(SIDE), draw(SIDE)
    extra = () if nll else draw(shapes(0, 2))
    layout = draw(st.sampled_from(["nc", "nc", "c"] if not nll else ["nc"]))
    x_shape = (c,) if layout == "c" else (n, c) + tuple(extra)
    t_shape = () if layout == "c" else (n,) + tuple(extra)
    x = draw(arrays(shape=x_shape, dtypes=FLOAT))
    t = draw(ids(t_shape, 0, max(c, 1)))
    if draw(st.integers(0, 4)) == 0:   # ignored targets, and (rarely) out-of-range ones
        t = np.where(np.random.default_rng(draw(st.integers(0, 99))).random(t.shape) < 0.5, -100, t)
    if draw(st.integers(0, 14)) == 0:
        t = t + c
    kw = {}
    if draw(st.integers(0, 3)) == 0:
        kw["weight"] = Const(draw(arrays(shape=(c,), dtypes=FLOAT, mode="ints", noncontig=False)) if draw(
            st.booleans()) else np.abs(draw(arrays(shape=(c,), dtypes=FLOAT, mode="normal", noncontig=False))))
    if draw(st.booleans()):
        kw["reduction"] = draw(st.sampled_from(["mean", "sum", "none", "bogus"]))
    if draw(st.integers(0, 4)) == 0:
        kw["ignore_index"] = draw(st.integers(-1, c))
    if not nll and draw(st.integers(0, 3)) == 0:
        kw["label_smoothing"] = draw(st.sampled_from([0.1, 0.0, 1.0, 0.5]))
    if not nll and draw(st.integers(0, 14)) == 0:   # class probabilities as target (torch >= 1.10)
        t = np.abs(draw(arrays(shape=x_shape, dtypes=FLOAT, mode="normal", noncontig=False)))
    return (x, t), kw


op("F.cross_entropy", class_loss_case(), lambda L, x, t, **k: F(L).cross_entropy(x, t, **k), flags={"order"})
op("F.nll_loss", class_loss_case(nll=True), lambda L, x, t, **k: F(L).nll_loss(x, t, **k), flags={"order"})
op("F.mse_loss", C(pair(scalar=False, dtypes=FLOAT)).map(lambda ak: (ak[0][0], {})).flatmap(
    lambda ak: C(st.just(ak[0][0]), st.just(ak[0][1]),
                 reduction=maybe(st.sampled_from(["mean", "sum", "none", "bogus"]))).map(lambda c: c)),
   lambda L, x, y, **k: F(L).mse_loss(x, y, **k), flags={"order"})
op("F.dropout", C(arrays(), p=maybe(st.sampled_from([0.0, 1.0, 0.5, -0.5, 1.5]), 0),
                  training=maybe(st.booleans(), 0)).filter(
    lambda ak: ak[1].get("p") in (0.0, 1.0, -0.5, 1.5) or not ak[1].get("training")),
   lambda L, x, **k: F(L).dropout(x, **k))
op("F.dropout[random]", C(arrays(), p=st.sampled_from([0.2, 0.5, 0.9])), lambda L, x, **k: F(L).dropout(x, **k),
   grad=False, flags={"random"}, covers=[])


def sdpa_reference(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """F.scaled_dot_product_attention as torch >= 2.0 documents it (1.13 lacks it), without dropout."""
    s = q @ k.transpose(-2, -1) * (1 / math.sqrt(q.shape[-1]) if scale is None else scale)
    if is_causal:
        s = s.masked_fill(~torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril(), -inf)
    if attn_mask is not None:
        s = s.masked_fill(~attn_mask, -inf) if attn_mask.dtype == torch.bool else s + attn_mask
    return torch.softmax(s, -1) @ v


@st.composite
def sdpa_case(draw):
    batch = draw(shapes(0, 2))
    lq, lk, e, ev = draw(SIDE), draw(SIDE), draw(SIDE), draw(SIDE)
    q = draw(arrays(shape=batch + (lq, e), dtypes=FLOAT))
    k = draw(arrays(shape=batch + (lk, e if draw(st.integers(0, 9)) else e + 1), dtypes=FLOAT))
    v = draw(arrays(shape=batch + (lk, ev), dtypes=FLOAT))
    kw = {}
    if draw(st.integers(0, 2)) == 0:
        kw["attn_mask"] = Const(draw(arrays(shape=draw(broadcast_shape((lq, lk))), dtypes=("bool", "float32"),
                                            mode="normal", noncontig=False)))
    if draw(st.integers(0, 2)) == 0:
        kw["is_causal"] = draw(st.booleans())
    if draw(st.integers(0, 3)) == 0:
        kw["scale"] = draw(st.sampled_from([1.0, 0.5, 0.0]))
    return (q, k, v), kw


op("F.scaled_dot_product_attention", sdpa_case(),
   lambda L, q, k, v, **kw: (F(L).scaled_dot_product_attention if L is xgrad else sdpa_reference)(q, k, v, **kw),
   flags={"order"})

# ---- writes through views: a view sees its base's later writes, and the base sees the view's ----
VIEWS = {"view": lambda x: x.view(-1), "transpose": lambda x: x.transpose(0, -1), "permute": lambda x: x.permute(
    *range(x.dim() - 1, -1, -1)), "T": lambda x: x.t() if x.dim() <= 2 else x.mT, "unsqueeze": lambda x: x.unsqueeze(0),
    "squeeze": lambda x: x.squeeze(), "flatten": lambda x: x.flatten(), "narrow": lambda x: x.narrow(0, 0, 1),
    "select": lambda x: x.select(0, -1), "diagonal": lambda x: x.diagonal(), "expand": lambda x: x.expand(2, *x.shape),
    "getitem": lambda x: x[..., ::2], "split": lambda x: x.split(1, 0)[0], "chunk": lambda x: x.chunk(2, -1)[-1],
    "unbind": lambda x: x.unbind(0)[0], "detach": lambda x: x.detach(), "data": lambda x: x.data,
    "reshape": lambda x: x.reshape(-1), "as_strided": lambda x: x.as_strided((1,), (1,), 0),
    "unflatten": lambda x: x.unflatten(0, (1, -1)), "contiguous": lambda x: x.contiguous()}


def view_write(view, into_view):
    def call(L, x):
        v = view(x)
        if into_view:
            v.mul_(2.0)     # a view of an expanded tensor refuses this in torch (one element, many places)
            return x, v
        x.add_(1.0)
        return v, x
    return call


for _n, _v in VIEWS.items():
    _lo = 1 if _n in ("narrow", "select", "split", "unbind", "unflatten") else 2 if _n == "diagonal" else 0
    _c = C(arrays(lo=max(_lo, 1 if _n in ("transpose",) else _lo), dtypes=FLOAT, mode="normal"))
    op(f"view-write:{_n}", _c, view_write(_v, False), grad=False, covers=[])
    op(f"view-write:{_n}[into view]", _c, view_write(_v, True), grad=False, covers=[])


# ---- what is not in the table, and why ----
EXCLUDED = {
    # not ops: types, modules, dtypes and constants
    "xgrad.Tensor": "the type", "xgrad.Generator": "the RNG type (random draws differ from torch's by design)",
    "xgrad.dtype": "the type", "xgrad.device": "the device type (cpu only)", "xgrad.cuda": "no CUDA (a stub)",
    "xgrad.autograd": "module", "xgrad.nn": "module", "xgrad.optim": "module", "xgrad.text": "module (tokenizers)",
    "F.xgrad": "the xgrad module, imported by functional.py",
    "xgrad.float": "dtype alias", "xgrad.float32": "dtype", "xgrad.int32": "dtype", "xgrad.int": "dtype alias",
    "xgrad.int64": "dtype", "xgrad.long": "dtype alias", "xgrad.bool": "dtype", "xgrad.float64": "dtype",
    "xgrad.double": "dtype alias", "xgrad.float16": "dtype (a storage type: test_dtypes.py)", "xgrad.half": "alias",
    "xgrad.bfloat16": "dtype (storage)", "xgrad.uint8": "dtype", "xgrad.int8": "dtype",
    "xgrad.int16": "dtype", "xgrad.short": "alias",
    "xgrad.get_default_dtype": "global state (tested in test_dtypes.py)", "xgrad.set_default_dtype": "global state, as get",
    # state, threads and grad mode: no values to compare (grad mode is used by the gradient checks)
    "xgrad.manual_seed": "seeds xgrad's own generator", "xgrad.set_num_threads": "threads",
    "xgrad.get_num_threads": "threads", "xgrad.empty_cache": "allocator cache", "xgrad.no_grad": "grad mode",
    "xgrad.inference_mode": "grad mode", "xgrad.set_grad_enabled": "grad mode", "xgrad.is_grad_enabled": "grad mode",
    "xgrad.save": "file I/O (safetensors), tested in test_saved.py", "xgrad.load": "file I/O, as save",
    # autograd bookkeeping: exercised by every gradient comparison here, and tested in test_tensor.py
    "Tensor.backward": "runs every gradient comparison", "Tensor.grad": "read by every gradient comparison",
    "Tensor.requires_grad": "set by every gradient comparison", "Tensor.requires_grad_": "as requires_grad",
    "Tensor.retain_grad": "autograd bookkeeping", "Tensor.retains_grad": "autograd bookkeeping",
    "Tensor.is_leaf": "autograd bookkeeping", "Tensor.grad_fn": "node names, not values (torch's class names)",
    # identity and memory, not values
    "Tensor.data_ptr": "an address", "Tensor.storage": "an address holder", "Tensor.untyped_storage": "as storage",
    "Tensor.device": "always cpu", "Tensor.is_cuda": "always False", "Tensor.cuda": "raises: no CUDA",
    "Tensor.__hash__": "identity", "Tensor.__init__": "Tensor(data) construction; xgrad.tensor is fuzzed",
    "Tensor.__new__": "construction, as __init__", "Tensor.__dict__": "an instance's own attributes", "Tensor.__delitem__": "del t[i]: a TypeError in both",
    "Tensor.__repr__": "printing (test_tensor.py compares it with torch.s)",
    "Tensor.__module__": "not an op", "Tensor.__doc__": "not an op",
    "Tensor.__reduce__": "pickling, tested in test_tensor.py", "Tensor.__reduce_ex__": "pickling, as __reduce__",
}


def public_ops():
    names = {"xgrad." + n for n in dir(xgrad) if not n.startswith("_")}
    names |= {"F." + n for n in dir(xgrad.nn.functional) if not n.startswith("_")}
    object_names = set(dir(object))
    for n in dir(xgrad.Tensor):
        dunder = n.startswith("__") and n.endswith("__")
        if (not n.startswith("_")) or (dunder and (n not in object_names or n in xgrad.Tensor.__dict__)):
            names.add("Tensor." + n)
    return names


# ---- running a case on one library ---------------------------------------------------------------
class Outcome:
    def __init__(self):
        self.error = None      # the exception raised by the op
        self.items = []        # the result, flattened: (kind, ...) tuples
        self.requires = []     # requires_grad of each float tensor in the result
        self.grads = None      # each leaf's gradient (None: none)
        self.grad_error = None


def dtype_name(d):
    return str(d).split(".")[-1]


def weights(case_seed, i, shape):
    return np.random.default_rng([case_seed, i]).standard_normal(shape).astype(np.float32)


def is_tensor(o):
    return isinstance(o, xgrad.Tensor) or (torch is not None and isinstance(o, torch.Tensor))


def flatten(o, out, tensors):
    if is_tensor(o):
        out.append(("T", dtype_name(o.dtype), tuple(o.shape), np.array(o.detach().numpy(), copy=True)))
        tensors.append(o)
    elif isinstance(o, np.ndarray):
        out.append(("T", o.dtype.name, o.shape, o.copy()))
    elif isinstance(o, (tuple, list)):
        out.append(("seq", len(o)))
        for v in o:
            flatten(v, out, tensors)
    elif isinstance(o, (bool, np.bool_)):
        out.append(("num", "bool", bool(o)))
    elif isinstance(o, (int, np.integer)):
        out.append(("num", "int", int(o)))
    elif isinstance(o, (float, np.floating)):
        out.append(("num", "float", float(o)))
    elif o is None or isinstance(o, str):
        out.append(("const", o))
    elif isinstance(o, xgrad.dtype) or (torch is not None and isinstance(o, torch.dtype)):
        out.append(("dtype", dtype_name(o)))
    else:
        out.append(("obj", type(o).__name__))


class Converter:
    """A case's arguments as one library's tensors; float ones become leaves that require grad."""

    def __init__(self, L, grad, f64=False):
        self.L, self.grad, self.f64, self.leaves = L, grad, f64, []

    def tensor(self, a, permuted=False):
        if self.f64 and a.dtype == np.float32:
            a = a.astype(np.float64)
            a = np.abs(a) if self.f64 == "abs" else a
        order = tuple(range(a.ndim - 1, -1, -1))
        t = self.L.tensor(a.transpose(order).copy() if permuted else a.copy())
        if self.grad and t.is_floating_point():
            t.requires_grad_(True)
            self.leaves.append(t)
        return t.permute(*order) if permuted else t

    def __call__(self, a):
        if isinstance(a, NC):
            return self.tensor(a.arr, permuted=True)
        if isinstance(a, Const):   # no gradient asked for (torch refuses some: loss weights)
            return self.L.tensor(a.arr.astype(np.float64) if self.f64 and a.arr.dtype == np.float32 else a.arr.copy())
        if isinstance(a, np.ndarray):
            return self.tensor(a)
        if isinstance(a, DT):
            return getattr(self.L, a.name) if hasattr(self.L, a.name) else a.name
        if isinstance(a, list):
            return [self(v) for v in a]
        if isinstance(a, tuple):
            return tuple(self(v) for v in a)
        if isinstance(a, dict):
            return {k: self(v) for k, v in a.items()}
        return a


def run(op, args, kwargs, L, grad, case_seed, f64=False):
    """op on library L; grad: with float inputs that require grad, and (out * w).sum().backward()."""
    got = Outcome()
    conv = Converter(L, grad and op.grad, f64)
    try:
        a, k = conv(args), conv(kwargs)
        tensors = []
        flatten(op.call(L, *a, **k), got.items, tensors)
    except Exception as e:   # noqa: BLE001 (any exception is an outcome to compare)
        got.error = e
        return got
    floats = [t for t in tensors if t.is_floating_point()]
    got.requires = [bool(t.requires_grad) for t in floats]
    if not conv.leaves or not any(got.requires):
        return got
    try:
        loss = None
        for i, t in enumerate(floats):
            if t.requires_grad:
                w = L.tensor(weights(case_seed, i, tuple(t.shape)).astype(np.float64 if f64 else np.float32))
                term = (t * w).sum()
                loss = term if loss is None else loss + term
        loss.backward()
        got.grads = [None if leaf.grad is None else np.array(leaf.grad.numpy(), copy=True) for leaf in conv.leaves]
    except Exception as e:   # noqa: BLE001
        got.grad_error = e
    return got


# ---- comparing ---------------------------------------------------------------------------------------
def error_kind(e):
    """torch raises RuntimeError (NotImplementedError is one), IndexError, TypeError and ValueError."""
    for kind in (IndexError, TypeError, ValueError, RuntimeError, OverflowError, ZeroDivisionError, MemoryError):
        if isinstance(e, kind):
            return "RuntimeError" if kind is RuntimeError else kind.__name__
    return type(e).__name__


def close(x, t, rtol=1e-5, atol=1e-6):
    """Elementwise: equal within tolerance, NaN where the other is NaN, infinities of the same sign."""
    x, t = np.asarray(x, np.float64), np.asarray(t, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        ok = (x == t) | (np.isnan(x) & np.isnan(t)) | (np.abs(x - t) <= atol + rtol * np.abs(t))
    return ok


def compare_arrays(x, t, ref64=None, signed_zero=True, size=None):
    """Where x (xgrad) and t (torch) differ, as a message, or None. ref64: torch in float64, where float32's
    rounding depends on the order of a sum: there an element may be what float64 says, or anything when
    torch's own float32 result is that far from it."""
    if x.dtype.kind in "biu" or t.dtype.kind in "biu":
        bad = ~(x == t) if x.shape == t.shape else np.ones(x.shape, bool)
    else:
        # tiny results are compared to a few denormals' spacing (log1p(1e-20) is 1e-20, not 0)
        bad = ~close(x, t, atol=1e-6 if ref64 is not None or size is not None else 1e-44)
        if bad.any() and ref64 is not None and ref64.shape == t.shape:
            # where torch's float32 is off float64's by e, xgrad may be off by 2e (another order of the sum)
            twin = ref64.astype(np.float32).astype(np.float64)
            with np.errstate(invalid="ignore", over="ignore"):
                err_t, err_x = np.abs(t - twin), np.abs(x.astype(np.float64) - twin)
                loose = close(x, twin, rtol=1e-4, atol=1e-5) | (err_x <= 2 * err_t + 1e-5 * np.abs(twin))
                loose |= np.isnan(err_t) & (np.isnan(x) | np.isinf(x) | np.isinf(twin))   # torch's own inf/nan
                loose |= ~np.isfinite(t) & np.isfinite(twin)   # torch's float32 overflowed: nothing to compare
                if size is not None and size.shape == t.shape:   # a sum's rounding: eps * sum of |terms|
                    loose |= err_x <= 1e-5 * np.abs(size) + 1e-6
            bad &= ~loose
        if signed_zero and not bad.any():
            bad = (x == 0) & (t == 0) & (np.signbit(x) != np.signbit(t))
            if bad.any():
                return "the sign of zero differs at " + _where(bad, x, t)
    if bad.any():
        return "values differ at " + _where(bad, x, t)
    return None


def _where(bad, x, t):
    at = list(zip(*np.nonzero(bad)))[:3] if bad.ndim else [()]
    return "; ".join(f"{tuple(int(i) for i in a)}: xgrad {x[a]!r}, torch {t[a]!r}" for a in at) + \
        f" ({int(bad.sum())} of {bad.size})"


def differences(op, x, t, t64=None, missing_dtype=False, tabs=None):
    """[(aspect, message)] where xgrad's outcome x is not torch's t."""
    if x.error is not None or t.error is not None:
        if x.error is None:
            return [("error", f"xgrad returned, torch raised {type(t.error).__name__}: {t.error}")]
        if t.error is None:
            return [("dtype-missing" if missing_dtype else "error", f"torch returned, xgrad raised {type(x.error).__name__}: {x.error}")]
        if error_kind(x.error) != error_kind(t.error):
            return [("error-kind", f"xgrad raised {type(x.error).__name__}: {x.error} | torch raised "
                                   f"{type(t.error).__name__}: {t.error}")]
        return []
    out = []
    if [i[:2] if i[0] == "seq" else i[0] for i in x.items] != [i[:2] if i[0] == "seq" else i[0] for i in t.items]:
        return [("structure", f"xgrad gave {_short(x.items)}, torch {_short(t.items)}")]
    for n, (a, b) in enumerate(zip(x.items, t.items)):
        c = t64.items[n] if t64 is not None and t64.error is None and len(t64.items) == len(t.items) else None
        m = tabs.items[n] if tabs is not None and tabs.error is None and len(tabs.items) == len(t.items) else None
        if a[0] == "T":
            if a[1] != b[1]:
                out.append(("dtype-missing" if missing_dtype else "dtype", f"result {n}: xgrad {a[1]}, torch {b[1]}"))
            if a[2] != b[2]:
                out.append(("shape", f"result {n}: xgrad {a[2]}, torch {b[2]}"))
            elif a[1] == b[1] and "random" not in op.flags and not missing_dtype:
                why = compare_arrays(a[3], b[3], c[3] if c is not None and c[0] == "T" else None,
                                     signed_zero="order" not in op.flags, size=m[3] if m is not None and m[0] == "T"
                                     and m[3].dtype.kind == "f" else None)
                if why:
                    out.append(("zero-sign" if why.startswith("the sign") else "value", f"result {n}: {why}"))
        elif a[0] == "num" and "random" not in op.flags:
            if a[1] != b[1]:
                out.append(("dtype-missing" if missing_dtype else "type", f"result {n}: xgrad {a!r}, torch {b!r}"))
            elif not missing_dtype and not close(a[2], b[2]):
                out.append(("value", f"result {n}: xgrad {a[2]!r}, torch {b[2]!r}"))
        elif a != b and a[0] != "seq" and "random" not in op.flags:
            out.append(("dtype-missing" if missing_dtype else "value", f"result {n}: xgrad {a!r}, torch {b!r}"))
    if out or missing_dtype:
        return out
    if x.requires != t.requires:
        return [("requires_grad", f"xgrad {x.requires}, torch {t.requires}")]
    if (x.grad_error is None) != (t.grad_error is None):
        return [("grad-error", f"backward: xgrad {x.grad_error!r}, torch {t.grad_error!r}")]
    if x.grads is not None and t.grads is not None and "nograd" not in op.flags:
        for n, (a, b) in enumerate(zip(x.grads, t.grads)):
            if a is None and b is None:
                continue
            ref = b if b is not None else a
            a = np.zeros_like(ref) if a is None else a   # None and zeros are the same gradient
            b = np.zeros_like(ref) if b is None else b
            if a.shape != b.shape:
                out.append(("grad", f"input {n}: gradient shape xgrad {a.shape}, torch {b.shape}"))
                continue
            g64 = t64.grads[n] if t64 is not None and t64.grads is not None and t64.grads[n] is not None else None
            gabs = tabs.grads[n] if tabs is not None and tabs.grads is not None and tabs.grads[n] is not None else None
            why = compare_arrays(a, b, g64, signed_zero=False, size=gabs)
            if why:
                out.append(("grad", f"input {n}: gradient {why}"))
    return out


def _short(items):
    return [i[:3] if i[0] == "T" else i for i in items][:6]


def has_missing_dtype(obj):
    """Whether a case names a dtype xgrad lacks: then only errors and shapes are compared."""
    if isinstance(obj, (np.ndarray, NC, Const)):
        return obj.dtype.name not in XGRAD_DTYPES
    if isinstance(obj, DT):
        return obj.name not in XGRAD_DTYPES
    if isinstance(obj, (list, tuple)):
        return any(has_missing_dtype(v) for v in obj)
    if isinstance(obj, dict):
        return any(has_missing_dtype(v) for v in obj.values())
    return False


def check(op, args, kwargs, case_seed):
    """The disagreements of one case that are not known ones: [(aspect, message)]."""
    missing = "missing_dtype" in op.flags or has_missing_dtype((args, kwargs))
    x = run(op, args, kwargs, xgrad, True, case_seed)
    t = run(op, args, kwargs, torch, True, case_seed)
    if "ties" in op.flags and _has_ties(args):
        x.grads = t.grads = None
    diffs = differences(op, x, t, missing_dtype=missing)
    if diffs and "order" in op.flags or any(a in ("value", "grad") for a, _ in diffs):
        t64 = run(op, args, kwargs, torch, True, case_seed, f64=True)
        tabs = run(op, args, kwargs, torch, True, case_seed, f64="abs") if "order" in op.flags else None
        diffs = differences(op, x, t, t64, missing_dtype=missing, tabs=tabs)
    found = []
    for aspect, message in diffs:
        FOUND[op.name, aspect] += 1
        if aspect != "dtype-missing" and not R.known(op.name, aspect, args, kwargs, message):
            found.append((aspect, message))
    return found


def _has_ties(args):
    a = args[0].arr if isinstance(args[0], NC) else args[0]
    return a.size != np.unique(a).size or np.isnan(a).any() or np.count_nonzero(a == 0) > 1


# ---- the tests ---------------------------------------------------------------------------------------
def _selected():
    only = os.environ.get("XGRAD_FUZZ_OPS")
    return sorted(OPS) if not only else [n for n in only.split(",") if n]


@needs_torch
@pytest.mark.parametrize("name", _selected())
def test_xgrad_agrees_with_torch(name):
    op = OPS[name]

    @seed(zlib.crc32(name.encode()) + SEED)
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False, print_blob=True,
              suppress_health_check=list(HealthCheck))
    @given(ak=op.cases, case_seed=st.integers(0, 2 ** 32 - 1))
    def agrees(ak, case_seed):
        args, kwargs = ak
        COUNTS[name] += 1
        found = check(op, args, kwargs, case_seed)
        if found and COLLECT:
            with open(COLLECT, "a") as f:
                for aspect, message in found:
                    f.write(json.dumps({"op": name, "aspect": aspect, "message": message[:600],
                                        "args": repr(args)[:1500], "kwargs": repr(kwargs)[:300],
                                        "seed": case_seed}) + "\n")
        elif found:
            pytest.fail(f"{name}{args!r} {kwargs!r}:\n" + "\n".join(f"  {a}: {m}" for a, m in found))

    with np.errstate(all="ignore"):
        agrees()


def test_every_public_op_is_fuzzed_or_excluded_with_a_reason():
    covered = {c for o in OPS.values() for c in o.covers} | set(EXCLUDED)
    missing = sorted(public_ops() - covered)
    assert not missing, f"public ops neither in the fuzzer's table nor in EXCLUDED: {missing}"
    stale = sorted(n for n in set(EXCLUDED) if n not in public_ops())
    assert not stale, f"EXCLUDED names ops that xgrad no longer has: {stale}"


# the fixed cases: each disagreement the fuzzer found, with torch's answer stored (no torch needed)
def _regression_params():
    params = []
    for c in R.CASES:
        # strict: a fix shows as XPASS (then drop the xfail and its KNOWN entry); not strict only where xgrad
        # reads uninitialised memory, which may hold the right value by chance
        marks = [pytest.mark.xfail(strict=c.get("strict", True), reason=c["xfail"])] if c.get("xfail") else []
        params.append(pytest.param(c, id=c["id"], marks=marks))
    return params


def expected_outcome(expect):
    got = Outcome()
    if "raises" in expect:
        kinds = {"IndexError": IndexError, "TypeError": TypeError, "ValueError": ValueError}
        got.error = kinds.get(expect["raises"], RuntimeError)(expect.get("message", ""))
        return got
    got.items = [("T", i[1], tuple(i[2]), np.array(i[3], dtype=i[1]).reshape(i[2])) if i[0] == "T" else tuple(i)
                 for i in expect["out"]]
    got.requires = expect.get("requires", [])
    got.grads = None if expect.get("grads") is None else [
        None if g is None else np.array(g[1], dtype=np.float32).reshape(g[0]) for g in expect["grads"]]
    return got


@pytest.mark.parametrize("case", _regression_params())
def test_regression(case):
    op = OPS[case["op"]]
    args, kwargs = R.decode(case["args"]), R.decode(case["kwargs"])
    x = run(op, args, kwargs, xgrad, case.get("grad", True), case["seed"])
    found = differences(op, x, expected_outcome(case["expect"]))
    assert not found, "\n".join(f"{a}: {m}" for a, m in found)


@pytest.mark.parametrize("case", R.DELIBERATE, ids=[c["id"] for c in R.DELIBERATE])
def test_deliberate_difference_still_holds(case):
    """The differences kept on purpose, each as xgrad behaves today (why: in differential_regressions.py)."""
    op = OPS[case["op"]]
    x = run(op, R.decode(case["args"]), R.decode(case["kwargs"]), xgrad, False, 0)
    assert differences(op, x, expected_outcome(case["xgrad"])) == []


def expectation(op, args, kwargs, case_seed, grad=True):
    """torch's outcome of a case as literals, for differential_regressions.py."""
    t = run(op, args, kwargs, torch, grad, case_seed)
    if t.error is not None:
        return {"raises": error_kind(t.error), "message": str(t.error).split("\n")[0][:200]}
    out = [("T", i[1], list(i[2]), i[3].tolist()) if i[0] == "T" else i for i in t.items]
    grads = None if t.grads is None else [None if g is None else (list(g.shape), g.tolist()) for g in t.grads]
    return {"out": out, "requires": t.requires, "grads": grads}


@needs_torch
def test_zz_cases_run(capsys):
    """The number of cases run, per op (last, so that it counts the whole file's run)."""
    if not COUNTS:
        pytest.skip("no fuzz cases ran")
    with capsys.disabled():
        print(f"\ndifferential fuzzing: {sum(COUNTS.values())} cases over {len(COUNTS)} ops "
              f"({EXAMPLES} per op, seed {SEED}); disagreements seen (known ones included): {sum(FOUND.values())}")
        for (name, aspect), n in sorted(FOUND.items()):
            print(f"  {name} {aspect}: {n}")
    if os.environ.get("XGRAD_FUZZ_STATS"):
        with open(os.environ["XGRAD_FUZZ_STATS"], "a") as f:
            f.write(json.dumps({"counts": COUNTS, "found": {f"{k[0]} {k[1]}": v for k, v in FOUND.items()}}) + "\n")
