"""xgrad.nn.utils: clip_grad_norm_, as torch.nn.utils."""
import xgrad
from xgrad import _xgrad


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scales every gradient by max_norm / (total_norm + 1e-6) when their joint 2-norm exceeds max_norm;
    returns the norm before clipping, as a 0-d tensor."""
    if isinstance(parameters, xgrad.Tensor):
        parameters = [parameters]
    parameters = list(parameters)
    if float(norm_type) != 2.0:
        raise ValueError(f"clip_grad_norm_: xgrad supports norm_type=2.0 only, got {norm_type}")
    total = _xgrad._clip_grad_norm(parameters, float(max_norm))
    if error_if_nonfinite and (total != total or total in (float("inf"), float("-inf"))):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, "
                           "so it cannot be clipped. To disable this error and scale the gradients by the non-finite "
                           "norm anyway, set `error_if_nonfinite=False`")
    return xgrad.tensor(total)
