#!/usr/bin/python3
"""Reference values for tests/test_nn.cpp, computed with PyTorch (Debian's python3-torch).

Run once from this folder: /usr/bin/python3 make_nn_reference.py
It writes nn_reference.json and torch_model.safetensors; both are committed, so the tests need no PyTorch.
"""
import json
import struct

import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(0)
cases = {}


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def embedding_case(name, ids, **options):
    weight0 = torch.randn(6, 3)
    emb = torch.nn.Embedding(6, 3, **options)
    with torch.no_grad():
        emb.weight.copy_(weight0)
    upstream = torch.randn(*ids.shape, 3)
    out = emb(ids)
    out.backward(upstream)
    cases[name] = {
        "options": {k: v for k, v in options.items()},
        "weight": flat(weight0), "ids": ids.reshape(-1).tolist(), "ids_shape": list(ids.shape),
        "upstream": flat(upstream), "out": flat(out),
        "weight_after": flat(emb.weight), "grad_weight": flat(emb.weight.grad),
    }


ids = torch.tensor([[1, 2, 2, 5], [0, 2, 1, 2]])
embedding_case("embedding_plain", ids)
embedding_case("embedding_padding_idx", ids, padding_idx=2)
embedding_case("embedding_negative_padding_idx", ids, padding_idx=-1)
embedding_case("embedding_scale_grad_by_freq", ids, scale_grad_by_freq=True)
embedding_case("embedding_max_norm", ids, max_norm=1.0)
embedding_case("embedding_max_norm_l1", ids, max_norm=1.5, norm_type=1.0)

# Linear
x = torch.randn(2, 3, 4, requires_grad=True)
w = torch.randn(5, 4, requires_grad=True)
b = torch.randn(5, requires_grad=True)
up = torch.randn(2, 3, 5)
y = F.linear(x, w, b)
y.backward(up)
cases["linear"] = {"x": flat(x), "weight": flat(w), "bias": flat(b), "upstream": flat(up), "out": flat(y),
                   "grad_x": flat(x.grad), "grad_weight": flat(w.grad), "grad_bias": flat(b.grad)}

# LayerNorm
x = torch.randn(2, 3, 4, requires_grad=True)
ln = torch.nn.LayerNorm(4)
with torch.no_grad():
    ln.weight.copy_(torch.randn(4))
    ln.bias.copy_(torch.randn(4))
up = torch.randn(2, 3, 4)
y = ln(x)
y.backward(up)
cases["layernorm"] = {"x": flat(x), "weight": flat(ln.weight), "bias": flat(ln.bias), "upstream": flat(up),
                      "out": flat(y), "grad_x": flat(x.grad), "grad_weight": flat(ln.weight.grad),
                      "grad_bias": flat(ln.bias.grad)}


# cross_entropy; xgrad takes (B, T, V) logits, PyTorch (N, V) after the same reshape
def cross_entropy_case(name, shape, targets, generator=None, **options):
    logits = torch.randn(*shape, generator=generator, requires_grad=True)
    loss = F.cross_entropy(logits.reshape(-1, shape[-1]), targets.reshape(-1), **options)
    upstream = torch.randn(loss.shape, generator=generator) if options.get("reduction") == "none" else torch.tensor(1.0)
    loss.backward(upstream)
    if "weight" in options:
        options = {**options, "weight": flat(options["weight"])}
    cases[name] = {"options": options, "shape": list(shape), "logits": flat(logits),
                   "targets": targets.reshape(-1).tolist(), "loss": flat(loss), "upstream": flat(upstream),
                   "grad_logits": flat(logits.grad)}


cross_entropy_case("cross_entropy_2d", (4, 5), torch.tensor([1, 0, 4, 4]))
cross_entropy_case("cross_entropy_3d_ignore", (2, 3, 5), torch.tensor([[1, -100, 4], [0, 2, -100]]))
cross_entropy_case("cross_entropy_smoothing", (2, 3, 5), torch.tensor([[1, 3, 4], [0, 2, 2]]), label_smoothing=0.1)
cross_entropy_case("cross_entropy_custom_ignore_smoothing", (2, 3, 5), torch.tensor([[1, 3, 4], [0, 3, 2]]),
                   ignore_index=3, label_smoothing=0.25)

# softplus (docs/writing-an-op.md's example), on both sides of the threshold: beta x is 21 and 60 for
# the last two inputs. Fixed inputs, so the random draws of the cases after it stay as they were.
x = torch.tensor([[-3.0, -0.5, 0.0, 0.7], [2.5, 9.0, 10.5, 30.0]], requires_grad=True)
up = torch.tensor([[1.0, -2.0, 0.5, 3.0], [-1.5, 2.0, 1.0, -0.25]])
y = F.softplus(x, beta=2.0, threshold=20.0)
y.backward(up)
cases["softplus"] = {"x": flat(x), "upstream": flat(up), "beta": 2.0, "threshold": 20.0, "out": flat(y),
                     "grad_x": flat(x.grad)}

# Class weights and the reductions, and sin/cos: drawn from their own generator, so that the draws of
# the cases above and of the checkpoint below stay as they were.
g = torch.Generator().manual_seed(11)
class_weight = torch.tensor([0.5, 2.0, 1.0, 0.25, 3.0])
cross_entropy_case("cross_entropy_weight", (2, 3, 5), torch.tensor([[1, 3, 4], [0, -100, 2]]), g,
                   weight=class_weight)
cross_entropy_case("cross_entropy_weight_smoothing", (2, 3, 5), torch.tensor([[1, 3, 4], [0, -100, 2]]), g,
                   weight=class_weight, label_smoothing=0.2)
cross_entropy_case("cross_entropy_sum", (4, 5), torch.tensor([1, 0, -100, 4]), g, reduction="sum",
                   label_smoothing=0.1)
cross_entropy_case("cross_entropy_none", (2, 3, 5), torch.tensor([[1, 3, 4], [0, -100, 2]]), g, reduction="none",
                   weight=class_weight, label_smoothing=0.3)
x = torch.randn(2, 5, generator=g, requires_grad=True)
up = torch.randn(2, 5, generator=g)
cases["sin_cos"] = {"x": flat(x), "upstream": flat(up), "sin": flat(torch.sin(x)), "cos": flat(torch.cos(x)),
                    "grad_sin": flat(torch.autograd.grad(torch.sin(x), x, up)[0]),
                    "grad_cos": flat(torch.autograd.grad(torch.cos(x), x, up)[0])}

# Which torch made these values, and how to make them again; first in the file, so a reader sees it.
generator = {"torch": torch.__version__, "command": "cd tests/reference && /usr/bin/python3 make_nn_reference.py"}
with open("nn_reference.json", "w") as f:
    json.dump({"generator": generator, **cases}, f, indent=1)

# A checkpoint written on the Python side: the parameters of a tiny tok_emb + lm_head model, in the
# safetensors layout (8-byte little-endian header length, JSON header, raw float32 data).
model = {
    "tok_emb.weight": torch.randn(4, 3),
    "lm_head.weight": torch.randn(2, 3),
    "lm_head.bias": torch.randn(2),
}
header, blobs, offset = {"__metadata__": {"written_by": "pytorch " + torch.__version__}}, [], 0
for name, tensor in model.items():
    data = tensor.numpy().astype("<f4").tobytes()
    header[name] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [offset, offset + len(data)]}
    blobs.append(data)
    offset += len(data)
text = json.dumps(header).encode()
text += b" " * ((8 - len(text) % 8) % 8)
with open("torch_model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
with open("torch_model.json", "w") as f:
    json.dump({name: flat(t) for name, t in model.items()}, f, indent=1)
print("wrote nn_reference.json, torch_model.safetensors, torch_model.json")
