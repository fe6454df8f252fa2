"""Which values each op's backward saves, as torch 1.13 shows it: for every op, each input and the output
in turn is written in place (under no_grad) between the forward and the backward; the backward raises
("modified by an inplace operation") exactly when it needs what was written. make_saved_reference.py
records torch's answers in saved_reference.json; tests/python/test_saved.py asks xgrad's Python API the
same questions, and tests/test_version.cpp its C++ API (one lambda per op there, by the same names).

Each op: (its function of (torch, F, inputs), the inputs' shapes, their domain).
"""
import numpy as np

OPS = {
    "add": (lambda t, F, x: x[0] + x[1], [(2, 3), (3,)], "any"),
    "sub": (lambda t, F, x: x[0] - x[1], [(2, 3), (2, 3)], "any"),
    "mul": (lambda t, F, x: x[0] * x[1], [(2, 3), (3,)], "any"),
    "div": (lambda t, F, x: x[0] / x[1], [(2, 3), (3,)], "positive"),
    "add_scalar": (lambda t, F, x: x[0] + 2.0, [(2, 3)], "any"),
    "mul_scalar": (lambda t, F, x: x[0] * 3.0, [(2, 3)], "any"),
    "rsub_scalar": (lambda t, F, x: 2.0 - x[0], [(2, 3)], "any"),
    "rdiv_scalar": (lambda t, F, x: 2.0 / x[0], [(2, 3)], "positive"),
    "pow": (lambda t, F, x: x[0] ** 3.0, [(2, 3)], "any"),
    "neg": (lambda t, F, x: -x[0], [(2, 3)], "any"),
    "exp": (lambda t, F, x: x[0].exp(), [(2, 3)], "any"),
    "log": (lambda t, F, x: x[0].log(), [(2, 3)], "positive"),
    "sqrt": (lambda t, F, x: x[0].sqrt(), [(2, 3)], "positive"),
    "tanh": (lambda t, F, x: x[0].tanh(), [(2, 3)], "any"),
    "sin": (lambda t, F, x: x[0].sin(), [(2, 3)], "any"),
    "cos": (lambda t, F, x: x[0].cos(), [(2, 3)], "any"),
    "sigmoid": (lambda t, F, x: x[0].sigmoid(), [(2, 3)], "any"),
    "relu": (lambda t, F, x: x[0].relu(), [(2, 3)], "any"),
    "gelu": (lambda t, F, x: F.gelu(x[0]), [(2, 3)], "any"),
    "gelu_tanh": (lambda t, F, x: F.gelu(x[0], approximate="tanh"), [(2, 3)], "any"),
    "softplus": (lambda t, F, x: F.softplus(x[0], beta=2.0), [(2, 3)], "any"),
    "clamp": (lambda t, F, x: x[0].clamp(-0.5, 0.5), [(2, 3)], "any"),
    "sum": (lambda t, F, x: x[0].sum(), [(2, 3)], "any"),
    "mean": (lambda t, F, x: x[0].mean(), [(2, 3)], "any"),
    "sum_dim": (lambda t, F, x: x[0].sum(1), [(2, 3)], "any"),
    "max_dim": (lambda t, F, x: x[0].max(1)[0], [(2, 3)], "distinct"),
    "softmax": (lambda t, F, x: x[0].softmax(-1), [(2, 3)], "any"),
    "log_softmax": (lambda t, F, x: x[0].log_softmax(-1), [(2, 3)], "any"),
    "matmul": (lambda t, F, x: x[0] @ x[1], [(2, 3), (3, 4)], "any"),
    "matmul_batched": (lambda t, F, x: x[0] @ x[1], [(2, 2, 3), (2, 3, 4)], "any"),
    "linear": (lambda t, F, x: F.linear(x[0], x[1], x[2]), [(2, 3), (4, 3), (4,)], "any"),
    "masked_fill": (lambda t, F, x: x[0].masked_fill(t.tensor([True, False, True]), 0.5), [(2, 3)], "any"),
    "where": (lambda t, F, x: t.where(t.tensor([True, False, True]), x[0], x[1]), [(2, 3), (2, 3)], "any"),
    "cat": (lambda t, F, x: t.cat([x[0], x[1]]), [(2, 3), (1, 3)], "any"),
    "stack": (lambda t, F, x: t.stack([x[0], x[1]]), [(2, 3), (2, 3)], "any"),
    "view": (lambda t, F, x: x[0].view(6), [(2, 3)], "any"),
    "transpose": (lambda t, F, x: x[0].transpose(0, 1), [(2, 3)], "any"),
    "select": (lambda t, F, x: x[0][1], [(2, 3)], "any"),
    "expand": (lambda t, F, x: x[0].expand(2, 3), [(3,)], "any"),
    "index": (lambda t, F, x: x[0][t.tensor([1, 0, 1])], [(2, 3)], "any"),
    "tril": (lambda t, F, x: x[0].tril(), [(3, 3)], "any"),
    "topk": (lambda t, F, x: x[0].topk(2)[0], [(2, 3)], "distinct"),
    "embedding": (lambda t, F, x: F.embedding(t.tensor([2, 0, 2]), x[0]), [(3, 4)], "any"),
    "layer_norm": (lambda t, F, x: F.layer_norm(x[0], (3,), x[1], x[2]), [(2, 3), (3,), (3,)], "any"),
    "cross_entropy": (lambda t, F, x: F.cross_entropy(x[0], t.tensor([2, 0])), [(2, 3)], "any"),
    "dropout": (lambda t, F, x: F.dropout(x[0], 0.5), [(2, 3)], "any"),
    "clone": (lambda t, F, x: x[0].clone(), [(2, 3)], "any"),
    "contiguous": (lambda t, F, x: x[0].t().contiguous(), [(2, 3)], "any"),
}


def inputs(shapes, domain, seed):
    rng = np.random.default_rng(seed)
    out = []
    for shape in shapes:
        if domain == "positive":
            a = rng.uniform(0.5, 2.0, shape)
        elif domain == "distinct":
            a = rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1
        else:
            a = rng.standard_normal(shape)
        out.append(a.astype(np.float32))
    return out


def run(name, torch, F):
    """{"input 0": raises?, ..., "output": raises?} for op `name` on `torch` (torch or xgrad); None where the
    write itself is refused (an expanded output)."""
    fn, shapes, domain = OPS[name]
    answers = {}
    for which in [f"input {i}" for i in range(len(shapes))] + ["output"]:
        torch.manual_seed(0)
        x = [torch.tensor(a, requires_grad=True) for a in inputs(shapes, domain, 7)]
        out = fn(torch, F, x)
        weights = torch.tensor(inputs([tuple(out.shape)], "any", 8)[0])
        loss = (out * weights).sum()   # mul saves only the weights for out's gradient
        try:
            with torch.no_grad():
                (out if which == "output" else x[int(which.split()[1])]).add_(0.25)
        except RuntimeError:   # an expanded output cannot be written
            answers[which] = None
            continue
        try:
            loss.backward()
            answers[which] = False
        except RuntimeError as e:
            assert "modified by an inplace operation" in str(e), str(e)
            answers[which] = True
    return answers
