"""tinytorch.core.losses against PyTorch (CPU) as the oracle.

For each loss, over shapes and values from hypothesis: the mean loss, and the hand-written
backward against torch's autograd gradient, in float64 (to 1e-10) and float32 (to 1e-5);
the dtype is kept, the inputs are never changed, extreme inputs stay finite and quiet, and
bad shapes or targets raise a ValueError that says what is wrong.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinytorch.core.losses import BCELoss, CrossEntropyLoss, Loss, MSELoss
from tinytorch.core.tensor import Tensor

SETTINGS = settings(max_examples=25, deadline=None)
TOLERANCE = {np.float64: dict(rtol=1e-10, atol=1e-10), np.float32: dict(rtol=1e-5, atol=1e-5)}
DTYPES = [np.float64, np.float32]
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}

shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


def floats(dtype, low, high):
    return st.floats(low, high, width=np.dtype(dtype).itemsize * 8)


def torch_reference(fn, pred, *rest):
    """torch's loss value and autograd gradient with respect to pred."""
    tp = torch.tensor(pred, requires_grad=True)
    loss = fn(tp, *rest)
    loss.backward()
    return loss.detach().numpy(), tp.grad.numpy()


def run_ours(make, pred, target):
    loss_fn = make()
    p = Tensor(pred, dtype=pred.dtype)
    loss = loss_fn(p, target)
    grad = loss_fn.backward()
    np.testing.assert_array_equal(p.data, pred)  # the predictions are never changed
    return loss, grad


def check(got, expected, dtype):
    assert isinstance(got, Tensor)
    assert got.dtype == dtype, f"dtype {got.dtype}, expected {np.dtype(dtype)}"
    assert got.shape == np.shape(expected), f"shape {got.shape}, expected {np.shape(expected)}"
    np.testing.assert_allclose(got.data, expected, **TOLERANCE[dtype])


# --- MSE ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
@SETTINGS
def test_mse_like_torch(dtype, data):
    pred = data.draw(hnp.arrays(dtype, shapes, elements=floats(dtype, -10, 10)))
    target = data.draw(hnp.arrays(dtype, pred.shape, elements=floats(dtype, -10, 10)))
    want_loss, want_grad = torch_reference(F.mse_loss, pred, torch.tensor(target))
    loss, grad = run_ours(MSELoss, pred, Tensor(target, dtype=dtype))
    check(loss, want_loss, dtype)
    check(grad, want_grad, dtype)


def test_mse_target_as_list_or_array():
    pred = Tensor([1.0, 2.0, 3.0])
    for target in ([1.0, 3.0, 5.0], np.array([1.0, 3.0, 5.0]), Tensor([1.0, 3.0, 5.0])):
        assert MSELoss()(pred, target).item() == pytest.approx(5 / 3)


@pytest.mark.parametrize("pred_shape, target_shape", [((3, 1), (3,)), ((3,), (3, 1)), ((2, 3), (3,)), ((4,), (2, 2))])
def test_mse_refuses_to_broadcast(pred_shape, target_shape):
    with pytest.raises(ValueError) as error:
        MSELoss()(Tensor(np.ones(pred_shape)), Tensor(np.ones(target_shape)))
    assert str(pred_shape) in str(error.value) and str(target_shape) in str(error.value)


# --- BCE ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data(), hard=st.booleans())
@SETTINGS
def test_bce_like_torch(dtype, data, hard):
    pred = data.draw(hnp.arrays(dtype, shapes, elements=floats(dtype, 1 / 64, 63 / 64)))
    elements = st.sampled_from([0.0, 1.0]) if hard else floats(dtype, 0.0, 1.0)
    target = data.draw(hnp.arrays(dtype, pred.shape, elements=elements))
    want_loss, want_grad = torch_reference(F.binary_cross_entropy, pred, torch.tensor(target))
    loss, grad = run_ours(BCELoss, pred, Tensor(target, dtype=dtype))
    check(loss, want_loss, dtype)
    check(grad, want_grad, dtype)


def test_bce_agrees_with_torch_up_to_the_clip():
    pred = np.array([1e-6, 1 - 1e-6, 0.5, 2e-7])
    target = np.array([1.0, 0.0, 1.0, 0.0])
    want_loss, want_grad = torch_reference(F.binary_cross_entropy, pred, torch.tensor(target))
    loss, grad = run_ours(BCELoss, pred, target)
    check(loss, want_loss, np.float64)
    check(grad, want_grad, np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_clips_zero_and_one(dtype):
    pred = np.array([0.0, 1.0, 0.0, 1.0], dtype=dtype)
    target = np.array([1.0, 0.0, 0.0, 1.0], dtype=dtype)
    with np.errstate(all="raise"):
        loss, grad = run_ours(BCELoss, pred, target)
    assert loss.dtype == dtype and grad.dtype == dtype
    assert np.all(np.isfinite(grad.data)) and grad.data[0] < -1e5 and grad.data[1] > 1e5
    clipped = np.clip(pred, BCELoss.eps, 1 - BCELoss.eps)   # the loss of the clipped p, exactly
    want = -np.mean(target * np.log(clipped) + (1 - target) * np.log(1 - clipped))
    check(loss, want, dtype)
    assert 7.5 < loss.item() < 8.5  # two confident mistakes of about 16 each, over 4
    assert BCELoss.eps == 1e-7 and np.float32(1 - BCELoss.eps) < 1


@pytest.mark.parametrize("pred", [[1.5, 0.5], [-0.1, 0.5]])
def test_bce_refuses_non_probabilities(pred):
    with pytest.raises(ValueError, match="Sigmoid"):
        BCELoss()(Tensor(pred), Tensor([1.0, 0.0]))


def test_bce_refuses_to_broadcast():
    with pytest.raises(ValueError, match=r"\(2, 1\).*\(2,\)"):
        BCELoss()(Tensor([[0.5], [0.5]]), Tensor([1.0, 0.0]))


# --- cross-entropy --------------------------------------------------------------------------------


@st.composite
def classification(draw, dtype, low=-30.0, high=30.0):
    n, classes = draw(st.integers(1, 5)), draw(st.integers(2, 6))
    logits = draw(hnp.arrays(dtype, (n, classes), elements=floats(dtype, low, high)))
    ids = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, classes - 1)))
    return logits, ids


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
@SETTINGS
def test_cross_entropy_like_torch(dtype, data):
    logits, ids = data.draw(classification(dtype))
    want_loss, want_grad = torch_reference(F.cross_entropy, logits, torch.tensor(ids))
    for target in (ids, list(ids), Tensor(ids), Tensor(ids, dtype=np.int64)):
        loss, grad = run_ours(CrossEntropyLoss, logits, target)
        check(loss, want_loss, dtype)
        check(grad, want_grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
@SETTINGS
def test_cross_entropy_extreme_logits_like_torch(dtype, data):
    logits, ids = data.draw(classification(dtype, low=-1000.0, high=1000.0))
    logits[0, 0] = 1000.0
    logits[-1, -1] = -1000.0
    want_loss, want_grad = torch_reference(F.cross_entropy, logits, torch.tensor(ids))
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, grad = run_ours(CrossEntropyLoss, logits, ids)
    assert np.isfinite(loss.item()) and np.all(np.isfinite(grad.data))
    np.testing.assert_allclose(loss.item(), want_loss, rtol=1e-6)
    check(grad, want_grad, dtype)


def test_cross_entropy_starts_at_log_c():
    for classes in (2, 10, 1000):
        loss = CrossEntropyLoss()(Tensor(np.zeros((3, classes))), [0, 1, classes - 1])
        assert loss.item() == pytest.approx(np.log(classes), rel=1e-6)


@pytest.mark.parametrize("logits_shape, target, match", [
    ((2, 3), [0, 3], "not a class id"),
    ((2, 3), [-1, 0], "not a class id"),
    ((2, 3), [0.5, 1.0], "whole class ids"),
    ((2, 3), [0, 1, 2], r"shape \(2,\)"),
    ((2, 3), [[0], [1]], r"shape \(2,\)"),
    ((3,), [0], r"\(N, C\)"),
    ((1, 2, 3), [0], r"\(N, C\)"),
])
def test_cross_entropy_refuses_bad_input(logits_shape, target, match):
    with pytest.raises(ValueError, match=match):
        CrossEntropyLoss()(Tensor(np.zeros(logits_shape)), target)


# --- the interface ---------------------------------------------------------------------------------


def test_interface():
    for loss_fn, pred, target in [(MSELoss(), Tensor([0.5]), Tensor([1.0])),
                                  (BCELoss(), Tensor([0.5]), Tensor([1.0])),
                                  (CrossEntropyLoss(), Tensor([[0.5, 1.0]]), [1])]:
        assert isinstance(loss_fn, Loss) and repr(loss_fn) == f"{type(loss_fn).__name__}()"
        assert loss_fn(pred, target).item() == loss_fn.forward(pred, target).item()
        assert loss_fn(pred, target).shape == ()
        assert loss_fn.backward().shape == pred.shape


@pytest.mark.parametrize("make, pred, target, op", [
    (MSELoss, Tensor([0.5, 1.0]), Tensor([1.0, 0.0]), "mse_loss"),
    (BCELoss, Tensor([0.5, 0.2]), Tensor([1.0, 0.0]), "bce_loss"),
    (CrossEntropyLoss, Tensor([[0.5, 1.0]]), Tensor([1.0]), "cross_entropy"),
])
def test_forward_goes_through_result(monkeypatch, make, pred, target, op):
    """A loss is an operation: its value is born in Tensor._result with parents (pred, target)."""
    calls = []
    original = Tensor._result

    def recording(self, data, op_name, *parents, **kwargs):
        calls.append((op_name, parents))
        return original(self, data, op_name, *parents, **kwargs)

    monkeypatch.setattr(Tensor, "_result", recording)
    make()(pred, target)
    got_op, parents = calls[-1]
    assert got_op == op and len(parents) == 2 and parents[0] is pred
    assert all(isinstance(p, Tensor) for p in parents)
    if op == "cross_entropy":
        assert parents[1].dtype == np.int64 and parents[1].data.tolist() == [1]
