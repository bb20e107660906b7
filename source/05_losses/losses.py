# %% [markdown]
# # Module 05: Losses — networks need a learning objective
#
# Module 04 organized weights into layers: `Sequential(Linear(2, 4), ReLU(), Linear(4, 1))`
# computes an output for every input. With random weights that output is nonsense. To
# improve it we need to know *how* wrong it is, as one number, and which way to change it.
#
# ## The problem: "better" needs a number
#
# XOR's targets are `[0, 1, 1, 0]`. Here are the outputs of two networks:
#
# ```
# targets     [0,   1,   1,   0  ]
# network A   [0.4, 0.6, 0.6, 0.4]      right side of 0.5 everywhere: 100% accuracy
# network B   [0.1, 0.9, 0.8, 0.2]      right side of 0.5 everywhere: 100% accuracy
# ```
#
# Accuracy calls them equal, though B is clearly closer. Worse, accuracy does not move when
# a weight moves a little: it jumps only when an output crosses 0.5, so it never says
# *which way* to change a weight. What learning needs is a **loss**: one number that
#
# - is small when the predictions are good, and smaller when they are better;
# - changes smoothly with the predictions, so that its gradient points downhill.
#
# The mean squared error does both:
#
# ```
# A: errors [0.4, -0.4, -0.4, 0.4], squares [0.16, 0.16, 0.16, 0.16]  ->  mean 0.16
# B: errors [0.1, -0.1, -0.2, 0.2], squares [0.01, 0.01, 0.04, 0.04]  ->  mean 0.025
# ```

# %%
from tinytorch.core.tensor import Tensor

targets = Tensor([0.0, 1.0, 1.0, 0.0])
networks = (("A", Tensor([0.4, 0.6, 0.6, 0.4])), ("B", Tensor([0.1, 0.9, 0.8, 0.2])))
for name, pred in networks:
    accuracy = ((pred > 0.5) == (targets > 0.5)).data.mean()
    mse = ((pred - targets) ** 2).mean().item()
    print(f"network {name}: accuracy {accuracy:.0%}, mean squared error {mse:.3f}")

# %% [markdown]
# ## Where the backward pass starts
#
# In module 03 every `backward(grad_output)` needed the gradient of the loss with respect to
# its output. Someone has to hand over the first one: the loss. Its `backward()` returns
# $\partial L / \partial \text{pred}$, a Tensor shaped like the predictions, and module 04's
# layers carry it back from there:
#
# ```python
# pred = model(x)                  # forward, through the layers
# loss = loss_fn(pred, target)     # one number: how wrong
# grad = loss_fn.backward()        # dL/dpred: where the backward pass starts
# model.backward(grad)             # ...and back through the layers to every weight
# ```
#
# Every loss here is a **mean** over the batch, as PyTorch's default `reduction="mean"`:
# the loss, and so the gradient's size, then does not grow with the batch size, and one
# learning rate works for batches of 8 or 512. The price is a `/ N` in every gradient.
#
# This module writes three losses:
#
# | loss | predictions | targets | used for |
# |---|---|---|---|
# | `MSELoss` | any numbers | numbers, same shape | regression; XOR (milestone after 06) |
# | `BCELoss` | probabilities in [0, 1] (after a `Sigmoid`) | 0 or 1, same shape | yes/no questions |
# | `CrossEntropyLoss` | logits `(N, C)`: one raw score per class | class ids `(N,)` | classification: digits (08), CIFAR (10), next token (14) |

# %%
#| export
import numpy as np

from tinytorch.core.tensor import Tensor

# %% [markdown]
# ## What every loss shares
#
# The base class and two checks are given. Calling a loss runs `forward(pred, target)`,
# which returns the loss as a Tensor of shape `()` and saves what `backward()` needs.
# `backward()` takes no argument: the loss is the end of the network, so $\partial L /
# \partial L = 1$ is implied.
#
# Like module 03's activations, a loss is an operation whose output is born in
# `Tensor._result` (module 07 records the graph there): end `forward` with
# `pred._result(value, "mse_loss", pred, target)`, where `value` is the NumPy mean, and the
# op names are `"mse_loss"`, `"bce_loss"` and `"cross_entropy"`. And as in module 03, keep
# the dtype: a float64 `pred` gives a float64 loss and gradient (the gradient check below
# needs it), so `backward` returns `Tensor(grad, dtype=grad.dtype)`.

# %%
#| export
class Loss:
    """A learning objective: `loss(pred, target)` is a Tensor of shape () holding the mean
    loss over the batch; `backward()` is its gradient with respect to `pred`."""

    def __call__(self, pred, target):
        return self.forward(pred, target)

    def forward(self, pred, target):
        raise NotImplementedError(
            f"{type(self).__name__} must define forward(pred, target)")

    def backward(self):
        raise NotImplementedError(f"{type(self).__name__} must define backward()")

    def __repr__(self):
        return f"{type(self).__name__}()"


def _check_same_shape(loss, pred, target):
    """Refuse a prediction and a target of different shapes, instead of broadcasting
    them."""
    if pred.shape != target.shape:
        raise ValueError(
            f"{loss}: pred has shape {pred.shape} but target has shape {target.shape}; "
            "they must be the same (reshape one of them, e.g. "
            f"target.reshape{pred.shape})")

# %% [markdown]
# ## Checking a gradient
#
# As in module 03, every `backward` is checked against the numerical gradient: nudge one
# prediction by `h` up and down and watch the loss, in float64. The helper is given.

# %%
def numerical_gradient(make, pred, target, h=1e-6):
    """dL/dpred by central differences, in float64. make: builds a fresh loss (e.g.
    MSELoss)."""
    pred = np.array(pred, dtype=np.float64)
    grad = np.zeros_like(pred)
    for index in np.ndindex(pred.shape):
        saved = pred[index]
        pred[index] = saved + h
        up = make()(Tensor(pred, dtype=np.float64), target).item()
        pred[index] = saved - h
        down = make()(Tensor(pred, dtype=np.float64), target).item()
        pred[index] = saved
        grad[index] = (up - down) / (2 * h)
    return grad

# %% [markdown]
# ## Mean squared error
#
# $$L = \frac{1}{N} \sum_{i=1}^{N} (\text{pred}_i - \text{target}_i)^2
# \qquad \frac{\partial L}{\partial \text{pred}_i} = \frac{2}{N}(\text{pred}_i - \text{target}_i)$$
#
# $N$ is the number of **entries**, all of them: for predictions of shape `(4, 3)` the mean
# runs over 12 squares, and the gradient divides by 12, not by the batch size 4.
#
# ```
# pred   = [1, 2, 3]      target = [1, 3, 5]
# errors = [0, -1, -2]    squares = [0, 1, 4]     L = 5 / 3 = 1.6667
# dL/dpred = 2 / 3 · [0, -1, -2] = [0, -0.6667, -1.3333]
# ```
#
# Squaring makes every error count positively and punishes large errors more: an error of
# 2 costs 4 times as much as an error of 1. The gradient says: move each prediction towards
# its target, the further away, the harder.
#
# **The shape trap.** A model with one output gives predictions of shape `(N, 1)`; targets
# often come as `(N,)`. Broadcasting `(N, 1) - (N,)` gives an `(N, N)` matrix of *every*
# prediction against *every* target, and the loss is a wrong number that still decreases
# while the model learns nonsense. PyTorch only warns about it. We refuse:
# `_check_same_shape` raises a `ValueError` naming both shapes.

# %%
# a perfect model
pred, target = np.array([[1.0], [2.0], [3.0]]), np.array([1.0, 2.0, 3.0])
print("(3, 1) - (3,) has shape", (pred - target).shape,
      "and the 'loss' is", ((pred - target) ** 2).mean())

# %%
#| export
class MSELoss(Loss):
    """Mean squared error: (1/N) Σᵢ (predᵢ - targetᵢ)² over all N entries."""

    def forward(self, pred, target):
        # a list or an array becomes a Tensor
        target = pred._lift(target)
        # TODO: refuse different shapes with _check_same_shape("MSELoss", pred, target);
        #       save the difference pred - target (a NumPy array) in self.diff; return the
        #       mean of its squares through pred._result with op "mse_loss" and parents
        #       pred, target.
        ### BEGIN SOLUTION
        _check_same_shape("MSELoss", pred, target)
        self.diff = pred.data - target.data
        loss = np.mean(self.diff ** 2)
        return pred._result(loss, "mse_loss", pred, target)
        ### END SOLUTION

    def backward(self):
        # TODO: return dL/dpred = 2 (pred - target) / N, N the number of entries (not
        #       rows).
        ### BEGIN SOLUTION
        grad = 2 * self.diff / self.diff.size
        return Tensor(grad, dtype=grad.dtype)
        ### END SOLUTION

# %% [markdown]
# ### Tests
#
# Each test cell checks one loss, forward or backward. A failing test says what it expected,
# what it got, and gives a hint. The autograder adds more checks of the same kind (other
# shapes, dtypes, extreme inputs), so make the rule right, not just the example.

# %%
#| test: losses_mse (2 points)
def test_losses_mse():
    loss = MSELoss()(Tensor([1.0, 2.0, 3.0]), Tensor([1.0, 3.0, 5.0]))
    assert isinstance(loss, Tensor) and loss.shape == (), (
        f"the loss should be a Tensor of shape () (one number), got {loss!r}. Hint: "
        "np.mean of every square, through pred._result.")
    assert abs(loss.item() - 5 / 3) < 1e-6, (
        "MSE of pred [1, 2, 3] against [1, 3, 5]: expected 5/3 = 1.6667 (squares 0, 1, "
        f"4), got {loss.item()}.")
    loss = MSELoss()(Tensor([0.5, 0.5]), [0.0, 1.0])
    assert abs(loss.item() - 0.25) < 1e-6, (
        f"MSE of [0.5, 0.5] against the list [0, 1]: expected 0.25, got {loss.item()}.")
    same = [[1.0, 2.0], [3.0, 4.0]]
    perfect = MSELoss()(Tensor(same), Tensor(same))
    assert perfect.item() == 0.0, (
        f"a perfect prediction has loss 0, got {perfect.item()}.")

test_losses_mse()
### BEGIN HIDDEN TESTS
try:
    MSELoss()(Tensor([[1.0], [2.0], [3.0]]), Tensor([1.0, 2.0, 3.0]))
    raise AssertionError("MSELoss of a (3, 1) pred and a (3,) target must raise ValueError, not broadcast to (3, 3)")
except ValueError as _e:
    assert "(3, 1)" in str(_e) and "(3,)" in str(_e), "the shape error must name both shapes"
_p = np.arange(12.0).reshape(4, 3)
_t = np.ones((4, 3))
_l = MSELoss()(Tensor(_p), Tensor(_t))
assert _l.shape == () and _l.dtype == np.float32 and np.isclose(_l.item(), np.mean((_p - 1) ** 2)), (
    "MSE over a (4, 3) batch: the mean over all 12 squares, float32")
_l = MSELoss()(Tensor(_p, dtype=np.float64), _t)
assert _l.dtype == np.float64, "a float64 pred gives a float64 loss"
_pred = Tensor([1.0, 2.0])
MSELoss()(_pred, Tensor([0.0, 0.0]))
assert np.array_equal(_pred.data, [1, 2]), "the loss must not change pred"
from tinytorch.testing import assert_untouched, cases, check_against, check_graph  # noqa: E402


def mse_loss(pred, target):
    return MSELoss()(pred, target)


# the mean of all the squares, for every shape, magnitude and dtype
check_against(mse_loss, lambda p, t: np.mean((p - t) ** 2), cases(inputs=2), name="MSELoss()")
assert_untouched(mse_loss, Tensor([[1.0, -2.0, 3.0]]), Tensor([[0.5, 0.5, 0.5]]))
# the graph contract: module 07's backward() gives dL/dpred through the recorded "mse_loss"
_t = Tensor(np.linspace(-1.0, 1.0, 12).reshape(3, 4), dtype=np.float64)
try:
    check_graph(lambda p: MSELoss()(p, _t), [np.arange(12.0).reshape(3, 4) / 5],
                name="MSELoss()(pred, target)")
except Exception as _err:
    raise AssertionError(
        f"{_err} ({type(_err).__name__}) Hint: module 07 finds the derivative rule by the "
        "op name and calls it with the parents: pred._result(loss, 'mse_loss', pred, target).") from None
### END HIDDEN TESTS

# %%
#| test: losses_mse_backward (2 points)
def test_losses_mse_backward():
    mse = MSELoss()
    mse(Tensor([1.0, 2.0, 3.0]), Tensor([1.0, 3.0, 5.0]))
    grad = mse.backward()
    assert isinstance(grad, Tensor) and grad.shape == (3,), (
        f"backward() should return a Tensor shaped like pred (3,), got {grad!r}.")
    assert np.allclose(grad.data, [0, -2 / 3, -4 / 3], atol=1e-6), (
        "MSE gradient for pred [1, 2, 3], target [1, 3, 5]: expected [0, -0.6667, "
        f"-1.3333] (2 (pred - target) / N), got {grad.data}.")
    pred, target = np.array([0.5, -1.0, 2.0, 0.0]), Tensor([1.0, 1.0, -1.0, 0.5])
    mse = MSELoss()
    mse(Tensor(pred, dtype=np.float64), target)
    got = mse.backward()
    want = numerical_gradient(MSELoss, pred, target)
    assert got.dtype == np.float64 and np.allclose(got.data, want, atol=1e-6), (
        f"MSE backward disagrees with the numerical gradient: expected {want} (float64), "
        f"got {got.data} ({got.dtype}). Hint: return Tensor(grad, dtype=grad.dtype).")

test_losses_mse_backward()
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng(0)
_p, _t = _rng.standard_normal((4, 3)), _rng.standard_normal((4, 3))
_mse = MSELoss()
_mse(Tensor(_p, dtype=np.float64), Tensor(_t, dtype=np.float64))
_g = _mse.backward()
assert _g.shape == (4, 3) and np.allclose(_g.data, numerical_gradient(MSELoss, _p, Tensor(_t, dtype=np.float64)), atol=1e-6), (
    "MSE gradient on a (4, 3) batch: divide by the number of entries, 12, not by the 4 rows")
_mse = MSELoss()
_mse(Tensor(_p), Tensor(_t))
assert _mse.backward().dtype == np.float32, "a float32 pred gives a float32 gradient"
from tinytorch.testing import assert_dtype_kept, cases, check_against  # noqa: E402


def mse_gradient(pred, target):
    loss = MSELoss()
    loss(pred, target)
    first = loss.backward()
    again = loss.backward()
    assert np.array_equal(first.data, again.data), (
        "a second MSELoss.backward() gave another gradient: backward must not change what "
        "forward saved (compute a new array from self.diff).")
    return first


check_against(mse_gradient, lambda p, t: 2 * (p - t) / p.size, cases(inputs=2),
              name="MSELoss().backward()")
assert_dtype_kept(mse_gradient, [(3, 4), (3, 4)], grad=False)
### END HIDDEN TESTS

# %% [markdown]
# ## Binary cross-entropy
#
# A yes/no question ("is this a 7?") ends in a `Sigmoid`: one probability `p` that the answer
# is yes, against a target `t` of 1 (yes) or 0 (no). The loss is the negative log of the
# probability the model gave to the right answer:
#
# $$L = -\frac1N \sum_i \bigl[t_i \log p_i + (1 - t_i)\log(1 - p_i)\bigr]$$
#
# For `t = 1` only $-\log p$ remains, for `t = 0` only $-\log(1 - p)$. Why a log and not a
# square? Because being confident and wrong must cost a lot: for `t = 1`, `p = 0.5` costs
# $-\log 0.5 = 0.69$, `p = 0.01` costs $4.6$, `p = 10^{-6}` costs $13.8$, without bound.
# A squared error would cost at most 1 and barely push.
#
# ```
# p = [0.8, 0.3], t = [1, 0]:
# L = -(log 0.8 + log 0.7) / 2 = (0.2231 + 0.3567) / 2 = 0.2899
# ```
#
# **The gradient.** $\frac{d}{dp}\bigl[-t\log p - (1-t)\log(1-p)\bigr] = -\frac{t}{p} + \frac{1-t}{1-p}
# = \frac{p - t}{p(1 - p)}$, over $N$:
#
# ```
# dL/dp = [(0.8 - 1) / (0.8 · 0.2), (0.3 - 0) / (0.3 · 0.7)] / 2 = [-1.25, 1.4286] / 2 = [-0.625, 0.7143]
# ```
#
# **Clipping.** A sigmoid can output exactly 0 or 1 (in float32, $\sigma(20)$ is already
# 1.0). Then $\log 0 = -\infty$, the loss is `inf`, and $p(1 - p) = 0$ divides by zero:
# one such sample turns the whole batch's loss and gradient into `inf` and `nan`. So clip
# `p` into $[\varepsilon, 1 - \varepsilon]$ first, with $\varepsilon = 10^{-7}$. Why that value:
#
# - small enough to change nothing for any sensible prediction; the largest loss a sample
#   can then cost is about 16 ($-\log 10^{-7} = 16.1$);
# - large enough for float32: numbers near 1 are spaced $1.2 \times 10^{-7}$ apart there, so
#   $1 - 10^{-8}$ *is* 1.0 in float32 and would not clip anything, while $1 - 10^{-7}$ is
#   `0.99999988`, safely below 1.
#
# The gradient then uses the clipped `p` too: at a clipped `p = 1` with `t = 0` it is large
# ($\approx 10^7 / N$) but finite, and it still pushes the right way. (PyTorch's
# `BCELoss` bounds the log at $-100$ instead; for every `p` inside $[10^{-7}, 1 - 10^{-7}]$
# the two agree exactly.)

# %%
print("float32: 1 - 1e-8 ->", np.float32(1 - 1e-8),
      "   1 - 1e-7 ->", np.float32(1 - 1e-7))
# silence the warning for this demo only
with np.errstate(divide="ignore"):
    print("unclipped loss of p = 1 for t = 0:", -np.log(1 - np.float32(1.0)))

# %%
#| export
class BCELoss(Loss):
    """Binary cross-entropy on probabilities:
    -(1/N) Σᵢ [tᵢ·log pᵢ + (1 - tᵢ)·log(1 - pᵢ)], with p clipped to [eps, 1 - eps]."""

    eps = 1e-7  # 1 - eps must stay below 1.0 in float32, whose spacing near 1 is 1.2e-7

    def forward(self, pred, target):
        target = pred._lift(target)
        _check_same_shape("BCELoss", pred, target)
        if pred.size and (pred.data.min() < 0 or pred.data.max() > 1):
            raise ValueError(
                "BCELoss expects probabilities in [0, 1], got values from "
                f"{pred.data.min()} to {pred.data.max()}: put a Sigmoid before it")
        # TODO: clip pred into [self.eps, 1 - self.eps] and save it in self.p, save the
        #       target's array in self.t, and return the mean binary cross-entropy through
        #       pred._result with op "bce_loss" and parents pred, target.
        ### BEGIN SOLUTION
        self.p = np.clip(pred.data, self.eps, 1 - self.eps)
        self.t = target.data
        p, t = self.p, self.t
        loss = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
        return pred._result(loss, "bce_loss", pred, target)
        ### END SOLUTION

    def backward(self):
        # TODO: return dL/dpred = (p - t) / (p (1 - p)) / N, with the clipped p.
        ### BEGIN SOLUTION
        p, t = self.p, self.t
        grad = (p - t) / (p * (1 - p)) / p.size
        return Tensor(grad, dtype=grad.dtype)
        ### END SOLUTION

# %%
#| test: losses_bce (2 points)
def test_losses_bce():
    loss = BCELoss()(Tensor([0.8, 0.3]), Tensor([1.0, 0.0]))
    assert isinstance(loss, Tensor) and loss.shape == (), (
        f"expected a Tensor of shape (), got {loss!r}.")
    assert abs(loss.item() - 0.2899) < 1e-4, (
        "BCE of p = [0.8, 0.3] for t = [1, 0]: expected -(log 0.8 + log 0.7) / 2 = "
        f"0.2899, got {loss.item()}.")
    loss = BCELoss()(Tensor([[0.5], [0.9]]), [[0.0], [1.0]])
    want = -(np.log(0.5) + np.log(0.9)) / 2
    assert abs(loss.item() - want) < 1e-5, (
        f"BCE of p = [[0.5], [0.9]] for t = [[0], [1]]: expected {want:.4f}, got "
        f"{loss.item()}.")

test_losses_bce()
### BEGIN HIDDEN TESTS
try:
    with np.errstate(divide="raise", invalid="raise", over="raise"):
        _l = BCELoss()(Tensor([1.0, 0.0, 1.0, 0.0]), Tensor([0.0, 1.0, 1.0, 0.0]))
except FloatingPointError as _e:
    raise AssertionError(f"BCE of p = 0 or 1 hit log(0) ({_e}): clip p into [1e-7, 1 - 1e-7]") from None
assert np.isfinite(_l.item()), "BCE of p = 0 or 1 must be finite: clip p"
assert abs(_l.item() - 2 * 16.0 / 4) < 0.1, (
    f"with eps = 1e-7, a confidently wrong p costs about 16 (-log 1e-7 = 16.1), so 8 over these 4 "
    f"samples; got {_l.item()}")
assert _l.dtype == np.float32, "a float32 pred gives a float32 loss"
_rng = np.random.default_rng(1)
_p = _rng.uniform(0.05, 0.95, (3, 4))
_t = (_rng.uniform(size=(3, 4)) > 0.5).astype(np.float64)
_l = BCELoss()(Tensor(_p, dtype=np.float64), Tensor(_t, dtype=np.float64))
assert _l.dtype == np.float64 and abs(_l.item() + np.mean(_t * np.log(_p) + (1 - _t) * np.log(1 - _p))) < 1e-12, (
    "BCE of a float64 (3, 4) batch: float64, the mean over all 12 entries")
_pred = Tensor([0.0, 1.0])
BCELoss()(_pred, Tensor([1.0, 0.0]))
assert np.array_equal(_pred.data, [0, 1]), "clip a copy: the loss must not change pred"
from tinytorch.testing import assert_untouched, check_graph  # noqa: E402


def bce_loss(pred, target):
    return BCELoss()(pred, target)


assert_untouched(bce_loss, Tensor([[0.0, 0.3], [1.0, 0.6]]), Tensor([[1.0, 0.0], [0.0, 1.0]]))
# the graph contract: module 07's backward() gives dL/dpred through the recorded "bce_loss"
_t = Tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]], dtype=np.float64)
try:
    check_graph(lambda p: BCELoss()(p, _t), [np.linspace(0.1, 0.9, 6).reshape(2, 3)],
                name="BCELoss()(pred, target)")
except Exception as _err:
    raise AssertionError(
        f"{_err} ({type(_err).__name__}) Hint: module 07 finds the derivative rule by the "
        "op name and calls it with the parents: pred._result(loss, 'bce_loss', pred, target).") from None
### END HIDDEN TESTS

# %%
#| test: losses_bce_backward (2 points)
def test_losses_bce_backward():
    bce = BCELoss()
    bce(Tensor([0.8, 0.3]), Tensor([1.0, 0.0]))
    grad = bce.backward()
    assert isinstance(grad, Tensor) and grad.shape == (2,), (
        f"backward() should return a Tensor shaped like pred (2,), got {grad!r}.")
    assert np.allclose(grad.data, [-0.625, 0.7143], atol=1e-4), (
        f"BCE gradient for p = [0.8, 0.3], t = [1, 0]: expected [-0.625, 0.7143] "
        f"((p - t) / (p (1 - p)) / N), got {grad.data}.")
    pred, target = np.array([[0.2, 0.9], [0.6, 0.45]]), Tensor([[0.0, 1.0], [1.0, 0.0]])
    bce = BCELoss()
    bce(Tensor(pred, dtype=np.float64), target)
    got = bce.backward()
    want = numerical_gradient(BCELoss, pred, target)
    assert got.dtype == np.float64 and np.allclose(got.data, want, atol=1e-5), (
        f"BCE backward disagrees with the numerical gradient: expected {want} (float64), "
        f"got {got.data} ({got.dtype}).")

test_losses_bce_backward()
### BEGIN HIDDEN TESTS
_bce = BCELoss()
try:
    with np.errstate(divide="raise", invalid="raise", over="raise"):
        _bce(Tensor([1.0, 0.0, 0.5]), Tensor([0.0, 1.0, 1.0]))
        _g = _bce.backward()
except FloatingPointError as _e:
    raise AssertionError(f"the BCE gradient at p = 0 or 1 divided by zero ({_e}): use the clipped p") from None
assert np.all(np.isfinite(_g.data)) and _g.dtype == np.float32, "a finite float32 gradient at p = 0 and p = 1"
assert _g.data[0] > 1e5 and _g.data[1] < -1e5, "at a clipped p the gradient is large and pushes towards the target"
assert np.isclose(_g.data[2], (0.5 - 1) / 0.25 / 3, atol=1e-6), "an unclipped p keeps the plain gradient"
_rng = np.random.default_rng(2)
_p = _rng.uniform(0.05, 0.95, (2, 3, 2))
_t = Tensor((_rng.uniform(size=(2, 3, 2)) > 0.5).astype(np.float64), dtype=np.float64)
_bce = BCELoss()
_bce(Tensor(_p, dtype=np.float64), _t)
assert np.allclose(_bce.backward().data, numerical_gradient(BCELoss, _p, _t), atol=1e-5), (
    "BCE backward on a (2, 3, 2) batch: divide by all 12 entries")
_first = _bce.backward()
assert np.array_equal(_bce.backward().data, _first.data), (
    "a second BCELoss.backward() gave another gradient: backward must not change what forward "
    "saved (self.p, self.t).")
### END HIDDEN TESTS

# %% [markdown]
# ## Cross-entropy
#
# With C classes (10 digits, or 50,000 tokens), the network ends with C raw scores per sample,
# the **logits**, shape `(N, C)`; the target is each sample's class id, shape `(N,)`. The
# loss is the negative log of the probability that softmax gives the right class:
#
# $$L_i = -\log \text{softmax}(z_i)_{y_i} = -\log \frac{e^{z_{i,y_i}}}{\sum_j e^{z_{ij}}}
# = \underbrace{\log \sum_j e^{z_{ij}}}_{\text{log-sum-exp}} - z_{i,y_i}
# \qquad L = \frac1N \sum_i L_i$$
#
# ```
# logits [1, 2, 3], class 2:  log(e^1 + e^2 + e^3) - 3 = 3.4076 - 3 = 0.4076
# logits [0, 0, 0, 0], any class: log(4 e^0) - 0 = log 4 = 1.3863
# ```
#
# The second line is worth remembering: a network that knows nothing (equal scores)
# starts at $\log C$. A 10-class classifier's first loss should be about 2.30; if it is 40,
# something is wrong before training starts.
#
# **Stability.** Computing softmax and then its log fails twice: $e^{1000}$ overflows, and
# for logits `[0, -1000]` with class 1 the softmax is `[1, 0]` in floating point and
# $-\log 0 = \infty$, although the true loss is a perfectly finite 1000. Work with the
# log-sum-exp instead, shifted by each row's maximum $m$ (the same trick as module 03's
# softmax):
#
# $$\log \sum_j e^{z_j} = m + \log \sum_j e^{z_j - m}$$
#
# Every exponent is $\le 0$ and the largest term is exactly 1, so the sum lies in $[1, C]$:
# no overflow, and no log of 0. The log-probabilities `log_softmax = (z - m) - log(sum(e^(z - m)))`
# follow without ever taking the log of a probability.
#
# ```
# logits [0, -1000], class 1:  m = 0,  log(e^0 + e^-1000) = log(1 + 0) = 0,  L = 0 - (-1000) = 1000
# ```
#
# **The gradient** is famously simple. With $s = \text{softmax}(z_i)$:
# $\partial L_i / \partial z_{ij} = s_j - [j = y_i]$: the predicted probabilities minus the
# one-hot target, over $N$ for the mean:
#
# ```
# logits [0, ln 3], class 1:  s = [0.25, 0.75], one-hot [0, 1]  ->  dL/dz = [0.25, -0.25]
# ```
#
# Raise the right class's score, lower the others, each in proportion to how much
# probability it wrongly holds. Cross-entropy includes the softmax: do **not** put a
# `Softmax` activation before it (PyTorch's `CrossEntropyLoss` takes logits too).
#
# **Targets** are class ids. They may arrive as a list, an int array, or a Tensor, and a
# `Tensor([0, 2])` is float32 (module 02's rule). The given `_class_ids` turns any of these
# into an int array and checks each id: in NumPy a target of `-1` would silently pick the
# *last* class, and `2.5` would be no class at all.

# %%
#| export
def _class_ids(target, n, classes):
    """The targets as an int64 array of shape (n,), each a class id in [0, classes)."""
    ids = np.asarray(target.data if isinstance(target, Tensor) else target)
    if ids.shape != (n,):
        raise ValueError(f"CrossEntropyLoss: expected targets of shape ({n},), one class "
                         f"id per row of the logits, got shape {ids.shape}")
    if ids.dtype.kind not in "iub":
        if ids.dtype.kind != "f" or np.any(ids != np.round(ids)):
            raise ValueError(
                f"CrossEntropyLoss: targets must be whole class ids, got {ids}")
    bad = (ids < 0) | (ids >= classes)
    if np.any(bad):
        raise ValueError(f"CrossEntropyLoss: target {ids[bad][0]:g} is not a class id: "
                         f"the logits have {classes} classes, so ids run from 0 to "
                         f"{classes - 1}")
    return ids.astype(np.int64)


class CrossEntropyLoss(Loss):
    """Cross-entropy from logits (N, C) and class ids (N,): the mean of
    log Σⱼ exp(z[i, j]) - z[i, yᵢ] over the rows i, computed with a stable log-sum-exp."""

    def forward(self, logits, target):
        if logits.ndim != 2:
            raise ValueError(
                f"CrossEntropyLoss: expected logits of shape (N, C), got {logits.shape}")
        n, classes = logits.shape
        self.ids = _class_ids(target, n, classes)
        # TODO: compute the log-softmax of every row stably (subtract the row maximum,
        #       then the log of the sum of exponentials); save the softmax probabilities
        #       in self.probs for backward; return the mean of -log_softmax[i, ids[i]]
        #       through logits._result with op "cross_entropy" and parents logits,
        #       Tensor(self.ids, dtype=np.int64).
        ### BEGIN SOLUTION
        z = logits.data
        shifted = z - z.max(axis=1, keepdims=True)                  # every exponent <= 0
        log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))   # (N, C)
        self.probs = np.exp(log_softmax)
        loss = -np.mean(log_softmax[np.arange(n), self.ids])
        return logits._result(loss, "cross_entropy", logits, Tensor(self.ids, dtype=np.int64))
        ### END SOLUTION

    def backward(self):
        # TODO: return dL/dlogits = (softmax - one_hot(ids)) / N.
        ### BEGIN SOLUTION
        n = len(self.ids)
        grad = self.probs.copy()
        grad[np.arange(n), self.ids] -= 1
        grad = grad / n
        return Tensor(grad, dtype=grad.dtype)
        ### END SOLUTION

# %%
#| test: losses_cross_entropy (3 points)
def test_losses_cross_entropy():
    loss = CrossEntropyLoss()(Tensor([[1.0, 2.0, 3.0]]), np.array([2]))
    assert isinstance(loss, Tensor) and loss.shape == (), (
        f"expected a Tensor of shape (), got {loss!r}.")
    assert abs(loss.item() - 0.4076) < 1e-4, (
        "cross-entropy of logits [1, 2, 3] for class 2: expected log(e + e^2 + e^3) - 3 "
        f"= 0.4076, got {loss.item()}.")
    loss = CrossEntropyLoss()(Tensor(np.zeros((3, 4))), [0, 1, 3])
    assert abs(loss.item() - np.log(4)) < 1e-5, (
        "equal logits over 4 classes: expected log 4 = 1.3863 for any target, got "
        f"{loss.item()}.")
    logits = Tensor([[1.0, 2.0, 3.0], [0.0, np.log(3.0), 0.0]])
    loss = CrossEntropyLoss()(logits, np.array([2, 1]))
    want = (0.4076 + -np.log(3 / 5)) / 2
    assert abs(loss.item() - want) < 1e-4, (
        "a batch of two: expected the mean of 0.4076 and -log(3/5) = 0.5108, that is "
        f"{want:.4f}, got {loss.item()}. Hint: one loss per row, then the mean.")

test_losses_cross_entropy()
### BEGIN HIDDEN TESTS
for _z, _y, _want in [([[1000.0, 0.0, -1000.0]], [0], 0.0), ([[1000.0, 0.0, -1000.0]], [2], 2000.0),
                      ([[0.0, -1000.0]], [1], 1000.0), ([[-1000.0, -1000.0]], [0], np.log(2))]:
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            _l = CrossEntropyLoss()(Tensor(_z), _y)
    except FloatingPointError as _e:
        raise AssertionError(f"cross-entropy of logits {_z} failed ({_e}): use the shifted log-sum-exp, "
                             "never the log of a probability") from None
    assert np.isfinite(_l.item()) and abs(_l.item() - _want) < 1e-3, (
        f"cross-entropy of logits {_z}, class {_y}: expected {_want}, got {_l.item()}")
_l = CrossEntropyLoss()(Tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]), Tensor([2.0, 0.0]))
assert abs(_l.item() - 0.4076) < 1e-4 and _l.dtype == np.float32, "targets as a (float32) Tensor; float32 loss"
_rng = np.random.default_rng(3)
_z = _rng.standard_normal((5, 4)) * 3
_y = _rng.integers(0, 4, 5)
_l = CrossEntropyLoss()(Tensor(_z, dtype=np.float64), _y)
_lse = np.log(np.exp(_z).sum(axis=1))
assert _l.dtype == np.float64 and abs(_l.item() - np.mean(_lse - _z[np.arange(5), _y])) < 1e-10, (
    "cross-entropy of a float64 batch of 5: float64, the mean of log-sum-exp minus the right score")
_logits = Tensor([[1.0, 2.0]])
CrossEntropyLoss()(_logits, [1])
assert np.array_equal(_logits.data, [[1, 2]]), "the loss must not change the logits"
from tinytorch.testing import assert_untouched, cases, check_against, check_graph  # noqa: E402


def cross_entropy(logits):
    """The loss of a (N, C) batch whose row i belongs to class i % C."""
    return CrossEntropyLoss()(logits, np.arange(len(logits)) % logits.shape[1])


def _cross_entropy(z):
    m = z.max(axis=1, keepdims=True)
    log_sum_exp = (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]
    return np.mean(log_sum_exp - z[np.arange(len(z)), np.arange(len(z)) % z.shape[1]])


# rows of very different scales ("rows" magnitudes): each row needs its own maximum
_shapes = [(1, 3), (5, 3), (3, 5), (16, 10)]
check_against(cross_entropy, _cross_entropy, cases(_shapes), name="CrossEntropyLoss()")
assert_untouched(cross_entropy, Tensor([[1.0, 2.0, 3.0], [0.5, -4.0, 2.0]]))
# the graph contract: the recorded "cross_entropy" has the logits and the class ids as parents
try:
    check_graph(lambda z: CrossEntropyLoss()(z, [2, 0, 1, 2]),
                [np.linspace(-2.0, 3.0, 12).reshape(4, 3)], name="CrossEntropyLoss()(logits, ids)")
except Exception as _err:
    raise AssertionError(
        f"{_err} ({type(_err).__name__}) Hint: module 07 finds the derivative rule by the "
        "op name and calls it with the parents: logits._result(loss, 'cross_entropy', logits, "
        "Tensor(self.ids, dtype=np.int64)).") from None
### END HIDDEN TESTS

# %%
#| test: losses_cross_entropy_backward (2 points)
def test_losses_cross_entropy_backward():
    ce = CrossEntropyLoss()
    ce(Tensor([[0.0, np.log(3.0)]]), np.array([1]))
    grad = ce.backward()
    assert isinstance(grad, Tensor) and grad.shape == (1, 2), (
        f"backward() should return a Tensor shaped like the logits (1, 2), got {grad!r}.")
    assert np.allclose(grad.data, [[0.25, -0.25]], atol=1e-6), (
        "logits [0, ln 3], class 1: softmax [0.25, 0.75] minus one-hot [0, 1] is [0.25, "
        f"-0.25], got {grad.data}.")
    logits = np.array([[0.5, -1.0, 2.0, 0.1]])
    ce = CrossEntropyLoss()
    ce(Tensor(logits, dtype=np.float64), [3])
    got = ce.backward()
    want = numerical_gradient(CrossEntropyLoss, logits, [3])
    assert got.dtype == np.float64 and np.allclose(got.data, want, atol=1e-6), (
        f"cross-entropy backward disagrees with the numerical gradient: expected {want} "
        f"(float64), got {got.data} ({got.dtype}).")

test_losses_cross_entropy_backward()
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng(4)
_z, _y = _rng.standard_normal((4, 3)), np.array([0, 2, 2, 1])
_ce = CrossEntropyLoss()
_ce(Tensor(_z, dtype=np.float64), _y)
_g = _ce.backward()
assert _g.shape == (4, 3) and np.allclose(_g.data, numerical_gradient(CrossEntropyLoss, _z, _y), atol=1e-6), (
    "the cross-entropy gradient of a batch of 4: (softmax - one_hot) / N, the mean's 1/N included")
assert np.allclose(_g.data.sum(axis=1), 0, atol=1e-12), "each row of the gradient sums to 0"
_ce = CrossEntropyLoss()
with np.errstate(over="raise", invalid="raise", divide="raise"):
    _ce(Tensor([[1000.0, 0.0, -1000.0], [0.0, -1000.0, 0.0]]), Tensor([2.0, 1.0]))
    _g = _ce.backward()
assert _g.dtype == np.float32 and np.allclose(_g.data, [[0.5, 0, -0.5], [0.25, -0.5, 0.25]], atol=1e-6), (
    "the gradient for logits of +-1000 must be finite: (softmax - one_hot) / N")
from tinytorch.testing import cases, check_against  # noqa: E402


def cross_entropy_gradient(logits):
    """dL/dlogits for a (N, C) batch whose row i belongs to class i % C, asked for twice."""
    loss = CrossEntropyLoss()
    loss(logits, np.arange(len(logits)) % logits.shape[1])
    first = loss.backward()
    again = loss.backward()
    assert np.array_equal(first.data, again.data), (
        "a second CrossEntropyLoss.backward() gave another gradient: backward must not change "
        "self.probs, which forward saved. Hint: start from a copy of it.")
    return first


def _softmax_minus_one_hot(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    grad = e / e.sum(axis=1, keepdims=True)
    grad[np.arange(len(z)), np.arange(len(z)) % z.shape[1]] -= 1
    return grad / len(z)


check_against(cross_entropy_gradient, _softmax_minus_one_hot,
              cases([(1, 3), (5, 3), (3, 5), (16, 10)]), name="CrossEntropyLoss().backward()")
### END HIDDEN TESTS

# %% [markdown]
# ## A loss is a learning objective
#
# The gradient of a loss says how to change the predictions to lower it. Before module 04's
# layers join in, try it on the predictions themselves: take one step against the gradient,
# and the loss must go down. (Module 06 turns this step into an optimizer; with layers,
# the same gradient flows on, through `backward`, to the weights.)

# %%
pred, target = Tensor([0.4, 0.6, 0.6, 0.4]), Tensor([0.0, 1.0, 1.0, 0.0])   # network A
mse = MSELoss()
for step in range(4):
    loss = mse(pred, target)
    print(f"step {step}: loss {loss.item():.4f}")
    pred = pred - 0.5 * mse.backward()                                          # downhill

# %%
#| test: losses_descend (1 point)
def test_losses_descend():
    cases = [
        ("MSELoss", MSELoss,
         Tensor([[0.5, -1.0], [2.0, 0.0]]), Tensor([[1.0, 1.0], [1.0, 1.0]])),
        ("BCELoss", BCELoss, Tensor([0.3, 0.6, 0.9]), Tensor([1.0, 0.0, 1.0])),
        ("CrossEntropyLoss", CrossEntropyLoss,
         Tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 2.0]]), np.array([2, 0])),
    ]
    for name, make, pred, target in cases:
        loss_fn = make()
        before = loss_fn(pred, target).item()
        step = pred - 0.01 * loss_fn.backward()
        after = make()(step, target).item()
        assert after < before, (
            f"{name}: a small step against the gradient should lower the loss, but it "
            f"went from {before:.5f} to {after:.5f}. Hint: check the sign of backward().")

test_losses_descend()
### BEGIN HIDDEN TESTS
# fit y = 2 x - 1 with a hand-written chain rule through the loss: pred = x w + b
_x = np.linspace(-1, 1, 8)
_y = 2 * _x - 1
_w, _b = 0.0, 0.0
_mse = MSELoss()
for _ in range(200):
    _mse(Tensor(_x * _w + _b), Tensor(_y))
    _g = _mse.backward().data
    _w -= 0.5 * float(np.sum(_g * _x))
    _b -= 0.5 * float(np.sum(_g))
assert abs(_w - 2) < 1e-3 and abs(_b + 1) < 1e-3, f"gradient descent on MSELoss should fit w = 2, b = -1, got {_w}, {_b}"
_ce = CrossEntropyLoss()
_z = np.zeros((3, 3))
for _ in range(100):
    _ce(Tensor(_z), [0, 1, 2])
    _z = _z - 5.0 * _ce.backward().data
assert _ce(Tensor(_z), [0, 1, 2]).item() < 0.05, "gradient descent on the logits drives cross-entropy towards 0"
### END HIDDEN TESTS

# %% [markdown]
# ## What you built, and what comes next
#
# Three learning objectives, each one number that says how wrong the predictions are, and
# each with the gradient that starts the backward pass: `MSELoss` for numbers, `BCELoss` for
# probabilities (clipped, so a confident mistake costs at most 16.1 and never `inf`), and
# `CrossEntropyLoss` for classes, straight from logits through a stable log-sum-exp, with
# the gradient `(softmax - one_hot) / N`.
#
# Look at the last demo: `pred = pred - 0.5 * grad`, written by hand. A network has many
# weight Tensors, each needing that line, and better rules keep a running average of past
# gradients per weight (momentum) or scale each step by its history (Adam): by hand, that is
# a list of buffers to keep in step with a list of weights. **Manual weight updates are
# error-prone**: module 06 builds optimizers that do it for every parameter at once.
