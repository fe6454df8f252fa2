"""Shared by the pytest files: the examples' folder, and a central-difference gradient check."""
import os
import subprocess
import sys

import numpy as np
import pytest

import xgrad

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples", "python")


@pytest.fixture(autouse=True)
def seeded():
    xgrad.manual_seed(0)
    yield


def run_example(name, *args, timeout=60):
    """Runs examples/python/<name> with this interpreter and the same PYTHONPATH; returns its stdout."""
    result = subprocess.run([sys.executable, os.path.join(EXAMPLES, name), *args], capture_output=True, text=True,
                            timeout=timeout, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    return result.stdout


def numeric_grad(f, x, eps=1e-2):
    """d sum(f(x) * w) / dx by central differences in float64 around x (a numpy array), with fixed random
    weights w on the outputs so that a swapped or mis-summed term cannot hide."""
    x = x.astype(np.float64)
    w = np.random.default_rng(1).standard_normal(np.shape(f(x.astype(np.float32))))
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += eps
        down[i] -= eps
        g[i] = ((f(up.astype(np.float32)) * w).sum() - (f(down.astype(np.float32)) * w).sum()) / (2 * eps)
    return g, w


def check_grad(op, x, atol=2e-2, eps=1e-2):
    """op: xgrad tensor -> tensor. Compares its backward with central differences."""
    expected, w = numeric_grad(lambda a: op(xgrad.tensor(a)).numpy(force=True).astype(np.float64), x, eps)
    t = xgrad.tensor(x, requires_grad=True)
    y = op(t)
    (y * xgrad.tensor(w.astype(np.float32))).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), expected, atol=atol, rtol=2e-2)
