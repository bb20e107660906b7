# %% [markdown]
# # Module 06: Optimizers — manual weight updates are error-prone
#
# Module 05 gave the network an objective: a loss, one number that says how wrong the
# predictions are, and its gradient `dL/dy`, which each layer's `backward` (module 04) carries
# down to every weight. Every Parameter now has a `.grad`: the direction in which the loss
# grows fastest. Learning is stepping the other way, `w ← w - lr · dL/dw`, again and again.
#
# ## The problem
#
# Written by hand, one training step looks harmless:
#
# ```python
# loss = mse(model(x), y)
# model.zero_grad()
# model.backward(mse.backward())
# for p in model.parameters():
#     p.data -= lr * p.grad.data
# ```
#
# Let us fit `y = 2x + 1` with one `Linear(1, 1)`, this loop, and the same loop with one line
# forgotten:

# %%
import numpy as np

from tinytorch.core.layers import Linear, Sequential, manual_seed
from tinytorch.core.losses import MSELoss
from tinytorch.core.tensor import Tensor

x_line = Tensor(np.linspace(-1, 1, 20).reshape(-1, 1))
y_line = 2 * x_line + 1


def train_by_hand(steps=60, lr=0.1, forget_zero_grad=False):
    manual_seed(0)
    model, mse = Linear(1, 1), MSELoss()
    for _ in range(steps):
        loss = mse(model(x_line), y_line)
        if not forget_zero_grad:
            model.zero_grad()
        model.backward(mse.backward())
        for p in model.parameters():
            p.data -= lr * p.grad.data
    return loss.item(), model.weight.item(), model.bias.item()


def show(label, result):
    loss, w, b = result
    print(f"{label:18}: loss {loss:.6f}   w {w:.3f}   b {b:.3f}   (the answer: w 2, b 1)")


show("with zero_grad", train_by_hand())
show("zero_grad missing", train_by_hand(forget_zero_grad=True))

# %% [markdown]
# Without `zero_grad`, every step adds the new gradient to all the old ones (module 04's
# layers *accumulate*), the steps keep growing, and the weights swing around the answer.
# No error, no warning: just a model that trains badly. And this is plain gradient descent,
# the simplest rule there is. Better rules keep **state** per parameter. Momentum, for
# instance, keeps a running "velocity" for every weight:
#
# ```python
# velocity = {}                                    # one buffer per parameter, by hand
# for p in model.parameters():
#     v = velocity.get(p)
#     v = p.grad.data.copy() if v is None else momentum * v + p.grad.data
#     velocity[p] = v
#     p.data -= lr * v
# ```
#
# Every line is a chance to slip: forget `.copy()` and the buffer *is* the gradient array,
# which the next `+=` in a layer's backward silently changes; write `p.data = p.data - ...`
# and anything that held the old array holds stale weights; keep one step counter for all
# parameters where Adam needs one per parameter; add weight decay before the buffer or
# after it (they are different algorithms). And all of it is copied into every training
# script. **Manual weight updates are error-prone.**
#
# The fix is the one module 04 applied to weights: put the rule in one object.
#
# ```python
# optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
# for step in range(steps):
#     loss = mse(model(x), y)
#     optimizer.zero_grad()
#     model.backward(mse.backward())
#     optimizer.step()
# ```
#
# An `Optimizer` holds the list of parameters it updates, a `state` dict per parameter
# (momentum buffers, step counts), the hyper-parameters, checked once when it is built, and
# `step()`, the update rule written once and tested once. We write PyTorch's rules exactly,
# so `torch.optim` gives the same numbers (the tests check it to 10 decimal places).

# %% [markdown]
# Your package file starts here: the cells marked `#| export` become
# `tinytorch/core/optimizers.py`. It needs NumPy and module 02's Tensor.

# %%
#| export
import math

import numpy as np

from tinytorch.core.tensor import Tensor

# %% [markdown]
# ## The base class
#
# `Optimizer(params)` takes what `model.parameters()` returns (a list) or any iterable of
# Parameters (a generator too: keep it as a list, it is walked at every step). An empty
# list is a bug, almost always a model whose layers were not registered (module 04), so it
# raises a `ValueError` at once rather than "training" nothing.
#
# - `state` is a dict keyed by the parameter itself (Tensors hash by identity, module 02),
#   each value a dict of what the rule keeps for that parameter: `{"momentum_buffer": ...}`.
# - `zero_grad()` sets every `.grad` to `None`, as `Module.zero_grad` does; both work.
# - `step()` updates **in place**: `p.data -= ...` changes the existing array, so the model,
#   which holds the same Parameter and array, sees the new weights; no new array per step.
#   A parameter whose `.grad` is `None` (it took no part in the loss) is skipped.
# - `lr` is a plain attribute: a learning-rate schedule (end of this module) changes it.

# %%
#| export
class Optimizer:
    """Base class: holds the parameters, their per-parameter state, and zero_grad().

    Subclasses set `self.lr` and implement `step()`.
    """

    def __init__(self, params):
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__} got a single Tensor: pass a list of "
                            "parameters, e.g. [w], or model.parameters()")
        if callable(getattr(params, "parameters", None)):
            raise TypeError(f"{type(self).__name__} got a {type(params).__name__}, not "
                            "its parameters: pass model.parameters()")
        # TODO: store the parameters as a list in self.params (params may be a generator);
        #       raise ValueError if there are none ("... got an empty parameter list").
        ### BEGIN SOLUTION
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list: does the model "
                             "register its layers (module 04)?")
        ### END SOLUTION
        for index, param in enumerate(self.params):
            if not isinstance(param, Tensor):
                raise TypeError(f"{type(self).__name__}: parameter {index} is a "
                                f"{type(param).__name__}, not a Tensor")
        if len(set(self.params)) != len(self.params):
            raise ValueError(f"{type(self).__name__}: a parameter appears more than once "
                             "in the list; it would be updated twice per step")
        # parameter -> dict of what the rule keeps for it
        self.state = {}

    def zero_grad(self):
        """Set every parameter's .grad to None, ready for the next backward pass."""
        # TODO: set .grad to None on every parameter in self.params.
        ### BEGIN SOLUTION
        for param in self.params:
            param.grad = None
        ### END SOLUTION

    def step(self):
        """Update every parameter that has a gradient, in place."""
        raise NotImplementedError(f"{type(self).__name__} must implement step()")

    def __repr__(self):
        settings = ", ".join(f"{k}={v}" for k, v in vars(self).items()
                             if k not in ("params", "state"))
        return f"{type(self).__name__}({len(self.params)} parameters, {settings})"

# %% [markdown]
# ## SGD: gradient descent, with momentum, Nesterov and weight decay
#
# **Plain.** `w ← w - lr · g`. With `w = 1.0`, `g = 0.5`, `lr = 0.1`: `w = 0.95`.
#
# **Weight decay** (L2 regularization): add `wd · w` to the gradient first, which is the
# gradient of the extra loss `wd/2 · ‖w‖²` and pulls every weight towards 0. With `wd = 0.1`:
# `g = 0.5 + 0.1 · 1.0 = 0.6`, `w = 1.0 - 0.1 · 0.6 = 0.94`.
#
# **Momentum.** A ball rolling downhill does not stop at every bump: keep a buffer `b` of
# past gradients, `b ← μ·b + g`, and step along it, `w ← w - lr · b`. Along a direction where
# the gradients agree, `b` grows up to `g / (1 - μ)` (10× for `μ = 0.9`); where they
# alternate in sign, they cancel. As in PyTorch, the buffer starts on the first step as a
# **copy** of the gradient, `b = g`, and is updated in place after that. (A copy: the
# gradient array belongs to the layer, whose next backward may add into it.)
# With `g = 1` at every step, `μ = 0.9`, `lr = 0.1`, `w₀ = 1`:
#
# | step | buffer `b` | `w` |
# |---|---|---|
# | 1 | `1` | `1 - 0.1 · 1 = 0.9` |
# | 2 | `0.9 · 1 + 1 = 1.9` | `0.9 - 0.19 = 0.71` |
# | 3 | `0.9 · 1.9 + 1 = 2.71` | `0.71 - 0.271 = 0.439` |
#
# **Nesterov momentum** looks one step ahead: after updating the buffer, step along
# `g + μ·b` instead of `b`. Same example: step 1 `b = 1`, step along `1 + 0.9 = 1.9`:
# `w = 0.81`; step 2 `b = 1.9`, along `1 + 0.9 · 1.9 = 2.71`: `w = 0.81 - 0.271 = 0.539`.
# Without momentum it means nothing, so `nesterov=True` with `momentum=0` is an error.
#
# The order, exactly as `torch.optim.SGD`: (1) `g = grad + wd · w`; (2) momentum: the buffer
# from `g`, then `g = b` (or `g + μ·b` with Nesterov); (3) `w -= lr · g`.
#
# **Hyper-parameters are checked up front**: a negative learning rate would *climb* the
# loss, quietly. Raise a `ValueError` that names the value when the optimizer is built, not
# a NaN a thousand steps later.

# %%
#| export
class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and weight
    decay, exactly as torch.optim.SGD (dampening 0).

    >>> opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    """

    def __init__(self, params, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        # TODO: raise ValueError, naming the value, when lr < 0, momentum < 0,
        #       weight_decay < 0, or nesterov is True while momentum is 0, e.g. "SGD:
        #       invalid learning rate lr=-0.1 (it must be >= 0)".
        ### BEGIN SOLUTION
        if lr < 0:
            raise ValueError(f"SGD: invalid learning rate lr={lr} (it must be >= 0)")
        if momentum < 0:
            raise ValueError(f"SGD: invalid momentum={momentum} (it must be >= 0)")
        if weight_decay < 0:
            raise ValueError(f"SGD: invalid weight_decay={weight_decay} (it must be >= 0)")
        if nesterov and momentum <= 0:
            raise ValueError(f"SGD: nesterov=True needs a momentum > 0, got momentum={momentum}")
        ### END SOLUTION
        super().__init__(params)
        self.lr, self.momentum, self.nesterov = lr, momentum, nesterov
        self.weight_decay = weight_decay

    def step(self):
        """One update of every parameter that has a gradient."""
        for p in self.params:
            # TODO: skip p when p.grad is None. Then, with g = p.grad.data:
            #       1. weight decay: g = g + weight_decay * p.data (a new array, if
            #          wd != 0);
            #       2. momentum (if != 0): the buffer in self.state[p]["momentum_buffer"]
            #          is a copy of g on the first step, else buf = momentum * buf + g,
            #          updated in place; then g = g + momentum * buf (nesterov) or
            #          g = buf;
            #       3. p.data -= lr * g, in place.
            ### BEGIN SOLUTION
            if p.grad is None:
                continue
            grad = p.grad.data
            if self.weight_decay != 0:
                grad = grad + self.weight_decay * p.data
            if self.momentum != 0:
                state = self.state.setdefault(p, {})
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = grad.copy()
                    state["momentum_buffer"] = buf
                else:
                    buf *= self.momentum
                    buf += grad
                if self.nesterov:
                    grad = grad + self.momentum * buf
                else:
                    grad = buf
            p.data -= self.lr * grad
            ### END SOLUTION

# %% [markdown]
# ### Test it: SGD
#
# Each test cell checks the step just above it and says what it expected, what came, and a
# hint. The autograder adds more checks of the same topic (many steps against PyTorch's formulas, several parameters), so make the rule right,
# not only the example.

# %%
#| test: sgd (2 points)
def test_sgd():
    w = Tensor([1.0, -2.0], requires_grad=True)
    b = Tensor([3.0], requires_grad=True)
    opt = SGD([w, b], lr=0.1)
    w.grad, b.grad = Tensor([0.5, -1.0]), Tensor([2.0])
    opt.step()
    assert np.allclose(w.data, [0.95, -1.9]) and np.allclose(b.data, [2.8]), (
        "SGD(lr=0.1), w = [1, -2] with grad [0.5, -1], b = [3] with grad [2]: expected "
        f"w = [0.95, -1.9] and b = [2.8], got w = {w.data} and b = {b.data}. Hint: "
        "p.data -= lr * grad.")
    opt.step()
    assert np.allclose(w.data, [0.9, -1.8]), (
        f"a second step with the same gradient: expected [0.9, -1.8], got {w.data}.")

test_sgd()
### BEGIN HIDDEN TESTS
_a, _b = Tensor([1.0, 2.0], requires_grad=True), Tensor([5.0], requires_grad=True)
_o = SGD([_a, _b], lr=0.5)
_a.grad = Tensor([1.0, 1.0])
_array = _a.data
_o.step()
assert _a.data is _array and np.allclose(_a.data, [0.5, 1.5]), "update in place: p.data -= ..., not p.data = ..."
assert _b.data[0] == 5.0, "a parameter whose grad is None is skipped"
assert np.array_equal(_a.grad.data, [1.0, 1.0]), "step must not change the gradient"
assert _a.dtype == np.float32, "a float32 parameter stays float32"
for _opts in [dict(momentum=0.9), dict(weight_decay=0.1), dict(momentum=0.9, nesterov=True, weight_decay=0.1)]:
    _c, _d = Tensor([1.0], requires_grad=True), Tensor([2.0], requires_grad=True)
    _o = SGD([_c, _d], lr=0.1, **_opts)
    _c.grad = Tensor([1.0])
    _o.step()
    _o.step()
    assert _d.data[0] == 2.0 and _d not in _o.state, f"with {_opts}, a parameter without grad is skipped entirely"
    assert _c.data[0] < 1.0
_o = SGD([_a], lr=0.1)
_o.lr = 1.0
_before = _a.data.copy()
_o.step()
assert np.allclose(_a.data, _before - 1.0), "step reads self.lr at every step (schedules change it)"
### END HIDDEN TESTS

# %% [markdown]
# ### SGD with momentum

# %%
#| test: sgd_momentum (2 points)
def test_sgd_momentum():
    w = Tensor([1.0], requires_grad=True)
    opt = SGD([w], lr=0.1, momentum=0.9)
    table = [(1.0, 0.9), (1.9, 0.71), (2.71, 0.439)]       # (buffer, w) after each step
    for step, (buffer, value) in enumerate(table, start=1):
        w.grad = Tensor([1.0])
        opt.step()
        got = opt.state.get(w, {}).get("momentum_buffer")
        assert got is not None and np.allclose(got, buffer), (
            f"step {step}: opt.state[w]['momentum_buffer'] should be {buffer}, got "
            f"{got}. Hint: a copy of the gradient on the first step, then buf = momentum "
            "* buf + grad.")
        assert np.allclose(w.data, [value]), (
            f"step {step} of the table (g = 1, momentum 0.9, lr 0.1): expected w = "
            f"{value}, got {w.data[0]:.4f}.")

test_sgd_momentum()
### BEGIN HIDDEN TESTS
_w = Tensor([1.0], requires_grad=True)
_w.grad = Tensor([1.0])                          # the same gradient Tensor for three steps
_o = SGD([_w], lr=0.1, momentum=0.9)
for _value in (0.9, 0.71, 0.439):
    _o.step()
    assert np.allclose(_w.data, [_value]), "the buffer must be a copy of the gradient, not the gradient's array"
assert np.array_equal(_w.grad.data, [1.0]), "step must never change p.grad"

def _ref_sgd(w, grads, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    w, buf, path = w.copy(), None, []
    for g in grads:
        g = g(w) + weight_decay * w
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + g
            g = g + momentum * buf if nesterov else buf
        w = w - lr * g
        path.append(w.copy())
    return path

_rng = np.random.default_rng(0)
_A = _rng.standard_normal((3, 3))
_A = _A @ _A.T / 3 + np.eye(3)
_c = _rng.standard_normal(3)
_grad = lambda v: _A @ v - _c                     # a quadratic's gradient
_p = Tensor(_rng.standard_normal(3), dtype=np.float64)
_q = Tensor(_rng.standard_normal((2, 2)), dtype=np.float64)
_p0, _q0 = _p.data.copy(), _q.data.copy()
_o = SGD([_p, _q], lr=0.05, momentum=0.8)
_path = _ref_sgd(_p0, [_grad] * 30, 0.05, momentum=0.8)
_qpath = _ref_sgd(_q0, [lambda v: 2 * v] * 30, 0.05, momentum=0.8)
for _t in range(30):
    _p.grad = Tensor(_grad(_p.data), dtype=np.float64)
    _q.grad = Tensor(2 * _q.data, dtype=np.float64)
    _o.step()
    assert np.allclose(_p.data, _path[_t], rtol=1e-10, atol=1e-12), f"momentum: step {_t + 1} differs from torch.optim.SGD's rule"
    assert np.allclose(_q.data, _qpath[_t], rtol=1e-10, atol=1e-12), "each parameter has its own buffer"
assert _p in _o.state and _q in _o.state and _o.state[_p] is not _o.state[_q]
### END HIDDEN TESTS

# %% [markdown]
# ### Nesterov momentum and weight decay

# %%
#| test: sgd_nesterov_weight_decay (2 points)
def test_sgd_nesterov_weight_decay():
    w = Tensor([1.0], requires_grad=True)
    opt = SGD([w], lr=0.1, momentum=0.9, nesterov=True)
    for step, value in enumerate([0.81, 0.539], start=1):
        w.grad = Tensor([1.0])
        opt.step()
        assert np.allclose(w.data, [value]), (
            f"Nesterov (g = 1, momentum 0.9, lr 0.1), step {step}: expected w = {value}, "
            f"got {w.data[0]:.4f}. Hint: after updating the buffer, step along grad + "
            "momentum * buf.")
    v = Tensor([1.0], requires_grad=True)
    opt = SGD([v], lr=0.1, weight_decay=0.1)
    v.grad = Tensor([0.5])
    opt.step()
    assert np.allclose(v.data, [0.94]), (
        "weight decay 0.1 (w = 1, g = 0.5, lr 0.1): g becomes 0.5 + 0.1 * 1 = 0.6 and w "
        f"= 0.94; got {v.data[0]:.4f}.")

test_sgd_nesterov_weight_decay()
### BEGIN HIDDEN TESTS
def _ref_sgd(w, grads, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    w, buf, path = w.copy(), None, []
    for g in grads:
        g = g(w) + weight_decay * w
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + g
            g = g + momentum * buf if nesterov else buf
        w = w - lr * g
        path.append(w.copy())
    return path

_rng = np.random.default_rng(1)
_A = _rng.standard_normal((4, 4))
_A = _A @ _A.T / 4 + np.eye(4)
_c = _rng.standard_normal(4)
for _opts in [dict(momentum=0.9, nesterov=True, weight_decay=0.1), dict(momentum=0.5, weight_decay=0.05),
              dict(momentum=0.7, nesterov=True), dict(weight_decay=0.2),
              dict(momentum=1.0, weight_decay=1.0)]:
    _p = Tensor(_rng.standard_normal(4), dtype=np.float64)
    _path = _ref_sgd(_p.data, [lambda v: _A @ v - _c] * 40, 0.05, **_opts)
    _o = SGD([_p], lr=0.05, **_opts)
    for _t in range(40):
        _p.grad = Tensor(_A @ _p.data - _c, dtype=np.float64)
        _o.step()
    assert np.allclose(_p.data, _path[-1], rtol=1e-10, atol=1e-12), (
        f"SGD with {_opts}: 40 steps differ from torch.optim.SGD's rule (decay into the gradient first, "
        "then momentum, then Nesterov)")
from tinytorch.testing import assert_untouched  # noqa: E402

# p.grad belongs to the layers (and module 08 reads it after step): step only reads it
for _opts in [dict(weight_decay=0.1), dict(momentum=0.9, nesterov=True), dict(momentum=0.5),
              dict(momentum=0.9, nesterov=True, weight_decay=0.1)]:
    _p = Tensor([1.0, -2.0, 3.0], requires_grad=True)
    _p.grad = Tensor([0.5, 0.5, -1.0])
    _o = SGD([_p], lr=0.1, **_opts)
    for _ in range(3):
        try:
            assert_untouched(_o.step, watch=[_p.grad])
        except AssertionError as _err:
            raise AssertionError(f"SGD(lr=0.1, {_opts}).step() changed p.grad: {_err}") from None
### END HIDDEN TESTS

# %%
w = Tensor([1.0], requires_grad=True)
opt = SGD([w], lr=0.1, momentum=0.9)
for step in range(1, 4):
    w.grad = Tensor([1.0])
    opt.step()
    print(
        f"step {step}: buffer {opt.state[w]['momentum_buffer'][0]:.2f}  w "
        f"{w.data[0]:.3f}")

# %% [markdown]
# ## Adam: a step size per weight
#
# One learning rate for all weights is a compromise: a weight whose gradients are tiny
# barely moves, one whose gradients are huge overshoots. Adam (Kingma & Ba, 2015) keeps two
# running averages per weight, of the gradient and of its square, and divides one by the
# root of the other:
#
# ```
# m ← β₁·m + (1-β₁)·g          the mean of recent gradients (momentum)
# v ← β₂·v + (1-β₂)·g²         the mean of recent squared gradients (their scale)
# m̂ = m / (1 - β₁ᵗ)            bias correction: m and v start at 0, so early averages
# v̂ = v / (1 - β₂ᵗ)              are too small; t counts this parameter's steps (1, 2, ...)
# w ← w - lr · m̂ / (√v̂ + ε)
# ```
#
# `m̂ / √v̂` is about ±1 when the gradients agree and small when they do not, **whatever
# their scale**: each weight moves by about `lr` per step at most. At `t = 1`, `m̂ = g` and
# `v̂ = g²` exactly (that is what the correction is for), so the first step is
# `lr · g / (|g| + ε) ≈ lr · sign(g)`. A worked example, `w = 1`, `lr = 0.1`, defaults
# `β = (0.9, 0.999)`:
#
# | t | g | m | v | m̂ | √v̂ | w |
# |---|---|---|---|---|---|---|
# | 1 | 0.5 | 0.05 | 0.00025 | 0.5 | 0.5 | `1 - 0.1 · 1 = 0.9` |
# | 2 | -0.5 | 0.045 - 0.05 = -0.005 | 0.00049975 | -0.005/0.19 = -0.0263 | 0.5 | `0.9 + 0.1 · 0.0526 = 0.90526` |
#
# The gradient flipped sign and Adam barely moved: the average of `+0.5` and `-0.5` says
# "no clear direction". `ε = 1e-8` only guards against dividing by 0; it goes **outside** the
# square root, as in PyTorch (inside, it would dominate for gradients below `1e-4`).
#
# As in PyTorch: `t` is counted **per parameter** (in its state, with `m` and `v`, which start
# as zeros of its shape), the bias corrections use Python floats so float32 stays float32,
# and `weight_decay` is classic L2, added to the gradient before anything else.
#
# ### AdamW: decay the weights, not the gradient
#
# With Adam, L2 decay added to the gradient is then divided by `√v̂`: weights with large
# gradients are barely decayed, which is not what "keep weights small" meant. AdamW
# (Loshchilov & Hutter, 2019) **decouples** it: shrink every weight by the same factor,
# `w ← w · (1 - lr · wd)`, *before* the Adam step, and give Adam the plain gradient.
# The difference is plainest with a zero gradient, `w = 1`, `lr = 0.1`, `wd = 0.5`:
#
# - Adam with L2: `g = 0 + 0.5 · 1 = 0.5`, a first step of `lr · sign(g)`: `w = 0.9`;
# - AdamW: `w = 1 · (1 - 0.1 · 0.5) = 0.95`, then an Adam step with `m = 0`: `w = 0.95`.
#
# AdamW's default `weight_decay` is `0.01`; it is the usual optimizer for transformers.

# %%
#| export
class Adam(Optimizer):
    """Adam, exactly as torch.optim.Adam (amsgrad off): per-parameter step counts, bias
    correction, eps outside the square root, weight_decay as L2 added to the gradient."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        name = type(self).__name__
        # TODO: raise ValueError naming the value when lr < 0, eps < 0, weight_decay < 0,
        #       or a beta is outside [0, 1), e.g. "Adam: invalid beta at index 1:
        #       betas[1]=1.0 (each beta must be in [0, 1))". Use `name` so AdamW's
        #       messages say AdamW.
        ### BEGIN SOLUTION
        if lr < 0:
            raise ValueError(f"{name}: invalid learning rate lr={lr} (it must be >= 0)")
        if eps < 0:
            raise ValueError(f"{name}: invalid eps={eps} (it must be >= 0)")
        if weight_decay < 0:
            raise ValueError(f"{name}: invalid weight_decay={weight_decay} (it must be >= 0)")
        for index, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{name}: invalid beta at index {index}: betas[{index}]={beta} "
                                 "(each beta must be in [0, 1))")
        ### END SOLUTION
        super().__init__(params)
        self.lr, self.betas, self.eps = lr, tuple(betas), eps
        self.weight_decay = weight_decay

    def _adam_step(self, p, grad):
        """The Adam update of one parameter p, given the gradient array to use."""
        beta1, beta2 = self.betas
        # TODO: get p's state (create {"step": 0, "exp_avg": zeros, "exp_avg_sq": zeros}
        #       the first time, zeros of p's shape and dtype); count the step; update m
        #       and v in place; then p.data -= lr * m_hat / (sqrt(v_hat) + eps), in place.
        ### BEGIN SOLUTION
        state = self.state.get(p)
        if state is None:
            state = {"step": 0, "exp_avg": np.zeros_like(p.data), "exp_avg_sq": np.zeros_like(p.data)}
            self.state[p] = state
        state["step"] += 1
        step, exp_avg, exp_avg_sq = state["step"], state["exp_avg"], state["exp_avg_sq"]
        exp_avg *= beta1
        exp_avg += (1 - beta1) * grad
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        denom = np.sqrt(exp_avg_sq) / math.sqrt(bias_correction2) + self.eps
        p.data -= (self.lr / bias_correction1) * (exp_avg / denom)
        ### END SOLUTION

    def step(self):
        """One Adam update of every parameter that has a gradient."""
        for p in self.params:
            if p.grad is None:
                continue
            grad = p.grad.data
            # TODO: L2 weight decay: when weight_decay != 0, use grad + weight_decay *
            #       p.data (a new array). Then the Adam update of p with that gradient.
            ### BEGIN SOLUTION
            if self.weight_decay != 0:
                grad = grad + self.weight_decay * p.data
            self._adam_step(p, grad)
            ### END SOLUTION


class AdamW(Adam):
    """Adam with decoupled weight decay, exactly as torch.optim.AdamW: every step first
    shrinks each weight by (1 - lr * weight_decay), then takes the Adam step on the plain
    gradient."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def step(self):
        """One AdamW update of every parameter that has a gradient."""
        for p in self.params:
            if p.grad is None:
                continue
            # TODO: shrink p.data in place by the factor (1 - lr * weight_decay), then the
            #       Adam update of p with its plain gradient p.grad.data.
            ### BEGIN SOLUTION
            p.data *= 1 - self.lr * self.weight_decay
            self._adam_step(p, p.grad.data)
            ### END SOLUTION

# %% [markdown]
# ### The base class, through both optimizers
#
# `Optimizer` is tested here, once SGD and Adam exist to build it with.

# %%
#| test: optimizer_base (1 point)
def test_optimizer_base():
    a, b = Tensor([1.0], requires_grad=True), Tensor([2.0, 3.0], requires_grad=True)
    opt = SGD((p for p in [a, b]), lr=0.1)
    assert isinstance(opt.params, list) and len(opt.params) == 2 and opt.params[0] is a, (
        "Optimizer(params) should keep the parameters as a list (params may be a "
        f"generator), got {getattr(opt, 'params', None)!r}.")
    assert opt.state == {}, "a new optimizer has an empty state dict."
    a.grad, b.grad = Tensor([1.0]), Tensor([1.0, 1.0])
    opt.zero_grad()
    assert a.grad is None and b.grad is None, (
        f"zero_grad() should set every .grad to None, got {a.grad!r}.")
    try:
        SGD([], lr=0.1)
    except ValueError:
        pass
    else:
        raise AssertionError(
            "SGD([], lr=0.1) should raise ValueError: there is nothing to optimize.")

test_optimizer_base()
### BEGIN HIDDEN TESTS
_l = Linear(2, 3)
_o = Adam(_l.parameters())
assert _o.params == _l.parameters() or all(p is q for p, q in zip(_o.params, _l.parameters()))
for _bad in [(), iter([])]:
    try:
        Adam(_bad)
    except ValueError as _e:
        assert "empty" in str(_e), "say that the parameter list is empty"
    else:
        raise AssertionError("an empty parameter list must raise ValueError")
_o.zero_grad()
assert all(p.grad is None for p in _l.parameters())
### END HIDDEN TESTS

# %% [markdown]
# ### Adam

# %%
#| test: adam (3 points)
def test_adam():
    w = Tensor([1.0], requires_grad=True)
    opt = Adam([w], lr=0.1)
    w.grad = Tensor([0.5])
    opt.step()
    assert np.allclose(w.data, [0.9], atol=1e-6), (
        "Adam's first step (w = 1, g = 0.5, lr = 0.1) moves by lr * sign(g): expected w "
        f"= 0.9, got {w.data[0]:.6f}. Hint: did you bias-correct m and v?")
    w.grad = Tensor([-0.5])
    opt.step()
    assert np.allclose(w.data, [0.9052632], atol=1e-6), (
        "Adam's second step with g = -0.5 (the table): expected w = 0.905263, got "
        f"{w.data[0]:.6f}.")
    state = opt.state.get(w, {})
    assert state.get("step") == 2, (
        "opt.state[w]['step'] should count this parameter's steps: 2, got "
        f"{state.get('step')}.")
    big = Tensor([1.0, 1.0], requires_grad=True)
    opt = Adam([big], lr=0.01)
    big.grad = Tensor([1000.0, -0.01])
    opt.step()
    assert np.allclose(big.data, [0.99, 1.01], atol=1e-5), (
        "whatever the gradient's scale, Adam's first step is about lr: expected [0.99, "
        f"1.01], got {big.data}.")

test_adam()
### BEGIN HIDDEN TESTS
def _ref_adam(w, grad, steps, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    w, m, v = w.copy(), np.zeros_like(w), np.zeros_like(w)
    for t in range(1, steps + 1):
        g = grad(w)
        if decoupled:
            w = w * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * w
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        m_hat, v_hat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
    return w

_rng = np.random.default_rng(2)
_A = _rng.standard_normal((3, 3))
_A = _A @ _A.T / 3 + np.eye(3)
_c = _rng.standard_normal(3)
for _scale, _opts in [(1.0, dict(lr=0.05)), (1e-6, dict(lr=0.01)), (1.0, dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6)),
                      (1.0, dict(lr=0.05, weight_decay=0.1)), (1.0, dict(lr=0.05, weight_decay=1.0))]:
    _p = Tensor(_rng.standard_normal(3), dtype=np.float64)
    _expected = _ref_adam(_p.data, lambda v, s=_scale: s * (_A @ v - _c), 50, **_opts)
    _o = Adam([_p], **_opts)
    for _ in range(50):
        _p.grad = Tensor(_scale * (_A @ _p.data - _c), dtype=np.float64)
        _o.step()
    assert np.allclose(_p.data, _expected, rtol=1e-10, atol=1e-12), (
        f"Adam with {_opts}, gradients of scale {_scale}: 50 steps differ from torch.optim.Adam's rule "
        "(eps outside the square root; weight decay added to the gradient)")
_p, _q = Tensor([1.0, 2.0], dtype=np.float64), Tensor([[3.0]], dtype=np.float64)
_ep = _ref_adam(_p.data, lambda v: 2 * v, 10, lr=0.1)
_eq = _ref_adam(_q.data, lambda v: 2 * v, 4, lr=0.1)
_o = Adam([_p, _q], lr=0.1)
for _t in range(10):
    _p.grad = Tensor(2 * _p.data, dtype=np.float64)
    _q.grad = Tensor(2 * _q.data, dtype=np.float64) if _t >= 6 else None
    _o.step()
assert np.allclose(_p.data, _ep, rtol=1e-10) and np.allclose(_q.data, _eq, rtol=1e-10), (
    "each parameter counts its own steps (a parameter skipped while its grad was None starts at t = 1)")
assert _o.state[_p]["step"] == 10 and _o.state[_q]["step"] == 4
_f = Tensor([1.0, 2.0], requires_grad=True)
_array = _f.data
_o = Adam([_f], lr=0.1)
_f.grad = Tensor([1.0, 1.0])
_o.step()
assert _f.data is _array and _f.dtype == np.float32, "update in place, float32 stays float32"
assert np.array_equal(_f.grad.data, [1.0, 1.0]), "step must not change the gradient"
from tinytorch.testing import assert_untouched  # noqa: E402

_f.grad = Tensor([0.5, -0.25])
_o = Adam([_f], lr=0.1, weight_decay=0.1)
for _ in range(3):
    try:
        assert_untouched(_o.step, watch=[_f.grad])
    except AssertionError as _err:
        raise AssertionError(f"Adam(lr=0.1, weight_decay=0.1).step() changed p.grad: {_err}") from None
# the moment estimates have the parameter's dtype
for _dtype in (np.float32, np.float64):
    _w = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=_dtype)
    _w.grad = Tensor(np.ones((2, 3)), dtype=_dtype)
    _o = Adam([_w], lr=0.1)
    _o.step()
    _kept = {k: v.dtype for k, v in _o.state[_w].items() if isinstance(v, np.ndarray)}
    assert set(_kept) == {"exp_avg", "exp_avg_sq"}, (
        "Adam keeps its moment estimates in opt.state[p], as 'exp_avg' and 'exp_avg_sq' (module "
        f"08's checkpoints save opt.state); the arrays there are {sorted(_kept)}.")
    assert all(d == _dtype for d in _kept.values()) and _w.dtype == _dtype, (
        f"Adam on a {np.dtype(_dtype)} parameter: its state should be {np.dtype(_dtype)} too, "
        f"got {_kept}. Hint: np.zeros_like(p.data) has p's shape and dtype.")


# module 08's checkpoints save optimizer.state and load it into a new optimizer: a run resumed
# that way must continue exactly as the uninterrupted one
def _resumed_path(make, resume_at):
    weight = Tensor(np.linspace(-1.0, 2.0, 6).reshape(2, 3), dtype=np.float64)
    optimizer = make([weight])
    for step in range(6):
        if step == resume_at:
            saved = {k: np.array(v) if isinstance(v, np.ndarray) else v
                     for k, v in optimizer.state[weight].items()}
            optimizer = make([weight])
            optimizer.state = {weight: saved}
        weight.grad = Tensor(2 * weight.data - 1, dtype=np.float64)
        optimizer.step()
    return weight.data


for _make in (lambda ps: Adam(ps, lr=0.1), lambda ps: AdamW(ps, lr=0.1, weight_decay=0.1)):
    _straight, _resumed = _resumed_path(_make, None), _resumed_path(_make, 3)
    assert np.allclose(_resumed, _straight, rtol=1e-12, atol=0), (
        f"{type(_make([Tensor([1.0])])).__name__}: 3 steps, a checkpoint of optimizer.state "
        "loaded into a new optimizer, 3 more steps should land where 6 steps do; got "
        f"{_resumed.ravel()} instead of {_straight.ravel()}. Keep everything a parameter needs "
        "(step, exp_avg, exp_avg_sq) in self.state[p].")
### END HIDDEN TESTS

# %% [markdown]
# ### AdamW

# %%
#| test: adamw (2 points)
def test_adamw():
    w = Tensor([1.0], requires_grad=True)
    opt = AdamW([w], lr=0.1, weight_decay=0.5)
    w.grad = Tensor([0.0])
    opt.step()
    assert np.allclose(w.data, [0.95]), (
        "AdamW, w = 1, zero gradient, lr 0.1, weight_decay 0.5: w shrinks to 1 * (1 - "
        f"0.1 * 0.5) = 0.95; got {w.data[0]:.4f}. (0.9 would be Adam's L2 decay, added "
        "to the gradient.)")
    assert isinstance(opt, Adam) and AdamW([w]).weight_decay == 0.01, (
        "AdamW's default weight_decay is 0.01.")
    v = Tensor([1.0], requires_grad=True)
    opt = AdamW([v], lr=0.1, weight_decay=0.0)
    v.grad = Tensor([0.5])
    opt.step()
    assert np.allclose(v.data, [0.9], atol=1e-6), (
        f"without decay, AdamW is Adam: expected 0.9, got {v.data[0]:.6f}.")

test_adamw()
### BEGIN HIDDEN TESTS
def _ref_adamw(w, grad, steps, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
    w, m, v = w.copy(), np.zeros_like(w), np.zeros_like(w)
    for t in range(1, steps + 1):
        g = grad(w)
        w = w * (1 - lr * weight_decay)
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        w = w - lr * (m / (1 - betas[0] ** t)) / (np.sqrt(v / (1 - betas[1] ** t)) + eps)
    return w

_rng = np.random.default_rng(3)
for _opts in [dict(lr=0.05, weight_decay=0.1), dict(lr=0.1), dict(lr=0.01, weight_decay=0.5, betas=(0.5, 0.9))]:
    _p = Tensor(_rng.standard_normal(4), dtype=np.float64)
    _target = _rng.standard_normal(4)
    _expected = _ref_adamw(_p.data, lambda v, target=_target: 3 * (v - target), 50, **_opts)
    _o = AdamW([_p], **_opts)
    for _ in range(50):
        _p.grad = Tensor(3 * (_p.data - _target), dtype=np.float64)
        _o.step()
    assert np.allclose(_p.data, _expected, rtol=1e-10, atol=1e-12), (
        f"AdamW with {_opts}: 50 steps differ from torch.optim.AdamW's rule (decay the weight first, "
        "then the Adam step on the plain gradient)")
_a, _b = Tensor([1.0], requires_grad=True), Tensor([1.0], requires_grad=True)
_o = AdamW([_a, _b], lr=0.1, weight_decay=0.5)
_a.grad = Tensor([0.0])
_o.step()
assert _b.data[0] == 1.0, "a parameter without grad is not decayed either (it is skipped)"
_a.grad = Tensor([0.5])
_array = _a.data
_o.step()
assert _a.data is _array, (
    "AdamW must decay the weight in place (p.data *= ...): a new array per step leaves "
    "whatever holds the parameter's array with stale weights.")
### END HIDDEN TESTS

# %% [markdown]
# ### Hyper-parameters are checked up front

# %%
#| test: hyperparameters (1 point)
def test_hyperparameters():
    w = Tensor([1.0], requires_grad=True)
    for make, bad in [(lambda: SGD([w], lr=-0.1), "-0.1"),
                      (lambda: Adam([w], lr=-1.0), "-1.0")]:
        try:
            make()
        except ValueError as error:
            assert bad in str(error), (
                f"the ValueError should name the bad value {bad}; it says: {error}")
        else:
            raise AssertionError(
                f"a learning rate of {bad} should raise ValueError when the optimizer is "
                "built.")
    SGD([w], lr=0.0)
    Adam([w], lr=0.0)

test_hyperparameters()
### BEGIN HIDDEN TESTS
_w = Tensor([1.0], requires_grad=True)
for _make, _bad in [(lambda: SGD([_w], lr=0.1, momentum=-0.5), "-0.5"),
                    (lambda: SGD([_w], lr=0.1, weight_decay=-0.25), "-0.25"),
                    (lambda: SGD([_w], lr=0.1, nesterov=True), "nesterov"),
                    (lambda: Adam([_w], betas=(1.0, 0.999)), "1.0"),
                    (lambda: Adam([_w], betas=(0.9, -0.125)), "-0.125"),
                    (lambda: Adam([_w], betas=(0.9, 1.5)), "1.5"),
                    (lambda: Adam([_w], eps=-1e-08), "-1e-08"),
                    (lambda: Adam([_w], weight_decay=-0.75), "-0.75"),
                    (lambda: AdamW([_w], betas=(0.9, 1.0)), "AdamW"),
                    (lambda: AdamW([_w], lr=-2.5), "-2.5")]:
    try:
        _make()
    except ValueError as _e:
        assert _bad in str(_e), f"the ValueError should name {_bad!r}; it says: {_e}"
    else:
        raise AssertionError(f"an invalid hyper-parameter ({_bad}) must raise ValueError")
SGD([_w], lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.0)
Adam([_w], betas=(0.0, 0.0), eps=0.0)
### END HIDDEN TESTS

# %%
for rule in (Adam, AdamW):
    w = Tensor([1.0], requires_grad=True)
    opt = rule([w], lr=0.1, weight_decay=0.5)
    w.grad = Tensor([0.0])
    opt.step()
    print(f"{rule.__name__:5}, weight_decay=0.5, zero gradient: w = {w.data[0]:.4f}")

# %% [markdown]
# ## Learning-rate schedules
#
# A large learning rate makes fast progress early and then bounces around the minimum; a
# small one settles but crawls. So the rate is lowered as training goes. A schedule owns
# that decision: it remembers the optimizer's starting `lr` (`base_lr`), and each
# `schedule.step()` (once per epoch, after `optimizer.step()`) counts an epoch and sets
# `optimizer.lr`. `get_last_lr()` returns the rate it set last, as a one-element list,
# like PyTorch (which has one entry per parameter group). `state_dict()` and
# `load_state_dict()` save and restore where a schedule stands (module 08's checkpoints).
#
# **StepLR(step_size, gamma)**: multiply by `gamma` every `step_size` epochs,
# `lr = base_lr · gamma^⌊epoch / step_size⌋`. With `base_lr = 0.1`, `step_size = 2`,
# `gamma = 0.5`, epochs 0 to 5 give `0.1, 0.1, 0.05, 0.05, 0.025, 0.025`.
#
# **CosineAnnealingLR(T_max, eta_min)**: glide from `base_lr` down to `eta_min` along half a
# cosine over `T_max` epochs:
# `lr = eta_min + (base_lr - eta_min) · (1 + cos(π · epoch / T_max)) / 2`.
# With `base_lr = 0.1`, `T_max = 4`, `eta_min = 0`, epochs 0 to 4 give
# `0.1, 0.0854, 0.05, 0.0146, 0`: slow at both ends, fastest in the middle. Past `T_max`
# the formula climbs back up, as PyTorch's does; train for `T_max` epochs.

# %%
#| export
class LRScheduler:
    """Base class of the schedules: sets optimizer.lr from get_lr() at every step()."""

    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"{type(self).__name__} needs an Optimizer, got "
                f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0
        self._set_lr(self.get_lr())

    def get_lr(self):
        """The learning rate for epoch self.last_epoch."""
        raise NotImplementedError(f"{type(self).__name__} must implement get_lr()")

    def _set_lr(self, lr):
        self.optimizer.lr = lr
        self._last_lr = [lr]

    def step(self):
        """Count one epoch and set the optimizer's learning rate for it."""
        self.last_epoch += 1
        self._set_lr(self.get_lr())

    def get_last_lr(self):
        """[the learning rate set last], a list as in PyTorch."""
        return list(self._last_lr)

    def state_dict(self):
        """Where the schedule stands (as in PyTorch): enough to resume it later."""
        return {"last_epoch": self.last_epoch, "base_lr": self.base_lr}

    def load_state_dict(self, state):
        """Resume from state_dict(). As in PyTorch, load the optimizer first: the rate in
        force is the one its own state_dict() saved."""
        self.last_epoch, self.base_lr = state["last_epoch"], state["base_lr"]
        self._set_lr(self.optimizer.lr)


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (epoch // step_size), like
    torch.optim.lr_scheduler.StepLR."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        if int(step_size) != step_size or step_size < 1:
            raise ValueError(
                f"StepLR: step_size must be a positive integer, got {step_size}")
        self.step_size, self.gamma = int(step_size), gamma
        super().__init__(optimizer)

    def get_lr(self):
        # TODO: return base_lr times gamma to the number of completed step_size periods.
        ### BEGIN SOLUTION
        return self.base_lr * self.gamma ** (self.last_epoch // self.step_size)
        ### END SOLUTION


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2, like
    torch.optim.lr_scheduler.CosineAnnealingLR."""

    def __init__(self, optimizer, T_max, eta_min=0.0):
        if T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be positive, got {T_max}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer)

    def get_lr(self):
        # TODO: the cosine formula above, at epoch self.last_epoch.
        ### BEGIN SOLUTION
        cosine = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return self.eta_min + (self.base_lr - self.eta_min) * cosine
        ### END SOLUTION

# %% [markdown]
# ### Learning-rate schedules

# %%
#| test: lr_schedules (2 points)
def test_lr_schedules():
    opt = SGD([Tensor([1.0])], lr=0.1)
    schedule = StepLR(opt, step_size=2, gamma=0.5)
    rates = [opt.lr]
    for _ in range(5):
        schedule.step()
        rates.append(opt.lr)
    assert np.allclose(rates, [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]), (
        "StepLR(step_size=2, gamma=0.5) from lr 0.1, epochs 0..5: expected [0.1, 0.1, "
        f"0.05, 0.05, 0.025, 0.025], got {rates}. Hint: base_lr * gamma ** (epoch // "
        "step_size).")
    assert schedule.get_last_lr() == [opt.lr], (
        f"get_last_lr() should be [the lr set last], got {schedule.get_last_lr()}.")
    opt = SGD([Tensor([1.0])], lr=0.1)
    schedule = CosineAnnealingLR(opt, T_max=4)
    rates = [opt.lr]
    for _ in range(4):
        schedule.step()
        rates.append(opt.lr)
    assert np.allclose(rates, [0.1, 0.0853553, 0.05, 0.0146447, 0.0], atol=1e-6), (
        "CosineAnnealingLR(T_max=4) from lr 0.1, epochs 0..4: expected [0.1, 0.0854, "
        f"0.05, 0.0146, 0], got {[round(r, 4) for r in rates]}.")

test_lr_schedules()
### BEGIN HIDDEN TESTS
_o = Adam([Tensor([1.0])], lr=0.2)
_s = CosineAnnealingLR(_o, T_max=5, eta_min=0.02)
_rates = [_s.get_last_lr()[0]]
for _ in range(10):
    _s.step()
    _rates.append(_s.get_last_lr()[0])
_expected = [0.02 + 0.18 * (1 + np.cos(np.pi * e / 5)) / 2 for e in range(11)]
assert np.allclose(_rates, _expected, rtol=1e-12), "cosine from base_lr to eta_min (and back up past T_max)"
assert abs(_rates[5] - 0.02) < 1e-12, "at T_max the rate is eta_min"
assert _o.lr == _rates[-1], "the schedule sets optimizer.lr"
_o = SGD([Tensor([1.0])], lr=1.0)
_s = StepLR(_o, step_size=3)
_rates = []
for _ in range(10):
    _s.step()
    _rates.append(_o.lr)
assert np.allclose(_rates, [1, 1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001], rtol=1e-12), "StepLR's default gamma is 0.1"
assert isinstance(_s.get_last_lr(), list) and len(_s.get_last_lr()) == 1
### END HIDDEN TESTS

# %%
w = Tensor([1.0])
for schedule in (StepLR(SGD([w], lr=0.1), step_size=2, gamma=0.5),
                 CosineAnnealingLR(SGD([w], lr=0.1), T_max=4)):
    rates = [schedule.get_last_lr()[0]]
    for _ in range(5):
        schedule.step()
        rates.append(schedule.get_last_lr()[0])
    print(f"{type(schedule).__name__:17}", [round(r, 4) for r in rates])

# %% [markdown]
# ## The training loop, systematic
#
# The loop of the start of this module, with every bookkeeping line gone into the
# optimizer. Changing the rule is changing one line.

# %%
def train(make_optimizer, steps=60):
    manual_seed(0)
    model, mse = Linear(1, 1), MSELoss()
    optimizer = make_optimizer(model.parameters())
    for _ in range(steps):
        loss = mse(model(x_line), y_line)
        optimizer.zero_grad()
        model.backward(mse.backward())
        optimizer.step()
    return loss.item(), model.weight.item(), model.bias.item()


show("SGD", train(lambda ps: SGD(ps, lr=0.1)))
show("SGD, momentum 0.5", train(lambda ps: SGD(ps, lr=0.1, momentum=0.5)))
show("Adam", train(lambda ps: Adam(ps, lr=0.1)))

# %% [markdown]
# ### The whole loop

# %%
#| test: training_loop (1 point)
def test_training_loop():
    manual_seed(0)
    model, mse = Linear(1, 1), MSELoss()
    opt = SGD(model.parameters(), lr=0.1, momentum=0.5)
    for _ in range(100):
        loss = mse(model(x_line), y_line)
        opt.zero_grad()
        model.backward(mse.backward())
        opt.step()
    assert (loss.item() < 1e-4 and abs(model.weight.item() - 2) < 0.01
            and abs(model.bias.item() - 1) < 0.01), (
        "SGD(lr=0.1, momentum=0.5) on y = 2x + 1 for 100 steps should find w = 2, b = "
        f"1; got w = {model.weight.item():.3f}, b = {model.bias.item():.3f}, loss "
        f"{loss.item():.5f}.")

test_training_loop()
### BEGIN HIDDEN TESTS
from tinytorch.core.activations import Tanh  # noqa: E402

_x = Tensor(np.linspace(-2, 2, 32).reshape(-1, 1))
_y = Tensor(np.sin(_x.data))
for _make in (lambda ps: Adam(ps, lr=0.05), lambda ps: AdamW(ps, lr=0.05, weight_decay=1e-4),
              lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True)):
    manual_seed(1)
    _model, _mse = Sequential(Linear(1, 16), Tanh(), Linear(16, 1)), MSELoss()
    _opt = _make(_model.parameters())
    _first = None
    for _ in range(300):
        _loss = _mse(_model(_x), _y)
        _first = _loss.item() if _first is None else _first
        _opt.zero_grad()
        _model.backward(_mse.backward())
        _opt.step()
    assert _loss.item() < 0.01 and _loss.item() < _first / 10, f"{type(_opt).__name__} should fit sin(x) with a small MLP"
### END HIDDEN TESTS

# %% [markdown]
# ## What you built, and what comes next
#
# The update rules now live in one place each: `SGD` with momentum, Nesterov and weight
# decay, `Adam`, `AdamW`, and two schedules for the learning rate. Each holds its parameters
# and per-parameter state, checks its hyper-parameters when it is built, updates in place,
# skips what has no gradient, and agrees with `torch.optim` to ten decimal places. A training
# step is four lines: forward, `zero_grad`, backward, `step`.
#
# One of those lines is still hand-made: `backward`. Every layer and every loss so far has
# a `backward` someone wrote and tested by hand, and a model that is not a plain chain (a
# residual connection, a shared layer, attention) needs its backward written again, in
# reverse, in the right order. **Computing gradients by hand is terrible**: module 07 makes
# the Tensor record how each result was computed (through `_result`) and derives every
# gradient automatically.
