"""xgrad.nn.functional: torch.nn.functional's ops, run by xgrad's C++ kernels."""
import xgrad
from xgrad import _xgrad, softmax, log_softmax, relu, tanh, sigmoid  # noqa: F401

_f = _xgrad._functional
linear = _f.linear
layer_norm = _f.layer_norm
gelu = _f.gelu
softplus = _f.softplus
scaled_dot_product_attention = _f.scaled_dot_product_attention


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False, sparse=False,
              position_table=False):
    """input ids (...) (an int64 tensor, a list or a numpy array of ints), weight (V, C) -> (..., C)."""
    if padding_idx is not None and padding_idx < 0:
        padding_idx += weight.shape[0]
    return _f.embedding(input, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse, position_table)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0):
    """input (N, C) with target (N), or (N, C, d...) with (N, d...): classes on axis 1, as PyTorch's."""
    return _f.cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing)


def dropout(input, p=0.5, training=True, inplace=False):
    return _f.dropout(input, p, training)


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
