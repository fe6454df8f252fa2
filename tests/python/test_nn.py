"""nn: Python-defined Modules with PyTorch's habits, the layers, containers, functional, init, save/load."""
import math

import numpy as np
import pytest

import xgrad
import xgrad.nn as nn
import xgrad.nn.functional as F


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(10, 4)
        self.blocks = nn.ModuleList([nn.Linear(4, 4), nn.Sequential(nn.Linear(4, 4), nn.GELU())])
        self.heads = nn.ModuleDict({"lm": nn.Linear(4, 10, bias=False)})
        self.heads["lm"].weight = self.wte.weight           # weight tying by attribute assignment
        self.scale = nn.Parameter(xgrad.ones(1))
        self.register_buffer("mask", xgrad.tril(xgrad.ones(3, 3)))
        self.register_buffer("scratch", xgrad.zeros(2), persistent=False)

    def forward(self, idx):
        x = self.wte(idx)
        for block in self.blocks:
            x = block(x)
        return self.heads["lm"](x) * self.scale


def test_attributes_register_parameters_modules_and_buffers_in_order():
    m = Tied()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["scale", "wte.weight", "blocks.0.weight", "blocks.0.bias", "blocks.1.0.weight", "blocks.1.0.bias"]
    assert len(list(m.parameters())) == 6                  # the tied weight once
    assert list(m.state_dict()) == ["scale", "mask", "wte.weight", "blocks.0.weight", "blocks.0.bias",
                                    "blocks.1.0.weight", "blocks.1.0.bias", "heads.lm.weight"]
    assert [n for n, _ in m.named_buffers()] == ["mask", "scratch"]
    assert m.heads.lm.weight._is_same(m.wte.weight)
    assert isinstance(m.scale, nn.Parameter) and m.scale.requires_grad


def test_a_python_module_trains_and_tied_gradients_add_up():
    m = Tied()
    idx = xgrad.tensor([[1, 2, 3]])
    out = m(idx)
    assert out.shape == (1, 3, 10)
    F.cross_entropy(out.view(-1, 10), idx.view(-1)).backward()
    assert m.heads.lm.weight.grad._is_same(m.wte.weight.grad)     # one tensor, one gradient
    # it is the sum of the gradients of both uses: the head's (every row) and the lookup's (rows 1-3)
    g = m.wte.weight.grad.numpy()
    assert np.abs(g[[0, 4, 5]]).sum() > 0 and np.abs(g[1:4]).sum() > 0
    m.zero_grad()
    assert m.wte.weight.grad is None


def test_train_eval_apply_and_repr():
    m = Tied()
    m.eval()
    assert not m.training and not m.blocks[1][0].training
    m.train()
    assert all(mod.training for mod in m.modules())
    seen = []
    m.apply(lambda mod: seen.append(type(mod).__name__))
    assert seen[-1] == "Tied" and "Embedding" in seen
    text = repr(m)
    assert "(wte): Embedding(10, 4)" in text and "(0): Linear(in_features=4, out_features=4, bias=True)" in text
    assert "(lm): Linear(in_features=4, out_features=10, bias=False)" in text and "GELU(approximate='none')" in text


def test_state_dict_round_trip_and_errors(tmp_path):
    a, b = Tied(), Tied()
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a.wte.weight.detach().numpy(), b.wte.weight.detach().numpy())
    xgrad.save(a.state_dict(), tmp_path / "m.safetensors")
    c = Tied()
    c.load_state_dict(xgrad.load(tmp_path / "m.safetensors"))
    np.testing.assert_array_equal(a.blocks[0].weight.detach().numpy(), c.blocks[0].weight.detach().numpy())
    sd = a.state_dict()
    del sd["scale"]
    sd["extra"] = xgrad.ones(1)
    with pytest.raises(RuntimeError, match='Missing key.*"scale".*|Unexpected key.*"extra"'):
        c.load_state_dict(sd)
    sd = a.state_dict()
    sd["blocks.0.bias"] = xgrad.ones(5)
    with pytest.raises(RuntimeError, match="size mismatch for blocks.0.bias"):
        c.load_state_dict(sd)
    assert c.load_state_dict({"scale": xgrad.ones(1)}, strict=False).missing_keys[0] == "mask"


def test_the_state_dict_shares_the_parameters_storage():
    m = nn.Linear(2, 2)
    sd = m.state_dict()
    with xgrad.no_grad():
        m.weight.fill_(3.0)
    assert sd["weight"].tolist() == [[3.0, 3.0], [3.0, 3.0]]


def test_layers_match_numpy():
    lin = nn.Linear(3, 2)
    x = xgrad.randn(4, 3)
    w, b = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    np.testing.assert_allclose(lin(x).detach().numpy(), x.numpy() @ w.T + b, rtol=1e-5, atol=1e-6)
    assert abs(w).max() <= 1 / math.sqrt(3)
    ln = nn.LayerNorm(3)
    y = ln(x).detach().numpy()
    xn = x.numpy()
    expected = (xn - xn.mean(-1, keepdims=True)) / np.sqrt(xn.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
    d = nn.Dropout(0.5)
    d.eval()
    assert d(x)._is_same(x) or d(x).tolist() == x.tolist()


def test_embedding_options():
    e = nn.Embedding(5, 3, padding_idx=-1)
    assert e.padding_idx == 4 and e.weight[4].tolist() == [0.0, 0.0, 0.0]
    e(xgrad.tensor([4, 1, 4])).sum().backward()
    assert e.weight.grad[4].tolist() == [0.0, 0.0, 0.0] and e.weight.grad[1].tolist() == [1.0, 1.0, 1.0]
    assert e([1, 2]).shape == (2, 3) and e(np.array([[0, 1]])).shape == (1, 2, 3)   # lists and numpy ids
    pre = nn.Embedding.from_pretrained(xgrad.ones(4, 2))
    assert not pre.weight.requires_grad and pre(xgrad.tensor([3])).tolist() == [[1.0, 1.0]]
    s = nn.Embedding(6, 2, sparse=True)
    s(xgrad.tensor([1, 1])).sum().backward()
    assert s.weight.grad[1].tolist() == [2.0, 2.0] and s.weight.grad[0].tolist() == [0.0, 0.0]
    assert repr(nn.Embedding(5, 3, padding_idx=0)) == "Embedding(5, 3, padding_idx=0)"


def test_functional_ops():
    logits = xgrad.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
    target = xgrad.tensor([0, 2])
    lp = logits.numpy() - np.log(np.exp(logits.numpy()).sum(1, keepdims=True))
    assert F.cross_entropy(logits, target).item() == pytest.approx(-(lp[0, 0] + lp[1, 2]) / 2, rel=1e-5)
    assert F.cross_entropy(logits, xgrad.tensor([0, -100])).item() == pytest.approx(-lp[0, 0], rel=1e-5)
    assert F.cross_entropy(logits, target, reduction="sum").item() == pytest.approx(-(lp[0, 0] + lp[1, 2]), rel=1e-5)
    # (N, C, T) with (N, T): classes on axis 1, as PyTorch's
    three = xgrad.randn(2, 3, 4)
    t3 = xgrad.randint(0, 3, (2, 4))
    flat = three.transpose(1, 2).reshape(-1, 3)
    assert F.cross_entropy(three, t3).item() == pytest.approx(F.cross_entropy(flat, t3.view(-1)).item(), rel=1e-6)
    np.testing.assert_allclose(F.softmax(logits, dim=0).numpy().sum(0), [1, 1, 1], rtol=1e-6)
    assert F.gelu(xgrad.tensor([1.0])).item() == pytest.approx(0.8413447, rel=1e-5)
    assert F.one_hot(xgrad.tensor([2, 0]), 3).tolist() == [[0, 0, 1], [1, 0, 0]]
    assert F.mse_loss(xgrad.ones(2), xgrad.zeros(2)).item() == 1.0
    assert F.nll_loss(F.log_softmax(logits, dim=-1), target).item() == pytest.approx(F.cross_entropy(logits, target).item(), rel=1e-5)
    # class weights and reduction="none", as PyTorch's: the mean divides by the targets' weights
    w = xgrad.tensor([0.5, 2.0, 4.0])
    weighted = -(0.5 * lp[0, 0] + 4.0 * lp[1, 2])
    assert F.cross_entropy(logits, target, weight=w).item() == pytest.approx(weighted / 4.5, rel=1e-5)
    assert F.cross_entropy(logits, target, weight=w, reduction="sum").item() == pytest.approx(weighted, rel=1e-5)
    per_target = F.cross_entropy(logits, xgrad.tensor([0, -100]), weight=w, reduction="none")
    assert per_target.shape == (2,) and per_target.tolist() == pytest.approx([-0.5 * lp[0, 0], 0.0], rel=1e-5)
    assert F.cross_entropy(three, t3, reduction="none").shape == (2, 4)
    log_p = F.log_softmax(logits, dim=-1)
    for reduction in ("mean", "sum"):
        assert F.nll_loss(log_p, target, weight=w, reduction=reduction).item() == pytest.approx(
            F.cross_entropy(logits, target, weight=w, reduction=reduction).item(), rel=1e-5)
    assert F.nll_loss(log_p, xgrad.tensor([0, -100]), weight=w, reduction="none").tolist() == pytest.approx(
        per_target.tolist(), rel=1e-5)
    with pytest.raises(RuntimeError, match="reduction must be"):
        F.cross_entropy(logits, target, reduction="avg")
    assert xgrad.sin(xgrad.tensor([0.5])).item() == pytest.approx(np.sin(0.5), rel=1e-6)
    assert xgrad.tensor([0.5]).cos().item() == pytest.approx(np.cos(0.5), rel=1e-6)


def test_multihead_attention_with_kdim_vdim_and_bias_kv():
    mha = nn.MultiheadAttention(8, 2, add_bias_kv=True, add_zero_attn=True, kdim=6, vdim=4, batch_first=True)
    shapes = {name: tuple(p.shape) for name, p in mha.named_parameters()}
    assert shapes == {"q_proj_weight": (8, 8), "k_proj_weight": (8, 6), "v_proj_weight": (8, 4), "in_proj_bias": (24,),
                      "bias_k": (1, 1, 8), "bias_v": (1, 1, 8), "out_proj.weight": (8, 8), "out_proj.bias": (8,)}
    q = xgrad.randn(2, 5, 8, requires_grad=True)
    out, weights = mha(q, xgrad.randn(2, 3, 6), xgrad.randn(2, 3, 4))
    assert out.shape == (2, 5, 8) and weights.shape == (2, 5, 5)   # 3 keys, the bias key and the zero key
    np.testing.assert_allclose(weights.detach().numpy().sum(-1), np.ones((2, 5)), rtol=1e-5)
    out.sum().backward()
    assert mha.bias_k.grad is not None and mha.bias_k.grad.shape == (1, 1, 8)
    assert mha.in_proj_weight is None and nn.MultiheadAttention(8, 2).bias_k is None   # as PyTorch's
    with pytest.raises(RuntimeError, match=r"expected key of shape \(B, T, 6\) \(kdim = 6\)"):
        mha(q, q, q)


def test_sdpa_matches_the_composed_attention():
    q, k, v = xgrad.randn(2, 2, 5, 4), xgrad.randn(2, 2, 5, 4), xgrad.randn(2, 2, 5, 4)
    fused = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(4))
    att = att.masked_fill(xgrad.tril(xgrad.ones(5, 5)) == 0, float("-inf"))
    composed = F.softmax(att, dim=-1) @ v
    np.testing.assert_allclose(fused.numpy(), composed.numpy(), rtol=1e-4, atol=1e-5)
    mask = xgrad.tril(xgrad.ones(5, 5, dtype=xgrad.bool))
    np.testing.assert_allclose(F.scaled_dot_product_attention(q, k, v, attn_mask=mask).numpy(), fused.numpy(),
                               rtol=1e-5, atol=1e-6)


def test_cpp_attention_layers_expose_torchs_parameter_names():
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    assert [n for n, _ in mha.named_parameters()] == ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]
    x = xgrad.randn(2, 3, 8)
    out, weights = mha(x, x, x)
    assert out.shape == (2, 3, 8) and weights.shape == (2, 3, 3)
    block = nn.TransformerBlock(8, 2)
    assert "attn.c_attn.weight" in dict(block.named_parameters())
    y = block(x)
    y.sum().backward()
    assert block.attn.c_attn.weight.grad is not None and y.shape == (2, 3, 8)
    with pytest.raises(AttributeError, match="C\\+\\+ layer"):
        block.attn.c_attn.weight = nn.Parameter(xgrad.ones(24, 8))
    csa = nn.CausalSelfAttention(8, 2, dropout=0.5)
    csa.eval()
    assert csa(x).tolist() == csa(x).tolist()          # eval reaches the C++ dropout


def test_init_functions_fill_in_place():
    w = nn.Parameter(xgrad.zeros(200, 100))
    nn.init.normal_(w, mean=1.0, std=0.02)
    a = w.detach().numpy()
    assert abs(a.mean() - 1.0) < 1e-3 and abs(a.std() - 0.02) < 1e-3 and w.requires_grad
    nn.init.zeros_(w)
    assert w.detach().numpy().max() == 0.0
    nn.init.ones_(w)
    nn.init.xavier_uniform_(w)
    assert abs(w.detach().numpy()).max() <= math.sqrt(6 / 300)


def test_clip_grad_norm():
    p = nn.Parameter(xgrad.ones(4))
    (p * 3.0).sum().backward()                      # grad (3, 3, 3, 3): norm 6
    norm = nn.utils.clip_grad_norm_([p], 1.0)
    assert norm.item() == pytest.approx(6.0)
    assert np.linalg.norm(p.grad.numpy()) == pytest.approx(1.0, rel=1e-5)


def test_forward_hooks():
    lin = nn.Linear(2, 2)
    calls = []
    handle = lin.register_forward_hook(lambda mod, args, out: calls.append(out.shape))
    lin(xgrad.ones(1, 2))
    handle.remove()
    lin(xgrad.ones(1, 2))
    assert calls == [(1, 2)]
