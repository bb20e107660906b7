# %% [markdown]
# # Module 02: Tensor — data needs a structure
#
# Module 01 checked that your environment computes. Now we need something to compute *on*.
# A neural network is numbers arranged in shapes: a batch of 32 grey images of 28×28 pixels
# is a block of shape `(32, 28, 28)`; a layer's weights are a `(784, 128)` matrix. In this
# module you build the `Tensor`, the one data structure every later module stands on.
#
# ## The problem
#
# Python lists hold numbers, but they do not do maths with them:
#
# ```python
# >>> [1, 2, 3] + [10, 20, 30]
# [1, 2, 3, 10, 20, 30]        # concatenation, not addition
# >>> [1, 2, 3] * 2
# [1, 2, 3, 1, 2, 3]           # repetition, not scaling
# ```
#
# Doing the maths ourselves means a Python loop for every operation, a nest of three loops
# for every matrix product, and code a hundred times slower than it needs to be.
#
# NumPy arrays do the maths, fast. But an array is *only* numbers. A learning framework
# needs three more things:
#
# - **one number type.** NumPy picks `int64` for `[1, 2]` and `float64` for `[1.0]`;
#   networks compute in `float32` (see below), and it must not change behind our back.
# - **a place for gradients.** Module 07 gives every Tensor a `.grad` and asks which
#   Tensors need one: `.requires_grad`.
# - **a memory of how it was made.** To compute gradients automatically, module 07 must
#   know that `c = a @ b` came from `a` and `b` by a matrix product. An array forgets.
#
# So a `Tensor` wraps a NumPy array (`.data`) and adds exactly these. Every operation is a
# thin layer over one NumPy call: NumPy does the numeric work, the Tensor keeps the structure.

# %%
#| export
import numpy as np

# Gradient recording (module 07) is on unless switched off, e.g. by `with no_grad():`.
_grad_enabled = True


def is_grad_enabled():
    """True when operations record the computation graph for module 07's backward()."""
    return _grad_enabled


def set_grad_enabled(mode):
    """Switch graph recording on or off; returns the previous setting, to restore it."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, bool(mode)
    return previous

# %%
print([1, 2, 3] + [10, 20, 30])                        # lists concatenate
print(np.array([1, 2, 3]) + np.array([10, 20, 30]))    # arrays add, elementwise
# int64 float64: not what a network wants
print(np.array([1, 2]).dtype, np.array([1.0]).dtype)

# %% [markdown]
# ## Why float32
#
# | dtype | bytes per number | significant digits | a 1000×1000 weight matrix |
# |---|---|---|---|
# | `float64` | 8 | ~16 | 8 MB |
# | `float32` | 4 | ~7 | 4 MB |
#
# Training is noisy far above the 7th digit, so the extra precision of `float64` buys
# nothing, while it costs twice the memory and twice the memory traffic, and half as many
# numbers fit in each vector instruction. PyTorch computes in `float32` by default for the
# same reasons. So: **a Tensor stores float32, whatever you give it.** Two exceptions:
# booleans stay `bool` (masks such as the result of `t > 0`), and an explicit `dtype=` is
# honoured (module 11 keeps token ids as integers).
#
# One trap stays open after construction: a NumPy float64 *number*. NumPy 2 treats a Python
# number as "weak", so it adapts to the array; a `np.float64` is a real float64 and wins:

# %%
x = np.ones(3, dtype=np.float32)
print((x * 2.0).dtype)              # float32: a Python float adapts to the array
# float64: np.sqrt(2.0) returns a np.float64, which does not adapt
print((x * np.sqrt(2.0)).dtype)

# %% [markdown]
# That is why the Tensor has a small given helper, `_lift(other)`: it turns a number (or a
# list) into a Tensor of *our* float dtype before any arithmetic, so `t * np.sqrt(2.0)` stays
# float32, and every operand is a Tensor.
#
# ## A copy, not a view
#
# ```python
# w = np.zeros(3, dtype=np.float32)
# t = Tensor(w)
# w[0] = 5.0          # t.data[0] must still be 0.0
# ```
#
# `np.asarray(w)` would return `w` itself: the caller editing their array would silently
# edit your Tensor, and later an optimizer updating a Tensor in place would write into
# someone else's array. `np.array(w)` copies. The same holds for operations: **an operation
# never changes its inputs**; it returns a new Tensor.
#
# ## Broadcasting
#
# `t + 1` adds 1 everywhere; adding a bias of shape `(3,)` to a batch of shape `(2, 3)` adds
# it to every row. NumPy's rule: line the shapes up from the right; two sizes fit if they are
# equal or one of them is 1 (a missing axis counts as 1); the 1s stretch.
#
# | `a.shape` | `b.shape` | `(a + b).shape` | why |
# |---|---|---|---|
# | `(2, 3)` | `()` | `(2, 3)` | a number stretches everywhere |
# | `(2, 3)` | `(3,)` | `(2, 3)` | `(3,)` → `(1, 3)` → stretched over the 2 rows |
# | `(3,)` | `(2, 3)` | `(2, 3)` | the same, the other way round |
# | `(3, 1)` | `(1, 4)` | `(3, 4)` | both stretch: every pair, like a multiplication table |
# | `(2, 3)` | `(2,)` | error | 3 against 2, and neither is 1 |
#
# ```
# batch = [[1, 2, 3],     bias = [10, 20, 30]     batch + bias = [[11, 22, 33],
#          [4, 5, 6]]            (3,)                             [14, 25, 36]]
#          (2, 3)                                                 (2, 3)
# ```
#
# NumPy's operators already broadcast, in both directions. Your job is to hand them the two
# arrays and not get in the way.
#
# ## Numbers on the left: reflected operators
#
# `t - 2` calls `t.__sub__(2)`. For `2 - t` Python first tries `int.__sub__(2, t)`, which
# gives up (an int knows nothing about Tensors), and then calls **`t.__rsub__(2)`**: the
# reflected method, with the operands swapped. Inside `__rsub__`, `other` is the 2 and the
# answer is `other - self`. Addition and multiplication commute, so `__radd__` and
# `__rmul__` are given; subtraction and division do not (`2 - t` is not `t - 2`), and you
# need them as soon as module 03 writes `1 / (1 + exp(-x))`.
#
# ## Matrix multiplication: the shape rule
#
# `(m, k) @ (k, n) → (m, n)`: the inner sizes `k` must match, and they disappear.
#
# ```
# [[1, 2],     [[5],     [[1·5 + 2·6],     [[17],
#  [3, 4]]  @   [6]]  =   [3·5 + 4·6]]  =   [39]]
# (2, 2)       (2, 1)                      (2, 1)
# ```
#
# | `a.shape` | `b.shape` | `(a @ b).shape` | |
# |---|---|---|---|
# | `(2, 3)` | `(3, 4)` | `(2, 4)` | the rule |
# | `(3,)` | `(3, 4)` | `(4,)` | a 1-D left operand acts as one row |
# | `(2, 3)` | `(3,)` | `(2,)` | a 1-D right operand acts as one column |
# | `(3,)` | `(3,)` | `()` | the dot product |
# | `(5, 2, 3)` | `(3, 4)` | `(5, 2, 4)` | leading axes are a batch |
# | `(2, 3)` | `(4, 5)` | error | 3 ≠ 4 |
#
# So the inner sizes are `a`'s last axis and `b`'s second-to-last axis (its only axis when
# `b` is 1-D). `np.matmul` computes all of this, but a mismatch makes it say *"Input operand
# 1 has a mismatch in its core dimension 0, with gufunc signature (n?,k),(k,m?)->(n?,m?)
# (size 4 is different from 3)"*. Your `matmul` checks first and raises a `ValueError` a
# person can act on:
#
# ```
# ValueError: matmul: cannot multiply shapes (2, 3) and (4, 5): the inner dimensions 3 and 4 must match
# ```
#
# ## Reductions: `axis` and `keepdims`
#
# With `x = [[1, 2, 3], [4, 5, 6]]`, shape `(2, 3)`:
#
# | call | result | shape |
# |---|---|---|
# | `x.sum()` | `21` | `()` |
# | `x.sum(axis=0)` | `[5, 7, 9]` (down the columns: axis 0 disappears) | `(3,)` |
# | `x.sum(axis=1)` | `[6, 15]` | `(2,)` |
# | `x.sum(axis=1, keepdims=True)` | `[[6], [15]]` | `(2, 1)` |
# | `x.max(axis=(0, 1))` | `6` | `()` |
#
# `keepdims=True` keeps each reduced axis with size 1, so the result broadcasts back against
# `x`: `x - x.mean(axis=1, keepdims=True)` centres every row, `(2, 3) - (2, 1)`. Without it,
# `(2, 3) - (2,)` is an error. Softmax and normalisation layers depend on exactly this.
#
# ## Shapes and indexing
#
# - `reshape`: the same numbers in a new shape; `-1` means "whatever fits":
#   `(2, 3)` → `reshape(3, -1)` → `(3, 2)`. Like NumPy and PyTorch, accept both `reshape(3, 2)`
#   and `reshape((3, 2))`: with `def reshape(self, *shape)`, `shape` is `(3, 2)` in the first
#   case and `((3, 2),)` in the second.
# - `transpose`: permute the axes; with no arguments, reverse them. `t.T` is `t.transpose()`.
# - `t[...]`: anything NumPy accepts (`t[0]`, `t[:, 1]`, `t[[0, 2]]`, `t[t > 0]`), as a Tensor.
#
# ## Where gradients will arrive
#
# Every operation ends the same way:
#
# ```python
# return self._result(array, "op", *parents, **saved)
# ```
#
# `_result` (given) is the single place an operation's output is born. It wraps the array,
# and it **records**: when one of the parents requires a gradient (and recording is on, see
# below), the output remembers which operation made it and from which Tensors:
#
# ```python
# a = Tensor([1.0, 2.0], requires_grad=True)
# c = a * 3
# c.requires_grad, c._op, c._parents, c._saved    # True, "mul", (a, Tensor(3.)), {}
# ```
#
# That is all: bookkeeping, "what was computed from what", no calculus. Module 07 walks these
# records backwards from the loss and looks every `op` up in one table of derivative rules,
# so `loss.backward()` works for every operation without touching twenty methods. Because
# *every* operation passes through this one method, use exactly these names:
#
# | operation | `op` | parents | `saved` |
# |---|---|---|---|
# | `a + b`, `a - b`, `a * b`, `a / b` | `"add"`, `"sub"`, `"mul"`, `"div"` | `a, b` | — |
# | `-a` | `"neg"` | `a` | — |
# | `a ** p` | `"pow"` | `a` | `exponent=p` |
# | `a @ b` | `"matmul"` | `a, b` | — |
# | `a.sum(...)`, `a.mean(...)`, `a.max(...)` | `"sum"`, `"mean"`, `"max"` | `a` | `axis=, keepdims=` |
# | `a.reshape(...)` | `"reshape"` | `a` | `shape=` |
# | `a.transpose(...)` | `"transpose"` | `a` | `axes=` |
# | `a[key]` | `"getitem"` | `a` | `key=` |
# | `a == b`, `a < b`, ... | `"eq"`, `"lt"`, ... | `a, b` | — |
#
# Comparisons give bool Tensors, which have no gradient, so they are never recorded.
# Three more given pieces belong to this bookkeeping:
#
# - **a switch.** Evaluating a model needs no graph. `set_grad_enabled(False)` turns recording
#   off (it returns the previous setting, to restore it); module 07's `with no_grad():` uses it.
# - **`t.detach()`**: the same numbers as a new Tensor outside any graph (it shares the array,
#   as in PyTorch), for values you want to keep or print without their history.
# - **`t.backward()`**: asks module 07 for the gradients. Until you have written module 07 it
#   says so, in one line.
#
# Parents are always Tensors: `_lift` turns the `2` of `t * 2` into one.
#
# ## Your turn: the Tensor class
#
# The class below is complete except for the regions marked `TODO`. The given parts (the
# properties, `__repr__`, `_lift`, `_result` and the comparisons) show the pattern every
# operation follows; read them first. Then fill in, in order: `__init__`; the arithmetic;
# the reflected operators; `matmul`; the reductions; `reshape` and `transpose`; indexing.
# You can run the tests below as you go: the creation tests need only `__init__`.

# %%
#| export
class Tensor:
    """An n-dimensional array of numbers, float32 by default, that later modules teach to
    learn.

    `.data` is the NumPy array; `.requires_grad` and `.grad` are where module 07 works.

    >>> Tensor([[1, 2], [3, 4]]) @ Tensor([[5], [6]])
    Tensor([[17.],
            [39.]], shape=(2, 1), dtype=float32)
    """

    # `==` returns an elementwise Tensor, not a bool. Defining __eq__ makes Python set
    # __hash__ to None, and Tensors could no longer be set members or dict keys (module 07
    # keeps the Tensors it has visited in a set). Hash by identity, as PyTorch does.
    __hash__ = object.__hash__
    # Make NumPy step aside in `np.float64(2) * t` or `array - t`, so that Python calls
    # our reflected methods instead of NumPy building an array of Tensor objects.
    __array_ufunc__ = None

    def __init__(self, data, dtype=None, requires_grad=False):
        # TODO: store a copy of `data` as a NumPy array in self.data. With dtype=None the
        #       array is float32, except that booleans stay bool; an explicit dtype wins.
        ### BEGIN SOLUTION
        if isinstance(data, Tensor):
            data = data.data
        array = np.array(data, dtype=dtype)                  # np.array copies: never an alias
        if dtype is None and array.dtype != np.bool_:
            array = array.astype(np.float32, copy=False)     # ints, float64, lists -> float32
        self.data = array
        ### END SOLUTION
        self.requires_grad = bool(requires_grad)
        self.grad = None                          # module 07 stores gradients here
        # how it was made: nothing yet, a leaf
        self._op, self._parents, self._saved = None, (), {}

    # ---- given: what a Tensor looks like from outside ---------------------------------
    @property
    def shape(self):
        return self.data.shape

    @property
    def size(self):
        return self.data.size

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    def __len__(self):
        return len(self.data)

    def __bool__(self):
        # Only a one-element Tensor has a truth value, as in NumPy. Without this,
        # `if t == 0:` would fall back to len(t) and be true for any non-empty t.
        return bool(self.data)

    def item(self):
        """The single number in a one-element Tensor, as a Python float."""
        return self.data.item()

    def numpy(self):
        """The NumPy array behind this Tensor."""
        return self.data

    def __repr__(self):
        body = np.array2string(self.data, separator=", ", prefix="Tensor(")
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({body}, shape={self.shape}, dtype={self.dtype}{grad})"

    # ---- given: where every operation's result is born --------------------------------
    def _result(self, data, op, *parents, **saved):
        """Every operation builds its output here, and here the computation graph is
        recorded.

        data: the NumPy result; op: a short name ("add", "matmul", "sum", ...); parents:
        the Tensors it was computed from; saved: what a derivative rule will need (axis,
        ...). When recording is on and a parent requires a gradient, the output requires
        one too and keeps (op, parents, saved) for module 07's backward(); a bool or int
        result never does.
        """
        data = np.asarray(data)
        if any(isinstance(p, Tensor) and np.may_share_memory(data, p.data)
               for p in parents):
            data = data.copy(order="K")         # a view of an operand (reshape, ...)
        out = Tensor((), dtype=data.dtype)      # the result itself, not a copy: a fresh
        out.data = data                         # array that no operand shares
        if (_grad_enabled and data.dtype.kind == "f"
                and any(isinstance(p, Tensor) and p.requires_grad for p in parents)):
            out.requires_grad = True
            out._op, out._parents, out._saved = op, parents, saved
        return out

    def backward(self, grad=None):
        """Compute d(self)/d(leaf) for every leaf Tensor that requires a gradient, into
        its .grad (module 07's engine; `grad` is d(loss)/d(self), default 1 for a
        scalar)."""
        try:
            from tinytorch.core.autograd import backward
        except ModuleNotFoundError as error:
            if error.name not in ("tinytorch.core.autograd", "tinytorch.core",
                                  "tinytorch"):
                raise
            raise RuntimeError(
                "backward() arrives in module 07 (autograd): run `tito module start 07`, "
                "and `tito module complete 07` once its tests pass") from None
        backward(self, grad)

    def detach(self):
        """The same numbers outside the graph: requires_grad False, no history (the array
        is shared, as in PyTorch)."""
        out = Tensor((), dtype=self.dtype)          # a new leaf, with no history...
        out.data = self.data                         # ...holding the very same array
        return out

    def _lift(self, other):
        """`other` as a Tensor: a Tensor passes through; a number or a list becomes a
        Tensor of our float dtype, so that no np.float64 number turns a float32 result
        into float64."""
        if isinstance(other, Tensor):
            return other
        return Tensor(other, dtype=self.dtype if self.dtype.kind == "f" else None)

    # ---- given: comparisons, elementwise, as bool Tensors. Every operation looks like
    # this.
    def __eq__(self, other):
        other = self._lift(other)
        return self._result(self.data == other.data, "eq", self, other)

    def __ne__(self, other):
        other = self._lift(other)
        return self._result(self.data != other.data, "ne", self, other)

    def __lt__(self, other):
        other = self._lift(other)
        return self._result(self.data < other.data, "lt", self, other)

    def __le__(self, other):
        other = self._lift(other)
        return self._result(self.data <= other.data, "le", self, other)

    def __gt__(self, other):
        other = self._lift(other)
        return self._result(self.data > other.data, "gt", self, other)

    def __ge__(self, other):
        other = self._lift(other)
        return self._result(self.data >= other.data, "ge", self, other)

    # ---- arithmetic --------------------------------------------------------------------
    def __add__(self, other):
        """a + b, elementwise; shapes broadcast and `other` may be a number."""
        # TODO: lift `other` to a Tensor, add the two arrays, return the sum through
        #       _result.
        ### BEGIN SOLUTION
        other = self._lift(other)
        return self._result(self.data + other.data, "add", self, other)
        ### END SOLUTION

    def __sub__(self, other):
        """a - b, elementwise."""
        # TODO: as __add__, with op "sub". Build a new array: never change self.data.
        ### BEGIN SOLUTION
        other = self._lift(other)
        return self._result(self.data - other.data, "sub", self, other)
        ### END SOLUTION

    def __mul__(self, other):
        """a * b, elementwise (the matrix product is @)."""
        # TODO: as __add__, with op "mul".
        ### BEGIN SOLUTION
        other = self._lift(other)
        return self._result(self.data * other.data, "mul", self, other)
        ### END SOLUTION

    def __truediv__(self, other):
        """a / b, elementwise."""
        # TODO: as __add__, with op "div".
        ### BEGIN SOLUTION
        other = self._lift(other)
        return self._result(self.data / other.data, "div", self, other)
        ### END SOLUTION

    def __neg__(self):
        """-a."""
        # TODO: return the negated Tensor through _result, op "neg", with self as the
        #       parent.
        ### BEGIN SOLUTION
        return self._result(-self.data, "neg", self)
        ### END SOLUTION

    def __pow__(self, exponent):
        """aᵖ for a number p."""
        if isinstance(exponent, Tensor):
            raise TypeError("pow: the exponent must be a number, not a Tensor")
        # TODO: raise every element to `exponent`; op "pow", parent self, save
        #       exponent=exponent.
        ### BEGIN SOLUTION
        return self._result(self.data ** float(exponent), "pow", self, exponent=exponent)
        ### END SOLUTION

    def __radd__(self, other):                       # 2 + t is t + 2: addition commutes
        return self + other

    def __rmul__(self, other):                       # 2 * t is t * 2: so does mul
        return self * other

    def __rsub__(self, other):
        """`other - self`, for `2 - t`."""
        # TODO: Python calls t.__rsub__(2) for 2 - t. Compute other - self (not
        #       self - other).
        ### BEGIN SOLUTION
        return self._lift(other) - self
        ### END SOLUTION

    def __rtruediv__(self, other):
        """`other / self`, for `2 / t`."""
        # TODO: as __rsub__, for division: 2 / t is other / self.
        ### BEGIN SOLUTION
        return self._lift(other) / self
        ### END SOLUTION

    # ---- matrix product ----------------------------------------------------------------
    def matmul(self, other):
        """The matrix product a @ b, with np.matmul's rules for 1-D and batched
        operands."""
        other = self._lift(other)
        if self.ndim == 0 or other.ndim == 0:
            raise ValueError(f"matmul: cannot multiply shapes {self.shape} and "
                             f"{other.shape}: both need at least one dimension "
                             "(use * for numbers)")
        # TODO: compare the inner sizes (self's last axis; other's second-to-last axis,
        #       or its only axis if other is 1-D). If they differ, raise
        #       ValueError("matmul: cannot multiply shapes (2, 3) and (4, 5): the inner
        #       dimensions 3 and 4 must match") with the real shapes and sizes.
        #       Otherwise return the product, op "matmul".
        ### BEGIN SOLUTION
        inner_a = self.shape[-1]
        inner_b = other.shape[-2] if other.ndim >= 2 else other.shape[0]
        if inner_a != inner_b:
            raise ValueError(f"matmul: cannot multiply shapes {self.shape} and {other.shape}: "
                             f"the inner dimensions {inner_a} and {inner_b} must match")
        return self._result(np.matmul(self.data, other.data), "matmul", self, other)
        ### END SOLUTION

    def __matmul__(self, other):
        return self.matmul(other)

    # ---- reductions --------------------------------------------------------------------
    def sum(self, axis=None, keepdims=False):
        """Sum over `axis` (an int, a tuple of ints, or None for all axes)."""
        # TODO: sum the data over axis, keeping the reduced axes as size 1 if keepdims; op
        #       "sum", save axis=axis and keepdims=keepdims.
        ### BEGIN SOLUTION
        data = np.sum(self.data, axis=axis, keepdims=keepdims)
        return self._result(data, "sum", self, axis=axis, keepdims=keepdims)
        ### END SOLUTION

    def mean(self, axis=None, keepdims=False):
        """Mean over `axis` (an int, a tuple of ints, or None for all axes)."""
        # TODO: as sum, with the mean and op "mean".
        ### BEGIN SOLUTION
        data = np.mean(self.data, axis=axis, keepdims=keepdims)
        return self._result(data, "mean", self, axis=axis, keepdims=keepdims)
        ### END SOLUTION

    def max(self, axis=None, keepdims=False):
        """Maximum over `axis` (an int, a tuple of ints, or None for all axes)."""
        # TODO: as sum, with the maximum and op "max".
        ### BEGIN SOLUTION
        data = np.max(self.data, axis=axis, keepdims=keepdims)
        return self._result(data, "max", self, axis=axis, keepdims=keepdims)
        ### END SOLUTION

    # ---- shapes and indexing -----------------------------------------------------------
    def reshape(self, *shape):
        """The same numbers in a new shape: t.reshape(3, 2) or t.reshape((3, 2)); -1
        fits."""
        # TODO: accept both call styles, then reshape; op "reshape", save shape=shape.
        ### BEGIN SOLUTION
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return self._result(self.data.reshape(shape), "reshape", self, shape=shape)
        ### END SOLUTION

    def transpose(self, *axes):
        """Permute the axes: t.transpose(1, 0, 2) or t.transpose((1, 0, 2)); none:
        reverse."""
        # TODO: accept both call styles as in reshape; with no axes, use the reversed
        #       order (ndim-1, ..., 1, 0). Permute the data; op "transpose", save
        #       axes=axes.
        ### BEGIN SOLUTION
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        axes = axes or tuple(reversed(range(self.ndim)))
        return self._result(np.transpose(self.data, axes), "transpose", self, axes=axes)
        ### END SOLUTION

    @property
    def T(self):
        """The transpose, with all axes reversed: a matrix's rows become its columns."""
        return self.transpose()

    def __getitem__(self, key):
        """t[0], t[:, 1], t[[0, 2]], t[t > 0]: NumPy indexing, as a Tensor. An index
        Tensor needs an integer or bool dtype: Tensor([0, 2], dtype=np.int64)."""
        if isinstance(key, tuple):              # index Tensors inside a tuple -> arrays
            key = tuple(k.data if isinstance(k, Tensor) else k for k in key)
        elif isinstance(key, Tensor):
            key = key.data
        # TODO: index the data with key; op "getitem", save key=key.
        ### BEGIN SOLUTION
        return self._result(self.data[key], "getitem", self, key=key)
        ### END SOLUTION


# %% [markdown]
# ## Tests
#
# Each cell below checks one topic. A failing test says what it expected, what it got,
# and gives a hint. The autograder adds more checks of the same topic, so make the rule
# right, not just the example.
#
# ### Creating a Tensor
#
# Lists, numbers, arrays and Tensors all become a float32 copy; booleans stay bool.

# %%
#| test: tensor_creation (2 points)
def test_tensor_creation():
    t = Tensor([[1, 2, 3], [4, 5, 6]])
    assert isinstance(t.data, np.ndarray), (
        f"Tensor(...).data should be a NumPy array, got {type(t.data).__name__}. "
        "Hint: np.array(data).")
    assert t.shape == (2, 3) and t.size == 6 and t.ndim == 2 and len(t) == 2, (
        f"Tensor of a 2x3 nested list: expected shape (2, 3), size 6, ndim 2, len 2; "
        f"got shape {t.shape}, size {t.size}, ndim {t.ndim}.")
    assert np.array_equal(t.data, [[1, 2, 3], [4, 5, 6]]), (
        f"expected the values [[1, 2, 3], [4, 5, 6]], got {t.data}.")
    for data in ([[1, 2, 3], [4, 5, 6]], [0.5, 1.5], 7):
        got = Tensor(data).dtype
        assert got == np.float32, (
            f"Tensor({data!r}).dtype: expected float32, got {got}. "
            "Hint: with dtype=None, convert with .astype(np.float32).")
    s = Tensor(2.5)
    assert s.shape == () and s.item() == 2.5, (
        f"Tensor(2.5): expected shape () and item() 2.5, got shape {s.shape}.")
    m = Tensor([True, False])
    assert m.dtype == np.bool_, (
        f"Tensor([True, False]).dtype: expected bool (masks stay bool), got {m.dtype}.")
    assert t.requires_grad is False and t.grad is None, (
        "a new Tensor should have requires_grad False and grad None.")
    got = repr(Tensor([[1, 2]]))
    assert got == "Tensor([[1., 2.]], shape=(1, 2), dtype=float32)", (
        f"repr(Tensor([[1, 2]])): expected 'Tensor([[1., 2.]], shape=(1, 2), "
        f"dtype=float32)', got {got!r}.")

test_tensor_creation()
### BEGIN HIDDEN TESTS
assert Tensor(np.array([1.5, 2.5])).dtype == np.float32, "a float64 NumPy array must become float32"
assert Tensor(np.arange(3)).dtype == np.float32, "an int NumPy array must become float32"
assert Tensor(np.float64(2.0)).dtype == np.float32, "a np.float64 number must become float32"
assert Tensor(np.array([True, False])).dtype == np.bool_, "a bool array must stay bool"
assert Tensor(Tensor([1.0, 2.0])).dtype == np.float32
assert Tensor([1, 2], dtype=np.int64).dtype == np.int64, "an explicit dtype must be honoured"
assert Tensor(np.array([1.5]), dtype=np.float64).dtype == np.float64, "an explicit dtype must be honoured"
_w = np.zeros(3, dtype=np.float32)
_t = Tensor(_w)
_w[0] = 5.0
assert _t.data[0] == 0.0, "Tensor(array) must copy: changing the array changed the Tensor"
_t.data[1] = 7.0
assert _w[1] == 0.0, "Tensor(array) must copy: changing the Tensor changed the array"
_u = Tensor(_t)
_t.data[2] = 9.0
assert _u.data[2] == 0.0, "Tensor(tensor) must copy the other Tensor's data"
assert Tensor([[[1], [2]]]).shape == (1, 2, 1)
assert Tensor([1.0], requires_grad=True).requires_grad is True
assert repr(Tensor([1.0], requires_grad=True)) == "Tensor([1.], shape=(1,), dtype=float32, requires_grad=True)"
assert np.allclose(Tensor(np.array([[1, 2], [3, 4]])).numpy(), [[1, 2], [3, 4]])
# Every way in gives a copy, whatever the dtype: never an alias of what the caller holds.
for _label, _source, _dtype in [
        ("a float32 array", np.zeros((2, 3), np.float32), None),
        ("a float64 array, dtype=np.float64", np.zeros((2, 3)), np.float64),
        ("a float32 array, dtype=np.float32", np.zeros((3, 2), np.float32), np.float32),
        ("a bool array", np.zeros((2, 3), bool), None),
        ("an int64 array, dtype=np.int64", np.zeros(4, np.int64), np.int64)]:
    _t = Tensor(_source, dtype=_dtype)
    assert not np.shares_memory(_t.data, _source), (
        f"Tensor({_label}) shares memory with the array it was given: changing one "
        "changes the other. Copy in every case: np.array(data, dtype=dtype).")
_t64 = Tensor(np.ones(3), dtype=np.float64)
for _dtype in (None, np.float64):
    assert not np.shares_memory(Tensor(_t64, dtype=_dtype).data, _t64.data), (
        f"Tensor(tensor, dtype={_dtype}) shares the other Tensor's array: copy it.")
for _data, _dtype, _want in [([1, 2], None, np.float32), (np.float32(2.0), None, np.float32),
                             (np.arange(3, dtype=np.int32), None, np.float32),
                             ([[True], [False]], None, np.bool_),
                             (np.ones(2, np.float32), np.float64, np.float64),
                             (Tensor([1.0, 2.0]), np.float64, np.float64),
                             ([1.0, 2.0], np.int32, np.int32)]:
    _got = Tensor(_data, dtype=_dtype).dtype
    assert _got == _want, (
        f"Tensor({_data!r}, dtype={_dtype}) has dtype {_got}, expected {np.dtype(_want)}: "
        "float32 by default, bool stays bool, an explicit dtype wins.")
### END HIDDEN TESTS

# %% [markdown]
# ### Arithmetic
#
# `+ - * / ** -` elementwise, between Tensors or with a number, always float32.

# %%
#| test: tensor_arithmetic (2 points)
def test_tensor_arithmetic():
    for name, op, expected in [
        ("a + b", lambda a, b: a + b, [5, 7, 12]),
        ("b - a", lambda a, b: b - a, [3, 3, 4]),
        ("a * b", lambda a, b: a * b, [4, 10, 32]),
        ("b / a", lambda a, b: b / a, [4, 2.5, 2]),
        ("a + 1", lambda a, b: a + 1, [2, 3, 5]),
        ("a * 0.5", lambda a, b: a * 0.5, [0.5, 1, 2]),
        ("-a", lambda a, b: -a, [-1, -2, -4]),
        ("a ** 2", lambda a, b: a ** 2, [1, 4, 16]),
    ]:
        a, b = Tensor([1.0, 2.0, 4.0]), Tensor([4.0, 5.0, 8.0])
        got = op(a, b)
        assert isinstance(got, Tensor), (
            f"{name} should return a Tensor, got {type(got).__name__}. "
            "Hint: return self._result(...).")
        assert np.allclose(got.data, expected), (
            f"{name}: expected {expected}, got {got.data}.")
        assert got.dtype == np.float32, (
            f"{name}: expected dtype float32, got {got.dtype}. Hint: lift numbers with "
            "self._lift(other) so they take the Tensor's dtype.")

test_tensor_arithmetic()
### BEGIN HIDDEN TESTS
_a = Tensor([1.0, 2.0, 4.0])
for _name, _got in [("t + np.float64", _a + np.float64(1.0)), ("t - np.float64", _a - np.float64(1.0)),
                    ("t * np.float64", _a * np.float64(2.0)), ("t / np.float64", _a / np.float64(2.0)),
                    ("t ** np.float64", _a ** np.float64(2.0)), ("t * np.sqrt(2.0)", _a * np.sqrt(2.0))]:
    assert _got.dtype == np.float32, f"{_name}: a NumPy float64 number must not make the result float64"
assert np.allclose((_a * np.float64(2.0)).data, [2, 4, 8])
assert np.allclose((_a - 1).data, [0, 1, 3]) and np.allclose((_a / 4).data, [0.25, 0.5, 1])
assert np.allclose((_a ** 0.5).data, [1, np.sqrt(2), 2]) and np.allclose((_a ** -1).data, [1, 0.5, 0.25])
assert np.allclose((_a ** 3).data, [1, 8, 64])
assert (Tensor(3.0) * Tensor(2.0)).shape == () and (Tensor(3.0) * Tensor(2.0)).item() == 6.0
assert (Tensor([1.0], dtype=np.float64) * 2).dtype == np.float64, "numbers take the Tensor's own dtype"
_m = Tensor([[1.0, 2.0], [3.0, 4.0]])
assert np.allclose((_m * _m - _m / _m).data, [[0, 3], [8, 15]])
assert np.allclose((_m - _m.data).data, 0), "an array operand must work too"
assert (_m + 1) is not _m and (-_m) is not _m, "operations must return new Tensors"
assert np.allclose((Tensor([True, False]) * -10.0).data, [-10, 0]), "a bool mask times a number"
# The same operations over generated inputs: non-square shapes, tiny, huge and
# row-scaled values, float32 and float64; a float64 Tensor stays float64.
from tinytorch.testing import assert_dtype_kept, cases, check_against


def _named(name, fn):
    fn.__name__ = name
    return fn


_pairs = cases([(3, 5), (2, 3, 4, 6), (1,)], inputs=2)
for _name, _fn, _oracle in [("a + b", lambda a, b: a + b, np.add),
                            ("a - b", lambda a, b: a - b, np.subtract),
                            ("a * b", lambda a, b: a * b, np.multiply),
                            ("a / b", lambda a, b: a / b, np.divide)]:
    check_against(_named(_name, _fn), _oracle, _pairs, name=_name, tensor=Tensor)
    assert_dtype_kept(_named(_name, _fn), [(3, 5), (3, 5)], grad=False, tensor=Tensor)
_singles = cases([(3, 5), (2, 3, 4, 6)])
_positives = cases([(3, 5), (2, 3, 4, 6)], positive=True)
for _name, _fn, _oracle, _cases in [
        ("-a", lambda a: -a, np.negative, _singles),
        ("a ** 2", lambda a: a ** 2, np.square, _singles),
        ("a ** 3", lambda a: a ** 3, lambda a: a ** 3, _singles),
        ("a ** 0.5", lambda a: a ** 0.5, np.sqrt, _positives),
        ("a ** -1", lambda a: a ** -1, np.reciprocal, _positives),
        ("a + 1", lambda a: a + 1, lambda a: a + 1, _singles),
        ("a - 1.5", lambda a: a - 1.5, lambda a: a - 1.5, _singles),
        ("a * 0.5", lambda a: a * 0.5, lambda a: a * 0.5, _singles),
        ("a / 4", lambda a: a / 4, lambda a: a / 4, _singles)]:
    check_against(_named(_name, _fn), _oracle, _cases, name=_name, tensor=Tensor)
    assert_dtype_kept(_named(_name, _fn), [(3, 5)], grad=False, tensor=Tensor)
### END HIDDEN TESTS

# %% [markdown]
# ### Broadcasting
#
# The shape table above, both ways round.

# %%
#| test: tensor_broadcasting (2 points)
def test_tensor_broadcasting():
    batch = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])   # (2, 3)
    bias = Tensor([10.0, 20.0, 30.0])                    # (3,)
    out = batch + bias
    assert out.shape == (2, 3), (
        f"(2, 3) + (3,): expected shape (2, 3), got {out.shape}. "
        "Hint: NumPy's + broadcasts.")
    assert np.allclose(out.data, [[11, 22, 33], [14, 25, 36]]), (
        f"batch + bias: expected [[11, 22, 33], [14, 25, 36]], got {out.data}.")
    scaled = batch * 2
    assert np.allclose(scaled.data, [[2, 4, 6], [8, 10, 12]]), (
        f"(2, 3) * 2: expected [[2, 4, 6], [8, 10, 12]], got {scaled.data}.")

test_tensor_broadcasting()
### BEGIN HIDDEN TESTS
_col = Tensor([[1.0], [2.0], [3.0]])          # (3, 1)
_row = Tensor([[10.0, 20.0, 30.0, 40.0]])     # (1, 4)
for _name, _got, _want in [("(3, 1) + (1, 4)", _col + _row, _col.data + _row.data),
                           ("(1, 4) + (3, 1)", _row + _col, _row.data + _col.data),
                           ("(3, 1) * (1, 4)", _col * _row, _col.data * _row.data),
                           ("(3, 1) - (1, 4)", _col - _row, _col.data - _row.data),
                           ("(1, 4) / (3, 1)", _row / _col, _row.data / _col.data)]:
    assert _got.shape == (3, 4), f"{_name}: both operands stretch, the result is (3, 4)"
    assert np.allclose(_got.data, _want), f"{_name}: wrong values"
_b = Tensor([10.0, 20.0, 30.0])
_x = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
assert np.allclose((_b + _x).data, [[11, 22, 33], [14, 25, 36]]), "(3,) + (2, 3): the smaller one may be on the left"
assert np.allclose((_b - _x).data, [[9, 18, 27], [6, 15, 24]])
assert (Tensor(np.ones((2, 1, 3))) * Tensor(np.ones((4, 1)))).shape == (2, 4, 3)
try:
    _x + Tensor([1.0, 2.0])
    raise AssertionError("(2, 3) + (2,) cannot broadcast and must raise")
except ValueError:
    pass
# Both operands may stretch, on either side, in any of + - * /.
from tinytorch.testing import cases, check_against

_stretch = cases([((3, 1), (1, 4)), ((1, 4), (3, 1)), ((5,), (2, 3, 5)), ((2, 3, 5), (5,)),
                  ((4, 1, 3), (2, 1)), ((2, 1), (4, 1, 3)), ((2, 3), ())],
                 magnitudes=("ordinary", "rows"))
for _name, _fn, _oracle in [("a + b", lambda a, b: a + b, np.add),
                            ("a - b", lambda a, b: a - b, np.subtract),
                            ("a * b", lambda a, b: a * b, np.multiply),
                            ("a / b", lambda a, b: a / b, np.divide)]:
    check_against(_fn, _oracle, _stretch, name=_name, tensor=Tensor)
### END HIDDEN TESTS

# %% [markdown]
# ### Numbers on the left
#
# `2 + t`, `2 * t`, `2 - t`, `2 / t`: Python calls the reflected methods.

# %%
#| test: tensor_reflected (2 points)
def test_tensor_reflected():
    t = Tensor([1.0, 2.0, 4.0])
    for name, fn in [("2 + t", lambda: 2 + t), ("2 * t", lambda: 2 * t),
                     ("2 - t", lambda: 2 - t), ("2 / t", lambda: 2 / t)]:
        try:
            got = fn()
        except TypeError as error:
            raise AssertionError(
                f"{name} raised TypeError ({error}). Hint: Python calls "
                "t.__rsub__(2) for 2 - t and t.__rtruediv__(2) for 2 / t: define "
                "them.") from None
        assert (isinstance(got, Tensor) and got.shape == (3,)
                and got.dtype == np.float32), (
            f"{name}: expected a float32 Tensor of shape (3,), got {got!r}.")
    assert np.allclose((2 + t).data, [3, 4, 6]), (
        f"2 + t: expected [3, 4, 6], got {(2 + t).data}.")
    assert np.allclose((2 * t).data, [2, 4, 8]), (
        f"2 * t: expected [2, 4, 8], got {(2 * t).data}.")

test_tensor_reflected()
### BEGIN HIDDEN TESTS
_t = Tensor([1.0, 2.0, 4.0])
assert np.allclose((2 - _t).data, [1, 0, -2]), "2 - t is other - self, not self - other"
assert np.allclose((2 / _t).data, [2, 1, 0.5]), "2 / t is other / self, not self / other"
assert np.allclose((1 - Tensor([[0.25], [0.75]])).data, [[0.75], [0.25]])
assert np.allclose((np.float64(8.0) / _t).data, [8, 4, 2]) and (np.float64(8.0) / _t).dtype == np.float32
assert (np.float64(1.0) - _t).dtype == np.float32, "a np.float64 on the left must not make the result float64"
assert np.allclose((np.array([10.0, 10.0, 10.0]) - _t).data, [9, 8, 6])
assert np.allclose((1 / (1 + _t)).data, [0.5, 1 / 3, 0.2])
# Numbers on the left over generated inputs, float32 and float64.
from tinytorch.testing import assert_dtype_kept, cases, check_against

for _name, _fn, _oracle, _positive in [
        ("2 - a", lambda a: 2 - a, lambda a: 2 - a, False),
        ("-1.5 - a", lambda a: -1.5 - a, lambda a: -1.5 - a, False),
        ("2 / a", lambda a: 2 / a, lambda a: 2 / a, True),
        ("0.5 / a", lambda a: 0.5 / a, lambda a: 0.5 / a, True),
        ("3 + a", lambda a: 3 + a, lambda a: 3 + a, False),
        ("3 * a", lambda a: 3 * a, lambda a: 3 * a, False),
        ("np.float64(2) - a", lambda a: np.float64(2) - a, lambda a: 2 - a, False),
        ("np.float64(2) / a", lambda a: np.float64(2) / a, lambda a: 2 / a, True)]:
    _fn.__name__ = _name
    check_against(_fn, _oracle, cases([(3, 5), (2, 3, 4)], positive=_positive),
                  name=_name, tensor=Tensor)
    assert_dtype_kept(_fn, [(3, 5)], grad=False, tensor=Tensor)
### END HIDDEN TESTS

# %% [markdown]
# ### Matrix multiplication
#
# The shape rule, 1-D and batched operands, and a clear error.

# %%
#| test: tensor_matmul (3 points)
def test_tensor_matmul():
    a = Tensor([[1.0, 2.0], [3.0, 4.0]])
    b = Tensor([[5.0], [6.0]])
    out = a @ b
    assert isinstance(out, Tensor) and out.shape == (2, 1), (
        f"(2, 2) @ (2, 1): expected a Tensor of shape (2, 1), got {out!r}.")
    assert np.allclose(out.data, [[17], [39]]), (
        f"[[1, 2], [3, 4]] @ [[5], [6]]: expected [[17], [39]], got {out.data}. "
        "Hint: np.matmul.")
    assert np.allclose(a.matmul(b).data, [[17], [39]]), "a.matmul(b) should equal a @ b."
    shape = (Tensor(np.ones((2, 3))) @ Tensor(np.ones((3, 4)))).shape
    assert shape == (2, 4), f"(2, 3) @ (3, 4): expected shape (2, 4), got {shape}."
    try:
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))
    except ValueError:
        pass
    else:
        raise AssertionError("(2, 3) @ (4, 5) should raise ValueError: 3 and 4 differ.")

test_tensor_matmul()
### BEGIN HIDDEN TESTS
try:
    Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))
    raise AssertionError("(2, 3) @ (4, 5) must raise")
except ValueError as _e:
    _msg = str(_e)
    assert "(2, 3)" in _msg and "(4, 5)" in _msg, "the matmul error must name both shapes"
    assert "3" in _msg and "4" in _msg and "inner" in _msg, "the matmul error must state the inner-dimension rule"
for _sa, _sb in [((3,), (4,)), ((5, 2, 3), (4, 2)), ((2, 3), (2,))]:
    try:
        Tensor(np.ones(_sa)) @ Tensor(np.ones(_sb))
        raise AssertionError(f"{_sa} @ {_sb} must raise")
    except ValueError as _e:
        assert str(_sa) in str(_e) and str(_sb) in str(_e), "the matmul error must name both shapes"
_rng = np.random.default_rng(0)
for _sa, _sb in [((3,), (3, 4)), ((2, 3), (3,)), ((3,), (3,)), ((5, 2, 3), (3, 4)), ((5, 2, 3), (5, 3, 1))]:
    _x, _y = _rng.standard_normal(_sa), _rng.standard_normal(_sb)
    _got = Tensor(_x) @ Tensor(_y)
    assert _got.shape == np.matmul(_x, _y).shape, f"{_sa} @ {_sb}: wrong shape"
    assert np.allclose(_got.data, np.matmul(_x, _y), atol=1e-5), f"{_sa} @ {_sb}: wrong values"
    assert _got.dtype == np.float32
assert np.allclose((Tensor([[1.0, 2.0]]) @ [[1.0], [1.0]]).data, [[3.0]]), "a list operand must work too"
# The product over generated operands: 1-D on either side, batched, non-square.
from tinytorch.testing import assert_dtype_kept, cases, check_against

_products = cases([((4, 3), (3, 5)), ((3,), (3, 4)), ((2, 3), (3,)), ((7,), (7,)),
                   ((5, 2, 3), (3, 4)), ((5, 2, 3), (5, 3, 1)), ((2, 3), (2, 3, 4)),
                   ((1, 6), (6, 1))])
check_against(lambda a, b: a @ b, np.matmul, _products, name="a @ b", tensor=Tensor)
check_against(lambda a, b: a.matmul(b), np.matmul, _products[:8], name="a.matmul(b)",
              tensor=Tensor)
assert_dtype_kept(lambda a, b: a @ b, [(4, 3), (3, 5)], grad=False, tensor=Tensor)
for _sa, _sb in [((5, 2, 3), (5, 4, 1)), ((3,), (2, 3)), ((4, 2), (4,)), ((1, 3), (1, 3))]:
    try:
        Tensor(np.ones(_sa)) @ Tensor(np.ones(_sb))
    except ValueError as _e:
        assert str(_sa) in str(_e) and str(_sb) in str(_e), (
            f"{_sa} @ {_sb}: the ValueError should name both shapes, got {_e}")
    else:
        raise AssertionError(f"{_sa} @ {_sb} should raise ValueError: the inner sizes differ")
### END HIDDEN TESTS

# %% [markdown]
# ### Reductions
#
# `sum`, `mean`, `max` over all axes, one axis or several, with and without `keepdims`.

# %%
#| test: tensor_reductions (3 points)
def test_tensor_reductions():
    x = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    for name, got, expected, shape in [
        ("x.sum()", x.sum(), 21, ()),
        ("x.sum(axis=0)", x.sum(axis=0), [5, 7, 9], (3,)),
        ("x.mean()", x.mean(), 3.5, ()),
        ("x.max()", x.max(), 6, ()),
    ]:
        assert isinstance(got, Tensor), (
            f"{name} should return a Tensor, got {type(got).__name__}.")
        assert got.shape == shape and np.allclose(got.data, expected), (
            f"{name} with x = [[1, 2, 3], [4, 5, 6]]: expected {expected} of shape "
            f"{shape}, got {got.data} of shape {got.shape}. "
            "Hint: np.sum/np.mean/np.max with axis.")

test_tensor_reductions()
### BEGIN HIDDEN TESTS
_x = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
assert _x.sum(axis=1, keepdims=True).shape == (2, 1), "keepdims=True keeps the reduced axis as size 1"
assert np.allclose(_x.sum(axis=1, keepdims=True).data, [[6], [15]])
assert _x.sum(keepdims=True).shape == (1, 1)
assert _x.mean(axis=0, keepdims=True).shape == (1, 3) and _x.max(axis=1, keepdims=True).shape == (2, 1)
assert np.allclose(_x.mean(axis=0).data, [2.5, 3.5, 4.5]), "mean over axis 0 divides by 2, not by 6"
assert np.allclose(_x.mean(axis=1).data, [2, 5]), "mean over axis 1 divides by 3, not by 6"
assert np.allclose(_x.max(axis=0).data, [4, 5, 6]) and np.allclose(_x.max(axis=1).data, [3, 6])
assert np.allclose(_x.sum(axis=-1).data, [6, 15]), "a negative axis counts from the end"
assert _x.sum(axis=(0, 1)).shape == () and _x.sum(axis=(0, 1)).item() == 21, "axis may be a tuple"
assert np.allclose((_x - _x.mean(axis=1, keepdims=True)).data, [[-1, 0, 1], [-1, 0, 1]])
_c = Tensor(np.arange(24).reshape(2, 3, 4))
assert np.allclose(_c.sum(axis=(0, 2)).data, np.arange(24).reshape(2, 3, 4).sum(axis=(0, 2)))
assert np.allclose(_c.mean(axis=(0, 2), keepdims=True).data, np.arange(24).reshape(2, 3, 4).mean(axis=(0, 2), keepdims=True))
assert _c.max(axis=(1, 2), keepdims=True).shape == (2, 1, 1)
for _r in (_x.sum(), _x.mean(axis=0), _x.max(axis=1)):
    assert _r.dtype == np.float32, "reductions keep float32"
# Every reduction, over every kind of axis, with and without keepdims, on generated
# non-square inputs whose rows have different scales (a mean over the wrong axis shows).
from tinytorch.testing import assert_dtype_kept, cases, check_against

_blocks = cases([(2, 3, 4), (3, 5, 2, 2)], magnitudes=("ordinary", "huge", "rows"))
for _method, _oracle in [("sum", np.sum), ("mean", np.mean), ("max", np.max)]:
    for _axis in (None, 0, 1, -1, (0, 2), (1, -1)):
        for _keep in (False, True):
            _call = f"x.{_method}(axis={_axis}, keepdims={_keep})"
            check_against(
                lambda a, m=_method, ax=_axis, k=_keep: getattr(a, m)(axis=ax, keepdims=k),
                lambda a, o=_oracle, ax=_axis, k=_keep: o(a, axis=ax, keepdims=k),
                _blocks, name=_call, tensor=Tensor)
    _fn = lambda a, m=_method: getattr(a, m)(axis=1)  # noqa: E731
    _fn.__name__ = f"x.{_method}(axis=1)"
    assert_dtype_kept(_fn, [(3, 4, 2)], grad=False, tensor=Tensor)
### END HIDDEN TESTS

# %% [markdown]
# ### Shapes
#
# `reshape` in both call styles and with `-1`; `transpose` and `.T`.

# %%
#| test: tensor_shape_ops (2 points)
def test_tensor_shape_ops():
    t = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    r = t.reshape(3, 2)
    assert isinstance(r, Tensor) and r.shape == (3, 2), (
        f"t.reshape(3, 2) of a (2, 3) Tensor: expected shape (3, 2), got {r!r}.")
    assert np.allclose(r.data, [[1, 2], [3, 4], [5, 6]]), (
        "reshape keeps the order of the numbers: expected [[1, 2], [3, 4], [5, 6]], "
        f"got {r.data}.")
    tt = t.transpose()
    assert tt.shape == (3, 2) and np.allclose(tt.data, [[1, 4], [2, 5], [3, 6]]), (
        f"t.transpose() of [[1, 2, 3], [4, 5, 6]]: expected [[1, 4], [2, 5], [3, 6]], "
        f"got {tt.data}. Hint: with no axes, reverse them.")
    assert np.allclose(t.T.data, tt.data), "t.T should equal t.transpose()."

test_tensor_shape_ops()
### BEGIN HIDDEN TESTS
_t = Tensor(np.arange(6))
assert _t.reshape((2, 3)).shape == (2, 3), "reshape((2, 3)) with a tuple must work too"
assert _t.reshape([3, 2]).shape == (3, 2), "reshape([3, 2]) with a list must work too"
assert _t.reshape(3, -1).shape == (3, 2) and _t.reshape(-1).shape == (6,), "-1 means: whatever fits"
assert _t.reshape((-1, 1)).shape == (6, 1)
assert _t.shape == (6,), "reshape must not change the original"
_a = np.arange(24.0).reshape(2, 3, 4)
assert np.array_equal(Tensor(_a).transpose(1, 0, 2).data, _a.transpose(1, 0, 2))
assert np.array_equal(Tensor(_a).transpose((2, 0, 1)).data, _a.transpose(2, 0, 1)), "transpose((2, 0, 1)) must work too"
assert Tensor(_a).T.shape == (4, 3, 2), ".T reverses all the axes"
assert Tensor(_a).transpose().shape == (4, 3, 2)
assert Tensor([1.0, 2.0]).T.shape == (2,)
assert Tensor(_a).reshape(4, 6).dtype == np.float32 and Tensor(_a).T.dtype == np.float32
# reshape and transpose over generated inputs, every call style, float32 and float64.
from tinytorch.testing import assert_dtype_kept, cases, check_against

_blocks = cases([(2, 3, 4), (4, 3, 2)], magnitudes=("ordinary",))
for _name, _fn, _oracle in [
        ("x.reshape(4, -1)", lambda a: a.reshape(4, -1), lambda a: a.reshape(4, -1)),
        ("x.reshape((-1,))", lambda a: a.reshape((-1,)), lambda a: a.reshape(-1)),
        ("x.reshape([6, 4])", lambda a: a.reshape([6, 4]), lambda a: a.reshape(6, 4)),
        ("x.transpose()", lambda a: a.transpose(), lambda a: a.transpose()),
        ("x.T", lambda a: a.T, lambda a: a.T),
        ("x.transpose(1, 0, 2)", lambda a: a.transpose(1, 0, 2),
         lambda a: a.transpose(1, 0, 2)),
        ("x.transpose((2, 0, 1))", lambda a: a.transpose((2, 0, 1)),
         lambda a: a.transpose(2, 0, 1))]:
    _fn.__name__ = _name
    check_against(_fn, _oracle, _blocks, name=_name, tensor=Tensor)
    assert_dtype_kept(_fn, [(2, 3, 4)], grad=False, tensor=Tensor)
### END HIDDEN TESTS

# %% [markdown]
# ### Indexing and comparisons
#
# Anything NumPy's indexing accepts, and comparisons that give bool Tensors.

# %%
#| test: tensor_indexing (2 points)
def test_tensor_indexing():
    t = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    for name, got, expected in [("t[0]", t[0], [1, 2, 3]), ("t[:, 1]", t[:, 1], [2, 5]),
                                ("t[1, 2]", t[1, 2], 6),
                                ("t[:, 1:]", t[:, 1:], [[2, 3], [5, 6]])]:
        assert isinstance(got, Tensor), (
            f"{name} should return a Tensor, got {type(got).__name__}.")
        assert np.allclose(got.data, expected), (
            f"{name}: expected {expected}, got {got.data}.")
    mask = t > 2.5
    want = [[False, False, True], [True, True, True]]
    assert mask.dtype == np.bool_ and mask.data.tolist() == want, (
        f"t > 2.5: expected a bool Tensor [[F, F, T], [T, T, T]], got {mask!r}.")

test_tensor_indexing()
### BEGIN HIDDEN TESTS
_t = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
assert np.allclose(_t[[1, 0]].data, [[4, 5, 6], [1, 2, 3]]), "a list of indices (fancy indexing)"
assert np.allclose(_t[np.array([0, 0])].data, [[1, 2, 3], [1, 2, 3]])
assert np.allclose(_t[Tensor([1], dtype=np.int64)].data, [[4, 5, 6]]), "an int Tensor as the index"
assert np.allclose(_t[_t > 2.5].data, [3, 4, 5, 6]), "a bool Tensor mask"
assert np.allclose(_t[:, Tensor([2, 0], dtype=np.int64)].data, [[3, 1], [6, 4]])
assert _t[1, 2].shape == () and _t[..., 0].shape == (2,)
_s = _t[0]
_s.data[0] = 100.0
assert _t.data[0, 0] == 1.0, "an indexed Tensor must not share memory with the original"
assert (_t == 2.0).data.tolist() == [[False, True, False], [False, False, False]]
assert (_t != _t).data.sum() == 0 and (_t <= 3).data.sum() == 3 and (_t >= 3).data.sum() == 4
assert (_t < Tensor([2.0, 5.0, 9.0])).data.tolist() == [[True, True, True], [False, False, True]]
_a, _b = Tensor([1.0]), Tensor([1.0])
assert len({_a, _b}) == 2 and {_a: 1}[_a] == 1, "Tensors must stay usable in sets and as dict keys"
# NumPy's indexing over generated non-square inputs, float32 and float64.
from tinytorch.testing import assert_dtype_kept, cases, check_against

_grid = cases([(4, 6), (3, 5)], magnitudes=("ordinary",))
for _name, _fn, _oracle in [
        ("x[1]", lambda a: a[1], lambda a: a[1]),
        ("x[:, 1:]", lambda a: a[:, 1:], lambda a: a[:, 1:]),
        ("x[[0, 0, 2]]", lambda a: a[[0, 0, 2]], lambda a: a[[0, 0, 2]]),
        ("x[..., -1]", lambda a: a[..., -1], lambda a: a[..., -1]),
        ("x[Tensor([2, 0])]", lambda a: a[Tensor([2, 0], dtype=np.int64)],
         lambda a: a[[2, 0]]),
        ("x[x > 0]", lambda a: a[a > 0], lambda a: a[a > 0])]:
    _fn.__name__ = _name
    check_against(_fn, _oracle, _grid, name=_name, tensor=Tensor)
    assert_dtype_kept(_fn, [(4, 6)], grad=False, tensor=Tensor)
### END HIDDEN TESTS

# %% [markdown]
# ### Operations never change their inputs

# %%
#| test: tensor_no_mutation (1 point)
def test_tensor_no_mutation():
    a = Tensor([1.0, 2.0, 3.0])
    b = Tensor([4.0, 5.0, 6.0])
    a + b
    assert np.array_equal(a.data, [1, 2, 3]) and np.array_equal(b.data, [4, 5, 6]), (
        f"a + b changed its operands: a = {a.data}, b = {b.data}. "
        "Hint: build a new array "
        "(self.data + other.data); never use += or out= on an operand.")

test_tensor_no_mutation()
### BEGIN HIDDEN TESTS
_ops = [("a + b", lambda a, b: a + b), ("a - b", lambda a, b: a - b), ("a * b", lambda a, b: a * b),
        ("a / b", lambda a, b: a / b), ("-a", lambda a, b: -a), ("a ** 2", lambda a, b: a ** 2),
        ("2 - a", lambda a, b: 2 - a), ("2 / a", lambda a, b: 2 / a), ("a - 1", lambda a, b: a - 1),
        ("a @ b.T", lambda a, b: a @ b.T), ("a.sum(0)", lambda a, b: a.sum(axis=0)),
        ("a.mean()", lambda a, b: a.mean()), ("a.max(1)", lambda a, b: a.max(axis=1)),
        ("a.reshape(-1)", lambda a, b: a.reshape(-1)), ("a.T", lambda a, b: a.T), ("a[0]", lambda a, b: a[0])]
for _name, _op in _ops:
    _a, _b = Tensor([[1.0, 2.0], [3.0, 4.0]]), Tensor([[5.0, 6.0], [7.0, 8.0]])
    _before = (_a.data.copy(), _b.data.copy())
    _out = _op(_a, _b)
    assert np.array_equal(_a.data, _before[0]) and np.array_equal(_b.data, _before[1]), f"{_name} changed an operand"
    _out.data[...] = -1.0
    assert np.array_equal(_a.data, _before[0]) and np.array_equal(_b.data, _before[1]), f"{_name} shares memory with an operand"
# Every operation, on float32 and float64 operands of different shapes: no operand
# changes, and the result shares no memory with one.
from tinytorch.testing import assert_untouched

_rng = np.random.default_rng(20)
for _dtype in (np.float32, np.float64):
    _a = Tensor(_rng.standard_normal((3, 4)), dtype=_dtype)
    _b = Tensor(_rng.standard_normal(4) + 3.0, dtype=_dtype)
    _m = Tensor(_rng.standard_normal((4, 2)), dtype=_dtype)
    for _name, _fn, _args in [
            ("a + b", lambda a, b: a + b, (_a, _b)), ("b - a", lambda a, b: b - a, (_a, _b)),
            ("a * b", lambda a, b: a * b, (_a, _b)), ("a / b", lambda a, b: a / b, (_a, _b)),
            ("-a", lambda a: -a, (_a,)), ("a ** 3", lambda a: a ** 3, (_a,)),
            ("2 - a", lambda a: 2 - a, (_a,)), ("2 / b", lambda b: 2 / b, (_b,)),
            ("a @ m", lambda a, m: a @ m, (_a, _m)), ("a.sum(1)", lambda a: a.sum(axis=1), (_a,)),
            ("a.mean(0)", lambda a: a.mean(axis=0), (_a,)),
            ("a.max()", lambda a: a.max(), (_a,)),
            ("a.reshape(2, 6)", lambda a: a.reshape(2, 6), (_a,)),
            ("a.reshape(-1)", lambda a: a.reshape(-1), (_a,)),
            ("a.transpose()", lambda a: a.transpose(), (_a,)), ("a.T", lambda a: a.T, (_a,)),
            ("a[1]", lambda a: a[1], (_a,)), ("a[:, ::2]", lambda a: a[:, ::2], (_a,))]:
        _fn.__name__ = f"{_name} ({np.dtype(_dtype).name})"
        assert_untouched(_fn, *_args, no_view=True)
### END HIDDEN TESTS

# %% [markdown]
# ### Every operation goes through `_result`
#
# `_result` records the computation graph for module 07, so every operation must end
# there, with the op names and parents of the table above. This test watches `_result`.

# %%
#| test: tensor_result_hook (2 points)
def watch_result(run):
    """Run `run()` while recording every call to Tensor._result as (op, parents,
    saved)."""
    calls, original = [], Tensor._result

    def recording(self, data, op, *parents, **saved):
        calls.append((op, parents, saved))
        return original(self, data, op, *parents, **saved)

    Tensor._result = recording
    try:
        run()
    finally:
        Tensor._result = original
    return calls


def test_tensor_result_hook():
    a = Tensor([[1.0, 2.0], [3.0, 4.0]])
    b = Tensor([[5.0, 6.0], [7.0, 8.0]])
    for name, run, op, parents in [("a + b", lambda: a + b, "add", (a, b)),
                                   ("a * b", lambda: a * b, "mul", (a, b)),
                                   ("a @ b", lambda: a @ b, "matmul", (a, b)),
                                   ("a.sum()", lambda: a.sum(), "sum", (a,))]:
        calls = watch_result(run)
        assert calls, (
            f"{name} did not call self._result. Hint: end with return self._result(...).")
        got_op, got_parents, _ = calls[-1]
        assert got_op == op, f"{name}: expected op {op!r} in _result, got {got_op!r}."
        same = all(g is p for g, p in zip(got_parents, parents))
        assert len(got_parents) == len(parents) and same, (
            f"{name}: expected the parents to be exactly the operand Tensor(s), "
            f"got {got_parents}.")

test_tensor_result_hook()
### BEGIN HIDDEN TESTS
_a, _b = Tensor([[1.0, 2.0], [3.0, 4.0]]), Tensor([[5.0, 6.0], [7.0, 8.0]])
for _name, _run, _op, _n in [("a - b", lambda: _a - _b, "sub", 2), ("a / b", lambda: _a / _b, "div", 2),
                             ("-a", lambda: -_a, "neg", 1), ("a ** 2", lambda: _a ** 2, "pow", 1),
                             ("a.mean()", lambda: _a.mean(), "mean", 1), ("a.max()", lambda: _a.max(), "max", 1),
                             ("a.reshape(4)", lambda: _a.reshape(4), "reshape", 1),
                             ("a.transpose()", lambda: _a.transpose(), "transpose", 1),
                             ("a[0]", lambda: _a[0], "getitem", 1), ("a * 2", lambda: _a * 2, "mul", 2),
                             ("2 - a", lambda: 2 - _a, "sub", 2), ("2 / a", lambda: 2 / _a, "div", 2)]:
    _calls = watch_result(_run)
    assert _calls and _calls[-1][0] == _op, f"{_name} must end in self._result with op {_op!r}"
    _parents = _calls[-1][1]
    assert len(_parents) == _n and all(isinstance(_p, Tensor) for _p in _parents), f"{_name}: parents must be Tensors"
    assert any(_p is _a for _p in _parents), f"{_name}: the operand must be a parent"
assert watch_result(lambda: 2 - _a)[-1][1][1] is _a, "2 - a: a is the right-hand parent"
_saved = watch_result(lambda: _a.sum(axis=1, keepdims=True))[-1][2]
assert _saved.get("axis") == 1 and _saved.get("keepdims") is True, "sum must save axis and keepdims"
_saved = watch_result(lambda: _a.max(axis=0))[-1][2]
assert _saved.get("axis") == 0 and _saved.get("keepdims") is False, "max must save axis and keepdims"
assert watch_result(lambda: _a ** 3)[-1][2].get("exponent") == 3, "pow must save the exponent"
# The contract with module 07: backward() through the course's engine, over what each
# operation recorded, gives every input the gradient of central differences.
from tinytorch.testing import check_graph

try:        # module 07's engine: the grader imports the whole reference package
    from tinytorch.core.autograd import backward as _engine
except ModuleNotFoundError:     # a package of modules 01-02 alone has no engine yet
    _engine = None
if _engine is not None:
    _rng = np.random.default_rng(21)
    _x, _y = _rng.standard_normal((3, 4)), _rng.standard_normal((3, 4))
    _row, _col = _rng.standard_normal(4), _rng.standard_normal((3, 1))
    _pos = np.abs(_rng.standard_normal((3, 4))) + 0.5
    _cube = _rng.standard_normal((2, 3, 4))
    for _name, _fn, _inputs in [
            ("a + b", lambda a, b: a + b, [_x, _row]), ("a + b", lambda a, b: a + b, [_col, _x]),
            ("a - b", lambda a, b: a - b, [_x, _col]), ("a - b", lambda a, b: a - b, [_row, _x]),
            ("a * b", lambda a, b: a * b, [_x, _row]), ("a / b", lambda a, b: a / b, [_x, _pos]),
            ("a / b", lambda a, b: a / b, [_row, _pos]), ("-a", lambda a: -a, [_x]),
            ("a ** 3", lambda a: a ** 3, [_x]), ("a ** 0.5", lambda a: a ** 0.5, [_pos]),
            ("a ** -2", lambda a: a ** -2, [_pos]), ("a * 3", lambda a: a * 3, [_x]),
            ("a - 1", lambda a: a - 1, [_x]), ("a / 4", lambda a: a / 4, [_x]),
            ("2 - a", lambda a: 2 - a, [_x]), ("2 / a", lambda a: 2 / a, [_pos]),
            ("3 + a", lambda a: 3 + a, [_x]), ("3 * a", lambda a: 3 * a, [_x]),
            ("a @ b", lambda a, b: a @ b, [_x, _y.T]), ("a @ b", lambda a, b: a @ b, [_row, _y.T]),
            ("a @ b", lambda a, b: a @ b, [_x, _row]), ("a @ b", lambda a, b: a @ b, [_cube, _y.T]),
            ("a.sum()", lambda a: a.sum(), [_cube]),
            ("a.sum(axis=1)", lambda a: a.sum(axis=1), [_cube]),
            ("a.sum(axis=(0, 2), keepdims=True)", lambda a: a.sum(axis=(0, 2), keepdims=True),
             [_cube]),
            ("a.mean()", lambda a: a.mean(), [_cube]),
            ("a.mean(axis=-1)", lambda a: a.mean(axis=-1), [_cube]),
            ("a.mean(axis=0, keepdims=True)", lambda a: a.mean(axis=0, keepdims=True), [_cube]),
            ("a.max(axis=1)", lambda a: a.max(axis=1), [_cube]),
            ("a.max(axis=-1, keepdims=True)", lambda a: a.max(axis=-1, keepdims=True), [_cube]),
            ("a.reshape(4, -1)", lambda a: a.reshape(4, -1), [_cube]),
            ("a.reshape((24,))", lambda a: a.reshape((24,)), [_cube]),
            ("a.transpose()", lambda a: a.transpose(), [_cube]), ("a.T", lambda a: a.T, [_x]),
            ("a.transpose(1, 0, 2)", lambda a: a.transpose(1, 0, 2), [_cube]),
            ("a.transpose((2, 0, 1))", lambda a: a.transpose((2, 0, 1)), [_cube]),
            ("a[1]", lambda a: a[1], [_cube]), ("a[:, 1:]", lambda a: a[:, 1:], [_x]),
            ("a[[0, 0, 2]]", lambda a: a[[0, 0, 2]], [_x]),
            ("a[a > 0]", lambda a: a[a > 0], [_x])]:
        check_graph(_fn, _inputs, name=_name, backward=_engine, tensor=Tensor)
### END HIDDEN TESTS

# %% [markdown]
# ## What you built, and what comes next
#
# A `Tensor` is a float32 NumPy array with a structure around it: one dtype policy, copies
# instead of aliases, NumPy's broadcasting, a matrix product that explains its errors,
# reductions that keep their axes on demand, and one door, `_result`, through which every
# result passes, where the graph for module 07's automatic gradients is recorded.
#
# With Tensors, a layer is `x @ W + b`. But stack two of them, `(x @ W1 + b1) @ W2 + b2`,
# and the result is again a single `x @ W + b`: **linear maps compose to one linear map**,
# and depth buys nothing. Module 03 adds the nonlinear activations that break this.
