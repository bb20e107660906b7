# %% [markdown]
# # Module 03: Activations — linear maps compose to one linear map
#
# Module 02 gave you the `Tensor`, and with it a layer is one line: `x @ W + b`. A network
# is layers stacked. But stack two and something disappointing happens.
#
# ## The problem: depth buys nothing
#
# Take one input `x` of shape `(1, 2)` and two linear maps, `(W1, b1)` from 2 numbers to 2
# and `(W2, b2)` from 2 numbers to 1:
#
# ```
# x  = [[1, 2]]      W1 = [[1, 0],     b1 = [1, -1]      W2 = [[2],     b2 = [0.5]
#                          [1, 1]]                             [1]]
#
# h  = x @ W1 + b1 = [[1·1 + 2·1, 1·0 + 2·1]] + [1, -1] = [[4, 1]]
# y  = h @ W2 + b2 = [[4·2 + 1·1]] + 0.5                = [[9.5]]
# ```
#
# Now multiply the brackets out: `(x @ W1 + b1) @ W2 + b2 = x @ (W1 @ W2) + (b1 @ W2 + b2)`.
#
# ```
# W = W1 @ W2 = [[1·2 + 0·1],  = [[2],       b = b1 @ W2 + b2 = 1·2 + (-1)·1 + 0.5 = 1.5
#                [1·2 + 1·1]]     [3]]
#
# x @ W + b = 1·2 + 2·3 + 1.5 = 9.5          the same 9.5, from ONE linear map
# ```
#
# That was no accident of the numbers: for *every* `x`, the two layers compute exactly what
# the single layer `(W, b)` computes. A hundred stacked linear layers are still one linear
# layer. Depth buys nothing, and a linear map cannot even compute XOR (below).
#
# Check it with Tensors:

# %%
#| export
import math

import numpy as np

from tinytorch.core.tensor import Tensor

# %%
W1, b1 = Tensor([[1.0, 0.0], [1.0, 1.0]]), Tensor([1.0, -1.0])
W2, b2 = Tensor([[2.0], [1.0]]), Tensor([0.5])
W, b = W1 @ W2, b1 @ W2 + b2                  # the single layer the two collapse into
for x in (Tensor([[1.0, 2.0]]), Tensor([[-1.0, 0.0]]), Tensor([[3.0, -7.0]])):
    two_layers = (x @ W1 + b1) @ W2 + b2
    one_layer = x @ W + b
    print(f"x = {x.data}: two layers give {two_layers.data}, "
          f"one layer gives {one_layer.data}")

# %% [markdown]
# ## The fix: bend between the layers
#
# Put a function that is *not* linear between the two maps and the algebra above no longer
# goes through. The simplest is ReLU, `max(0, x)` elementwise: it keeps positive numbers and
# clips negative ones to 0. For `x = [[-1, 0]]`:
#
# ```
# h = x @ W1 + b1 = [[-1, 0]] + [1, -1] = [[0, -1]]
# linear:      h       @ W2 + b2 = 0·2 + (-1)·1 + 0.5 = -0.5     (what x @ W + b says too)
# with ReLU:   relu(h) @ W2 + b2 = 0·2 +    0 ·1 + 0.5 =  0.5     (no single W, b does this)
# ```
#
# **XOR.** A linear map `f(x1, x2) = a·x1 + c·x2 + d` cannot compute XOR: `f(0, 0) = 0`
# forces `d = 0`; `f(0, 1) = 1` and `f(1, 0) = 1` force `c = 1` and `a = 1`; then
# `f(1, 1) = 2`, not 0. With a ReLU in the middle, two tiny layers do it:
#
# ```
# h = relu(x @ [[1, 1], [1, 1]] + [0, -1])        y = h @ [[1], [-2]]
#
# x = (0, 0): h = relu([0, -1]) = [0, 0]  ->  y = 0
# x = (0, 1): h = relu([1,  0]) = [1, 0]  ->  y = 1
# x = (1, 0): h = relu([1,  0]) = [1, 0]  ->  y = 1
# x = (1, 1): h = relu([2,  1]) = [2, 1]  ->  y = 2 - 2 = 0
# ```
#
# The nonlinear function between layers is called an **activation**. The XOR milestone
# after module 06 *learns* weights like these, from data. This module writes five
# activations, each with the derivative that learning needs.
#
# | activation | formula | where it is used |
# |---|---|---|
# | ReLU | $\max(0, x)$ | hidden layers of MLPs and CNNs (modules 08, 09) |
# | Sigmoid | $\sigma(x) = 1 / (1 + e^{-x})$ | a probability from one number (binary classification, module 05) |
# | Tanh | $\tanh(x) = (e^x - e^{-x}) / (e^x + e^{-x})$ | outputs in (-1, 1); classic recurrent networks |
# | GELU | $x \cdot \Phi(x)$, a smooth ReLU | transformers: our GPT in module 14 |
# | Softmax | $e^{x_i} / \sum_j e^{x_j}$ | scores to probabilities: classification (05), attention (13) |

# %%
XOR_IN = Tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
hidden = XOR_IN @ Tensor([[1.0, 1.0], [1.0, 1.0]]) + Tensor([0.0, -1.0])
hidden = Tensor(np.maximum(hidden.data, 0))            # the bend: ReLU, by hand for now
print("XOR:", (hidden @ Tensor([[1.0], [-2.0]])).data.ravel())  # [0, 1, 1, 0]

# %% [markdown]
# ## Forward and backward
#
# Learning (modules 05 and 06) will nudge every weight against its gradient: how much the
# loss changes when that weight changes. Until module 07 automates it, every piece of a
# network computes its own gradient, by hand, in two methods:
#
# - `forward(x)` computes the output `y = f(x)` and **saves** what the derivative will need;
# - `backward(grad_output)` receives $\partial L / \partial y$, the gradient of the final
#   loss with respect to this output (same shape as `y`), and returns
#   $\partial L / \partial x$, the gradient with respect to the input (same shape as `x`).
#
# For an elementwise function, each `y[i]` depends on `x[i]` alone, and the chain rule is
# one multiplication per entry:
#
# $$\frac{\partial L}{\partial x_i} = \frac{\partial L}{\partial y_i} \cdot f'(x_i)
# \qquad\text{in code: } \texttt{grad\_input = grad\_output * f'(x)}$$
#
# Worked example, ReLU, with $f'(x) = 1$ where $x > 0$ and $0$ elsewhere:
#
# ```
# x           = [-1.0, 2.0, 3.0]
# y           = [ 0.0, 2.0, 3.0]
# grad_output = [ 0.5, 0.5, -1.0]     (handed to us by whatever comes after)
# f'(x)       = [ 0,   1,   1  ]
# grad_input  = [ 0.0, 0.5, -1.0]     (grad_output * f'(x))
# ```
#
# Note what backward needs: not `grad_output` alone, but where `x` was positive. That is
# what forward saves. Each activation below saves the least it can:
#
# | activation | derivative | forward saves |
# |---|---|---|
# | ReLU | $1$ where $x > 0$, else $0$ | the mask `x > 0` |
# | Sigmoid | $\sigma'(x) = \sigma(x)(1 - \sigma(x))$ | the output $\sigma(x)$ |
# | Tanh | $\tanh'(x) = 1 - \tanh^2(x)$ | the output $\tanh(x)$ |
# | GELU | see its section | the input |
# | Softmax | not elementwise: see its section | the output |
#
# **At exactly 0**, ReLU has a corner and no derivative. Frameworks pick a value; PyTorch
# (and we) use 0: the gradient passes only where `x > 0`, strictly.
#
# **An operation never changes its input** (module 02's rule holds here too): forward
# builds a new array; it never writes into `x.data`.
#
# ## Where the output is born, and which dtype it has
#
# Module 02 made `Tensor._result` the one door every operation's output passes through, so
# that module 07 can record the computation there. Activations are operations too: end
# every `forward` with
#
# ```python
# return x._result(array, "relu", x)       # op name: "relu", "sigmoid", "tanh", "gelu", "softmax"
# ```
#
# `_result` keeps the dtype of the array it is given. So a float32 input must give a float32
# array: compute with Python numbers (`0.5`, `math.sqrt(2 / math.pi)`), never `np.float64`
# ones, which would turn float32 into float64 (module 02's trap). And a **float64** input
# stays float64, which is what makes the gradient check below possible. `backward` returns a
# plain `Tensor(grad, dtype=grad.dtype)`: it is no operation of the network, and the
# explicit dtype keeps float64 gradients float64 (`Tensor(grad)` alone would make them
# float32).
#
# ## Checking a derivative: the numerical gradient
#
# How do you know your `backward` is right? Compare it with the definition of a derivative.
# Nudge one input entry by a small `h` up and down and watch the output:
#
# $$\frac{\partial}{\partial x_i} \sum_j y_j\, g_j \approx
# \frac{S(x + h\,e_i) - S(x - h\,e_i)}{2h}, \qquad S(x) = \sum_j f(x)_j\, g_j$$
#
# With `g = grad_output`, the left side is exactly what `backward(g)` must return. For
# $f(x) = x^2$ at $x = 3$ with $h = 10^{-3}$: $(3.001^2 - 2.999^2) / 0.002 = 0.012 / 0.002 = 6$,
# the exact $2x$. This only works in **float64**: float32 keeps about 7 digits, and with
# $h = 10^{-6}$ the difference $S(x+h) - S(x-h)$ would be mostly rounding noise. That is why
# every activation must keep float64 as float64. The helper below is given; the tests use
# it, and so can you.

# %%
def numerical_gradient(make, x, grad_output, h=1e-6):
    """d/dx of sum(f(x) * grad_output) by central differences, in float64.

    make: builds a fresh activation (e.g. `Sigmoid`), so the one being tested keeps its
    cache.
    """
    x = np.array(x, dtype=np.float64)
    g = np.asarray(grad_output, dtype=np.float64)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        saved = x[index]
        x[index] = saved + h
        up = np.sum(make()(Tensor(x, dtype=np.float64)).data * g)
        x[index] = saved - h
        down = np.sum(make()(Tensor(x, dtype=np.float64)).data * g)
        x[index] = saved
        grad[index] = (up - down) / (2 * h)
    return grad


def square(x):                                 # f(x) = x^2, to try the tool: f'(3) = 6
    return Tensor(x.data ** 2, dtype=x.dtype)


print(numerical_gradient(lambda: square, [3.0], [1.0]))

# %% [markdown]
# ## What every activation shares
#
# The base class below is given: calling an activation runs `forward`, and an activation
# has no parameters to learn (module 04's layers have; its `Sequential` will chain layers
# and activations alike, calling `forward` on the way in and `backward` on the way back).

# %%
#| export
class Activation:
    """A nonlinear function between layers: `forward` computes it and saves what
    `backward` needs; `backward(grad_output)` returns the gradient with respect to the
    input."""

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} must define forward(x)")

    def backward(self, grad_output):
        raise NotImplementedError(
            f"{type(self).__name__} must define backward(grad_output)")

    def parameters(self):
        """An activation learns nothing: no parameters."""
        return []

    def __repr__(self):
        return f"{type(self).__name__}()"

# %% [markdown]
# ## ReLU
#
# $$\text{ReLU}(x) = \max(0, x) \qquad \text{ReLU}'(x) = \begin{cases}1 & x > 0\\ 0 & x \le 0\end{cases}$$
#
# ```
# forward:  x = [-2.0, -0.5, 1.0, 3.0]   ->  y = [0.0, 0.0, 1.0, 3.0]
# backward: g = [ 1.0,  2.0, 3.0, 4.0]   ->      [0.0, 0.0, 3.0, 4.0]
# ```

# %%
#| export
class ReLU(Activation):
    """max(0, x), elementwise."""

    def forward(self, x):
        # TODO: save the mask x > 0 (as a NumPy bool array) in self.mask for backward;
        #       return max(0, x) as a new Tensor through x._result with op "relu".
        ### BEGIN SOLUTION
        self.mask = x.data > 0
        out = np.maximum(x.data, 0)
        return x._result(out, "relu", x)
        ### END SOLUTION

    def backward(self, grad_output):
        # TODO: the gradient passes where the input was positive and is 0 elsewhere.
        ### BEGIN SOLUTION
        grad = grad_output.data * self.mask
        return Tensor(grad, dtype=grad.dtype)
        ### END SOLUTION

# %% [markdown]
# ### Tests
#
# Each test cell checks one activation. A failing test says what it expected, what it got,
# and gives a hint. The autograder adds more checks of the same kind (other shapes, dtypes,
# extreme inputs), so make the rule right, not just the example.

# %%
#| test: activations_relu (2 points)
def test_activations_relu():
    relu = ReLU()
    x = Tensor([-2.0, -0.5, 1.0, 3.0])
    y = relu(x)
    assert isinstance(y, Tensor), (
        f"ReLU()(x) should return a Tensor, got {type(y).__name__}.")
    assert y.shape == (4,) and np.allclose(y.data, [0, 0, 1, 3]), (
        f"ReLU of [-2, -0.5, 1, 3]: expected [0, 0, 1, 3], got {y.data}. "
        "Hint: np.maximum(x.data, 0).")
    g = relu.backward(Tensor([1.0, 2.0, 3.0, 4.0]))
    assert isinstance(g, Tensor) and g.shape == (4,), (
        f"backward should return a Tensor shaped like the input (4,), got {g!r}.")
    assert np.allclose(g.data, [0, 0, 3, 4]), (
        f"ReLU backward at x = [-2, -0.5, 1, 3] with grad_output [1, 2, 3, 4]: expected "
        f"[0, 0, 3, 4], got {g.data}. Hint: grad_output where x > 0, else 0.")
    assert relu.parameters() == [], "an activation has no parameters."

test_activations_relu()
### BEGIN HIDDEN TESTS
# The checks every activation gets, over generated inputs (tinytorch.testing): forward and
# backward against NumPy formulas, the input and the incoming gradient left untouched,
# float32 and float64 kept, and the graph forward records (module 07's contract).
from tinytorch.testing import (
    assert_dtype_kept,
    assert_untouched,
    cases,
    check_against,
    check_graph,
)

try:        # module 07's engine: the grader imports the whole reference package
    from tinytorch.core.autograd import backward as _engine
except ModuleNotFoundError:     # a package of modules 01-02 alone has no engine yet
    _engine = None


def _check_activation(make, forward, slope, magnitudes=("ordinary", "tiny", "huge", "rows")):
    """make() builds the activation; forward(x) and slope(x) are its NumPy formulas."""
    name = repr(make())

    def run_forward(x):
        return make()(x)

    def run_backward(x, g):
        activation = make()
        activation(x)
        return activation.backward(g)

    run_forward.__name__, run_backward.__name__ = name, f"{name}.backward"
    shapes = [(1,), (7,), (3, 5), (5, 3), (2, 3, 4, 6)]
    check_against(run_forward, forward, cases(shapes, magnitudes=magnitudes), name=name)
    # Near saturation float32 keeps few digits of 1 - s or 1 - t**2 (an error of about
    # 1e-7 times grad_output), so backward is judged in float64 on every magnitude, and in
    # float32 on ordinary values with a looser tolerance.
    check_against(run_backward, lambda x, g: g * slope(x),
                  cases(shapes, inputs=2, magnitudes=magnitudes, dtypes=("float64",)),
                  name=f"{name}.backward")
    check_against(run_backward, lambda x, g: g * slope(x),
                  cases(shapes, inputs=2, magnitudes=("ordinary",), dtypes=("float32",)),
                  name=f"{name}.backward", rtol=1e-3, atol=1e-4)
    assert_dtype_kept(run_forward, [(3, 5)], grad=False)
    assert_dtype_kept(run_backward, [(3, 5), (3, 5)], grad=False)
    rng = np.random.default_rng(30)
    for dtype in (np.float32, np.float64):
        activation = make()
        assert_untouched(run_forward, Tensor(rng.standard_normal((3, 5)), dtype=dtype))
        activation(Tensor(rng.standard_normal((3, 5)), dtype=dtype))
        assert_untouched(activation.backward, Tensor(rng.standard_normal((3, 5)), dtype=dtype))
    if _engine is not None:
        check_graph(make(), [rng.standard_normal((3, 4))], name=name, backward=_engine)
        check_graph(make(), [rng.standard_normal((2, 3, 2))], name=name, backward=_engine)


_x = Tensor([-1.0, 0.0, 2.0])
_relu = ReLU()
_relu(_x)
assert np.allclose(_relu.backward(Tensor([5.0, 5.0, 5.0])).data, [0, 0, 5]), (
    "at exactly x = 0 the gradient is 0, as in PyTorch: pass it only where x > 0")
_x = Tensor([[-1.0, 2.0], [3.0, -4.0]])
ReLU()(_x)
assert np.array_equal(_x.data, [[-1, 2], [3, -4]]), "ReLU must not change its input"
_a = np.random.default_rng(3).standard_normal((2, 3, 4)).astype(np.float32)
_relu = ReLU()
_y = _relu(Tensor(_a))
assert _y.shape == (2, 3, 4) and _y.dtype == np.float32 and np.allclose(_y.data, np.maximum(_a, 0)), (
    "ReLU of a (2, 3, 4) float32 Tensor: the same shape, float32, max(0, x) everywhere")
_g = _relu.backward(Tensor(np.ones((2, 3, 4))))
assert _g.shape == (2, 3, 4) and _g.dtype == np.float32 and np.array_equal(_g.data, (_a > 0).astype(np.float32)), (
    "ReLU backward on a (2, 3, 4) batch: float32 in, float32 out (keep the mask bool), grad where x > 0")
_relu = ReLU()
_y = _relu(Tensor(_a, dtype=np.float64))
assert _y.dtype == np.float64, "a float64 input must give a float64 output"
assert _relu.backward(Tensor(np.ones((2, 3, 4)), dtype=np.float64)).dtype == np.float64, (
    "a float64 grad_output must give a float64 gradient: Tensor(grad, dtype=grad.dtype)")
_check_activation(ReLU, lambda x: np.maximum(x, 0), lambda x: (x > 0).astype(float))
### END HIDDEN TESTS

# %% [markdown]
# ## Sigmoid
#
# $$\sigma(x) = \frac{1}{1 + e^{-x}} \in (0, 1) \qquad \sigma'(x) = \sigma(x)\,(1 - \sigma(x))$$
#
# ```
# sigma(0) = 1 / (1 + 1) = 0.5          sigma'(0) = 0.5 · 0.5 = 0.25
# sigma(2) = 1 / (1 + e^-2) = 0.8808    sigma(-2) = 1 - sigma(2) = 0.1192
# ```
#
# The derivative needs only the output, so forward saves $\sigma(x)$.
#
# **Overflow.** Written as it stands, the formula breaks for very negative inputs:
# `np.exp(-x)` at `x = -1000` is $e^{1000}$, far beyond float32's largest number (about
# $3.4 \times 10^{38}$, that is $e^{88.7}$). NumPy returns `inf` and warns
# `RuntimeWarning: overflow encountered in exp`. (The mirrored form $e^x / (1 + e^x)$
# breaks at `+1000` instead, worse: `inf / inf = nan`.) The fix uses each form where it is
# safe, both written with $z = e^{-|x|} \le 1$, which never overflows:
#
# $$\sigma(x) = \begin{cases} \dfrac{1}{1 + z} & x \ge 0 \\[2mm] \dfrac{z}{1 + z} & x < 0 \end{cases}
# \qquad z = e^{-|x|}$$
#
# (For $x < 0$, multiply the top and bottom of $1 / (1 + e^{-x})$ by $e^{x} = z$.)
# `np.where(condition, a, b)` picks from `a` where the condition holds, from `b` elsewhere.
# It computes *both* `a` and `b` in full before picking, so both must be safe everywhere:
# `np.where(x >= 0, 1 / (1 + np.exp(-x)), np.exp(x) / (1 + np.exp(x)))` still overflows, on
# the side it throws away. With $z = e^{-|x|}$ neither side can.

# %%
with np.errstate(over="ignore", invalid="ignore"):    # no warnings, for this demo only
    x = np.array([-1000.0, 1000.0], dtype=np.float32)
    print("1 / (1 + e^-x):", 1 / (1 + np.exp(-x)),
          "   e^x / (1 + e^x):", np.exp(x) / (1 + np.exp(x)))

# %%
#| export
class Sigmoid(Activation):
    """σ(x) = 1 / (1 + e⁻ˣ), elementwise, computed without overflow."""

    def forward(self, x):
        # TODO: compute sigma(x) without overflow for any input (try +-1000), save it in
        #       self.output, and return it through x._result with op "sigmoid".
        ### BEGIN SOLUTION
        z = np.exp(-np.abs(x.data))                           # in (0, 1]: never overflows
        self.output = np.where(x.data >= 0, 1 / (1 + z), z / (1 + z))
        return x._result(self.output, "sigmoid", x)
        ### END SOLUTION

    def backward(self, grad_output):
        # TODO: the chain rule with sigma'(x) = sigma(x) * (1 - sigma(x)), from the
        #       saved output.
        ### BEGIN SOLUTION
        s = self.output
        grad = grad_output.data * s * (1 - s)
        return Tensor(grad, dtype=grad.dtype)
        ### END SOLUTION

# %%
#| test: activations_sigmoid (2 points)
def test_activations_sigmoid():
    sigmoid = Sigmoid()
    y = sigmoid(Tensor([-2.0, 0.0, 2.0]))
    assert isinstance(y, Tensor) and y.shape == (3,), (
        f"expected a Tensor of shape (3,), got {y!r}.")
    assert np.allclose(y.data, [0.1192, 0.5, 0.8808], atol=1e-4), (
        f"sigmoid([-2, 0, 2]): expected [0.1192, 0.5, 0.8808], got {y.data}. "
        "Hint: 1 / (1 + e^-x), computed with z = e^-|x| on each side.")
    g = sigmoid.backward(Tensor([1.0, 1.0, 2.0]))
    assert np.allclose(g.data, [0.1050, 0.25, 0.2100], atol=1e-4), (
        f"sigmoid backward with grad_output [1, 1, 2]: expected [0.1050, 0.25, 0.2100] "
        f"(grad_output * s * (1 - s)), got {g.data}.")
    x = np.array([[-1.5, 0.3], [2.0, -0.7]])
    out = np.array([[1.0, -2.0], [0.5, 3.0]])
    s = Sigmoid()
    s(Tensor(x, dtype=np.float64))
    got = s.backward(Tensor(out, dtype=np.float64))
    assert got.dtype == np.float64, (
        f"a float64 input and grad_output must give a float64 gradient, got {got.dtype}. "
        "Hint: return Tensor(grad, dtype=grad.dtype).")
    want = numerical_gradient(Sigmoid, x, out)
    assert np.allclose(got.data, want, atol=1e-6), (
        "sigmoid backward disagrees with the numerical gradient: "
        f"expected {want}, got {got.data}.")

test_activations_sigmoid()
### BEGIN HIDDEN TESTS
_x = Tensor([-1000.0, -100.0, 0.0, 100.0, 1000.0])
try:
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        _y = Sigmoid()(_x)
except FloatingPointError as _e:
    raise AssertionError(f"sigmoid of +-1000 overflowed ({_e}): compute it with z = e^-|x|") from None
assert np.all(np.isfinite(_y.data)) and np.allclose(_y.data, [0, 0, 0.5, 1, 1]), (
    "sigmoid(-1000) must be 0 and sigmoid(1000) must be 1, with no nan or inf")
assert _y.dtype == np.float32, "float32 in, float32 out"
_a = np.random.default_rng(4).standard_normal((2, 3, 2)) * 3
_s = Sigmoid()
_y = _s(Tensor(_a, dtype=np.float64))
assert _y.dtype == np.float64 and np.allclose(_y.data, 1 / (1 + np.exp(-_a)), atol=1e-12), (
    "sigmoid of a float64 (2, 3, 2) Tensor: float64, 1 / (1 + e^-x) everywhere")
_g = np.random.default_rng(5).standard_normal((2, 3, 2))
assert np.allclose(_s.backward(Tensor(_g, dtype=np.float64)).data, numerical_gradient(Sigmoid, _a, _g), atol=1e-6), (
    "sigmoid backward on a (2, 3, 2) batch disagrees with the numerical gradient")
_x = Tensor([-3.0, 3.0])
Sigmoid()(_x)
assert np.array_equal(_x.data, [-3, 3]), "sigmoid must not change its input"
_check_activation(Sigmoid, lambda x: 0.5 * (1 + np.tanh(x / 2)),
                  lambda x: 0.25 * (1 - np.tanh(x / 2) ** 2))
### END HIDDEN TESTS

# %% [markdown]
# ## Tanh
#
# $$\tanh(x) = \frac{e^{x} - e^{-x}}{e^{x} + e^{-x}} = 2\sigma(2x) - 1 \in (-1, 1)
# \qquad \tanh'(x) = 1 - \tanh^2(x)$$
#
# ```
# tanh(0) = 0      tanh'(0) = 1
# tanh(1) = 0.7616 tanh'(1) = 1 - 0.7616² = 0.4200
# ```
#
# `np.tanh` is already stable for any input. Like the sigmoid, the derivative needs only the
# output: save `tanh(x)`, not `x`.

# %%
#| export
class Tanh(Activation):
    """tanh(x), elementwise."""

    def forward(self, x):
        # TODO: compute tanh(x), save it in self.output, return it through x._result,
        #       op "tanh".
        ### BEGIN SOLUTION
        self.output = np.tanh(x.data)
        return x._result(self.output, "tanh", x)
        ### END SOLUTION

    def backward(self, grad_output):
        # TODO: the chain rule with tanh'(x) = 1 - tanh(x)^2, from the saved output.
        ### BEGIN SOLUTION
        t = self.output
        grad = grad_output.data * (1 - t ** 2)
        return Tensor(grad, dtype=grad.dtype)
        ### END SOLUTION

# %%
#| test: activations_tanh (1 point)
def test_activations_tanh():
    tanh = Tanh()
    y = tanh(Tensor([-1.0, 0.0, 1.0]))
    shown, want = (y.data if isinstance(y, Tensor) else y), [-0.7616, 0, 0.7616]
    assert isinstance(y, Tensor) and np.allclose(y.data, want, atol=1e-4), (
        f"tanh([-1, 0, 1]): expected {want}, got {shown}.")
    g = tanh.backward(Tensor([1.0, 1.0, 1.0]))
    assert np.allclose(g.data, [0.42, 1.0, 0.42], atol=1e-4), (
        f"tanh backward at [-1, 0, 1] with grad_output 1: expected [0.42, 1, 0.42] "
        f"(1 - tanh(x)^2), got {g.data}.")
    x, out = np.array([0.5, -2.0, 1.5]), np.array([2.0, -1.0, 0.5])
    t = Tanh()
    t(Tensor(x, dtype=np.float64))
    got = t.backward(Tensor(out, dtype=np.float64))
    want = numerical_gradient(Tanh, x, out)
    assert got.dtype == np.float64 and np.allclose(got.data, want, atol=1e-6), (
        "tanh backward disagrees with the numerical gradient: "
        f"expected {want} (float64), "
        f"got {got.data} ({got.dtype}).")

test_activations_tanh()
### BEGIN HIDDEN TESTS
_t = Tanh()
_y = _t(Tensor([-1000.0, 1000.0]))
assert np.allclose(_y.data, [-1, 1]) and _y.dtype == np.float32, "tanh(+-1000) is +-1, float32 in, float32 out"
assert np.allclose(_t.backward(Tensor([1.0, 1.0])).data, [0, 0]), "tanh is flat at +-1000: a zero gradient"
_a = np.random.default_rng(6).standard_normal((3, 2, 2))
_g = np.random.default_rng(7).standard_normal((3, 2, 2))
_t = Tanh()
assert _t(Tensor(_a, dtype=np.float64)).shape == (3, 2, 2), "tanh keeps the shape"
assert np.allclose(_t.backward(Tensor(_g, dtype=np.float64)).data, numerical_gradient(Tanh, _a, _g), atol=1e-6), (
    "tanh backward on a (3, 2, 2) batch disagrees with the numerical gradient")
assert _t.backward(Tensor(_g)).shape == (3, 2, 2), "the gradient is shaped like the input"
_check_activation(Tanh, np.tanh, lambda x: 1 - np.tanh(x) ** 2)
### END HIDDEN TESTS

# %% [markdown]
# ## GELU
#
# Transformers (our GPT in module 14) use GELU, a smooth ReLU: $\text{GELU}(x) = x \cdot \Phi(x)$,
# with $\Phi$ the standard normal distribution function. It lets a little negative signal
# through and has no corner at 0. $\Phi$ needs the `erf` function, which NumPy lacks, so we
# use the **tanh approximation** that GPT-2 used; it differs from the exact GELU by less than
# $10^{-3}$, and it is what PyTorch computes with `GELU(approximate="tanh")`
# (PyTorch's default, `approximate="none"`, is the exact erf form):
#
# $$\text{GELU}(x) = \tfrac12\, x\,\bigl(1 + \tanh(u)\bigr), \qquad
# u = c\,(x + a x^3), \quad c = \sqrt{2/\pi} \approx 0.7979, \quad a = 0.044715$$
#
# ```
# GELU(0) = 0     GELU(1) = 0.8412     GELU(-1) = -0.1588     GELU(2) = 1.9546
# ```
#
# **The derivative**, with $t = \tanh(u)$, by the product rule on $\tfrac12 x \cdot (1 + t)$
# and the chain rule through $t$:
#
# $$\text{GELU}'(x) = \underbrace{\tfrac12 (1 + t)}_{\text{d/dx of } x}
# + \tfrac12\, x \,\underbrace{(1 - t^2)}_{\tanh'}\, \underbrace{c\,(1 + 3 a x^2)}_{du/dx}$$
#
# At $x = 0$: $t = 0$, so $\text{GELU}'(0) = \tfrac12$. Far right, $t \to 1$: slope 1, like
# ReLU. Far left, $t \to -1$: slope 0. Forward saves the input (and may save $t$ too).
#
# Mind the constant: `np.sqrt(2 / np.pi)` is a `np.float64` number and would make a float32
# input's output float64. `math.sqrt(2 / math.pi)` is a Python float and does not.

# %%
#| export
class GELU(Activation):
    """GELU with the tanh approximation (PyTorch: `GELU(approximate="tanh")`):
    ½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))."""

    def forward(self, x):
        # TODO: compute 0.5 * x * (1 + tanh(c * (x + a * x^3))) with c = sqrt(2 / pi) and
        #       a = 0.044715; save the input in self.input (and tanh(u) in self.t if
        #       you like); return it through x._result, op "gelu".
        ### BEGIN SOLUTION
        c, a = math.sqrt(2 / math.pi), 0.044715
        self.input = x.data
        self.t = np.tanh(c * (x.data + a * x.data * x.data * x.data))
        out = 0.5 * x.data * (1 + self.t)
        return x._result(out, "gelu", x)
        ### END SOLUTION

    def backward(self, grad_output):
        # TODO: the chain rule with
        #       GELU'(x) = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2).
        ### BEGIN SOLUTION
        c, a = math.sqrt(2 / math.pi), 0.044715
        x, t = self.input, self.t
        slope = 0.5 * (1 + t) + 0.5 * x * (1 - t ** 2) * c * (1 + 3 * a * x ** 2)
        grad = grad_output.data * slope
        return Tensor(grad, dtype=grad.dtype)
        ### END SOLUTION

# %%
#| test: activations_gelu (2 points)
def test_activations_gelu():
    gelu = GELU()
    y = gelu(Tensor([-1.0, 0.0, 1.0, 2.0]))
    want = [-0.1588, 0, 0.8412, 1.9546]
    assert isinstance(y, Tensor) and np.allclose(y.data, want, atol=1e-4), (
        f"GELU([-1, 0, 1, 2]): expected {want}, got "
        f"{y.data if isinstance(y, Tensor) else y}. "
        "Hint: 0.5 x (1 + tanh(c (x + 0.044715 x^3))).")
    g = gelu.backward(Tensor([1.0, 1.0, 1.0, 1.0]))
    assert isinstance(g, Tensor) and g.shape == (4,) and abs(g.data[1] - 0.5) < 1e-6, (
        f"GELU'(0) should be 0.5, got {g.data[1] if isinstance(g, Tensor) else g}. "
        "Hint: at x = 0, t = 0 and only 0.5 (1 + t) remains.")
    x, out = np.array([-1.5, -0.3, 0.4, 2.5]), np.array([1.0, 2.0, -1.0, 0.5])
    gl = GELU()
    gl(Tensor(x, dtype=np.float64))
    got = gl.backward(Tensor(out, dtype=np.float64))
    want = numerical_gradient(GELU, x, out)
    assert got.dtype == np.float64 and np.allclose(got.data, want, atol=1e-6), (
        "GELU backward disagrees with the numerical gradient: "
        f"expected {want} (float64), got {got.data} ({got.dtype}). "
        "Hint: product rule, then the chain rule through tanh.")

test_activations_gelu()
### BEGIN HIDDEN TESTS
_gelu = GELU()
_y = _gelu(Tensor([[-1.0, 0.5], [3.0, -2.0]]))
assert _y.dtype == np.float32, (
    f"float32 in must give float32 out, got {_y.dtype}: use math.sqrt, not np.sqrt, for the constant")
assert _gelu.backward(Tensor(np.ones((2, 2)))).dtype == np.float32, "float32 in, float32 gradient out"
_y = GELU()(Tensor([-10.0, 10.0]))
assert np.allclose(_y.data, [0, 10], atol=1e-5), "GELU is ~0 far left and ~x far right"
_a = np.random.default_rng(8).standard_normal((2, 2, 3)) * 2
_g = np.random.default_rng(9).standard_normal((2, 2, 3))
_gelu = GELU()
_gelu(Tensor(_a, dtype=np.float64))
assert np.allclose(_gelu.backward(Tensor(_g, dtype=np.float64)).data, numerical_gradient(GELU, _a, _g), atol=1e-6), (
    "GELU backward on a (2, 2, 3) batch disagrees with the numerical gradient: mind c (1 + 3 a x^2)")
_x = Tensor([-1.0, 1.0])
GELU()(_x)
assert np.array_equal(_x.data, [-1, 1]), "GELU must not change its input"
_c, _k = math.sqrt(2 / math.pi), 0.044715
_check_activation(
    GELU, lambda x: 0.5 * x * (1 + np.tanh(_c * (x + _k * x ** 3))),
    lambda x: (0.5 * (1 + np.tanh(_c * (x + _k * x ** 3)))
               + 0.5 * x * (1 - np.tanh(_c * (x + _k * x ** 3)) ** 2) * _c * (1 + 3 * _k * x ** 2)))
### END HIDDEN TESTS

# %% [markdown]
# ## Softmax
#
# A classifier ends with one score per class, any real numbers ("logits"). Softmax turns
# them into probabilities: positive, summing to 1, larger score, larger probability.
#
# $$\text{softmax}(x)_i = \frac{e^{x_i}}{\sum_j e^{x_j}}$$
#
# ```
# x = [1, 2, 3]:  e^x = [2.718, 7.389, 20.086], sum = 30.193
#                 softmax = [0.0900, 0.2447, 0.6652]
# ```
#
# It works along **one axis**, `dim`: for a batch of shape `(N, C)`, each of the N rows is
# one sample's C scores and becomes one probability distribution (`dim=-1`, the default).
# Use `keepdims=True` in the sums so that `(N, C) / (N, 1)` broadcasts row by row. Attention
# (module 13) applies softmax over the last axis of a `(B, heads, T, T)` Tensor.
#
# **Stability.** $e^{1000}$ overflows, and `inf / inf` is `nan`. But softmax does not change
# when you add the same number to every score ($e^{x_i - m} / \sum_j e^{x_j - m}$: the
# $e^{-m}$ cancels). Subtract each row's maximum first: every exponent is then $\le 0$, every
# $e^{\dots} \le 1$, the largest is exactly 1, and the sum is at least 1, so nothing
# overflows and nothing divides by 0, for any input, `+1000` or `-1000`. (A score of `-inf`,
# which attention uses to mask, simply gets probability 0.)

# %%
x = np.array([1000.0, 1001.0, 1002.0], dtype=np.float32)
with np.errstate(over="ignore", invalid="ignore"):
    print("naive:  ", np.exp(x) / np.exp(x).sum())        # [nan nan nan]
shifted = np.exp(x - x.max())
print("shifted:", shifted / shifted.sum())   # the [1, 2, 3] answer: [0.09 0.24 0.67]

# %% [markdown]
# ### Softmax backward
#
# Softmax is *not* elementwise: every output $s_i$ depends on every input $x_j$ of its row:
#
# $$\frac{\partial s_i}{\partial x_j} = s_i\,(\delta_{ij} - s_j)
# \qquad (\delta_{ij} = 1 \text{ if } i = j, \text{ else } 0)$$
#
# The chain rule sums over all the outputs an input affects:
#
# $$\frac{\partial L}{\partial x_j} = \sum_i g_i\, s_i (\delta_{ij} - s_j)
# = s_j\, g_j - s_j \sum_i g_i s_i = s_j \Bigl(g_j - \sum_i g_i s_i\Bigr)$$
#
# In code, for every row at once: `s * (g - (g * s).sum(axis=dim, keepdims=True))`. The sum
# runs over the same axis as the softmax, one number per row, never over the whole batch.
#
# ```
# x = [0, ln 3]:  e^x = [1, 3], s = [0.25, 0.75]
# g = [1, 0]:     sum(g * s) = 0.25
#                 grad = s * (g - 0.25) = [0.25 · 0.75, 0.75 · (-0.25)] = [0.1875, -0.1875]
# ```
#
# A check you can do in your head: with `g` all ones, `sum(g * s) = 1` and the gradient is 0.
# Raising every score by the same amount leaves softmax unchanged, so no direction of that
# kind can change the loss.

# %%
#| export
class Softmax(Activation):
    """exp(xᵢ) / Σⱼ exp(xⱼ) along axis `dim`, computed without overflow."""

    def __init__(self, dim=-1):
        self.dim = dim

    def __repr__(self):
        return f"Softmax(dim={self.dim})"

    def forward(self, x):
        # TODO: subtract the maximum along self.dim, exponentiate, divide by the sum along
        #       self.dim; save the result in self.output; return it through x._result
        #       with op "softmax" and save dim=self.dim.
        ### BEGIN SOLUTION
        shifted = x.data - x.data.max(axis=self.dim, keepdims=True)   # every exponent <= 0
        e = np.exp(shifted)
        self.output = e / e.sum(axis=self.dim, keepdims=True)
        return x._result(self.output, "softmax", x, dim=self.dim)
        ### END SOLUTION

    def backward(self, grad_output):
        # TODO: return s * (g - sum(g * s)), with the sum along self.dim (keepdims=True),
        #       s the saved output and g = grad_output.data.
        ### BEGIN SOLUTION
        s, g = self.output, grad_output.data
        grad = s * (g - (g * s).sum(axis=self.dim, keepdims=True))
        return Tensor(grad, dtype=grad.dtype)
        ### END SOLUTION

# %%
#| test: activations_softmax (2 points)
def test_activations_softmax():
    y = Softmax()(Tensor([1.0, 2.0, 3.0]))
    assert isinstance(y, Tensor) and y.shape == (3,), (
        f"expected a Tensor of shape (3,), got {y!r}.")
    assert np.allclose(y.data, [0.0900, 0.2447, 0.6652], atol=1e-4), (
        f"softmax([1, 2, 3]): expected [0.0900, 0.2447, 0.6652], got {y.data}.")
    batch = Tensor([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    y = Softmax()(batch)
    assert y.shape == (2, 3) and np.allclose(y.data.sum(axis=1), [1, 1]), (
        f"softmax of a (2, 3) batch: each row must sum to 1, got row sums "
        f"{y.data.sum(axis=-1) if y.ndim == 2 else y.data}. "
        "Hint: sum along dim with keepdims=True.")
    assert np.allclose(y.data[1], [1 / 3, 1 / 3, 1 / 3]), (
        f"softmax([1, 1, 1]): expected [1/3, 1/3, 1/3], got {y.data[1]}.")
    shifted = Softmax()(Tensor([[11.0, 12.0, 13.0], [6.0, 6.0, 6.0]]))
    assert np.allclose(shifted.data, y.data, atol=1e-6), (
        "adding a constant to every score must not change softmax: expected "
        f"{y.data}, got {shifted.data}.")
    assert repr(Softmax(dim=0)) == "Softmax(dim=0)" and Softmax().dim == -1

test_activations_softmax()
### BEGIN HIDDEN TESTS
for _row in ([1000.0, 1001.0, 1002.0], [-1000.0, -1001.0, -1002.0], [1000.0, -1000.0, 0.0]):
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            _y = Softmax()(Tensor(_row))
    except FloatingPointError as _e:
        raise AssertionError(f"softmax({_row}) overflowed ({_e}): subtract the maximum first") from None
    assert np.all(np.isfinite(_y.data)) and abs(_y.data.sum() - 1) < 1e-5, (
        f"softmax({_row}) must be finite and sum to 1, got {_y.data}: subtract the maximum first")
assert np.allclose(Softmax()(Tensor([1000.0, 1001.0, 1002.0])).data, [0.0900, 0.2447, 0.6652], atol=1e-4), (
    "softmax([1000, 1001, 1002]) equals softmax([0, 1, 2])")
assert Softmax()(Tensor([[1.0, 2.0]])).dtype == np.float32, "float32 in, float32 out"
_a = np.random.default_rng(10).standard_normal((2, 3, 4))
for _dim in (0, 1, 2, -1, -2):
    _e = np.exp(_a - _a.max(axis=_dim, keepdims=True))
    _y = Softmax(dim=_dim)(Tensor(_a, dtype=np.float64))
    assert _y.shape == (2, 3, 4) and _y.dtype == np.float64
    assert np.allclose(_y.data, _e / _e.sum(axis=_dim, keepdims=True), atol=1e-12), (
        f"Softmax(dim={_dim}) of a (2, 3, 4) Tensor: normalise along axis {_dim}, not the last one")
with np.errstate(all="raise"):
    _y = Softmax()(Tensor([[0.0, -np.inf, 0.0]]))
assert np.allclose(_y.data, [[0.5, 0, 0.5]]), "a score of -inf gets probability 0"
_x = Tensor([[1.0, 2.0]])
Softmax()(_x)
assert np.array_equal(_x.data, [[1, 2]]), "softmax must not change its input"
# Every dim, over generated inputs whose rows have very different scales (a maximum taken
# over the whole Tensor instead of along dim underflows the small rows to 0 / 0).
def _softmax(x, dim):
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


for _dim in (0, 1, -1):
    _make = lambda d=_dim: Softmax(dim=d)  # noqa: E731
    _run = lambda x, d=_dim: Softmax(dim=d)(x)  # noqa: E731
    _run.__name__ = f"Softmax(dim={_dim})"
    check_against(_run, lambda x, d=_dim: _softmax(x, d), cases([(3, 5), (2, 3, 4, 6)]),
                  name=f"Softmax(dim={_dim})")
    assert_dtype_kept(_run, [(3, 5)], grad=False)
    assert_untouched(_run, Tensor(np.random.default_rng(31).standard_normal((3, 5))))
    if _engine is not None:
        check_graph(_make(), [np.random.default_rng(32).standard_normal((3, 4, 2))],
                    name=f"Softmax(dim={_dim})", backward=_engine)
### END HIDDEN TESTS

# %%
#| test: activations_softmax_backward (2 points)
def test_activations_softmax_backward():
    softmax = Softmax()
    softmax(Tensor([0.0, math.log(3.0)]))
    g = softmax.backward(Tensor([1.0, 0.0]))
    assert isinstance(g, Tensor) and g.shape == (2,), (
        f"backward should return a Tensor shaped like the input (2,), got {g!r}.")
    assert np.allclose(g.data, [0.1875, -0.1875], atol=1e-6), (
        "softmax [0.25, 0.75] with grad_output [1, 0]: expected [0.1875, -0.1875], "
        f"got {g.data}. "
        "Hint: s * (g - sum(g * s)).")
    ones = softmax.backward(Tensor([1.0, 1.0]))
    assert np.allclose(ones.data, 0, atol=1e-6), (
        "grad_output of all ones must give a zero gradient (softmax ignores a common "
        "shift), "
        f"got {ones.data}.")
    x, out = np.array([0.5, -1.0, 2.0, 0.1]), np.array([1.0, -2.0, 0.5, 3.0])
    s = Softmax()
    s(Tensor(x, dtype=np.float64))
    got = s.backward(Tensor(out, dtype=np.float64))
    want = numerical_gradient(Softmax, x, out)
    assert got.dtype == np.float64 and np.allclose(got.data, want, atol=1e-6), (
        "softmax backward disagrees with the numerical gradient: "
        f"expected {want} (float64), "
        f"got {got.data} ({got.dtype}).")

test_activations_softmax_backward()
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng(11)
_a, _g = _rng.standard_normal((3, 4)), _rng.standard_normal((3, 4))
_s = Softmax()
_s(Tensor(_a, dtype=np.float64))
assert np.allclose(_s.backward(Tensor(_g, dtype=np.float64)).data, numerical_gradient(Softmax, _a, _g), atol=1e-6), (
    "softmax backward on a (3, 4) batch: sum g * s along dim for each row separately, with keepdims=True")
_a, _g = _rng.standard_normal((2, 3, 2)), _rng.standard_normal((2, 3, 2))
for _dim in (0, 1, -1):
    _s = Softmax(dim=_dim)
    _s(Tensor(_a, dtype=np.float64))
    _got = _s.backward(Tensor(_g, dtype=np.float64))
    assert _got.shape == (2, 3, 2) and np.allclose(
        _got.data, numerical_gradient(lambda _d=_dim: Softmax(dim=_d), _a, _g), atol=1e-6), (
        f"Softmax(dim={_dim}) backward: sum along dim {_dim}")
_s = Softmax()
_s(Tensor([[1000.0, -1000.0, 999.0]]))
assert np.all(np.isfinite(_s.backward(Tensor([[1.0, 2.0, 3.0]])).data)), "a finite gradient for logits of +-1000"
# Backward along every dim over generated inputs; the incoming gradient stays as it was.
def _softmax_grad(x, g, dim):
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    s = e / e.sum(axis=dim, keepdims=True)
    return s * (g - (g * s).sum(axis=dim, keepdims=True))


for _dim in (0, 1, -1):
    def _run(x, g, d=_dim):
        softmax = Softmax(dim=d)
        softmax(x)
        return softmax.backward(g)

    _run.__name__ = f"Softmax(dim={_dim}).backward"
    # as for the elementwise ones: g - sum(g * s) cancels, so float32 on ordinary values
    _shapes = [(3, 5), (5, 3), (2, 3, 4, 6)]
    check_against(_run, lambda x, g, d=_dim: _softmax_grad(x, g, d),
                  cases(_shapes, inputs=2, dtypes=("float64",)),
                  name=f"Softmax(dim={_dim}).backward")
    check_against(_run, lambda x, g, d=_dim: _softmax_grad(x, g, d),
                  cases(_shapes, inputs=2, magnitudes=("ordinary",), dtypes=("float32",)),
                  name=f"Softmax(dim={_dim}).backward", rtol=1e-3, atol=1e-4)
    assert_dtype_kept(_run, [(3, 5), (3, 5)], grad=False)
    _s = Softmax(dim=_dim)
    _s(Tensor(np.random.default_rng(33).standard_normal((4, 3))))
    assert_untouched(_s.backward, Tensor(np.random.default_rng(34).standard_normal((4, 3))))
### END HIDDEN TESTS

# %% [markdown]
# ## Chaining: backward runs in reverse
#
# Functions compose, and so do their backwards. For `y = tanh(sigmoid(x))` the forward pass
# runs sigmoid, then tanh; the backward pass hands the gradient back through them in the
# **opposite** order, each `backward` turning the gradient of its output into the gradient
# of its input:
#
# ```
# forward:   x  --sigmoid-->  a  --tanh-->  y
# backward:  dL/dx  <--sigmoid.backward--  dL/da  <--tanh.backward--  dL/dy
# ```
#
# This works because each object saved its own input or output during forward. Two
# instances of the same class keep separate caches, so a network may use `Sigmoid` twice.
# Module 04's `Sequential` runs exactly this loop over a list of layers.

# %%
#| test: activations_chain (1 point)
def test_activations_chain():
    x = np.array([0.5, -1.0, 2.0, -0.3, 0.8])
    g = np.array([1.0, -0.5, 0.25, 2.0, 0.0])

    class Chain:
        def __init__(self, *steps):
            self.steps = steps

        def __call__(self, x):
            for step in self.steps:
                x = step(x)
            return x

    def make():
        return Chain(GELU(), Sigmoid(), Tanh(), Softmax(), Sigmoid())

    chain = make()
    chain(Tensor(x, dtype=np.float64))
    grad = Tensor(g, dtype=np.float64)
    for step in reversed(chain.steps):
        grad = step.backward(grad)
    want = numerical_gradient(make, x, g)
    assert grad.shape == x.shape and np.allclose(grad.data, want, atol=1e-6), (
        "GELU -> Sigmoid -> Tanh -> Softmax -> Sigmoid, backward in reverse: expected "
        f"the numerical gradient {want}, got {grad.data}. "
        "Hint: check each activation's test above.")

test_activations_chain()
### BEGIN HIDDEN TESTS
_a = np.random.default_rng(12).standard_normal((4, 3)).astype(np.float32)
_steps = [ReLU(), Softmax(dim=0), Tanh(), GELU()]
_x = Tensor(_a)
_h = _x
for _step in _steps:
    _h = _step(_h)
assert _h.dtype == np.float32, "a chain of activations keeps float32"
_grad = Tensor(np.ones((4, 3)))
for _step in reversed(_steps):
    _grad = _step.backward(_grad)
assert _grad.shape == (4, 3) and _grad.dtype == np.float32 and np.all(np.isfinite(_grad.data)), (
    "backward through a float32 chain: a finite float32 gradient shaped like the input")
assert np.array_equal(_x.data, _a), "a chain of activations must leave its input unchanged"
### END HIDDEN TESTS

# %% [markdown]
# ## Activations between layers
#
# Back to the problem we started from. With your `ReLU` between the two maps of the first
# example, the two layers no longer collapse into the one map `(W, b)`:

# %%
relu = ReLU()
for x in (Tensor([[1.0, 2.0]]), Tensor([[-1.0, 0.0]])):
    two_layers = relu(x @ W1 + b1) @ W2 + b2
    print(f"x = {x.data}: with ReLU {two_layers.data}, "
          f"the single linear map says {(x @ W + b).data}")

# %% [markdown]
# ## What you built, and what comes next
#
# Five activations, each a `forward` that saves what its derivative needs and a `backward`
# that applies the chain rule: ReLU and GELU for hidden layers, Sigmoid and Tanh for bounded
# outputs, Softmax for probabilities, all stable for extreme inputs and all keeping the
# input's dtype. You also have a way to check any derivative: the numerical gradient.
#
# But look at the demo above: the weights `W1, b1, W2, b2` are loose Tensors, and a network
# with ten layers would have forty of them to create, pass around and update by name.
# **Functions need to be organized into layers**: module 04 builds `Linear` layers that own
# their weights, a `Module` that finds every parameter, and `Sequential` to chain layers and
# your activations.
