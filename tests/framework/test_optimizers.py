"""tinytorch.core.optimizers against torch.optim (CPU) as the oracle.

The same small problem (a linear regression, y ≈ X W + b, mean squared error) is solved by
each tinytorch optimizer with hand-written gradients and by its torch.optim twin with
autograd: the parameter trajectories of 50 steps must agree (float64 to 1e-10, float32 to
1e-5) for SGD (plain, momentum, Nesterov, weight decay), Adam (with and without weight
decay) and AdamW, for hyper-parameters drawn by hypothesis. The schedules' learning rates
must match torch.optim.lr_scheduler's.

Adam's hyper-parameters are drawn from the usual range (beta1 >= 0.5, lr <= 0.1): with beta1
near 0 and a large lr the trajectory turns chaotic and rounding differences of 1e-16 (PyTorch
writes m + (1-b1)(g - m), we write b1 m + (1-b1) g) grow past 1e-10 within 50 steps, which
says nothing about the formula. Set TINYTORCH_PARITY_EXAMPLES (default 6) for a longer search.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.layers import Parameter
from tinytorch.core.optimizers import SGD, Adam, AdamW, CosineAnnealingLR, Optimizer, StepLR
from tinytorch.core.tensor import Tensor

STEPS = 50
EXAMPLES = int(os.environ.get("TINYTORCH_PARITY_EXAMPLES", "6"))
TOL = {np.float64: dict(rtol=1e-10, atol=1e-10), np.float32: dict(rtol=1e-5, atol=1e-5)}
TORCH = {SGD: torch.optim.SGD, Adam: torch.optim.Adam, AdamW: torch.optim.AdamW}


def problem(seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((8, 3))
    y = X @ rng.standard_normal((3, 2)) + 0.5 + 0.1 * rng.standard_normal((8, 2))
    return X, y, rng.standard_normal((3, 2)), rng.standard_normal(2)


def run_tinytorch(rule, kwargs, seed, dtype=np.float64, steps=STEPS, schedule=None, skip_bias=lambda t: False):
    X, y, W0, b0 = (a.astype(dtype) for a in problem(seed))
    W, b = Parameter(W0, dtype=dtype), Parameter(b0, dtype=dtype)
    opt = rule([W, b], **kwargs)
    sched = schedule(opt) if schedule else None
    path = []
    for t in range(steps):
        residual = X @ W.data + b.data - y
        grad_pred = 2 * residual / residual.size                 # d mean((pred - y)^2) / d pred
        opt.zero_grad()
        W.grad = Tensor(X.T @ grad_pred, dtype=dtype)
        b.grad = None if skip_bias(t) else Tensor(grad_pred.sum(axis=0), dtype=dtype)
        opt.step()
        if sched:
            sched.step()
        path.append((W.data.copy(), b.data.copy()))
    return path


def run_torch(rule, kwargs, seed, dtype=np.float64, steps=STEPS, schedule=None, skip_bias=lambda t: False):
    X, y, W0, b0 = (torch.from_numpy(a.astype(dtype)) for a in problem(seed))
    W, b = W0.clone().requires_grad_(), b0.clone().requires_grad_()
    opt = TORCH[rule]([W, b], **kwargs)
    sched = schedule(opt) if schedule else None
    path = []
    for t in range(steps):
        opt.zero_grad()
        loss = ((X @ W + b - y) ** 2).mean()
        loss.backward()
        if skip_bias(t):
            b.grad = None
        opt.step()
        if sched:
            sched.step()
        path.append((W.detach().numpy().copy(), b.detach().numpy().copy()))
    return path


def assert_same_path(ours, theirs, dtype):
    for step, ((w, b), (tw, tb)) in enumerate(zip(ours, theirs, strict=True), start=1):
        np.testing.assert_allclose(w, tw, err_msg=f"W after step {step}", **TOL[dtype])
        np.testing.assert_allclose(b, tb, err_msg=f"b after step {step}", **TOL[dtype])


CASES = {
    "sgd": (SGD, st.fixed_dictionaries({"lr": st.floats(0.01, 0.3)})),
    "sgd_momentum": (SGD, st.fixed_dictionaries({"lr": st.floats(0.01, 0.2), "momentum": st.floats(0.1, 0.95)})),
    "sgd_nesterov": (SGD, st.fixed_dictionaries(
        {"lr": st.floats(0.01, 0.2), "momentum": st.floats(0.1, 0.95), "nesterov": st.just(True)})),
    "sgd_weight_decay": (SGD, st.fixed_dictionaries({"lr": st.floats(0.01, 0.3), "weight_decay": st.floats(0.0, 0.5)})),
    "sgd_all": (SGD, st.fixed_dictionaries({"lr": st.floats(0.01, 0.2), "momentum": st.floats(0.1, 0.95),
                                            "nesterov": st.booleans(), "weight_decay": st.floats(0.0, 0.5)})),
    "adam": (Adam, st.fixed_dictionaries({"lr": st.floats(1e-3, 0.1), "betas": st.tuples(st.floats(0.5, 0.99), st.floats(0.9, 0.9999)),
                                          "eps": st.sampled_from([1e-8, 1e-6, 1e-3])})),
    "adam_weight_decay": (Adam, st.fixed_dictionaries({"lr": st.floats(1e-3, 0.2), "weight_decay": st.floats(0.0, 0.5)})),
    "adamw": (AdamW, st.fixed_dictionaries({"lr": st.floats(1e-3, 0.2)})),
    "adamw_weight_decay": (AdamW, st.fixed_dictionaries({"lr": st.floats(1e-3, 0.2), "weight_decay": st.floats(0.0, 0.5),
                                                         "betas": st.tuples(st.floats(0.5, 0.99), st.floats(0.9, 0.9999))})),
}


@pytest.mark.parametrize("case", list(CASES))
def test_trajectory_matches_torch_float64(case):
    rule, hyper = CASES[case]

    @settings(max_examples=EXAMPLES, deadline=None)
    @given(hyper, st.integers(0, 2**31))
    def check(kwargs, seed):
        assert_same_path(run_tinytorch(rule, kwargs, seed), run_torch(rule, kwargs, seed), np.float64)

    check()


@pytest.mark.parametrize("rule, kwargs", [
    (SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    (Adam, dict(lr=0.05, weight_decay=0.1)),
    (AdamW, dict(lr=0.05, weight_decay=0.1)),
])
def test_trajectory_matches_torch_float32(rule, kwargs):
    ours = run_tinytorch(rule, kwargs, seed=7, dtype=np.float32)
    assert ours[-1][0].dtype == np.float32, "a float32 parameter must stay float32"
    assert_same_path(ours, run_torch(rule, kwargs, seed=7, dtype=np.float32), np.float32)


@pytest.mark.parametrize("rule, kwargs", [
    (SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.1)),
    (Adam, dict(lr=0.05, weight_decay=0.1)),
    (AdamW, dict(lr=0.05)),
])
def test_parameters_without_grad_are_skipped_like_torch(rule, kwargs):
    def skip(t):
        return t < 5 or t % 3 == 0                      # the bias has no gradient at those steps

    ours = run_tinytorch(rule, kwargs, seed=3, skip_bias=skip)
    assert_same_path(ours, run_torch(rule, kwargs, seed=3, skip_bias=skip), np.float64)


@pytest.mark.parametrize("rule, kwargs", [
    (SGD, dict(lr=0.2, momentum=0.9)),
    (Adam, dict(lr=0.1)),
    (AdamW, dict(lr=0.1, weight_decay=0.05)),
])
@pytest.mark.parametrize("schedule", ["step", "cosine"])
def test_trajectory_under_a_schedule_matches_torch(rule, kwargs, schedule):
    ours_sched = {"step": lambda o: StepLR(o, step_size=7, gamma=0.5),
                  "cosine": lambda o: CosineAnnealingLR(o, T_max=20, eta_min=0.001)}[schedule]
    torch_sched = {"step": lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.5),
                   "cosine": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=20, eta_min=0.001)}[schedule]
    assert_same_path(run_tinytorch(rule, kwargs, 5, schedule=ours_sched),
                     run_torch(rule, kwargs, 5, schedule=torch_sched), np.float64)


def lr_sequences(ours, theirs, epochs):
    a, b = [ours.get_last_lr()[0]], [theirs.get_last_lr()[0]]
    for _ in range(epochs):
        ours.optimizer.step()
        theirs.optimizer.step()
        ours.step()
        theirs.step()
        a.append(ours.get_last_lr()[0])
        b.append(theirs.get_last_lr()[0])
    return a, b


@settings(max_examples=25, deadline=None)
@given(st.floats(1e-4, 1.0), st.integers(1, 10), st.floats(0.05, 1.0))
def test_step_lr_matches_torch(lr, step_size, gamma):
    ours = StepLR(SGD([Tensor([1.0])], lr=lr), step_size=step_size, gamma=gamma)
    theirs = torch.optim.lr_scheduler.StepLR(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr),
                                             step_size=step_size, gamma=gamma)
    a, b = lr_sequences(ours, theirs, 40)
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-15)
    assert ours.optimizer.lr == a[-1]


@settings(max_examples=25, deadline=None)
@given(st.floats(1e-3, 1.0), st.integers(1, 20), st.floats(0.0, 1.0))
def test_cosine_lr_matches_torch(lr, t_max, eta_fraction):
    eta_min = lr * eta_fraction * 0.5
    ours = CosineAnnealingLR(Adam([Tensor([1.0])], lr=lr), T_max=t_max, eta_min=eta_min)
    theirs = torch.optim.lr_scheduler.CosineAnnealingLR(
        torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=lr), T_max=t_max, eta_min=eta_min)
    a, b = lr_sequences(ours, theirs, 3 * t_max)                 # past T_max too: it climbs back
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("make", [lambda o: StepLR(o, step_size=3, gamma=0.5),
                                  lambda o: CosineAnnealingLR(o, T_max=10, eta_min=0.001)])
def test_a_schedule_resumed_from_its_state_dict_continues_bitwise(make):
    unbroken = make(SGD([Tensor([1.0])], lr=0.1))
    first = make(SGD([Tensor([1.0])], lr=0.1))
    for _ in range(4):
        unbroken.step()
        first.step()
    state, lr = first.state_dict(), first.optimizer.lr
    assert state == {"last_epoch": 4, "base_lr": 0.1}
    resumed = make(SGD([Tensor([1.0])], lr=0.1))   # a fresh run: epoch 0 again
    resumed.optimizer.lr = lr                      # what the optimizer's checkpoint restores
    resumed.load_state_dict(state)
    assert resumed.last_epoch == 4 and resumed.get_last_lr() == [lr]
    for _ in range(8):
        unbroken.step()
        resumed.step()
        assert resumed.optimizer.lr == unbroken.optimizer.lr
        assert resumed.get_last_lr() == unbroken.get_last_lr()


@pytest.mark.parametrize("rule, kwargs", [
    (SGD, dict(lr=-0.1)), (SGD, dict(lr=0.1, momentum=-0.5)), (SGD, dict(lr=0.1, weight_decay=-1.0)),
    (SGD, dict(lr=0.1, nesterov=True)), (Adam, dict(lr=-1e-3)), (Adam, dict(betas=(1.0, 0.999))),
    (Adam, dict(betas=(0.9, -0.1))), (Adam, dict(eps=-1e-8)), (Adam, dict(weight_decay=-0.1)),
    (AdamW, dict(betas=(0.9, 1.0))), (AdamW, dict(lr=-0.5)),
])
def test_invalid_hyperparameters_raise_like_torch(rule, kwargs):
    with pytest.raises(ValueError):
        TORCH[rule]([torch.zeros(1, requires_grad=True)], **kwargs)
    with pytest.raises(ValueError) as error:
        rule([Tensor([1.0])], **kwargs)
    values = [x for v in kwargs.values() for x in (v if isinstance(v, tuple) else [v]) if x is not True]
    bad = [v for v in values if v < 0 or v >= 1.0 and rule is not SGD or "betas" not in kwargs]
    assert "nesterov" in str(error.value) or any(str(v) in str(error.value) for v in bad), str(error.value)


def test_defaults_match_torch():
    w = Tensor([1.0])
    t = torch.zeros(1, requires_grad=True)
    for rule in (Adam, AdamW):
        ours, theirs = rule([w]), TORCH[rule]([t]).defaults
        assert ours.lr == theirs["lr"] and ours.betas == theirs["betas"] and ours.eps == theirs["eps"]
        assert ours.weight_decay == theirs["weight_decay"]


def test_optimizer_arguments():
    with pytest.raises(ValueError, match="empty"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match="single Tensor"):
        SGD(Tensor([1.0, 2.0]), lr=0.1)
    w = Tensor([1.0])
    with pytest.raises(ValueError, match="more than once"):
        Adam([w, w])
    from tinytorch.core.layers import Linear

    layer = Linear(2, 2)
    with pytest.raises(TypeError, match="parameters()"):
        SGD(layer, lr=0.1)
    opt = SGD((p for p in layer.parameters()), lr=0.1)          # a generator is kept as a list
    assert isinstance(opt, Optimizer) and len(opt.params) == 2 and opt.params[0] is layer.weight
