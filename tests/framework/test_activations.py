"""tinytorch.core.activations against PyTorch (CPU) as the oracle.

For every activation, over shapes and values from hypothesis: the forward values, and the
hand-written backward against torch's autograd gradient for a random grad_output, in float64
(to 1e-10) and float32 (to 1e-5); the dtype is kept and the input is never changed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinytorch.core.activations import GELU, Activation, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.tensor import Tensor

SETTINGS = settings(max_examples=25, deadline=None)
TOLERANCE = {np.float64: dict(rtol=1e-10, atol=1e-10), np.float32: dict(rtol=1e-5, atol=1e-5)}
DTYPES = [np.float64, np.float32]

ELEMENTWISE = {
    "relu": (ReLU, torch.relu),
    "sigmoid": (Sigmoid, torch.sigmoid),
    "tanh": (Tanh, torch.tanh),
    "gelu": (GELU, lambda x: F.gelu(x, approximate="tanh")),
}

shapes = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4)


def inputs(dtype, shape=shapes, low=-8.0, high=8.0):
    return hnp.arrays(dtype, shape, elements=st.floats(low, high, width=np.dtype(dtype).itemsize * 8))


def torch_reference(fn, x, g):
    """torch's forward value and autograd gradient of sum(fn(x) * g) with respect to x."""
    tx = torch.tensor(x, requires_grad=True)
    ty = fn(tx)
    ty.backward(torch.tensor(g))
    return ty.detach().numpy(), tx.grad.numpy()


def run_ours(make, x, g):
    act = make()
    t = Tensor(x, dtype=x.dtype)
    y = act(t)
    grad = act.backward(Tensor(g, dtype=g.dtype))
    np.testing.assert_array_equal(t.data, x)  # the input is never changed
    return y, grad


def check(got, expected, dtype):
    assert isinstance(got, Tensor)
    assert got.dtype == dtype, f"dtype {got.dtype}, expected {np.dtype(dtype)}"
    assert got.shape == expected.shape, f"shape {got.shape}, expected {expected.shape}"
    np.testing.assert_allclose(got.data, expected, **TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ELEMENTWISE)
@given(data=st.data())
@SETTINGS
def test_elementwise_like_torch(name, dtype, data):
    make, fn = ELEMENTWISE[name]
    x = data.draw(inputs(dtype))
    g = data.draw(inputs(dtype, shape=st.just(x.shape), low=-2.0, high=2.0))
    want_y, want_grad = torch_reference(fn, x, g)
    y, grad = run_ours(make, x, g)
    check(y, want_y, dtype)
    check(grad, want_grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
@SETTINGS
def test_softmax_like_torch(dtype, data):
    x = data.draw(inputs(dtype, low=-30.0, high=30.0))
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1))
    g = data.draw(inputs(dtype, shape=st.just(x.shape), low=-2.0, high=2.0))
    want_y, want_grad = torch_reference(lambda t: torch.softmax(t, dim=dim), x, g)
    y, grad = run_ours(lambda: Softmax(dim=dim), x, g)
    check(y, want_y, dtype)
    check(grad, want_grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("make, fn", [
    (Sigmoid, torch.sigmoid), (Tanh, torch.tanh), (ReLU, torch.relu),
    (lambda: Softmax(dim=-1), lambda t: torch.softmax(t, dim=-1)),
    (lambda: Softmax(dim=0), lambda t: torch.softmax(t, dim=0)),
])
def test_extreme_inputs_stay_finite_and_quiet(make, fn, dtype):
    x = np.array([[-1000.0, -100.0, -1.0], [0.0, 100.0, 1000.0]], dtype=dtype)
    g = np.array([[1.0, -2.0, 0.5], [3.0, 1.0, -1.0]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y, grad = run_ours(make, x, g)
    want_y, want_grad = torch_reference(fn, x, g)
    check(y, want_y, dtype)
    check(grad, want_grad, dtype)


def test_softmax_masked_scores():
    x = np.array([[0.0, -np.inf, 1.0], [-np.inf, 2.0, -np.inf]])
    g = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    with np.errstate(all="raise"):
        y, grad = run_ours(Softmax, x, g)
    want_y, want_grad = torch_reference(lambda t: torch.softmax(t, dim=-1), x, g)
    check(y, want_y, np.float64)
    check(grad, want_grad, np.float64)


def test_relu_gradient_at_zero_is_zero_like_torch():
    x = np.array([-1.0, 0.0, 1.0])
    _, grad = run_ours(ReLU, x, np.ones(3))
    check(grad, torch_reference(torch.relu, x, np.ones(3))[1], np.float64)
    assert grad.data[1] == 0.0


@given(x=inputs(np.float32, shape=hnp.array_shapes(min_dims=1, max_dims=2, max_side=4)))
@SETTINGS
def test_a_chain_backward_in_reverse_like_torch(x):
    steps = [GELU(), Tanh(), Softmax(dim=-1), Sigmoid(), ReLU()]
    h = Tensor(x)
    for step in steps:
        h = step(h)
    g = np.linspace(-1.0, 1.0, x.size, dtype=np.float32).reshape(x.shape)
    grad = Tensor(g)
    for step in reversed(steps):
        grad = step.backward(grad)

    def torch_chain(t):
        t = F.gelu(t, approximate="tanh")
        return torch.relu(torch.sigmoid(torch.softmax(torch.tanh(t), dim=-1)))

    want_y, want_grad = torch_reference(torch_chain, x, g)
    check(h, want_y, np.float32)
    check(grad, want_grad, np.float32)


def test_interface():
    for act in (ReLU(), Sigmoid(), Tanh(), GELU(), Softmax()):
        assert isinstance(act, Activation) and act.parameters() == []
        x = Tensor([[0.5, -1.0]])
        np.testing.assert_array_equal(act(x).data, act.forward(x).data)
    assert repr(ReLU()) == "ReLU()" and repr(GELU()) == "GELU()"
    assert repr(Softmax()) == "Softmax(dim=-1)" and repr(Softmax(dim=0)) == "Softmax(dim=0)"


@pytest.mark.parametrize("make, op, saved", [
    (ReLU, "relu", {}), (Sigmoid, "sigmoid", {}), (Tanh, "tanh", {}), (GELU, "gelu", {}),
    (lambda: Softmax(dim=0), "softmax", {"dim": 0}),
])
def test_forward_goes_through_result(monkeypatch, make, op, saved):
    """Activations are operations: their output is born in Tensor._result, where module 07
    records the graph."""
    calls = []
    original = Tensor._result

    def recording(self, data, op_name, *parents, **kwargs):
        calls.append((op_name, parents, kwargs))
        return original(self, data, op_name, *parents, **kwargs)

    monkeypatch.setattr(Tensor, "_result", recording)
    x = Tensor([[1.0, -2.0], [0.5, 3.0]])
    make()(x)
    assert calls and calls[-1][0] == op
    assert len(calls[-1][1]) == 1 and calls[-1][1][0] is x
    assert calls[-1][2] == saved
