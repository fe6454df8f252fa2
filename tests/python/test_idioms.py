"""Idioms of other PyTorch scripts, makemore's above all: generators, p.data updates, unbind, std,
linspace, one_hot (its MLP with batch norm by hand); int32 counts, keepdims= and x[range(n), ys] (its
bigrams); retain_grad, torch.all and allclose (its backprop by hand); histogram."""
import numpy as np

import xgrad as torch
import xgrad.nn.functional as F


def test_a_generator_is_its_own_stream():
    g = torch.Generator().manual_seed(2147483647)
    a = torch.randn((3, 4), generator=g)
    torch.randn(5)                                   # the default generator does not disturb g
    b = torch.randint(0, 10, (6,), generator=g)
    g2 = torch.Generator().manual_seed(2147483647)
    assert torch.randn((3, 4), generator=g2).tolist() == a.tolist()
    assert torch.randint(0, 10, (6,), generator=g2).tolist() == b.tolist()
    p = torch.tensor([0.1, 0.2, 0.7])
    assert torch.multinomial(p, 5, replacement=True, generator=g).tolist() == \
        torch.multinomial(p, 5, replacement=True, generator=g2).tolist()


def test_makemore_mlp_trains_by_hand():
    g = torch.Generator().manual_seed(1)
    X = torch.randint(0, 27, (200, 3), generator=g)
    Y = (X[:, 0] + X[:, 1]) % 27                     # a learnable rule
    C = torch.randn((27, 10), generator=g)
    W1 = torch.randn((30, 64), generator=g) * (5 / 3) / 30 ** 0.5
    W2 = torch.randn((64, 27), generator=g) * 0.01
    b2 = torch.randn(27, generator=g) * 0
    bngain, bnbias = torch.ones((1, 64)), torch.zeros((1, 64))
    parameters = [C, W1, W2, b2, bngain, bnbias]
    for p in parameters:
        p.requires_grad = True
    assert sum(p.nelement() for p in parameters) == 27 * 10 + 30 * 64 + 64 * 27 + 27 + 128
    losses = []
    for i in range(60):
        ix = torch.randint(0, X.shape[0], (32,), generator=g)
        emb = C[X[ix]]                                            # (32, 3, 10)
        hpreact = torch.cat(torch.unbind(emb, 1), 1) @ W1          # (32, 64)
        hpreact = bngain * (hpreact - hpreact.mean(0, keepdim=True)) / hpreact.std(0, keepdim=True) + bnbias
        loss = F.cross_entropy(torch.tanh(hpreact) @ W2 + b2, Y[ix])
        for p in parameters:
            p.grad = None
        loss.backward()
        for p in parameters:
            p.data += -0.1 * p.grad                                # in place, outside the graph
        losses.append(loss.log10().item())
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.05
    assert all(p.is_leaf and p.requires_grad for p in parameters)
    assert F.one_hot(Y[:4], num_classes=27).float().shape == (4, 27)
    assert torch.linspace(-3, 0, 4).tolist() == [-3.0, -2.0, -1.0, 0.0]


def test_makemore_bigram_counts_and_its_numpy_spellings():
    # makemore part 1: int32 counts, P.sum(1, keepdims=True), and the loss read as logprobs[range(n), ys]
    N = torch.zeros((27, 27), dtype=torch.int32)
    N[1, 2] += 3
    N[1, 5] += 1
    P = (N + 1).float()
    P /= P.sum(1, keepdims=True)
    np.testing.assert_allclose(P[1].tolist()[2], 4 / 31, rtol=1e-6)
    assert P.sum(axis=1).shape == (27,) and P.mean(axis=0, keepdims=True).shape == (1, 27)
    assert P.max(axis=1).values.shape == (27,) and P.argmax(axis=1, keepdims=True).shape == (27, 1)
    assert P.var(axis=0, keepdims=True).shape == (1, 27) and P.std(axis=0).shape == (27,)
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    try:
        x.sum(dim=0, axis=1)
    except TypeError as e:
        assert "both dim= and its alias axis=" in str(e)
    else:
        raise AssertionError("dim= and axis= together must be refused")
    logits = torch.randn(5, 27, requires_grad=True)
    ys = torch.tensor([0, 3, 26, 3, 1])
    logprobs = logits.log_softmax(1)
    loss = -logprobs[range(5), ys].mean()
    np.testing.assert_allclose(loss.item(), F.cross_entropy(logits, ys).item(), rtol=1e-6)
    loss.backward()
    assert logits.grad.shape == (5, 27)
    assert logprobs[range(1, 4)].shape == (3, 27)     # a range alone is a list of rows


def test_backprop_ninja_checks_a_hand_gradient_against_retain_grad():
    # makemore part 4: every intermediate keeps its gradient (retain_grad), and a hand-derived
    # gradient is compared with it by torch.all(==), torch.allclose and the largest difference
    g = torch.Generator().manual_seed(2147483647)
    n = 8
    logits = torch.randn((n, 27), generator=g, requires_grad=True)
    ys = torch.randint(0, 27, (n,), generator=g)
    counts = (logits - logits.max(1, keepdim=True).values).exp()
    probs = counts * counts.sum(1, keepdims=True) ** -1
    logprobs = probs.log()
    loss = -logprobs[range(n), ys].mean()
    assert not logprobs.retains_grad
    for t in (logprobs, probs, counts):
        t.retain_grad()
    assert logprobs.retains_grad and not logits.retains_grad
    loss.backward()
    dlogprobs = torch.zeros_like(logprobs)
    dlogprobs[range(n), ys] = -1.0 / n
    assert torch.all(dlogprobs == logprobs.grad).item()
    dprobs = (1.0 / probs) * dlogprobs
    assert torch.allclose(dprobs, probs.grad)
    dlogits = F.softmax(logits, 1)
    dlogits[range(n), ys] -= 1
    dlogits /= n
    assert (dlogits - logits.grad).abs().max().item() < 1e-6
    assert counts.grad.shape == (n, 27)
    with np.testing.assert_raises(RuntimeError):
        torch.ones(3).retain_grad()                 # requires_grad=False, as torch refuses
    hist, edges = torch.histogram(torch.tanh(logits), bins=10, density=True)
    assert hist.shape == (10,) and edges.shape == (11,)
    assert abs((hist * (edges[1:] - edges[:-1])).sum().item() - 1.0) < 1e-5


def test_a_number_raised_to_a_tensor():
    # a nanoGPT fork's base-2 softmax: torch.pow(2.0, x), and its gradient ln 2 * 2^x
    x = torch.tensor([[-1.0, 0.0, 2.5]], requires_grad=True)
    e = torch.pow(2.0, x)
    np.testing.assert_allclose(e.detach().numpy(), [[0.5, 1.0, 2.0 ** 2.5]], rtol=1e-6)
    (e / e.sum(dim=-1, keepdim=True)).sum().backward()   # a softmax sums to 1: no gradient
    np.testing.assert_allclose(x.grad.numpy(), [[0.0, 0.0, 0.0]], atol=1e-6)
    y = torch.tensor([1.0, 3.0], requires_grad=True)
    torch.pow(2.0, y).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [2 * np.log(2), 8 * np.log(2)], rtol=1e-5)
