"""optim: PyTorch's keywords and param_groups, the updates against numpy, state_dict, schedules."""
import numpy as np
import pytest

import xgrad
import xgrad.nn as nn


def quadratic_grads(p, target):
    loss = ((p - target) * (p - target)).sum()
    loss.backward()


def adam_reference(p, grads, lr, betas, eps, weight_decay, decoupled):
    p = p.astype(np.float64)
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        p = p - lr / (1 - betas[0] ** t) * m / (np.sqrt(v) / np.sqrt(1 - betas[1] ** t) + eps)
    return p


@pytest.mark.parametrize("cls,decoupled,wd", [(xgrad.optim.Adam, False, 0.1), (xgrad.optim.AdamW, True, 0.1)])
def test_adam_and_adamw_follow_pytorchs_update(cls, decoupled, wd):
    p = nn.Parameter(xgrad.tensor([1.0, -2.0, 0.5]))
    target = xgrad.tensor([0.0, 1.0, 2.0])
    opt = cls([p], lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=wd)
    start, grads = p.detach().numpy().copy(), []
    for _ in range(6):
        opt.zero_grad()
        quadratic_grads(p, target)
        grads.append(p.grad.numpy().astype(np.float64).copy())
        opt.step()
    expected = adam_reference(start, grads, 0.05, (0.8, 0.95), 1e-6, wd, decoupled)
    np.testing.assert_allclose(p.detach().numpy(), expected, atol=1e-6)


def test_sgd_momentum_nesterov():
    p = nn.Parameter(xgrad.tensor([1.0, 2.0]))
    opt = xgrad.optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True)
    ref, b = np.array([1.0, 2.0]), None
    for _ in range(4):
        opt.zero_grad()
        (p * p).sum().backward()
        g = 2 * ref
        b = g if b is None else 0.9 * b + g
        ref = ref - 0.1 * (g + 0.9 * b)
        opt.step()
    np.testing.assert_allclose(p.detach().numpy(), ref, rtol=1e-6)
    with pytest.raises(TypeError, match="learning rate is required"):
        xgrad.optim.SGD([p])


def test_param_groups_lr_changes_take_effect():
    a, b = nn.Parameter(xgrad.ones(1)), nn.Parameter(xgrad.ones(1))
    opt = xgrad.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    (a + b).sum().backward()
    opt.step()
    assert a.item() == pytest.approx(0.9) and b.item() == pytest.approx(0.5)
    for g in opt.param_groups:
        g["lr"] = 0.0
    opt.step()
    assert a.item() == pytest.approx(0.9)
    # a key the optimizer has no use for is kept in the group and ignored, as PyTorch does
    tagged = xgrad.optim.Adam([{"params": [a], "name": "embeddings", "momentum": 0.5}])
    tagged.step()
    assert tagged.param_groups[0]["name"] == "embeddings"
    with pytest.raises(ValueError, match="more than one parameter group"):
        xgrad.optim.Adam([{"params": [a]}, {"params": [a]}])


def test_a_group_sets_its_own_betas_eps_and_momentum():
    target = xgrad.tensor([0.0, 1.0, 2.0])
    a, b = nn.Parameter(xgrad.tensor([1.0, -2.0, 0.5])), nn.Parameter(xgrad.tensor([0.5, 0.5, -1.0]))
    opt = xgrad.optim.Adam([{"params": [a]}, {"params": [b], "betas": (0.5, 0.6), "eps": 1e-3, "foreach": True}],
                           lr=0.05)
    starts, grads = [a.detach().numpy().copy(), b.detach().numpy().copy()], [[], []]
    for _ in range(5):
        opt.zero_grad()
        quadratic_grads(a, target)
        quadratic_grads(b, target)
        grads[0].append(a.grad.numpy().astype(np.float64).copy())
        grads[1].append(b.grad.numpy().astype(np.float64).copy())
        opt.step()
    np.testing.assert_allclose(a.detach().numpy(), adam_reference(starts[0], grads[0], 0.05, (0.9, 0.999), 1e-8, 0.0, False),
                               atol=1e-6)
    np.testing.assert_allclose(b.detach().numpy(), adam_reference(starts[1], grads[1], 0.05, (0.5, 0.6), 1e-3, 0.0, False),
                               atol=1e-6)
    opt.param_groups[1]["betas"] = (0.9, 0.9)
    with pytest.raises(ValueError, match="'betas'.*only 'lr' and 'weight_decay' can change"):
        opt.step()

    c, d = nn.Parameter(xgrad.ones(1)), nn.Parameter(xgrad.ones(1))
    sgd = xgrad.optim.SGD([{"params": [c]}, {"params": [d], "momentum": 0.5}], lr=0.1)
    for _ in range(2):
        sgd.zero_grad()
        (c + d).sum().backward()
        sgd.step()
    assert c.item() == pytest.approx(0.8) and d.item() == pytest.approx(1 - 0.1 - 0.1 * 1.5)
    with pytest.raises(ValueError, match="SGD group 0: nesterov needs a positive momentum"):
        xgrad.optim.SGD([{"params": [c], "nesterov": True}], lr=0.1).step()


def test_state_dict_resumes_exactly():
    def run(opt_state=None, steps=3):
        xgrad.manual_seed(3)
        model = nn.Linear(3, 2)
        opt = xgrad.optim.AdamW(model.parameters(), lr=0.01)
        x = xgrad.randn(4, 3)
        return model, opt, x

    model, opt, x = run()
    for _ in range(4):
        opt.zero_grad()
        model(x).square().sum().backward()
        opt.step()
    expected = model.weight.detach().numpy().copy()

    model2, opt2, _ = run()
    for _ in range(2):
        opt2.zero_grad()
        model2(x).square().sum().backward()
        opt2.step()
    saved_model, saved_opt = model2.state_dict(), opt2.state_dict()
    assert saved_opt["state"][0]["step"].item() == 2 and set(saved_opt["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    model3, opt3, _ = run()
    model3.load_state_dict(saved_model)
    opt3.load_state_dict(saved_opt)
    for _ in range(2):
        opt3.zero_grad()
        model3(x).square().sum().backward()
        opt3.step()
    np.testing.assert_array_equal(model3.weight.detach().numpy(), expected)


def test_schedules():
    p = nn.Parameter(xgrad.ones(1))
    opt = xgrad.optim.SGD([p], lr=1.0)
    sched = xgrad.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(5):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25] and sched.get_last_lr() == [0.25]
    opt = xgrad.optim.SGD([p], lr=1.0)
    cos = xgrad.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    for _ in range(2):
        cos.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5)
    opt = xgrad.optim.SGD([p], lr=1.0)
    warm = xgrad.optim.lr_scheduler.WarmupCosineLR(opt, warmup_steps=3, decay_steps=10, min_lr_ratio=0.1)
    assert opt.param_groups[0]["lr"] == pytest.approx(1 / 4)
    opt = xgrad.optim.SGD([p], lr=1.0)
    xgrad.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5 ** step).step()
    assert opt.param_groups[0]["lr"] == 0.5
    assert warm.last_epoch == 0


def test_sparse_adam_moves_only_the_touched_rows():
    e = nn.Embedding(5, 2, sparse=True)
    before = e.weight.detach().numpy().copy()
    opt = xgrad.optim.SparseAdam(e.parameters(), lr=0.1)
    e(xgrad.tensor([1, 3])).sum().backward()
    opt.step()
    after = e.weight.detach().numpy()
    assert (after[[0, 2, 4]] == before[[0, 2, 4]]).all() and (after[[1, 3]] != before[[1, 3]]).all()


@pytest.mark.parametrize("make", [lambda p: xgrad.optim.Adam([p], lr=0.1), lambda p: xgrad.optim.AdamW([p], lr=0.1),
                                  lambda p: xgrad.optim.SGD([p], lr=0.1, momentum=0.9)])
def test_a_parameter_given_data_of_another_shape_is_refused_at_step(make):
    p = xgrad.nn.Parameter(xgrad.ones(3))
    opt = make(p)
    (p * p).sum().backward()
    opt.step()
    p.data = xgrad.zeros(1000)         # a larger array: the state was made for 3 elements
    with pytest.raises(RuntimeError, match=r"parameter 0 of group 0 \(shape \(1000,\)\) has a gradient of shape \(3,\)"):
        opt.step()
    p.grad = None
    (p * p).sum().backward()
    with pytest.raises(RuntimeError, match=r"made for shape \(3,\)"):
        opt.step()
    assert p.sum().item() == 0.0       # refused before anything moved
