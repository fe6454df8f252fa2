#!/usr/bin/python3
"""Reference values for tests/test_attention.cpp, computed with PyTorch (Debian's python3-torch 1.13).

Run once from this folder: /usr/bin/python3 make_attention_reference.py
torch 1.13 has no scaled_dot_product_attention for training on CPU, so this is its composed attention,
as nanoGPT's slow path and PyTorch 2.x's math path write it: softmax(scale q k^T + mask) v, a bool mask
meaning True = take part, is_causal the lower triangle. It writes attention_reference.json (committed).
"""
import json
import math

import torch
import torch.nn.functional as F

torch.manual_seed(0)
cases = {}


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def attention(q, k, v, bool_mask=None, float_mask=None, is_causal=False, scale=None):
    L, S = q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    att = (q @ k.transpose(-2, -1)) * scale
    if is_causal:
        att = att.masked_fill(~torch.ones(L, S, dtype=torch.bool).tril(), float("-inf"))
    if bool_mask is not None:
        att = att.masked_fill(~bool_mask, float("-inf"))
    if float_mask is not None:
        att = att + float_mask
    return torch.softmax(att, dim=-1) @ v


def case(name, batch, L, S, E, Ev, **options):
    q = torch.randn(*batch, L, E, requires_grad=True)
    k = torch.randn(*batch, S, E, requires_grad=True)
    v = torch.randn(*batch, S, Ev, requires_grad=True)
    record = {"q_shape": list(q.shape), "k_shape": list(k.shape), "v_shape": list(v.shape)}
    if "mask_shape" in options:
        shape = options.pop("mask_shape")
        if options.pop("bool", False):
            mask = torch.rand(*shape) > 0.3
            mask[..., 0] = True                     # every query row sees at least one key
            options["bool_mask"] = mask
            record["bool_mask"] = [bool(b) for b in mask.reshape(-1).tolist()]
        else:
            options["float_mask"] = torch.randn(*shape)
            record["float_mask"] = flat(options["float_mask"])
        record["mask_shape"] = list(shape)
    if options.get("is_causal"):
        record["is_causal"] = True
    if options.get("scale") is not None:
        record["scale"] = options["scale"]
    out = attention(q, k, v, **options)
    upstream = torch.randn(*out.shape)
    out.backward(upstream)
    record.update({"q": flat(q), "k": flat(k), "v": flat(v), "upstream": flat(upstream), "out": flat(out),
                   "grad_q": flat(q.grad), "grad_k": flat(k.grad), "grad_v": flat(v.grad)})
    cases[name] = record


case("sdpa_plain", (2, 3), 5, 5, 4, 4)
case("sdpa_causal", (2, 2), 70, 70, 8, 8, is_causal=True)            # past one 64-row block
case("sdpa_bool_mask", (2, 2), 6, 6, 4, 4, mask_shape=(6, 6), bool=True)
case("sdpa_float_mask", (2, 2), 6, 7, 4, 3, mask_shape=(2, 1, 6, 7))
case("sdpa_scale", (1, 2), 4, 4, 8, 8, scale=0.25)
case("sdpa_l_ne_s", (3,), 5, 9, 4, 6)



def named(module):
    return {name: flat(p) for name, p in module.named_parameters()}


def grads(module):
    return {name: flat(p.grad) for name, p in module.named_parameters()}


# nn.MultiheadAttention, batch_first, with a bool attn_mask (True = masked) and a key_padding_mask
mha = torch.nn.MultiheadAttention(8, 2, batch_first=True)
query, key, value = torch.randn(2, 5, 8, requires_grad=True), torch.randn(2, 6, 8), torch.randn(2, 6, 8)
attn_mask = torch.rand(5, 6) > 0.7
attn_mask[:, 0] = False                                  # every query sees key 0
key_padding_mask = torch.zeros(2, 6, dtype=torch.bool)
key_padding_mask[1, 4:] = True                           # the second sequence is 4 keys long
out, weights = mha(query, key, value, key_padding_mask=key_padding_mask, attn_mask=attn_mask)
upstream = torch.randn(*out.shape)
out.backward(upstream)
cases["mha"] = {"params": named(mha), "query": flat(query), "key": flat(key), "value": flat(value),
                "attn_mask": [bool(b) for b in attn_mask.reshape(-1).tolist()],
                "key_padding_mask": [bool(b) for b in key_padding_mask.reshape(-1).tolist()],
                "out": flat(out), "weights": flat(weights), "upstream": flat(upstream),
                "grads": grads(mha), "grad_query": flat(query.grad)}
# the same parameters, sequence first, with per-head weights and a float mask
seq_first = torch.nn.MultiheadAttention(8, 2)
seq_first.load_state_dict(mha.state_dict())
query2 = torch.randn(5, 2, 8)
float_mask = torch.randn(5, 5)
out2, weights2 = seq_first(query2, query2, query2, attn_mask=float_mask, average_attn_weights=False)
cases["mha_seq_first"] = {"query": flat(query2), "float_mask": flat(float_mask), "out": flat(out2),
                          "weights": flat(weights2)}


# nanoGPT's Block (model.py), its attention written out as the slow path
class CausalSelfAttention(torch.nn.Module):
    def __init__(self, C, nh):
        super().__init__()
        self.c_attn, self.c_proj, self.n_head = torch.nn.Linear(C, 3 * C), torch.nn.Linear(C, C), nh

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class MLP(torch.nn.Module):
    def __init__(self, C):
        super().__init__()
        self.c_fc, self.gelu, self.c_proj = torch.nn.Linear(C, 4 * C), torch.nn.GELU(), torch.nn.Linear(4 * C, C)

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(torch.nn.Module):
    def __init__(self, C, nh):
        super().__init__()
        self.ln_1, self.attn = torch.nn.LayerNorm(C), CausalSelfAttention(C, nh)
        self.ln_2, self.mlp = torch.nn.LayerNorm(C), MLP(C)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


block = Block(16, 4)
with torch.no_grad():
    for p in block.parameters():
        p.add_(0.1 * torch.randn(*p.shape))               # LayerNorm's ones and zeros moved off their init
x = torch.randn(2, 9, 16, requires_grad=True)
y = block(x)
upstream = torch.randn(*y.shape)
y.backward(upstream)
cases["transformer_block"] = {"params": named(block), "x": flat(x), "out": flat(y), "upstream": flat(upstream),
                              "grads": grads(block), "grad_x": flat(x.grad)}



# A 10-step training trajectory of train_gpt's model (examples/train_gpt/model.h), nanoGPT's GPT with
# its head tied to wte: the initial weights, the batches and the loss of every step, under AdamW
# (decay on the 2-D weights) with clip_grad_norm 1.0.
class Gpt(torch.nn.Module):
    def __init__(self, V, T, n_layer, C, nh):
        super().__init__()
        self.wte, self.wpe = torch.nn.Embedding(V, C), torch.nn.Embedding(T, C)
        self.h = torch.nn.ModuleList([Block(C, nh) for _ in range(n_layer)])
        self.ln_f = torch.nn.LayerNorm(C)

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for block in self.h:
            x = block(x)
        return self.ln_f(x) @ self.wte.weight.t()


V, T, B = 13, 16, 3
gpt = Gpt(V, T, 2, 16, 2)
with torch.no_grad():
    for name, p in gpt.named_parameters():
        if "ln" not in name:
            p.normal_(0.0, 0.02)
initial = named(gpt)
decay = [p for p in gpt.parameters() if p.dim() >= 2]
no_decay = [p for p in gpt.parameters() if p.dim() < 2]
adamw = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                          lr=1e-2, betas=(0.9, 0.99))
xs, ys, losses = [], [], []
for step in range(10):
    x, y = torch.randint(0, V, (B, T)), torch.randint(0, V, (B, T))
    adamw.zero_grad()
    loss = F.cross_entropy(gpt(x).view(-1, V), y.view(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(gpt.parameters(), 1.0)
    adamw.step()
    xs.append(x.reshape(-1).tolist()), ys.append(y.reshape(-1).tolist()), losses.append(float(loss))
cases["gpt_trajectory"] = {"config": {"vocab": V, "block_size": T, "n_layer": 2, "n_embd": 16, "n_head": 2, "batch": B},
                           "params": initial, "x": xs, "y": ys, "losses": losses, "final": named(gpt)}

# nn.MultiheadAttention with key and value widths of their own (kdim, vdim: separate q/k/v_proj_weight),
# a learned key/value bias appended to the sequence (add_bias_kv) and a zero key/value after it
# (add_zero_attn), with both masks, which both grow by those two columns
mha_kv = torch.nn.MultiheadAttention(8, 2, batch_first=True, kdim=6, vdim=4, add_bias_kv=True, add_zero_attn=True)
with torch.no_grad():
    mha_kv.in_proj_bias.normal_(0.0, 0.5)
    mha_kv.out_proj.bias.normal_(0.0, 0.5)
query = torch.randn(2, 5, 8, requires_grad=True)
key, value = torch.randn(2, 3, 6, requires_grad=True), torch.randn(2, 3, 4, requires_grad=True)
attn_mask = torch.tensor([[False, True, False]] * 5)
key_padding_mask = torch.tensor([[False, False, False], [False, False, True]])
out, weights = mha_kv(query, key, value, key_padding_mask=key_padding_mask, attn_mask=attn_mask)
upstream = torch.randn(*out.shape)
out.backward(upstream)
cases["mha_kdim_bias_kv"] = {"params": named(mha_kv), "query": flat(query), "key": flat(key), "value": flat(value),
                             "attn_mask": [bool(b) for b in attn_mask.reshape(-1).tolist()],
                             "key_padding_mask": [bool(b) for b in key_padding_mask.reshape(-1).tolist()],
                             "out": flat(out), "weights": flat(weights), "upstream": flat(upstream),
                             "grads": grads(mha_kv), "grad_query": flat(query.grad), "grad_key": flat(key.grad),
                             "grad_value": flat(value.grad)}

generator = {"torch": torch.__version__, "command": "cd tests/reference && /usr/bin/python3 make_attention_reference.py"}
with open("attention_reference.json", "w") as f:
    json.dump({"generator": generator, **cases}, f, indent=1)
print("wrote attention_reference.json")
