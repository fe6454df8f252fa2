"""float64 from Python: micrograd's own test suite as a new user runs it (`import xgrad as torch`), its
double-precision values compared exactly with torch's; .double(), dtype=, repr, the default dtype, and
the errors of dtypes PyTorch refuses."""
import math

import numpy as np
import pytest

import xgrad


def micrograd_sanity_check(torch):
    """micrograd's test_engine.py, test_sanity_check, its PyTorch half as written there."""
    x = torch.Tensor([-4.0]).double()
    x.requires_grad = True
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    y.backward()
    return y.data.item(), x.grad.item()


def micrograd_more_ops(torch):
    """micrograd's test_engine.py, test_more_ops, its PyTorch half as written there."""
    a = torch.Tensor([-4.0]).double()
    b = torch.Tensor([2.0]).double()
    a.requires_grad = True
    b.requires_grad = True
    c = a + b
    d = a * b + b**3
    c = c + c + 1
    c = c + 1 + c + (-a)
    d = d + d * 2 + (b + a).relu()
    d = d + 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g = g + 10.0 / f
    g.backward()
    return g.data.item(), a.grad.item(), b.grad.item()


def test_micrograd_sanity_check_in_double_precision():
    y, grad = micrograd_sanity_check(xgrad)
    assert (y, grad) == (-20.0, 46.0)   # micrograd's Value gives these


def test_micrograd_more_ops_in_double_precision():
    g, a_grad, b_grad = micrograd_more_ops(xgrad)
    # micrograd's README: 24.7041, 138.8338, 645.5773; in float32 the last digits differ
    assert abs(g - 24.70408163265306) < 1e-12
    assert abs(a_grad - 138.83381924198252) < 1e-12
    assert abs(b_grad - 645.5772594752186) < 1e-12


def test_micrograd_values_are_torchs_bit_for_bit():
    torch = pytest.importorskip("torch", reason="compares with torch 1.13; torch is not installed")
    assert micrograd_sanity_check(xgrad) == micrograd_sanity_check(torch)
    assert micrograd_more_ops(xgrad) == micrograd_more_ops(torch)


def test_double_tensors_carry_their_dtype_through_ops_and_gradients():
    x = xgrad.tensor([0.1, 0.2], dtype=xgrad.float64, requires_grad=True)
    assert x.dtype == xgrad.float64 == xgrad.double
    y = (x * x).sum()
    assert y.dtype == xgrad.float64
    y.backward()
    assert x.grad.dtype == xgrad.float64
    assert x.grad.tolist() == [0.2, 0.4]                           # 2 x, exactly, in double
    assert (x.float() * 3).dtype == xgrad.float32
    assert x.numpy(force=True).dtype == np.float64
    assert xgrad.zeros(2, dtype=xgrad.float64).dtype == xgrad.float64
    assert xgrad.arange(0.0, 1.0, 0.25, dtype=xgrad.float64).tolist() == [0.0, 0.25, 0.5, 0.75]
    assert xgrad.arange(0.1, 0.4, 0.1, dtype=xgrad.float64).tolist() == [0.1, 0.2, 0.30000000000000004, 0.4]   # torch's
    # float32 with float64: float64, and each gradient in its own dtype, as torch's promotion
    a = xgrad.ones(2, requires_grad=True)
    (a * x).sum().backward()
    assert a.grad.dtype == xgrad.float32
    assert a.grad.tolist() == pytest.approx([0.1, 0.2])


def test_a_double_tensor_prints_as_torchs():
    x = xgrad.tensor([1.5, -2.0], dtype=xgrad.float64)
    assert repr(x) == "tensor([ 1.5000, -2.0000], dtype=xgrad.float64)"
    assert repr(xgrad.tensor([1.0, 2.0]).double()) == "tensor([1., 2.], dtype=xgrad.float64)"
    torch = pytest.importorskip("torch", reason="compares with torch 1.13; torch is not installed")
    for values in ([1.5, -2.0], [1.0, 2.0], [1e-5, 3.0], [math.pi]):
        assert repr(xgrad.tensor(values, dtype=xgrad.float64)).replace("xgrad.", "torch.") == \
            repr(torch.tensor(values, dtype=torch.float64))


def test_the_default_dtype_is_float32_and_may_be_float64():
    assert xgrad.get_default_dtype() == xgrad.float32
    try:
        xgrad.set_default_dtype(xgrad.float64)
        assert xgrad.zeros(2).dtype == xgrad.float64
        assert xgrad.arange(0.5, 2).dtype == xgrad.float64
        assert xgrad.full((2,), 1.5).dtype == xgrad.float64
        assert xgrad.arange(3).dtype == xgrad.int64             # integral bounds: int64 still
    finally:
        xgrad.set_default_dtype(xgrad.float32)
    assert xgrad.zeros(2).dtype == xgrad.float32
    with pytest.raises(TypeError, match="only floating-point types"):
        xgrad.set_default_dtype(xgrad.int64)


def test_products_refuse_two_dtypes_as_torch_does():
    a, b = xgrad.ones(2, 2, dtype=xgrad.float64), xgrad.ones(2, 2)
    with pytest.raises(RuntimeError, match="expected scalar type Double but found Float"):
        a @ b
    with pytest.raises(RuntimeError, match="expected scalar type Double but found Float"):
        xgrad.nn.functional.linear(a, b)


def test_requires_grad_on_integers_is_torchs_error():
    with pytest.raises(RuntimeError, match="only Tensors of floating point dtype can require gradients"):
        xgrad.arange(3).float().long().requires_grad_()


def test_every_dtype_converts_prints_and_indexes_as_torchs_and_storage_types_refuse_to_compute():
    # nanoGPT's train.py maps its --dtype flag to these at import time
    ptdtype = {"float32": xgrad.float32, "bfloat16": xgrad.bfloat16, "float16": xgrad.float16}
    assert repr(ptdtype["bfloat16"]) == "xgrad.bfloat16" and xgrad.half == xgrad.float16
    assert xgrad.float16.is_floating_point and xgrad.float16.itemsize == 2 and xgrad.uint8.itemsize == 1
    values = [1.5, -2.0, 300.7, 0.0]
    x = xgrad.tensor(values)
    torch = pytest.importorskip("torch", reason="the reprs and values are compared with torch's")
    for name in ("float16", "bfloat16", "uint8", "int8", "int16", "int32", "int64", "bool", "float64"):
        y, want = x.to(getattr(xgrad, name)), torch.tensor(values).to(getattr(torch, name))
        assert y.dtype == getattr(xgrad, name) and y[1:].shape == (3,)
        assert y.tolist() == want.tolist(), name
        assert repr(y) == repr(want).replace("torch.", "xgrad."), name
    with pytest.raises(RuntimeError, match="float16"):
        x.half() * 2
    with pytest.raises(RuntimeError, match="bfloat16"):
        x.to(xgrad.bfloat16).exp()


def test_every_dtype_is_saved_and_loaded_as_itself(tmp_path):
    values = np.array([[-1.5, 0.0, 2.25], [3.0, -0.5, 1.0]])
    state = {str(d).split(".")[-1]: xgrad.tensor(values).to(d).t() for d in
             (xgrad.float32, xgrad.float64, xgrad.float16, xgrad.bfloat16, xgrad.int64, xgrad.int32, xgrad.int16,
              xgrad.int8, xgrad.uint8, xgrad.bool)}
    xgrad.save(state, tmp_path / "all.safetensors")
    loaded = xgrad.load(tmp_path / "all.safetensors")
    assert sorted(loaded) == sorted(state)
    for name, t in state.items():
        assert loaded[name].dtype == t.dtype, name
        assert loaded[name].shape == (3, 2), name
        assert loaded[name].float().tolist() == t.float().tolist(), name


def test_a_float64_model_trains_in_float64_with_each_optimizer():
    for make in (lambda ps: xgrad.optim.SGD(ps, lr=0.1, momentum=0.9), lambda ps: xgrad.optim.Adam(ps, lr=0.1),
                 lambda ps: xgrad.optim.AdamW(ps, lr=0.1)):
        w = xgrad.tensor([1.0, -2.0, 0.5], dtype=xgrad.float64, requires_grad=True)
        opt = make([w])
        for _ in range(3):
            opt.zero_grad()
            (w * w).sum().backward()
            opt.step()
        assert w.dtype == xgrad.float64 and (w.abs() < xgrad.tensor([1.0, 2.0, 0.5], dtype=xgrad.float64)).all()
        state = opt.state_dict()
        assert all(v.dtype == xgrad.float64 for s in state["state"].values() for v in s.values() if isinstance(v, xgrad.Tensor) and v.dim() > 0)


def test_float64_draws_have_doubles_bits():
    for draw in (xgrad.randn, xgrad.rand):
        x = draw(1000, dtype=xgrad.float64)
        assert x.dtype == xgrad.float64
        assert (x != x.float().double()).sum().item() > 990   # 53 random bits, not float32 draws widened
    x = xgrad.randn(20000, dtype=xgrad.float64)
    assert abs(x.mean().item()) < 0.05 and abs(x.std().item() - 1.0) < 0.05
    u = xgrad.rand(20000, dtype=xgrad.float64)
    assert u.min().item() >= 0.0 and u.max().item() < 1.0 and abs(u.mean().item() - 0.5) < 0.02
    assert xgrad.randn_like(x).dtype == xgrad.float64 and xgrad.rand_like(u[:3]).shape == (3,)
    w = xgrad.zeros(1000, dtype=xgrad.float64)
    assert (w.normal_() != w.float().double()).sum().item() > 990 and (w.uniform_() != w.float().double()).sum().item() > 990
