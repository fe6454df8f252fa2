"""xgrad.autograd: anomaly detection, and grad / backward as functions, as torch.autograd."""
import contextlib as _contextlib

from . import _xgrad


class detect_anomaly(_contextlib.ContextDecorator):
    """Inside, the first op whose output, or whose gradient in backward(), holds a NaN or an Inf raises
    a RuntimeError naming the op, its input shapes and the pass. As torch.autograd.detect_anomaly."""

    def __init__(self, check_nan=True):
        self._guards = []

    def __enter__(self):
        guard = _xgrad._DetectAnomaly()
        guard.enter()
        self._guards.append(guard)

    def __exit__(self, *exc):
        self._guards.pop().exit()
        return False


class set_detect_anomaly(detect_anomaly):
    def __init__(self, mode, check_nan=True):
        super().__init__()
        self._mode = mode

    def __enter__(self):
        if self._mode:
            super().__enter__()

    def __exit__(self, *exc):
        if self._mode:
            super().__exit__(*exc)
        return False


def backward(tensors, grad_tensors=None, retain_graph=None):
    if not isinstance(tensors, (list, tuple)):
        tensors, grad_tensors = [tensors], [grad_tensors]
    grad_tensors = grad_tensors if grad_tensors is not None else [None] * len(tensors)
    for t, g in zip(tensors, grad_tensors):
        t.backward(g, retain_graph=retain_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, allow_unused=False):
    """d outputs / d inputs for leaf inputs, leaving their .grad as it was."""
    single = not isinstance(inputs, (list, tuple))
    inputs = [inputs] if single else list(inputs)
    for x in inputs:
        if not x.is_leaf:
            raise RuntimeError("xgrad.autograd.grad: inputs must be leaf tensors in xgrad")
    saved = [x.grad for x in inputs]
    for x in inputs:
        x.grad = None
    try:
        backward(outputs, grad_outputs, retain_graph=retain_graph)
        result = [x.grad for x in inputs]
    finally:
        for x, g in zip(inputs, saved):
            x.grad = g
    for r in result:
        if r is None and not allow_unused:
            raise RuntimeError("One of the differentiated Tensors appears to not have been used in the graph. "
                               "Set allow_unused=True if this is the desired behavior.")
    return tuple(result)
