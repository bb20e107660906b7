"""tinytorch.core.autograd against torch.autograd (CPU, float64) as the oracle.

Over shapes from hypothesis (broadcasting pairs included), every differentiable op that
module 02 and modules 03-05 record gives torch's value and torch's gradient for each input
to 1e-10, through `loss.backward()`. Then the engine's contract: each node visited once (a
1,000-step chain that reuses every value twice, counted, not timed), accumulation over two
backward() calls, no_grad, detach, gradcheck naming a planted wrong gradient, a quiet import,
and the layers and losses of 03-05 giving through autograd the gradients of their
hand-written backward.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinytorch
from tinytorch.core import autograd
from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.autograd import GRADIENTS, gradcheck, no_grad
from tinytorch.core.layers import Dropout, Linear, Sequential, manual_seed
from tinytorch.core.losses import BCELoss, CrossEntropyLoss, MSELoss
from tinytorch.core.tensor import Tensor, is_grad_enabled

SETTINGS = settings(max_examples=20, deadline=None)
TOL = dict(rtol=1e-10, atol=1e-10)

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
matrix_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


def arrays(shape, low=-3.0, high=3.0):
    return hnp.arrays(np.float64, shape, elements=st.floats(low, high))


@st.composite
def broadcast_pairs(draw, low=-3.0, high=3.0):
    pair = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=4))
    a_shape, b_shape = pair.input_shapes
    return draw(arrays(a_shape)), draw(arrays(b_shape, low, high))


def compare(ours, theirs, *arrays_):
    """ours(*Tensors) and theirs(*torch tensors) agree in value and in every input's gradient.
    A non-scalar output is reduced with fixed weights, so each element's gradient counts."""
    leaves = [Tensor(a, dtype=np.float64, requires_grad=True) for a in arrays_]
    torch_leaves = [torch.tensor(a, requires_grad=True) for a in arrays_]
    out, expected = ours(*leaves), theirs(*torch_leaves)
    assert out.dtype == np.float64 and out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), **TOL)
    weights = np.linspace(0.5, 1.5, out.size).reshape(out.shape)
    (out * Tensor(weights, dtype=np.float64)).sum().backward()
    (expected * torch.tensor(weights)).sum().backward()
    for index, (leaf, torch_leaf) in enumerate(zip(leaves, torch_leaves, strict=True)):
        assert leaf.grad is not None, f"input {index} got no gradient"
        assert leaf.grad.shape == leaf.shape and leaf.grad.dtype == np.float64
        np.testing.assert_allclose(leaf.grad.data, torch_leaf.grad.numpy(), **TOL,
                                   err_msg=f"gradient of input {index}")


# --- module 02's operations ----------------------------------------------------------------------

BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
}


@pytest.mark.parametrize("op", sorted(BINARY))
@SETTINGS
@given(pair=broadcast_pairs())
def test_binary_ops_match_torch_with_broadcasting(op, pair):
    compare(*BINARY[op], *pair)


@SETTINGS
@given(pair=broadcast_pairs(low=0.5, high=3.0), sign=st.sampled_from([-1.0, 1.0]))
def test_div_matches_torch_with_broadcasting(pair, sign):
    a, b = pair
    compare(lambda x, y: x / y, lambda x, y: x / y, a, sign * b)


@SETTINGS
@given(a=shapes.flatmap(arrays))
def test_neg_matches_torch(a):
    compare(lambda x: -x, lambda x: -x, a)


@SETTINGS
@given(a=shapes.flatmap(lambda s: arrays(s, 0.5, 3.0)), exponent=st.sampled_from([0, 1, 2, 3, 0.5, -1.5, 2.5]))
def test_pow_matches_torch(a, exponent):
    compare(lambda x: x ** exponent, lambda x: x ** exponent, a)


@st.composite
def matmul_pairs(draw):
    """Operands np.matmul accepts: 1-D, 2-D and batched, with a broadcast batch."""
    m, k, n = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    batch = draw(st.sampled_from([(), (2,), (3, 1)]))
    left = draw(st.sampled_from(["1d", "2d", "batch"]))
    right = draw(st.sampled_from(["1d", "2d", "batch"]))
    a_shape = {"1d": (k,), "2d": (m, k), "batch": batch + (m, k)}[left]
    b_shape = {"1d": (k,), "2d": (k, n), "batch": (batch[-1:] if batch else ()) + (k, n)}[right]
    return draw(arrays(a_shape)), draw(arrays(b_shape))


@SETTINGS
@given(pair=matmul_pairs())
def test_matmul_matches_torch_for_1d_2d_and_batched(pair):
    compare(lambda x, y: x @ y, torch.matmul, *pair)


@st.composite
def reductions(draw):
    a = draw(shapes.flatmap(arrays))
    axis = None
    if a.ndim and draw(st.booleans()):
        axes = draw(st.lists(st.integers(-a.ndim, a.ndim - 1), min_size=1, max_size=a.ndim,
                             unique_by=lambda ax: ax % a.ndim))
        axis = axes[0] if len(axes) == 1 and draw(st.booleans()) else tuple(axes)
    return a, axis, draw(st.booleans())


def _dims(a, axis):
    return tuple(range(a.ndim)) if axis is None else axis


@SETTINGS
@given(case=reductions())
def test_sum_and_mean_match_torch(case):
    a, axis, keepdims = case
    dims = _dims(a, axis)
    compare(lambda x: x.sum(axis=axis, keepdims=keepdims), lambda x: x.sum(dim=dims, keepdim=keepdims), a)
    compare(lambda x: x.mean(axis=axis, keepdims=keepdims), lambda x: x.mean(dim=dims, keepdim=keepdims), a)


@SETTINGS
@given(case=reductions(), ties=st.booleans())
def test_max_matches_torch_amax_including_ties(case, ties):
    a, axis, keepdims = case
    if ties:
        a = np.round(a)              # few distinct values: ties everywhere; torch.amax splits them
    dims = _dims(a, axis)
    compare(lambda x: x.max(axis=axis, keepdims=keepdims), lambda x: torch.amax(x, dim=dims, keepdim=keepdims), a)


def test_max_of_everything_splits_ties_like_torch_max():
    a = np.array([[1.0, 3.0], [3.0, 0.0]])
    compare(lambda x: x.max(), lambda x: x.max(), a)


@SETTINGS
@given(a=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4).flatmap(arrays), data=st.data())
def test_reshape_and_transpose_match_torch(a, data):
    axes = tuple(data.draw(st.permutations(range(a.ndim))))
    compare(lambda x: x.reshape(-1), lambda x: x.reshape(-1), a)
    compare(lambda x: x.transpose(axes) * 2, lambda x: x.permute(*axes) * 2, a)
    compare(lambda x: x.T.reshape(a.size, 1), lambda x: x.permute(*reversed(range(a.ndim))).reshape(a.size, 1), a)


@pytest.mark.parametrize("key", [
    0, -1, (slice(None), 1), (slice(1, None), slice(None, 2)),
    [0, 2, 0],                                   # fancy, with a repeated index: both gradients add
    (np.array([2, 0, 2]), np.array([1, 1, 0])),
    (Ellipsis, 0),
], ids=["int", "negative", "column", "slices", "fancy-repeat", "fancy-pairs", "ellipsis"])
def test_getitem_matches_torch(key):
    a = np.arange(12.0).reshape(3, 4) / 7
    torch_key = tuple(torch.tensor(k) if isinstance(k, np.ndarray) else k for k in key) if isinstance(key, tuple) else key
    compare(lambda x: x[key], lambda x: x[torch_key], a)


def test_getitem_with_a_bool_mask_matches_torch():
    a = np.array([[1.0, -2.0], [-3.0, 4.0]])
    compare(lambda x: x[x > 0], lambda x: x[x > 0], a)


# --- the ops of modules 03-05 ----------------------------------------------------------------------

ACTIVATIONS = {
    "relu": (ReLU, torch.relu),
    "sigmoid": (Sigmoid, torch.sigmoid),
    "tanh": (Tanh, torch.tanh),
    "gelu": (GELU, lambda x: F.gelu(x, approximate="tanh")),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@SETTINGS
@given(a=shapes.flatmap(lambda s: arrays(s, -6.0, 6.0)))
def test_activations_match_torch(name, a):
    make, theirs = ACTIVATIONS[name]
    if name == "relu":
        a = np.where(np.abs(a) < 1e-3, 0.5, a)       # away from the kink, where torch picks 0 too
    compare(lambda x: make()(x), theirs, a)


@SETTINGS
@given(a=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4).flatmap(arrays), data=st.data())
def test_softmax_matches_torch(a, data):
    dim = data.draw(st.integers(-a.ndim, a.ndim - 1))
    compare(lambda x: Softmax(dim=dim)(x), lambda x: torch.softmax(x, dim=dim), a)


@SETTINGS
@given(a=shapes.flatmap(lambda s: st.tuples(arrays(s), arrays(s))))
def test_mse_loss_matches_torch_and_gives_the_target_no_gradient(a):
    pred, target = a
    compare(lambda p: MSELoss()(p, Tensor(target, dtype=np.float64)), lambda p: F.mse_loss(p, torch.tensor(target)), pred)
    t = Tensor(target, dtype=np.float64, requires_grad=True)
    MSELoss()(Tensor(pred, dtype=np.float64, requires_grad=True), t).backward()
    assert t.grad is None


@SETTINGS
@given(a=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4).flatmap(
    lambda s: st.tuples(arrays(s, 0.01, 0.99), arrays(s, 0.0, 1.0))))
def test_bce_loss_matches_torch(a):
    pred, target = a
    compare(lambda p: BCELoss()(p, Tensor(target, dtype=np.float64)),
            lambda p: F.binary_cross_entropy(p, torch.tensor(target)), pred)


@SETTINGS
@given(n=st.integers(1, 5), classes=st.integers(1, 5), data=st.data())
def test_cross_entropy_matches_torch(n, classes, data):
    logits = data.draw(arrays((n, classes), -5.0, 5.0))
    ids = np.array(data.draw(st.lists(st.integers(0, classes - 1), min_size=n, max_size=n)), dtype=np.int64)
    compare(lambda z: CrossEntropyLoss()(z, Tensor(ids, dtype=np.int64)),
            lambda z: F.cross_entropy(z, torch.tensor(ids)), logits)


def test_every_recorded_op_has_exactly_one_rule():
    """Module 07's table covers exactly the ops of modules 02-05 (later modules, e.g. 09's
    convolution, add their own rules when imported: look in a fresh process)."""
    import json
    import subprocess
    import sys

    recorded = {"add", "sub", "mul", "div", "neg", "pow", "matmul", "sum", "mean", "max", "reshape",
                "transpose", "getitem", "relu", "sigmoid", "tanh", "gelu", "softmax", "mse_loss",
                "bce_loss", "cross_entropy"}
    code = "import json; from tinytorch.core.autograd import GRADIENTS; print(json.dumps(sorted(GRADIENTS)))"
    table = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                      check=True).stdout)
    assert set(table) == recorded
    assert recorded <= set(GRADIENTS)


def _recorded_ops() -> dict[str, str]:
    """Every op name that a package file records, `x._result(data, "name", ...)`, and where."""
    found = {}
    for path in sorted(Path(tinytorch.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "_result" and len(node.args) >= 2
                    and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
                found.setdefault(node.args[1].value, f"{path.name}:{node.lineno}")
    return found


# A comparison's result is a bool array, which `_result` never records (see its docstring).
COMPARISONS = {"eq", "ne", "lt", "le", "gt", "ge"}


def test_every_op_the_package_records_has_one_rule_registered_through_register_gradient():
    """Across every module (a fresh process imports them all), each op recorded with
    `_result` has exactly one rule, registered by `register_gradient` from the package: the
    table and its record of sources agree, entry for entry."""
    import json

    recorded = _recorded_ops()
    assert {"add", "matmul", "relu", "cross_entropy", "conv2d", "batch_norm"} <= set(recorded)
    code = (
        "import importlib, json, pkgutil, tinytorch\n"
        "for m in pkgutil.walk_packages(tinytorch.__path__, 'tinytorch.'):\n"
        "    importlib.import_module(m.name)\n"
        "from tinytorch.core.autograd import GRADIENTS, GRADIENT_SOURCES\n"
        "print(json.dumps({op: [f'{r.__module__}.{r.__qualname__}', GRADIENT_SOURCES.get(op)]"
        " for op, r in GRADIENTS.items()}))"
    )
    table = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                      check=True).stdout)
    differentiable = set(recorded) - COMPARISONS
    missing = {op: recorded[op] for op in differentiable - set(table)}
    assert not missing, f"recorded but without a rule (register one with @register_gradient): {missing}"
    assert set(table) == differentiable, f"rules for ops nothing records: {set(table) - differentiable}"
    for op, (rule, source) in table.items():
        assert source == rule, f"{op!r}: GRADIENTS holds {rule}, registered was {source}: set by hand?"
        assert rule.startswith("tinytorch."), f"{op!r}: the package's rule comes from {rule}"


def test_register_gradient_refuses_a_second_rule_and_takes_the_same_function_again(monkeypatch):
    monkeypatch.setattr(autograd, "GRADIENTS", dict(GRADIENTS))
    monkeypatch.setattr(autograd, "GRADIENT_SOURCES", dict(autograd.GRADIENT_SOURCES))

    @autograd.register_gradient("twice")
    def twice_grad(g, x):
        return (2 * g,)

    assert autograd.GRADIENTS["twice"] is twice_grad
    assert autograd.GRADIENT_SOURCES["twice"].endswith("twice_grad")
    assert autograd.register_gradient("twice", twice_grad) is twice_grad     # a re-run cell

    def other_grad(g, x):
        return (g,)

    with pytest.raises(ValueError, match=r"op 'twice' already has a rule, .*twice_grad"):
        autograd.register_gradient("twice", other_grad)
    with pytest.raises(ValueError, match="op 'mul' already has a rule, tinytorch.core.autograd.mul_grad"):
        autograd.register_gradient("mul", other_grad)
    assert autograd.GRADIENTS["mul"] is GRADIENTS["mul"]
    with pytest.raises(TypeError, match="a string"):
        autograd.register_gradient(None, other_grad)
    with pytest.raises(TypeError, match="a function"):
        autograd.register_gradient("thrice", 3)


# --- the engine ------------------------------------------------------------------------------------


def test_a_chain_of_1000_steps_reusing_each_value_twice_visits_each_node_once(monkeypatch):
    calls = []
    for op, rule in list(GRADIENTS.items()):
        monkeypatch.setitem(GRADIENTS, op, lambda *a, _rule=rule, _op=op, **k: calls.append(_op) or _rule(*a, **k))
    x = Tensor(1.5, dtype=np.float64, requires_grad=True)
    y = x
    for _ in range(1000):
        y = y * 0.5 + y * 0.5                     # 3 nodes per step; 2^1000 paths from y to x
    y.backward()
    assert len(calls) == 3000 and calls.count("mul") == 2000
    assert x.grad.item() == 1.0
    assert len(autograd.topological_order(y)) == 3001        # the 3,000 results and x, each once


def test_a_second_backward_accumulates_and_zero_grad_resets():
    w = Tensor([1.0, 2.0], dtype=np.float64, requires_grad=True)
    loss = (w * Tensor([3.0, 4.0], dtype=np.float64)).sum()
    loss.backward()
    np.testing.assert_array_equal(w.grad.data, [3, 4])
    loss.backward()                                          # the graph is kept: it adds, exactly
    np.testing.assert_array_equal(w.grad.data, [6, 8])
    w.grad = None
    loss.backward()
    np.testing.assert_array_equal(w.grad.data, [3, 4])


def test_value_reused_in_one_expression_and_along_several_paths():
    x = Tensor([2.0, -1.0], dtype=np.float64, requires_grad=True)
    (x * x + x * 3 + x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, 2 * np.array([2.0, -1.0]) + 4)


def test_only_leaves_keep_gradients_and_non_scalar_needs_grad():
    x = Tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    with pytest.raises(ValueError, match="one-element"):
        h.backward()
    h.backward(Tensor([1.0, 1.0]))
    assert h.grad is None and np.allclose(x.grad.data, [2, 2]) and x.grad.dtype == np.float32
    with pytest.raises(RuntimeError, match="does not require a gradient"):
        Tensor([1.0]).sum().backward()


def test_no_grad_is_nesting_safe_and_restores_after_errors():
    w = Tensor([1.0], requires_grad=True)
    with no_grad():
        with no_grad():
            assert not (w * 2).requires_grad
        assert not (w * 2).requires_grad and not is_grad_enabled()
    assert is_grad_enabled() and (w * 2).requires_grad
    with pytest.raises(KeyError), no_grad():
        raise KeyError("x")
    assert is_grad_enabled()


def test_detach_shares_the_numbers_but_not_the_history():
    w = Tensor([1.0, 2.0], requires_grad=True)
    y = w * 3
    d = y.detach()
    assert not d.requires_grad and d._op is None and d._parents == () and d.data is y.data
    assert not (d * 2).requires_grad


def test_comparisons_are_never_recorded():
    w = Tensor([1.0, -1.0], requires_grad=True)
    assert not (w > 0).requires_grad and (w > 0)._op is None


def test_backward_before_module_07_names_the_module(tmp_path):
    """With no autograd module in the package, t.backward() says where it comes from."""
    import shutil

    import tinytorch
    package = tmp_path / "tinytorch"
    shutil.copytree(tinytorch.__path__[0], package, ignore=shutil.ignore_patterns("autograd.py", "__pycache__"))
    code = ("from tinytorch.core.tensor import Tensor\n"
            "try:\n    (Tensor([1.0], requires_grad=True) * 2).sum().backward()\n"
            "except RuntimeError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(tmp_path)}, check=True).stdout
    assert "module 07" in out and "tito module start 07" in out and len(out.strip().splitlines()) == 1


def test_importing_tinytorch_prints_nothing():
    code = "import tinytorch, tinytorch.core.tensor, tinytorch.core.autograd, tinytorch.core.layers"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout == "" and result.stderr == ""


# --- gradcheck ------------------------------------------------------------------------------------


def test_gradcheck_passes_correct_rules():
    rng = np.random.default_rng(0)
    assert gradcheck(lambda a, b: Softmax()(a @ b).max(axis=0), [rng.standard_normal((3, 2)), rng.standard_normal((2, 4))])
    assert gradcheck(lambda a: CrossEntropyLoss()(a, Tensor([1, 0], dtype=np.int64)), [rng.standard_normal((2, 3))])


def test_gradcheck_names_the_input_and_element_of_a_planted_wrong_gradient(monkeypatch):
    def wrong_div(g, a, b):
        grad_a, grad_b = GRADIENTS_ORIGINAL["div"](g, a, b)
        grad_b = grad_b.copy()
        grad_b[1, 2] += 0.5                     # one element of the second input is off
        return grad_a, grad_b

    GRADIENTS_ORIGINAL = dict(GRADIENTS)
    monkeypatch.setitem(GRADIENTS, "div", wrong_div)
    a, b = np.ones((2, 3)), np.full((2, 3), 2.0)
    with pytest.raises(AssertionError, match=r"input 1, element \(1, 2\)") as error:
        gradcheck(lambda x, y: x / y, [a, b])
    assert "finite differences" in str(error.value)


# --- the layers and losses of modules 03-05 -------------------------------------------------------


@pytest.mark.parametrize("loss_name", ["mse", "bce", "ce"])
def test_autograd_matches_the_hand_written_backward_of_03_to_05(loss_name):
    rng = np.random.default_rng(1)
    manual_seed(4)
    last = {"mse": [], "bce": [Sigmoid()], "ce": []}[loss_name]
    model = Sequential(Linear(4, 6), ReLU(), Linear(6, 5), Tanh(), Linear(5, 3), GELU(), Linear(3, 3), *last)
    x = Tensor(rng.standard_normal((7, 4)))
    target = {"mse": Tensor(rng.standard_normal((7, 3))), "bce": Tensor(rng.uniform(0, 1, (7, 3))),
              "ce": Tensor(rng.integers(0, 3, 7), dtype=np.int64)}[loss_name]
    loss_fn = {"mse": MSELoss(), "bce": BCELoss(), "ce": CrossEntropyLoss()}[loss_name]
    loss = loss_fn(model(x), target)
    model.zero_grad()
    model.backward(loss_fn.backward())
    by_hand = {name: p.grad.data.copy() for name, p in model.named_parameters()}
    model.zero_grad()
    loss.backward()
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.data, by_hand[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_softmax_and_dropout_record_like_their_hand_written_backward():
    rng = np.random.default_rng(2)
    x = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    g = Tensor(rng.standard_normal((3, 4)))
    softmax = Softmax(dim=0)
    softmax(x).backward(g)
    np.testing.assert_allclose(x.grad.data, softmax.backward(g).data, rtol=1e-5, atol=1e-6)
    manual_seed(0)
    x.grad, dropout = None, Dropout(0.3)
    dropout(x).backward(g)
    np.testing.assert_allclose(x.grad.data, dropout.backward(g).data)


def test_a_residual_network_trains_with_loss_backward():
    """Not a chain: x reaches the output along two paths, which Sequential.backward cannot do."""
    from tinytorch.core.optimizers import Adam

    manual_seed(0)
    inner, head = Linear(2, 2), Linear(2, 1)
    x = Tensor([[0, 0], [0, 1], [1, 0], [1, 1]])
    y = Tensor([[0], [1], [1], [1]])
    optimizer = Adam(inner.parameters() + head.parameters(), lr=0.05)
    loss_fn = MSELoss()
    first = None
    for _ in range(200):
        loss = loss_fn(head(x + Tanh()(inner(x))), y)
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < first / 10
