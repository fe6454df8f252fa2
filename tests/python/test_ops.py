"""Every op against numpy, and its backward against central differences (one catalogue drives it)."""
import numpy as np
import pytest

import xgrad
import xgrad.nn.functional as F
from conftest import check_grad

rng = np.random.default_rng(0)
X = rng.standard_normal((3, 4)).astype(np.float32)
POS = (np.abs(X) + 0.5).astype(np.float32)
B = xgrad.tensor(rng.standard_normal((4,)).astype(np.float32))
M = xgrad.tensor(rng.standard_normal((4, 2)).astype(np.float32))

CATALOGUE = [   # name, op, input
    ("add", lambda t: t + B, X), ("radd", lambda t: 2.0 + t, X), ("sub", lambda t: t - B, X),
    ("rsub", lambda t: 1.0 - t, X), ("mul", lambda t: t * B, X), ("div", lambda t: t / (B * B + 1.0), X),
    ("rdiv", lambda t: 1.0 / t, POS), ("pow", lambda t: t ** 3, X), ("neg", lambda t: -t, X),
    ("exp", xgrad.exp, X), ("log", xgrad.log, POS), ("sqrt", xgrad.sqrt, POS), ("tanh", xgrad.tanh, X),
    ("sigmoid", xgrad.sigmoid, X), ("relu", xgrad.relu, X), ("gelu", F.gelu, X), ("abs", xgrad.abs, X),
    ("clamp", lambda t: t.clamp(-0.5, 0.5), X), ("softmax0", lambda t: F.softmax(t, dim=0), X),
    ("log_softmax", lambda t: t.log_softmax(-1), X), ("matmul", lambda t: t @ M, X),
    ("sum", lambda t: t.sum(dim=1, keepdim=True), X), ("mean", lambda t: t.mean(0), X),
    ("max", lambda t: t.max(dim=1).values, X), ("var", lambda t: t.var(dim=1), X),
    ("transpose", lambda t: t.T, X), ("view", lambda t: t.view(2, 6), X), ("permute", lambda t: t.unsqueeze(0).permute(2, 0, 1), X),
    ("cat", lambda t: xgrad.cat([t, t * 2], dim=1), X), ("stack", lambda t: xgrad.stack([t, -t], dim=1), X),
    ("split", lambda t: t.split([1, 3], dim=1)[1], X), ("chunk", lambda t: t.chunk(2, dim=1)[0], X),
    ("masked_fill", lambda t: t.masked_fill(t > 0, 0.0), X), ("where", lambda t: xgrad.where(t > 0, t, t * t), X),
    ("tril", xgrad.tril, X), ("triu", lambda t: xgrad.triu(t, 1), X), ("topk", lambda t: xgrad.topk(t, 2).values, X),
    ("expand", lambda t: t[:, :1].expand(3, 4), X), ("norm", lambda t: t.norm(), X),
]


@pytest.mark.parametrize("name,op,x", CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_backward_matches_central_differences(name, op, x):
    check_grad(op, x)


def test_the_gradient_check_can_fail():
    bad = xgrad.tensor(X, requires_grad=True)
    with pytest.raises(AssertionError):
        check_grad(lambda t: t.detach() * 2 + t, X)   # the detached term's gradient is missing
    assert bad.requires_grad


def test_values_match_numpy():
    t = xgrad.tensor(X)
    np.testing.assert_allclose((t @ M).numpy(), X @ M.numpy(), rtol=1e-5)
    np.testing.assert_allclose(t.softmax(-1).numpy(), np.exp(X) / np.exp(X).sum(-1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(t.sum().item(), X.sum(), rtol=1e-5)
    np.testing.assert_allclose(t.mean(dim=(0, 1)).item(), X.mean(), rtol=1e-5)
    assert t.argmax(dim=1).tolist() == X.argmax(1).tolist() and t.argmin().item() == X.argmin()
    assert t.max().item() == X.max() and t.min(dim=0).indices.tolist() == X.argmin(0).tolist()
    np.testing.assert_allclose(t.var().item(), X.var(ddof=1), rtol=1e-5)
    assert (t > 0).dtype == xgrad.bool and (t > 0).tolist() == (X > 0).tolist()
    assert ((t > 0) & (t < 1)).tolist() == ((X > 0) & (X < 1)).tolist() and (~(t > 0)).tolist() == (X <= 0).tolist()
    np.testing.assert_allclose((2 ** t).numpy(), 2 ** X, rtol=1e-5)
    assert (t == t).all().item() and not (t != t).any().item()


def test_integer_arithmetic_stays_integer():
    ids = xgrad.tensor([1, 2, 3])
    assert (ids + 1).dtype == xgrad.long and (ids * ids).tolist() == [1, 4, 9]
    assert (ids / 2).dtype == xgrad.float32 and (ids // 2).tolist() == [0, 1, 1] and (ids % 2).tolist() == [1, 0, 1]
    assert (ids + 0.5).dtype == xgrad.float32 and (ids == 2).tolist() == [False, True, False]
    assert (ids > 1).sum().item() == 2 and (ids > 1).sum().dtype == xgrad.long
    assert ids.float().dtype == xgrad.float32 and ids.to(xgrad.float32).long().tolist() == [1, 2, 3]
    assert xgrad.cat([ids, ids]).tolist() == [1, 2, 3, 1, 2, 3] and ids.view(3, 1).shape == (3, 1)
    assert ids.max().item() == 3 and ids.unsqueeze(0).shape == (1, 3)


def test_topk_multinomial_tril():
    v, i = xgrad.topk(xgrad.tensor([[3.0, 1.0, 2.0]]), 2)
    assert v.tolist() == [[3.0, 2.0]] and i.tolist() == [[0, 2]]
    xgrad.manual_seed(0)
    draws = xgrad.multinomial(xgrad.tensor([[0.0, 1.0, 3.0]]), 2000, replacement=True)
    counts = np.bincount(draws.numpy().ravel(), minlength=3)
    assert counts[0] == 0 and 0.7 < counts[2] / 2000 < 0.8
    assert sorted(xgrad.multinomial(xgrad.ones(4), 4).tolist()) == [0, 1, 2, 3]   # without replacement: each once
    assert xgrad.tril(xgrad.ones(2, 3, dtype=xgrad.bool)).tolist() == [[True, False, False], [True, True, False]]
