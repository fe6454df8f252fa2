"""xgrad.nn.functional: torch.nn.functional's ops, run by xgrad's C++ kernels."""
import xgrad
from xgrad import _xgrad, softmax, log_softmax, relu, tanh, sigmoid  # noqa: F401

from xgrad._xgrad._functional import (linear, embedding, layer_norm, cross_entropy, dropout, gelu,  # noqa: F401
                                      softplus, scaled_dot_product_attention)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    diff = input - target
    if reduction == "mean":
        return (diff * diff).mean()
    if reduction == "sum":
        return (diff * diff).sum()
    if reduction == "none":
        return diff * diff
    raise ValueError(f"{reduction} is not a valid value for reduction")


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """input (N, C) of log-probabilities, target (N) ids: -input[n, target[n]], weighted by weight[target[n]]
    when given; "mean" divides by the weights' sum over the kept targets, "none" gives 0 where ignored."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    target = target if isinstance(target, xgrad.Tensor) else xgrad.tensor(target)
    if target.dtype != xgrad.long:   # never truncated: 1.7 is no class
        raise RuntimeError(f"nll_loss: expected class indices of dtype xgrad.long as target, got {target.dtype}")
    keep = target != ignore_index
    if reduction == "none":
        safe = xgrad.tensor([0 if t == ignore_index else t for t in target.tolist()], dtype=xgrad.long)
        picked = input[xgrad.arange(input.shape[0]), safe]
        w = weight[safe] if weight is not None else 1.0
        return xgrad.where(keep, -picked * w, 0.0)   # not times keep: an ignored inf would give inf * 0 = NaN
    picked = input[xgrad.arange(input.shape[0])[keep], target[keep]]
    if weight is None:
        return -picked.mean() if reduction == "mean" else -picked.sum()
    w = weight.detach()[target[keep]]
    total = -(picked * w).sum()
    return total / w.sum() if reduction == "mean" else total


def silu(input, inplace=False):
    return input * xgrad.sigmoid(input)


def one_hot(tensor, num_classes=-1):
    """ids (...) -> (..., num_classes) int64 with a 1 at each id, as torch.nn.functional.one_hot."""
    if tensor.dtype != xgrad.long:
        raise RuntimeError("one_hot is only applicable to index tensor of dtype xgrad.long")
    if num_classes < 0:
        num_classes = int(tensor.max().item()) + 1
    return (tensor.unsqueeze(-1) == xgrad.arange(num_classes)).long()
