"""tinytorch.perf.acceleration against module 09 and torch.nn.functional (CPU) as oracles.

Over shapes, strides (1-2), paddings (0-2), kernels (1-5) and non-square images drawn by
hypothesis, conv2d_im2col gives module 09's conv2d and torch's conv2d values and, through
`loss.backward()`, the same gradient for every input (float64 to 1e-9, float32 to 1e-5);
max_pool2d_fast likewise against max_pool2d and torch, and batch_norm2d_fast (its input stored
channels-last or not) against module 09's BatchNorm2d and torch's batch_norm, with torch's running
statistics, and conv2d_winograd (3x3, even sizes) against module 09's conv2d and torch, and in
float32 as close to float64 as im2col. Then: the ladders agree with their
references (matmul_loops, matmul_blocked, conv2d_definition, im2col), float32 stays float32
through forward and backward, the rules sit in module 07's one table, and accelerate() keeps
the model, its Parameters and what it computes, is idempotent, and trains step for step like
the unaccelerated model.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import GRADIENTS
from tinytorch.core.layers import Linear, Sequential, manual_seed
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import SGD
from tinytorch.core.spatial import (
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Flatten,
    MaxPool2d,
    conv2d,
    max_pool2d,
)
from tinytorch.core.tensor import Tensor
from tinytorch.perf import acceleration
from tinytorch.perf.acceleration import (
    accelerate,
    batch_norm2d_fast,
    conv2d_definition,
    conv2d_im2col,
    conv2d_winograd,
    im2col,
    is_accelerated,
    matmul_blocked,
    matmul_loops,
    max_pool2d_fast,
)

SETTINGS = settings(max_examples=25, deadline=None)
TOLERANCE = {np.float64: dict(rtol=1e-9, atol=1e-9), np.float32: dict(rtol=1e-5, atol=1e-5)}


@st.composite
def conv_cases(draw):
    """(x, weight, bias or None, stride, padding): kernels 1-5, strides 1-2, paddings 0-2,
    non-square images into which the kernel fits once padded."""
    k = draw(st.integers(1, 5))
    stride, padding = draw(st.integers(1, 2)), draw(st.integers(0, 2))
    n, c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    h = draw(st.integers(max(1, k - 2 * padding), 9))
    w = draw(st.integers(max(1, k - 2 * padding), 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    bias = rng.standard_normal(c_out) if draw(st.booleans()) else None
    return rng.standard_normal((n, c_in, h, w)), rng.standard_normal((c_out, c_in, k, k)), bias, stride, padding


@st.composite
def pool_cases(draw):
    k, stride = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(k, 8)), draw(st.integers(k, 8)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.permutation(int(np.prod(shape))).reshape(shape) / 7.0, k, stride   # distinct: no ties


def run(fn, arrays, dtype, weights):
    """fn's output and every input's gradient of sum(weights * output), in tinytorch."""
    leaves = [Tensor(a, dtype=dtype, requires_grad=True) for a in arrays]
    out = fn(*leaves)
    (out * Tensor(weights, dtype=dtype)).sum().backward()
    return out, [leaf.grad for leaf in leaves]


def check(fast, slow, oracle, arrays, dtype, label):
    """fast against module 09's slow twin and torch's oracle: values, dtypes, gradients."""
    tolerance = TOLERANCE[dtype]
    weights = np.random.default_rng(0).uniform(0.5, 1.5, slow(*[Tensor(a, dtype=np.float64) for a in arrays]).shape)
    out, grads = run(fast, arrays, dtype, weights)
    out09, grads09 = run(slow, arrays, dtype, weights)
    torch_leaves = [torch.tensor(a, requires_grad=True) for a in arrays]
    expected = oracle(*torch_leaves)
    (expected * torch.tensor(weights)).sum().backward()
    assert out.dtype == dtype, f"{label}: output {out.dtype}"
    np.testing.assert_allclose(out.data, out09.data, **tolerance, err_msg=f"{label}: against module 09")
    np.testing.assert_allclose(out.data, expected.detach().numpy(), **tolerance, err_msg=f"{label}: against torch")
    for index, (grad, grad09, leaf) in enumerate(zip(grads, grads09, torch_leaves, strict=True)):
        assert grad is not None and grad.dtype == dtype and grad.shape == leaf.shape, f"{label}: input {index}"
        np.testing.assert_allclose(grad.data, grad09.data, **tolerance,
                                   err_msg=f"{label}: gradient of input {index} against module 09")
        np.testing.assert_allclose(grad.data, leaf.grad.numpy(), **tolerance,
                                   err_msg=f"{label}: gradient of input {index} against torch")


# --- parity: the fast kernels against module 09 and torch -----------------------------------------

@SETTINGS
@given(case=conv_cases(), dtype=st.sampled_from([np.float64, np.float32]))
def test_conv2d_im2col_matches_module_09_and_torch(case, dtype):
    x, w, b, stride, padding = case
    label = f"x {x.shape}, w {w.shape}, stride {stride}, padding {padding}, bias {b is not None}, {dtype.__name__}"
    if b is None:
        check(lambda x, w: conv2d_im2col(x, w, None, stride, padding), lambda x, w: conv2d(x, w, None, stride, padding),
              lambda x, w: F.conv2d(x, w, None, stride=stride, padding=padding), [x, w], dtype, label)
    else:
        check(lambda x, w, b: conv2d_im2col(x, w, b, stride, padding),
              lambda x, w, b: conv2d(x, w, b, stride, padding),
              lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=padding), [x, w, b], dtype, label)


@SETTINGS
@given(case=pool_cases(), dtype=st.sampled_from([np.float64, np.float32]))
def test_max_pool2d_fast_matches_module_09_and_torch(case, dtype):
    x, k, stride = case
    check(lambda x: max_pool2d_fast(x, k, stride), lambda x: max_pool2d(x, k, stride),
          lambda x: F.max_pool2d(x, k, stride), [x], dtype, f"x {x.shape}, k {k}, stride {stride}")


def module_09_batch_norm(x, weight, bias):
    """Module 09's BatchNorm2d in training, its weight and bias the given Tensors."""
    layer = BatchNorm2d(x.shape[1])
    layer.weight, layer.bias = weight, bias
    return layer(x)


@st.composite
def batch_norm_cases(draw):
    """(x, weight, bias, channels_last): any batch with at least two values per channel."""
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    if n * h * w < 2:
        n = 2
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((n, h, w, c)) * rng.uniform(0.1, 5) + rng.uniform(-3, 3)
    channels_last = draw(st.booleans())
    x = x.transpose(0, 3, 1, 2) if channels_last else np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    return x, rng.standard_normal(c), rng.standard_normal(c), channels_last


@SETTINGS
@given(case=batch_norm_cases())
def test_batch_norm2d_fast_matches_module_09_and_torch(case):
    """float64: with a handful of values per channel, float32's dx is a difference of nearly
    equal terms (with two values, x_hat is ±1 whatever x is), so its rounding is compared on
    a realistic batch below instead."""
    x, weight, bias, channels_last = case
    label = f"x {x.shape} {'channels-last' if channels_last else 'NCHW'}"
    check(lambda x, w, b: batch_norm2d_fast(x, w, b)[0], module_09_batch_norm,
          lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [x, weight, bias], np.float64, label)
    _, mean, var = batch_norm2d_fast(Tensor(x, dtype=np.float64), Tensor(weight), Tensor(bias))
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2, 3)), **TOLERANCE[np.float64])
    np.testing.assert_allclose(var, x.var(axis=(0, 2, 3)), **TOLERANCE[np.float64])


@pytest.mark.parametrize("channels_last", [True, False])
def test_batch_norm2d_fast_in_float32_is_float32_and_as_close_to_float64_as_module_09(channels_last):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((8, 6, 6, 4)) * 3 + 1
    x = x.transpose(0, 3, 1, 2) if channels_last else np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    arrays = [x, rng.standard_normal(4), rng.standard_normal(4)]
    weights = rng.uniform(0.5, 1.5, x.shape)
    fast = lambda x, w, b: batch_norm2d_fast(x, w, b)[0]  # noqa: E731
    out64, exact = run(module_09_batch_norm, arrays, np.float64, weights)
    for fn in (fast, module_09_batch_norm):
        out, grads = run(fn, arrays, np.float32, weights)
        assert out.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
        np.testing.assert_allclose(out.data, out64.data, rtol=1e-5, atol=1e-5)
        for grad, truth in zip(grads, exact, strict=True):
            scale = np.abs(truth.data).max()
            np.testing.assert_allclose(grad.data, truth.data, rtol=0, atol=1e-4 * scale)


def test_an_accelerated_batch_norm_keeps_torchs_running_statistics_and_evaluates_with_them():
    rng = np.random.default_rng(4)
    layer, twin = accelerate(BatchNorm2d(3, momentum=0.2)), torch.nn.BatchNorm2d(3, momentum=0.2)
    assert is_accelerated(layer)
    for _ in range(3):
        x = rng.standard_normal((4, 3, 5, 2)).astype(np.float32) * 2 + 1
        layer(Tensor(x))
        twin(torch.from_numpy(x))
    np.testing.assert_allclose(layer.running_mean, twin.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.running_var, twin.running_var.numpy(), rtol=1e-5, atol=1e-6)
    assert layer.running_mean.dtype == layer.running_var.dtype == np.float32
    layer.eval()
    twin.eval()
    x = rng.standard_normal((2, 3, 5, 2)).astype(np.float32)
    np.testing.assert_allclose(layer(Tensor(x)).data, twin(torch.from_numpy(x)).detach().numpy(), atol=1e-5)
    with pytest.raises(ValueError, match=r"expects inputs of shape \(N, 3, H, W\)"):
        layer.train()
        layer(Tensor(np.zeros((2, 4, 3, 3))))


@st.composite
def winograd_cases(draw):
    """(x, weight, bias or None): 3x3 kernels, even heights and widths 2-10."""
    n, c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    h, w = 2 * draw(st.integers(1, 5)), 2 * draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    bias = rng.standard_normal(c_out) if draw(st.booleans()) else None
    return rng.standard_normal((n, c_in, h, w)), rng.standard_normal((c_out, c_in, 3, 3)), bias


@SETTINGS
@given(case=winograd_cases())
def test_conv2d_winograd_matches_module_09_and_torch(case):
    x, w, b = case
    label = f"x {x.shape}, w {w.shape}, bias {b is not None}"
    if b is None:
        check(lambda x, w: conv2d_winograd(x, w), lambda x, w: conv2d(x, w, None, 1, 1),
              lambda x, w: F.conv2d(x, w, padding=1), [x, w], np.float64, label)
    else:
        check(conv2d_winograd, lambda x, w, b: conv2d(x, w, b, 1, 1), lambda x, w, b: F.conv2d(x, w, b, padding=1),
              [x, w, b], np.float64, label)


def test_conv2d_winograd_in_float32_is_float32_and_as_close_to_float64_as_im2col():
    rng = np.random.default_rng(6)
    arrays = [rng.standard_normal((4, 16, 8, 8)), rng.standard_normal((32, 16, 3, 3)), rng.standard_normal(32)]
    weights = rng.uniform(0.5, 1.5, (4, 32, 8, 8))
    im2col_conv = lambda x, w, b: conv2d_im2col(x, w, b, 1, 1)  # noqa: E731
    out64, exact = run(im2col_conv, arrays, np.float64, weights)
    errors = {}
    for name, fn in (("winograd", conv2d_winograd), ("im2col", im2col_conv)):
        out, grads = run(fn, arrays, np.float32, weights)
        assert out.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
        errors[name] = max(np.abs(a.data - b.data).max() / np.abs(b.data).max()
                           for a, b in zip([out, *grads], [out64, *exact], strict=True))
    assert errors["winograd"] <= max(1e-5, 4 * errors["im2col"]), errors


def test_conv2d_winograd_in_chunks_of_images_is_the_same_convolution(monkeypatch):
    """5 images in chunks of 2, 2 and 1 (the last one short): the values and the three
    gradients are those of the whole batch at once, and the input is left as it was."""
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal((5, 3, 4, 6)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)]
    weights = rng.uniform(0.5, 1.5, (5, 4, 4, 6))
    whole, whole_grads = run(conv2d_winograd, arrays, np.float64, weights)
    monkeypatch.setattr(acceleration, "WINOGRAD_CHUNK", 2 * 4 * 6 * 4)       # 2 images of 4x6, 4 channels
    assert [c.indices(5) for c in acceleration._image_chunks((5, 4, 6, 3), 4)] == [(0, 2, 1), (2, 4, 1), (4, 5, 1)]
    before = [a.copy() for a in arrays]
    chunked, chunked_grads = run(conv2d_winograd, arrays, np.float64, weights)
    for got, want in zip([chunked, *chunked_grads], [whole, *whole_grads], strict=True):
        np.testing.assert_allclose(got.data, want.data, rtol=1e-12, atol=1e-12)
    assert all(np.array_equal(a, b) for a, b in zip(arrays, before, strict=True))


def test_accelerate_uses_winograd_where_it_pays_and_im2col_elsewhere():
    manual_seed(0)
    wide, narrow, strided = Conv2d(32, 64, 3, padding=1), Conv2d(3, 32, 3, padding=1), Conv2d(32, 64, 3, stride=2, padding=1)
    square = Conv2d(32, 32, 3, padding=1)
    accelerate(Sequential(wide, narrow, strided, square))
    x = Tensor(np.random.default_rng(0).standard_normal((2, 32, 6, 6)))
    assert wide(x)._op == "conv2d_winograd" and square(x)._op == "conv2d_winograd"
    assert wide(Tensor(np.zeros((2, 32, 5, 6))))._op == "conv2d_im2col"          # an odd height
    assert strided(x)._op == "conv2d_im2col"
    assert narrow(Tensor(np.zeros((2, 3, 6, 6))))._op == "conv2d_im2col"         # 3 x 32 channels: too few


def test_max_pool2d_fast_ties_go_to_the_first_maximum_like_torch():
    x = np.array([[[[1.0, 1.0, 0.0], [1.0, 0.0, 2.0], [2.0, 2.0, 2.0]]]])
    for k, stride in ((2, 1), (2, 2), (3, 1)):
        check(lambda x, k=k, s=stride: max_pool2d_fast(x, k, s), lambda x, k=k, s=stride: max_pool2d(x, k, s),
              lambda x, k=k, s=stride: F.max_pool2d(x, k, s), [x], np.float64, f"ties, k {k}, stride {stride}")


def test_the_first_layer_computes_no_input_gradient(monkeypatch):
    calls = []
    monkeypatch.setattr(acceleration, "conv2d_im2col_input_grad", lambda *a: calls.append(a))
    weight = Tensor(np.ones((2, 1, 3, 3)), requires_grad=True)
    conv2d_im2col(Tensor(np.ones((1, 1, 4, 4))), weight).sum().backward()
    assert calls == [] and weight.grad is not None


# --- the ladders ---------------------------------------------------------------------------------

@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 9), k=st.integers(1, 9), m=st.integers(1, 9), block=st.integers(1, 10),
       seed=st.integers(0, 2**32 - 1))
def test_matmuls_agree_with_numpy(n, k, m, block, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((n, k)), rng.standard_normal((k, m))
    np.testing.assert_allclose(matmul_loops(a, b), a @ b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(matmul_blocked(a, b, block), a @ b, rtol=1e-12, atol=1e-12)
    assert matmul_blocked(a.astype(np.float32), b.astype(np.float32), block).dtype == np.float32
    assert matmul_loops(a.astype(np.float32), b.astype(np.float32)).dtype == np.float32


@settings(max_examples=10, deadline=None)
@given(case=conv_cases())
def test_the_seven_loops_agree_with_torch(case):
    x, w, b, stride, padding = case
    expected = F.conv2d(torch.tensor(x), torch.tensor(w), None if b is None else torch.tensor(b),
                        stride=stride, padding=padding).numpy()
    np.testing.assert_allclose(conv2d_definition(x, w, b, stride, padding), expected, rtol=1e-10, atol=1e-10)


@settings(max_examples=15, deadline=None)
@given(case=conv_cases())
def test_im2col_rows_are_torch_unfold_patches(case):
    x, w, _, stride, padding = case
    k = w.shape[2]
    patches = im2col(x.transpose(0, 2, 3, 1), k, stride, padding)          # (N, Ho, Wo, K*K*C), (row, col, chan)
    unfolded = F.unfold(torch.tensor(x), k, padding=padding, stride=stride).numpy()   # (N, C*K*K, L), (chan, row, col)
    n, c = x.shape[:2]
    ours = patches.reshape(n, -1, k, k, c).transpose(0, 4, 2, 3, 1).reshape(n, c * k * k, -1)
    np.testing.assert_array_equal(ours, unfolded)
    assert patches.flags["C_CONTIGUOUS"] and patches.dtype == x.dtype


def test_bad_input_is_one_clear_error():
    with pytest.raises(ValueError, match="2-D arrays"):
        matmul_loops(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="block >= 1"):
        matmul_blocked(np.zeros((2, 3)), np.zeros((3, 2)), block=0)
    with pytest.raises(ValueError, match="same C_in"):
        conv2d_im2col(Tensor(np.zeros((1, 2, 5, 5))), Tensor(np.zeros((3, 1, 3, 3))))
    with pytest.raises(ValueError, match="does not fit"):
        conv2d_definition(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 3, 3)))
    with pytest.raises(ValueError, match="does not fit"):
        max_pool2d_fast(Tensor(np.zeros((1, 1, 2, 2))), 3)


# --- float32 end to end, and the one table of rules ----------------------------------------------

def test_float32_end_to_end_and_no_silent_float64():
    manual_seed(0)
    model = accelerate(Sequential(Conv2d(3, 4, 3, padding=1), BatchNorm2d(4), ReLU(), MaxPool2d(2),
                                  Conv2d(4, 4, 3, stride=2, padding=2), Flatten()))
    x = Tensor(np.random.default_rng(0).random((2, 3, 8, 8)), requires_grad=True)
    h = x
    for layer in model.layers:
        h = layer(h)
        assert h.dtype == np.float32, type(layer).__name__
    h.sum().backward()
    assert x.grad.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in model.parameters())
    patches = h._parents[0]._saved["patches"]      # Flatten <- the last convolution
    assert patches.dtype == np.float32


def test_rules_live_in_the_one_gradients_table():
    assert GRADIENTS["conv2d_im2col"] is acceleration.conv2d_im2col_grad
    assert GRADIENTS["maxpool2d_fast"] is acceleration.max_pool2d_fast_grad
    assert GRADIENTS["batchnorm2d_fast"] is acceleration.batch_norm2d_fast_grad
    assert GRADIENTS["conv2d_winograd"] is acceleration.conv2d_winograd_grad


def test_outputs_are_stored_channels_last_so_the_next_layer_transposes_for_free():
    out = conv2d_im2col(Tensor(np.ones((2, 3, 6, 5))), Tensor(np.ones((4, 3, 3, 3))))
    assert out.data.transpose(0, 2, 3, 1).flags["C_CONTIGUOUS"]
    pooled = max_pool2d_fast(out, 2)
    assert pooled.data.transpose(0, 2, 3, 1).flags["C_CONTIGUOUS"]


# --- accelerate ----------------------------------------------------------------------------------

def small_cnn(seed=0):
    manual_seed(seed)
    return Sequential(Conv2d(2, 6, 3, padding=1), BatchNorm2d(6), ReLU(), MaxPool2d(2),
                      Sequential(Conv2d(6, 8, 3, stride=2, padding=1), ReLU()), AvgPool2d(2), Flatten(),
                      Linear(8, 3))


def test_accelerate_keeps_the_model_and_its_parameters_and_is_idempotent():
    model = small_cnn()
    parameters, state = model.parameters(), model.state_dict()
    assert accelerate(model) is model
    assert accelerate(model) is model
    assert all(p is q for p, q in zip(parameters, model.parameters(), strict=True))
    assert list(model.state_dict()) == list(state)
    convs = [model.layers[0], model.layers[3], model.layers[4].layers[0]]
    assert all(is_accelerated(layer) for layer in convs)
    assert is_accelerated(model.layers[1])                                                  # BatchNorm2d
    assert not is_accelerated(model.layers[5]) and "forward" not in vars(model.layers[5])   # AvgPool2d
    assert repr(model) == repr(small_cnn())


def test_an_accelerated_copy_is_accelerated_and_the_original_is_untouched():
    model = small_cnn()
    twin = accelerate(copy.deepcopy(model))
    assert not is_accelerated(model.layers[0]) and is_accelerated(twin.layers[0])
    x = Tensor(np.random.default_rng(1).standard_normal((4, 2, 8, 8)))
    assert twin.layers[0](x)._op == "conv2d_im2col" and model.layers[0](x)._op == "conv2d"


def test_an_accelerated_model_trains_step_for_step_like_the_original():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((8, 2, 8, 8)), rng.integers(0, 3, 8)
    runs = []
    for fast in (False, True):
        model = small_cnn(seed=3)
        if fast:
            accelerate(model)
        optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9)
        losses = []
        for _ in range(4):
            loss = CrossEntropyLoss()(model(Tensor(x)), Tensor(y, dtype=np.int64))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        runs.append((losses, [p.data.copy() for p in model.parameters()]))
    (losses, params), (fast_losses, fast_params) = runs
    np.testing.assert_allclose(fast_losses, losses, rtol=1e-5)
    assert losses[-1] < losses[0]
    for slow, fast in zip(params, fast_params, strict=True):
        assert fast.dtype == np.float32
        np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-5)
