"""The aliasing table: expressions over views, in-place writes, detach, .data, numpy sharing and in-place
ops in graphs, written once against PyTorch's API. make_aliasing_reference.py runs them on torch 1.13
and records what happens; tests/python/test_aliasing.py runs them on xgrad (`torch` is then xgrad)
and compares.

Each case takes the library and numpy and returns a dict of named results:
  a tensor           its values, shape, stride(), storage_offset(), is_contiguous(), _is_view(),
                     requires_grad, is_leaf, grad_fn's name and _version are recorded, and for every
                     pair of named tensors whether they share a storage
  a numpy array      its values
  "_backward"        (loss, [names]): loss.backward() is run; whether it raises (and what kind), else
                     each named tensor's .grad
  "_raises"          a function whose call must raise: the exception's kind is recorded
"""
CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


# ---- views share storage: shape, strides, offset ----------------------------------------------------
@case
def view_of_contiguous(torch, np):
    x = torch.arange(12.0).reshape(3, 4)
    return {"x": x, "v": x.view(2, 6), "w": x.view(-1), "r": x.reshape(4, 3)}


@case
def view_write_goes_to_base(torch, np):
    x = torch.zeros(2, 3)
    v = x.view(6)
    v[0] = 5
    v[4] = -1
    return {"x": x, "v": v}


@case
def transpose_is_a_strided_view(torch, np):
    x = torch.arange(6.0).reshape(2, 3)
    return {"x": x, "t": x.t(), "tt": x.transpose(0, 1), "T": x.T, "mT": x.mT}


@case
def permute_view(torch, np):
    x = torch.arange(24.0).reshape(2, 3, 4)
    return {"x": x, "p": x.permute(2, 0, 1), "q": x.permute(1, 2, 0)}


@case
def reshape_of_transpose_copies(torch, np):
    x = torch.arange(6.0).reshape(2, 3)
    r = x.t().reshape(6)
    r[0] = 100
    return {"x": x, "r": r}


@case
def reshape_of_transpose_that_can_view(torch, np):
    x = torch.arange(24.0).reshape(2, 3, 4)
    return {"x": x, "r": x.transpose(0, 1).reshape(3, 2, 4), "f": x.permute(0, 2, 1).reshape(2, 12)}


@case
def view_of_transpose_refused(torch, np):
    x = torch.arange(6.0).reshape(2, 3)
    return {"x": x, "_raises": lambda: x.t().view(6)}


@case
def contiguous_copies_only_when_needed(torch, np):
    x = torch.arange(6.0).reshape(2, 3)
    c = x.contiguous()
    t = x.t()
    tc = t.contiguous()
    tc[0, 0] = 9
    return {"x": x, "c": c, "t": t, "tc": tc}


@case
def expand_has_stride_zero(torch, np):
    x = torch.tensor([1.0, 2.0, 3.0])
    e = x.expand(4, 3)
    col = torch.tensor([[1.0], [2.0]])
    return {"x": x, "e": e, "col": col, "ce": col.expand(2, 5), "ne": x.expand(2, -1)}


@case
def write_into_base_shows_in_expand(torch, np):
    x = torch.tensor([1.0, 2.0, 3.0])
    e = x.expand(2, 3)
    x[1] = 20
    return {"x": x, "e": e}


@case
def expanded_write_refused(torch, np):
    x = torch.tensor([1.0, 2.0, 3.0])
    e = x.expand(2, 3)
    return {"x": x, "e": e, "_raises": lambda: e.add_(1)}


@case
def unsqueeze_squeeze_flatten(torch, np):
    x = torch.arange(6.0).reshape(2, 3)
    u = x.unsqueeze(1)
    s = u.squeeze(1)
    f = x.unsqueeze(0).flatten()
    u[1, 0, 2] = -7
    return {"x": x, "u": u, "s": s, "f": f, "ua": x.unsqueeze(-1), "sq": x.unsqueeze(0).squeeze()}


@case
def unflatten_and_flatten_ranges(torch, np):
    x = torch.arange(24.0).reshape(2, 12)
    u = x.unflatten(1, (3, 4))
    return {"x": x, "u": u, "f": u.flatten(1), "g": u.flatten(0, 1), "t": x.t().flatten()}


@case
def narrow_is_a_view(torch, np):
    x = torch.arange(12.0).reshape(3, 4)
    n = x.narrow(1, 1, 2)
    n.zero_()
    return {"x": x, "n": n, "m": x.narrow(0, -2, 2)}


@case
def select_and_int_index(torch, np):
    x = torch.arange(12.0).reshape(3, 4)
    a = x[1]
    b = x.select(1, 2)
    c = x[-1, 1]
    b[0] = 50
    return {"x": x, "a": a, "b": b, "c": c}


@case
def slices_with_steps(torch, np):
    x = torch.arange(20.0).reshape(4, 5)
    s = x[1:3]
    t = x[:, ::2]
    u = x[::3, 1::2]
    t[0, 0] = -1
    return {"x": x, "s": s, "t": t, "u": u}


@case
def none_and_ellipsis(torch, np):
    x = torch.arange(24.0).reshape(2, 3, 4)
    a = x[None]
    b = x[..., 1]
    c = x[:, None, 0]
    d = x[...]
    b[0, 0] = 99
    return {"x": x, "a": a, "b": b, "c": c, "d": d}


@case
def fill_through_slice(torch, np):
    x = torch.zeros(6)
    x[1:3].fill_(7)
    x[4:].add_(2)
    return {"x": x}


@case
def setitem_basic_writes_through(torch, np):
    x = torch.zeros(3, 4)
    x[1] = torch.tensor([1.0, 2.0, 3.0, 4.0])
    x[:, 0] = 9
    x[2, 1:3] = torch.tensor([-1.0, -2.0])
    return {"x": x}


@case
def advanced_index_copies(torch, np):
    x = torch.arange(12.0).reshape(3, 4)
    a = x[[0, 2]]
    m = x[x > 5]
    a[0, 0] = 100
    return {"x": x, "a": a, "m": m}


@case
def advanced_setitem_writes_in_place(torch, np):
    x = torch.zeros(2, 3)
    v = x.view(6)
    x[torch.tensor([0, 1]), torch.tensor([2, 0])] = 4.0
    x[x == 0] = -1.0
    return {"x": x, "v": v}


@case
def split_chunk_unbind_are_views(torch, np):
    x = torch.arange(12.0).reshape(3, 4)
    a, b = x.split(2, dim=1)
    c = x.chunk(3)[1]
    d = x.unbind(0)[2]
    e = x.split([1, 2])[1]
    b.mul_(10)
    d[0] = -5
    return {"x": x, "a": a, "b": b, "c": c, "d": d, "e": e}


@case
def diagonal_view(torch, np):
    x = torch.zeros(3, 3)
    d = x.diagonal()
    d.fill_(1)
    return {"x": x, "d": d, "up": x.diagonal(1), "down": x.diagonal(-1)}


@case
def as_strided_view(torch, np):
    x = torch.arange(9.0)
    a = x.as_strided((2, 2), (3, 1), 1)
    a[1, 1] = 100
    return {"x": x, "a": a, "w": x.as_strided((3,), (4,))}


@case
def as_strided_past_the_storage_refused(torch, np):
    x = torch.arange(4.0)
    return {"x": x, "_raises": lambda: x.as_strided((3,), (2,))}


@case
def views_of_views_share_the_root(torch, np):
    x = torch.arange(24.0).reshape(4, 6)
    a = x[1:]
    b = a.t()
    c = b[2]
    c[1] = -3
    return {"x": x, "a": a, "b": b, "c": c}


# ---- detach, .data, clone -----------------------------------------------------------------------------
@case
def detach_shares_storage_and_version(torch, np):
    x = torch.ones(2, 3)
    d = x.detach()
    d.zero_()
    return {"x": x, "d": d}


@case
def detach_of_a_view(torch, np):
    x = torch.arange(6.0).reshape(2, 3)
    d = x.t().detach()
    d[0, 1] = 40
    return {"x": x, "d": d}


@case
def data_shares_storage_not_the_counter(torch, np):
    x = torch.ones(3)
    d = x.data
    d.add_(1)
    return {"x": x, "d": d}


@case
def clone_copies(torch, np):
    x = torch.arange(4.0)
    c = x.clone()
    c[0] = 10
    return {"x": x, "c": c, "ct": x.reshape(2, 2).t().clone()}


@case
def data_assignment_rebinds(torch, np):
    x = torch.ones(3)
    keep = x.view(3)
    x.data = torch.zeros(5)
    x.add_(2)
    return {"x": x, "keep": keep}


@case
def copy_between_shapes_broadcasts(torch, np):
    x = torch.zeros(2, 3)
    x.copy_(torch.tensor([1.0, 2.0, 3.0]))
    y = torch.zeros(3, 2)
    y.t().copy_(x)
    return {"x": x, "y": y}


@case
def copy_of_mismatched_shapes_refused(torch, np):
    x = torch.zeros(2, 3)
    return {"x": x, "_raises": lambda: x.copy_(torch.ones(4))}


@case
def inplace_result_must_not_broadcast_the_destination(torch, np):
    x = torch.zeros(3)
    return {"x": x, "_raises": lambda: x.add_(torch.ones(2, 3))}


@case
def inplace_ops_through_a_transpose(torch, np):
    x = torch.arange(6.0).reshape(2, 3)
    t = x.t()
    t.mul_(torch.tensor([1.0, 10.0]))
    t[2].sub_(1)
    t.clamp_(min=0.5, max=20.0)
    return {"x": x, "t": t}


@case
def many_inplace_ops_count_versions(torch, np):
    x = torch.ones(4)
    x.add_(1)
    x.mul_(3)
    x.div_(2)
    x.sub_(torch.tensor([0.0, 1.0, 2.0, 3.0]))
    x.exp_()
    x.masked_fill_(x > 5, 0.0)
    x.sqrt_()
    return {"x": x}


# ---- numpy, both ways -----------------------------------------------------------------------------------
@case
def numpy_shares_both_ways(torch, np):
    t = torch.zeros(2, 3)
    a = t.numpy()
    a[0, 1] = 5
    t[1, 2] = 7
    return {"t": t, "a": a}


@case
def numpy_of_a_transpose_keeps_strides(torch, np):
    t = torch.arange(6.0).reshape(2, 3)
    a = t.t().numpy()
    a[2, 0] = -1
    return {"t": t, "a": a, "strides": np.array(a.strides, dtype=np.float32)}


@case
def numpy_of_a_slice(torch, np):
    t = torch.arange(10.0)
    a = t[2:8:2].numpy()
    a[1] = 44
    return {"t": t, "a": a}


@case
def from_numpy_shares(torch, np):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = torch.from_numpy(a)
    a[0, 0] = 100
    t[1, 1] = -1
    return {"t": t, "a": a}


@case
def from_numpy_keeps_strides(torch, np):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = torch.from_numpy(a[:, ::2])
    f = torch.from_numpy(np.asfortranarray(a))
    return {"t": t, "f": f}


@case
def numpy_survives_rebinding(torch, np):
    t = torch.ones(3)
    a = t.numpy()
    t.data = torch.zeros(100)
    a[0] = 2
    return {"t": t, "a": a}


# ---- in-place ops and autograd ----------------------------------------------------------------------------
@case
def leaf_inplace_refused(torch, np):
    w = torch.ones(3, requires_grad=True)
    return {"w": w, "_raises": lambda: w.add_(1)}


@case
def view_of_leaf_inplace_refused(torch, np):
    w = torch.ones(3, requires_grad=True)
    return {"w": w, "_raises": lambda: w[0:2].mul_(2)}


@case
def leaf_inplace_allowed_under_no_grad(torch, np):
    w = torch.ones(3, requires_grad=True)
    with torch.no_grad():
        w.mul_(2)
        w[0] = 5
    return {"w": w}


@case
def write_after_forward_caught(torch, np):
    w = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (w * w).sum()
    with torch.no_grad():
        w.add_(1)
    return {"w": w, "_backward": (y, ["w"])}


@case
def write_through_detach_caught(torch, np):
    w = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (w * w).sum()
    w.detach().mul_(2)
    return {"w": w, "_backward": (y, ["w"])}


@case
def write_through_data_not_caught(torch, np):
    w = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (w * w).sum()
    w.data.mul_(2)
    return {"w": w, "_backward": (y, ["w"])}


@case
def write_that_no_backward_reads(torch, np):
    w = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (w + w).sum()
    with torch.no_grad():
        w.add_(1)
    return {"w": w, "_backward": (y, ["w"])}


@case
def mul_saves_the_other_operand_only(torch, np):
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    b = torch.tensor([3.0, 4.0])
    y = (a * b).sum()
    with torch.no_grad():
        a.mul_(10)
    return {"a": a, "b": b, "_backward": (y, ["a"])}


@case
def mul_operand_written_caught(torch, np):
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    b = torch.tensor([3.0, 4.0])
    y = (a * b).sum()
    b.add_(1)
    return {"a": a, "b": b, "_backward": (y, ["a"])}


@case
def div_saves_both(torch, np):
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    b = torch.tensor([3.0, 4.0], requires_grad=True)
    y = (a / b).sum()
    with torch.no_grad():
        a.add_(1)
    return {"a": a, "b": b, "_backward": (y, ["a", "b"])}


@case
def exp_saves_its_output(torch, np):
    x = torch.tensor([0.0, 1.0], requires_grad=True)
    e = x.exp()
    e.add_(1)
    return {"x": x, "e": e, "_backward": (e.sum(), ["x"])}


@case
def tanh_output_written_under_no_grad(torch, np):
    x = torch.tensor([0.5, -1.0], requires_grad=True)
    t = x.tanh()
    with torch.no_grad():
        t.mul_(2)
    return {"x": x, "t": t, "_backward": (t.sum(), ["x"])}


@case
def matmul_weight_stepped_between_forward_and_backward(torch, np):
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    w = torch.tensor([[0.5, -1.0], [2.0, 1.0]], requires_grad=True)
    y = (x @ w).sum()
    with torch.no_grad():
        w.sub_(0.1)
    return {"x": x, "w": w, "_backward": (y, ["x", "w"])}


@case
def nonleaf_inplace_is_recorded(torch, np):
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    h = x * 2
    h.add_(1)
    h.relu_()
    return {"x": x, "h": h, "_backward": (h.sum(), ["x"])}


@case
def nonleaf_inplace_mul_by_a_tensor_that_requires_grad(torch, np):
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    w = torch.tensor([3.0, -1.0], requires_grad=True)
    h = x + 0
    h.mul_(w)
    h.mul_(h)
    return {"x": x, "w": w, "h": h, "_backward": (h.sum(), ["x", "w"])}


@case
def inplace_through_a_view_of_a_nonleaf(torch, np):
    x = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    y = x * 1
    v = y[1:3]
    v.mul_(10)
    return {"x": x, "y": y, "v": v, "_backward": (y.sum(), ["x"])}


@case
def setitem_with_a_tensor_that_requires_grad(torch, np):
    w = torch.tensor([2.0, 3.0], requires_grad=True)
    x = torch.zeros(4)
    x[1:3] = w * w
    return {"w": w, "x": x, "_backward": ((x * torch.arange(4.0)).sum(), ["w"])}


@case
def setitem_advanced_in_a_graph(torch, np):
    a = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    v = torch.tensor([5.0], requires_grad=True)
    y = a * 1
    y[torch.tensor([0, 2])] = v * 2
    return {"a": a, "v": v, "y": y, "_backward": ((y * torch.tensor([1.0, 2.0, 3.0])).sum(), ["a", "v"])}


@case
def copy_into_a_view_records_the_source(torch, np):
    s = torch.tensor([1.0, 2.0], requires_grad=True)
    x = torch.zeros(2, 2)
    x.t()[0].copy_(s)
    return {"s": s, "x": x, "_backward": ((x * torch.tensor([[1.0, 2.0], [3.0, 4.0]])).sum(), ["s"])}


@case
def view_used_before_and_after_a_write(torch, np):
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 1
    first = y[0:2]
    before = first.sum() * 10
    y[0:1].mul_(3)
    after = first.sum()
    return {"x": x, "y": y, "first": first, "_backward": (before + after, ["x"])}


@case
def view_of_a_nonleaf_written_then_its_base_used(torch, np):
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x.exp()
    z = y.view(3)
    z[0] = 0.0
    return {"x": x, "y": y, "z": z, "_backward": (y.sum(), ["x"])}


@case
def zero_and_fill_cut_the_gradient(torch, np):
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    y[1:].zero_()
    z = x * 3
    z.fill_(1.0)
    return {"x": x, "y": y, "z": z, "_backward": (y.sum() + (z * x).sum(), ["x"])}


@case
def transpose_grad_and_expand_grad(torch, np):
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    b = torch.tensor([1.0, -1.0, 2.0], requires_grad=True)
    y = (x.t() * torch.arange(6.0).reshape(3, 2)).sum() + (b.expand(4, 3) * torch.arange(12.0).reshape(4, 3)).sum()
    return {"x": x, "b": b, "_backward": (y, ["x", "b"])}


@case
def views_in_a_graph_give_the_base_its_gradient(torch, np):
    x = torch.arange(12.0).reshape(3, 4).requires_grad_()
    parts = x[:, 1:3].t().unsqueeze(0)
    loss = (parts * parts).sum() + x.diagonal().sum() + x.narrow(0, 1, 1).sum() + x.split(2, 1)[1].sum()
    return {"x": x, "_backward": (loss, ["x"])}


@case
def as_strided_grad(torch, np):
    x = torch.arange(6.0).requires_grad_()
    a = x.as_strided((2, 2), (1, 2), 1)
    return {"x": x, "a": a, "_backward": ((a * torch.tensor([[1.0, 2.0], [3.0, 4.0]])).sum(), ["x"])}


# ---- running a case -------------------------------------------------------------------------------------
def storage_ptr(t):
    """Where t's storage starts: the same for every tensor that shares it (torch 1.13 has storage(),
    later versions untyped_storage(); xgrad both)."""
    return t.untyped_storage().data_ptr() if hasattr(t, "untyped_storage") else t.storage().data_ptr()


def describe(t):
    return {
        "values": t.detach().tolist(), "shape": list(t.shape), "stride": list(t.stride()),
        "storage_offset": t.storage_offset(), "is_contiguous": t.is_contiguous(), "is_view": t._is_view(),
        "requires_grad": t.requires_grad, "is_leaf": t.is_leaf,
        "grad_fn": t.grad_fn.name() if t.grad_fn is not None else None, "version": t._version,
    }


def run(name, torch, np):
    """What case `name` does on `torch` (torch or xgrad), as plain data."""
    out = CASES[name](torch, np)
    tensors = {k: v for k, v in out.items() if not k.startswith("_") and isinstance(v, torch.Tensor)}
    record = {"tensors": {k: describe(v) for k, v in tensors.items()},
              "arrays": {k: v.tolist() for k, v in out.items() if isinstance(v, np.ndarray)},
              "shares": sorted([a, b] for a in tensors for b in tensors
                               if a < b and storage_ptr(tensors[a]) == storage_ptr(tensors[b]))}
    if "_raises" in out:
        try:
            out["_raises"]()
            record["raises"] = "no error"
        except Exception as e:  # noqa: BLE001 (the kind is what is recorded)
            record["raises"] = type(e).__name__
    if "_backward" in out:
        loss, names = out["_backward"]
        try:
            loss.backward()
            record["backward"] = {"error": None, "grads": {n: out[n].grad.tolist() if out[n].grad is not None else None
                                                             for n in names}}
        except Exception as e:  # noqa: BLE001
            record["backward"] = {"error": type(e).__name__}
    return record
