"""The op table's calls (python/src/table.h): the operators and the everyday methods with Python ints and
numbers give the values, gradients and grad_fn of the same op called another way (a function, keywords,
an index tuple, a numpy scalar), on tensors and on subclasses; ids, masks, numpy operands, `.data` and
errors take the same calls."""
import numpy as np
import pytest

import xgrad
import xgrad.nn as nn

rng = np.random.default_rng(3)
X = rng.standard_normal((3, 4)).astype(np.float32)
Y = rng.standard_normal((3, 4)).astype(np.float32)
W = rng.standard_normal((4, 2)).astype(np.float32)

# (name, the fast call, the same op through the binding: xgrad's functions, an index tuple, or a numpy
# scalar, which is no Python float or int)
PAIRS = [
    ("a + b", lambda a, b: a + b, lambda a, b: xgrad.add(a, b)),
    ("a - b", lambda a, b: a - b, lambda a, b: xgrad.sub(a, b)),
    ("a * b", lambda a, b: a * b, lambda a, b: xgrad.mul(a, b)),
    ("a / b", lambda a, b: a / (b * b + 1.0), lambda a, b: xgrad.div(a, xgrad.add(xgrad.mul(b, b), 1.0))),
    ("a + 2", lambda a, b: a + 2, lambda a, b: a + np.int64(2)),
    ("2.5 - a", lambda a, b: 2.5 - a, lambda a, b: a.__rsub__(np.float64(2.5))),
    ("a * -3.0", lambda a, b: a * -3.0, lambda a, b: a * np.float64(-3.0)),
    ("3 * a", lambda a, b: 3 * a, lambda a, b: a.__rmul__(np.int64(3))),
    ("a / 4", lambda a, b: a / 4, lambda a, b: a / np.int64(4)),
    ("2 / a", lambda a, b: 2 / (a * a + 1.0), lambda a, b: (a * a + 1.0).__rtruediv__(np.float64(2))),
    ("-a", lambda a, b: -a, lambda a, b: xgrad.neg(a)),
    ("a @ w", lambda a, b: a @ xgrad.tensor(W), lambda a, b: xgrad.matmul(a, xgrad.tensor(W))),
    ("a[1]", lambda a, b: a[1], lambda a, b: a[(1,)]),
    ("a[-1]", lambda a, b: a[-1], lambda a, b: a[(-1,)]),
    ("a.view(2, -1)", lambda a, b: a.view(2, -1), lambda a, b: a.view((2, -1))),
    ("a.reshape(12)", lambda a, b: a.reshape(12), lambda a, b: xgrad.reshape(a, (12,))),
    ("a.transpose(0, 1)", lambda a, b: a.transpose(0, 1), lambda a, b: xgrad.transpose(a, 0, 1)),
    ("a.transpose(-1, -2)", lambda a, b: a.transpose(-1, -2), lambda a, b: a.transpose(dim0=-1, dim1=-2)),
    ("a.exp()", lambda a, b: a.exp(), lambda a, b: xgrad.exp(a)),
    ("a.tanh()", lambda a, b: a.tanh(), lambda a, b: xgrad.tanh(a)),
    ("a.sigmoid()", lambda a, b: a.sigmoid(), lambda a, b: xgrad.sigmoid(a)),
    ("a.relu()", lambda a, b: a.relu(), lambda a, b: xgrad.relu(a)),
    ("a.sum()", lambda a, b: a.sum(), lambda a, b: a.sum(dim=None)),
    ("a.mean()", lambda a, b: a.mean(), lambda a, b: a.mean(dim=(0, 1))),
    ("(a*a+1).log()", lambda a, b: (a * a + 1.0).log(), lambda a, b: xgrad.log(xgrad.add(xgrad.mul(a, a), 1.0))),
    ("(a*a+1).sqrt()", lambda a, b: (a * a + 1.0).sqrt(), lambda a, b: xgrad.sqrt(xgrad.add(xgrad.mul(a, a), 1.0))),
]


def run(op, kind):
    """op's output and both inputs' gradients, the same upstream weights for every call"""
    a = kind(xgrad.tensor(X, requires_grad=True))
    b = kind(xgrad.tensor(Y, requires_grad=True))
    out = op(a, b)
    weights = np.random.default_rng(7).standard_normal(out.shape).astype(np.float32)
    (out * xgrad.tensor(weights)).sum().backward()
    return out, a.grad, b.grad


@pytest.mark.parametrize("kind", [lambda t: t, nn.Parameter], ids=["Tensor", "Parameter"])
@pytest.mark.parametrize("name,fast,binding", PAIRS, ids=[p[0] for p in PAIRS])
def test_the_fast_call_equals_the_binding(name, fast, binding, kind):
    got, want = run(fast, kind), run(binding, kind)
    assert got[0].shape == want[0].shape
    np.testing.assert_array_equal(got[0].detach().numpy(), want[0].detach().numpy())
    assert got[0].grad_fn.name() == want[0].grad_fn.name()
    for g, w in zip(got[1:], want[1:]):
        assert (g is None) == (w is None)
        if g is not None:
            np.testing.assert_array_equal(g.numpy(), w.numpy())


def test_the_table_makes_cpython_functions_with_their_signatures():
    # CPython's own method descriptors and builtin functions, called by vectorcall; help() shows the
    # signature as the table declares it
    for name in ("view", "transpose", "relu", "sum", "add_", "softmax"):
        assert type(xgrad.Tensor.__dict__[name]).__name__ == "method_descriptor", name
    assert type(xgrad.softmax).__name__ == "builtin_function_or_method"
    assert xgrad.Tensor.view.__doc__ == "view(input, *shape)"
    assert xgrad.sum.__doc__.startswith("sum(input, dim=None, keepdim=False, *, axis=None")
    with pytest.raises(TypeError, match=r"softmax\(\): argument 'dim' \(position 2\) must be int, not str"):
        xgrad.softmax(xgrad.ones(2), "x")
    with pytest.raises(TypeError, match=r"sum\(\) got an unexpected keyword argument 'dims'"):
        xgrad.ones(2).sum(dims=0)
    with pytest.raises(TypeError, match=r"got multiple values for argument 'dim'"):
        xgrad.ones(2).sum(0, dim=0)
    with pytest.raises(TypeError, match=r"missing required argument 'dim'"):
        xgrad.softmax(xgrad.ones(2))
    with pytest.raises(RuntimeError, match="\"softmax\" not implemented for 'Long'"):   # the table's dtype rule
        xgrad.tensor([1, 2]).softmax(0)


def test_other_operands_and_dtypes():
    ids = xgrad.tensor([[1, 2], [3, 4]])
    assert (ids + 1).dtype == xgrad.long and (ids + 1).tolist() == [[2, 3], [4, 5]]
    assert (2 * ids).dtype == xgrad.long and (-ids).tolist() == [[-1, -2], [-3, -4]]
    assert ids[1].tolist() == [3, 4] and ids.view(4).tolist() == [1, 2, 3, 4] and ids.transpose(0, 1).tolist() == [[1, 3], [2, 4]]
    mask = ids > 2
    assert mask[1].tolist() == [True, True] and mask.sum().item() == 2 and mask.sum().dtype == xgrad.long
    x = xgrad.tensor(X)
    np.testing.assert_allclose((x + Y).numpy(), X + Y, rtol=1e-6)          # a numpy operand
    np.testing.assert_allclose((x * np.float32(2)).numpy(), X * 2, rtol=1e-6)   # a numpy scalar
    np.testing.assert_allclose((x + [1, 2, 3, 4]).numpy(), X + [1, 2, 3, 4], rtol=1e-6)   # a list
    np.testing.assert_allclose((x + True).numpy(), X + 1, rtol=1e-6)       # a bool
    assert x[1, 2].item() == pytest.approx(float(X[1, 2]))                  # a tuple index
    assert x.view((4, 3)).shape == (4, 3) and x.view(-1).shape == (12,)
    assert x.sum(dim=1).shape == (3,) and x.sum(1, keepdim=True).shape == (3, 1)
    np.testing.assert_allclose((x.data + 1).numpy(), X + 1, rtol=1e-6)    # `.data`
    leaf = xgrad.tensor(X, requires_grad=True)
    assert not (leaf.data * 2).requires_grad
    assert (x.__add__("a") is NotImplemented) and (x.__radd__(None) is NotImplemented)
    with pytest.raises(TypeError):
        x + "a"
    with pytest.raises(TypeError):
        None * x
    with pytest.raises(TypeError):
        x.relu(1)                                   # an argument it does not take: a TypeError
    with pytest.raises(TypeError):
        x.transpose(0)


def test_errors_are_torchs_kinds():
    x = xgrad.tensor(X)
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 0 with size 3"):
        x[3]
    with pytest.raises(IndexError, match="index -4 is out of bounds"):
        x[-4]
    with pytest.raises(RuntimeError, match="shape .* cannot be broadcast|broadcast"):
        x + xgrad.ones(5)
    with pytest.raises(RuntimeError, match="inner dimensions differ"):
        x @ x
    with pytest.raises(RuntimeError, match=r"shape '\(2, 5\)' is invalid for input of size 12"):
        x.view(2, 5)
    with pytest.raises(IndexError, match="out of range"):
        x.transpose(0, 2)
    with pytest.raises(IndexError):
        xgrad.tensor(3.0)[0]                        # a 0-d tensor: an IndexError, as torch's
    with pytest.raises(OverflowError):
        x + 10 ** 400


def test_select_is_torchs():
    x = xgrad.tensor(X, requires_grad=True)
    np.testing.assert_array_equal(x.select(1, -1).detach().numpy(), X[:, -1])
    np.testing.assert_array_equal(xgrad.select(x, 0, 2).detach().numpy(), X[2])
    assert x.select(1, 0).grad_fn.name() == "SelectBackward0"
    x.select(1, 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.eye(4, dtype=np.float32)[[2, 2, 2]])
    ids = xgrad.tensor([[1, 2], [3, 4]])
    assert ids.select(1, 1).tolist() == [2, 4] and ids.select(1, 1).dtype == xgrad.long
    with pytest.raises(IndexError, match="index 4 is out of bounds for dimension 1 with size 4"):
        x.select(1, 4)


def test_dims_past_32_bits_are_out_of_range_not_wrapped():
    # 2**32 would wrap to dim 0 in a C int: it must be refused
    for t in (xgrad.randn(2, 3), xgrad.tensor([[1, 2]])):
        with pytest.raises(IndexError, match="axis 4294967296 is out of range for a 2-D tensor"):
            t.transpose(0, 2 ** 32)
        with pytest.raises(IndexError, match="axis 4294967296 is out of range"):
            t.permute(2 ** 32, 1)
        with pytest.raises(IndexError, match="axis 4294967296 is out of range"):
            t.select(2 ** 32, 0)
