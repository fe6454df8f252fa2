"""Indexing as PyTorch's (NumPy's): reads and writes against numpy, gradients through reads."""
import numpy as np
import pytest

import xgrad
from conftest import check_grad

A = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
INDICES = [
    0, -1, slice(1, 3), (slice(None), 2), (Ellipsis, -1), (None, 0), (0, None, slice(None, None, 2)),
    ([0, 2],), (slice(None), [1, 3]), ([0, 1], [2, 3]), (slice(None), [0, 1], [2, 3]), ([0, 2], slice(None), [1, 4]),
    (1, [0, 3]), (np.array([[0], [2]]), np.array([[1, 2]])), (slice(None), [-1]), (slice(-2, None), 1, slice(None, 3)),
]


@pytest.mark.parametrize("index", INDICES, ids=repr)
def test_reads_match_numpy(index):
    t = xgrad.from_numpy(A)
    np.testing.assert_array_equal(t[index].numpy(), A[index])
    ids = xgrad.from_numpy(A.astype(np.int64))
    np.testing.assert_array_equal(ids[index].numpy(), A.astype(np.int64)[index])


def test_boolean_masks_read_and_write():
    t = xgrad.from_numpy(A)
    mask = t > 30
    np.testing.assert_array_equal(t[mask].numpy(), A[A > 30])
    np.testing.assert_array_equal(t[0][t[0, :, 0] > 4].numpy(), A[0][A[0, :, 0] > 4])
    logits = xgrad.tensor([[1.0, 5.0, 3.0, 2.0]])
    v, _ = xgrad.topk(logits, 2)
    logits[logits < v[:, [-1]]] = -float("inf")     # nanoGPT's top-k filter
    assert logits.tolist() == [[-float("inf"), 5.0, 3.0, -float("inf")]]


@pytest.mark.parametrize("index", INDICES[:12], ids=repr)
def test_writes_match_numpy(index):
    expected = A.copy()
    expected[index] = -7
    t = xgrad.from_numpy(A)
    t[index] = -7
    np.testing.assert_array_equal(t.numpy(), expected)


def test_writes_broadcast_tensors():
    t = xgrad.zeros(2, 3)
    t[:, 1] = xgrad.tensor([5.0, 6.0])
    t[0] = xgrad.tensor([1.0, 2.0, 3.0])
    assert t.tolist() == [[1, 2, 3], [0, 6, 0]]
    ids = xgrad.zeros((1, 3), dtype=xgrad.long)
    ids[0, -1] = 4
    assert ids.tolist() == [[0, 0, 4]]


@pytest.mark.parametrize("index", [(0,), (slice(None), [1, 1, 2]), (slice(1, None), -1, slice(None, None, 2))], ids=repr)
def test_gradients_flow_through_reads(index):
    x = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)
    check_grad(lambda t: t[index], x)


def test_a_write_into_a_graph_tensor_is_differentiable():
    w = xgrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = w * 2
    y[1] = 0.0
    y.sum().backward()
    assert w.grad.tolist() == [2.0, 0.0, 2.0]
    with pytest.raises(RuntimeError, match="leaf Variable"):
        w[0] = 1.0


def test_long_tensors_index_and_slice_with_tensors():
    data = xgrad.arange(100)
    i = xgrad.tensor(7)
    assert data[i:i + 3].tolist() == [7, 8, 9]
    assert xgrad.stack([data[j:j + 2] for j in xgrad.tensor([1, 5])]).tolist() == [[1, 2], [5, 6]]


def test_index_errors_are_index_errors():
    t = xgrad.zeros(3, 4)
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 0 with size 3"):
        t[3]
    with pytest.raises(IndexError, match="too many indices"):
        t[0, 0, 0]
    with pytest.raises(IndexError, match="out of bounds"):
        t[:, [0, 9]]
    with pytest.raises(IndexError, match="must be long"):
        t[xgrad.tensor([0.0])]
    with pytest.raises(IndexError):
        t["a"]
    with pytest.raises(IndexError, match="mask"):
        t[xgrad.tensor([True, False])]
