"""xgrad.nn: Module, Parameter, the layers and containers, functional, init and utils, as torch.nn."""
from .modules import Module, Parameter, Buffer  # noqa: F401
from .containers import ModuleList, ModuleDict, Sequential  # noqa: F401
from .layers import (Identity, Linear, Embedding, LayerNorm, Dropout, ReLU, Tanh, Sigmoid, SiLU, GELU,  # noqa: F401
                     Softmax, Flatten, CrossEntropyLoss, MSELoss, MultiheadAttention, CausalSelfAttention,
                     TransformerBlock)
from . import functional, init, utils  # noqa: F401
