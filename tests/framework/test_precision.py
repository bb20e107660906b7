"""Module 17: quantization round trips within half a step on tensors hypothesis draws (every
grid: symmetric and asymmetric, per tensor and per channel, 8 and 4 bits), the edges (all-equal
and all-zero tensors and channels, one outlier, the ends of the range, one-signed tensors),
dtypes and bytes, and the quantized models against their float twins. PyTorch is the oracle
where its convention is ours: torch.quantize_per_tensor with quint8 is our asymmetric 8-bit
grid (codes 0..255, zero point in 0..255), torch.quantize_per_channel with qint8 and zero
points 0 is our symmetric grid (we never use -128, so torch's wider clamp does not matter).
Scales are stored as float16 rounded up (float32 when float16 cannot hold them): the bound of
half a step holds for the stored scale, which is at most 2^-10 above the float32 one. The
milestones' own cnn and gpt architectures come out at least 3.8x smaller in int8."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Sequential, manual_seed
from tinytorch.core.spatial import Conv2d
from tinytorch.core.tensor import Tensor
from tinytorch.models.transformer import GPT, GPTConfig
from tinytorch.perf.precision import (
    QuantizedLayer,
    QuantizedLinear,
    calibrate,
    dequantize,
    model_nbytes,
    named_modules,
    quantization_range,
    quantize,
    quantize_model,
    to_float16,
)
from tinytorch.text.embeddings import Embedding, PositionalEmbedding

SETTINGS = settings(max_examples=40, deadline=None)
# torch 2.13 deprecates its quantized tensors; they remain the reference for the convention
TORCH_QUANTIZED = pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")
FLOATS = st.floats(-1e4, 1e4, allow_nan=False, width=32)


def step_of(qt, ndim):
    """The scale broadcast against the tensor (per channel: along its axis)."""
    scale = qt.scale.astype(np.float64)
    if qt.axis is None:
        return scale
    shape = [1] * ndim
    shape[qt.axis] = -1
    return scale.reshape(shape)


def assert_within_half_a_step(w, qt):
    back = dequantize(qt)
    assert back.dtype == np.float32 and back.shape == w.shape
    error = np.abs(back.astype(np.float64) - w.astype(np.float32))
    bound = step_of(qt, w.ndim) * (0.5 + 1e-4)          # half a step, and float32 round-off
    assert np.all(error <= bound), f"worst error {error.max()} over a step of {np.max(qt.scale)}"


@SETTINGS
@given(w=hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6), elements=FLOATS),
       symmetric=st.booleans(), per_channel=st.booleans(), bits=st.sampled_from([8, 4]),
       axis=st.integers(-3, 2))
def test_the_round_trip_is_within_half_a_step(w, symmetric, per_channel, bits, axis):
    axis = axis % w.ndim
    qt = quantize(w, bits=bits, symmetric=symmetric, per_channel=per_channel, axis=axis)
    qmin, qmax = quantization_range(bits, symmetric)
    assert qt.q.dtype == (np.int8 if symmetric else np.uint8)
    assert qt.q.min() >= qmin and qt.q.max() <= qmax
    if symmetric:
        assert qt.zero_point is None                     # 0 by construction: nothing stored
    else:
        assert np.all((qt.zero_point >= qmin) & (qt.zero_point <= qmax)) and qt.zero_point.dtype == np.int32
    assert qt.scale.dtype in (np.float16, np.float32) and np.all(qt.scale > 0)
    assert qt.scale.shape == ((w.shape[axis],) if per_channel else ())
    assert_within_half_a_step(w, qt)


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("value", [0.0, 0.37, -5.0])
def test_all_equal_weights_come_back_without_nan(symmetric, value):
    w = np.full((4, 3), value, dtype=np.float32)
    for per_channel in (False, True):
        back = dequantize(quantize(w, symmetric=symmetric, per_channel=per_channel))
        assert np.all(np.isfinite(back))
        assert np.allclose(back, value, atol=abs(value) / 127 + 1e-12)


def test_an_all_zero_channel_stays_zero_and_the_others_keep_their_own_step():
    w = np.random.default_rng(0).standard_normal((16, 5)).astype(np.float32)
    w[:, 1] = 0.0
    for symmetric in (True, False):
        qt = quantize(w, symmetric=symmetric, per_channel=True, axis=1)
        back = dequantize(qt)
        assert np.all(back[:, 1] == 0) and np.all(np.isfinite(back))
        assert_within_half_a_step(w, qt)


def test_one_outlier_costs_per_tensor_more_than_per_channel():
    w = np.random.default_rng(1).standard_normal((128, 32)).astype(np.float32) * 0.05
    w[7] *= 100                                           # one large row (channel 7 of axis 0)
    per_tensor = np.abs(dequantize(quantize(w)) - w)
    per_channel = np.abs(dequantize(quantize(w, per_channel=True, axis=0)) - w)
    assert np.all(per_channel.max(axis=1) <= per_tensor.max(axis=1) + 1e-7)
    assert per_channel.mean() < per_tensor.mean() / 10


def test_values_at_the_ends_of_the_range_take_the_end_codes():
    sym = quantize(np.array([-2.0, 0.0, 2.0], dtype=np.float32))
    assert sym.q.tolist() == [-127, 0, 127]
    asym = quantize(np.array([-1.0, 0.0, 3.0], dtype=np.float32), symmetric=False)
    assert asym.q.tolist()[0] == 0 and asym.q.tolist()[-1] == 255
    assert dequantize(asym)[1] == 0.0                     # the real 0 is a code exactly


@pytest.mark.parametrize("w", [[10.0, 10.5, 11.0], [-3.0, -2.5, -2.0], [1e-6, 2e-6, 3e-6]])
def test_one_signed_tensors_keep_the_zero_point_in_range(w):
    w = np.array(w, dtype=np.float32)
    qt = quantize(w, symmetric=False)
    assert 0 <= int(qt.zero_point) <= 255
    assert_within_half_a_step(w, qt)


def test_bad_input_gets_a_one_line_error():
    for bad, match in [(dict(bits=16), "bits"), (dict(bits=1), "bits"), (dict(per_channel=True, axis=3), "axis")]:
        with pytest.raises(ValueError, match=match):
            quantize(np.ones((2, 3)), **bad)
    with pytest.raises(ValueError, match="nan"):
        quantize(np.array([1.0, np.inf]))
    with pytest.raises(ValueError, match="empty"):
        quantize(np.zeros((0, 3)))


@pytest.mark.parametrize("per_channel", [False, True])
def test_nbytes_counts_each_array_at_its_dtype(per_channel):
    w = np.random.default_rng(2).standard_normal((256, 48)).astype(np.float32)
    qt = quantize(w, per_channel=per_channel, axis=1)
    channels = 48 if per_channel else 1
    assert qt.scale.dtype == np.float16 and qt.zero_point is None
    assert qt.nbytes == 256 * 48 + channels * 2
    assert w.nbytes / qt.nbytes > (3.9 if per_channel else 3.99)
    asymmetric = quantize(w, symmetric=False, per_channel=per_channel, axis=1)
    assert asymmetric.nbytes == 256 * 48 + channels * (2 + 4)


@pytest.mark.parametrize("symmetric", [True, False])
def test_float16_scales_keep_the_bound_within_2_to_the_minus_10_of_float32s(symmetric):
    rng = np.random.default_rng(8)
    w = rng.standard_normal((512, 64)).astype(np.float32) * np.logspace(-2, 1, 64, dtype=np.float32)
    qt = quantize(w, symmetric=symmetric, per_channel=True, axis=1)
    assert qt.scale.dtype == np.float16
    lo, hi = np.minimum(w.min(axis=0), 0), np.maximum(w.max(axis=0), 0)
    exact = np.maximum(-lo, hi) / 127 if symmetric else (hi - lo) / 255
    stored = qt.scale.astype(np.float64)
    assert np.all(stored >= exact) and np.all(stored <= exact * (1 + 2**-10))
    error = np.abs(dequantize(qt).astype(np.float64) - w)
    assert np.all(error <= stored / 2 * (1 + 1e-6))
    assert np.all(error.max(axis=0) <= exact / 2 * (1 + 2**-10) * (1 + 1e-6))


@pytest.mark.parametrize("magnitude", [1e-8, 1e8])
def test_scales_float16_cannot_hold_stay_float32(magnitude):
    w = np.random.default_rng(9).standard_normal((32, 8)).astype(np.float32) * magnitude
    qt = quantize(w, per_channel=True, axis=1)
    assert qt.scale.dtype == np.float32 and np.all(np.isfinite(qt.scale)) and np.all(qt.scale > 0)
    assert_within_half_a_step(w, qt)


@TORCH_QUANTIZED
def test_the_asymmetric_grid_is_torchs_quint8():
    w = np.random.default_rng(3).standard_normal((40, 30)).astype(np.float32) * 3 + 1
    qt = quantize(w, symmetric=False)
    theirs = torch.quantize_per_tensor(torch.from_numpy(w), float(qt.scale), int(qt.zero_point), torch.quint8)
    codes = theirs.int_repr().numpy()
    assert np.abs(codes.astype(int) - qt.q.astype(int)).max() <= 1        # a tie may round either way
    assert np.mean(codes == qt.q) > 0.999
    assert np.allclose(theirs.dequantize().numpy(), dequantize(qt), atol=float(qt.scale) * 1.0001)


@TORCH_QUANTIZED
def test_the_symmetric_per_channel_grid_is_torchs_qint8_with_zero_points_0():
    w = np.random.default_rng(4).standard_normal((6, 5, 3, 3)).astype(np.float32)   # a conv weight
    qt = quantize(w, per_channel=True, axis=0)
    theirs = torch.quantize_per_channel(torch.from_numpy(w), torch.from_numpy(qt.scale.astype(np.float64)),
                                        torch.zeros(6, dtype=torch.int64), 0, torch.qint8)
    codes = theirs.int_repr().numpy()
    assert np.abs(codes.astype(int) - qt.q.astype(int)).max() <= 1
    assert np.mean(codes == qt.q) > 0.999 and codes.min() >= -127


def mlp(seed=0):
    manual_seed(seed)
    return Sequential(Linear(784, 512), ReLU(), Linear(512, 256), ReLU(), Linear(256, 10))


def test_quantize_model_leaves_the_original_alone_and_stays_within_the_scales():
    model = mlp()
    before = model.state_dict()
    x = Tensor(np.random.default_rng(5).random((16, 784)))
    exact = model(x).data
    quantized = quantize_model(model)
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())
    assert all(isinstance(layer, Linear) for layer in model.layers[::2])
    assert all(isinstance(layer, QuantizedLinear) for layer in quantized.layers[::2])
    # the first layer alone: each output moves by at most sum |x_i| * scale_j / 2
    first = quantized[0](x).data - model[0](x).data
    bound = np.abs(x.data).sum(axis=1, keepdims=True) * quantized[0].weight_scale / 2
    assert np.all(np.abs(first) <= bound * 1.001 + 1e-5)
    got = quantized(x).data
    assert got.dtype == np.float32
    assert np.abs(got - exact).max() < 0.01 * np.abs(exact).max()
    assert np.array_equal(model(x).data, exact)


def test_int8_per_channel_stores_a_model_of_realistic_shape_3_8_times_smaller():
    model = mlp()
    ratio = model_nbytes(model) / model_nbytes(quantize_model(model))
    assert ratio >= 3.8, ratio
    assert model_nbytes(model) == 4 * sum(p.size for p in model.parameters())


@pytest.mark.parametrize("name", ["cnn", "gpt char", "gpt bpe"])
def test_the_milestones_models_are_3_8_times_smaller_in_int8_per_channel(name):
    from milestones import cnn, gpt

    manual_seed(0)
    model = {"cnn": cnn.build_model, "gpt char": lambda: gpt.build_model(76),
             "gpt bpe": lambda: gpt.build_model(gpt.BPE_VOCAB)}[name]()
    quantized = quantize_model(model)
    ratio = model_nbytes(model) / model_nbytes(quantized)
    assert ratio >= 3.8, f"{name}: {ratio:.3f}x"
    kinds = (Linear, Conv2d, Embedding, PositionalEmbedding)
    layers = [m for _, m in named_modules(model) if isinstance(m, kinds)]
    twins = [m for _, m in named_modules(quantized) if isinstance(m, QuantizedLayer)]
    assert len(twins) == len(layers) and all(t.layer.weight is None for t in twins)
    # every byte accounted: 1 per weight, 2 per scale and per other parameter, nothing else
    weights = sum(m.weight.size for m in layers)
    channels = sum(m.weight.shape[1 if isinstance(m, Linear) else 0] for m in layers)
    rest = sum(p.size for p in model.parameters()) - weights
    assert model_nbytes(quantized) == weights + 2 * channels + 2 * rest


def test_quantized_models_degrade_as_bits_run_out():
    model = mlp(1)
    x = Tensor(np.random.default_rng(6).random((32, 784)))
    exact = model(x).data
    errors = [np.abs(quantize_model(model, bits=b)(x).data - exact).mean() for b in (8, 6, 4, 3)]
    assert errors == sorted(errors) and errors[2] > 4 * errors[0]


def test_calibrated_inputs_bound_the_activations_and_w8a8_stays_close():
    model = mlp(2)
    batches = [np.random.default_rng(i).random((8, 784)) for i in range(3)]
    ranges = calibrate(model, batches)
    assert set(ranges) == {"0", "2", "4"}
    everything = np.concatenate(batches)
    assert ranges["0"] == pytest.approx((everything.min(), everything.max()), abs=1e-6)
    assert ranges["2"][0] >= 0                                 # after a ReLU
    x = Tensor(everything)
    exact = model(x).data
    w8a8 = quantize_model(model, activations=ranges)(x).data
    assert np.abs(w8a8 - exact).max() < 0.02 * np.abs(exact).max()
    with pytest.raises(KeyError, match="calibrate"):
        quantize_model(model, activations={"0": (0.0, 1.0)})


def test_a_gpt_quantizes_and_halves_in_float16():
    manual_seed(0)
    model = GPT(GPTConfig(vocab_size=30, block_size=8, n_layer=2, n_head=2, n_embd=16))
    ids = np.random.default_rng(7).integers(0, 30, (2, 8))
    exact = model(ids).data
    quantized = quantize_model(model)
    linears = [m for m in (quantized.blocks[0].attn.q_proj, quantized.blocks[1].mlp.fc, quantized.head)]
    assert all(isinstance(m, QuantizedLinear) for m in linears)
    assert np.abs(quantized(ids).data - exact).max() < 0.05 * np.abs(exact).max()
    half = to_float16(model)
    assert model_nbytes(half) * 2 == model_nbytes(model)
    assert all(p.dtype == np.float16 for p in half.parameters())
    assert model.tok_emb.weight.dtype == np.float32
    assert np.abs(half(ids).data.astype(np.float32) - exact).max() < 0.05 * np.abs(exact).max()
