# %% [markdown]
# # Module 17: Precision — models are huge: use fewer bits
#
# Every model so far stores each weight as a float32: **4 bytes per parameter**. Size is
# bytes per parameter × parameters, and the parameters grow fast:
#
# | model | parameters | float32 |
# |---|---:|---:|
# | the mnist milestone's MLP (784-128-10) | 101,770 | 407 KB |
# | the cnn milestone's CNN | 105,866 | 423 KB |
# | the gpt milestone's GPT (vocabulary 76) | 113,920 | 456 KB |
# | GPT-2 small | 124 M | 498 MB |
# | a 7-billion-parameter model | 7 B | 28 GB |
#
# Ours fit anywhere; the last one does not fit on most GPUs, and generating each token
# reads every weight once, so memory traffic, not arithmetic, sets its speed. Trained
# weights do not need 24 bits of mantissa: they are noisy estimates to begin with. This
# module stores them in fewer bits and **measures** what that costs:
#
# 1. **float16**: 2 bytes, the same kind of number with less range and precision;
# 2. **int8**: 1 byte, an integer grid with a scale: `real ≈ scale × (q − zero_point)`;
#    symmetric or asymmetric, one scale per tensor or one per output channel;
# 3. **calibration**: the ranges of the activations, measured on real batches;
# 4. **quantized layers** and `quantize_model`, which swaps every Linear, Conv2d and
#    Embedding of a model for one that stores its weight in int8;
# 5. **int4**, to watch the error grow as the bits run out.
#
# One honest limit up front: NumPy has no int8 matrix product that is faster than its
# float32 one, so our quantized layers *store* int8 and *compute* in float32. The last
# section measures that and says where the speed comes from on hardware that has int8
# kernels.

# %%
import numpy as np

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Sequential, manual_seed
from tinytorch.core.tensor import Tensor
from tinytorch.models.transformer import GPT, GPTConfig
from tinytorch.perf.acceleration import median_ms  # module 15's stopwatch

np.set_printoptions(precision=5, suppress=True)      # compact arrays in this notebook

# %% [markdown]
# ## Counting bytes as they are stored
#
# A model's size on disk and in memory is the bytes of everything `state_dict()` saves:
# every Parameter and every buffer (module 04), each at its own dtype. A float32 array of
# n numbers is 4n bytes (`array.nbytes`); the same numbers in float16 are 2n. Count each
# array as it is stored, never as "parameters × 4": after this module they are not all
# float32.

# %%
#| export
import copy
from dataclasses import dataclass

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Linear, Module
from tinytorch.core.spatial import Conv2d
from tinytorch.core.tensor import Tensor
from tinytorch.text.embeddings import Embedding, PositionalEmbedding


def model_nbytes(model):
    """The bytes of every stored array of `model`: its Parameters and its buffers, each at
    the dtype it is stored in (what state_dict() saves)."""
    # TODO: add up .nbytes of every Parameter's array (named_parameters()) and of every
    #       buffer (named_buffers(), already arrays). Return a Python int.
    ### BEGIN SOLUTION
    total = sum(param.data.nbytes for _, param in model.named_parameters())
    total += sum(buffer.nbytes for _, buffer in model.named_buffers())
    return int(total)
    ### END SOLUTION

# %% [markdown]
# The table above, computed: the same count for three models of the course.

# %%
def mlp():
    return Sequential(Linear(784, 128), ReLU(), Linear(128, 10))


manual_seed(0)
for name, model in [("mnist MLP", mlp()),
                    ("gpt milestone's GPT", GPT(GPTConfig(76, 64, 2, 4, 64)))]:
    count = sum(p.size for p in model.parameters())
    print(f"{name:<22} {count:>9,} parameters  {model_nbytes(model):>9,} bytes")

# %%
#| test: model_size (2 points)
def test_model_nbytes():
    manual_seed(0)
    model = mlp()
    expected = (784 * 128 + 128 + 128 * 10 + 10) * 4
    assert model_nbytes(model) == expected, (
        f"model_nbytes(MLP 784-128-10) should be {expected:,} (101,770 float32 numbers), "
        f"got {model_nbytes(model)}")

test_model_nbytes()
### BEGIN HIDDEN TESTS
from tinytorch.core.layers import Module as _Module
from tinytorch.core.layers import Parameter as _Parameter


class _Stats(_Module):
    def __init__(self):
        super().__init__()
        self.weight = _Parameter(np.ones((3, 5), dtype=np.float16), dtype=np.float16)
        self.register_buffer("count", np.zeros(7, dtype=np.int64))


_m = _Stats()
assert model_nbytes(_m) == 3 * 5 * 2 + 7 * 8, (
    "model_nbytes must count each array at its own dtype (float16: 2 bytes) and include "
    f"the buffers: expected {3 * 5 * 2 + 7 * 8}, got {model_nbytes(_m)}")
assert isinstance(model_nbytes(_m), int), "model_nbytes returns a Python int"
### END HIDDEN TESTS

# %% [markdown]
# ## float16: half the bytes, less of everything
#
# A float32 has 1 sign bit, 8 exponent bits and 23 mantissa bits; a float16 has 1, 5 and
# 10. Fewer mantissa bits mean about 3 significant decimal digits instead of 7 (the gap
# between 1 and the next number is 2⁻¹⁰ ≈ 0.001). Fewer exponent bits mean a far smaller
# range: the largest float16 is **65,504**, the smallest normal one 6.1e-5, and below
# about 6e-8 everything is **0**. So weights (mostly between -1 and 1) survive; a sum of
# squares or a large logit may overflow to `inf`.

# %%
with np.errstate(over="ignore"):
    for value in [0.1, 1 / 3, 1000.7, 65504.0, 70000.0, 1e-5, 1e-8]:
        half = np.float16(value)
        print(f"{value:>12.8g} -> float16 {float(half):<14.8g} "
              f"relative error {abs(float(half) - value) / value:.1e}")

# %% [markdown]
# `to_float16(model)` makes a **new** model whose Parameters are stored as float16; the
# original keeps its float32 weights. The new model still computes: NumPy promotes a
# float32 × float16 product to float32, so a float32 input meets weights read up from
# float16, the usual "store in 16 bits, compute in 32" split.

# %%
#| export
def to_float16(model):
    """A copy of `model` whose Parameters are stored as float16 (`model` is unchanged)."""
    # TODO: deep-copy the model (copy.deepcopy), then replace every Parameter's .data of
    #       the copy by a float16 version of it and forget its .grad. Return the copy.
    ### BEGIN SOLUTION
    half = copy.deepcopy(model)
    for _, param in half.named_parameters():
        param.data = param.data.astype(np.float16)
        param.grad = None
    return half
    ### END SOLUTION

# %%
#| test: float16 (2 points)
def test_to_float16():
    manual_seed(1)
    model = mlp()
    before = model[0].weight.data.copy()
    half = to_float16(model)
    assert all(p.dtype == np.float16 for p in half.parameters()), (
        "every Parameter of to_float16(model) should be stored as float16")
    assert model[0].weight.dtype == np.float32 and np.array_equal(
        model[0].weight.data, before), "to_float16 must leave the original model alone"
    assert model_nbytes(half) * 2 == model_nbytes(model), (
        "float16 storage should be exactly half of float32's bytes")
    x = Tensor(np.random.default_rng(0).standard_normal((4, 784)))
    diff = np.abs(half(x).data - model(x).data).max()
    assert diff < 0.05, f"the float16 model's outputs are {diff:.3g} away from float32's"

test_to_float16()
### BEGIN HIDDEN TESTS
manual_seed(2)
_gpt = GPT(GPTConfig(11, 8, 1, 2, 8, tie_weights=True))
_half = to_float16(_gpt)
assert _half.tok_emb.weight is not _gpt.tok_emb.weight, "to_float16 must copy the model"
assert len(_half.parameters()) == len(_gpt.parameters()), (
    "a tied Parameter stays one Parameter in the copy (deepcopy keeps the sharing)")
assert _gpt.tok_emb.weight.dtype == np.float32, "the original GPT must stay float32"
### END HIDDEN TESTS

# %% [markdown]
# ## int8: an integer grid with a scale
#
# Quantization maps each real weight w to a small integer q on a grid of evenly spaced
# values, the **affine map**:
#
# ```
# q = clamp(round(w / scale) + zero_point, qmin, qmax)     quantize
# w ≈ scale × (q − zero_point)                             dequantize
# ```
#
# Rounding moves each value by at most half a step, so the error of the round trip is at
# most **scale / 2** for every value inside the range. Two ways to place the grid:
#
# **Symmetric** (zero_point = 0): the grid is centred on 0, `scale = max|w| / 127`, and q
# lives in **-127..127**. Not -128: keeping the grid symmetric means -w quantizes to -q
# exactly and max|w| lands on ±127; the 256th code would buy 0.4% of range on one side
# only. By hand, w = [-1.0, -0.2, 0.3, 0.8]:
#
# ```
# scale = 1.0 / 127 = 0.007874
# w / scale = [-127.0, -25.4, 38.1, 101.6]  ->  q = [-127, -25, 38, 102]
# q * scale = [-1.0, -0.19685, 0.29921, 0.80315]   errors ≤ 0.0032 ≤ scale/2 = 0.0039
# ```
#
# **Asymmetric**: the grid covers [lo, hi] with 256 codes **0..255** (uint8), `scale =
# (hi − lo) / 255`, and the zero point is the code of the real number 0:
# `zero_point = round(−lo / scale)`. The range is widened to include 0 first
# (lo = min(w.min(), 0), hi = max(w.max(), 0)), so 0 is exactly representable and the
# zero point, rounded, always lies **inside** 0..255 (clamp it there anyway). By hand,
# w = [-0.5, 0.013, 0.7, 2.05]:
#
# ```
# scale = (2.05 − (−0.5)) / 255 = 0.01      zero_point = round(0.5 / 0.01) = 50
# q = round(w / 0.01) + 50 = [0, 51, 120, 255]
# (q − 50) * 0.01 = [-0.5, 0.01, 0.7, 2.05]     error of 0.013: 0.003 ≤ 0.005
# ```
#
# Forget to include 0 and a tensor of positive weights, say [10, 11], gets a zero point
# of round(−10 / 0.0039) = −2550: outside 0..255. Clamped to 0, the grid then starts at 0
# and every weight is off by about 10. Symmetric grids suit weights (centred on 0);
# asymmetric ones suit activations after a ReLU (all ≥ 0: symmetric would waste the
# negative half). With `bits` b instead of 8 the ranges are ±(2^(b−1) − 1) and 0..2^b − 1.
#
# **Storing the scale.** One scale per output channel of a 64-wide layer is 64 numbers
# beside 4,096 codes; at 4 bytes each they would cost 6% of the layer. We store them as
# float16 (11 significant bits), **rounded up** to the next float16, and compute the codes
# with the scale as stored. Rounding up never shrinks the grid, so max|w| still fits in
# ±127 and the error stays at most (stored scale)/2, which is at most 2⁻¹⁰ (0.1%) above
# the float32 half step. In the first example 1/127 = 0.0078740 is stored as 0.0078812:
# the codes are the same, -1.0 comes back as -127 × 0.0078812 = -1.0009 (0.0009 ≤ 0.0039).
# Dequantizing stays exact in float32: a code (8 bits) times an 11-bit scale has at most
# 19 significant bits. Scales outside float16's normal range (6.1e-5 .. 65,504, weights
# below about 0.008 or above 8 million in a channel) keep the whole tensor's scales
# float32. A symmetric grid stores **no zero point**: it is 0 by construction.

# %%
#| export
def quantization_range(bits, symmetric):
    """(qmin, qmax): the integer codes of a `bits`-bit grid; symmetric: -(2^(b-1) - 1) ..
    2^(b-1) - 1 (int8: -127..127), asymmetric: 0 .. 2^b - 1 (uint8: 0..255)."""
    # TODO: return the pair of Python ints for the two cases described above.
    ### BEGIN SOLUTION
    if symmetric:
        top = 2 ** (bits - 1) - 1
        return -top, top
    return 0, 2 ** bits - 1
    ### END SOLUTION


def stored_scale(scale):
    """The scales as stored: float16, each rounded up to the next float16 (a grid never
    shrinks), when every one is a normal float16 (6.1e-5 .. 65,504); else float32."""
    scale = np.asarray(scale, dtype=np.float32)
    with np.errstate(over="ignore"):
        half = scale.astype(np.float16)
    half = np.where(half < scale, np.nextafter(half, np.float16(np.inf)), half)
    if np.all(np.isfinite(half) & (half >= np.finfo(np.float16).tiny)):
        return half.astype(np.float16)
    return scale


def scale_and_zero_point(lo, hi, bits=8, symmetric=True):
    """The grid for values in [lo, hi] (numbers, or arrays of one range per channel):
    (scale as stored_scale stores it, of lo's shape; zero_point: None for a symmetric
    grid, else int32 of lo's shape). A zero range (all 0) gets scale 1: no division
    by 0."""
    lo, hi = np.asarray(lo, dtype=np.float32), np.asarray(hi, dtype=np.float32)
    qmin, qmax = quantization_range(bits, symmetric)
    zero_point = None                                   # symmetric: 0, so nothing stored
    # TODO: symmetric: scale = max(|lo|, |hi|) / qmax. Asymmetric: widen [lo, hi] to
    #       include 0, scale = (hi - lo) / (qmax - qmin). Where scale is 0, use 1; then
    #       scale = stored_scale(scale). Asymmetric only: zero_point = qmin - lo / scale
    #       (the stored scale) rounded, clipped to [qmin, qmax], as int32.
    ### BEGIN SOLUTION
    if symmetric:
        scale = np.maximum(np.abs(lo), np.abs(hi)) / qmax
    else:
        lo, hi = np.minimum(lo, 0), np.maximum(hi, 0)
        scale = (hi - lo) / (qmax - qmin)
    scale = stored_scale(np.where(scale > 0, scale, 1.0))
    if not symmetric:
        zero_point = np.clip(np.round(qmin - lo / scale), qmin, qmax).astype(np.int32)
    ### END SOLUTION
    return scale, zero_point

# %% [markdown]
# A `QuantizedTensor` holds what dequantizing needs: the codes `q` (int8 for symmetric
# grids, uint8 for asymmetric ones), `scale` and `zero_point` (one number, or one per
# channel along `axis`; no zero point for a symmetric grid), and `bits`. Its `.nbytes` is
# what it really stores: the codes at 1 byte each plus the scales (float16, 2 bytes) and
# any zero points (int32). Counting the codes at 4 bytes, as if they were still float32,
# would report no saving at all.

# %%
#| export
@dataclass(eq=False)
class QuantizedTensor:
    """Integer codes and the grid to read them: real ≈ scale × (q − zero_point).

    q: int8 (symmetric) or uint8 (asymmetric) array; scale (float16, or float32 when
    float16 cannot hold it) and zero_point (int32; None for a symmetric grid, where it is
    0): shape () for one grid per tensor, (C,) for one per channel along `axis` (None per
    tensor); bits: the grid's bits (2..8; the codes sit in 8-bit integers).
    """

    q: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray | None
    bits: int = 8
    axis: int | None = None

    @property
    def shape(self):
        return self.q.shape

    @property
    def nbytes(self):
        """Bytes stored: the codes, the scales and any zero points, each at its dtype."""
        # TODO: the sum of the arrays' .nbytes (a zero point of None stores nothing), as
        #       a Python int.
        ### BEGIN SOLUTION
        zero_points = 0 if self.zero_point is None else self.zero_point.nbytes
        return int(self.q.nbytes + self.scale.nbytes + zero_points)
        ### END SOLUTION

    def __repr__(self):
        grid = "per tensor" if self.axis is None else f"per channel (axis {self.axis})"
        return (f"QuantizedTensor(shape={self.shape}, {self.q.dtype}, bits={self.bits}, "
                f"{grid}, nbytes={self.nbytes})")


def _along(values, axis, ndim):
    """Per-channel values (C,) shaped to broadcast along `axis` of an ndim array; a
    per-tensor value (shape ()) as it is."""
    if axis is None:
        return values
    shape = [1] * ndim
    shape[axis] = -1
    return values.reshape(shape)


def _float_array(w, who):
    """w (a Tensor, a Parameter or array-like) as a finite float32 NumPy array."""
    array = np.asarray(w.data if isinstance(w, Tensor) else w, dtype=np.float32)
    if array.size == 0:
        raise ValueError(f"{who}: the tensor is empty, there is nothing to quantize")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{who}: the tensor holds nan or inf; quantize finite values")
    return array

# %% [markdown]
# ### Quantize and dequantize
#
# `quantize` finds the range, asks `scale_and_zero_point` for the grid, and rounds. With
# `per_channel=True` it keeps one range per index of `axis`: reduce (min, max) over every
# **other** axis. Module 04's Linear stores W as (in, out), so its output channels are
# **axis 1** (PyTorch stores (out, in): axis 0; a conv weight (out, in, kh, kw): axis 0).
# `dequantize` applies the map backwards and returns float32: cast the codes and the zero
# point to float32 *before* subtracting (uint8 − int would wrap or promote), and beware
# that int32 × float32 is float64 in NumPy.

# %%
#| export
def quantize(w, bits=8, symmetric=True, per_channel=False, axis=0):
    """w -> QuantizedTensor on a `bits`-bit grid: symmetric (int8 codes, no zero point) or
    asymmetric (uint8 codes), one grid for the tensor or one per channel along `axis`.

    >>> quantize(np.array([-1.0, -0.2, 0.3, 0.8])).q
    array([-127,  -25,   38,  102], dtype=int8)
    """
    w = _float_array(w, "quantize")
    whole = isinstance(bits, (int, np.integer)) and not isinstance(bits, bool)
    if not whole or not 2 <= bits <= 8:
        raise ValueError(f"quantize: bits must be a whole number from 2 to 8 (the codes "
                         f"are stored in 8-bit integers), got {bits!r}")
    if per_channel and not -w.ndim <= axis < w.ndim:
        raise ValueError(f"quantize: axis {axis} is out of range for a tensor of shape "
                         f"{w.shape}")
    axis = axis % w.ndim if per_channel else None
    qmin, qmax = quantization_range(bits, symmetric)
    # TODO: lo and hi: the min and max over the whole tensor, or, per channel, over every
    #       axis except `axis` (shape (C,)). Get (scale, zero_point) from
    #       scale_and_zero_point, then q = round(w / scale), plus the zero point when
    #       there is one, clipped to [qmin, qmax] (use _along(..., axis, w.ndim) to
    #       broadcast a per-channel grid).
    ### BEGIN SOLUTION
    others = None if axis is None else tuple(i for i in range(w.ndim) if i != axis)
    lo, hi = w.min(axis=others), w.max(axis=others)
    scale, zero_point = scale_and_zero_point(lo, hi, bits, symmetric)
    codes = np.round(w / _along(scale, axis, w.ndim))
    if zero_point is not None:
        codes = codes + _along(zero_point, axis, w.ndim)
    q = np.clip(codes, qmin, qmax)
    ### END SOLUTION
    q = q.astype(np.int8 if symmetric else np.uint8)
    return QuantizedTensor(q, scale, zero_point, int(bits), axis)


def dequantize(qt):
    """QuantizedTensor -> float32 array: scale × (q − zero_point) (zero_point None: 0)."""
    # TODO: cast q to float32 and subtract the zero point (when there is one, cast to
    #       float32 and broadcast along qt.axis with _along); multiply by the scale,
    #       broadcast the same way, and return float32.
    ### BEGIN SOLUTION
    codes = qt.q.astype(np.float32)
    if qt.zero_point is not None:
        codes = codes - _along(qt.zero_point, qt.axis, qt.q.ndim).astype(np.float32)
    scale = _along(qt.scale, qt.axis, qt.q.ndim).astype(np.float32)
    return (scale * codes).astype(np.float32)
    ### END SOLUTION

# %% [markdown]
# ### Test it: the worked examples and the grid's size
#
# The two hand examples above, and the codes' dtypes.

# %%
#| test: quantized_tensor (2 points)
def test_quantization_range():
    assert quantization_range(8, True) == (-127, 127), (
        f"symmetric 8-bit: expected (-127, 127), got {quantization_range(8, True)} "
        "(-128 stays unused, so the grid is symmetric)")
    assert quantization_range(8, False) == (0, 255), (
        f"asymmetric 8-bit: expected (0, 255), got {quantization_range(8, False)}")
    assert quantization_range(4, True) == (-7, 7), (
        f"symmetric 4-bit: expected (-7, 7), got {quantization_range(4, True)}")
    qt = quantize(np.zeros((10, 100)))
    asymmetric = quantize(np.ones(3), symmetric=False)
    assert qt.q.dtype == np.int8 and asymmetric.q.dtype == np.uint8, (
        "codes are int8 for symmetric grids and uint8 for asymmetric ones")

test_quantization_range()
### BEGIN HIDDEN TESTS
_w = np.random.default_rng(5).standard_normal((64, 32)).astype(np.float32)
for _sym in (True, False):
    for _pc in (False, True):
        _qt = quantize(_w, symmetric=_sym, per_channel=_pc, axis=1)
        _want = _w.size + (2 if _sym else 2 + 4) * (32 if _pc else 1)
        assert _qt.nbytes == _want, (
            f"QuantizedTensor.nbytes (symmetric={_sym}, per_channel={_pc}) of a 64x32 "
            f"tensor: expected {_want} (1 byte per code, 2 per float16 scale, 4 per int32 "
            f"zero point, none for a symmetric grid), got {_qt.nbytes}")
        assert isinstance(_qt.nbytes, int), "nbytes is a Python int"
assert quantization_range(2, False) == (0, 3) and quantization_range(3, True) == (-3, 3), (
    "quantization_range must follow bits: 2-bit asymmetric is (0, 3), 3-bit symmetric "
    "(-3, 3)")
### END HIDDEN TESTS

# %%
#| test: quantize_symmetric (3 points)
def test_quantize_symmetric():
    w = np.array([-1.0, -0.2, 0.3, 0.8], dtype=np.float32)
    qt = quantize(w)
    assert qt.scale == np.float16(0.0078812) and qt.zero_point is None, (
        f"symmetric: scale = max|w| / 127 = {1 / 127:.7f}, stored as the float16 just "
        f"above, 0.0078812, and no zero point; got scale {qt.scale}, zero_point "
        f"{qt.zero_point}")
    assert qt.q.tolist() == [-127, -25, 38, 102], (
        f"the worked example's codes are [-127, -25, 38, 102], got {qt.q.tolist()}")
    back = dequantize(qt)
    assert back.dtype == np.float32, f"dequantize returns float32, got {back.dtype}"
    assert np.all(np.abs(back - w) <= qt.scale / 2 + 1e-7), (
        f"round trip error {np.abs(back - w)} exceeds scale/2 = {qt.scale / 2:.6f}")

test_quantize_symmetric()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_raises, assert_untouched, cases


def _check_bound(w, **options):
    qt = quantize(w, **options)
    back = dequantize(qt)
    scale = _along(qt.scale, qt.axis, w.ndim).astype(np.float64)
    bound = scale * (0.5 + 1e-4)                   # half a step, and float32 round-off
    assert back.dtype == np.float32 and back.shape == w.shape, (
        f"dequantize of a {w.shape} tensor should be float32 of that shape")
    err = np.abs(back.astype(np.float64) - w.astype(np.float32))
    assert np.all(err <= bound), (
        f"quantize{options} on a {w.shape} tensor: round-trip error {err.max():.3g} is "
        f"more than scale/2 somewhere (scale {np.max(scale):.3g})")


for _case in cases([(7,), (3, 5), (5, 3), (2, 3, 4, 6)], magnitudes=["ordinary", "tiny",
                                                                  "huge", "rows"]):
    _a = _case.arrays[0]
    _check_bound(_a)
    _check_bound(_a, per_channel=True, axis=0)
    _check_bound(_a, per_channel=True, axis=-1)
    _check_bound(_a, bits=4)
assert_untouched(quantize, np.linspace(-1, 1, 12).reshape(3, 4), per_channel=True)
_w = np.array([[-8.0, 1.0], [-1.0, 0.5], [0.25, 9.0]], dtype=np.float32)
_qt = quantize(_w, per_channel=True, axis=0)
_want = stored_scale(np.array([8.0, 1.0, 9.0], dtype=np.float32) / 127)
assert np.array_equal(_qt.scale, _want), (
    f"per channel along axis 0, each row's scale is its own max|w| / 127: "
    f"{_want.tolist()}, got {np.asarray(_qt.scale).tolist()}. Take min and max over "
    "every axis except `axis`.")
assert np.array_equal(quantize(-np.array([-1.0, -0.2, 0.3, 0.8])).q, [127, 25, -38, -102]), (
    "symmetric: negating w must negate the codes")
assert_raises(ValueError, quantize, np.ones(3), bits=16, match="bits")
assert_raises(ValueError, quantize, np.ones((2, 3)), per_channel=True, axis=2, match="axis")
assert_raises(ValueError, quantize, np.array([1.0, np.nan]), match="nan")
### END HIDDEN TESTS

# %%
#| test: quantize_asymmetric (3 points)
def test_quantize_asymmetric():
    w = np.array([-0.5, 0.013, 0.7, 2.05], dtype=np.float32)
    qt = quantize(w, symmetric=False)
    assert np.isclose(qt.scale, 0.01, rtol=2**-10) and qt.zero_point == 50, (
        f"asymmetric: scale (2.05 + 0.5) / 255 = 0.01 (stored as float16: 0.0100021), "
        f"zero_point round(0.5 / 0.01) = 50; got {qt.scale}, {qt.zero_point}")
    assert qt.q.tolist() == [0, 51, 120, 255], (
        f"the worked example's codes are [0, 51, 120, 255], got {qt.q.tolist()}")
    back = dequantize(qt)
    assert np.allclose(back, [-0.5, 0.01, 0.7, 2.05], rtol=2**-10, atol=0), (
        f"dequantize: (q - 50) * 0.01 = [-0.5, 0.01, 0.7, 2.05], got {back}")

test_quantize_asymmetric()
### BEGIN HIDDEN TESTS
for _w in [np.array([10.0, 10.5, 11.0]), np.array([-3.0, -2.5, -2.0]),
           np.linspace(0.2, 0.9, 20).reshape(4, 5)]:
    _qt = quantize(_w, symmetric=False)
    assert 0 <= int(_qt.zero_point) <= 255, (
        f"the zero point must lie in 0..255, got {_qt.zero_point} for {_w.ravel()[:3]}...")
    _check_bound(_w, symmetric=False)
    _check_bound(_w, symmetric=False, per_channel=True, axis=-1)
_qt = quantize(np.array([0.1, 0.25, 0.6]), symmetric=False)
assert _qt.scale == stored_scale(np.float32(0.6) / 255) and _qt.zero_point == 0, (
    f"[0.1, 0.6] widened to include 0 is [0, 0.6]: scale 0.6 / 255 (stored), zero point "
    f"0; got {_qt.scale}, {_qt.zero_point}")
_qt = quantize(np.array([0.0, 1.0, 3.0]), symmetric=False)
assert dequantize(_qt)[0] == 0.0, "0 must dequantize to exactly 0 (include 0 in the range)"
for _case in cases([(3, 5), (2, 3, 4, 6)], magnitudes=["ordinary", "tiny", "rows"]):
    _check_bound(_case.arrays[0], symmetric=False)
    _check_bound(_case.arrays[0], symmetric=False, per_channel=True, axis=1)
### END HIDDEN TESTS

# %% [markdown]
# ## Per channel: one outlier no longer sets everyone's step
#
# One grid for a whole matrix takes its step from the largest weight anywhere. If one
# output channel holds weights 50 times larger than the others, every other channel is
# rounded to a handful of codes. One scale per output channel costs 2 bytes per channel
# (a float16 scale; an asymmetric grid adds a 4-byte zero point) and gives each channel
# its own step.

# %%
rng = np.random.default_rng(0)
w = rng.standard_normal((256, 64)).astype(np.float32) * 0.05     # (in, out) like Linear
w[:, 7] *= 50                                                    # one loud output channel
for per_channel in (False, True):
    qt = quantize(w, per_channel=per_channel, axis=1)
    err = np.abs(dequantize(qt) - w)
    print(f"per_channel={per_channel!s:<5}  mean |error| {err.mean():.2e}   "
          f"max |error| {err.max():.2e}   {qt.nbytes:,} bytes (float32: {w.nbytes:,})")

# %% [markdown]
# ### Test it: the edges
#
# All-equal weights (an all-zero tensor has range 0: no division by zero, no NaN), an
# all-zero channel, one outlier, values exactly at the ends of the range.

# %%
#| test: quantize_edges (3 points)
def test_quantize_edges():
    for symmetric in (True, False):
        qt = quantize(np.zeros((3, 4)), symmetric=symmetric)
        back = dequantize(qt)
        assert np.all(np.isfinite(back)) and np.all(back == 0), (
            f"an all-zero tensor (symmetric={symmetric}) must come back as zeros, got "
            f"{back.ravel()[:4]}: guard the zero scale")
    w = np.array([[-2.0, 0.5], [1.0, 2.0]], dtype=np.float32)
    qt = quantize(w)
    back = dequantize(qt)
    assert [qt.q[0, 0], qt.q[1, 1]] == [-127, 127], (
        f"the ends of a symmetric range (±max|w|) take the codes ±127, got {qt.q}")
    assert np.allclose([back[0, 0], back[1, 1]], [-2.0, 2.0], rtol=2**-10, atol=0), (
        "the ends of a symmetric range (±max|w|) come back within the float16 scale's "
        f"rounding (2^-10 of them), got {back}")

test_quantize_edges()
### BEGIN HIDDEN TESTS
_w = np.random.default_rng(7).standard_normal((32, 6)).astype(np.float32)
_w[:, 2] = 0.0                                          # an all-zero output channel
for _sym in (True, False):
    _back = dequantize(quantize(_w, symmetric=_sym, per_channel=True, axis=1))
    assert np.all(np.isfinite(_back)) and np.all(_back[:, 2] == 0), (
        f"an all-zero channel (symmetric={_sym}) must come back as finite zeros")
    _check_bound(_w, symmetric=_sym, per_channel=True, axis=1)
_back = dequantize(quantize(np.full((2, 3), 0.37), symmetric=False))
assert np.allclose(_back, 0.37, atol=0.37 / 255), f"all-equal weights 0.37 came back {_back}"
_out = np.random.default_rng(8).standard_normal((64, 16)).astype(np.float32)
_out[3] *= 100                                          # one large row
_per_tensor = np.abs(dequantize(quantize(_out)) - _out).max(axis=1)
_per_row = np.abs(dequantize(quantize(_out, per_channel=True, axis=0)) - _out).max(axis=1)
assert np.all(_per_row <= _per_tensor + 1e-6), (
    "per-channel error must be at most the per-tensor error in every channel")
_ends = np.array([-1.0, 0.0, 3.0])
_aq = quantize(_ends, symmetric=False)
assert _aq.q.tolist()[0] == 0 and _aq.q.tolist()[-1] == 255, (
    f"asymmetric: the range's ends take codes 0 and 255, got {_aq.q.tolist()}")
### END HIDDEN TESTS

# %% [markdown]
# ## Calibration: the ranges of the activations
#
# Weights are known in advance; the inputs of each layer (the **activations**) are not. To
# run a layer on int8 inputs, we must fix their grid before we see them. **Calibration**
# runs a few real batches through the float model and records, for every Linear and
# Conv2d, the smallest and largest input it saw. Those (min, max) pairs become the
# asymmetric grids of the inputs (after a ReLU they are all ≥ 0, where asymmetric grids
# shine).
#
# Module 04 has no hooks, so `calibrate` wraps each layer's `forward` for the duration
# of the batches (and restores it after, in a `finally`). Write the part that widens the
# running range with a new batch: keep the smallest minimum and largest maximum seen.

# %%
#| export
WEIGHT_INPUTS = (Linear, Conv2d)                     # the layers that multiply inputs


def named_modules(model, prefix=""):
    """(dotted name, module) for `model` (name prefix, "" at the top) and every
    sub-module, depth first, as named_parameters names them."""
    yield prefix, model
    for name, child in model._modules.items():
        yield from named_modules(child, f"{prefix}.{name}" if prefix else name)


def widen_range(ranges, name, x):
    """Widen ranges[name] = (min, max) to cover the array x (create it at the first
    batch)."""
    lo, hi = float(x.min()), float(x.max())
    # TODO: if name is already in ranges, keep the smaller min and the larger max of the
    #       old pair and (lo, hi); store the pair (Python floats) in ranges[name].
    ### BEGIN SOLUTION
    if name in ranges:
        lo, hi = min(lo, ranges[name][0]), max(hi, ranges[name][1])
    ranges[name] = (lo, hi)
    ### END SOLUTION


def calibrate(model, batches):
    """Run `batches` (inputs of model) through model in evaluation mode without a graph;
    {dotted name of every Linear and Conv2d: (min, max) of its inputs over all batches}.
    """
    ranges = {}
    linears = [(name, m) for name, m in named_modules(model)
               if isinstance(m, WEIGHT_INPUTS)]

    def recorder(name, layer):
        forward = type(layer).forward                   # the class's own forward

        def recording(x):
            widen_range(ranges, name, x.data if isinstance(x, Tensor) else np.asarray(x))
            return forward(layer, x)
        return recording

    was_training = model.training
    model.eval()
    try:
        for name, layer in linears:
            layer.forward = recorder(name, layer)      # an instance attribute wins
        with no_grad():
            for batch in batches:
                model(batch)
    finally:
        for _, layer in linears:
            layer.__dict__.pop("forward", None)         # back to the class's forward
        model.train(was_training)
    return ranges

# %%
#| test: calibrate (2 points)
def test_calibrate():
    manual_seed(3)
    model = Sequential(Linear(3, 4), ReLU(), Linear(4, 2))
    batches = [np.array([[0.0, -1.0, 2.0]]), np.array([[5.0, 0.5, -3.0]])]
    ranges = calibrate(model, batches)
    assert set(ranges) == {"0", "2"}, (
        f"one range per Linear, '0' and '2'; got {set(ranges)}")
    assert ranges["0"] == (-3.0, 5.0), (
        f"the first Linear saw inputs from -3 to 5 over both batches, got {ranges['0']}")
    assert ranges["2"][0] >= 0, "after the ReLU the second Linear's inputs are all >= 0"
    assert "forward" not in model[0].__dict__, "calibrate must restore each forward"

test_calibrate()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_mode_restored

_r = {}
widen_range(_r, "a", np.array([1.0, 2.0]))
widen_range(_r, "a", np.array([0.5, 1.5]))
widen_range(_r, "a", np.array([1.2, 1.3]))
assert _r["a"] == (0.5, 2.0), f"ranges widen over every batch: expected (0.5, 2.0), got {_r}"
manual_seed(4)
_model = Sequential(Linear(3, 4), ReLU(), Linear(4, 2))
_bs = [np.random.default_rng(i).standard_normal((5, 3)) * (i + 1) for i in range(4)]
_got = assert_mode_restored(_model, calibrate, _model, _bs)
_all = np.concatenate(_bs)
assert np.allclose(_got["0"], (_all.min(), _all.max())), (
    f"ranges must cover all batches: expected {(_all.min(), _all.max())}, got {_got['0']}")
### END HIDDEN TESTS

# %% [markdown]
# ## Quantized layers: one wrapper for every weight
#
# Every layer with a weight so far reads it as `self.weight` in its forward: module 04's
# Linear (`x @ weight`, weight (in, out)), module 09's Conv2d (weight (out, in, k, k)),
# module 12's Embedding and PositionalEmbedding (one row per token or position). So one
# wrapper serves them all: `QuantizedLayer` keeps the float layer **without** its weight,
# stores the codes, scales and zero points as **buffers** (`state_dict()` saves them,
# `model_nbytes` counts them as stored), and in forward puts a dequantized float32 weight
# into the layer for the length of one call, then takes it out again. Each kind only says
# where its output channels are: axis 1 of a Linear's (in, out), axis 0 of a conv's
# (out, in, k, k), axis 0 of an embedding (one grid per row).
#
# Why dequantize and multiply in float32, instead of multiplying the int8 codes? NumPy's
# matmul has no int8 kernel: on integer arrays it runs a plain loop, far slower than the
# float32 BLAS, and int8 products overflow unless widened to int32 first. The last section
# measures this. With `input_range` (from `calibrate`) a quantized Linear or Conv2d also
# rounds its input onto that uint8 grid first, simulating int8 activations ("W8A8").

# %%
#| export
def fake_quantize(x, lo, hi, bits=8):
    """x rounded onto the asymmetric `bits`-bit grid of [lo, hi], as float32: what an
    integer kernel would see (values outside the range are clamped)."""
    qmin, qmax = quantization_range(bits, False)
    scale, zero_point = scale_and_zero_point(lo, hi, bits, False)
    q = np.clip(np.round(x / scale) + zero_point, qmin, qmax)
    return (scale * (q - zero_point)).astype(np.float32)


class QuantizedLayer(Module):
    """A float layer whose weight is stored as a QuantizedTensor (int8 codes by default):
    forward dequantizes the weight into the layer for one call and runs the layer's own
    forward in float32. Inference only. Subclasses name the layer kinds they take and the
    axis of the weight's output channels."""

    kinds = ()                                          # the float layer classes taken
    channel_axis = 0                                    # the weight's output channels

    def __init__(self, layer, qweight, input_range=None):
        super().__init__()
        self.bits, self.axis = qweight.bits, qweight.axis
        self.register_buffer("weight_q", qweight.q)
        self.register_buffer("weight_scale", qweight.scale)
        self.register_buffer("weight_zero_point", qweight.zero_point)   # None: symmetric
        layer.weight = None                             # no float copy stays stored
        self.layer = layer                              # its bias and settings stay
        self.input_range = input_range                  # (lo, hi) of the inputs, or None

    @classmethod
    def from_layer(cls, layer, bits=8, per_channel=True, symmetric=True):
        """The quantized twin of `layer` (per channel: one grid per output channel).
        `layer` is not changed: the twin holds a copy of it without the weight."""
        if not isinstance(layer, cls.kinds):
            names = ", ".join(kind.__name__ for kind in cls.kinds)
            raise TypeError(f"{cls.__name__} quantizes {names} layers, got "
                            f"{type(layer).__name__}: use quantize_model for a model")
        qweight = quantize(layer.weight, bits=bits, symmetric=symmetric,
                           per_channel=per_channel, axis=cls.channel_axis)
        return cls(copy.deepcopy(layer), qweight)

    @property
    def qweight(self):
        return QuantizedTensor(self.weight_q, self.weight_scale, self.weight_zero_point,
                               self.bits, self.axis)

    @property
    def weight(self):
        """The dequantized float32 weight, as a Tensor made for this call."""
        return Tensor(dequantize(self.qweight))

    def forward(self, x):
        if self.input_range is not None:
            x = Tensor(fake_quantize(getattr(x, "data", x), *self.input_range))
        # TODO: set self.layer.weight to the dequantized weight (self.weight), return
        #       self.layer(x), and, in a `finally`, set self.layer.weight back to None.
        ### BEGIN SOLUTION
        self.layer.weight = self.weight                 # float32, for this call only
        try:
            return self.layer(x)
        finally:
            self.layer.weight = None
        ### END SOLUTION

    def extra_repr(self):
        grid = "per tensor" if self.axis is None else "per channel"
        return f"bits={self.bits}, {grid}, {self.weight_q.dtype}"


class QuantizedLinear(QuantizedLayer):
    """A module-04 Linear with a quantized (in, out) weight: output channels on axis 1."""

    kinds, channel_axis = (Linear,), 1

    @classmethod
    def from_linear(cls, linear, bits=8, per_channel=True, symmetric=True):
        return cls.from_layer(linear, bits, per_channel, symmetric)


class QuantizedConv2d(QuantizedLayer):
    """A module-09 Conv2d with a quantized (out, in, k, k) weight: one grid per kernel."""

    kinds, channel_axis = (Conv2d,), 0


class QuantizedEmbedding(QuantizedLayer):
    """A module-12 Embedding or PositionalEmbedding with a quantized table: one grid per
    row (per token, per position)."""

    kinds, channel_axis = (Embedding, PositionalEmbedding), 0

# %% [markdown]
# ## quantize_model: every weight swapped, the original untouched
#
# `quantize_model` deep-copies the model and replaces each Linear, Conv2d and embedding of
# the copy by its quantized twin. The walk goes parent by parent (`named_modules`): a
# child is replaced under its parent with `setattr`, and `replace_child` also swaps it in
# a list the parent keeps (Sequential runs `self.layers`, not its registered children).
#
# What is left are small vectors: biases and LayerNorm's gains and shifts (in the gpt
# milestone's GPT, 1,792 numbers beside 112,128 weights). Kept float32 they would hold the
# GPT at 3.7× smaller, so they are stored as float16, as `to_float16` does: a relative
# rounding of at most 2⁻¹¹ (0.05%), where int8 moves a channel's largest weight by up to
# 1/254 of it (0.4%).

# %%
#| export
QUANTIZED_LAYERS = (QuantizedLinear, QuantizedConv2d, QuantizedEmbedding)


def replace_child(parent, name, old, new):
    """Put `new` where `old` is: parent's child `name`, and in any list attribute of
    parent that holds `old` (Sequential.layers)."""
    setattr(parent, name, new)
    for value in vars(parent).values():
        if isinstance(value, list):
            value[:] = [new if item is old else item for item in value]


def quantized_class(layer):
    """The QuantizedLayer subclass that takes `layer`, or None."""
    return next((cls for cls in QUANTIZED_LAYERS if isinstance(layer, cls.kinds)), None)


def quantize_model(model, bits=8, per_channel=True, symmetric=True, activations=None):
    """A copy of `model` with every Linear, Conv2d, Embedding and PositionalEmbedding
    replaced by its quantized twin, and every other Parameter (biases, norms) stored as
    float16; `model` itself is unchanged. activations: calibrate()'s ranges, to quantize
    each Linear's and Conv2d's inputs too; None keeps them float32."""
    if quantized_class(model) is not None:                     # a single layer
        quantized = quantized_class(model).from_layer(model, bits, per_channel, symmetric)
    else:
        quantized = copy.deepcopy(model)
    for parent_name, parent in list(named_modules(quantized)):
        for name, child in list(parent._modules.items()):
            twin = quantized_class(child)
            if twin is None or isinstance(parent, QuantizedLayer):
                continue
            full = f"{parent_name}.{name}" if parent_name else name
            # TODO: make child's quantized twin (twin.from_layer with bits, per_channel,
            #       symmetric); with activations, and a child among WEIGHT_INPUTS, set its
            #       input_range to _range_of(activations, full); put it in child's place
            #       with replace_child.
            ### BEGIN SOLUTION
            layer = twin.from_layer(child, bits, per_channel, symmetric)
            if activations is not None and isinstance(child, WEIGHT_INPUTS):
                layer.input_range = _range_of(activations, full)
            replace_child(parent, name, child, layer)
            ### END SOLUTION
    for _, param in quantized.named_parameters():              # biases, norms
        param.data = param.data.astype(np.float16)
        param.grad = None
    return quantized


def _range_of(activations, name):
    if name not in activations:
        raise KeyError(f"quantize_model: activations has no range for layer '{name}': "
                       "pass the ranges calibrate(model, batches) returns for this model")
    return activations[name]

# %% [markdown]
# ### Test it: a quantized MLP
#
# The outputs move by a little, bounded by the scales: each weight moved by at most
# scale/2, so an output moves by at most Σ|x| × scale/2 over its inputs.

# %%
#| test: quantized_linear (3 points)
def test_quantized_linear():
    manual_seed(5)
    linear = Linear(20, 6)
    x = Tensor(np.random.default_rng(1).standard_normal((3, 20)))
    ql = QuantizedLinear.from_linear(linear)
    assert ql.weight_q.dtype == np.int8 and ql.weight_scale.shape == (6,), (
        "from_linear: int8 codes and one scale per output feature (axis 1 of (in, out))")
    got, want = ql(x).data, linear(x).data
    bound = np.abs(x.data).sum(axis=1, keepdims=True) * ql.weight_scale / 2
    assert got.shape == (3, 6) and got.dtype == np.float32, (
        f"QuantizedLinear output: expected float32 (3, 6), got {got.dtype} {got.shape}")
    assert np.all(np.abs(got - want) <= bound + 1e-5), (
        "QuantizedLinear(x) is further from Linear(x) than the scales allow: "
        "dequantize the weight, x @ weight, then add the bias")

test_quantized_linear()
### BEGIN HIDDEN TESTS
manual_seed(6)
_lin = Linear(7, 5, bias=False)
_x = Tensor(np.random.default_rng(2).standard_normal((2, 3, 7)))
_ql = QuantizedLinear.from_linear(_lin, per_channel=False, symmetric=False)
assert np.allclose(_ql(_x).data, _x.data @ dequantize(_ql.qweight), atol=1e-5), (
    "without a bias, QuantizedLinear(x) = x @ dequantize(qweight), for any leading axes")
assert _ql(_x).shape == (2, 3, 5), "QuantizedLinear keeps the leading axes"
_ql.input_range = (-1.0, 1.0)
_fq = fake_quantize(_x.data, -1.0, 1.0)
assert np.allclose(_ql(_x).data, _fq @ dequantize(_ql.qweight), atol=1e-5), (
    "with input_range, the input is rounded onto its grid before the product")
### END HIDDEN TESTS

# %%
#| test: quantize_model (3 points)
def test_quantize_model():
    manual_seed(7)
    model = Sequential(Linear(784, 256), ReLU(), Linear(256, 256), ReLU(),
                       Linear(256, 10))
    x = Tensor(np.random.default_rng(3).standard_normal((8, 784)))
    quantized = quantize_model(model)
    kinds = [type(layer).__name__ for layer in quantized]
    assert kinds == ["QuantizedLinear", "ReLU"] * 2 + ["QuantizedLinear"], (
        f"quantize_model: every Linear becomes a QuantizedLinear, got {kinds}")
    ratio = model_nbytes(model) / model_nbytes(quantized)
    assert ratio >= 3.8, (
        f"int8 per channel should store >= 3.8x fewer bytes, got {ratio:.2f}x")
    diff = np.abs(quantized(x).data - model(x).data).max()
    scale = np.abs(model(x).data).max()
    assert diff < 0.02 * scale, (
        f"outputs moved by {diff:.3g} (the outputs reach {scale:.3g}): too much for int8")

test_quantize_model()
### BEGIN HIDDEN TESTS
manual_seed(8)
_model = Sequential(Linear(6, 8), ReLU(), Sequential(Linear(8, 8), ReLU()), Linear(8, 3))
_before = _model.state_dict()
_x = Tensor(np.random.default_rng(4).standard_normal((5, 6)))
_y = _model(_x).data
_q = quantize_model(_model)
assert all(isinstance(_l, Linear) for _l in (_model[0], _model[2][0], _model[3])), (
    "quantize_model must leave the original model's Linears in place (work on a copy)")
assert all(np.array_equal(_before[_k], _v) for _k, _v in _model.state_dict().items()), (
    "quantize_model must not change the original model's weights")
assert isinstance(_q[2][0], QuantizedLinear) and isinstance(_q[2].layers[0], QuantizedLinear), (
    "a nested Sequential's Linears are replaced too, in its layers list as well")
assert np.allclose(_model(_x).data, _y), "the original model must compute as before"
_ranges = calibrate(_model, [_x])
_qa = quantize_model(_model, activations=_ranges)
assert _qa[0].input_range == _ranges["0"] and _qa[2][0].input_range == _ranges["2.0"], (
    "with activations, each QuantizedLinear gets the range of its own name")
_q4 = quantize_model(_model, bits=4)
assert np.abs(_q4(_x).data - _y).max() > np.abs(_q(_x).data - _y).max(), (
    "bits must reach the QuantizedLinears: 4 bits should err more than 8")
### END HIDDEN TESTS

# %% [markdown]
# ### Test it: convolutions and embeddings too
#
# The cnn milestone's CNN and the gpt milestone's GPT: every weight quantized, each model
# at least 3.8× smaller, and outputs that stay close to the float model's.

# %%
#| test: quantized_layers (3 points)
def test_quantized_layers():
    from tinytorch.core.spatial import Flatten, MaxPool2d

    manual_seed(9)
    cnn = Sequential(Conv2d(1, 16, 3, padding=1), ReLU(), MaxPool2d(2),
                     Conv2d(16, 32, 3, padding=1), ReLU(), MaxPool2d(2),
                     Flatten(), Linear(32 * 7 * 7, 64), ReLU(), Linear(64, 10))
    gpt = GPT(GPTConfig(76, 64, 2, 4, 64))
    images = np.random.default_rng(5).random((4, 1, 28, 28)).astype(np.float32)
    ids = np.random.default_rng(6).integers(0, 76, (2, 16))
    for model, x in [(cnn, images), (gpt, ids)]:
        quantized = quantize_model(model)
        kinds = sorted({type(m).__name__ for _, m in named_modules(quantized)
                        if isinstance(m, QuantizedLayer)})
        ratio = model_nbytes(model) / model_nbytes(quantized)
        assert ratio >= 3.8, (
            f"{type(model).__name__}: int8 per channel should be >= 3.8x smaller, got "
            f"{ratio:.2f}x (quantized layers: {kinds})")
        want, got = model(x).data, quantized(x).data
        assert got.dtype == np.float32 and got.shape == want.shape, (
            f"a quantized model computes float32 {want.shape}, got {got.dtype} "
            f"{got.shape}")
        diff = np.abs(got - want).max()
        assert diff < 0.05 * np.abs(want).max(), (
            f"{type(model).__name__}: outputs moved by {diff:.3g}: too much for int8")
    assert isinstance(quantized.tok_emb, QuantizedEmbedding) and isinstance(
        quantized.pos_emb, QuantizedEmbedding), "the GPT's embeddings are quantized too"
    assert quantized.tok_emb.weight_scale.shape == (76,), "one grid per embedding row"

test_quantized_layers()
### BEGIN HIDDEN TESTS
from tinytorch.core.spatial import Flatten as _Flatten
from tinytorch.core.spatial import conv2d as _conv2d
from tinytorch.testing import assert_raises

manual_seed(10)
_conv = Conv2d(3, 5, 3, stride=2, padding=1)
_qc = QuantizedConv2d.from_layer(_conv)
_xc = Tensor(np.random.default_rng(9).standard_normal((2, 3, 9, 9)))
assert _qc.weight_scale.shape == (5,) and "weight" not in _qc.layer._parameters, (
    "a quantized Conv2d keeps one grid per output channel and no float weight")
_want = _conv2d(_xc, Tensor(dequantize(_qc.qweight)), _conv.bias, 2, 1).data
assert np.allclose(_qc(_xc).data, _want, atol=1e-5), (
    "QuantizedConv2d(x) must be the conv of x with the dequantized weight (stride and "
    "padding kept)")
assert _qc.layer.weight is None, "after a call, no float weight stays in the layer"
assert_raises(TypeError, QuantizedConv2d.from_layer, Linear(2, 2), match="Conv2d")
_tied = GPT(GPTConfig(11, 8, 1, 2, 8, tie_weights=True))
_ids = np.random.default_rng(10).integers(0, 11, (2, 8))
_qt = quantize_model(_tied)
_yt = _tied(_ids).data
assert np.abs(_qt(_ids).data - _yt).max() < 0.05 * np.abs(_yt).max(), (
    "a GPT with tied weights reads its head from the quantized embedding: it must work")
assert all(_p.dtype == np.float16 for _p in _qt.parameters()), (
    "quantize_model stores what it does not quantize (biases, norms) as float16")
_m = Sequential(Conv2d(1, 2, 3), ReLU(), _Flatten(), Linear(2 * 4 * 4, 3))
_xm = np.random.default_rng(11).random((3, 1, 6, 6))
_rm = calibrate(_m, [_xm])
assert set(_rm) == {"0", "3"} and _rm["0"] == (_xm.min(), _xm.max()), (
    f"calibrate records the inputs of Conv2d and Linear layers, got {_rm}")
assert quantize_model(_m, activations=_rm)[0].input_range == _rm["0"], (
    "with activations, a quantized Conv2d gets its input range too")
### END HIDDEN TESTS

# %% [markdown]
# ## Fewer bits: int8, int6, int4, int3
#
# Each bit fewer doubles the step, so the error of the weights doubles, and so, roughly,
# does the error of the outputs. The calibrated int8 inputs (W8A8) add their own rounding.
# Below, an MLP of the mnist shape on random inputs: the relative change of its outputs.
# The bytes do not shrink below int8's: NumPy has no 4-bit type, so int4 codes sit in
# int8 arrays here (packed two per byte, they would take half).
# (The benchmark, `benchmarks/precision.py`, measures the real cost on trained models:
# the cnn milestone's accuracy and the gpt milestone's validation loss.)

# %%
manual_seed(0)
model = Sequential(Linear(784, 128), ReLU(), Linear(128, 10))
x = Tensor(np.random.default_rng(0).random((256, 784)).astype(np.float32))
exact = model(x).data
ranges = calibrate(model, [x[:64]])
variants = [(f"int{b} per channel", quantize_model(model, bits=b)) for b in (8, 6, 4, 3)]
variants.insert(1, ("int8 per tensor", quantize_model(model, per_channel=False)))
variants.insert(2, ("int8 W8A8", quantize_model(model, activations=ranges)))
for name, variant in variants:
    change = np.abs(variant(x).data - exact).mean() / np.abs(exact).mean()
    print(f"{name:<18} {model_nbytes(variant):>8,} bytes   output change {change:.2%}")

# %% [markdown]
# ## Speed, honestly
#
# Quantization above made the model 4× smaller; it did not make it faster. Timing a product
# of a batch of 64 inputs with a 512 × 512 weight (median of repeats after a warm-up;
# module 19 makes such measurements rigorous):

# %%
rng = np.random.default_rng(0)
a = rng.standard_normal((64, 512)).astype(np.float32)
big = Linear(512, 512)
qt = quantize(big.weight.data, per_channel=True, axis=1)
a8 = quantize(a, symmetric=True)
timings = {
    "float32 matmul (BLAS)": lambda: a @ big.weight.data,
    "dequantize the weight": lambda: dequantize(qt),
    "dequantize + float32 matmul": lambda: a @ dequantize(qt),
    "int8 codes, int32 matmul": lambda: a8.q.astype(np.int32) @ qt.q.astype(np.int32),
}
for name, fn in timings.items():
    print(f"{name:<28} {median_ms(fn, repeats=7):8.3f} ms")

# %% [markdown]
# On this machine's NumPy the integer product is many times *slower* than float32: BLAS
# has no integer kernels, so NumPy loops in C without vector units or blocking. That is
# why our layers dequantize first: it costs one pass over the weights per call, small
# beside the product for a batch, and keeps the float32 BLAS.
#
# Where the speed comes from elsewhere:
#
# - **int8 dot-product instructions**: x86's AVX-512 VNNI (`vpdpbusd`) and ARM's `sdot`
#   multiply 4 pairs of 8-bit integers and add them into a 32-bit sum in one instruction:
#   4× the multiply-adds of float32 per vector register. Libraries such as oneDNN, FBGEMM
#   and XNNPACK run int8 GEMMs on them, with the scales applied once per output.
# - **memory bandwidth**: generating text with batch 1 multiplies a vector by every
#   weight matrix, which reads each weight once and does 2 operations per weight read.
#   That is limited by memory, not arithmetic: 4× fewer bytes read is up to 4× faster,
#   even when the arithmetic itself is done in float after loading the bytes.
#
# ## What you built
#
# - `model_nbytes`: size as stored; `to_float16`: 2 bytes per weight, range up to 65,504;
# - `quantize` / `dequantize`: the affine map, symmetric (-127..127) or asymmetric (0..255
#   with a clamped zero point), per tensor or per channel, error at most scale/2;
# - `calibrate`: activation ranges; `QuantizedLayer` (Linear, Conv2d, embeddings) and
#   `quantize_model`: int8 models
#   about 4× smaller, which compute in float32 and say so.
#
# Next, module 18 goes further the other way: instead of storing each weight in fewer
# bits, it removes weights altogether.
