#!/usr/bin/python3
"""Reference trajectories for tests/test_optim.cpp, computed with PyTorch's own optimizers.

Run once from this folder: /usr/bin/python3 make_optim_reference.py  (writes optim_reference.json)
Each case starts from fixed parameters and feeds fixed gradients for several steps, recording the
parameters after every step, so that only the update equations decide the result.
"""
import json

import torch

torch.manual_seed(0)
STEPS = 6
cases = {}


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def dense_case(name, make_optimizer, shape=(3, 4), groups=None, dtype=torch.float32):
    p0 = torch.randn(*shape, dtype=dtype)
    grads = [torch.randn(*shape, dtype=dtype) for _ in range(STEPS)]
    p = p0.clone().requires_grad_()
    opt = make_optimizer([p])
    trajectory = []
    for g in grads:
        p.grad = g.clone()
        opt.step()
        trajectory.append(flat(p))
    cases[name] = {"shape": list(shape), "p0": flat(p0), "grads": [flat(g) for g in grads], "trajectory": trajectory}


DENSE = {
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-2),
    "adam_defaults": lambda ps: torch.optim.Adam(ps),
    "adam_weight_decay": lambda ps: torch.optim.Adam(ps, lr=1e-2, weight_decay=0.1),
    "adam_amsgrad": lambda ps: torch.optim.Adam(ps, lr=1e-2, betas=(0.8, 0.95), amsgrad=True),
    "adam_maximize": lambda ps: torch.optim.Adam(ps, lr=1e-2, maximize=True),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=1e-2),
    "adamw_weight_decay": lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1, eps=1e-6),
    "sgd": lambda ps: torch.optim.SGD(ps, lr=0.1),
    "sgd_momentum": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1),
    "sgd_nesterov_weight_decay": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
}
for _name, _make in DENSE.items():
    dense_case(_name, _make)

# Sparse Adam on an embedding: rows 3 and 5 are touched in some steps only, row 4 in none.
V, C = 6, 3
weight0 = torch.randn(V, C)
emb = torch.nn.Embedding(V, C, sparse=True)
with torch.no_grad():
    emb.weight.copy_(weight0)
opt = torch.optim.SparseAdam(emb.parameters(), lr=1e-2)
ids_per_step = [[0, 1, 1], [2, 0], [3, 1, 0], [0, 0], [5, 3, 2], [1, 2, 0]]
upstreams, trajectory, moments = [], [], []
for ids in ids_per_step:
    opt.zero_grad()
    up = torch.randn(len(ids), C)
    emb(torch.tensor(ids)).backward(up)
    opt.step()
    upstreams.append(flat(up))
    trajectory.append(flat(emb.weight))
    state = opt.state[emb.weight]
    moments.append({"exp_avg": flat(state["exp_avg"]), "exp_avg_sq": flat(state["exp_avg_sq"])})
cases["sparse_adam"] = {"shape": [V, C], "p0": flat(weight0), "ids": ids_per_step, "upstreams": upstreams,
                        "trajectory": trajectory, "moments": moments}

# The same updates on float64 parameters (after the float32 cases, whose draws they leave as they were)
for _name, _make in DENSE.items():
    dense_case(_name + "_float64", _make, dtype=torch.float64)

# Which torch made these values, and how to make them again; first in the file, so a reader sees it.
generator = {"torch": torch.__version__, "command": "cd tests/reference && /usr/bin/python3 make_optim_reference.py"}
with open("optim_reference.json", "w") as f:
    json.dump({"generator": generator, **cases}, f, indent=1)
print("wrote optim_reference.json with", len(cases), "cases")
