# %% [markdown]
# # Module 04: Layers — functions need to be organized into layers
#
# Module 03 broke the curse of linearity: with a nonlinearity between them, two linear maps
# no longer collapse into one, and a network can bend. Here is a two-layer network written
# with what we have so far, loose weight Tensors and an activation:
#
# ```python
# W1, b1 = Tensor(...), Tensor(...)       # (2, 3), (3,)
# W2, b2 = Tensor(...), Tensor(...)       # (3, 1), (1,)
# relu = ReLU()
# y = relu(x @ W1 + b1) @ W2 + b2
# ```
#
# It computes. Now try to *train* it. Every step must find every weight (four names here,
# forty in a real network), compute a gradient for each, update each, and, before the next
# step, clear each. Saving the network means listing the names again; adding a layer means
# editing every one of these lists, and forgetting one of them fails silently: a weight
# that is never updated still produces numbers.

# %%
import numpy as np

from tinytorch.core.activations import ReLU, Tanh  # module 03, for the demos and tests
from tinytorch.core.tensor import Tensor

# the loose version: four Tensors with nothing to hold them together
rng = np.random.default_rng(0)
W1, b1 = Tensor(rng.uniform(-0.7, 0.7, (2, 3))), Tensor(np.zeros(3))
W2, b2 = Tensor(rng.uniform(-0.6, 0.6, (3, 1))), Tensor(np.zeros(1))
x = Tensor([[1.0, 2.0], [-1.0, 0.5]])
relu = ReLU()
y = relu(x @ W1 + b1) @ W2 + b2
print("y =", y.data.ravel(), "   weights to keep track of by hand:",
      ["W1", "b1", "W2", "b2"])

# %% [markdown]
# ## The problem
#
# **Functions need to be organized into layers.** The weights of `x @ W1 + b1` belong to that
# one function, and the network is a tree of such pieces. PyTorch's answer, which we copy
# because it works and because your skills then transfer, is the `Module`:
#
# - a `Module` **owns its parameters**: assign `self.weight = Parameter(...)` in `__init__`
#   and the module knows it has a weight;
# - a `Module` **owns its children**: assign `self.layer1 = Linear(2, 3)` and the network
#   knows its first layer, and through it the layer's weights;
# - so one call, `model.parameters()`, walks the tree and finds every weight, in a fixed
#   order, each once. Saving (`state_dict`), loading, clearing gradients (`zero_grad`) and
#   switching to evaluation mode (`eval`) walk the same tree.
#
# In this module you build `Module` (around a given `Parameter`), the `Linear` layer (forward
# *and* its hand-written backward), `Sequential` to chain layers, and `Dropout`. Gradients are still
# computed by hand here, layer by layer, with each layer's `backward`; module 07 will make
# them automatic.

# %% [markdown]
# Your package file starts here: the cells marked `#| export` below become
# `tinytorch/core/layers.py`. It needs only NumPy and module 02's Tensor.

# %%
#| export
import numpy as np

from tinytorch.core.tensor import Tensor

# %% [markdown]
# ## Randomness you can repeat
#
# Layers start from random weights and `Dropout` draws random masks. A result you cannot
# reproduce is a result you cannot debug, so every random choice in this module comes from
# **one generator**, `_generator`, and `manual_seed(seed)` replaces it with a seeded one
# (PyTorch's `torch.manual_seed` plays the same role):
#
# ```python
# manual_seed(0); a = Linear(2, 3)
# manual_seed(0); b = Linear(2, 3)      # a.weight and b.weight hold the same numbers
# ```
#
# The rule for your code below: draw with `_generator.uniform(...)` / `_generator.random(...)`,
# never with `np.random.*` (NumPy's global generator, which `manual_seed` does not reach).
#
# Later modules reach the same generator through three public functions, never through
# `_generator` itself: `default_generator()` to draw from it (module 09's convolution
# draws its initial weights there), and `get_rng_state()` / `set_rng_state(state)` to save
# and restore where it stands (module 08's checkpoints), as `torch.get_rng_state` does.

# %%
#| export
_generator = np.random.default_rng()


def manual_seed(seed):
    """Seed every random choice of tinytorch.core.layers (Linear's initial weights,
    Dropout's masks): after manual_seed(s), the same code draws the same numbers."""
    global _generator
    _generator = np.random.default_rng(seed)


def default_generator():
    """The generator that every random choice of tinytorch draws from: initial weights,
    Dropout's masks. Look it up at each use: manual_seed replaces it."""
    return _generator


def get_rng_state():
    """Where the default generator stands, as a JSON-able dict (save it in a
    checkpoint)."""
    return _generator.bit_generator.state


def set_rng_state(state):
    """Put the default generator back where get_rng_state() saw it: the same draws
    follow."""
    _generator.bit_generator.state = state

# %% [markdown]
# ## Parameter: a Tensor that wants a gradient
#
# A `Parameter` is a `Tensor` with one difference: `requires_grad` is `True` by default. It
# marks "this is a weight the optimizer will change", and it is what a `Module` looks for
# when it registers attributes. `.grad` starts as `None` and, after a backward pass, holds a
# Tensor of the parameter's shape.

# %%
#| export
class Parameter(Tensor):
    """A Tensor that is a learnable weight: requires_grad=True by default.

    >>> Parameter([1.0, 2.0]).requires_grad
    True
    """

    def __init__(self, data, dtype=None, requires_grad=True):
        super().__init__(data, dtype=dtype, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter" + super().__repr__()[len("Tensor"):]

# %% [markdown]
# ## Module: registration in `__setattr__`
#
# Python calls `obj.__setattr__(name, value)` for every `obj.name = value`. A `Module`
# overrides it to look at the value on its way in:
#
# ```python
# class TwoLayer(Module):
#     def __init__(self):
#         super().__init__()               # creates the empty registries first
#         self.layer1 = Linear(2, 3)       # a Module    -> self._modules["layer1"]
#         self.act = ReLU()                # neither: a plain attribute (03's activations
#         self.layer2 = Linear(3, 1)       #   have no parameters)  -> self._modules["layer2"]
#         self.scale = Parameter([2.0])    # a Parameter -> self._parameters["scale"]
# ```
#
# Python dicts keep insertion order, so the registries list things in definition order.
# `named_parameters()` then walks the tree: first the module's own parameters, then each
# child's, with the child's name and a dot in front, like PyTorch:
#
# | name | shape | numbers |
# |---|---|---|
# | `scale` | `(1,)` | 1 |
# | `layer1.weight` | `(2, 3)` | 6 |
# | `layer1.bias` | `(3,)` | 3 |
# | `layer2.weight` | `(3, 1)` | 3 |
# | `layer2.bias` | `(1,)` | 1 |
#
# 14 numbers, found without listing them anywhere. Two details matter:
#
# - **each parameter once.** The same layer may sit in two places of the tree (weight
#   sharing). It must be updated once per step, so `named_parameters` skips a parameter it
#   has already yielded. A `set` of Tensors works (Tensors hash by identity, module 02).
# - **reassignment.** `self.bias = None` after `self.bias = Parameter(...)` means "no bias
#   any more": the name must leave `_parameters` too, or `parameters()` would still return
#   the old bias. Likewise a name switches registry when a Parameter replaces a Module.
#
# `parameters()` returns a *list* (PyTorch returns a generator, which can be used up only
# once: a classic bug is handing the same generator to two consumers).
#
# The rest of `Module` walks the same tree:
#
# - `train(mode=True)` / `eval()` set `.training` on the module **and every descendant**:
#   `Dropout` behaves differently when training, and it is usually deep inside the tree.
# - `zero_grad()` sets every parameter's `.grad` back to `None` (why gradients pile up
#   otherwise: see `Linear.backward` below).
# - `state_dict()` maps each dotted name to a **copy** of the parameter's array: a snapshot.
#   `load_state_dict(state)` writes such a snapshot back, after checking that the names and
#   the shapes fit, and raises a `ValueError` that names the problem otherwise.
#
# ### Buffers: state that is saved but not learned
#
# Some layers keep numbers that are not weights: module 09's `BatchNorm2d` keeps a running
# mean and variance of what it has seen, averaged during training and used in evaluation. The
# optimizer must not touch them (they have no gradient), but a saved model without them would
# evaluate differently once loaded, and a training run resumed from a checkpoint would not
# continue as the uninterrupted one. PyTorch calls them **buffers**, and so do we:
#
# ```python
# self.register_buffer("running_mean", np.zeros(16, dtype=np.float32))   # in __init__
# self.running_mean = 0.9 * self.running_mean + 0.1 * batch_mean        # later: still a buffer
# ```
#
# `register_buffer(name, array)` (given) stores a NumPy array in `self._buffers` and as the
# attribute `name`; assigning a new array to that name later keeps it registered.
# `named_buffers()` (given) walks the tree like `named_parameters()`: `1.running_mean`, ...
# So `state_dict()` holds **the parameters, then the buffers**, and `load_state_dict()`
# restores both. `parameters()` never returns a buffer: nothing learns it. `_state_arrays()`
# (given) yields every `(name, array)` that `state_dict` saves: each parameter's `.data`,
# then each buffer.
#
# `__repr__` (given) prints the tree, using each module's `extra_repr()`:
#
# ```
# TwoLayer(
#   (layer1): Linear(in_features=2, out_features=3, bias=True)
#   (layer2): Linear(in_features=3, out_features=1, bias=True)
# )
# ```

# %%
#| export
def _describe(name, extra, children):
    """PyTorch-style nested text: `Name(extra)`, or `Name(` and one `(child): ...` line
    per child, indented, then `)`."""
    if not children:
        return f"{name}({extra})"
    lines = [extra] if extra else []
    lines += [f"({key}): {text}" for key, text in children]
    body = "\n".join(lines).replace("\n", "\n  ")
    return f"{name}(\n  {body}\n)"


def _buffer_array(value):
    """A buffer's value as a NumPy array (a Tensor gives its array), or None."""
    if value is None:
        return None
    return value.data if isinstance(value, Tensor) else np.asarray(value)


class Module:
    """The base class of every layer and model: it owns Parameters, buffers and child
    Modules.

    Subclasses call `super().__init__()` first, assign their Parameters and sub-Modules as
    attributes, and implement `forward(x)` and (until module 07) `backward(grad_output)`.
    """

    def __init__(self):
        # object.__setattr__ bypasses our own __setattr__, which needs these to exist
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})
        self.training = True

    def __setattr__(self, name, value):
        if isinstance(value, (Parameter, Module)) and "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {type(value).__name__} '{name}' before Module.__init__() "
                f"ran: call super().__init__() first in {type(self).__name__}.__init__")
        buffers = self.__dict__.get("_buffers", {})
        # a registered buffer (given, see register_buffer)
        if name in buffers:
            if not isinstance(value, (Parameter, Module)):
                buffers[name] = _buffer_array(value)
                object.__setattr__(self, name, buffers[name])
                return
            # a Parameter or Module takes the name over
            del buffers[name]
        # TODO: register the value under `name`: a Parameter in self._parameters, a Module
        #       in self._modules. Remove `name` from the registry it no longer belongs to
        #       (from both, for any other value, e.g. None). Then set the attribute as
        #       usual.
        ### BEGIN SOLUTION
        if isinstance(value, Parameter):
            self._modules.pop(name, None)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._parameters.pop(name, None)
            self._modules[name] = value
        elif "_parameters" in self.__dict__:
            self._parameters.pop(name, None)
            self._modules.pop(name, None)
        object.__setattr__(self, name, value)
        ### END SOLUTION

    # ---- walking the tree --------------------------------------------------------------
    def named_parameters(self, prefix="", memo=None):
        """Yield (dotted name, Parameter) for this module's parameters, then its
        children's, recursively (`layer1.weight`, ...), each Parameter once."""
        memo = set() if memo is None else memo
        # TODO: yield (prefix + name, p) for each own parameter not yet in `memo` (add
        #       it), then, for each child, everything child.named_parameters(...) yields,
        #       with prefix + child_name + "." as the child's prefix and the same memo.
        ### BEGIN SOLUTION
        for name, param in self._parameters.items():
            if param not in memo:
                memo.add(param)
                yield prefix + name, param
        for name, child in self._modules.items():
            yield from child.named_parameters(prefix + name + ".", memo)
        ### END SOLUTION

    def parameters(self):
        """Every Parameter of this module and its descendants, each once, as a list."""
        return [param for _, param in self.named_parameters()]

    def children(self):
        """The direct sub-Modules, in definition order."""
        return list(self._modules.values())

    def register_buffer(self, name, array):
        """Keep `array` (a NumPy array, or None) as state that is saved with the weights
        but not learned, e.g. BatchNorm2d's running statistics: `self.name`, in
        state_dict(), never in parameters(). Assigning to `self.name` later keeps it a
        buffer."""
        if "_buffers" not in self.__dict__:
            raise AttributeError(
                f"cannot register buffer '{name}' before Module.__init__() ran: call "
                f"super().__init__() first in {type(self).__name__}.__init__")
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(
                "register_buffer: a buffer name is a non-empty string without '.', got "
                f"{name!r}")
        if name in self._parameters or name in self._modules:
            raise KeyError(f"register_buffer: '{name}' is already a parameter or a "
                           f"sub-module of {type(self).__name__}")
        self._buffers[name] = _buffer_array(array)
        object.__setattr__(self, name, self._buffers[name])

    def named_buffers(self, prefix="", memo=None):
        """Yield (dotted name, array) for this module's buffers, then its children's,
        recursively (`1.running_mean`, ...), each array once; buffers set to None are
        skipped."""
        memo = set() if memo is None else memo    # ids: NumPy arrays do not hash
        for name, buffer in self._buffers.items():
            if buffer is not None and id(buffer) not in memo:
                memo.add(id(buffer))
                yield prefix + name, buffer
        for name, child in self._modules.items():
            yield from child.named_buffers(prefix + name + ".", memo)

    def _state_arrays(self):
        """(dotted name, array) of everything state_dict saves: each parameter's array,
        then each buffer. Writing into these arrays changes the module."""
        for name, param in self.named_parameters():
            yield name, param.data
        yield from self.named_buffers()

    def train(self, mode=True):
        """Set training mode (mode=True) or evaluation mode on this module and every
        descendant. Returns self, so `model = Model().train()` works."""
        # TODO: set self.training to mode, then put every child (and, through it, every
        #       descendant) in the same mode.
        ### BEGIN SOLUTION
        self.training = bool(mode)
        for child in self._modules.values():
            child.train(mode)
        return self
        ### END SOLUTION

    def eval(self):
        """Evaluation mode: train(False)."""
        return self.train(False)

    def zero_grad(self):
        """Forget every parameter's gradient (grad = None) before the next backward
        pass."""
        # TODO: set .grad to None on every parameter of the tree.
        ### BEGIN SOLUTION
        for param in self.parameters():
            param.grad = None
        ### END SOLUTION

    # ---- saving and loading ------------------------------------------------------------
    def state_dict(self):
        """{dotted name: a copy of the array}: a snapshot of the weights, then the
        buffers."""
        # TODO: map each name of self._state_arrays() (every parameter, then every buffer)
        #       to a copy of its array.
        ### BEGIN SOLUTION
        return {name: array.copy() for name, array in self._state_arrays()}
        ### END SOLUTION

    def load_state_dict(self, state):
        """Copy the arrays of `state` (as made by state_dict) into the parameters and
        buffers.

        Raises ValueError, and changes nothing, when a name is missing or unexpected or a
        shape differs; the message names the keys (and both shapes).
        """
        # name -> the array that holds its values
        own = dict(self._state_arrays())
        # TODO: 1. missing = own names not in state; unexpected = state names not in own:
        #          if any, raise ValueError("load_state_dict: missing keys [...];
        #          unexpected keys [...]").
        #       2. for each name, if the shapes differ, raise ValueError naming the key
        #          and both shapes, e.g. "load_state_dict: 'layer1.weight' has shape
        #          (3, 2) in the state but (2, 3) in the model".
        #       3. only then copy each value into its array (a copy, keeping the dtype).
        ### BEGIN SOLUTION
        missing = [name for name in own if name not in state]
        unexpected = [name for name in state if name not in own]
        if missing or unexpected:
            raise ValueError(f"load_state_dict: missing keys {missing}; unexpected keys {unexpected}")
        values = {}
        for name, array in own.items():
            value = state[name]
            value = value.data if isinstance(value, Tensor) else np.asarray(value)
            if value.shape != array.shape:
                raise ValueError(f"load_state_dict: {name!r} has shape {value.shape} in the state "
                                 f"but {array.shape} in the model")
            values[name] = value
        for name, array in own.items():
            array[...] = values[name]
        ### END SOLUTION

    # ---- what subclasses provide -------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def backward(self, grad_output):
        """Given dLoss/dOutput, accumulate the parameters' gradients and return
        dLoss/dInput."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement backward(grad_output)")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self):
        """The text inside `Name(...)`: override to show a layer's settings."""
        return ""

    def __repr__(self):
        children = [(name, repr(child)) for name, child in self._modules.items()]
        return _describe(type(self).__name__, self.extra_repr(), children)

# %% [markdown]
# ### Test it: registration
#
# Each test cell checks the step just above it and says what it expected, what came, and a
# hint. The autograder adds more checks of the same topic (deeper trees, other shapes, other dtypes), so make the rule right,
# not only the example.

# %%
#| test: module_registration (2 points)
def test_module_registration():
    p = Parameter([1.0, 2.0])
    assert (isinstance(p, Tensor) and p.requires_grad is True and p.grad is None
            and p.dtype == np.float32), (
        "Parameter([1, 2]) should be a float32 Tensor with requires_grad=True and grad "
        f"None, got {p!r}.")

    class Affine(Module):
        def __init__(self):
            super().__init__()
            self.w = Parameter([[1.0, 2.0]])
            self.label = "affine"                  # plain attribute
            self.b = Parameter([0.5])

    m = Affine()
    assert list(m._parameters) == ["w", "b"], (
        "Affine assigns self.w and self.b (Parameters) and self.label (a string): "
        f"expected _parameters keys ['w', 'b'], got {list(m._parameters)}. Hint: "
        "register Parameters in __setattr__, in the order they are assigned.")
    assert m._parameters["w"] is m.w and m._modules == {} and m.label == "affine", (
        "the registered Parameter must be the attribute itself, and plain attributes "
        "must still work (object.__setattr__).")

    class Outer(Module):
        def __init__(self):
            super().__init__()
            self.inner = Affine()
            self.scale = Parameter(2.0)

    o = Outer()
    assert list(o._modules) == ["inner"] and o._modules["inner"] is o.inner, (
        f"Outer assigns self.inner = Affine(): expected _modules == {{'inner': ...}}, "
        f"got {o._modules}.")
    assert list(o._parameters) == ["scale"], (
        f"expected Outer._parameters keys ['scale'], got {list(o._parameters)}.")

test_module_registration()
### BEGIN HIDDEN TESTS
class _Reassign(Module):
    def __init__(self):
        super().__init__()
        self.w = Parameter([1.0])
        self.b = Parameter([2.0])
        self.c = Module()

_m = _Reassign()
_m.b = None
assert "b" not in _m._parameters and _m.b is None, "assigning None to a Parameter attribute must unregister it"
assert len(_m.parameters()) == 1, "a removed parameter must not come back in parameters()"
_m.c = Parameter([3.0])
assert "c" not in _m._modules and "c" in _m._parameters, "a Parameter replacing a Module moves registries"
_m.w = Module()
assert "w" not in _m._parameters and "w" in _m._modules, "a Module replacing a Parameter moves registries"
_m.c = Parameter([4.0])
assert list(_m._parameters) == ["c"] and _m._parameters["c"].data[0] == 4.0
_m.d = Tensor([1.0])
assert "d" not in _m._parameters, "a plain Tensor is not a Parameter: not registered"
_m.e = [Parameter([1.0])]
assert "e" not in _m._parameters and "e" not in _m._modules
_n = _Reassign()
_n.w = Parameter([9.0])
assert list(_n._parameters) == ["w", "b"], "reassigning a Parameter keeps its place"
### END HIDDEN TESTS

# %% [markdown]
# ### Walking the tree: named_parameters, parameters, children

# %%
#| test: module_parameters (2 points)
def test_module_parameters():
    class Leaf(Module):
        def __init__(self):
            super().__init__()
            self.w = Parameter([[1.0, 2.0]])
            self.b = Parameter([0.5])

    class Outer(Module):
        def __init__(self):
            super().__init__()
            self.first = Leaf()
            self.scale = Parameter(2.0)
            self.second = Leaf()

    o = Outer()
    names = [name for name, _ in o.named_parameters()]
    expected = ["scale", "first.w", "first.b", "second.w", "second.b"]
    assert names == expected, (
        f"named_parameters() of Outer: expected {expected}, got {names}. Hint: own "
        "parameters first, then each child's with 'child_name.' in front.")
    params = o.parameters()
    assert (isinstance(params, list) and len(params) == 5 and params[1] is o.first.w
            and params[0] is o.scale), (
        "parameters() should return the 5 Parameter objects themselves, in "
        f"named_parameters order; got {params}.")
    assert o.children() == [o.first, o.second], (
        "children() should list the direct sub-Modules.")

test_module_parameters()
### BEGIN HIDDEN TESTS
class _Leaf(Module):
    def __init__(self):
        super().__init__()
        self.w = Parameter([1.0, 2.0])

class _Mid(Module):
    def __init__(self):
        super().__init__()
        self.leaf = _Leaf()

class _Top(Module):
    def __init__(self):
        super().__init__()
        self.mid = _Mid()
        self.b = Parameter([0.0])

_t = _Top()
assert [n for n, _ in _t.named_parameters()] == ["b", "mid.leaf.w"], "names are dotted paths at any depth"
assert _t.parameters()[1] is _t.mid.leaf.w
assert _t.children() == [_t.mid]

class _Shared(Module):
    def __init__(self):
        super().__init__()
        self.a = _Leaf()
        self.b = self.a                      # the same layer twice: weight sharing
        self.tied = self.a.w                 # and the same Parameter under a second name

_s = _Shared()
assert len(_s.parameters()) == 1, "a shared Parameter must be returned once, however many names it has"
assert [n for n, _ in _s.named_parameters()] == ["tied"], "named_parameters must yield a shared Parameter once"
assert len(list(_t.named_parameters())) == 2 and len(list(_t.named_parameters())) == 2, "callable twice"
### END HIDDEN TESTS

# %% [markdown]
# ### Training mode, evaluation mode, and clearing gradients

# %%
#| test: module_modes (1 point)
def test_module_modes():
    class Leaf(Module):
        def __init__(self):
            super().__init__()
            self.w = Parameter([1.0, 2.0])

    class Outer(Module):
        def __init__(self):
            super().__init__()
            self.leaf = Leaf()

    o = Outer()
    assert o.training and o.leaf.training, (
        "a new Module is in training mode (training == True).")
    got = o.eval()
    assert got is o, "eval() (and train()) should return the module itself."
    assert o.training is False and o.leaf.training is False, (
        f"after o.eval(): expected o.training False and o.leaf.training False, got "
        f"{o.training} and {o.leaf.training}. Hint: set the mode on every child too.")
    o.train()
    assert o.training is True and o.leaf.training is True, (
        "train() should switch back, for the children too.")
    o.leaf.w.grad = Tensor([1.0, 1.0])
    o.zero_grad()
    assert o.leaf.w.grad is None, (
        f"zero_grad() should set every parameter's grad to None, got {o.leaf.w.grad!r}.")

test_module_modes()
### BEGIN HIDDEN TESTS
class _L(Module):
    def __init__(self):
        super().__init__()
        self.w = Parameter([1.0])

class _M(Module):
    def __init__(self):
        super().__init__()
        self.l = _L()

class _T(Module):
    def __init__(self):
        super().__init__()
        self.m = _M()
        self.v = Parameter([2.0])

_t = _T()
_t.eval()
assert _t.m.l.training is False, "eval() must reach every descendant, not only the children"
_t.train(True)
assert _t.m.l.training is True
_t.train(False)
assert not _t.training and not _t.m.training and not _t.m.l.training, "train(False) is eval()"
_t.m.l.w.grad = Tensor([3.0])
_t.v.grad = Tensor([3.0])
_t.zero_grad()
assert _t.m.l.w.grad is None and _t.v.grad is None, "zero_grad must reach every parameter of the tree"
### END HIDDEN TESTS

# %% [markdown]
# ### Saving and loading

# %%
#| test: module_state_dict (2 points)
def test_module_state_dict():
    class Affine(Module):
        def __init__(self):
            super().__init__()
            self.w = Parameter([[1.0, 2.0], [3.0, 4.0]])
            self.b = Parameter([0.5, -0.5])

    a = Affine()
    state = a.state_dict()
    arrays = all(isinstance(v, np.ndarray) for v in state.values())
    assert set(state) == {"w", "b"} and arrays, (
        f"state_dict() should map 'w' and 'b' to NumPy arrays, got {state}.")
    assert np.array_equal(state["w"], [[1, 2], [3, 4]]), (
        f"state_dict()['w'] should be w's values, got {state['w']}.")
    b = Affine()
    b.w.data[...] = 0.0
    b.load_state_dict(state)
    assert (np.array_equal(b.w.data, [[1, 2], [3, 4]])
            and np.array_equal(b.b.data, [0.5, -0.5])), (
        f"load_state_dict should copy the saved values in; w is {b.w.data}.")
    bad = dict(state, w=np.zeros((3, 2)))
    try:
        b.load_state_dict(bad)
    except ValueError as error:
        message = str(error)
        assert "'w'" in message and "(3, 2)" in message and "(2, 2)" in message, (
            "the ValueError should name the key 'w' and both shapes (3, 2) and (2, 2); "
            f"it says: {message}")
    else:
        raise AssertionError(
            "load_state_dict with w of shape (3, 2) for a (2, 2) parameter should raise "
            "ValueError.")

    class Counter(Module):
        def __init__(self):
            super().__init__()
            self.w = Parameter([1.0])
            # saved, not learned
            self.register_buffer("seen", np.zeros(2, dtype=np.float32))

    c = Counter()
    # a new array under the same name: still the buffer
    c.seen = c.seen + 3.0
    state = c.state_dict()
    assert list(state) == ["w", "seen"] and np.array_equal(state["seen"], [3, 3]), (
        "state_dict() holds the parameters, then the buffers: expected keys ['w', "
        f"'seen'] with seen = [3, 3], got {state}. Hint: self._state_arrays() yields "
        "both.")
    d = Counter()
    d.load_state_dict(state)
    assert np.array_equal(d.seen, [3, 3]), (
        f"load_state_dict should restore the buffer 'seen' too; it is {d.seen}.")

test_module_state_dict()
### BEGIN HIDDEN TESTS
class _Aff(Module):
    def __init__(self):
        super().__init__()
        self.w = Parameter([[1.0, 2.0], [3.0, 4.0]])
        self.b = Parameter([0.5, -0.5])

class _Net(Module):
    def __init__(self):
        super().__init__()
        self.one = _Aff()
        self.two = _Aff()

_a = _Aff()
_s = _a.state_dict()
_a.w.data += 10.0                                   # an in-place update, as an optimizer does
assert _s["w"][0, 0] == 1.0, "state_dict must copy: the snapshot changed when the weights did"
_s["b"][0] = 99.0
assert _a.b.data[0] == 0.5, "state_dict must copy: editing the snapshot changed the model"
_b = _Aff()
_b.load_state_dict(_s)
_s["w"][0, 0] = -7.0
assert _b.w.data[0, 0] == 1.0, "load_state_dict must copy the values, not keep the caller's array"
assert _b.w.dtype == np.float32, "load_state_dict keeps the parameter's dtype"
_n = _Net()
assert list(_n.state_dict()) == ["one.w", "one.b", "two.w", "two.b"], "state_dict uses the dotted names"
for _bad, _word in [({"w": np.zeros((2, 2))}, "b"),
                    ({"w": np.zeros((2, 2)), "b": np.zeros(2), "extra": np.zeros(1)}, "extra")]:
    _c = _Aff()
    try:
        _c.load_state_dict(_bad)
    except ValueError as _e:
        assert _word in str(_e), f"the ValueError must name the missing or unexpected key {_word!r}"
    else:
        raise AssertionError(f"load_state_dict must raise ValueError when {_word!r} is missing or unexpected")
    assert _c.w.data[0, 0] == 1.0, "a failed load must change nothing"
_c = _Aff()
try:
    _c.load_state_dict({"w": np.zeros((2, 2)), "b": np.zeros(3)})
except ValueError:
    pass
else:
    raise AssertionError("a shape mismatch must raise ValueError")
assert _c.w.data[0, 0] == 1.0, "a failed load must change nothing, not even the keys before the bad one"
_c.load_state_dict({"w": Tensor(np.ones((2, 2))), "b": Tensor([1.0, 2.0])})
assert np.array_equal(_c.w.data, np.ones((2, 2))), "Tensor values are accepted too"

class _Stat(Module):
    def __init__(self):
        super().__init__()
        self.w = Parameter([1.0, 2.0])
        self.register_buffer("mean", np.zeros(2, dtype=np.float32))
        self.register_buffer("unused", None)

class _Deep(Module):
    def __init__(self):
        super().__init__()
        self.a = _Stat()
        self.b = _Stat()

_d = _Deep()
_d.b.mean = np.array([5.0, 6.0], dtype=np.float32)
_s = _d.state_dict()
assert list(_s) == ["a.w", "b.w", "a.mean", "b.mean"], "parameters, then buffers, with dotted names; None is skipped"
_d.b.mean[...] = -1.0
assert np.array_equal(_s["b.mean"], [5, 6]), "state_dict must copy buffers too: the snapshot changed with the buffer"
_e = _Deep()
_e.load_state_dict(_s)
assert np.array_equal(_e.b.mean, [5, 6]) and _e.b.mean.dtype == np.float32, "buffers load, keeping their dtype"
_s["b.mean"][0] = 42.0
assert _e.b.mean[0] == 5.0, "load_state_dict must copy buffers, not keep the caller's array"
assert len(_e.parameters()) == 2, "buffers are never parameters"
for _bad in ({k: v for k, v in _s.items() if k != "a.mean"}, dict(_s, **{"a.mean": np.zeros(3)})):
    _f = _Deep()
    try:
        _f.load_state_dict(_bad)
    except ValueError as _err:
        assert "a.mean" in str(_err), "the ValueError names the buffer"
    else:
        raise AssertionError("a missing buffer, or one of another shape, must raise ValueError")
    assert _f.a.w.data[0] == 1.0 and _f.b.mean[0] == 0.0, "a failed load must change nothing"


class _Rect(Module):
    def __init__(self):
        super().__init__()
        self.w = Parameter(np.arange(6.0).reshape(2, 3))
        self.b = Parameter([1.0, 2.0, 3.0])


# same number of elements, another shape: a transposed weight, a bias with a batch axis
for _key, _bad in [("w", np.zeros((3, 2))), ("b", np.zeros((1, 3))), ("w", np.zeros(6))]:
    _r = _Rect()
    _shape = getattr(_r, _key).shape
    try:
        _r.load_state_dict(dict(_r.state_dict(), **{_key: _bad}))
    except ValueError as _err:
        assert f"'{_key}'" in str(_err) and str(_bad.shape) in str(_err) and str(_shape) in str(_err), (
            f"loading a {_bad.shape} array into the {_shape} parameter '{_key}': the ValueError "
            f"should name '{_key}', {_bad.shape} and {_shape}; it says: {_err}")
    else:
        raise AssertionError(
            f"load_state_dict put a {_bad.shape} array into the {_shape} parameter '{_key}' "
            "without a word: compare the shapes, not the number of elements.")
    assert _r.w.data[0, 1] == 1.0 and _r.b.data[0] == 1.0, "a failed load must change nothing"
### END HIDDEN TESTS

# %%
class TwoLayerDemo(Module):
    def __init__(self):
        super().__init__()
        self.scale = Parameter([2.0])
        self.inner = Module()
        self.inner.w = Parameter([[1.0, 2.0, 3.0]])
        # saved with the weights, never learned
        self.register_buffer("seen", np.zeros(2))
        self.note = "plain attributes are not registered"

demo = TwoLayerDemo()
print(demo)
print([(name, p.shape) for name, p in demo.named_parameters()],
      [name for name, _ in demo.named_buffers()])
print(demo.state_dict())

# %% [markdown]
# ## The Linear layer
#
# `Linear(in_features, out_features)` computes `y = x @ W + b`:
#
# ```
# x (N, in)  @  W (in, out)  +  b (out,)   ->   y (N, out)
# ```
#
# **Layout.** We store `W` with shape `(in_features, out_features)`, so the forward pass is
# literally `x @ W + b`, and the shape rule of module 02 tells you it is right. PyTorch
# stores `(out_features, in_features)` and computes `x @ W.T + b`: that layout matches the
# maths convention `y = W x` for a column vector, and the row-major memory layout its BLAS
# kernels prefer. Ours is the transpose; transpose a PyTorch weight to load it here.
#
# **Any batch shape.** `@` treats leading axes as a batch (module 02), so `x` of shape
# `(B, T, in)` gives `(B, T, out)`: a sequence model (module 13) applies one Linear to every
# position of every sequence.
#
# ### Initialization
#
# The starting weights decide whether the signal survives the trip through the layers.
# Each output is a sum of `in` products `x_i W_ij`. With independent terms, variances add,
# so with `W_ij ~ N(0, 1)` the output's standard deviation is `sqrt(in)` times the input's:
# 16× for a 256-wide layer, and `16**10` after ten such layers. Scaling the weights by
# `1 / sqrt(in)` keeps the output on the scale of the input, whatever the width:

# %%
rng = np.random.default_rng(0)
x = rng.standard_normal((1000, 256))
print("std of x               :", round(x.std(), 3))
print("std of x @ N(0, 1)     :", round((x @ rng.standard_normal((256, 256))).std(), 3))
print("std of x @ U(±1/√256)  :",
      round((x @ rng.uniform(-1 / 16, 1 / 16, (256, 256))).std(), 3))

# %% [markdown]
# We use **PyTorch's default**: weight *and* bias drawn uniformly from `U(-k, k)` with
# `k = 1 / sqrt(in_features)`. (A uniform on `[-k, k]` has variance `k² / 3`, so the output
# std is about `1/√3` of the input's: the 0.577 above.) Kaiming initialization, with std
# `sqrt(2 / in)`, compensates exactly for a ReLU zeroing half the signal; we keep PyTorch's
# default so that our experiments behave like theirs. Draw the weight first, then the bias,
# both from `_generator`.
#
# ### Backward, by hand
#
# A layer's `backward(grad_output)` receives `g = dL/dy` (same shape as `y`) and must
# (1) return `dL/dx` for the layer before it and (2) store `dL/dW` and `dL/db` for the
# optimizer. From `y_j = Σ_i x_i W_ij + b_j`:
#
# - `dL/dx_i = Σ_j g_j W_ij`, that is **`dx = g @ W.T`**: `(N, out) @ (out, in) -> (N, in)`;
# - `dL/dW_ij = Σ_n x_ni g_nj`, that is **`dW = x.T @ g`**: `(in, N) @ (N, out) -> (in, out)`;
# - `dL/db_j = Σ_n g_nj`, that is **`db = g.sum(axis=0)`**: `(out,)`.
#
# The shapes alone pin the formulas down: a gradient has the shape of what it is the
# gradient of, and there is one way to multiply the available pieces into that shape. The
# sums over `n` say that every example of the batch contributes to the weights' gradient.
#
# A worked example, one row:
#
# ```
# x = [[1, 2]]    W = [[1, 0, -1],    b = [1, 1, 1]    y = x @ W + b = [[6, 3, 0]]
#                      [2, 1,  0]]
# g = [[1, 0, 2]]                     (dL/dy, from the layer above)
#
# dx = g @ W.T = [[1·1 + 0·0 + 2·(-1),  1·2 + 0·1 + 2·0]]      = [[-1, 2]]
# dW = x.T @ g = [[1], [2]] @ [[1, 0, 2]] = [[1, 0, 2], [2, 0, 4]]
# db = g.sum(axis=0) = [1, 0, 2]
# ```
#
# With leading batch axes `(B, T, in)`, every position is an example: reshape `x` to
# `(-1, in)` and `g` to `(-1, out)` first, and the same three formulas apply.
#
# **Gradients accumulate.** `backward` *adds* to `.grad` (creating it when it is `None`),
# exactly as PyTorch does. A layer used twice in one forward pass (shared weights) gets both
# contributions, and gradients of several small batches can be summed before one update.
# The price: before each new backward pass, `zero_grad()`, or last step's gradient is
# counted again. `accumulate_grad` below is that one rule, written once for every layer.

# %%
#| export
def accumulate_grad(param, grad):
    """Add `grad` (a Tensor or array of param's shape) to `param.grad`: create it (a copy,
    with the parameter's dtype) when it is None, add in place otherwise."""
    grad = grad.data if isinstance(grad, Tensor) else np.asarray(grad)
    if grad.shape != param.shape:
        raise ValueError(f"a gradient of shape {grad.shape} for a parameter of shape "
                         f"{param.shape}: a gradient has the shape of its parameter (did "
                         "you sum over the batch?)")
    # TODO: if param.grad is None, set it to a new Tensor holding a copy of grad with
    #       param's dtype; otherwise add grad into param.grad's array in place.
    ### BEGIN SOLUTION
    if param.grad is None:
        param.grad = Tensor(grad, dtype=param.dtype)
    else:
        param.grad.data += grad
    ### END SOLUTION

# %%
#| export
class Linear(Module):
    """y = x @ W + b, with W of shape (in_features, out_features) and b of shape
    (out_features,).

    Weight and bias start uniform in ±1/sqrt(in_features) (PyTorch's default), drawn from
    this module's generator (see manual_seed). Inputs may have any leading batch axes.

    >>> Linear(4, 2)(Tensor(np.ones((3, 4)))).shape
    (3, 2)
    """

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        if int(in_features) <= 0 or int(out_features) <= 0:
            raise ValueError(f"Linear needs positive sizes, got "
                             f"in_features={in_features}, out_features={out_features}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        # TODO: self.weight: a Parameter of shape (in_features, out_features); self.bias:
        #       a Parameter of shape (out_features,), or None when bias is False. Both
        #       drawn uniformly from [-k, k], k = 1 / sqrt(in_features): the weight first.
        ### BEGIN SOLUTION
        bound = 1.0 / np.sqrt(self.in_features)
        self.weight = Parameter(_generator.uniform(-bound, bound, size=(self.in_features, self.out_features)))
        self.bias = Parameter(_generator.uniform(-bound, bound, size=(self.out_features,))) if bias else None
        ### END SOLUTION
        self._input = None                       # the forward input, kept for backward

    def forward(self, x):
        """x of shape (..., in_features) -> x @ W + b of shape (..., out_features)."""
        x = x if isinstance(x, Tensor) else Tensor(x)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"{self!r} expects inputs of shape "
                             f"(..., {self.in_features}), got {x.shape}")
        # TODO: keep x in self._input for backward; return x @ W + b (no bias when
        #       self.bias is None).
        ### BEGIN SOLUTION
        self._input = x
        out = x @ self.weight                    # (..., in) @ (in, out) -> (..., out)
        if self.bias is not None:
            out = out + self.bias
        return out
        ### END SOLUTION

    def backward(self, grad_output):
        """grad_output = dL/dy of shape (..., out_features). Accumulates dL/dW and dL/db
        into weight.grad and bias.grad; returns dL/dx of shape (..., in_features)."""
        if self._input is None:
            raise RuntimeError(
                "Linear.backward() called before forward(): nothing to differentiate")
        x = self._input
        if not isinstance(grad_output, Tensor):
            grad_output = Tensor(grad_output)
        # TODO: flatten the leading axes (x to (-1, in), grad_output to (-1, out));
        #       accumulate dW = x.T @ g into the weight and db = g summed over the batch
        #       into the bias (if any); return dx = grad_output @ W.T.
        ### BEGIN SOLUTION
        x2 = x.reshape(-1, self.in_features)                  # (N, in): every leading axis is batch
        g2 = grad_output.reshape(-1, self.out_features)       # (N, out)
        accumulate_grad(self.weight, x2.T @ g2)               # (in, N) @ (N, out) -> (in, out)
        if self.bias is not None:
            accumulate_grad(self.bias, g2.sum(axis=0))        # (out,)
        return grad_output @ self.weight.T                    # (..., out) @ (out, in) -> (..., in)
        ### END SOLUTION

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")

# %% [markdown]
# ### Linear: initialization

# %%
#| test: linear_init (2 points)
def test_linear_init():
    layer = Linear(4, 16)
    assert isinstance(layer.weight, Parameter) and layer.weight.shape == (4, 16), (
        "Linear(4, 16).weight should be a Parameter of shape (in, out) = (4, 16), got "
        f"{layer.weight!r}.")
    assert isinstance(layer.bias, Parameter) and layer.bias.shape == (16,), (
        f"Linear(4, 16).bias should be a Parameter of shape (16,), got {layer.bias!r}.")
    assert layer.weight.dtype == np.float32, (
        f"weights are float32, got {layer.weight.dtype}.")
    assert np.abs(layer.weight.data).max() <= 0.5, (
        f"weights of Linear(4, 16) should lie in [-1/sqrt(4), 1/sqrt(4)] = [-0.5, 0.5]; "
        f"the largest has |w| = {np.abs(layer.weight.data).max():.3f}.")
    assert len(np.unique(layer.weight.data)) > 1, "weights must be random, not all equal."
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"], (
        "register the weight first, then the bias.")
    nobias = Linear(3, 2, bias=False)
    assert nobias.bias is None and len(nobias.parameters()) == 1, (
        "Linear(3, 2, bias=False): bias should be None and the only parameter the "
        "weight.")
    manual_seed(0)
    first = Linear(3, 2).weight.data.copy()
    manual_seed(0)
    assert np.array_equal(first, Linear(3, 2).weight.data), (
        "after manual_seed(0), Linear(3, 2) should get the same weights every time. "
        "Hint: draw with _generator, not np.random.")

test_linear_init()
### BEGIN HIDDEN TESTS
manual_seed(3)
_big = Linear(400, 100)
_k = 1 / np.sqrt(400)
assert np.abs(_big.weight.data).max() <= _k + 1e-7, "the bound is 1/sqrt(in_features)"
assert np.abs(_big.weight.data).max() > 0.95 * _k, "weights should fill U(-k, k), k = 1/sqrt(in_features)"
assert abs(_big.weight.data.std() - _k / np.sqrt(3)) < 0.05 * _k, "a uniform U(-k, k) has std k/sqrt(3)"
assert abs(_big.weight.data.mean()) < 0.05 * _k
assert np.abs(_big.bias.data).max() <= _k + 1e-7, "the bias lies in U(-k, k) too"
assert len(np.unique(_big.bias.data)) > 50, "the bias is drawn from U(-k, k) like the weight (PyTorch's default), not zeros"
assert _big.bias.dtype == np.float32 and _big.bias.requires_grad
manual_seed(7)
_a = Linear(5, 3)
manual_seed(7)
_b = Linear(5, 3)
assert np.array_equal(_a.bias.data, _b.bias.data), "the bias must be reproducible with manual_seed too"
_c = Linear(5, 3)
assert not np.array_equal(_b.weight.data, _c.weight.data), "two layers in a row get different weights"
assert repr(Linear(2, 3)) == "Linear(in_features=2, out_features=3, bias=True)"
### END HIDDEN TESTS

# %% [markdown]
# ### Linear: forward

# %%
#| test: linear_forward (2 points)
def test_linear_forward():
    layer = Linear(2, 3)
    layer.weight.data[...] = [[1, 0, -1], [2, 1, 0]]
    layer.bias.data[...] = [1, 1, 1]
    y = layer(Tensor([[1.0, 2.0]]))
    assert (isinstance(y, Tensor) and y.shape == (1, 3)
            and np.allclose(y.data, [[6, 3, 0]])), (
        "Linear with W = [[1, 0, -1], [2, 1, 0]], b = [1, 1, 1] on x = [[1, 2]]: "
        f"expected [[6, 3, 0]], got {y!r}. Hint: x @ W + b.")
    y = layer(Tensor([[1.0, 2.0], [0.0, 0.0], [-1.0, 1.0]]))
    assert y.shape == (3, 3) and np.allclose(y.data, [[6, 3, 0], [1, 1, 1], [2, 2, 2]]), (
        "on a batch of 3 rows: expected [[6, 3, 0], [1, 1, 1], [2, 2, 2]], got "
        f"{y.data}.")

test_linear_forward()
### BEGIN HIDDEN TESTS
_l = Linear(2, 3)
_l.weight.data[...] = [[1, 0, -1], [2, 1, 0]]
_l.bias.data[...] = [1, 1, 1]
_x = np.arange(24, dtype=np.float32).reshape(4, 3, 2)
_y = _l(Tensor(_x))
assert _y.shape == (4, 3, 3), "leading axes are a batch: (4, 3, 2) -> (4, 3, 3)"
assert np.allclose(_y.data, _x @ _l.weight.data + _l.bias.data)
assert _l(Tensor([1.0, 2.0])).shape == (3,), "a single example of shape (in,) gives (out,)"
_n = Linear(2, 3, bias=False)
_n.weight.data[...] = [[1, 0, -1], [2, 1, 0]]
assert np.allclose(_n(Tensor([[1.0, 2.0]])).data, [[5, 2, -1]]), "bias=False: y = x @ W"
assert _l(np.array([[1.0, 2.0]])).shape == (1, 3), "a NumPy array input works too"
try:
    _l(Tensor(np.ones((2, 3))))
except ValueError as _e:
    assert "(2, 3)" in str(_e)
else:
    raise AssertionError("a wrong input size must raise ValueError")
assert _l(Tensor([[1.0, 2.0]])).dtype == np.float32
from tinytorch.testing import cases, check_against, check_graph  # noqa: E402

# x @ W + b for every batch shape, magnitude and dtype, with the layer's own weights
manual_seed(4)
_l = Linear(4, 3)
_w, _bw = _l.weight.data.astype(np.float64), _l.bias.data.astype(np.float64)
check_against(_l, lambda a: a @ _w + _bw, cases([(4,), (1, 4), (6, 4), (2, 5, 4)]),
              name="Linear(4, 3)")


# the graph contract: module 07's backward() must reach the input, the weight and the bias
def _linear_graph(x, weight, bias=None):
    layer = Linear(4, 3, bias=bias is not None)
    layer.weight, layer.bias = weight, bias
    return layer(x)


_x = np.linspace(-1.5, 2.0, 24).reshape(2, 3, 4)
_w = np.linspace(-1.0, 1.0, 12).reshape(4, 3)
try:
    check_graph(_linear_graph, [_x, _w, np.array([0.5, -0.25, 1.0])], tensor=Parameter,
                name="Linear(4, 3).forward")
    check_graph(_linear_graph, [_x[0], _w], tensor=Parameter,
                name="Linear(4, 3, bias=False).forward")
except AssertionError as _err:
    raise AssertionError(f"{_err} Hint: compute with the Tensors x, self.weight and self.bias "
                         "(x @ self.weight + self.bias), never with their .data arrays.") from None
### END HIDDEN TESTS

# %% [markdown]
# ### Linear: backward

# %%
#| test: linear_backward (3 points)
def test_linear_backward():
    layer = Linear(2, 3)
    layer.weight.data[...] = [[1, 0, -1], [2, 1, 0]]
    layer.bias.data[...] = [1, 1, 1]
    layer(Tensor([[1.0, 2.0]]))
    dx = layer.backward(Tensor([[1.0, 0.0, 2.0]]))
    assert (isinstance(dx, Tensor) and dx.shape == (1, 2)
            and np.allclose(dx.data, [[-1, 2]])), (
        f"the worked example: dx = g @ W.T should be [[-1, 2]], got {dx!r}.")
    assert (layer.weight.grad is not None
            and np.allclose(layer.weight.grad.data, [[1, 0, 2], [2, 0, 4]])), (
        f"dW = x.T @ g should be [[1, 0, 2], [2, 0, 4]], got "
        f"{None if layer.weight.grad is None else layer.weight.grad.data}.")
    assert layer.bias.grad is not None and np.allclose(layer.bias.grad.data, [1, 0, 2]), (
        f"db = g summed over the batch should be [1, 0, 2], got "
        f"{None if layer.bias.grad is None else layer.bias.grad.data}.")
    assert layer.weight.grad.shape == (2, 3) and layer.bias.grad.shape == (3,), (
        "a gradient has its parameter's shape.")

    layer.zero_grad()
    layer(Tensor([[1.0, 2.0], [3.0, -1.0]]))
    layer.backward(Tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 1.0]]))
    assert (np.allclose(layer.weight.grad.data, [[1, 3, 5], [2, -1, 3]])
            and np.allclose(layer.bias.grad.data, [1, 1, 3])), (
        "a batch of 2 rows: dW should be [[1, 3, 5], [2, -1, 3]] and db [1, 1, 3] (sums "
        f"over the batch), got {layer.weight.grad.data.tolist()} and "
        f"{layer.bias.grad.data}.")
    layer.backward(Tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 1.0]]))
    assert np.allclose(layer.bias.grad.data, [2, 2, 6]), (
        "a second backward must ADD to .grad (accumulate): db should now be [2, 2, 6], "
        f"got {layer.bias.grad.data}. Hint: accumulate_grad creates .grad when None, "
        "else adds.")

test_linear_backward()
### BEGIN HIDDEN TESTS
def _numeric_grads(layer, x, g, eps=1e-6):
    """Finite differences of L = sum(layer(x) * g), in float64."""
    def loss():
        return float((layer(Tensor(x, dtype=np.float64)).data * g).sum())
    grads = []
    for array in [x, layer.weight.data] + ([layer.bias.data] if layer.bias is not None else []):
        out = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            old = array[index]
            array[index] = old + eps
            up = loss()
            array[index] = old - eps
            down = loss()
            array[index] = old
            out[index] = (up - down) / (2 * eps)
        grads.append(out)
    return grads

_rng = np.random.default_rng(5)
for _shape, _bias in [((2, 3, 4), True), ((5, 4), False), ((4,), True)]:
    _l = Linear(4, 3, bias=_bias)
    _l.weight = Parameter(_rng.standard_normal((4, 3)), dtype=np.float64)
    if _bias:
        _l.bias = Parameter(_rng.standard_normal(3), dtype=np.float64)
    _x = _rng.standard_normal(_shape)
    _g = _rng.standard_normal(_shape[:-1] + (3,))
    _expected = _numeric_grads(_l, _x, _g)
    _l(Tensor(_x, dtype=np.float64))
    _dx = _l.backward(Tensor(_g, dtype=np.float64))
    assert _dx.shape == _shape, f"dx must have the input's shape {_shape}, got {_dx.shape}"
    assert np.allclose(_dx.data, _expected[0], atol=1e-6), f"dx wrong for input shape {_shape}"
    assert np.allclose(_l.weight.grad.data, _expected[1], atol=1e-6), f"dW wrong for input shape {_shape}"
    assert _l.weight.grad.dtype == np.float64, "a float64 parameter gets a float64 gradient"
    if _bias:
        assert np.allclose(_l.bias.grad.data, _expected[2], atol=1e-6), f"db wrong for input shape {_shape}"
        assert _l.bias.grad.dtype == np.float64
    else:
        assert _l.bias is None
_l = Linear(2, 2)
_l(Tensor([[1.0, 1.0]]))
_g = Tensor([[1.0, 1.0]])
_l.backward(_g)
_first = _l.weight.grad
_l.backward(_g)
assert _l.weight.grad is _first and np.allclose(_first.data, 2.0), "accumulate in place into the existing grad"
assert np.allclose(_g.data, 1.0), "backward must not change grad_output"
try:
    Linear(2, 2).backward(Tensor([[1.0, 1.0]]))
except RuntimeError:
    pass
else:
    raise AssertionError("backward before forward must raise RuntimeError")
# a gradient has the dtype of its parameter, whatever the dtype of the input and of dL/dy
for _pdt, _xdt in [(np.float32, np.float64), (np.float64, np.float32)]:
    _l = Linear(4, 3)
    _l.weight = Parameter(_l.weight.data, dtype=_pdt)
    _l.bias = Parameter(_l.bias.data, dtype=_pdt)
    _l(Tensor(np.ones((2, 4)), dtype=_xdt))
    _l.backward(Tensor(np.ones((2, 3)), dtype=_xdt))
    for _name, _p in _l.named_parameters():
        assert _p.grad.dtype == _pdt, (
            f"a {np.dtype(_pdt)} Linear fed {np.dtype(_xdt)} inputs: {_name}.grad should be "
            f"{np.dtype(_pdt)} like {_name}, got {_p.grad.dtype}. Hint: accumulate_grad builds "
            "the gradient with the parameter's dtype.")
### END HIDDEN TESTS

# %%
layer = Linear(2, 3)
layer.weight.data[...] = [[1, 0, -1], [2, 1, 0]]
layer.bias.data[...] = [1, 1, 1]
print(layer)
print("y  =", layer(Tensor([[1.0, 2.0]])).data)
print("dx =", layer.backward(Tensor([[1.0, 0.0, 2.0]])).data)
print("dW =", layer.weight.grad.data.tolist(), " db =", layer.bias.grad.data)

# %% [markdown]
# ## Sequential: a chain of layers
#
# Most networks are a chain: the output of one piece is the input of the next. Then the
# backward pass is the same chain, walked the other way, each piece turning `dL/d(its
# output)` into `dL/d(its input)`:
#
# ```
# forward:   x -> Linear(2, 3) -> ReLU -> Linear(3, 1) -> y
# backward: dx <- Linear.backward <- ReLU.backward <- Linear.backward <- dy
# ```
#
# `Sequential(*layers)` holds the pieces in a list. Modules among them are registered as
# children named by their position, `"0"`, `"2"`, ..., so `named_parameters()` gives
# `0.weight`, `0.bias`, `2.weight`, `2.bias`, exactly PyTorch's names. Module 03's
# activations are not Modules (they have no parameters): they stay in the list, take part in
# forward and backward, and show in the printout, but own nothing. Anything with `forward`
# and `backward` fits.

# %%
#| export
def _layer_repr(layer):
    if isinstance(layer, Module) or type(layer).__repr__ is not object.__repr__:
        return repr(layer)
    return f"{type(layer).__name__}()"


class Sequential(Module):
    """Layers applied in order; backward applies their backward in reverse order.

    >>> model = Sequential(Linear(2, 3), ReLU(), Linear(3, 1))      # ReLU from module 03
    >>> [name for name, _ in model.named_parameters()]
    ['0.weight', '0.bias', '2.weight', '2.bias']
    """

    def __init__(self, *layers):
        super().__init__()
        for index, layer in enumerate(layers):
            if not (callable(getattr(layer, "forward", None))
                    and callable(getattr(layer, "backward", None))):
                raise TypeError(f"Sequential: item {index} ({type(layer).__name__}) is "
                                "not a layer: it needs forward() and backward()")
            if isinstance(layer, Module):
                setattr(self, str(index), layer)     # registered as child "0", "1", ...
        self.layers = list(layers)

    def forward(self, x):
        """Apply each layer to the output of the one before."""
        # TODO: feed x through every layer in order and return the last output.
        ### BEGIN SOLUTION
        for layer in self.layers:
            x = layer(x)
        return x
        ### END SOLUTION

    def backward(self, grad_output):
        """dL/d(output) -> dL/d(input), through every layer's backward in reverse
        order."""
        # TODO: pass the gradient through every layer's backward, last layer first, and
        #       return it.
        ### BEGIN SOLUTION
        for layer in reversed(self.layers):
            grad_output = layer.backward(grad_output)
        return grad_output
        ### END SOLUTION

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, index):
        return self.layers[index]

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self):
        children = [(str(index), _layer_repr(layer))
                    for index, layer in enumerate(self.layers)]
        return _describe(type(self).__name__, self.extra_repr(), children)

# %%
manual_seed(0)
model = Sequential(Linear(2, 3), ReLU(), Linear(3, 1))
print(model)
print([(name, p.shape) for name, p in model.named_parameters()])
out = model(Tensor([[1.0, 2.0], [-1.0, 0.5]]))
dx = model.backward(Tensor(np.ones((2, 1))))
print("out:", out.data.ravel(), " dL/dx:", dx.data.tolist())

# %% [markdown]
# ## Dropout
#
# A large network can memorize its training set by letting units rely on each other's
# exact values. Dropout breaks such co-adaptation: during training it sets each input
# element to 0 with probability `p`, a fresh random choice at every forward pass, so no unit
# can count on any other being there.
#
# **Inverted dropout.** Zeroing a fraction `p` shrinks the expected value of every element to
# `(1 - p) x`, and the next layer would see smaller numbers in training than in evaluation.
# So the elements kept are scaled by `1 / (1 - p)`: the expected value stays `x`, and
# evaluation is the identity. With `p = 0.5` and `x = [1, 2, 3, 4]`, one draw gives
#
# ```
# keep  = [1, 0, 1, 0]            (each kept with probability 1 - p)
# mask  = keep / (1 - p) = [2, 0, 2, 0]
# y     = x * mask = [2, 0, 6, 0]     mean over many draws: [1, 2, 3, 4]
# ```
#
# **Backward.** `y = x * mask` is elementwise, so `dL/dx = dL/dy * mask`, with the *same* mask
# as the forward pass: cache it. In evaluation mode (`model.eval()`), and for `p = 0`, the
# layer passes `x` through and backward passes the gradient through. `p` must be in
# `[0, 1)`: with `p = 1` nothing survives and `1 / (1 - p)` divides by zero.

# %%
#| export
class Dropout(Module):
    """In training, zero each element with probability p and scale the rest by 1/(1-p);
    in evaluation (after .eval()), the identity."""

    def __init__(self, p=0.5):
        super().__init__()
        number = isinstance(p, (int, float, np.floating, np.integer))
        if isinstance(p, bool) or not number or not 0 <= p < 1:
            raise ValueError(
                f"Dropout probability p must be a number in [0, 1), got {p!r}")
        self.p = float(p)
        # the scaled mask of the last training forward
        self._mask = None

    def forward(self, x):
        x = x if isinstance(x, Tensor) else Tensor(x)
        # TODO: in evaluation mode or with p == 0, set self._mask to None and return x.
        #       Otherwise keep each element with probability 1 - p, using _generator:
        #       self._mask = Tensor(keep / (1 - p), dtype=x.dtype), and return x *
        #       self._mask.
        ### BEGIN SOLUTION
        if not self.training or self.p == 0.0:
            self._mask = None
            return x
        keep = _generator.random(x.shape) >= self.p
        self._mask = Tensor(keep / (1.0 - self.p), dtype=x.dtype)
        return x * self._mask
        ### END SOLUTION

    def backward(self, grad_output):
        """dL/dx = dL/dy * mask (the identity when the forward pass was)."""
        # TODO: return grad_output unchanged when there is no mask; otherwise times the
        #       mask.
        ### BEGIN SOLUTION
        if self._mask is None:
            return grad_output
        return grad_output * self._mask
        ### END SOLUTION

    def extra_repr(self):
        return f"p={self.p}"

# %% [markdown]
# ### Sequential

# %%
#| test: sequential (2 points)
def test_sequential():
    first, second = Linear(2, 3), Linear(3, 1)
    first.weight.data[...] = [[1, 0, -1], [2, 1, 0]]
    first.bias.data[...] = [1, 1, 0.5]
    second.weight.data[...] = [[1], [-1], [2]]
    second.bias.data[...] = [0.5]
    model = Sequential(first, ReLU(), second)
    names = [n for n, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias"], (
        "Sequential(Linear, ReLU, Linear).named_parameters(): expected ['0.weight', "
        f"'0.bias', '2.weight', '2.bias'], got {names}.")
    y = model(Tensor([[1.0, 2.0]]))
    # hidden = relu([6, 3, -0.5]) = [6, 3, 0]; y = 6 - 3 + 0 + 0.5 = 3.5
    assert np.allclose(y.data, [[3.5]]), (
        f"forward: expected [[3.5]], got {y.data}. Hint: apply the layers in order.")
    dx = model.backward(Tensor([[1.0]]))
    # dh = [1, -1, 2] * relu'([6, 3, -0.5]) = [1, -1, 0]; dx = dh @ W1.T = [1, 1]
    assert dx.shape == (1, 2) and np.allclose(dx.data, [[1, 1]]), (
        f"backward: expected dL/dx = [[1, 1]], got {dx.data}. Hint: the layers' backward "
        "in reverse order.")
    assert np.allclose(second.weight.grad.data, [[6], [3], [0]]), (
        "the last Linear's weight gradient should be h.T @ g = [[6], [3], [0]], got "
        f"{second.weight.grad.data}.")

test_sequential()
### BEGIN HIDDEN TESTS
manual_seed(11)
_a, _b, _c = Linear(3, 4), Linear(4, 4), Linear(4, 2)
_seq = Sequential(_a, Tanh(), _b, ReLU(), _c)
_x = Tensor(np.random.default_rng(2).standard_normal((5, 3)))
_y = _seq(_x)
_h1 = np.tanh(_x.data @ _a.weight.data + _a.bias.data)
_h2 = np.maximum(_h1 @ _b.weight.data + _b.bias.data, 0)
assert np.allclose(_y.data, _h2 @ _c.weight.data + _c.bias.data, atol=1e-5)
_g = np.ones((5, 2), dtype=np.float32)
_dx = _seq.backward(Tensor(_g))
_d2 = (_g @ _c.weight.data.T) * (_h1 @ _b.weight.data + _b.bias.data > 0)
_d1 = (_d2 @ _b.weight.data.T) * (1 - _h1 ** 2)
assert np.allclose(_c.weight.grad.data, _h2.T @ _g, atol=1e-5)
assert np.allclose(_a.weight.grad.data, _x.data.T @ _d1, atol=1e-5)
assert np.allclose(_dx.data, _d1 @ _a.weight.data.T, atol=1e-5)
assert len(_seq.parameters()) == 6 and len(_seq) == 5 and _seq[2] is _b
_nested = Sequential(Sequential(Linear(2, 2), Tanh()), Linear(2, 1))
assert [n for n, _ in _nested.named_parameters()] == ["0.0.weight", "0.0.bias", "1.weight", "1.bias"]
_d = Dropout(0.5)
_sd = Sequential(Linear(2, 2), _d)
_sd.eval()
assert _d.training is False, "eval() on a Sequential reaches its Dropout"
_r = repr(Sequential(Linear(2, 3), ReLU(), Linear(3, 1)))
assert "(0): Linear(in_features=2, out_features=3, bias=True)" in _r and "(1): ReLU" in _r
### END HIDDEN TESTS

# %% [markdown]
# ### Dropout

# %%
#| test: dropout (2 points)
def test_dropout():
    for bad in (-0.1, 1.0, 1.5):
        try:
            Dropout(bad)
        except ValueError:
            pass
        else:
            raise AssertionError(
                f"Dropout({bad}) should raise ValueError: p must be in [0, 1).")
    drop = Dropout(0.25)
    x = Tensor(np.ones((100, 100)))
    y = drop(x)
    zeros = float((y.data == 0).mean())
    assert y.shape == (100, 100) and 0.2 < zeros < 0.3, (
        "Dropout(0.25) on 10,000 ones should zero about 25% of them, zeroed "
        f"{zeros:.1%}.")
    kept = y.data[y.data != 0]
    assert np.allclose(kept, 1 / 0.75), (
        f"the kept elements should be scaled by 1/(1 - p) = {1 / 0.75:.4f}, got values "
        f"{np.unique(kept)[:5]}.")
    g = drop.backward(Tensor(np.ones((100, 100))))
    assert np.array_equal(g.data, y.data), (
        "backward on a gradient of ones should give the forward's mask (same zeros, same "
        "scale). Hint: cache the scaled mask in forward.")
    drop.eval()
    x = Tensor([1.0, 2.0, 3.0])
    assert np.array_equal(drop(x).data, [1, 2, 3]), (
        f"in eval mode Dropout is the identity, got {drop(x).data}.")
    assert np.array_equal(drop.backward(Tensor([1.0, 1.0, 1.0])).data, [1, 1, 1]), (
        "eval backward is the identity.")

test_dropout()
### BEGIN HIDDEN TESTS
manual_seed(42)
_m1 = Dropout(0.5)(Tensor(np.ones(50))).data
manual_seed(42)
_m2 = Dropout(0.5)(Tensor(np.ones(50))).data
assert np.array_equal(_m1, _m2), "after manual_seed, Dropout must draw the same mask: use _generator"
_d = Dropout(0.5)
_a = _d(Tensor(np.ones(50))).data
_b = _d(Tensor(np.ones(50))).data
assert not np.array_equal(_a, _b), "every forward draws a fresh mask"
manual_seed(0)
_big = Dropout(0.5)(Tensor(np.full(20000, 3.0))).data
assert abs(_big.mean() - 3.0) < 0.1, "inverted dropout keeps the expected value"
_z = Dropout(0.0)
assert np.array_equal(_z(Tensor([1.0, 2.0])).data, [1, 2]) and np.array_equal(_z.backward(Tensor([5.0, 5.0])).data, [5, 5])
_d64 = Dropout(0.3)
assert _d64(Tensor(np.ones(8), dtype=np.float64)).dtype == np.float64, "dropout keeps the input's dtype"
_d64.train()
_x = Tensor(np.arange(1.0, 101.0))
_y = _d64(_x)
_g = _d64.backward(Tensor(np.full(100, 2.0)))
assert np.allclose(_g.data, 2.0 * (_y.data / _x.data)), "backward multiplies by the same scaled mask"
assert repr(Dropout(0.3)) == "Dropout(p=0.3)"
from tinytorch.testing import assert_untouched, check_graph  # noqa: E402

_state = get_rng_state()
_y = Dropout(0.0)(Tensor([[1.0, -2.0, 3.0]]))
assert np.array_equal(_y.data, [[1, -2, 3]]) and get_rng_state() == _state, (
    "Dropout(0.0) in training mode should return x and draw nothing from the generator: with a "
    "draw, adding it to a model would change every later random number. Hint: p == 0 takes the "
    "same path as evaluation mode.")
_x = np.random.default_rng(8).standard_normal((30, 7))
_y = Dropout(0.3)(Tensor(_x, dtype=np.float64)).data
_kept = _y != 0
assert np.allclose(_y[_kept], _x[_kept] / 0.7, rtol=1e-12, atol=0), (
    "Dropout(0.3) on a float64 input: every kept element should be x / 0.7 to float64 "
    f"precision; the worst is off by {np.max(np.abs(_y[_kept] * 0.7 / _x[_kept] - 1)):.1e} "
    "(relative). Hint: build the mask with the input's dtype.")
manual_seed(9)
_keep = Dropout(0.5)(Tensor(np.ones((64, 16)))).data != 0
_rows, _columns = len({_r.tobytes() for _r in _keep}), len({_c.tobytes() for _c in _keep.T})
assert _rows >= 60 and _columns == 16, (
    f"Dropout(0.5) on a (64, 16) batch: every element needs its own keep/drop draw, but only "
    f"{_rows} of the 64 rows and {_columns} of the 16 columns differ. Hint: draw a mask of "
    "x's whole shape.")
_d = Dropout(0.5)


def dropout_forward(x):
    return _d(x)


assert_untouched(dropout_forward, Tensor(np.linspace(1.0, 2.0, 12).reshape(3, 4)), no_view=True)
assert_untouched(_d.backward, Tensor(np.full((3, 4), 2.0)))


def _seeded_dropout(x):
    manual_seed(12)                     # the same mask at every call: one function to check
    return Dropout(0.4)(x)


try:
    check_graph(_seeded_dropout, [np.linspace(-1.0, 1.0, 15).reshape(3, 5)],
                name="Dropout(0.4).forward")
except AssertionError as _err:
    raise AssertionError(f"{_err} Hint: return x * self._mask, a Tensor product, not a product "
                         "of .data arrays.") from None
### END HIDDEN TESTS

# %%
manual_seed(1)
drop = Dropout(0.5)
print(drop, "training:", drop(Tensor([1.0, 2.0, 3.0, 4.0])).data)
print(drop, "eval    :", drop.eval()(Tensor([1.0, 2.0, 3.0, 4.0])).data)

# %% [markdown]
# ## Putting it together: a model as a Module
#
# A model is a Module whose children are layers. Its `forward` says how data flows; its
# `backward` walks the same path in reverse. Everything else (finding the parameters,
# naming them, saving, switching modes) it inherits.

# %%
class MLP(Module):
    def __init__(self, n_in, n_hidden, n_out, p=0.1):
        super().__init__()
        self.hidden = Linear(n_in, n_hidden)
        self.act = Tanh()                          # not a Module: nothing to register
        self.drop = Dropout(p)
        self.out = Linear(n_hidden, n_out)

    def forward(self, x):
        return self.out(self.drop(self.act(self.hidden(x))))

    def backward(self, grad_output):
        g = self.out.backward(grad_output)
        g = self.drop.backward(g)
        g = self.act.backward(g)
        return self.hidden.backward(g)

manual_seed(0)
mlp = MLP(2, 4, 1)
print(mlp)
y = mlp(Tensor([[0.0, 1.0], [1.0, 0.0]]))
mlp.backward(Tensor(np.ones_like(y.data)))
print({name: p.grad.shape for name, p in mlp.named_parameters()})
snapshot = mlp.state_dict()
mlp.zero_grad()
mlp.eval()
print("grads after zero_grad:", [p.grad for p in mlp.parameters()],
      " dropout training:", mlp.drop.training)

# %% [markdown]
# ## What you built, and what comes next
#
# Weights now live inside the layers that use them. A `Module` finds every parameter of a
# model, names it, saves and loads it, clears its gradient and switches its mode, however
# deep the tree. `Linear` computes `x @ W + b` and, by hand, its three gradients; `Sequential`
# chains layers forward and backward; `Dropout` regularizes in training and steps aside in
# evaluation.
#
# The network computes an output and, given `dL/dy`, every weight's gradient. But where
# does `dL/dy` come from? What is `L`? A network that outputs `0.73` for an example whose
# answer is `1` is wrong by *how much*, and in which direction should it move? **Networks
# need a learning objective**: module 05 writes the losses that turn predictions and targets
# into one number, and its gradient, the first `dL/dy` of every backward pass.
