"""tinytorch.core.spatial against torch.nn.functional (CPU, float64) as the oracle.

Over shapes, strides and paddings drawn by hypothesis, conv2d, max_pool2d, avg_pool2d and
BatchNorm2d give torch's values and, through `loss.backward()`, torch's gradient for every
input to 1e-10. Then: the loop definition (conv2d_naive) agrees with the fast kernel-offset
version, gradcheck passes, float32 stays float32 through forward and backward, the rules sit
in module 07's one GRADIENTS table, and the layers behave as Modules (parameters, seeding,
train/eval of BatchNorm2d's running statistics).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core import spatial
from tinytorch.core.autograd import GRADIENTS, gradcheck
from tinytorch.core.layers import manual_seed
from tinytorch.core.spatial import (
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Flatten,
    MaxPool2d,
    avg_pool2d,
    conv2d,
    conv2d_forward,
    conv2d_naive,
    max_pool2d,
)
from tinytorch.core.tensor import Tensor

SETTINGS = settings(max_examples=25, deadline=None)
TOL = dict(rtol=1e-10, atol=1e-10)


@st.composite
def conv_cases(draw):
    """(x, weight, bias or None, stride, padding) with a kernel that fits the padded input."""
    k = draw(st.integers(1, 4))
    stride, padding = draw(st.integers(1, 3)), draw(st.integers(0, 2))
    n, c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    h = draw(st.integers(max(1, k - 2 * padding), 8))
    w = draw(st.integers(max(1, k - 2 * padding), 8))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    bias = rng.standard_normal(c_out) if draw(st.booleans()) else None
    return rng.standard_normal((n, c_in, h, w)), rng.standard_normal((c_out, c_in, k, k)), bias, stride, padding


@st.composite
def pool_cases(draw):
    k = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(k, 8)), draw(st.integers(k, 8)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.permutation(int(np.prod(shape))).reshape(shape) / 7.0    # distinct values: no ties in max
    return x, k, stride


def compare(ours, theirs, *arrays):
    """ours(*Tensors) and theirs(*torch tensors): same values, same gradient for every input,
    through a weighted sum so that each output element's gradient counts."""
    leaves = [Tensor(a, dtype=np.float64, requires_grad=True) for a in arrays]
    torch_leaves = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, expected = ours(*leaves), theirs(*torch_leaves)
    assert out.dtype == np.float64 and out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), **TOL)
    weights = np.random.default_rng(0).uniform(0.5, 1.5, out.shape)
    (out * Tensor(weights, dtype=np.float64)).sum().backward()
    (expected * torch.tensor(weights)).sum().backward()
    for index, (leaf, torch_leaf) in enumerate(zip(leaves, torch_leaves, strict=True)):
        assert leaf.grad is not None and leaf.grad.shape == leaf.shape, f"input {index}"
        np.testing.assert_allclose(leaf.grad.data, torch_leaf.grad.numpy(), **TOL, err_msg=f"gradient of input {index}")


# --- parity with torch ---------------------------------------------------------------------------

@SETTINGS
@given(case=conv_cases())
def test_conv2d_matches_torch(case):
    x, w, b, stride, padding = case
    if b is None:
        compare(lambda x, w: conv2d(x, w, None, stride, padding),
                lambda x, w: F.conv2d(x, w, None, stride=stride, padding=padding), x, w)
    else:
        compare(lambda x, w, b: conv2d(x, w, b, stride, padding),
                lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=padding), x, w, b)


@SETTINGS
@given(case=pool_cases())
def test_max_pool2d_matches_torch(case):
    x, k, stride = case
    compare(lambda x: max_pool2d(x, k, stride), lambda x: F.max_pool2d(x, k, stride), x)


@SETTINGS
@given(case=pool_cases())
def test_avg_pool2d_matches_torch(case):
    x, k, stride = case
    compare(lambda x: avg_pool2d(x, k, stride), lambda x: F.avg_pool2d(x, k, stride), x)


def test_max_pool2d_ties_go_to_the_first_maximum_like_torch():
    x = np.array([[[[1.0, 1.0, 0.0], [1.0, 0.0, 2.0], [2.0, 2.0, 2.0]]]])
    compare(lambda x: max_pool2d(x, 2, 1), lambda x: F.max_pool2d(x, 2, 1), x)


@SETTINGS
@given(n=st.integers(2, 3), c=st.integers(1, 3), h=st.integers(1, 4), w=st.integers(1, 4),
       seed=st.integers(0, 2**32 - 1))
def test_batchnorm2d_matches_torch_in_training_and_evaluation(n, c, h, w, seed):
    rng = np.random.default_rng(seed)
    x, gamma, beta = rng.standard_normal((n, c, h, w)) * 3 + 1, rng.uniform(0.5, 2, c), rng.standard_normal(c)

    def ours(x, gamma, beta):
        layer = BatchNorm2d(c)
        layer.weight, layer.bias = gamma, beta
        return layer(x)

    compare(ours, lambda x, gamma, beta: F.batch_norm(x, None, None, gamma, beta, training=True, eps=1e-5),
            x, gamma, beta)
    layer, reference = BatchNorm2d(c, momentum=0.3), torch.nn.BatchNorm2d(c, momentum=0.3).double()
    for batch in (x, x[::-1] * 2):
        layer(Tensor(batch, dtype=np.float64))
        reference(torch.tensor(batch.copy()))
    np.testing.assert_allclose(layer.running_mean, reference.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.running_var, reference.running_var.numpy(), rtol=1e-5, atol=1e-6)
    layer.eval(), reference.eval()
    with torch.no_grad():
        expected = reference(torch.tensor(x)).numpy()
    np.testing.assert_allclose(layer(Tensor(x, dtype=np.float64)).data, expected, rtol=1e-5, atol=1e-5)


# --- the definition, gradcheck, dtypes -------------------------------------------------------------

@settings(max_examples=15, deadline=None)
@given(case=conv_cases())
def test_naive_loops_agree_with_the_kernel_offset_loop(case):
    x, w, b, stride, padding = case
    np.testing.assert_allclose(conv2d_forward(x, w, b, stride, padding), conv2d_naive(x, w, b, stride, padding),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("stride,padding", [(1, 0), (1, 1), (2, 1), (3, 2)])
def test_gradcheck_conv2d(stride, padding):
    rng = np.random.default_rng(stride * 10 + padding)
    assert gradcheck(lambda x, w, b: conv2d(x, w, b, stride, padding),
                     [rng.standard_normal((2, 2, 5, 6)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)])


def test_gradcheck_pools_and_batchnorm():
    rng = np.random.default_rng(3)
    x = rng.permutation(2 * 2 * 5 * 5).reshape(2, 2, 5, 5) / 10.0
    assert gradcheck(lambda x: max_pool2d(x, 2, 1), [x])
    assert gradcheck(lambda x: avg_pool2d(x, 3, 2), [x])
    layer = BatchNorm2d(2)
    assert gradcheck(lambda x: layer(x), [rng.standard_normal((3, 2, 2, 2))])


def test_float32_end_to_end():
    manual_seed(0)
    model_layers = [Conv2d(1, 4, 3, padding=1), MaxPool2d(2), BatchNorm2d(4), AvgPool2d(2), Flatten()]
    h = x = Tensor(np.random.default_rng(0).random((2, 1, 8, 8)), requires_grad=True)
    for layer in model_layers:
        h = layer(h)
        assert h.dtype == np.float32, type(layer).__name__
    h.sum().backward()
    assert x.grad.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for layer in model_layers for p in layer.parameters())


def test_rules_live_in_the_one_gradients_table():
    assert {"conv2d", "maxpool2d", "avgpool2d"} <= set(GRADIENTS)
    assert GRADIENTS["conv2d"] is spatial.conv2d_grad


def test_no_input_gradient_is_computed_for_an_image(monkeypatch):
    """The first layer's input needs no gradient: the rule skips that convolution."""
    calls = []
    monkeypatch.setattr(spatial, "conv2d_input_grad", lambda *a: calls.append(a))
    layer = Conv2d(1, 2, 3)
    layer(Tensor(np.ones((1, 1, 4, 4)))).sum().backward()
    assert calls == [] and layer.weight.grad is not None


# --- the layers as Modules -----------------------------------------------------------------------

def test_layers_as_modules():
    manual_seed(7)
    conv = Conv2d(3, 5, 3, stride=2, padding=1)
    assert [name for name, _ in conv.named_parameters()] == ["weight", "bias"]
    assert repr(conv) == "Conv2d(3, 5, kernel_size=3, stride=2, padding=1, bias=True)"
    assert np.abs(conv.weight.data).max() <= 1 / np.sqrt(27)
    manual_seed(7)
    assert np.array_equal(Conv2d(3, 5, 3).weight.data, conv.weight.data)
    assert Conv2d(3, 5, 3, bias=False).parameters()[0].shape == (5, 3, 3, 3)
    assert MaxPool2d(2).stride == 2 and AvgPool2d(3, stride=1).stride == 1
    assert [name for name, _ in BatchNorm2d(4).named_parameters()] == ["weight", "bias"]
    with pytest.raises(ValueError, match="expects inputs of shape"):
        conv(Tensor(np.zeros((1, 2, 5, 5))))
    with pytest.raises(ValueError):
        Conv2d(0, 1, 3)
    with pytest.raises(ValueError, match="does not fit"):
        conv2d(Tensor(np.zeros((1, 1, 2, 2))), Tensor(np.zeros((1, 1, 3, 3))))


def test_batchnorm2d_running_statistics_are_buffers_that_load_from_torch():
    """A torch BatchNorm2d trained on a few batches: its state (less num_batches_tracked, which
    tinytorch does not keep) loads into ours, and both evaluate alike."""
    rng = np.random.default_rng(5)
    reference = torch.nn.BatchNorm2d(3).double()
    for _ in range(3):
        reference(torch.tensor(rng.standard_normal((4, 3, 5, 5)) * 2 + 1))
    layer = BatchNorm2d(3)
    assert [n for n, _ in layer.named_buffers()] == ["running_mean", "running_var"]
    assert list(layer.state_dict()) == [k for k in reference.state_dict() if k != "num_batches_tracked"]
    layer.load_state_dict({k: v.numpy() for k, v in reference.state_dict().items() if k != "num_batches_tracked"})
    assert layer.running_mean.dtype == np.float32 and len(layer.parameters()) == 2
    x = rng.standard_normal((2, 3, 5, 5))
    layer.eval(), reference.eval()
    with torch.no_grad():
        expected = reference(torch.tensor(x)).numpy()
    np.testing.assert_allclose(layer(Tensor(x, dtype=np.float64)).data, expected, rtol=1e-5, atol=1e-5)
    layer.train()
    layer(Tensor(x))
    assert layer._buffers["running_mean"] is layer.running_mean, "an update keeps the buffer registered"
