"""repr(tensor) as PyTorch prints it: tensor([[ 0.1234, -1.5000]], requires_grad=True)."""
import numpy as np


def _float_format(values):
    finite = values[np.isfinite(values)]
    if finite.size and np.all(finite == np.round(finite)) and np.max(np.abs(finite)) < 1e8:
        return lambda v: f"{v:.0f}." if np.isfinite(v) else str(v).replace("inf", "inf")
    big = finite.size and np.max(np.abs(finite)) >= 1e8
    nonzero = np.abs(finite[finite != 0])
    small = nonzero.size and np.min(nonzero) < 1e-4
    if big or small or (finite.size and np.max(np.abs(finite)) / max(np.min(nonzero) if nonzero.size else 1, 1e-30) > 1e8):
        return lambda v: f"{v:.4e}"
    return lambda v: f"{v:.4f}"


def tensor_repr(t):
    from . import bfloat16, bool as bool_, get_default_dtype, int64
    a = (t.float() if t.dtype == bfloat16 else t).numpy(force=True)   # numpy has no bfloat16
    if a.dtype.kind == "f":
        fmt = _float_format(a.astype(np.float64).ravel())
    elif a.dtype == np.bool_:
        fmt = lambda v: "True" if v else "False"   # noqa: E731
    else:
        fmt = lambda v: str(int(v))   # noqa: E731
    width = max((len(fmt(v)) for v in a.ravel()), default=0)
    formatter = {"all": lambda v: fmt(v).rjust(width)}
    if a.ndim == 0:
        body = fmt(a.item())
    elif a.size == 0:
        body = "[]"
    else:
        body = np.array2string(a, separator=", ", prefix="tensor(", formatter=formatter, threshold=1000,
                               edgeitems=3, max_line_width=80)
    extras = []
    if a.size == 0 and a.ndim != 1:
        extras.append(f"size={tuple(a.shape)}")
    if t.dtype not in (get_default_dtype(), int64, bool_) or (t.dtype == int64 and a.size == 0):
        extras.append(f"dtype={t.dtype!r}")   # as torch's: the dtypes a literal would not give
    if t.grad_fn is not None:
        extras.append(f"grad_fn={t.grad_fn!r}")
    elif t.requires_grad:
        extras.append("requires_grad=True")
    return "tensor(" + ", ".join([body] + extras) + ")"
