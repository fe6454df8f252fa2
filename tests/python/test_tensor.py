"""Tensors: creation, dtypes, numpy sharing both ways, repr, autograd basics, grad mode."""
import numpy as np
import pytest

import xgrad


def test_creation_functions_take_torch_arguments():
    assert xgrad.zeros(2, 3).shape == (2, 3)
    assert xgrad.ones((2, 3)).numpy().sum() == 6
    assert xgrad.full((2,), 7).dtype == xgrad.long and xgrad.full((2,), 7.5).dtype == xgrad.float32
    assert xgrad.randn(4, 5, device="cpu").shape == (4, 5)
    assert xgrad.rand(3).numpy().min() >= 0
    r = xgrad.randint(3, 9, (100,))
    assert r.dtype == xgrad.long and 3 <= r.min().item() and r.max().item() < 9
    assert xgrad.arange(5).tolist() == [0, 1, 2, 3, 4] and xgrad.arange(5).dtype == xgrad.long
    assert xgrad.arange(0, 1, 0.25).tolist() == [0.0, 0.25, 0.5, 0.75]
    assert xgrad.arange(0, 4, dtype=xgrad.long, device="cpu").dtype == xgrad.int64
    assert sorted(xgrad.randperm(6).tolist()) == list(range(6))
    assert xgrad.zeros_like(xgrad.ones(2, 2)).tolist() == [[0, 0], [0, 0]]


def test_tensor_infers_dtype_as_torch():
    assert xgrad.tensor([1, 2]).dtype == xgrad.long
    assert xgrad.tensor([1.0, 2]).dtype == xgrad.float32
    assert xgrad.tensor([True, False]).dtype == xgrad.bool
    assert xgrad.tensor([1, 2], dtype=xgrad.float32).tolist() == [1.0, 2.0]
    assert xgrad.tensor(np.arange(3, dtype=np.int32)).dtype == xgrad.int32   # a numpy array keeps its dtype
    assert xgrad.tensor(np.ones(2)).dtype == xgrad.float64
    assert xgrad.tensor(3.5).item() == 3.5 and xgrad.tensor(3.5).dim() == 0


def test_manual_seed_makes_draws_repeat():
    xgrad.manual_seed(5)
    a = xgrad.randn(3).tolist()
    xgrad.manual_seed(5)
    assert xgrad.randn(3).tolist() == a


def test_numpy_shares_memory_both_ways():
    t = xgrad.zeros(2, 3)
    a = t.numpy()
    a[0, 1] = 5.0                      # numpy writes show in the tensor
    assert t[0, 1].item() == 5.0
    t[1, 2] = 7.0                      # tensor writes show in numpy
    assert a[1, 2] == 7.0
    t.add_(1.0)                        # in place: the same buffer
    assert a[1, 2] == 8.0
    b = np.asarray(t)                  # through __array__, as torch's
    assert np.shares_memory(a, b)
    ids = xgrad.tensor([1, 2, 3])
    ids.numpy()[0] = 9
    assert ids.tolist() == [9, 2, 3] and ids.numpy().dtype == np.int64


def test_from_numpy_shares_float32_memory_and_converts_the_rest():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = xgrad.from_numpy(a)
    a[0, 0] = 100
    assert t[0, 0].item() == 100.0     # shared, as torch.from_numpy
    t[1, 1] = -1.0
    assert a[1, 1] == -1.0
    f = xgrad.from_numpy(np.asfortranarray(a))   # its strides kept: a column-major view
    assert f.tolist() == a.tolist() and f.stride() == (1, 2) and not f.is_contiguous()
    assert xgrad.from_numpy(a[:, ::2]).stride() == (3, 2)
    del a
    assert t.tolist()[0][0] == 100.0   # the tensor keeps the array's memory alive
    for dt in (np.float64, np.int64, np.int32, np.int16, np.int8, np.uint8, np.bool_, np.float16):
        b = np.zeros(3, dtype=dt)
        u = xgrad.from_numpy(b)          # every dtype torch has: its own, sharing memory both ways
        assert u.dtype == getattr(xgrad, np.dtype(dt).name if dt is not np.bool_ else "bool")
        u[1] = 1
        b[2] = 1
        assert b.tolist() == [0, 1, 1] and u.tolist() == [0, 1, 1] and np.shares_memory(u.numpy(), b)
    with pytest.raises(RuntimeError, match="negative"):
        xgrad.from_numpy(np.arange(4, dtype=np.float32)[::-1])
    with pytest.raises(TypeError, match="complex128"):
        xgrad.from_numpy(np.ones(2, dtype=np.complex128))
    with pytest.raises(TypeError):
        xgrad.from_numpy([1, 2])


def test_numpy_refuses_a_tensor_that_requires_grad_as_torch():
    w = xgrad.randn(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="requires grad"):
        w.numpy()
    assert w.detach().numpy().shape == (2,)


def test_repr_looks_like_torch():
    assert repr(xgrad.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(xgrad.tensor([[0.5, -1.25]])) == "tensor([[ 0.5000, -1.2500]])"
    assert repr(xgrad.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(xgrad.ones(2, requires_grad=True)) == "tensor([1., 1.], requires_grad=True)"
    assert repr(xgrad.ones(2, requires_grad=True) * 2) == "tensor([2., 2.], grad_fn=<MulBackward0>)"
    assert repr(xgrad.tensor(True)) == "tensor(True)"
    assert repr(xgrad.long) == "xgrad.int64"


def test_grad_fn_names_are_torchs():
    # The class names PyTorch 1.13 prints for the same expressions, where xgrad's own op has another
    # name or torch's depends on the result's rank.
    import xgrad.nn as nn
    import xgrad.nn.functional as F
    x = xgrad.randn(2, 3, 4, requires_grad=True)
    ids = xgrad.tensor([0, 1])
    expected = {
        "AddBackward0": [x + x, x + 1], "MulBackward0": [x * x, x * 2, 2 / x], "RsubBackward1": [1 - x],
        "SumBackward0": [x.sum()], "SumBackward1": [x.sum(1)], "MeanBackward0": [x.mean()],
        "MeanBackward1": [x.mean(-1)], "MaxBackward1": [x.max()], "MaxBackward0": [x.max(1)[0]],
        "ViewBackward0": [x.view(6, 4)], "IndexBackward0": [x[ids], x[x > 0], x[0, [0, 1]]],
        "SelectBackward0": [x[0], x[-1], x[:, 0], x[1:2, 0], x[None, 0], x[..., 0]],
        "SliceBackward0": [x[:, 1:3], x[0, 1:3], x[0, :], x[:], x[::2]], "UnsqueezeBackward0": [x[None], x[:, None]],
        "AliasBackward0": [x[...]], "SplitWithSizesBackward0": [x.split([1, 1])[0]], "CatBackward0": [xgrad.cat([x, x])],
        "MmBackward0": [x[0] @ x[1].T], "UnsafeViewBackward0": [x @ x.transpose(-2, -1), F.linear(x, xgrad.randn(5, 4))],
        "AddmmBackward0": [F.linear(x[0], xgrad.randn(5, 4), xgrad.randn(5))],
        "NativeLayerNormBackward0": [F.layer_norm(x, (4,))], "EmbeddingBackward0": [nn.Embedding(3, 4)(ids)],
        "NllLossBackward0": [F.cross_entropy(x.view(-1, 4), xgrad.tensor([0, 1, 2, 3, 0, 1]))],
        "GeluBackward0": [F.gelu(x)], "SoftmaxBackward0": [x.softmax(-1)], "ExpBackward0": [x.exp()],
    }
    for name, results in expected.items():
        for r in results:
            assert r.grad_fn.name() == name
            assert repr(r.grad_fn) == f"<{name}>"


def test_shape_size_dim_item_tolist():
    t = xgrad.zeros(2, 3, 4)
    assert t.shape == (2, 3, 4) and t.size() == (2, 3, 4) and t.size(-1) == 4 and t.dim() == 3
    assert t.numel() == 24 and len(t) == 2 and t.ndim == 3
    assert xgrad.tensor([[1, 2]]).tolist() == [[1, 2]]
    assert xgrad.tensor([4]).item() == 4 and isinstance(xgrad.tensor([4]).item(), int)
    assert t.device == xgrad.device("cpu") and str(t.device) == "cpu" and not t.is_cuda
    assert [r.shape for r in t] == [(3, 4), (3, 4)]
    assert int(xgrad.tensor(3)) == 3 and float(xgrad.tensor(2.5)) == 2.5


def test_backward_with_gradient_and_retain_graph():
    x = xgrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * x
    y.backward(xgrad.tensor([1.0, 1.0, 1.0]), retain_graph=True)
    assert x.grad.tolist() == [2.0, 4.0, 6.0]
    y.sum().backward()                          # the graph was kept: gradients accumulate
    assert x.grad.tolist() == [4.0, 8.0, 12.0]
    x.grad = None
    assert x.grad is None
    assert x.is_leaf and not y.is_leaf and y.grad_fn is not None and x.grad_fn is None


def test_detach_requires_grad_and_zero():
    x = xgrad.ones(2, requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d.is_leaf
    z = xgrad.ones(3).requires_grad_()
    assert z.requires_grad
    z.requires_grad = False
    assert not z.requires_grad
    with xgrad.no_grad():
        x.zero_()
    assert x.tolist() == [0.0, 0.0]
    with pytest.raises(RuntimeError, match="leaf Variable"):
        x.zero_()


def test_no_grad_as_context_manager_and_decorator():
    w = xgrad.ones(2, requires_grad=True)
    with xgrad.no_grad():
        assert not (w * 2).requires_grad
        assert not xgrad.is_grad_enabled()
    assert xgrad.is_grad_enabled() and (w * 2).requires_grad

    @xgrad.no_grad()
    def f():
        return (w * 2).requires_grad

    assert f() is False and xgrad.is_grad_enabled()


def test_detect_anomaly_names_the_op():
    x = xgrad.tensor([-1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="log"):
        with xgrad.autograd.detect_anomaly():
            xgrad.log(x)
    xgrad.log(x)   # off again: no error


def test_set_num_threads():
    before = xgrad.get_num_threads()
    xgrad.set_num_threads(1)
    assert xgrad.get_num_threads() == 1
    xgrad.set_num_threads(before)
    with pytest.raises(ValueError):
        xgrad.set_num_threads(0)


def test_inplace_methods_and_operators():
    t = xgrad.ones(3)
    t += 1
    t *= 3
    t -= xgrad.tensor([1.0, 2.0, 3.0])
    t /= 2
    assert t.tolist() == [2.5, 2.0, 1.5]
    assert t.fill_(4).tolist() == [4, 4, 4]
    src = xgrad.tensor([1.0, 2.0, 3.0])
    assert t.copy_(src).tolist() == [1, 2, 3]
    m = t.masked_fill_(xgrad.tensor([True, False, False]), 0.0)
    assert m is t and t.tolist() == [0, 2, 3]


def test_parameter_updates_by_hand_as_micrograd_does():
    w = xgrad.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    with xgrad.no_grad():
        w -= 0.1 * w.grad          # in place: the same leaf, updated
    assert np.allclose(w.detach().numpy(), [0.8, 1.6]) and w.requires_grad and w.is_leaf


def test_autograd_grad_leaves_grad_untouched():
    x = xgrad.tensor([3.0], requires_grad=True)
    (g,) = xgrad.autograd.grad((x * x).sum(), x)
    assert g.tolist() == [6.0] and x.grad is None


def test_a_write_after_the_forward_makes_backward_raise_torchs_error():
    # without the version counter this gave w.grad == [4, 6, 8] (2 (w + 1)) silently
    w = xgrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (w * w).sum()
    assert w._version == 0
    with xgrad.no_grad():
        w.add_(1)
    assert w._version == 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation.*is at version 1; expected version 0"):
        y.backward()
    assert w.grad is None


def test_writes_through_detach_and_to_outputs_are_counted_but_not_through_data_as_in_torch():
    w = xgrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (w * w).sum()
    w.detach().mul_(2)                 # detach() shares the version counter
    with pytest.raises(RuntimeError, match="input 0 of 'mul'"):
        y.backward()
    w = xgrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (w * w).sum()
    w.data.mul_(2)                     # .data has a counter of its own: torch's silently wrong gradient
    assert w._version == 0
    y.backward()
    assert w.grad.tolist() == [4.0, 8.0, 12.0]
    x = xgrad.tensor([0.0, 1.0], requires_grad=True)
    e = x.exp()
    with xgrad.no_grad():
        e.add_(1)
    with pytest.raises(RuntimeError, match="output 0 of 'exp'"):
        e.sum().backward()


def test_a_write_that_no_backward_reads_is_allowed_as_in_torch():
    w = xgrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (w + w).sum()
    with xgrad.no_grad():
        w.add_(1)
    y.backward()
    assert w.grad.tolist() == [2.0, 2.0, 2.0]


def test_views_from_python_allocate_nothing_and_write_through():
    x = xgrad.zeros(4096, 4096, requires_grad=True)   # 64 MiB
    before = xgrad._xgrad.live_storage_bytes()
    xgrad._xgrad.reset_peak_storage_bytes()
    views = [x.view(-1), x.transpose(0, 1), x.T, x[1:4000:3, 7:], x[5], x[..., 2], x[None], x.detach(), x.data,
             x.unsqueeze(0).expand(2, -1, -1), x.narrow(1, 3, 10), x.chunk(2)[1], x.t().t()]
    assert xgrad._xgrad.peak_storage_bytes() == before
    with xgrad.no_grad():
        views[7][2, 9] = 1.0           # x.detach()
        views[8][3, 1:3] = 2.0         # x.data
        x[4:6].add_(3.0)
    assert x[2, 9].item() == 1.0 and x[3, 2].item() == 2.0 and x[5, 0].item() == 3.0
    assert views[1][9, 2].item() == 1.0 and views[4][0].item() == 3.0


def test_pickle_and_copy_rebuild_tensors_and_parameters():
    """Every pickle protocol (0 and 1 used to abort the interpreter), copy.copy and copy.deepcopy, as
    torch: values, dtype, requires_grad and the class (a Parameter stays one, as in a deep-copied Module)."""
    import copy
    import pickle
    for t in (xgrad.randn(2, 3), xgrad.tensor([1, 2]), xgrad.tensor([True, False]), xgrad.ones(3, requires_grad=True)):
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            u = pickle.loads(pickle.dumps(t, protocol))
            assert (u.dtype, u.shape, u.requires_grad, u.tolist()) == (t.dtype, t.shape, t.requires_grad, t.tolist())
        for u in (copy.copy(t), copy.deepcopy(t)):
            assert (u.dtype, u.tolist()) == (t.dtype, t.tolist())
    m = xgrad.nn.Linear(2, 3)
    m2 = copy.deepcopy(m)
    assert type(m2.weight) is xgrad.nn.Parameter and m2.weight.requires_grad
    assert m2.weight.tolist() == m.weight.tolist() and m2.weight.data_ptr() != m.weight.data_ptr()


def test_a_leaf_whose_data_changed_shape_since_its_grad_says_so_at_backward():
    q = xgrad.nn.Parameter(xgrad.ones(2))
    (q * 2).sum().backward()
    q.data = xgrad.ones(5)
    with pytest.raises(RuntimeError, match=r"a gradient of shape \(5,\) cannot be added to the .grad of shape \(2,\) already "
                                           r"there: the tensor's data was replaced"):
        (q * 2).sum().backward()
    q.grad = None   # as the message says: then it accumulates afresh
    (q * 2).sum().backward()
    assert q.grad.tolist() == [2.0] * 5


def test_int64_arithmetic_wraps_around_as_torchs():
    # two's complement, as torch 1.13 gives; computed without C++'s undefined signed overflow (UBSan)
    a = xgrad.tensor([2 ** 40])
    assert (a * a).tolist() == [0]
    assert (xgrad.tensor([2 ** 63 - 1]) + 1).tolist() == [-2 ** 63]
    assert (xgrad.tensor([-2 ** 63]) - 1).tolist() == [2 ** 63 - 1]
    # torch 1.13 dies of SIGFPE on this one; xgrad wraps as the multiplication does
    assert (xgrad.tensor([-2 ** 63]) // -1).tolist() == [-2 ** 63]
    assert (xgrad.tensor([-2 ** 63]) % -1).tolist() == [0]
    assert xgrad.tensor([[1, 2]])[:0].sum(0).tolist() == [0, 0]   # the sum of nothing


def test_integral_arange_and_repeated_sum_dims_as_torch():
    # torch makes an integral arange's bounds integral first, toward zero (values from torch 1.13)
    assert xgrad.arange(4.2213, dtype=xgrad.long).tolist() == [0, 1, 2, 3]
    assert xgrad.arange(0.5, dtype=xgrad.long).tolist() == []
    assert xgrad.arange(-2.5, 3, dtype=xgrad.long).tolist() == [-2, -1, 0, 1, 2]
    assert xgrad.arange(0, 5, 1.5, dtype=xgrad.long).tolist() == [0, 1, 2, 3, 4]
    assert xgrad.arange(0, 5, 1.5).tolist() == [0.0, 1.5, 3.0, 4.5]
    for t in (xgrad.zeros(2, 3, dtype=xgrad.long), xgrad.zeros(2, 3)):
        with pytest.raises(RuntimeError):
            t.sum((0, 0))
