"""The layers, as torch.nn's. Embedding, Linear and LayerNorm take their initial weights from the C++
constructors (so one seed gives the same weights in Python and C++) and run the functional ops on
their Python Parameters, so assigning a Parameter (weight tying) works as in PyTorch.
MultiheadAttention, CausalSelfAttention and TransformerBlock run the C++ module's forward."""
import xgrad
from xgrad import _xgrad
from . import functional as F
from .modules import Module, Parameter


class Identity(Module):
    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    """y = x W^T + b; weight (out_features, in_features) and bias ~ U(-1/sqrt(in), 1/sqrt(in))."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        _xgrad._check_device(device)
        self.in_features, self.out_features = in_features, out_features
        impl = _xgrad._Linear(in_features, out_features, bias)
        self.weight = Parameter(impl.weight)
        if bias:
            self.bias = Parameter(impl.bias)
        else:
            self.register_parameter("bias", None)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A table of num_embeddings vectors of embedding_dim ~ N(0, 1), looked up by id, with PyTorch's
    options (padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse) and xgrad's position_table
    (an id past the end is reported as a sequence longer than the table)."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, sparse=False, _weight=None, _freeze=False, device=None, dtype=None,
                 position_table=False):
        super().__init__()
        _xgrad._check_device(device)
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise AssertionError("Padding_idx must be within num_embeddings")
            padding_idx = padding_idx + num_embeddings if padding_idx < 0 else padding_idx
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx, self.max_norm, self.norm_type = padding_idx, max_norm, norm_type
        self.scale_grad_by_freq, self.sparse, self.position_table = scale_grad_by_freq, sparse, position_table
        if _weight is None:
            impl = _xgrad._Embedding(num_embeddings, embedding_dim, padding_idx, max_norm, norm_type,
                                     scale_grad_by_freq, sparse, position_table)
            self.weight = Parameter(impl.weight, requires_grad=not _freeze)
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise AssertionError("Shape of weight does not match num_embeddings and embedding_dim")
            self.weight = Parameter(_weight.detach(), requires_grad=not _freeze)

    def forward(self, input):
        return F.embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse, position_table=self.position_table)

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None, norm_type=2.0,
                        scale_grad_by_freq=False, sparse=False):
        if embeddings.dim() != 2:
            raise AssertionError("Embeddings parameter is expected to be 2-dimensional")
        rows, cols = embeddings.shape
        return cls(rows, cols, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=embeddings, _freeze=freeze)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        for name, default in (("padding_idx", None), ("max_norm", None), ("norm_type", 2.0),
                              ("scale_grad_by_freq", False), ("sparse", False)):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        return s


class LayerNorm(Module):
    """Normalises over the last len(normalized_shape) axes; weight = 1, bias = 0."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device=None, dtype=None):
        super().__init__()
        _xgrad._check_device(device)
        self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(xgrad.ones(*self.normalized_shape))
            if bias:
                self.bias = Parameter(xgrad.zeros(*self.normalized_shape))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class Dropout(Module):
    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p

    def forward(self, input):
        return F.dropout(input, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace=False"


def _activation(name, fn):
    class Activation(Module):
        def __init__(self, *args, **kwargs):
            super().__init__()

        def forward(self, input):
            return fn(input)

    Activation.__name__ = Activation.__qualname__ = name
    return Activation


ReLU = _activation("ReLU", xgrad.relu)
Tanh = _activation("Tanh", xgrad.tanh)
Sigmoid = _activation("Sigmoid", xgrad.sigmoid)
SiLU = _activation("SiLU", lambda x: x * xgrad.sigmoid(x))


class GELU(Module):
    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate='{self.approximate}'"


class Softmax(Module):
    def __init__(self, dim=None):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, input):
        return xgrad.softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Flatten(Module):
    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        return input.flatten(self.start_dim, self.end_dim)


class CrossEntropyLoss(Module):
    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__()
        self.weight, self.ignore_index, self.reduction, self.label_smoothing = weight, ignore_index, reduction, label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction,
                               label_smoothing=self.label_smoothing)


class MSELoss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


# ---- C++ composite layers ------------------------------------------------------------------------------
class _CppPart(Module):
    """A submodule of a C++ layer, holding its parameters under their C++ names (out_proj.weight)."""

    def __init__(self, name):
        super().__init__()
        self.__dict__["_part_name"] = name

    def _get_name(self):
        return self._part_name

    def __setattr__(self, name, value):
        if "_parameters" in self.__dict__ and name in self._parameters:
            raise AttributeError(f"the parameters of a C++ layer cannot be replaced ({name}); write into them "
                                 "with copy_ under xgrad.no_grad() instead")
        super().__setattr__(name, value)


class _CppModule(Module):
    """A layer whose forward is C++'s: its parameters are the C++ module's tensors, shown to Python
    under the same dotted names, so optimizers and state_dict see them."""

    def _adopt(self, impl):
        self.__dict__["_impl"] = impl
        for dotted, tensor in impl.named_parameters():
            *path, leaf = dotted.split(".")
            owner = self
            for part in path:
                if part not in owner._modules:
                    owner._modules[part] = _CppPart("Linear" if part.endswith(("proj", "attn", "fc")) else "Module")
                owner = owner._modules[part]
            owner._parameters[leaf] = Parameter(tensor)

    def __setattr__(self, name, value):
        if "_parameters" in self.__dict__ and name in self._parameters:
            raise AttributeError(f"the parameters of a C++ layer cannot be replaced ({name}); write into them "
                                 "with copy_ under xgrad.no_grad() instead")
        super().__setattr__(name, value)


class MultiheadAttention(_CppModule):
    """torch.nn.MultiheadAttention: in_proj (3E, E) (or q/k/v_proj_weight with kdim/vdim), out_proj,
    bias_k/bias_v with add_bias_kv; bool masks mean True = masked out."""

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, device=None, dtype=None):
        super().__init__()
        _xgrad._check_device(device)
        self.embed_dim, self.num_heads, self.dropout, self.batch_first = embed_dim, num_heads, dropout, batch_first
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.add_zero_attn = add_zero_attn
        self._adopt(_xgrad._MultiheadAttention(embed_dim, num_heads, dropout, bias, add_bias_kv, add_zero_attn,
                                               self.kdim, self.vdim, batch_first))
        # the parameters this layout does not have read as None, as PyTorch's attributes do
        for name in ("in_proj_weight", "in_proj_bias", "q_proj_weight", "k_proj_weight", "v_proj_weight", "bias_k",
                     "bias_v"):
            if name not in self._parameters:
                self.__dict__[name] = None

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        return self._impl.forward(query, key, value, key_padding_mask, need_weights, attn_mask,
                                  average_attn_weights, is_causal)


class CausalSelfAttention(_CppModule):
    """nanoGPT's attention, in C++: c_attn (C -> 3C), heads, causal fused SDPA, c_proj. x (B, T, C)."""

    def __init__(self, n_embd, n_head, dropout=0.0, bias=True):
        super().__init__()
        self._adopt(_xgrad._CausalSelfAttention(n_embd, n_head, dropout, bias))

    def forward(self, x):
        return self._impl.forward(x)


class TransformerBlock(_CppModule):
    """nanoGPT's Block, in C++: x + attn(ln_1(x)), then x + mlp(ln_2(x)). x (B, T, C)."""

    def __init__(self, n_embd, n_head, dropout=0.0, bias=True, gelu="none"):
        super().__init__()
        self._adopt(_xgrad._TransformerBlock(n_embd, n_head, dropout, bias, gelu))

    def forward(self, x):
        return self._impl.forward(x)

