"""xgrad from Python against PyTorch from Python, in the same run (torch only when importable):

  small ops     the per-call cost of one op on tiny tensors, (4, 4) floats: dispatch, allocation,
                graph recording; the median of many calls
  W1            the seed's embedding step: tok(ids) + pos(arange(T)), backward of a fixed upstream
  W4            the toy LM step: zero_grad, tok + pos -> Linear head -> cross_entropy, backward, Adam
                step, loss.item(); also the same step driven from C++ in this process

Targets: each small op at least 1.5x torch's speed from Python, and the views (view, transpose, x[i],
slicing, detach: metadata only) at least 2x; W4 from Python within 1.2x of W4 from C++.

    PYTHONPATH=build/python python3 bench/python_bench.py [--threads 1] [--quick]
"""
import argparse
import statistics
import time

import numpy as np

import xgrad

try:
    import torch
except ImportError:   # the comparison is optional
    torch = None


def per_call(fn, calls, rounds=7):
    """The median over rounds of the mean time of one call, in microseconds."""
    for _ in range(max(10, calls // 10)):
        fn()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(samples)


def alternating(fns, calls, rounds=7):
    """per_call for each of fns, their rounds interleaved (a, b, a, b, ...) so that the machine's drift
    (it is shared and noisy) reaches every side alike; the median per side, in microseconds."""
    for fn in fns:
        for _ in range(max(10, calls // 10)):
            fn()
    samples = [[] for _ in fns]
    for _ in range(rounds):
        for fn, out in zip(fns, samples):
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            out.append((time.perf_counter() - start) / calls * 1e6)
    return [statistics.median(s) for s in samples]


def small_ops(lib, calls):
    a, b = lib.randn(4, 4), lib.randn(4, 4)
    w = lib.randn(4, 4, requires_grad=True)
    ids = lib.tensor([1, 2, 3])
    ops = {
        "a + b": lambda: a + b,
        "a * 2.0": lambda: a * 2.0,
        "a @ b": lambda: a @ b,
        "a.sum()": lambda: a.sum(),
        "a.relu()": lambda: a.relu(),
        "a.view(16)": lambda: a.view(16),
        "a.transpose(0, 1)": lambda: a.transpose(0, 1),
        "a[0]": lambda: a[0],
        "a[:, 1:3]": lambda: a[:, 1:3],
        "a.detach()": lambda: a.detach(),
        "a[ids]": lambda: a[ids],
        "softmax(a, -1)": lambda: lib.softmax(a, -1),
        "w * a (graph)": lambda: w * a,
        "(w * a).sum().backward()": lambda: (w * a).sum().backward(),
    }
    return ops


VIEWS = {"a.view(16)", "a.transpose(0, 1)", "a[0]", "a[:, 1:3]", "a.detach()"}   # their target is 2x


def w1_step(lib, nn):
    lib.manual_seed(1)
    tok, pos = nn.Embedding(65, 64), nn.Embedding(64, 64)
    rng = np.random.default_rng(2)
    ids = lib.tensor(rng.integers(0, 65, (32, 64)))
    positions = lib.arange(64)
    upstream = lib.tensor(rng.standard_normal((32, 64, 64)).astype(np.float32))

    def step():
        tok.weight.grad = None
        pos.weight.grad = None
        (tok(ids) + pos(positions)).backward(upstream)
    return step


def w4_step(lib, nn, F, optim):
    lib.manual_seed(6)
    tok, pos, head = nn.Embedding(65, 64), nn.Embedding(64, 64), nn.Linear(64, 65)
    params = [tok.weight, pos.weight, head.weight, head.bias]
    adam = optim.Adam(params, lr=1e-3)
    rng = np.random.default_rng(7)
    x = lib.tensor(rng.integers(0, 65, (32, 64)))
    y = lib.tensor(rng.integers(0, 65, (32, 64)))
    positions = lib.arange(64)

    def step():
        adam.zero_grad()
        logits = head(tok(x) + pos(positions))
        loss = F.cross_entropy(logits.view(-1, 65), y.view(-1))
        loss.backward()
        adam.step()
        return loss.item()
    return step


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    calls = 2000 if args.quick else 20000
    xgrad.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    print(f"threads {args.threads}; torch {'%s' % torch.__version__ if torch else 'not importable: xgrad alone'}")

    print(f"\nsmall ops on (4, 4) tensors, microseconds per call (median of 7 rounds of {calls})")
    mine, theirs = small_ops(xgrad, calls), small_ops(torch, calls) if torch else {}
    met = 0
    for name in mine:
        if name in theirs:
            us, them = alternating([mine[name], theirs[name]], calls)
            theirs[name] = them
            ratio, target = them / us, 2.0 if name in VIEWS else 1.5
            met += ratio >= target
            print(f"  {name:28s} xgrad {us:7.2f}   torch {theirs[name]:7.2f}   {ratio:5.2f}x "
                  f"{'met' if ratio >= target else 'MISSED'} ({target}x)")
        else:
            print(f"  {name:28s} xgrad {per_call(mine[name], calls):7.2f}")
    if theirs:
        print(f"  targets (2x torch for the views, 1.5x for the rest): met by {met} of {len(mine)} ops")

    steps = 20 if args.quick else 200
    print(f"\nworkloads, ms per step (median of 7 rounds of {max(5, steps // 4)} steps, the sides interleaved)")
    n = max(5, steps // 4)
    sides = [w1_step(xgrad, xgrad.nn)] + ([w1_step(torch, torch.nn)] if torch else [])
    w1 = [t / 1e3 for t in alternating(sides, n)]
    line = f"  W1 seed embedding   xgrad from Python {w1[0]:.3f}"
    if torch:
        line += f"   torch from Python {w1[1]:.3f}   {w1[1] / w1[0]:.2f}x"
    print(line)
    # W4 rounds interleaved by hand: Python n steps, C++ n steps (timed by its own loop), torch n steps
    python_step = w4_step(xgrad, xgrad.nn, xgrad.nn.functional, xgrad.optim)
    torch_step = w4_step(torch, torch.nn, torch.nn.functional, torch.optim) if torch else None
    rounds = {"python": [], "cpp": [], "torch": []}
    for _ in range(8):
        start = time.perf_counter()
        for _ in range(n):
            python_step()
        rounds["python"].append((time.perf_counter() - start) / n * 1e3)
        rounds["cpp"].append(xgrad._xgrad._bench_w4_cpp(n, 1)[0] * 1e3)
        if torch_step:
            start = time.perf_counter()
            for _ in range(n):
                torch_step()
            rounds["torch"].append((time.perf_counter() - start) / n * 1e3)
    w4 = [statistics.median(rounds[k][1:]) for k in ("python", "cpp", "torch") if rounds[k]]   # round 1: warm-up
    cpp = w4[1]
    line = f"  W4 toy LM step      xgrad from Python {w4[0]:.3f}   xgrad from C++ {cpp:.3f}   " \
           f"Python / C++ {w4[0] / cpp:.2f} (target <= 1.2: {'met' if w4[0] / cpp <= 1.2 else 'MISSED'})"
    if torch:
        line += f"   torch from Python {w4[2]:.3f} ({w4[2] / w4[0]:.2f}x)"
    print(line)


if __name__ == "__main__":
    main()
