# %% [markdown]
# # Module 07: Autograd — computing gradients by hand is terrible
#
# Module 06 left a training step of four lines: forward, `zero_grad`, backward, `step`. Three
# of them are written once and reused. The fourth is not. Here is the step of the XOR
# milestone (`milestones/xor.py`), which you ran after module 06:
#
# ```python
# model = Sequential(Linear(2, 8), Tanh(), Linear(8, 1), Sigmoid())
# probabilities = model(x)
# loss = loss_fn(probabilities, y)
# optimizer.zero_grad()
# model.backward(loss_fn.backward())      # every gradient, by hand, in reverse
# optimizer.step()
# ```
#
# That one line hides a chain of hand-written derivatives, run in reverse order:
#
# ```
# BCELoss.backward     (p - t) / (p (1 - p)) / N            module 05, derived by hand
# Sigmoid.backward     g * s (1 - s)                        module 03, derived by hand
# Linear.backward      dW = x^T g, db = sum(g), dx = g W^T  module 04, derived by hand
# Tanh.backward        g * (1 - t^2)                        module 03, derived by hand
# Linear.backward      dW = x^T g, db = sum(g), dx = g W^T  module 04, derived by hand
# ```

# %%
import numpy as np

from tinytorch.core.activations import Sigmoid, Tanh
from tinytorch.core.layers import Linear, Sequential, manual_seed
from tinytorch.core.losses import BCELoss
from tinytorch.core.tensor import Tensor

manual_seed(0)
model = Sequential(Linear(2, 8), Tanh(), Linear(8, 1), Sigmoid())
loss_fn = BCELoss()
x, y = Tensor([[0, 0], [0, 1], [1, 0], [1, 1]]), Tensor([[0], [1], [1], [0]])
loss = loss_fn(model(x), y)
model.backward(loss_fn.backward())        # five hand-written backward methods, in reverse
for name, parameter in model.named_parameters():
    print(f"{name:9} gradient {parameter.grad.shape}, derived by hand")

# %% [markdown]
# Each `forward` stored what its `backward` needs (`self.mask`, `self.output`, `self._input`),
# and `Sequential.backward` calls them in exactly the reverse order. Now count what **one
# more layer** costs. A layer norm, `(x - mean) / sqrt(var + eps)`, needs its derivative worked
# out on paper (three terms, because the mean and the variance depend on every input), a
# `backward` method, the right values stored in `forward`, and a test of it. A residual
# connection `x + f(x)` is worse: the model is no longer a chain, `x`'s gradient arrives
# along two paths and must be added, and `Sequential.backward` cannot express that at all.
# A layer used twice (shared weights) overwrites its own stored input. Every new idea in
# the rest of the course (convolutions, attention, embeddings) would need the same by hand.
# **Computing gradients by hand is terrible.**
#
# ## The idea: record, then apply the chain rule mechanically
#
# Every layer above is built from a few dozen Tensor operations: `@`, `+`, `*`, `sum`,
# `tanh`, ... Each has a simple local derivative. If we know *which operations* produced
# the loss, and from *which Tensors*, the chain rule does the rest, mechanically:
#
# ```
#   x ──┐
#       ├─ mul ── a ──┐
#   w ──┘             ├─ add ── z ── sum ── L
#   b ────────────────┘
# ```
#
# Going backwards from `L`: `dL/dL = 1`; `sum` sends that 1 to every element of `z`; `add`
# passes it unchanged to both `a` and `b`; `mul` sends `g * w` to `x` and `g * x` to `w`.
# Each step needs only the gradient arriving from above and the operation's own inputs.
#
# Module 02 already does the recording. Every operation passes through `Tensor._result`,
# and when a parent requires a gradient, the output keeps `_op` (the operation's name),
# `_parents` (the Tensors it came from) and `_saved` (axis, exponent, ...):

# %%
w = Tensor([1.0, 2.0], requires_grad=True)
x = Tensor([3.0, 4.0])
z = (x * w).sum()
print(z._op, z._parents[0]._op, z._parents[0]._parents[0] is x)    # sum mul True
print(z.requires_grad, x.requires_grad)            # True False: x needs nothing

# %% [markdown]
# Modules 03–05 route their outputs through `_result` as well (`"relu"`, `"sigmoid"`,
# `"tanh"`, `"gelu"`, `"softmax"`, `"mse_loss"`, `"bce_loss"`, `"cross_entropy"`), so a
# whole model's forward pass leaves a graph behind it. **Module 02 records; this module
# differentiates.** You write three things:
#
# 1. **one table of derivative rules**, `GRADIENTS`, from an op name to a function
#    `rule(grad_output, *parents, **saved) -> a gradient for each parent`. Every backward rule
#    of the framework is in this one table, and nowhere else, and enters it one way only,
#    through `register_gradient`;
# 2. **`unbroadcast`**, which turns the gradient of a broadcast operation back into the
#    shape of its input;
# 3. **the engine, `backward(tensor)`**, which orders the graph and applies the rules.
#
# Then `loss.backward()` (module 02 calls your `backward`) replaces every hand-written
# chain, and a finite-difference checker, `gradcheck`, tells you when a rule is wrong.

# %% [markdown]
# Your package file starts here: the cells marked `#| export` become
# `tinytorch/core/autograd.py`.

# %%
#| export
import numpy as np

from tinytorch.core.tensor import Tensor, set_grad_enabled

# %% [markdown]
# ## Broadcasting, backwards
#
# `batch + bias` with shapes `(2, 3) + (3,)` adds the bias to each of the 2 rows: the bias
# was *copied* along a new leading axis. In the backward pass each copy received its own
# gradient, a `(2, 3)` array, and the bias's gradient is the **sum over the copies**:
#
# ```
# grad of (batch + bias) = [[1, 2, 3],      grad of bias = [1+4, 2+5, 3+6] = [5, 7, 9]   (3,)
#                           [4, 5, 6]]      (summed over the new axis 0)
# ```
#
# Broadcasting also stretches axes of size 1: `(3, 1) + (1, 4)` gives `(3, 4)`, and the
# gradient of the `(3, 1)` operand is the `(3, 4)` gradient summed over axis 1 *with the
# axis kept*. So `unbroadcast(grad, shape)` does two things, in this order:
#
# 1. sum over the leading axes that broadcasting added (`grad.ndim - len(shape)` of them);
# 2. sum, with `keepdims=True`, over every axis where `shape` has a 1 but `grad` does not.
#
# Summing the wrong axis is *the* classic autograd bug: for a square batch, `(3, 3)`, the
# shapes even come out right, and only the numbers are wrong.

# %%
#| export
def unbroadcast(grad, shape):
    """Sum `grad` (a NumPy array) down to `shape`: the gradient of an operand that
    broadcasting stretched. unbroadcast(ones((2, 3)), (3,)) -> [2, 2, 2]."""
    shape = tuple(shape)
    # TODO: sum over the extra leading axes, then (keepdims=True) over every axis where
    #       shape has size 1 and grad does not. Return an array of exactly `shape`.
    ### BEGIN SOLUTION
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, size in enumerate(shape) if size == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    ### END SOLUTION
    return np.reshape(grad, shape)

# %% [markdown]
# ### Test it: unbroadcast
#
# Each test cell checks the step just above it and says what it expected, what came, and a
# hint. The autograder adds more checks of the same topic (more shapes, square ones too), so make the rule right,
# not only the example.

# %%
#| test: unbroadcast_shapes (2 points)
def test_unbroadcast():
    g = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    got = unbroadcast(g, (3,))
    assert got.shape == (3,) and np.allclose(got, [5, 7, 9]), (
        f"unbroadcast of [[1, 2, 3], [4, 5, 6]] to shape (3,): expected [5, 7, 9] (the "
        f"bias was copied to both rows, so its gradient sums them), got {got}. "
        "Hint: sum axis 0.")
    got = unbroadcast(g, (2, 3))
    assert got.shape == (2, 3) and np.allclose(got, g), (
        f"unbroadcast to the same shape must return the gradient unchanged, got {got}.")
    got = unbroadcast(np.ones((4, 2, 3)), (2, 3))
    assert got.shape == (2, 3) and np.allclose(got, 4), (
        f"unbroadcast of ones((4, 2, 3)) to (2, 3): expected 4 everywhere, got {got}.")

test_unbroadcast()
### BEGIN HIDDEN TESTS
_g = np.arange(12.0).reshape(3, 4)
assert unbroadcast(_g, (3, 1)).shape == (3, 1) and np.allclose(unbroadcast(_g, (3, 1)), _g.sum(axis=1, keepdims=True)), \
    "(3, 4) -> (3, 1): sum over axis 1, keeping it"
assert np.allclose(unbroadcast(_g, (1, 4)), _g.sum(axis=0, keepdims=True)), "(3, 4) -> (1, 4): sum over axis 0, keeping it"
assert np.allclose(unbroadcast(_g, (4,)), _g.sum(axis=0)), "(3, 4) -> (4,): sum over the leading axis"
assert np.allclose(unbroadcast(_g, ()), _g.sum()) and unbroadcast(_g, ()).shape == (), "(3, 4) -> (): sum everything"
assert np.allclose(unbroadcast(_g, (1, 1)), _g.sum()) and unbroadcast(_g, (1, 1)).shape == (1, 1)
_g3 = np.arange(24.0).reshape(2, 3, 4)
assert np.allclose(unbroadcast(_g3, (3, 1)), _g3.sum(axis=(0, 2))[:, None]), "(2, 3, 4) -> (3, 1)"
assert np.allclose(unbroadcast(_g3, (2, 1, 4)), _g3.sum(axis=1, keepdims=True)), "(2, 3, 4) -> (2, 1, 4)"
_sq = np.arange(9.0).reshape(3, 3)
assert np.allclose(unbroadcast(_sq, (3, 1)), _sq.sum(axis=1, keepdims=True)), "a square gradient: the right axis, not just the right shape"
_g33 = np.arange(18.0).reshape(2, 3, 3)
assert np.allclose(unbroadcast(_g33, (3, 1)), _g33.sum(axis=(0, 2))[:, None]), \
    "(2, 3, 3) -> (3, 1): drop the leading axis first, then sum axis 2 (not axis 1 of the original)"
# every kind of broadcasting, square and not, an empty batch, both float dtypes; the
# oracle adds each element of grad into the element of `shape` it was copied from
from tinytorch.testing import assert_close, assert_untouched  # noqa: E402


def _summed_back(grad, shape):
    size = int(np.prod(shape))
    source = np.broadcast_to(np.arange(size).reshape(shape), grad.shape).ravel()
    total = np.bincount(source, weights=grad.astype(np.float64).ravel(), minlength=size)
    return total.reshape(shape)


_rng = np.random.default_rng(11)
for _from, _to in [((3, 4), (3, 1)), ((3, 4), (1, 4)), ((4, 3), (4, 1)), ((3, 3), (1, 3)),
                   ((3, 3), (3, 1)), ((2, 3, 4), (4,)), ((2, 3, 4), (1, 1, 4)),
                   ((2, 3, 3), (3, 1)), ((2, 3, 3), (1, 3)), ((4, 1, 3), (1, 3)),
                   ((2, 5, 3, 4), (5, 1, 1)), ((6,), (1,)), ((3, 2), ()), ((3, 2), (3, 2)),
                   ((0, 3), (1, 3)), ((0, 3), (3,)), ((2, 0), (2, 1))]:
    for _dtype in (np.float32, np.float64):
        _grad = _rng.standard_normal(_from).astype(_dtype)
        _got = assert_untouched(unbroadcast, _grad, _to)
        _what = f"unbroadcast of a {_from} {np.dtype(_dtype)} gradient to shape {_to}"
        assert_close(_got, _summed_back(_grad, _to), what=_what)
        assert np.asarray(_got).dtype == _dtype, (
            f"{_what}: expected dtype {np.dtype(_dtype)}, got {np.asarray(_got).dtype}; "
            "sum the array you are given, do not build a new one of another dtype.")
### END HIDDEN TESTS

# %% [markdown]
# ## One table, and one way into it
#
# The engine will look every recorded op up in one dict, `GRADIENTS`, from the op's name to
# its rule. Every backward rule of the framework is in this table, and a rule gets into it
# in one way only: `register_gradient(op)`, written as a decorator right above the rule:
#
# ```python
# @register_gradient("mul")
# def mul_grad(g, a, b):
#     ...
# ```
#
# It also writes down where each rule came from, in `GRADIENT_SOURCES` (`"mul"` ->
# `"tinytorch.core.autograd.mul_grad"`), and it refuses a second, different rule for an op
# that already has one: two modules that both claimed `"conv2d"` would otherwise replace
# each other's rule without a word, and whichever was imported last would win. Running a
# rule's cell again after a fix is fine: the same function, by name, replaces its old
# version. Module 09's convolution and every later module register their rules the same way.

# %%
#| export
GRADIENTS = {}          # op name -> rule(grad_output, *parents, **saved)
GRADIENT_SOURCES = {}   # op name -> "module.function" of the rule registered for it


def register_gradient(op, rule=None):
    """Make `rule` the derivative rule of the op that Tensor._result records as `op`: the
    one way a rule enters GRADIENTS. Returns the rule, so it works as a decorator.

    >>> @register_gradient("softplus")
    ... def softplus_grad(g, x): ...
    >>> register_gradient("softplus", softplus_grad)     # the same, as a call

    A different rule for an op that has one raises ValueError; the same function again
    (a re-run notebook cell, a reloaded module) replaces its old version."""
    if not isinstance(op, str) or not op:
        raise TypeError(
            f"register_gradient: op must be the op's name, a string, got {op!r}")

    def register(rule):
        if not callable(rule):
            raise TypeError(
                f"register_gradient({op!r}): a rule is a function, got {rule!r}")
        source = f"{rule.__module__}.{rule.__qualname__}"
        if op in GRADIENTS and GRADIENT_SOURCES.get(op) != source:
            raise ValueError(
                f"register_gradient: op {op!r} already has a rule, "
                f"{GRADIENT_SOURCES.get(op, 'put into GRADIENTS by hand')}: "
                "give your operation a name of its own")
        GRADIENTS[op] = rule
        GRADIENT_SOURCES[op] = source
        return rule

    return register if rule is None else register(rule)

# %% [markdown]
# ## The derivative rules
#
# A rule receives `g`, the gradient of the loss with respect to the operation's output (a
# NumPy array of the output's shape), the parent Tensors and the saved values, and returns
# one gradient per parent, each of that parent's shape (or `None` for a parent that gets no
# gradient, such as a loss's target). The first ones are given; read them:
#
# | op | output | gradients |
# |---|---|---|
# | `add` | `a + b` | `g`, `g` (unbroadcast) |
# | `sub` | `a - b` | `g`, `-g` |
# | `neg` | `-a` | `-g` |
# | `reshape`, `transpose` | the same numbers, moved | `g` moved back |
# | `getitem` | `a[key]` | zeros of `a`'s shape with `g` added at `key` |
#
# `getitem` *adds* with `np.add.at`, not `z[key] = g`: with `a[[0, 0]]` the same element is
# picked twice and must receive both gradients; plain assignment would keep only one.

# %%
#| export
@register_gradient("add")
def add_grad(g, a, b):
    return unbroadcast(g, a.shape), unbroadcast(g, b.shape)


@register_gradient("sub")
def sub_grad(g, a, b):
    return unbroadcast(g, a.shape), unbroadcast(-g, b.shape)


@register_gradient("neg")
def neg_grad(g, a):
    return (-g,)


@register_gradient("pow")
def pow_grad(g, a, exponent):
    if exponent == 0:                                # d(a^0)/da = 0, also where a = 0
        return (np.zeros_like(a.data),)
    return (g * exponent * a.data ** float(exponent - 1),)


@register_gradient("reshape")
def reshape_grad(g, a, shape):
    return (g.reshape(a.shape),)


@register_gradient("transpose")
def transpose_grad(g, a, axes):
    return (np.transpose(g, np.argsort(axes)),)      # the inverse permutation


@register_gradient("getitem")
def getitem_grad(g, a, key):
    grad = np.zeros_like(a.data)
    np.add.at(grad, key, g)             # a repeated index receives every gradient
    return (grad,)

# %% [markdown]
# Now yours. With `g` the gradient of the output:
#
# - `a * b`: `g * b` for `a`, `g * a` for `b`, each unbroadcast to its operand's shape.
# - `a / b`: `g / b` for `a`, `-g * a / b²` for `b`.
# - `a @ b` for matrices: `g @ bᵀ` for `a` (`(m, n) @ (n, k) → (m, k)`, `a`'s shape) and
#   `aᵀ @ g` for `b`. A 1-D operand was a single row (left) or column (right): make it 2-D
#   with `[None, :]` / `[:, None]`, and `g` with it, apply the rule, and take the added axis
#   away again. Batched operands `(B, m, k) @ (k, n)`: transpose the last two axes only
#   (`np.swapaxes(x, -1, -2)`), and `unbroadcast` sums the batch axis out of `b`'s gradient.
# - `a.sum(axis)`: every element of `a` contributed once, so each receives `g` of its row.
#   Put back the reduced axes (size 1) when `keepdims` was False, then `np.broadcast_to`.
# - `a.mean(axis)`: as `sum`, divided by the number of elements averaged (given, from yours).
# - `a.max(axis)`: only the maximum receives the gradient. **Ties**: when several elements
#   are equal to the maximum, PyTorch (`torch.amax`, and `torch.max()` without `dim`)
#   *splits* the gradient evenly among them, so the gradients still sum to `g`. We do the
#   same: mask of the maxima, divided by how many there are.
#
# A check you can always make: a rule's gradient has exactly its parent's shape.

# %%
#| export
@register_gradient("mul")
def mul_grad(g, a, b):
    """d(ab) = b·da + a·db."""
    # TODO: return (gradient for a, gradient for b), each unbroadcast to its operand's
    #       shape.
    ### BEGIN SOLUTION
    return unbroadcast(g * b.data, a.shape), unbroadcast(g * a.data, b.shape)
    ### END SOLUTION


@register_gradient("div")
def div_grad(g, a, b):
    """d(a/b) = da/b - a·db/b²."""
    # TODO: return (gradient for a, gradient for b), each unbroadcast.
    ### BEGIN SOLUTION
    return unbroadcast(g / b.data, a.shape), unbroadcast(-g * a.data / b.data ** 2, b.shape)
    ### END SOLUTION


@register_gradient("matmul")
def matmul_grad(g, a, b):
    """d(AB) = dA·B + A·dB: grad_A = g Bᵀ, grad_B = Aᵀ g, for 1-D and batched operands."""
    # TODO: lift 1-D operands (and g) to 2-D, compute g @ Bᵀ and Aᵀ @ g with the last two
    #       axes swapped, drop the added axes, and unbroadcast each to its operand's
    #       shape.
    ### BEGIN SOLUTION
    A = a.data[None, :] if a.ndim == 1 else a.data               # (1, k) or (..., m, k)
    B = b.data[:, None] if b.ndim == 1 else b.data               # (k, 1) or (..., k, n)
    if b.ndim == 1:
        g = np.expand_dims(g, -1)                                # (..., m, 1)
    if a.ndim == 1:
        g = np.expand_dims(g, -2)                                # (..., 1, n)
    grad_a = g @ np.swapaxes(B, -1, -2)                          # (..., m, n) @ (..., n, k)
    grad_b = np.swapaxes(A, -1, -2) @ g                          # (..., k, m) @ (..., m, n)
    if a.ndim == 1:
        grad_a = grad_a[..., 0, :]
    if b.ndim == 1:
        grad_b = grad_b[..., :, 0]
    return unbroadcast(grad_a, a.shape), unbroadcast(grad_b, b.shape)
    ### END SOLUTION


def _reduced_axes(ndim, axis):
    """The axes a reduction went over, as non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return tuple(int(ax) % ndim for ax in axes)


@register_gradient("sum")
def sum_grad(g, a, axis, keepdims):
    """Every element of a contributed once: it receives the gradient of its sum."""
    # TODO: put the reduced axes back as size 1 (unless keepdims was True), then broadcast
    #       g to a's shape. Return a one-element tuple.
    ### BEGIN SOLUTION
    if not keepdims:
        g = np.expand_dims(g, _reduced_axes(a.ndim, axis))
    return (np.broadcast_to(g, a.shape),)
    ### END SOLUTION


@register_gradient("mean")
def mean_grad(g, a, axis, keepdims):
    count = int(np.prod([a.shape[ax] for ax in _reduced_axes(a.ndim, axis)]))
    return (sum_grad(g, a, axis, keepdims)[0] / count,)


@register_gradient("max")
def max_grad(g, a, axis, keepdims):
    """Only the maxima receive the gradient; tied maxima share it evenly (as
    torch.amax)."""
    # TODO: a mask of the elements equal to their maximum, divided by how many maxima each
    #       reduction had, times g broadcast back (as in sum_grad).
    ### BEGIN SOLUTION
    top = a.data.max(axis=axis, keepdims=True)
    mask = a.data == top
    count = mask.sum(axis=axis, keepdims=True)
    return (sum_grad(g, a, axis, keepdims)[0] * mask / count,)
    ### END SOLUTION

# %% [markdown]
# ### Test it: your rules
#
# Each rule against values worked out by hand. Once `gradcheck` exists (below), a second
# test compares the rules with finite differences.

# %%
#| test: rules (2 points)
def test_rules():
    a, b = Tensor([[1.0, 2.0], [3.0, 4.0]]), Tensor([[5.0, 6.0], [7.0, 8.0]])
    g = np.ones((2, 2), dtype=np.float32)
    ga, gb = mul_grad(g, a, b)
    assert np.allclose(ga, b.data) and np.allclose(gb, a.data), (
        f"mul_grad with g = 1: expected (b, a), got ({ga}, {gb}). d(ab)/da = b.")
    ga, gb = div_grad(g, a, b)
    assert np.allclose(ga, 1 / b.data) and np.allclose(gb, -a.data / b.data ** 2), (
        f"div_grad with g = 1: expected (1/b, -a/b^2), got ({ga}, {gb}).")
    ga, gb = matmul_grad(g, a, b)
    assert np.allclose(ga, g @ b.data.T) and np.allclose(gb, a.data.T @ g), (
        f"matmul_grad for (2, 2) @ (2, 2): expected (g @ b.T, a.T @ g), "
        f"got ({ga}, {gb}).")
    x = Tensor([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]])
    (gs,) = sum_grad(np.array([10.0, 20.0]), x, axis=1, keepdims=False)
    assert gs.shape == (2, 3) and np.allclose(gs, [[10, 10, 10], [20, 20, 20]]), (
        f"sum_grad for x.sum(axis=1) of a (2, 3) x with g = [10, 20]: expected "
        f"[[10, 10, 10], [20, 20, 20]], got {gs}. Hint: put axis 1 back, then broadcast.")
    (gm,) = max_grad(np.array(1.0), x, axis=None, keepdims=False)
    assert np.allclose(gm, [[0, 0, 0], [0, 0, 1]]), (
        f"max_grad for x.max() with x = [[1, 5, 3], [4, 2, 6]]: expected 1 at the 6 "
        f"only, got {gm}.")

test_rules()
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng(7)
for _sa, _sb in [((3,), (3, 4)), ((2, 3), (3,)), ((3,), (3,)), ((5, 2, 3), (3, 4)), ((2, 3), (4, 3, 5)), ((4, 2, 3), (4, 3, 2))]:
    _A, _B = _rng.standard_normal(_sa), _rng.standard_normal(_sb)
    _G = _rng.standard_normal(np.matmul(_A, _B).shape)
    _ga, _gb = matmul_grad(_G, Tensor(_A, dtype=np.float64), Tensor(_B, dtype=np.float64))
    assert _ga.shape == _sa and _gb.shape == _sb, f"matmul_grad {_sa} @ {_sb}: gradients must have the operands' shapes"
_t = Tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], dtype=np.float64)
(_gm,) = max_grad(np.array(1.0), _t, axis=None, keepdims=False)
assert np.allclose(_gm, [[0, 0.5, 0.5], [0, 0, 0]]), "max ties: the two maxima share the gradient (0.5 each), as torch.amax"
(_gm,) = max_grad(np.array([1.0, 3.0]), _t, axis=1, keepdims=False)
assert np.allclose(_gm, [[0, 0.5, 0.5], [1, 1, 1]]), "max ties along an axis: each row's maxima share its gradient"
assert np.isclose(_gm.sum(), 4.0), "the gradients of a max must sum to the incoming gradient"
# each rule, called directly, against central differences of sum(g * op(a, b)): broadcast,
# square and batched operands, every reduction axis, negative axes, keepdims both ways. A
# rule must leave g and its parents as they were.
from tinytorch.testing import assert_close, assert_untouched, numerical_grads  # noqa: E402


def _rule_check(rule, op, arrays, what, **saved):
    leaves = [Tensor(a, dtype=np.float64) for a in arrays]
    out = op(*leaves)
    g = np.linspace(0.5, 1.5, out.size).reshape(out.shape)       # every element its own weight
    shares = assert_untouched(rule, g, *leaves, **saved)
    for i, want in enumerate(numerical_grads(op, arrays, g)):
        assert_close(shares[i], want, rtol=1e-6, atol=1e-8, dtype=np.float64,
                     what=f"{what}: the gradient of operand {i} (shape {arrays[i].shape})")


_rng = np.random.default_rng(17)
_away = lambda shape: _rng.uniform(0.5, 2.0, shape) * _rng.choice([-1.0, 1.0], shape)  # noqa: E731
for _sa, _sb in [((3, 4), (3, 4)), ((3, 4), (4,)), ((4, 1), (1, 3)), ((3, 3), (3, 1)),
                 ((2, 3, 4), (3, 1)), ((5,), ()), ((), (2, 3))]:
    _A, _B = _rng.standard_normal(_sa), _away(_sb)
    _rule_check(mul_grad, lambda a, b: a * b, [_A, _B], f"mul_grad for {_sa} * {_sb}")
    _rule_check(div_grad, lambda a, b: a / b, [_A, _B], f"div_grad for {_sa} / {_sb}")
for _sa, _sb in [((3, 3), (3, 3)), ((2, 3), (3, 4)), ((3,), (3, 4)), ((2, 3), (3,)),
                 ((3,), (3,)), ((5, 2, 3), (3, 4)), ((2, 3), (4, 3, 5)), ((4,), (2, 4, 3)),
                 ((2, 3, 4), (4,)), ((1, 2, 3), (4, 3, 2)), ((4, 2, 3), (4, 3, 2))]:
    _A, _B = _rng.standard_normal(_sa), _rng.standard_normal(_sb)
    _rule_check(matmul_grad, lambda a, b: a @ b, [_A, _B], f"matmul_grad for {_sa} @ {_sb}")
for _shape, _axis in [((2, 3, 4), None), ((2, 3, 4), 0), ((2, 3, 4), 1), ((2, 3, 4), -1),
                      ((2, 3, 4), (0, 2)), ((2, 3, 4), (-1, 0)), ((3, 3), 0), ((3, 3), 1),
                      ((4, 3), -2), ((5,), 0)]:
    _A = _rng.permutation(np.prod(_shape)).reshape(_shape) * 0.1   # distinct: no ties
    for _keep in (False, True):
        _saved = {"axis": _axis, "keepdims": _keep}
        _call = f"(axis={_axis}, keepdims={_keep}) of a {_shape} input"
        _rule_check(sum_grad, lambda a, s=_saved: a.sum(**s), [_A], f"sum_grad{_call}", **_saved)
        _rule_check(max_grad, lambda a, s=_saved: a.max(**s), [_A], f"max_grad{_call}", **_saved)
# ties along every axis: the maxima of each reduction share its gradient evenly
_t = np.array([[2.0, 5.0, 5.0, 1.0], [3.0, 3.0, 3.0, 0.0], [4.0, 0.0, 5.0, 5.0]])
for _axis, _g, _want in [
        (0, np.array([1.0, 2.0, 4.0, 8.0]),
         [[0, 2, 2, 0], [0, 0, 0, 0], [1, 0, 2, 8]]),
        (1, np.array([3.0, 6.0, 4.0]),
         [[0, 1.5, 1.5, 0], [2, 2, 2, 0], [0, 0, 2, 2]]),
        (None, np.array(6.0),
         [[0, 1.5, 1.5, 0], [0, 0, 0, 0], [0, 0, 1.5, 1.5]])]:
    for _keep in (False, True):
        _gk = np.expand_dims(_g, _axis) if _keep and _axis is not None else _g
        _gk = _gk.reshape(1, 1) if _keep and _axis is None else _gk
        (_got,) = max_grad(_gk, Tensor(_t, dtype=np.float64), axis=_axis, keepdims=_keep)
        assert_close(_got, np.array(_want, dtype=np.float64), dtype=np.float64,
                     what=f"max_grad with tied maxima, axis={_axis}, keepdims={_keep}, "
                          f"of {_t.tolist()} and g = {_g.tolist()}")
### END HIDDEN TESTS

# %% [markdown]
# ## The rules of modules 03–05
#
# Activations and losses are single operations in the graph, so they need rules too. You
# derived them in modules 03 and 05: they are the bodies of your hand-written `backward`
# methods, as functions of the parent instead of values stored in `forward` (the rule
# recomputes `sigmoid(x)` from `x`: cheap, and nothing is stored on the layer). Given. A loss
# is recorded with parents `(pred, target)`; the target gets no gradient (`None`).

# %%
#| export
@register_gradient("relu")
def relu_grad(g, x):
    return (g * (x.data > 0),)                       # 0 at x = 0, as PyTorch


def _sigmoid(v):
    z = np.exp(-np.abs(v))                           # never overflows
    return np.where(v >= 0, 1 / (1 + z), z / (1 + z))


@register_gradient("sigmoid")
def sigmoid_grad(g, x):
    s = _sigmoid(x.data)
    return (g * s * (1 - s),)


@register_gradient("tanh")
def tanh_grad(g, x):
    return (g * (1 - np.tanh(x.data) ** 2),)


@register_gradient("gelu")
def gelu_grad(g, x):
    # slope = ½(1 + t) + ½·v·(1 − t²)·c·(1 + 3k·v²), with t = tanh(c·(v + k·v³)),
    # computed in place in few arrays: in a GPT this rule runs on the widest activations,
    # and a fresh array for every operation made it twice as slow.
    c, k = np.sqrt(2 / np.pi).item(), 0.044715      # Python floats: keep float32 float32
    v = np.asarray(x.data, dtype=np.result_type(x.data, 1.0)).reshape(-1)   # float, 1-D
    slope = v * v
    t = slope * k
    t += 1
    t *= v
    t *= c
    np.tanh(t, out=t)                               # t = tanh(c·(v + k·v³))
    slope *= 3 * k
    slope += 1
    slope *= v
    slope *= c                                      # c·v·(1 + 3k·v²)
    square = t * t
    np.subtract(1, square, out=square)              # 1 − t²
    slope *= square
    slope += t
    slope += 1
    slope *= 0.5
    return (g * slope.reshape(x.shape),)


@register_gradient("softmax")
def softmax_grad(g, x, dim):
    e = np.exp(x.data - x.data.max(axis=dim, keepdims=True))
    s = e / e.sum(axis=dim, keepdims=True)
    return (s * (g - (g * s).sum(axis=dim, keepdims=True)),)


@register_gradient("mse_loss")
def mse_loss_grad(g, pred, target):
    return (g * 2 * (pred.data - target.data) / pred.size, None)


@register_gradient("bce_loss")
def bce_loss_grad(g, pred, target, eps=1e-7):       # eps: BCELoss's clipping (module 05)
    p, t = np.clip(pred.data, eps, 1 - eps), target.data
    return (g * (p - t) / (p * (1 - p)) / p.size, None)


@register_gradient("cross_entropy")
def cross_entropy_grad(g, logits, target):
    n = logits.shape[0]
    e = np.exp(logits.data - logits.data.max(axis=1, keepdims=True))
    grad = e / e.sum(axis=1, keepdims=True)          # softmax of each row
    grad[np.arange(n), target.data.astype(np.int64)] -= 1
    return (g * grad / n, None)

# %% [markdown]
# ## The engine: each node once, in topological order
#
# `backward(L)` must apply a node's rule only when the node's gradient is *complete*: when
# every operation that used it has sent its share. In `y = x * x + x`, `x` receives three
# contributions (two from `mul`, one from `add`), and they **add up**: `dy/dx = 2x + 1`.
#
# So the engine first lists the graph's nodes in **topological order** (every node after
# the parents it was computed from), by a depth-first search from `L`. Then it walks that
# list backwards, from `L` to the leaves, with a dict `grads` from node to its gradient:
#
# ```
# grads = {L: ones}                         # dL/dL = 1
# for node in reversed(order):              # L first; a node after everything that used it
#     g = grads.pop(node)                   # complete now: every user has been processed
#     leaf?  -> add g into node.grad
#     else   -> rule = GRADIENTS[node._op]; for each parent: grads[parent] += its share
# ```
#
# Three classic bugs hide here:
#
# - **`=` instead of `+=`.** `grads[parent] = share` keeps only the last contribution: `x * x`
#   gets `x` instead of `2x`, and any value used twice is silently wrong.
# - **Visiting a node more than once.** A naive recursion that calls `backward` on each
#   parent re-walks shared sub-graphs: `y = y * 0.5 + y * 0.5` repeated 1,000 times has
#   3,000 nodes but 2^1000 paths. The topological order visits each node exactly once.
# - **Recursion depth.** A recursive search of a 1,000-step chain hits Python's recursion
#   limit. Use an explicit stack.
#
# Only **leaves** (Tensors you created, with `requires_grad=True`, such as Parameters) keep a
# gradient in `.grad`, a Tensor of their shape; intermediate gradients live in `grads` and are
# dropped, as in PyTorch. Leaves **accumulate** (`+=`): module 04's layers did the same, and
# it is why `zero_grad()` exists. It also defines what a second `backward()` on the same
# graph does: the graph is kept, so the gradients are computed again and **added** to the
# leaves' `.grad` (PyTorch with `retain_graph=True`). Nothing changes silently: calling it
# twice gives twice the gradient, exactly.
#
# `grad` defaults to 1 only when the Tensor holds one number (a loss); for anything else,
# pass `dL/d(tensor)` explicitly, as PyTorch asks. Without it, the engine raises a
# `ValueError` that says so.

# %%
#| export
def topological_order(root):
    """Every Tensor that `root` depends on and that requires a gradient, each once, every
    Tensor after its parents. Iterative: deep graphs do not hit the recursion limit."""
    # TODO: depth-first search from root with an explicit stack of (node, done) pairs: on
    #       (node, False) mark node visited, push (node, True), then push its unvisited
    #       parents that require a gradient; on (node, True) append node to the order.
    ### BEGIN SOLUTION
    order, visited, stack = [], set(), [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)                   # every parent is already in order
            continue
        if node in visited:
            continue
        visited.add(node)
        stack.append((node, True))
        for parent in node._parents:
            if parent.requires_grad and parent not in visited:
                stack.append((parent, False))
    ### END SOLUTION
    return order


def backward(tensor, grad=None):
    """Accumulate d(tensor)/d(leaf) into the .grad of every leaf Tensor that requires a
    gradient. `grad` is d(loss)/d(tensor); it defaults to 1 for a one-element tensor."""
    if not tensor.requires_grad:
        raise RuntimeError(
            "backward(): this Tensor does not require a gradient: nothing it was "
            "computed from has requires_grad=True (or it was computed under no_grad())")
    if grad is None:
        if tensor.size != 1:
            raise ValueError(
                f"backward(): grad can be omitted only for a one-element Tensor (a "
                f"loss), this one has shape {tensor.shape}: pass grad=dL/d(tensor), or "
                "reduce it first, e.g. tensor.sum().backward()")
        grad = np.ones_like(tensor.data)
    else:
        grad = grad.data if isinstance(grad, Tensor) else grad
        grad = np.array(grad, dtype=tensor.dtype)
        if grad.shape != tensor.shape:
            raise ValueError(
                f"backward(): grad has shape {grad.shape}, the Tensor {tensor.shape}")
    # TODO: walk topological_order(tensor) backwards with grads = {tensor: grad}, taking
    #       each node's gradient out with grads.pop(node, None) (None: nothing reached it,
    #       skip it). For a leaf (node._op is None), add the gradient into node.grad (a
    #       Tensor of the node's dtype, created when None). Otherwise call
    #       _rule(node._op)(g, *node._parents, **node._saved) (the GRADIENTS entry) and
    #       add each parent's share into grads (skip a share that is None and a parent
    #       that does not require a gradient).
    ### BEGIN SOLUTION
    grads = {tensor: grad}
    for node in reversed(topological_order(tensor)):
        g = grads.pop(node, None)
        if g is None:                                            # e.g. a loss's target
            continue
        if node._op is None:                                     # a leaf: keep its gradient
            if node.grad is None:
                node.grad = Tensor(g, dtype=node.dtype)
            else:
                node.grad.data += g
            continue
        shares = _rule(node._op)(g, *node._parents, **node._saved)
        for parent, share in zip(node._parents, shares):
            if share is None or not parent.requires_grad:
                continue
            share = np.asarray(share).astype(parent.dtype, copy=False)
            if parent in grads:
                grads[parent] = grads[parent] + share
            else:
                grads[parent] = share
    ### END SOLUTION


def _rule(op):
    """GRADIENTS[op], or an error that says which op has no rule."""
    try:
        return GRADIENTS[op]
    except KeyError:
        raise NotImplementedError(
            f"backward(): no derivative rule for op {op!r}: register one with "
            f"@register_gradient({op!r}) (tinytorch.core.autograd)") from None

# %% [markdown]
# ### Test it: the engine
#
# Leaves only, the chain rule through several operations, and a clear error for a
# non-scalar output. The tests call the functions of *this notebook* (`backward(loss)`, not
# `loss.backward()`: the method reaches the package's engine, which holds your code only
# after `tito module complete 07`).

# %%
#| test: backward_engine (4 points)
def test_backward_engine():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = Tensor([4.0, 5.0, 6.0], requires_grad=True)
    b = Tensor(10.0, requires_grad=True)
    loss = ((x * w).sum() + b) * 2
    backward(loss)
    assert x.grad is not None and np.allclose(x.grad.data, [8, 10, 12]), (
        f"loss = ((x * w).sum() + b) * 2: expected x.grad = 2w = [8, 10, 12], "
        f"got {x.grad}.")
    assert np.allclose(w.grad.data, [2, 4, 6]) and np.allclose(b.grad.data, 2), (
        f"expected w.grad = 2x = [2, 4, 6] and b.grad = 2, got {w.grad} and {b.grad}.")
    assert isinstance(x.grad, Tensor) and x.grad.shape == x.shape, (
        "a leaf's .grad is a Tensor of its shape.")
    c = Tensor([1.0, 2.0])
    backward((c * Tensor([1.0, 1.0], requires_grad=True)).sum())
    assert c.grad is None, "a Tensor without requires_grad gets no .grad."
    try:
        backward(x * w)
    except ValueError:
        pass
    else:
        raise AssertionError("backward() of a non-scalar without grad should raise "
                             "ValueError, as PyTorch does.")

test_backward_engine()
### BEGIN HIDDEN TESTS
_x = Tensor([1.0, -2.0, 3.0], requires_grad=True, dtype=np.float64)
backward((_x * _x).sum())
assert np.allclose(_x.grad.data, [2, -4, 6]), "x * x uses x twice: its gradient is 2x (the shares add up, += not =)"
_x = Tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
_a, _b = _x * 2, _x * 3
backward((_a + _b + _x).sum())
assert np.allclose(_x.grad.data, [6, 6]), "x reaches the loss along three paths: 2 + 3 + 1"
_y = Tensor(2.0, requires_grad=True, dtype=np.float64)
backward(_y * _y * _y + _y)
assert np.isclose(_y.grad.item(), 13.0), "d(y^3 + y)/dy at 2 is 3*4 + 1 = 13"
# a second backward() accumulates into the leaves, exactly
_w = Tensor([1.0, 2.0], requires_grad=True)
_loss = (_w * Tensor([3.0, 4.0])).sum()
backward(_loss)
backward(_loss)
assert np.allclose(_w.grad.data, [6, 8]), "a second backward() adds to .grad: [3, 4] + [3, 4]"
# a chain of 1,000 steps reusing the value twice: each node visited once, no recursion limit
_calls = {"n": 0}
_saved_rules = dict(GRADIENTS)


def _counting(rule):
    def counted(*args, **kwargs):
        _calls["n"] += 1
        return rule(*args, **kwargs)
    return counted


for _op in list(GRADIENTS):
    GRADIENTS[_op] = _counting(_saved_rules[_op])
try:
    _x = Tensor(1.5, requires_grad=True, dtype=np.float64)
    _y = _x
    for _ in range(1000):
        _y = _y * 0.5 + _y * 0.5
    backward(_y)
finally:
    GRADIENTS.update(_saved_rules)
assert _calls["n"] == 3000, f"1,000 steps of y * 0.5 + y * 0.5 are 3,000 operations; the rules ran {_calls['n']} times"
assert _x.grad.item() == 1.0, "dy/dx of the chain is exactly 1"
# broadcasting through the engine
_bias = Tensor([1.0, 2.0, 3.0], requires_grad=True)
backward((Tensor(np.ones((4, 3))) * 2 + _bias).sum())
assert _bias.shape == _bias.grad.shape and np.allclose(_bias.grad.data, 4), "a broadcast bias sums over the batch"
_col = Tensor(np.ones((3, 1)), requires_grad=True)
backward((_col * Tensor(np.arange(12.0).reshape(3, 4))).sum())
assert np.allclose(_col.grad.data, np.arange(12.0).reshape(3, 4).sum(axis=1, keepdims=True))
_f32 = Tensor([1.0, 2.0], requires_grad=True)
backward((_f32 * np.sqrt(2.0)).sum())
assert _f32.grad.dtype == np.float32, "a float32 leaf gets a float32 gradient"
try:
    backward(Tensor([1.0]) * 2)
    raise AssertionError("backward() of a Tensor that requires no gradient must raise")
except RuntimeError:
    pass
# the order: every node that requires a gradient, once, after its parents; no constants
from tinytorch.testing import assert_dtype_kept, assert_untouched, check_graph  # noqa: E402

_x = Tensor([1.0, 2.0], requires_grad=True)
_c = Tensor([3.0, 4.0])
_h = _x * _c
_s = _h + _x
_p = _s * _h
_y = _p.sum()
_order = topological_order(_y)
_ids = [id(node) for node in _order]
_names = {id(_x): "x", id(_c): "c", id(_h): "h = x * c", id(_s): "s = h + x",
          id(_p): "p = s * h", id(_y): "y = p.sum()"}
assert sorted(_ids) == sorted({id(_x), id(_h), id(_s), id(_p), id(_y)}), (
    "topological_order(y) with h = x * c, s = h + x, p = s * h, y = p.sum() and c a "
    f"constant: expected x, h, s, p and y once each, got {[_names.get(i, '?') for i in _ids]}. "
    "List only the Tensors that require a gradient, each once.")
_at = [_ids.index(id(t)) for t in (_x, _h, _s, _p, _y)]
assert _at == sorted(_at), f"every node must come after its parents, got {[_names[i] for i in _ids]}."
# only leaves keep a .grad; an incoming gradient is left as it was
_g = np.array([[1.0, -2.0], [0.5, 3.0]])
_w = Tensor(np.ones((2, 2)), requires_grad=True)
_mid = _w * 3.0
_out = _mid * _mid + _mid
assert_untouched(backward, _out, _g)
assert _mid.grad is None and _out.grad is None, (
    "backward() gave an intermediate Tensor a .grad: only leaves keep their gradient; the "
    "others live in the engine's grads dict and are dropped, as in PyTorch.")
assert np.allclose(_w.grad.data, _g * (18 * np.ones((2, 2)) + 3)), "d(m*m + m)/dw with m = 3w"
# a float64 leaf gets a float64 gradient, a float32 leaf a float32 one, through every rule
for _fn in (lambda a, b: (a * b + a / (b * b + 1.0)).sum(axis=0),
            lambda a, b: (a @ b.T).max(axis=1),
            lambda a, b: (a - b).mean() * (a.sum(axis=1, keepdims=True) * b).sum()):
    assert_dtype_kept(_fn, shapes=((3, 4), (3, 4)), backward=backward)
# the chain rule through shared weights, residual paths, broadcasting and every reduction,
# against central differences (float64)
_rng = np.random.default_rng(19)


def _residual(x, w, b):
    h = x @ w + b
    return (h + (h * h) @ w / 4.0).max(axis=1)


def _shared(x, w):
    return ((x @ w) @ w - x * x.sum(axis=0, keepdims=True)).mean(axis=0)


def _reused(x, v):
    y = x * v
    for _ in range(3):
        y = y + y * x / (v * v + 1.0)
    return y.sum(axis=-1)


check_graph(_residual, [_rng.standard_normal((5, 3)), _rng.standard_normal((3, 3)),
                        _rng.standard_normal(3)], backward=backward, name="h + (h*h) @ w / 4")
check_graph(_shared, [_rng.standard_normal((4, 3)), _rng.standard_normal((3, 3))],
            backward=backward, name="(x @ w) @ w - x * x.sum(axis=0)")
check_graph(_reused, [_rng.standard_normal((2, 3)), _rng.standard_normal((1, 3))],
            backward=backward, name="y = y + y * x / (v*v + 1), three times")
### END HIDDEN TESTS

# %% [markdown]
# ## Switching the recording off: `no_grad`
#
# Evaluating a model, or updating weights, needs no graph: recording it only costs memory.
# `with no_grad():` switches module 02's recording off and restores the previous setting on
# the way out, even after an exception, and nested blocks restore correctly because each
# remembers what it found. `t.detach()` (module 02) gives `t`'s numbers without a history.

# %%
#| export
class no_grad:
    """Within `with no_grad():`, operations record no graph and results need no gradient.

    >>> with no_grad():
    ...     predictions = model(x)
    """

    def __enter__(self):
        # TODO: switch recording off, keeping the previous setting in self._previous.
        ### BEGIN SOLUTION
        self._previous = set_grad_enabled(False)
        ### END SOLUTION
        return self

    def __exit__(self, *exc_info):
        # TODO: restore the setting that __enter__ found (and return nothing, so that an
        #       exception inside the block passes through).
        ### BEGIN SOLUTION
        set_grad_enabled(self._previous)
        ### END SOLUTION

# %% [markdown]
# ### no_grad and detach

# %%
#| test: no_grad_detach (1 point)
def test_no_grad():
    w = Tensor([1.0, 2.0], requires_grad=True)
    with no_grad():
        y = w * 2
    assert not y.requires_grad and y._op is None, (
        f"inside no_grad(), w * 2 should record nothing and need no gradient, got {y!r}.")
    z = w * 2
    assert z.requires_grad, "after the with-block, recording must be back on."
    d = z.detach()
    assert not d.requires_grad and d._op is None and np.allclose(d.data, [2, 4]), (
        "detach() gives the same numbers with no history.")

test_no_grad()
### BEGIN HIDDEN TESTS
_w = Tensor([1.0], requires_grad=True)
with no_grad():
    with no_grad():
        pass
    assert not (_w * 2).requires_grad, "leaving an inner no_grad must not switch recording back on"
assert (_w * 2).requires_grad
try:
    with no_grad():
        raise KeyError("boom")
except KeyError:
    pass
assert (_w * 2).requires_grad, "an exception inside no_grad must still restore recording"
# the exception comes out of the block unchanged (an __exit__ that returns True would
# swallow it), and no_grad restores what it found, even when that was "off"
from tinytorch.core.tensor import is_grad_enabled  # noqa: E402
from tinytorch.testing import assert_passes_through  # noqa: E402

assert_passes_through(no_grad())
set_grad_enabled(False)
try:
    with no_grad():
        pass
    _after = is_grad_enabled()
finally:
    set_grad_enabled(True)
assert _after is False, (
    "recording was off before `with no_grad():`, and no_grad switched it on when the block "
    "ended: restore the setting __enter__ found, do not switch it on.")
_outer = no_grad()
with _outer:
    with no_grad():
        pass
    with no_grad():
        pass
assert is_grad_enabled(), "after nested no_grad blocks, recording is on again"
### END HIDDEN TESTS

# %% [markdown]
# ## Checking a rule: `gradcheck`
#
# How do you know a rule is right? Compare it with the definition of a derivative. For a
# tiny `ε`, the **central difference**
#
# $$\frac{\partial f}{\partial x_i} \approx \frac{f(x + \varepsilon e_i) - f(x - \varepsilon e_i)}{2\varepsilon}$$
#
# is accurate to about `ε²`. `gradcheck(fn, inputs)` (given) does this for every element of
# every input, in float64 (float32 would drown the difference in rounding), and compares with
# what `backward` computes. A non-scalar output is weighted by fixed random numbers first, so
# an error in any output element shows. When a gradient disagrees it raises an
# `AssertionError` naming the input and the element; otherwise it returns `True`. It costs
# two forward passes per input element: for checking rules on small inputs, not for training.

# %%
#| export
def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3):
    """Compare backward()'s gradients of `fn(*inputs)` with central differences, in
    float64.

    inputs: the Tensors (or arrays) to differentiate with respect to. Raises
    AssertionError naming the input index and element of the first gradient that
    disagrees; returns True.

    >>> gradcheck(lambda a, b: a * b, [Tensor([1.0, 2.0]), Tensor([3.0, 4.0])])
    True
    """
    values = [np.array(t.data if isinstance(t, Tensor) else t, dtype=np.float64)
              for t in inputs]
    leaves = [Tensor(v, dtype=np.float64, requires_grad=True) for v in values]
    out = fn(*leaves)
    if not isinstance(out, Tensor) or not out.requires_grad:
        raise AssertionError(
            "gradcheck: fn must return a Tensor computed from its inputs")
    weights = np.random.default_rng(0).uniform(0.5, 1.5, size=out.shape)  # all count
    backward(out, weights)

    def f(index, value):
        args = [Tensor(v, dtype=np.float64) for v in values]
        args[index] = Tensor(value, dtype=np.float64)
        with no_grad():
            return float(np.sum(weights * fn(*args).data))

    for i, (leaf, value) in enumerate(zip(leaves, values)):
        analytic = np.zeros_like(value) if leaf.grad is None else leaf.grad.data
        for element in np.ndindex(value.shape):
            plus, minus = value.copy(), value.copy()
            plus[element] += eps
            minus[element] -= eps
            numeric = (f(i, plus) - f(i, minus)) / (2 * eps)
            if not abs(analytic[element] - numeric) <= atol + rtol * abs(numeric):
                raise AssertionError(
                    f"gradcheck: input {i}, element {element}: backward gives "
                    f"{analytic[element]:.6g} but finite differences give {numeric:.6g} "
                    "(check the rule of the op that uses this input)")
    return True

# %% [markdown]
# ### gradcheck catches a wrong rule
#
# `gradcheck` is given, but it calls your `backward` and your rules.

# %%
#| test: gradcheck_catches (2 points)
def test_gradcheck():
    rng = np.random.default_rng(0)
    inputs = [rng.uniform(1, 2, (2, 3)), rng.uniform(1, 2, (2, 3)),
              rng.uniform(1, 2, (3,))]
    assert gradcheck(lambda a, b, c: (a * b - c) ** 2 / 3, inputs), (
        "gradcheck of (a * b - c) ** 2 / 3 should pass with correct rules.")
    saved = GRADIENTS["neg"]
    GRADIENTS["neg"] = lambda g, a: (g,)                    # a planted bug: d(-a) = +g
    try:
        gradcheck(lambda a, b: (-a) * b, [np.ones((2, 2)), np.ones((2, 2))])
    except AssertionError as error:
        message = str(error)
    else:
        message = None
    finally:
        GRADIENTS["neg"] = saved
    assert message and "input 0" in message, (
        f"gradcheck should reject a wrong rule for neg and name input 0, "
        f"got {message!r}.")

test_gradcheck()
### BEGIN HIDDEN TESTS
from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh  # noqa: E402

_rng = np.random.default_rng(3)
assert gradcheck(lambda a: a[[0, 2, 0]], [_rng.standard_normal((3, 2))]), "getitem with a repeated index"
assert gradcheck(lambda a: a[:, 1:].reshape(-1).T, [_rng.standard_normal((2, 3))])
assert gradcheck(lambda a: a.transpose(2, 0, 1).reshape(4, 6), [_rng.standard_normal((2, 3, 4))])
for _act in (Sigmoid(), Tanh(), GELU(), Softmax(dim=0), Softmax()):
    assert gradcheck(lambda a, act=_act: act(a), [_rng.standard_normal((3, 4))]), f"{_act!r}"
assert gradcheck(lambda a: ReLU()(a), [_rng.uniform(0.1, 1, (2, 3)) * _rng.choice([-1, 1], (2, 3))])
_saved = GRADIENTS["mul"]
GRADIENTS["mul"] = lambda g, a, b: (unbroadcast(g * b.data, a.shape), unbroadcast(g * b.data, b.shape))
try:
    gradcheck(lambda a, b: a * b, [np.array([1.0, 2.0]), np.array([[3.0, 4.0], [5.0, 7.0]])])
    _msg = None
except AssertionError as _e:
    _msg = str(_e)
finally:
    GRADIENTS["mul"] = _saved
assert _msg and "input 1" in _msg and "(0, 0)" in _msg, "gradcheck must name the input and the element"
### END HIDDEN TESTS

# %% [markdown]
# ### Your rules, against finite differences
#
# The rules you wrote, through the engine, on random inputs with broadcasting, checked by
# `gradcheck` element by element.

# %%
#| test: rules_gradcheck (1 point)
def test_rules_gradcheck():
    rng = np.random.default_rng(1)
    cases = [
        ("a * b", lambda a, b: a * b,
         [rng.standard_normal((2, 3)), rng.standard_normal((1, 3))]),
        ("a / b", lambda a, b: a / b,
         [rng.standard_normal((2, 3)), rng.uniform(1, 2, (3,))]),
        ("a @ b", lambda a, b: a @ b,
         [rng.standard_normal((2, 3)), rng.standard_normal((3, 4))]),
        ("a.sum(axis=1)", lambda a: a.sum(axis=1), [rng.standard_normal((2, 3))]),
        ("a.max(axis=0)", lambda a: a.max(axis=0), [rng.standard_normal((4, 3))]),
    ]
    for name, fn, inputs in cases:
        assert gradcheck(fn, inputs), f"gradcheck of {name} failed"

test_rules_gradcheck()
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng(7)
for _sa, _sb in [((3,), (3, 4)), ((2, 3), (3,)), ((3,), (3,)), ((5, 2, 3), (3, 4)), ((2, 3), (4, 3, 5)), ((4, 2, 3), (4, 3, 2))]:
    _A, _B = _rng.standard_normal(_sa), _rng.standard_normal(_sb)
    assert gradcheck(lambda a, b: a @ b, [_A, _B])
assert gradcheck(lambda a, b: a * b, [_rng.standard_normal((2, 3)), _rng.standard_normal((3,))])
assert gradcheck(lambda a, b: a / b, [_rng.standard_normal((3, 1)), _rng.uniform(1, 2, (1, 4))])
assert gradcheck(lambda a: a.sum(axis=(0, 2), keepdims=True), [_rng.standard_normal((2, 3, 4))])
assert gradcheck(lambda a: a.sum(axis=-1), [_rng.standard_normal((2, 3))])
assert gradcheck(lambda a: a.mean(axis=0), [_rng.standard_normal((4, 3))])
assert gradcheck(lambda a: a.max(axis=1, keepdims=True), [_rng.standard_normal((3, 4))])
assert gradcheck(lambda a: a ** 3, [_rng.standard_normal((2, 2))])
### END HIDDEN TESTS

# %% [markdown]
# ## The contrast: XOR with no hand-written backward
#
# The same network as the XOR milestone, the same loss and optimizer. The hand-written line
# `model.backward(loss_fn.backward())` becomes `backward(loss)`: the graph that the forward
# pass recorded through `Linear` (`@`, `+`), `Tanh`, `Sigmoid` and `BCELoss` is
# differentiated by the rules in the table. Not one `backward` method of modules 03–05 runs.
# (Once this module is in your package, `backward(loss)` is spelled `loss.backward()`.)

# %%
from tinytorch.core.activations import Sigmoid, Tanh
from tinytorch.core.layers import Linear, Sequential, manual_seed
from tinytorch.core.losses import BCELoss
from tinytorch.core.optimizers import Adam


def train_xor(epochs=300, seed=0):
    manual_seed(seed)
    model = Sequential(Linear(2, 8), Tanh(), Linear(8, 1), Sigmoid())
    loss_fn, optimizer = BCELoss(), Adam(model.parameters(), lr=0.05)
    x, y = Tensor([[0, 0], [0, 1], [1, 0], [1, 1]]), Tensor([[0], [1], [1], [0]])
    for _ in range(epochs):
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        backward(loss)                     # was: model.backward(loss_fn.backward())
        optimizer.step()
    with no_grad():
        accuracy = np.mean((model(x).data > 0.5) == (y.data > 0.5))
    return loss.item(), accuracy


xor_loss, xor_accuracy = train_xor()
print(f"XOR with autograd: loss {xor_loss:.4f}, accuracy {100 * xor_accuracy:.0f}%")

# %% [markdown]
# Adding a layer is now adding it to the `Sequential`: its gradient comes for free, and a
# residual connection, `h = h + layer(h)`, is just another `add` in the graph. The
# hand-written `backward` methods of modules 03–05 stay as what they were: the derivations,
# worked out once so that you know what the table computes. The test below checks that the
# two agree.

# %%
#| test: autograd_trains (2 points)
def test_autograd_trains():
    manual_seed(1)
    model = Sequential(Linear(3, 4), Tanh(), Linear(4, 2), Sigmoid())
    x = Tensor(np.random.default_rng(0).standard_normal((5, 3)))
    y = Tensor(np.full((5, 2), 0.25))
    loss_fn = BCELoss()
    loss = loss_fn(model(x), y)
    model.zero_grad()
    model.backward(loss_fn.backward())
    by_hand = [p.grad.data.copy() for p in model.parameters()]
    model.zero_grad()
    backward(loss)
    for (name, p), expected in zip(model.named_parameters(), by_hand):
        assert p.grad is not None and np.allclose(p.grad.data, expected, atol=1e-6), (
            f"{name}: backward(loss) gives {None if p.grad is None else p.grad.data}, "
            f"the hand-written backward {expected}. Every rule in the chain must match.")
    loss, accuracy = train_xor()
    assert accuracy == 1.0, (
        f"XOR trained with backward(loss) should reach 100%, got {100 * accuracy:.0f}%.")

test_autograd_trains()
### BEGIN HIDDEN TESTS
from tinytorch.core.activations import ReLU  # noqa: E402
from tinytorch.core.layers import Dropout  # noqa: E402
from tinytorch.core.losses import CrossEntropyLoss, MSELoss  # noqa: E402

_rng = np.random.default_rng(5)
for _loss_fn, _target, _last in [(MSELoss(), Tensor(_rng.standard_normal((6, 3))), None),
                                 (CrossEntropyLoss(), Tensor([0, 2, 1, 1, 0, 2], dtype=np.int64), None)]:
    manual_seed(2)
    _model = Sequential(Linear(4, 5), ReLU(), Linear(5, 5), Tanh(), Linear(5, 3))
    _x = Tensor(_rng.standard_normal((6, 4)))
    _loss = _loss_fn(_model(_x), _target)
    _model.zero_grad()
    _model.backward(_loss_fn.backward())
    _hand = [p.grad.data.copy() for p in _model.parameters()]
    _model.zero_grad()
    backward(_loss)
    for _p, _h in zip(_model.parameters(), _hand):
        assert np.allclose(_p.grad.data, _h, atol=1e-5), f"{_loss_fn!r}: autograd and the hand-written backward disagree"
manual_seed(3)
_drop = Dropout(0.5)
_w = Tensor(np.ones((4, 4)), requires_grad=True)
_out = _drop(_w * 1.0)
backward(_out.sum())
assert np.allclose(_w.grad.data, _drop.backward(Tensor(np.ones((4, 4)))).data), "Dropout: the gradient is the scaled mask"
### END HIDDEN TESTS

# %% [markdown]
# ## Your own operation, checked with `gradcheck`
#
# Adding an operation to the framework takes two small functions: the forward computes the
# value and records it through `_result` under a new op name; the rule, registered with
# `@register_gradient` under that name, differentiates it. Take softplus, `log(1 + eˣ)`, a
# smooth ReLU; its derivative is the sigmoid. Then ask `gradcheck` whether you got it right,
# *before* you train anything with it.

# %%
def softplus(x):
    return x._result(np.logaddexp(0, x.data), "softplus", x)     # log(1 + e^x), stably


@register_gradient("softplus")
def softplus_grad(g, x):
    return (g * _sigmoid(x.data),)


print("softplus:", gradcheck(softplus, [np.linspace(-3, 3, 7)]))

# %% [markdown]
# Now break the rule, as a slip of the pen would: `1 - sigmoid` instead of `sigmoid`. The
# same function registered again replaces its old version (as when you re-run a cell after
# a fix), and `gradcheck` names the first element that disagrees.

# %%
@register_gradient("softplus")
def softplus_grad(g, x):                                     # noqa: F811 (on purpose)
    return (g * (1 - _sigmoid(x.data)),)                     # wrong: d/dx is sigmoid(x)


try:
    gradcheck(softplus, [np.linspace(-3, 3, 7)])
except AssertionError as error:
    print(error)

# %% [markdown]
# A *different* function for an op that already has a rule is refused: had two modules
# both registered `"softplus"`, the one imported last would otherwise win without a word.

# %%
def another_softplus_grad(g, x):
    return (g * _sigmoid(x.data),)


try:
    register_gradient("softplus", another_softplus_grad)
except ValueError as error:
    print(error)

# %% [markdown]
# Use it on every operation you add in later modules (convolution, attention, layer norm):
# a rule that passes `gradcheck` on a few small random inputs is almost always right; one
# that fails is wrong at exactly the element it names.
#
# ## What you built, and what comes next
#
# Module 02 records every operation; this module turns the record into gradients: one table
# of derivative rules that every rule enters through `register_gradient`, `unbroadcast` for broadcast operands, and an engine that visits each
# node once in topological order and accumulates with `+=`. `loss.backward()` now trains
# every model built from Tensor operations, with no hand-written backward, and `gradcheck`
# checks any new rule against the definition of a derivative.
#
# The training step is now `loss = loss_fn(model(x), y)`, `optimizer.zero_grad()`,
# `loss.backward()`, `optimizer.step()`. But around it, every script still writes its own
# loop over epochs and batches, its own evaluation under `no_grad()`, its own bookkeeping of
# losses and accuracy: **ad hoc loops are unsystematic**. Module 08 builds the training loop
# once.
