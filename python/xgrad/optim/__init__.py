"""xgrad.optim: Adam, AdamW, SGD and SparseAdam with PyTorch's signatures and param_groups.

The updates run in C++ (optim/adam.cpp, optim/sgd.cpp); param_groups are PyTorch's list of dicts,
and a change to a group's 'lr' or 'weight_decay' (as a schedule makes) takes effect at the next step().
A group may set any of the optimizer's options (betas, eps, momentum, ...) when it is added; those
others are fixed once the optimizer has been used."""
import xgrad
from xgrad import _xgrad
from . import lr_scheduler  # noqa: F401

_GROUP_KEYS = ("lr", "weight_decay")
# the options a group may set for itself; PyTorch's implementation flags (foreach, fused, ...) are
# accepted and have nothing to choose in xgrad
_OWN_KEYS = ("betas", "eps", "amsgrad", "maximize", "momentum", "dampening", "nesterov")


class Optimizer:
    def __init__(self, params, defaults):
        if isinstance(params, xgrad.Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            "but got " + type(params).__name__)
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)
        self._impl = None

    def add_param_group(self, param_group):
        if getattr(self, "_impl", None) is not None and self._stepped:
            raise RuntimeError("xgrad: add_param_group after the first step() is not supported")
        group = dict(param_group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, xgrad.Tensor) else list(params)
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        seen = {p._key() for g in self.param_groups for p in g["params"]}
        for p in group["params"]:
            if p._key() in seen:
                raise ValueError("some parameters appear in more than one parameter group")
            seen.add(p._key())
        self.param_groups.append(group)
        self._impl = None

    def _cpp(self):
        if self._impl is None:
            # each group's own options: those it sets differently from the defaults
            self._fixed = [{k: g[k] for k in self.defaults if k not in _GROUP_KEYS} for g in self.param_groups]
            groups = [(g["params"], g["lr"], g["weight_decay"],
                       {k: v for k, v in fixed.items() if k in _OWN_KEYS and v != self.defaults[k]})
                      for g, fixed in zip(self.param_groups, self._fixed)]
            self._impl = self._make(groups)
            self._stepped = False
        return self._impl

    def _sync(self):
        impl = self._cpp()
        for i, (g, fixed) in enumerate(zip(self.param_groups, self._fixed)):
            for key, value in fixed.items():
                if g.get(key, value) != value:
                    raise ValueError(f"xgrad: param_groups[{i}]['{key}'] was changed to {g[key]!r}; only 'lr' and "
                                     "'weight_decay' can change after the optimizer is made")
            impl.set_group(i, float(g["lr"]), float(g["weight_decay"]))
        return impl

    def step(self, closure=None):
        loss = None
        if closure is not None:
            loss = closure()
        self._sync().step()
        self._stepped = True
        return loss

    def zero_grad(self, set_to_none=True):
        self._cpp().zero_grad(set_to_none)

    def state_dict(self):
        """PyTorch's layout: {'state': {index: {'step': tensor, 'exp_avg': ..., ...}}, 'param_groups': [...]}."""
        arrays, metadata = self._sync().save_state()
        state = {}
        for key, value in metadata.items():
            if key.startswith("optimizer.state.") and key.endswith(".step"):
                k = int(key.split(".")[2])
                if int(value) > 0:
                    state.setdefault(k, {})["step"] = xgrad.tensor(float(value))
        for name, t in arrays.items():
            _, _, k, slot = name.split(".", 3)
            state.setdefault(int(k), {})[slot] = t
        groups, index = [], 0
        for g in self.param_groups:
            entry = {key: value for key, value in g.items() if key != "params"}
            entry["params"] = list(range(index, index + len(g["params"])))
            index += len(g["params"])
            groups.append(entry)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        for mine, theirs in zip(self.param_groups, groups):
            if len(mine["params"]) != len(theirs["params"]):
                raise ValueError("loaded state dict contains a parameter group that doesn't match the size of "
                                 "optimizer's group")
        impl = self._cpp()
        metadata = {"optimizer": impl.name}
        for i, g in enumerate(groups):
            metadata[f"optimizer.group.{i}.lr"] = repr(float(g["lr"]))
        count = sum(len(g["params"]) for g in self.param_groups)
        arrays = {}
        for k in range(count):
            entry = state_dict["state"].get(k, state_dict["state"].get(str(k), {}))
            metadata[f"optimizer.state.{k}.step"] = str(int(float(entry.get("step", 0))))
            for slot, t in entry.items():
                if slot != "step":
                    arrays[f"optimizer.state.{k}.{slot}"] = t
        impl.load_state(arrays, metadata)
        for mine, theirs in zip(self.param_groups, groups):
            for key, value in theirs.items():
                if key != "params":
                    mine[key] = value

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in g if k != "params"):
                lines.append(f"    {key}: {g[key]}")
        return "\n".join(lines) + "\n)"


def _check(lr, eps=None, betas=None, weight_decay=0.0):
    if lr < 0.0:
        raise ValueError(f"Invalid learning rate: {lr}")
    if eps is not None and eps < 0.0:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if betas is not None:
        for i, b in enumerate(betas):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {b}")
    if weight_decay < 0.0:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


class Adam(Optimizer):
    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None):
        _check(lr, eps, betas, weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize, foreach=foreach, capturable=capturable,
                                      differentiable=differentiable, fused=fused))

    def _make(self, groups):
        d = self.defaults
        return _xgrad._Adam(groups, d["lr"], d["betas"][0], d["betas"][1], d["eps"], d["weight_decay"],
                            d["amsgrad"], d["maximize"], self._decoupled)


class AdamW(Adam):
    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused)


class SparseAdam(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, maximize=False):
        _check(lr, eps, betas)
        if maximize:
            raise ValueError("SparseAdam: maximize is not supported by xgrad")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=0.0, maximize=maximize))

    def _make(self, groups):
        d = self.defaults
        return _xgrad._SparseAdam([(p, lr, None, own) for p, lr, _, own in groups], d["lr"], d["betas"][0], d["betas"][1], d["eps"])


class _Required:
    def __repr__(self):
        return "<required parameter>"


required = _Required()


class SGD(Optimizer):
    def __init__(self, params, lr=required, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False):
        if lr is required:
            raise TypeError("SGD: a learning rate is required (lr=...), as in PyTorch")
        _check(lr, weight_decay=weight_decay)
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize, foreach=foreach,
                                      differentiable=differentiable))

    def _make(self, groups):
        d = self.defaults
        return _xgrad._SGD(groups, d["lr"], d["momentum"], d["dampening"], d["weight_decay"], d["nesterov"], d["maximize"])
