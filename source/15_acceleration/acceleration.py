# %% [markdown]
# # Module 15: Acceleration — our educational loops are slow
#
# Module 09 wrote convolution twice: as its definition, four Python loops, and as a loop
# over the 9 kernel offsets, each offset one matrix multiply. The first was too slow to
# train anything; the second trains the `cnn` milestone in about 30 seconds, and the
# `cifar10` recipe in about two hours. Where does the time go, and how far can NumPy take
# it?
#
# The rule of thumb this module measures, step by step: **a Python loop costs about a
# microsecond per iteration, whatever it does; a NumPy call costs a few microseconds and
# then runs at the speed of C.** So the work is to move loops out of Python and into as
# few, as large, NumPy calls as possible, ideally one matrix multiply (GEMM), which BLAS
# runs at close to the processor's peak. Three ladders:
#
# 1. **matmul**: three Python loops, then blocks of NumPy products, then one `np.matmul`;
# 2. **convolution**: its seven-loop definition, module 09's kernel offsets, then
#    **im2col**: every patch copied into one row of a matrix, and the whole convolution
#    (forward and both gradients) a few GEMMs;
# 3. **pooling** by strided slices, forward and backward in one memory layout;
#
# then **Winograd's** convolution, with fewer multiplications than any GEMM of patches,
# and **BatchNorm** as one operation with its backward written by hand. Then
# `accelerate(model)` makes every `Conv2d`, `MaxPool2d` and `BatchNorm2d` of a model
# compute with the fast kernels, same Parameters, and the `cnn` and `cifar10` milestones
# use it.
#
# Timings here are medians of a few calls after a warm-up, printed and never asserted: the
# machine you run on is shared and noisy. Module 19 makes such measurements rigorous
# (confidence intervals, pinned threads); `benchmarks/acceleration.py` measures the
# ladders and the cifar10 training step against PyTorch.

# %%
import time

import numpy as np

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import gradcheck
from tinytorch.core.layers import Linear, Sequential, manual_seed
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import SGD
from tinytorch.core.spatial import (
    BatchNorm2d,
    Conv2d,
    Flatten,
    MaxPool2d,
    conv2d,
    conv2d_forward,
    conv2d_naive,
    max_pool2d,
)
from tinytorch.core.tensor import Tensor

np.set_printoptions(precision=4, suppress=True)      # compact arrays in this notebook


# %% [markdown]
# ## Matrix multiply: loops, blocks, BLAS
#
# `C = A @ B` with A of shape (n, k) and B (k, m): `C[i, j] = Σ_p A[i, p] · B[p, j]`,
# three loops and n·m·k multiply-adds. Written in Python each multiply-add is a trip
# through the interpreter. Your package file starts here: the cells marked `#| export`
# become `tinytorch/perf/acceleration.py`.

# %%
#| export
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinytorch.core.autograd import register_gradient
from tinytorch.core.spatial import BatchNorm2d, Conv2d, MaxPool2d
from tinytorch.core.tensor import Tensor


def median_ms(fn, repeats=5, warmup=1):
    """fn's time in milliseconds: the median of `repeats` calls after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def _check_matmul(a, b):
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul needs 2-D arrays (n, k) and (k, m), got shapes "
                         f"{a.shape} and {b.shape}")


def matmul_loops(a, b):
    """a @ b by three Python loops over NumPy arrays: (n, k) @ (k, m) -> (n, m)."""
    _check_matmul(a, b)
    n, k = a.shape
    m = b.shape[1]
    out = np.zeros((n, m), dtype=np.result_type(a, b))
    # TODO: for every row i and column j, out[i, j] is the sum over p of
    #       a[i, p] * b[p, j], accumulated one product at a time in a third loop.
    ### BEGIN SOLUTION
    for i in range(n):
        for j in range(m):
            total = out.dtype.type(0)
            for p in range(k):
                total += a[i, p] * b[p, j]
            out[i, j] = total
    ### END SOLUTION
    return out

# %% [markdown]
# ### Blocking
#
# In C, the triple loop is slow for a second reason: for each `C[i, j]` it walks a whole
# column of B, and for large matrices those columns no longer fit in the processor's
# cache, so every multiply waits for memory. **Cache blocking** cuts the matrices into
# tiles that fit (say 64×64) and multiplies tile by tile: each tile loaded is then used 64
# times before it leaves the cache.
#
# ```
# C[I, J] += A[I, P] @ B[P, J]   for every block row I, block column J, block P
# ```
#
# Be honest about what this buys in NumPy: each tile product is **one BLAS call**, and
# BLAS already blocks internally (OpenBLAS packs panels sized for the L1 and L2 caches),
# so `matmul_blocked` is at best as fast as one `np.matmul`, and slower for small tiles
# because each call costs Python time. Its value here is to show the structure a fast GEMM
# has inside; its speed is the C library's.

# %%
#| export
def matmul_blocked(a, b, block=64):
    """a @ b computed tile by tile: out[I, J] += a[I, P] @ b[P, J] over blocks of `block`
    rows and columns (the last block of each axis may be smaller)."""
    _check_matmul(a, b)
    if int(block) < 1:
        raise ValueError(f"matmul_blocked needs block >= 1, got {block}")
    block = int(block)
    n, k = a.shape
    m = b.shape[1]
    out = np.zeros((n, m), dtype=np.result_type(a, b))
    # TODO: loop over the starts i, j, p of the blocks (range(0, size, block)) and add the
    #       product of a's tile [i:i+block, p:p+block] and b's tile [p:p+block, j:j+block]
    #       to out's tile [i:i+block, j:j+block]. Slices past the end stop at the end.
    ### BEGIN SOLUTION
    for i in range(0, n, block):
        for j in range(0, m, block):
            for p in range(0, k, block):
                out[i:i + block, j:j + block] += (a[i:i + block, p:p + block]
                                                  @ b[p:p + block, j:j + block])
    ### END SOLUTION
    return out

# %% [markdown]
# ### Test it: the matmuls

# %%
#| test: matmuls (2 points)
def test_matmuls():
    a = np.arange(6.0).reshape(2, 3)
    b = np.arange(12.0).reshape(3, 4)
    got = matmul_loops(a, b)
    assert got.shape == (2, 4) and np.allclose(got, a @ b), (
        f"matmul_loops of (2, 3) and (3, 4): expected {(a @ b).tolist()}, got "
        f"{got.tolist()}. out[i, j] is the sum over p of a[i, p] * b[p, j].")
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((8, 6)), rng.standard_normal((6, 4))
    for block in (2, 3, 8):
        got = matmul_blocked(a, b, block)
        assert np.allclose(got, a @ b), (
            f"matmul_blocked(block={block}) of (8, 6) and (6, 4) differs from a @ b by "
            f"{np.abs(got - a @ b).max():.2e}: add every product of a block row of a "
            "and a block column of b into out's tile.")
    a32 = a.astype(np.float32)
    assert matmul_loops(a32, b.astype(np.float32)).dtype == np.float32, (
        "float32 inputs give a float32 product: no float64 on the way")

test_matmuls()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_close, assert_raises

_r = np.random.default_rng(1)
# sizes that blocks do not divide, a block larger than the matrix, vectors as matrices
for _n, _k, _m, _block in [(7, 5, 3, 2), (10, 9, 11, 4), (3, 2, 5, 64), (1, 6, 1, 5)]:
    for _dtype in ("float32", "float64"):
        _a = _r.standard_normal((_n, _k)).astype(_dtype)
        _b = _r.standard_normal((_k, _m)).astype(_dtype)
        _want = _a.astype(np.float64) @ _b.astype(np.float64)
        _blocked = matmul_blocked(_a, _b, _block)
        for _name, _got in (("matmul_loops", matmul_loops(_a, _b)),
                            (f"matmul_blocked(block={_block})", _blocked)):
            _what = f"{_name} of ({_n}, {_k}) @ ({_k}, {_m}) {_dtype}"
            assert _got.dtype == _dtype, f"{_what} returned {_got.dtype}"
            assert_close(_got, _want, what=_what)
assert_raises(ValueError, matmul_loops, np.zeros((2, 3)), np.zeros((2, 3)))
assert_raises(ValueError, matmul_blocked, np.zeros((2, 3)), np.zeros((3, 2)), 0)
### END HIDDEN TESTS

# %% [markdown]
# How much each step buys, on 64×64 matrices (the loops do 262,144 multiply-adds):

# %%
_rng = np.random.default_rng(0)
_a = _rng.standard_normal((64, 64)).astype(np.float32)
_b = _rng.standard_normal((64, 64)).astype(np.float32)
_loops = median_ms(lambda: matmul_loops(_a, _b), repeats=1, warmup=0)
for _name, _fn in [("blocked, 16", lambda: matmul_blocked(_a, _b, 16)),
                   ("blocked, 64", lambda: matmul_blocked(_a, _b, 64)),
                   ("np.matmul", lambda: _a @ _b)]:
    _ms = median_ms(_fn, repeats=20)
    print(f"64x64 {_name:>12}: {_ms:8.3f} ms, {_loops / _ms:8,.0f}x the loops' speed")
print(f"64x64 {'loops':>12}: {_loops:8.1f} ms")
_a = _rng.standard_normal((512, 512)).astype(np.float32)
_b = _rng.standard_normal((512, 512)).astype(np.float32)
for _name, _fn in [("blocked, 64", lambda: matmul_blocked(_a, _b, 64)),
                   ("blocked, 256", lambda: matmul_blocked(_a, _b, 256)),
                   ("np.matmul", lambda: _a @ _b)]:
    _ms = median_ms(_fn)
    print(f"512x512 {_name:>12}: {_ms:7.2f} ms, {2 * 512**3 / _ms / 1e6:6.1f} GFLOP/s")

# %% [markdown]
# ## Convolution: the definition, in seven loops
#
# Module 09's `conv2d_naive` had four loops and let `np.sum` do the patch. Written out
# completely, a convolution is **seven** loops: image n, kernel o, output row i and column
# j, then input channel c and kernel offset (a, b):
#
# ```
# out[n, o, i, j] = bias[o] + Σ_c Σ_a Σ_b x_padded[n, c, i·S + a, j·S + b] · w[o, c, a, b]
# ```
#
# For one batch of 64 CIFAR images through a 32→32-channel 3×3 layer that is
# 64·32·32·32·32·9 ≈ 600 million Python iterations: at a microsecond each, ten minutes for
# one layer's forward pass.

# %%
#| export
def _check_conv(x, weight, stride, padding):
    if x.ndim != 4 or weight.ndim != 4 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"convolution expects x of shape (N, C_in, H, W) and weight of "
                         f"shape (C_out, C_in, K, K) with the same C_in; got {x.shape} "
                         f"and {weight.shape}")
    if int(stride) < 1 or int(padding) < 0:
        raise ValueError(f"convolution needs stride >= 1 and padding >= 0, got "
                         f"stride={stride}, padding={padding}")
    if (x.shape[2] + 2 * padding < weight.shape[2]
            or x.shape[3] + 2 * padding < weight.shape[3]):
        raise ValueError(f"a {weight.shape[2]}x{weight.shape[3]} kernel does not fit in "
                         f"an input of {x.shape[2]}x{x.shape[3]} pixels with padding "
                         f"{padding}")


def conv2d_definition(x, w, b=None, stride=1, padding=0):
    """A 2-D convolution by its definition, seven Python loops (NumPy arrays, NCHW).

    x: (N, C_in, H, W); w: (C_out, C_in, K, K); b: (C_out,) or None.
    Returns (N, C_out, H_out, W_out). Only for tiny inputs: it is the reference.
    """
    _check_conv(x, w, stride, padding)
    n_images, c_in, height, width = x.shape
    c_out, _, kh, kw = w.shape
    h_out = (height + 2 * padding - kh) // stride + 1
    w_out = (width + 2 * padding - kw) // stride + 1
    x_padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out = np.zeros((n_images, c_out, h_out, w_out), dtype=np.result_type(x, w))
    # TODO: seven loops: image n, kernel o, output row i, output column j; inside them
    #       start from bias[o] (0 without a bias) and add, for every input channel c
    #       and kernel offset (a, b), x_padded[n, c, i*stride + a, j*stride + b] times
    #       w[o, c, a, b].
    ### BEGIN SOLUTION
    for n in range(n_images):
        for o in range(c_out):
            for i in range(h_out):
                for j in range(w_out):
                    total = out.dtype.type(0) if b is None else out.dtype.type(b[o])
                    for c in range(c_in):
                        for a in range(kh):
                            for q in range(kw):
                                total += (x_padded[n, c, i * stride + a, j * stride + q]
                                          * w[o, c, a, q])
                    out[n, o, i, j] = total
    ### END SOLUTION
    return out

# %% [markdown]
# ### Test it: the definition

# %%
#| test: conv_definition (2 points)
def test_conv_definition():
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    w = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])
    got = conv2d_definition(x, w)
    assert got.shape == (1, 1, 2, 2) and np.allclose(got, -4), (
        f"conv2d_definition of 1..9 (3x3) with [[1, 0], [0, -1]]: expected all -4, got "
        f"{got[0, 0].tolist()} (module 09's worked example)")
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((2, 3, 3, 3)), \
        rng.standard_normal(2)
    for padding in (0, 1):
        got = conv2d_definition(x, w, b, 1, padding)
        want = conv2d_naive(x, w, b, 1, padding)
        assert got.shape == want.shape and np.allclose(got, want), (
            f"conv2d_definition(padding={padding}) differs from module 09's "
            f"conv2d_naive: shapes {got.shape} and {want.shape}. Add the bias once per "
            "output value, "
            "and every channel and offset's product.")

test_conv_definition()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_close

_r = np.random.default_rng(2)
# strides with padding (the window starts at i*stride in the padded input), tall and wide
# images, kernels of 1 to 4, one channel and several, with and without a bias
_DEFINITION_CASES = [((1, 2, 5, 7), 3, 3, 2, 1), ((2, 1, 6, 4), 2, 2, 3, 2),
                     ((1, 3, 4, 4), 2, 1, 2, 0), ((1, 2, 7, 5), 1, 4, 1, 2)]
for _shape, _c_out, _k, _s, _p in _DEFINITION_CASES:
    for _dtype in ("float32", "float64"):
        _x = _r.standard_normal(_shape).astype(_dtype)
        _w = _r.standard_normal((_c_out, _shape[1], _k, _k)).astype(_dtype)
        for _b in (None, _r.standard_normal(_c_out).astype(_dtype)):
            _what = (f"conv2d_definition(x {_shape} {_dtype}, {_c_out} kernels "
                     f"{_k}x{_k}, stride={_s}, padding={_p}, "
                     f"bias {'None' if _b is None else 'given'})")
            _got = conv2d_definition(_x, _w, _b, _s, _p)
            assert _got.dtype == _dtype, f"{_what} returned {_got.dtype}"
            assert_close(_got, conv2d_naive(_x.astype(np.float64), _w.astype(np.float64),
                                            None if _b is None else _b.astype(np.float64),
                                            _s, _p), what=_what)
### END HIDDEN TESTS

# %% [markdown]
# ## im2col: every patch a row, the convolution one GEMM
#
# Module 09's kernel-offset loop already does 9 matrix multiplies instead of millions of
# Python iterations. **im2col** ("image to columns") goes to one: copy every K×K patch of
# the (padded) input into one row of a matrix, all channels of the patch side by side.
# Then the convolution is one product of that patch matrix with the kernels as a matrix:
#
# ```
# patches (N·H_out·W_out, K·K·C_in) @ kernels (K·K·C_in, C_out) -> (N·H_out·W_out, C_out)
# ```
#
# Two choices make it fast in NumPy:
#
# - **channels last** (N, H, W, C) inside the kernel. A pixel's C channels are then
#   neighbours in memory, a patch's row of pixels is one contiguous run of K·C numbers,
#   and the GEMM's output (N, H_out, W_out, C_out) is already the layout the next layer
#   reads. Module 09's convolution already stored its output channels-last (a transposed
#   view), so `x.transpose(0, 2, 3, 1)` is free between our layers;
# - `numpy.lib.stride_tricks.sliding_window_view` makes every window a **view**: no index
#   arithmetic, no copy until the one reshape into the patch matrix.
#
# A worked example, one image of 3×3 pixels with 2 channels, K = 2, stride 1, no padding:
#
# ```
# channel 0:  1 2 3     channel 1: 10 20 30     x as (1, 3, 3, 2): pixel (0, 0) = [1, 10]
#             4 5 6                40 50 60
#             7 8 9                70 80 90
# patch at (0, 0), offsets (0,0) (0,1) (1,0) (1,1), channels last:
#     [1, 10,  2, 20,  4, 40,  5, 50]          one row of K·K·C = 8 numbers
# im2col(x, 2, 1, 0) has shape (1, 2, 2, 8): 4 patches of 8
# ```
#
# The kernels must be laid out in the same order, (K, K, C_in) per output channel:
# `w.transpose(2, 3, 1, 0).reshape(K·K·C_in, C_out)`.

# %%
#| export
def _pair(k):
    """A kernel size as (rows, columns): 3 -> (3, 3), (2, 3) -> (2, 3)."""
    return (int(k), int(k)) if np.ndim(k) == 0 else (int(k[0]), int(k[1]))


def im2col(x, k, stride=1, padding=0):
    """The patches of a channels-last batch, one row each.

    x: (N, H, W, C); k: the kernel size (an int, or (rows, columns)).
    Returns (N, H_out, W_out, K·K·C), contiguous, in x's dtype: the patch whose top-left
    corner is at (i·stride, j·stride) of the zero-padded x, ordered (row, column,
    channel).
    """
    kh, kw = _pair(k)
    n_images, height, width, channels = x.shape
    stride, padding = int(stride), int(padding)
    h_out = (height + 2 * padding - kh) // stride + 1
    w_out = (width + 2 * padding - kw) // stride + 1
    if h_out < 1 or w_out < 1:
        raise ValueError(f"im2col: a {kh}x{kw} kernel does not fit in {height}x{width} "
                         f"pixels with padding {padding}")
    # TODO: zero-pad x by `padding` pixels on every side of H and W (keep x's dtype; no
    #       copy when padding is 0), take every kh x kw window with sliding_window_view
    #       over axes (1, 2) -> (N, H', W', C, kh, kw), keep every stride-th window along
    #       both pixel axes, move C after the kernel axes and copy into the contiguous
    #       (N, H_out, W_out, kh*kw*C) matrix of patches.
    ### BEGIN SOLUTION
    if padding:
        padded = np.zeros((n_images, height + 2 * padding, width + 2 * padding, channels),
                          dtype=x.dtype)
        padded[:, padding:padding + height, padding:padding + width] = x
    else:
        padded = x
    windows = sliding_window_view(padded, (kh, kw), axis=(1, 2))  # N, H', W', C, kh, kw
    windows = windows[:, ::stride, ::stride]                      # N, Ho, Wo, C, kh, kw
    patches = np.ascontiguousarray(windows.transpose(0, 1, 2, 4, 5, 3))
    ### END SOLUTION
    return patches.reshape(n_images, h_out, w_out, kh * kw * channels)

# %% [markdown]
# ### Test it: im2col

# %%
#| test: im2col (2 points)
def test_im2col():
    grid = np.arange(1.0, 10.0).reshape(3, 3)
    x = np.stack([grid, 10 * grid], axis=-1)[None]                    # (1, 3, 3, 2)
    cols = im2col(x, 2, 1, 0)
    assert cols.shape == (1, 2, 2, 8), (
        f"im2col of (1, 3, 3, 2) with K=2: expected shape (1, 2, 2, 8), got {cols.shape}")
    assert cols[0, 0, 0].tolist() == [1, 10, 2, 20, 4, 40, 5, 50], (
        f"the first patch, ordered (row, column, channel): expected "
        f"[1, 10, 2, 20, 4, 40, 5, 50], got {cols[0, 0, 0].tolist()}")
    assert cols[0, 1, 1].tolist() == [5, 50, 6, 60, 8, 80, 9, 90], (
        f"the last patch: expected [5, 50, 6, 60, 8, 80, 9, 90], got "
        f"{cols[0, 1, 1].tolist()}")
    padded = im2col(x, 3, 1, 1)
    assert padded.shape == (1, 3, 3, 18) and padded[0, 0, 0, :2].tolist() == [0, 0], (
        f"with padding 1 the corner patch starts with the zeros of the border; got shape "
        f"{padded.shape} and first entries {padded[0, 0, 0, :4].tolist()}")

test_im2col()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_close

_r = np.random.default_rng(3)
for _shape, _k, _s, _p in [((2, 5, 7, 3), 3, 2, 1), ((1, 6, 4, 1), 2, 3, 0),
                           ((2, 4, 4, 2), 1, 1, 2), ((1, 7, 5, 2), (2, 3), 2, 1)]:
    for _dtype in ("float32", "float64"):
        _x = _r.standard_normal(_shape).astype(_dtype)
        _kh, _kw = (_k, _k) if np.ndim(_k) == 0 else _k
        _xp = np.pad(_x, ((0, 0), (_p, _p), (_p, _p), (0, 0)))
        _ho, _wo = (_xp.shape[1] - _kh) // _s + 1, (_xp.shape[2] - _kw) // _s + 1
        _want = np.zeros((_shape[0], _ho, _wo, _kh * _kw * _shape[3]))
        for _i in range(_ho):
            for _j in range(_wo):
                _patch = _xp[:, _i * _s:_i * _s + _kh, _j * _s:_j * _s + _kw, :]
                _want[:, _i, _j] = _patch.reshape(_shape[0], -1)
        _what = f"im2col(x {_shape} {_dtype}, k={_k}, stride={_s}, padding={_p})"
        _got = im2col(_x, _k, _s, _p)
        assert _got.dtype == _dtype, f"{_what} returned {_got.dtype}"
        assert_close(_got, _want, what=_what)
        assert _got.flags["C_CONTIGUOUS"], f"{_what} is not contiguous: copy it once"
### END HIDDEN TESTS

# %% [markdown]
# ## The convolution as a Tensor op, and its gradients as GEMMs
#
# Forward: `patches @ kernels`, plus the bias. Backward, with `g` the output gradient as
# rows (N·H_out·W_out, C_out), channels last:
#
# - **weight**: as for `Linear`, `patches.T @ g`: (K·K·C_in, C_out), reshaped back to
#   (C_out, C_in, K, K). Saving the patch matrix in the forward pass spares computing it
#   again (it costs memory: K·K times the input);
# - **bias**: `g` summed over its rows (as a product with a row of ones: BLAS reads the
#   matrix once, where `sum(axis=0)` walks it a row at a time);
# - **input**: the input gradient is itself a convolution: of the output gradient,
#   bordered by K−1 zeros, with the kernel **flipped** by 180° and its in/out channels
#   swapped. With stride S the output gradient first goes back on the grid of the pixels
#   its windows started from (S−1 zeros between neighbours). So it is im2col again and one
#   more GEMM: no `np.add.at`, no loop over pixels.
#
# ```
# 1-D, K = 3, stride 1:  out[i] = w0·x[i] + w1·x[i+1] + w2·x[i+2]
# dL/dx[r] = g[r]·w0 + g[r-1]·w1 + g[r-2]·w2 = (g with 2 zeros in front) convolved with
#            the kernel read backwards, [w2, w1, w0]
# ```
#
# The rule goes into module 07's table with `@register_gradient("conv2d_im2col")`, right
# above it, as module 09 did for `conv2d`.

# %%
#| export
def conv2d_im2col_input_grad(g, weight, input_shape, stride=1, padding=0):
    """dL/dx (N, C_in, H, W) of a convolution, from g = dL/d(out), (N, C_out, H_out,
    W_out): the output gradient on the input's grid, bordered by K-1 zeros, convolved
    (im2col and one GEMM) with the kernel flipped and its in/out channels swapped."""
    n_images, c_in, height, width = input_shape
    c_out, _, kh, kw = weight.shape
    h_out, w_out = g.shape[2], g.shape[3]
    # the padded input's grid, K-1 more zeros on every side: (N, Hp+kh-1, Wp+kw-1, C_out)
    grid = np.zeros((n_images, height + 2 * padding + kh - 1,
                     width + 2 * padding + kw - 1, c_out), dtype=g.dtype)
    # TODO: put g (channels last) on the grid: g[:, :, i, j] at row kh-1 + i*stride and
    #       column kw-1 + j*stride. Keep the rows and columns that reach the unpadded
    #       input: padding .. padding + height + kh - 2 (and the same for columns). Take
    #       their patches (im2col, stride 1, no padding), and multiply them by the kernel
    #       flipped in both pixel axes, laid out as (kh*kw*C_out, C_in).
    ### BEGIN SOLUTION
    grid[:, kh - 1:kh - 1 + stride * (h_out - 1) + 1:stride,
         kw - 1:kw - 1 + stride * (w_out - 1) + 1:stride] = g.transpose(0, 2, 3, 1)
    inside = grid[:, padding:padding + height + kh - 1, padding:padding + width + kw - 1]
    patches = im2col(inside, (kh, kw), 1, 0)                  # (N, H, W, kh*kw*C_out)
    flipped = weight[:, :, ::-1, ::-1].transpose(2, 3, 0, 1).reshape(-1, c_in)
    grad = patches.reshape(-1, patches.shape[-1]) @ flipped     # (N*H*W, C_in)
    ### END SOLUTION
    grad = grad.reshape(n_images, height, width, c_in)
    return grad.transpose(0, 3, 1, 2)                         # (N, C_in, H, W), a view


def _column_sums(rows):
    """rows (m, C) summed over its m rows: (C,). As one matrix-vector product with a row
    of ones, BLAS reads the matrix once, at full speed; rows.sum(axis=0) walks it row by
    row, C numbers at a time, and takes about three times as long here."""
    return np.ones(len(rows), dtype=rows.dtype) @ rows


@register_gradient("conv2d_im2col")
def conv2d_im2col_grad(g, x, weight, bias=None, *, stride, padding, patches):
    """The rule of "conv2d_im2col": (dL/dx, dL/dw[, dL/db]), each from one GEMM."""
    c_out, c_in, kh, kw = weight.shape
    g_rows = g.transpose(0, 2, 3, 1).reshape(-1, c_out)          # (N*Ho*Wo, C_out)
    # TODO: the weight's gradient: the patch rows (N*Ho*Wo, kh*kw*C_in), transposed, times
    #       g_rows, reshaped to (kh, kw, C_in, C_out) and put back in the order
    #       (C_out, C_in, kh, kw) as a contiguous array.
    ### BEGIN SOLUTION
    grad_w = patches.reshape(-1, patches.shape[-1]).T @ g_rows    # (kh*kw*C_in, C_out)
    grad_w = grad_w.reshape(kh, kw, c_in, c_out)
    grad_w = np.ascontiguousarray(grad_w.transpose(3, 2, 0, 1))    # (C_out, C_in, kh, kw)
    ### END SOLUTION
    grad_x = None                                                # no dL/dx for an image
    if x.requires_grad:
        grad_x = conv2d_im2col_input_grad(g, weight.data, x.shape, stride, padding)
    grads = (grad_x, grad_w)
    if bias is not None:
        grads += (_column_sums(g_rows),)
    return grads


def conv2d_im2col(x, weight, bias=None, stride=1, padding=0):
    """The 2-D convolution of Tensors by im2col and one GEMM: x (N, C_in, H, W), weight
    (C_out, C_in, K, K), bias (C_out,) or None -> (N, C_out, H_out, W_out), stored
    channels-last (a transposed view of a contiguous (N, H_out, W_out, C_out) array)."""
    stride, padding = int(stride), int(padding)
    _check_conv(x, weight, stride, padding)
    c_out, _, kh, kw = weight.shape
    parents = (x, weight) if bias is None else (x, weight, bias)
    # TODO: the patches of x channels-last (im2col of x.data transposed to (N, H, W, C)),
    #       times the kernels as a (kh*kw*C_in, C_out) matrix, plus the bias; shaped
    #       (N, H_out, W_out, C_out) and returned as (N, C_out, H_out, W_out) by a
    #       transpose. Record the op "conv2d_im2col" with stride, padding and the patches.
    ### BEGIN SOLUTION
    patches = im2col(x.data.transpose(0, 2, 3, 1), (kh, kw), stride, padding)
    kernels = weight.data.transpose(2, 3, 1, 0).reshape(-1, c_out)  # (kh*kw*C_in, C_out)
    out = patches.reshape(-1, patches.shape[-1]) @ kernels          # (N*Ho*Wo, C_out)
    if bias is not None:
        out += bias.data
    out = out.reshape(*patches.shape[:3], c_out)                    # (N, Ho, Wo, C_out)
    out = out.transpose(0, 3, 1, 2)                                 # (N, C_out, Ho, Wo)
    ### END SOLUTION
    return x._result(out, "conv2d_im2col", *parents, stride=stride, padding=padding,
                     patches=patches)

# %% [markdown]
# ### Test it: the fast convolution, forward and backward
#
# It must give module 09's values and gradients, for every stride and padding.

# %%
#| test: conv_im2col (3 points)
def test_conv_im2col():
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 3)), \
        rng.standard_normal(4)
    for padding in (0, 1):
        got = conv2d_im2col(Tensor(x, dtype=np.float64), Tensor(w, dtype=np.float64),
                            Tensor(b, dtype=np.float64), 1, padding)
        want = conv2d_forward(x, w, b, 1, padding)
        assert got.shape == want.shape and np.allclose(got.data, want), (
            f"conv2d_im2col(padding={padding}) differs from module 09's conv2d_forward: "
            f"shapes {got.shape} and {want.shape}. Lay the kernels out in the patches' "
            "order: (row, column, channel).")
    xt = Tensor(x, dtype=np.float64, requires_grad=True)
    wt = Tensor(w, dtype=np.float64, requires_grad=True)
    bt = Tensor(b, dtype=np.float64, requires_grad=True)
    g = rng.standard_normal((2, 4, 6, 5))
    (conv2d_im2col(xt, wt, bt, 1, 1) * Tensor(g, dtype=np.float64)).sum().backward()
    x9 = Tensor(x, dtype=np.float64, requires_grad=True)
    w9 = Tensor(w, dtype=np.float64, requires_grad=True)
    b9 = Tensor(b, dtype=np.float64, requires_grad=True)
    (conv2d(x9, w9, b9, 1, 1) * Tensor(g, dtype=np.float64)).sum().backward()
    for name, ours, theirs in (("x", xt, x9), ("weight", wt, w9), ("bias", bt, b9)):
        assert np.allclose(ours.grad.data, theirs.grad.data), (
            f"the gradient of {name} differs from module 09's conv2d (stride 1, "
            "padding 1)")
    assert gradcheck(lambda x, w, b: conv2d_im2col(x, w, b, stride=1, padding=1),
                     [x[:1, :2, :4, :3], w[:2, :2], b[:2]])

test_conv_im2col()
### BEGIN HIDDEN TESTS
from tinytorch.core.autograd import GRADIENTS
from tinytorch.testing import assert_dtype_kept, assert_untouched, check_graph

_r = np.random.default_rng(5)
# strides 2 and 3 (the output gradient spread back on its grid), paddings up to 2 with
# kernels of 1 (padding larger than K - 1), tall and wide images, rectangular kernels,
# leftover rows and columns that no window reaches
for _shape, _c_out, _k, _s, _p in [((2, 2, 7, 6), 3, 3, 2, 1), ((1, 3, 5, 8), 2, 2, 3, 2),
                                   ((2, 1, 4, 5), 2, 1, 1, 2), ((1, 2, 6, 7), 2, 5, 1, 2),
                                   ((1, 2, 6, 5), 3, (2, 3), 2, 0)]:
    _kh, _kw = (_k, _k) if np.ndim(_k) == 0 else _k
    _x, _w = _r.standard_normal(_shape), _r.standard_normal((_c_out, _shape[1], _kh, _kw))
    _b = _r.standard_normal(_c_out)
    _name = (f"conv2d_im2col(x {_shape}, {_c_out} kernels {_kh}x{_kw}, stride={_s}, "
             f"padding={_p})")
    check_graph(lambda x, w, b, s=_s, p=_p: conv2d_im2col(x, w, b, stride=s, padding=p),
                [_x, _w, _b], oracle_grads=None, name=_name)
    check_graph(lambda x, w, s=_s, p=_p: conv2d_im2col(x, w, None, stride=s, padding=p),
                [_x, _w], name=_name + " without a bias")


def conv2d_im2col_stride2(x, w):
    return conv2d_im2col(x, w, None, stride=2, padding=1)


assert_dtype_kept(conv2d_im2col_stride2, shapes=((2, 2, 5, 4), (3, 2, 3, 3)))
_y = conv2d_im2col(Tensor(_r.standard_normal((2, 2, 6, 5)), requires_grad=True),
                   Tensor(_r.standard_normal((3, 2, 3, 3)), requires_grad=True),
                   Tensor(_r.standard_normal(3), requires_grad=True), stride=2, padding=1)
assert_untouched(GRADIENTS["conv2d_im2col"],
                 np.linspace(-1.0, 1.0, _y.size).reshape(_y.shape).astype(np.float32),
                 *_y._parents, **_y._saved)
### END HIDDEN TESTS

# %% [markdown]
# Module 09's convolution against im2col, on the first layer of the cnn milestone's second
# convolution (8 digits, 16 → 32 channels, 14×14), and the seven loops on a smaller input
# (they would take minutes on this one):

# %%
_rng = np.random.default_rng(0)
_x = _rng.standard_normal((2, 4, 10, 10)).astype(np.float32)
_w = _rng.standard_normal((8, 4, 3, 3)).astype(np.float32)
_xt, _wt = Tensor(_x), Tensor(_w)
_seven = median_ms(lambda: conv2d_definition(_x, _w, None, 1, 1), repeats=1, warmup=0)
_four = median_ms(lambda: conv2d_naive(_x, _w, None, 1, 1), repeats=1, warmup=0)
_small = [("seven loops", _seven), ("module 09, four loops", _four),
          ("module 09, kernel offsets",
           median_ms(lambda: conv2d_forward(_x, _w, None, 1, 1))),
          ("im2col + one GEMM", median_ms(lambda: conv2d_im2col(_xt, _wt, None, 1, 1)))]
print("2 images, 4 -> 8 channels, 10x10, 3x3, padding 1:")
for _name, _ms in _small:
    print(f"  {_name:>26}: {_ms:9.3f} ms  {_seven / _ms:9,.0f}x the seven loops")
_x = _rng.standard_normal((8, 16, 14, 14)).astype(np.float32)
_w = _rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
_xt, _wt = Tensor(_x), Tensor(_w)
_offsets = median_ms(lambda: conv2d_forward(_x, _w, None, 1, 1), repeats=9)
_gemm = median_ms(lambda: conv2d_im2col(_xt, _wt, None, 1, 1), repeats=9)
print(f"8 images, 16 -> 32 channels, 14x14: kernel offsets {_offsets:.2f} ms, "
      f"im2col {_gemm:.2f} ms")

# %% [markdown]
# The big step is from Python loops to any vectorized form: hundreds of times. Between the
# kernel offsets and im2col the difference is small, and goes either way with the sizes:
# both end in BLAS, nine smaller GEMMs against one larger GEMM plus the copy of the
# patches (K·K times the input). What im2col buys is one mechanism for forward and both
# gradients, a layout that needs no copies between layers, and the recipe that GPU
# libraries and PyTorch's fallback path use. On the cifar10 network the benchmark found
# that changing the convolutions alone barely moves a training step at one BLAS thread:
# the step is also pooling and BatchNorm over the same large activations, and those come
# next. With all of this module, the step is about 1.5× faster than module 09's, at one
# BLAS thread and at two; PyTorch's is still a little faster (it takes 0.95× of your time
# at one thread, 0.85× at two) because its CPU convolution is not a GEMM at all but
# oneDNN's hand-tuned direct kernels: switched off, PyTorch's own im2col and GEMM take
# longer than your accelerated step (`benchmarks/results/acceleration.md` has the figures).

# %% [markdown]
# ## Fewer multiplications: Winograd's F(2×2, 3×3)
#
# im2col left the arithmetic as it was: 9 multiply-adds per input channel for every output
# value. For 3×3 kernels there is a way to need fewer. Take one row: two outputs of a
# 3-tap filter g from four inputs d, `y0 = d0·g0 + d1·g1 + d2·g2` and `y1 = d1·g0 + d2·g1 +
# d3·g2`, six multiplications. Winograd's minimal filtering computes them with four:
#
# ```
# m1 = (d0 − d2)·g0          m2 = (d1 + d2)·(g0 + g1 + g2)/2
# m4 = (d1 − d3)·g2          m3 = (d2 − d1)·(g0 − g1 + g2)/2
# y0 = m1 + m2 + m3          y1 = m2 − m3 − m4
# d = [1, 2, 3, 4], g = [1, 2, 3]:  m1 = -2, m2 = 15, m3 = 1, m4 = -6  ->  y0 = 14, y1 = 20
#                                    (directly: 1 + 4 + 9 = 14 and 2 + 6 + 12 = 20)
# ```
#
# The filter's combinations are computed once per kernel; the data's are sums and
# differences. In matrix form `y = Aᵀ·[(G·g) ⊙ (Bᵀ·d)]`, and in 2-D the same on rows and
# columns: a 2×2 block of outputs from a 4×4 tile of input,
# `Y = Aᵀ·[(G·w·Gᵀ) ⊙ (Bᵀ·d·B)]·A`, **16 multiplications instead of 36**. With channels,
# the ⊙ becomes at each of the 16 positions of the tile a sum over input channels: 16
# GEMMs of (tiles × C_in) @ (C_in × C_out), 2.25 times fewer multiply-adds than im2col's
# one GEMM. The transforms are passes over memory, so it pays where there are many
# channels for each pixel.
#
# **A chunk at a time.** The tiles are four times as large as the input. Made for a whole
# batch, they have left the cache before the GEMMs read them, and the products leave it
# again before the outputs are formed from them: every pass goes to main memory. So
# `winograd_conv_last` takes the batch a chunk of images at a time, about 2¹⁶ input numbers
# (256 KB of float32), whose tiles and products (1 MB each) are still in the processor's
# cache when the next pass reads them. It is the blocking of `matmul_blocked` again, for a
# chain of passes instead of one product; here it took forward and backward of the
# cifar10 network's 64 → 64 layer from about 125 to 87 ms.

# %%
#| export
_WINOGRAD_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])


def winograd_kernels(weight):
    """(C_out, C_in, 3, 3) kernels -> U (16, C_in, C_out): G·w·Gᵀ of every kernel, the
    16 positions first (row-major), in weight's dtype."""
    g = _WINOGRAD_G.astype(weight.dtype)
    u = np.einsum("ai,ocij,bj->abco", g, weight, g, optimize=True)
    return u.reshape(16, weight.shape[1], weight.shape[0])


def winograd_tiles(x):
    """x (N, H, W, C) channels-last, H and W even -> V (16, N·H/2·W/2, C): Bᵀ·d·B of
    every 4×4 tile d of x zero-padded by 1, the tiles 2 apart (one per 2×2 output)."""
    n_images, height, width, channels = x.shape
    th, tw = height // 2, width // 2
    padded = np.zeros((n_images, height + 2, width + 2, channels), dtype=x.dtype)
    padded[:, 1:-1, 1:-1] = x
    tiles = np.empty((4, 4, n_images, th, tw, channels), dtype=x.dtype)
    # TODO: B on the columns: with d0..d3 the views padded[:, :, q:q + 2*tw:2] (q = 0..3),
    #       e = [d0 - d2, d1 + d2, d2 - d1, d1 - d3]; then Bᵀ on the rows of each e[b]:
    #       with r0..r3 its views e[b][:, r:r + 2*th:2], write r0 - r2, r1 + r2, r2 - r1
    #       and r1 - r3 into tiles[0..3, b] (out=, no extra arrays). Columns first: the
    #       sixteen writes then run along whole rows of tw·C numbers, not C at a time.
    ### BEGIN SOLUTION
    d = [padded[:, :, q:q + 2 * tw:2] for q in range(4)]         # (N, H+2, tw, C) each
    e = [d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]]
    for b in range(4):
        r = [e[b][:, i:i + 2 * th:2] for i in range(4)]          # (N, th, tw, C) each
        np.subtract(r[0], r[2], out=tiles[0, b])
        np.add(r[1], r[2], out=tiles[1, b])
        np.subtract(r[2], r[1], out=tiles[2, b])
        np.subtract(r[1], r[3], out=tiles[3, b])
    ### END SOLUTION
    return tiles.reshape(16, -1, channels)


def winograd_outputs(m, out):
    """m (16, T, C_out), the products at the 16 positions of every tile -> written into
    out, a contiguous (N, H, W, C_out): Aᵀ·m·A per tile, Aᵀ = [[1, 1, 1, 0], [0, 1, -1,
    -1]]. Returns out."""
    n_images, height, width, c_out = out.shape
    m = m.reshape(4, 4, n_images, height // 2, width // 2, c_out)
    rows = (m[0] + m[1] + m[2], m[1] - m[2] - m[3])               # Aᵀ on the rows
    blocks = out.reshape(n_images, height // 2, 2, width // 2, 2, c_out)   # a view
    for i, row in enumerate(rows):                               # A on the columns
        np.add(row[0] + row[1], row[2], out=blocks[:, :, i, :, 0])
        np.subtract(row[1] - row[2], row[3], out=blocks[:, :, i, :, 1])
    return out


def _winograd_outputs_grad(g):
    """The adjoint of winograd_outputs: dL/dm (16, T, C_out) from dL/dy (N, H, W, C_out),
    A·dY·Aᵀ per 2×2 block (A's rows: [1, 0], [1, 1], [1, -1], [0, -1])."""
    n_images, height, width, c_out = g.shape
    blocks = g.reshape(n_images, height // 2, 2, width // 2, 2, c_out)
    top, bottom = blocks[:, :, 0], blocks[:, :, 1]               # (N, th, tw, 2, C_out)
    dm = np.empty((4, 4, n_images, height // 2, width // 2, c_out), dtype=g.dtype)
    for a, row in enumerate((top, top + bottom, top - bottom, -bottom)):
        left, right = row[..., 0, :], row[..., 1, :]
        dm[a, 0], dm[a, 1], dm[a, 2], dm[a, 3] = left, left + right, left - right, -right
    return dm.reshape(16, -1, c_out)


# Images per chunk: about 2^16 numbers of the input (256 KB in float32) for the larger of
# C_in and C_out, so that a chunk's tiles and products (4 times as many) stay in the
# processor's cache between the passes that make and use them.
WINOGRAD_CHUNK = 1 << 16


def _image_chunks(shape, channels):
    """Slices of the images of a (N, H, W, ...) batch, a chunk of about WINOGRAD_CHUNK
    numbers each when every pixel has `channels` numbers."""
    n_images, height, width = shape[:3]
    per_chunk = max(1, WINOGRAD_CHUNK // (height * width * channels))
    return [slice(i, i + per_chunk) for i in range(0, n_images, per_chunk)]


def winograd_conv_last(x, kernels):
    """x (N, H, W, C_in) channels-last convolved, padding 1, with the kernels U = (16,
    C_in, C_out) of winograd_kernels: (N, H, W, C_out), and the tiles of every chunk of
    images (kept for the weight's gradient). A chunk at a time: its tiles are made,
    multiplied and turned into outputs while they are still in the cache."""
    c_in, c_out = kernels.shape[1:]
    y = np.empty((*x.shape[:3], c_out), dtype=x.dtype)
    tiles = []
    for chunk in _image_chunks(x.shape, max(c_in, c_out)):
        tiles.append(winograd_tiles(x[chunk]))
        m = np.matmul(tiles[-1], kernels)                 # 16 GEMMs: (16, T, C_out)
        winograd_outputs(m, y[chunk])
    return y, tiles


@register_gradient("conv2d_winograd")
def conv2d_winograd_grad(g, x, weight, bias=None, *, tiles):
    """The rule of "conv2d_winograd": the weight's gradient from the kept tiles (dU =
    tilesᵀ·dm at each position, summed over the chunks, dw = Gᵀ·dU·G), the input's as a
    convolution of g with the kernel flipped and its channels swapped (again by
    Winograd)."""
    c_out, c_in = weight.shape[:2]
    g_last = g.transpose(0, 2, 3, 1)                              # (N, H, W, C_out)
    du = np.zeros((16, c_in, c_out), dtype=g.dtype)
    for chunk, chunk_tiles in zip(_image_chunks(g_last.shape, max(c_in, c_out)), tiles):
        dm = _winograd_outputs_grad(g_last[chunk])                # (16, T, C_out)
        du += np.matmul(chunk_tiles.transpose(0, 2, 1), dm)
    gw = _WINOGRAD_G.astype(weight.dtype)
    grad_w = np.einsum("ai,abco,bj->ocij", gw, du.reshape(4, 4, c_in, c_out), gw,
                       optimize=True)
    grad_x = None
    if x.requires_grad:
        flipped = weight.data[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)   # C_in, C_out
        grad_x = winograd_conv_last(g_last, winograd_kernels(flipped))[0]
        grad_x = grad_x.transpose(0, 3, 1, 2)                   # (N, C_in, H, W), a view
    grads = (grad_x, grad_w)
    if bias is not None:
        grads += (_column_sums(g_last.reshape(-1, c_out)),)
    return grads


def conv2d_winograd(x, weight, bias=None):
    """The 3×3 convolution with stride 1 and padding 1 of x (N, C_in, H, W), H and W even,
    by Winograd's F(2×2, 3×3): (N, C_out, H, W), stored channels-last."""
    _check_conv(x, weight, 1, 1)
    if weight.shape[2:] != (3, 3) or x.shape[2] % 2 or x.shape[3] % 2:
        raise ValueError(f"conv2d_winograd needs 3x3 kernels and an even height and "
                         f"width, got kernels {weight.shape[2:]} and images "
                         f"{x.shape[2:]}: use conv2d_im2col")
    x_last = x.data.transpose(0, 2, 3, 1)                       # (N, H, W, C_in), a view
    out, tiles = winograd_conv_last(x_last, winograd_kernels(weight.data))
    if bias is not None:
        out += bias.data
    parents = (x, weight) if bias is None else (x, weight, bias)
    return x._result(out.transpose(0, 3, 1, 2), "conv2d_winograd", *parents, tiles=tiles)

# %% [markdown]
# ### Test it: Winograd against im2col

# %%
#| test: winograd (2 points)
def test_winograd():
    rng = np.random.default_rng(13)
    for dtype in (np.float64, np.float32):
        runs = []
        for conv in (conv2d_winograd, lambda x, w, b: conv2d_im2col(x, w, b, 1, 1)):
            x = Tensor(rng.standard_normal((2, 3, 6, 4)), dtype=dtype, requires_grad=True)
            w = Tensor(rng.standard_normal((5, 3, 3, 3)), dtype=dtype, requires_grad=True)
            b = Tensor(rng.standard_normal(5), dtype=dtype, requires_grad=True)
            out = conv(x, w, b)
            weights = np.linspace(-1, 1, out.size).reshape(out.shape)
            (out * Tensor(weights)).sum().backward()
            runs.append((out, x.grad, w.grad, b.grad))
            rng = np.random.default_rng(13)                  # the same values for both
        for name, got, want in zip(("y", "dL/dx", "dL/dw", "dL/db"), *runs):
            assert got.dtype == dtype and np.allclose(got.data, want.data, atol=1e-4), (
                f"{np.dtype(dtype).name}: {name} of conv2d_winograd differs from "
                f"conv2d_im2col's by {np.abs(got.data - want.data).max():.2e}")

test_winograd()
### BEGIN HIDDEN TESTS
from tinytorch.testing import (
    assert_close,
    assert_dtype_kept,
    assert_raises,
    assert_untouched,
    check_graph,
)

_r = np.random.default_rng(14)
# one image, one channel, a 2x2 image (one tile), tall and wide images, no bias
for _shape, _c_out, _bias in [((1, 1, 2, 2), 1, True), ((2, 3, 8, 2), 4, False),
                              ((1, 2, 4, 10), 3, True), ((3, 4, 6, 6), 2, True)]:
    _x, _w = _r.standard_normal(_shape), _r.standard_normal((_c_out, _shape[1], 3, 3))
    _b = _r.standard_normal(_c_out) if _bias else None
    _name = f"conv2d_winograd(x {_shape}, w {_w.shape}, bias {_bias})"
    _want = conv2d(Tensor(_x, dtype=np.float64), Tensor(_w, dtype=np.float64),
                   None if _b is None else Tensor(_b, dtype=np.float64), 1, 1)
    _got = conv2d_winograd(Tensor(_x, dtype=np.float64), Tensor(_w, dtype=np.float64),
                           None if _b is None else Tensor(_b, dtype=np.float64))
    assert_close(_got, _want.data, what=_name + " against module 09's conv2d")
    _inputs = [_x, _w] if _b is None else [_x, _w, _b]
    check_graph(lambda *t: conv2d_winograd(*t), _inputs, name=_name)
# float32 stays float32, float64 stays float64 (values and all three gradients)
assert_dtype_kept(conv2d_winograd, shapes=((2, 3, 4, 6), (2, 3, 3, 3), (2,)))
# the input (stored channels-last too) and the weights are left as they were
_xc = Tensor(np.ascontiguousarray(_r.standard_normal((2, 4, 6, 3))).transpose(0, 3, 1, 2))
assert_untouched(conv2d_winograd, _xc, Tensor(_r.standard_normal((2, 3, 3, 3))))
assert_raises(ValueError, conv2d_winograd, Tensor(np.ones((1, 1, 3, 4))),
              Tensor(np.ones((1, 1, 3, 3))), match="even height and width")
assert_raises(ValueError, conv2d_winograd, Tensor(np.ones((1, 1, 4, 4))),
              Tensor(np.ones((1, 1, 5, 5))), match="3x3 kernels")
### END HIDDEN TESTS

# %% [markdown]
# Forward and backward of the cifar10 network's last convolution (64 images, 64 → 64
# channels, 16×16) and of its first (3 → 32, 32×32), where the transforms cost more than
# they save; the two kernels take turns, so that both see the same machine. With one BLAS
# thread, as the milestones run (`OMP_NUM_THREADS=1` before starting Jupyter), Winograd in
# chunks took about 83 ms on the 64-channel layer here and im2col 117, or 235 in a process
# whose OpenBLAS had not yet run a product with a wide right-hand matrix: until then it
# runs im2col's weight gradient, a tall matrix transposed, at half speed (a quirk of this
# machine's BLAS; a training step runs both kinds). With two threads: 68 against 79 ms,
# im2col's one large GEMM keeping both cores busier than 16 small ones. This machine is
# noisy: module 19 measures such things properly. On the cifar10 training step, Winograd
# for every layer from 32 channels on took your accelerated step from 1.16× to 1.06×
# PyTorch's time at one thread:

# %%
def _conv_step(conv, x, w, g):
    def step():
        out = conv(Tensor(x, requires_grad=True), Tensor(w, requires_grad=True))
        out.backward(g)
    return step


for _c_in, _c_out, _size in [(64, 64, 16), (3, 32, 32)]:
    _x = _rng.standard_normal((64, _c_in, _size, _size)).astype(np.float32)
    _w = _rng.standard_normal((_c_out, _c_in, 3, 3)).astype(np.float32)
    _g = _rng.standard_normal((64, _c_out, _size, _size)).astype(np.float32)
    _steps = [_conv_step(lambda x, w: conv2d_im2col(x, w, None, 1, 1), _x, _w, _g),
              _conv_step(conv2d_winograd, _x, _w, _g)]
    _ms = [[], []]
    for _round in range(4):                                  # the first round warms up
        for _i, _step in enumerate(_steps):
            _start = time.perf_counter()
            _step()
            if _round:
                _ms[_i].append(1000 * (time.perf_counter() - _start))
    print(f"{_c_in:>2} -> {_c_out} channels, {_size}x{_size}: im2col "
          f"{np.median(_ms[0]):.1f} ms, Winograd {np.median(_ms[1]):.1f} ms")

# %% [markdown]
# ## Pooling by strided slices, in one layout
#
# Module 09's `max_pool2d` already takes the maximum of K·K strided slices, and its
# forward pass is fast. Its backward is not (measured on the cifar10 network's first
# pooling: about four to six times its forward), for a reason that has nothing to do with
# loops: the incoming gradient is stored NCHW, the gradient it builds channels-last (like
# the input), and every operation between arrays of different memory orders walks one of
# them with large strides. The fix is to do everything **channels last**: the input and
# the output as transposed views (free), the gradient built as (N, H, W, C), and one
# transpose back at the end.
#
# The rule itself: for each offset in row-major order, the windows whose maximum sits at
# that offset and that are still `free` (no earlier offset held the same maximum) receive
# `g` there. Ties are common (after a ReLU, a window of zeros), and PyTorch gives the
# gradient to the first maximum only: so does this.
#
# ```
# window [[0, 0], [0, 0]], g = 1: offset (0, 0) wins, takes 1, and the window is no longer
# free; offsets (0, 1), (1, 0), (1, 1) equal the maximum too, but receive 0
# ```

# %%
#| export
def _pool_grid(x, kernel_size, stride):
    """(H_out, W_out) of K x K pooling windows over x (N, C, H, W)."""
    if x.ndim != 4:
        raise ValueError(f"pooling expects (N, C, H, W), got shape {x.shape}")
    if int(kernel_size) < 1 or int(stride) < 1:
        raise ValueError(f"pooling needs kernel_size >= 1 and stride >= 1, got "
                         f"{kernel_size} and {stride}")
    h_out = (x.shape[2] - kernel_size) // stride + 1
    w_out = (x.shape[3] - kernel_size) // stride + 1
    if h_out < 1 or w_out < 1:
        raise ValueError(f"a {kernel_size}x{kernel_size} pooling window does not fit in "
                         f"{x.shape[2]}x{x.shape[3]}")
    return h_out, w_out


def _window_offset(array, a, b, stride, h_out, w_out):
    """Offset (a, b) of every window of a channels-last (N, H, W, C) array: a view."""
    return array[:, a:a + stride * (h_out - 1) + 1:stride,
                 b:b + stride * (w_out - 1) + 1:stride]


@register_gradient("maxpool2d_fast")
def max_pool2d_fast_grad(g, x, kernel_size, stride, out):
    """Each window's gradient goes to its first maximum (row-major), all channels last."""
    n_images, channels, height, width = x.shape
    h_out, w_out = g.shape[2], g.shape[3]
    x_last = x.data.transpose(0, 2, 3, 1)                         # (N, H, W, C), views
    g_last, out_last = g.transpose(0, 2, 3, 1), out.transpose(0, 2, 3, 1)
    grad = np.zeros((n_images, height, width, channels), dtype=g.dtype)   # channels last
    free = np.ones(out_last.shape, dtype=bool)     # windows whose maximum is unclaimed
    # TODO: for every offset (a, b) in row-major order: the windows that won there are
    #       those where the offset's view of x_last equals out_last and that are still
    #       free; they are no longer free; add g_last times them to the offset's view of
    #       grad (add: overlapping windows, stride < K, share input pixels).
    ### BEGIN SOLUTION
    for a in range(kernel_size):
        for b in range(kernel_size):
            won = _window_offset(x_last, a, b, stride, h_out, w_out) == out_last
            won &= free
            free &= ~won
            _window_offset(grad, a, b, stride, h_out, w_out)[...] += g_last * won
    ### END SOLUTION
    return (grad.transpose(0, 3, 1, 2),)                          # (N, C, H, W), a view


def max_pool2d_fast(x, kernel_size=2, stride=None):
    """The maximum of each K x K window (stride defaults to K), channels last inside:
    (N, C, H, W) -> (N, C, H_out, W_out), stored channels-last."""
    kernel_size = int(kernel_size)
    stride = kernel_size if stride is None else int(stride)
    h_out, w_out = _pool_grid(x, kernel_size, stride)
    x_last = x.data.transpose(0, 2, 3, 1)                         # (N, H, W, C), a view
    out = _window_offset(x_last, 0, 0, stride, h_out, w_out).copy()   # (N, Ho, Wo, C)
    # TODO: for every other offset (a, b), keep in `out` the larger of `out` and the
    #       offset's view of x_last (np.maximum with out=out: no new array).
    ### BEGIN SOLUTION
    for a in range(kernel_size):
        for b in range(kernel_size):
            np.maximum(out, _window_offset(x_last, a, b, stride, h_out, w_out), out=out)
    ### END SOLUTION
    out = out.transpose(0, 3, 1, 2)                               # (N, C, Ho, Wo), a view
    return x._result(out, "maxpool2d_fast", x, kernel_size=kernel_size, stride=stride,
                     out=out)

# %% [markdown]
# ### Test it: fast pooling

# %%
#| test: max_pool_fast (2 points)
def test_max_pool_fast():
    x = Tensor([[[[1.0, 3, 2, 0], [4, 2, 1, 1], [5, 8, 9, 3], [6, 5, 7, 1]]]],
               requires_grad=True)
    out = max_pool2d_fast(x, 2)
    assert np.allclose(out.data[0, 0], [[4, 2], [8, 9]]), (
        f"max pool 2x2 of the example: expected [[4, 2], [8, 9]], got "
        f"{out.data[0, 0].tolist()}")
    out.sum().backward()
    expected = [[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    assert np.allclose(x.grad.data[0, 0], expected), (
        f"each window's gradient goes to its maximum: expected {expected}, got "
        f"{x.grad.data[0, 0].tolist()}")
    rng = np.random.default_rng(6)
    v = rng.standard_normal((2, 3, 6, 5)).astype(np.float32)
    got, want = max_pool2d_fast(Tensor(v), 2), max_pool2d(Tensor(v), 2)
    assert got.dtype == np.float32 and np.array_equal(got.data, want.data), (
        f"max_pool2d_fast should equal module 09's max_pool2d (float32, 6x5 with a row "
        f"and a column left over): got shape {got.shape} {got.dtype}, expected "
        f"{want.shape}")

test_max_pool_fast()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_close, assert_dtype_kept, check_graph

_r = np.random.default_rng(7)
# overlapping windows (stride < K), gaps (stride > K), tall and wide images, ties in a
# window (only the first maximum, in row-major order, gets the gradient)
for _shape, _k, _s in [((1, 2, 7, 6), 3, 2), ((2, 3, 5, 8), 2, 2), ((1, 1, 6, 4), 3, 1),
                       ((2, 2, 4, 9), 2, 3)]:
    for _values in ("random", "ties"):
        _v = (_r.standard_normal(_shape) if _values == "random"
              else _r.integers(0, 2, _shape).astype(np.float64))
        _name = f"max_pool2d_fast(x {_shape} {_values}, {_k}, stride={_s})"
        _x9, _xf = Tensor(_v, dtype=np.float64, requires_grad=True), \
            Tensor(_v, dtype=np.float64, requires_grad=True)
        _g = _r.standard_normal(max_pool2d(_x9, _k, _s).shape)
        (max_pool2d(_x9, _k, _s) * Tensor(_g, dtype=np.float64)).sum().backward()
        _out = max_pool2d_fast(_xf, _k, _s)
        (_out * Tensor(_g, dtype=np.float64)).sum().backward()
        assert_close(_out, max_pool2d(Tensor(_v, dtype=np.float64), _k, _s).data,
                     what=_name + ": the values")
        assert_close(_xf.grad, _x9.grad.data, what=_name + ": dL/dx against module 09's")
    check_graph(lambda x, k=_k, s=_s: max_pool2d_fast(x, k, s),
                [_r.standard_normal(_shape)],
                name=f"max_pool2d_fast(x {_shape}, {_k}, {_s})")


def max_pool2d_fast_3x3_stride2(x):
    return max_pool2d_fast(x, 3, stride=2)


assert_dtype_kept(max_pool2d_fast_3x3_stride2, shapes=((2, 3, 7, 5),))
### END HIDDEN TESTS

# %% [markdown]
# ## BatchNorm in one operation
#
# Module 09 built `BatchNorm2d`'s training step out of Tensor operations: the mean, `x -
# mean`, its square, that mean, the normalizing op, `· γ` and `+ β`. Each one reads and
# writes an array as large as the convolution's output, and its backward rule does the
# same again: a dozen passes over memory per layer, for arithmetic that is a few additions
# per number. Memory, not arithmetic, sets the time, so the fast version is the one that
# touches each array the fewest times: one operation, whose backward is written by hand.
#
# **Layout.** A batch stored channels-last, as `conv2d_im2col` returns it, is a matrix of
# N·H·W rows and C columns, each channel a column. A channel's statistics are column sums
# of that matrix (`_column_sums`, as for the convolution's bias):
#
# ```
# x (N=1, C=2, H=1, W=3), channels last:   rows = [[1, 10],     mean = [2, 20]
#                                                  [2, 20],     var  = [2/3, 200/3]
#                                                  [3, 30]]     (biased: divide by m = 3)
# ```
#
# **Forward** (m = N·H·W values per channel, `s = 1/√(var + ε)`):
# `x̂ = (x − mean)·s`, `y = γ·x̂ + β`. **Backward**, from g = dL/dy: the shift and scale
# give `dβ = Σ g` and `dγ = Σ g·x̂` over each column, and the input's gradient is module
# 09's `batch_norm` rule with γ folded in — the paths through the mean and the variance are
# the two subtracted terms:
#
# ```
# dx = γ·s·(g − dβ/m − x̂·dγ/m)
# ```
#
# Sanity check: for the loss ½·Σ(y − β)², g = γ·x̂, so dβ = 0 and dγ = γ·m (x̂ has mean
# 0 and mean square 1, ε aside), and dx = γ·s·(γ·x̂ − γ·x̂) = 0. Right: x̂ has the same
# spread whatever x is, so that loss cannot change with x.

# %%
#| export
def _channel_rows(a):
    """(N, C, H, W) -> (N·H·W, C): a pixel per row, a channel per column; a view when a
    is stored channels-last (conv2d_im2col's output), one copy otherwise."""
    return a.transpose(0, 2, 3, 1).reshape(-1, a.shape[1])


def _from_channel_rows(rows, shape):
    """(N·H·W, C) rows back to an (N, C, H, W) array of `shape`, stored channels-last."""
    n_images, channels, height, width = shape
    return rows.reshape(n_images, height, width, channels).transpose(0, 3, 1, 2)


@register_gradient("batchnorm2d_fast")
def batch_norm2d_fast_grad(g, x, weight, bias, *, x_hat, inv_std):
    """The rule of "batchnorm2d_fast": (dL/dx, dL/dγ, dL/dβ), column sums of rows."""
    g_rows = _channel_rows(g)                                   # (m, C)
    m = g_rows.shape[0]
    # TODO: dβ: the _column_sums of g_rows; dγ: the column sums of g_rows · x_hat
    #       (np.einsum("ij,ij->j", ...) multiplies and sums without a temporary array);
    #       the rows of dx: γ · inv_std · (g_rows - dβ/m - x_hat · dγ/m). Every new
    #       (m, C) array is a pass over memory: update one array in place (*=, -=).
    ### BEGIN SOLUTION
    grad_b = _column_sums(g_rows)                               # (C,)
    grad_w = np.einsum("ij,ij->j", g_rows, x_hat)               # (C,)
    scale = weight.data * inv_std                               # γ·s, (C,)
    grad_rows = g_rows * scale
    grad_rows -= x_hat * (scale * grad_w / m)
    grad_rows -= scale * grad_b / m
    ### END SOLUTION
    return _from_channel_rows(grad_rows, x.shape), grad_w, grad_b


def batch_norm2d_fast(x, weight, bias, eps=1e-5):
    """BatchNorm of x (N, C, H, W) by its own batch's statistics, γ (weight) and β (bias)
    applied, as one Tensor op "batchnorm2d_fast". Returns (y, mean, var): y stored
    channels-last, mean and the biased variance (C,) arrays for the running statistics."""
    rows = _channel_rows(x.data)                                # (m, C)
    # TODO: mean: the _column_sums of rows over m; x_hat: rows minus mean (a new array),
    #       var: the mean of its squares per column (einsum, as in the rule above);
    #       inv_std = 1 / sqrt(var + eps); scale x_hat by it in place (*=); y_rows =
    #       x_hat · γ, then += β in place.
    ### BEGIN SOLUTION
    m = len(rows)
    mean = _column_sums(rows) / m                               # (C,)
    x_hat = rows - mean
    var = np.einsum("ij,ij->j", x_hat, x_hat) / m               # (C,), biased
    inv_std = 1 / np.sqrt(var + eps)
    x_hat *= inv_std
    y_rows = x_hat * weight.data
    y_rows += bias.data
    ### END SOLUTION
    y = x._result(_from_channel_rows(y_rows, x.shape), "batchnorm2d_fast", x, weight,
                  bias, x_hat=x_hat, inv_std=inv_std)
    return y, mean, var

# %% [markdown]
# ### Test it: BatchNorm in one operation
#
# Values, all three gradients and the statistics must be module 09's, for a batch stored
# channels-last (after a fast convolution) and for one that is not.

# %%
#| test: batch_norm_fast (2 points)
def test_batch_norm_fast():
    rows = np.array([[1.0, 10], [2, 20], [3, 30]])
    x = Tensor(rows.T.reshape(1, 2, 1, 3))                  # the worked example
    y, mean, var = batch_norm2d_fast(x, Tensor(np.ones(2)), Tensor(np.zeros(2)), eps=0)
    assert np.allclose(mean, [2, 20]) and np.allclose(var, [2 / 3, 200 / 3]), (
        f"the worked example: expected mean [2, 20] and var [0.667, 66.7], got "
        f"{mean.tolist()} and {var.tolist()}")
    assert np.allclose(y.data[0, 0, 0], [-1.2247, 0, 1.2247], atol=1e-4), (
        f"x_hat of channel 0 is (x - 2) / sqrt(2/3): expected [-1.2247, 0, 1.2247], got "
        f"{y.data[0, 0, 0].tolist()}")
    rng = np.random.default_rng(11)
    v = rng.standard_normal((4, 3, 5, 6)).astype(np.float32) * 2 + 1
    g = Tensor(rng.standard_normal(v.shape).astype(np.float32))
    for layout in ("channels-last", "NCHW"):
        data = np.ascontiguousarray(v.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2) \
            if layout == "channels-last" else v
        slow, fast = BatchNorm2d(3), BatchNorm2d(3)
        fast.weight.data[:] = slow.weight.data[:] = [0.5, 1.0, 2.0]
        fast.bias.data[:] = slow.bias.data[:] = [0.1, -0.2, 0.3]
        x9, xf = Tensor(data, requires_grad=True), Tensor(data, requires_grad=True)
        want = slow(x9)
        got, mean, var = batch_norm2d_fast(xf, fast.weight, fast.bias)
        assert got.dtype == np.float32 and np.allclose(got.data, want.data, atol=1e-5), (
            f"{layout}: y differs from module 09's BatchNorm2d by "
            f"{np.abs(got.data - want.data).max():.2e} (dtype {got.dtype})")
        (want * g).sum().backward()
        (got * g).sum().backward()
        for name, a, b in [("dL/dx", xf, x9), ("dL/dγ", fast.weight, slow.weight),
                           ("dL/dβ", fast.bias, slow.bias)]:
            assert np.allclose(a.grad.data, b.grad.data, atol=1e-4), (
                f"{layout}: {name} differs from module 09's by "
                f"{np.abs(a.grad.data - b.grad.data).max():.2e}")

test_batch_norm_fast()
### BEGIN HIDDEN TESTS
from tinytorch.core.layers import Parameter
from tinytorch.core.spatial import BatchNorm2d as _BN9
from tinytorch.testing import assert_close, check_graph

_r = np.random.default_rng(12)
# one image, one pixel per image (m = N), wide and tall maps, a constant channel (var 0)
for _shape in [(1, 2, 3, 4), (5, 3, 1, 1), (2, 4, 1, 7), (3, 1, 6, 2)]:
    _v = _r.standard_normal(_shape) * 3 - 1
    if _shape[1] > 1:
        _v[:, 0] = 0.5                                      # a constant channel: var 0
    _w, _b = _r.standard_normal(_shape[1]), _r.standard_normal(_shape[1])
    _g = _r.standard_normal(_shape)
    _slow, _fast = _BN9(_shape[1], eps=1e-3), _BN9(_shape[1], eps=1e-3)
    for _layer in (_slow, _fast):
        _layer.weight = Parameter(_w, dtype=np.float64)
        _layer.bias = Parameter(_b, dtype=np.float64)
    _x9 = Tensor(_v, dtype=np.float64, requires_grad=True)
    _xf = Tensor(_v, dtype=np.float64, requires_grad=True)
    _want = _slow(_x9)
    _got, _mean, _var = batch_norm2d_fast(_xf, _fast.weight, _fast.bias, eps=1e-3)
    _name = f"batch_norm2d_fast(x {_shape}, eps=1e-3)"
    assert_close(_got, _want.data, what=_name + ": y")
    assert_close(_mean, _v.mean(axis=(0, 2, 3)), what=_name + ": the mean")
    assert_close(_var, _v.var(axis=(0, 2, 3)), what=_name + ": the biased variance")
    (_want * Tensor(_g, dtype=np.float64)).sum().backward()
    (_got * Tensor(_g, dtype=np.float64)).sum().backward()
    assert_close(_xf.grad, _x9.grad.data, what=_name + ": dL/dx")
    assert_close(_fast.weight.grad, _slow.weight.grad.data, what=_name + ": dL/dγ")
    assert_close(_fast.bias.grad, _slow.bias.grad.data, what=_name + ": dL/dβ")
    check_graph(lambda x, w, b: batch_norm2d_fast(x, w, b, eps=1e-3)[0],
                [_v, _w, _b], name=_name)
_x = Tensor(_r.standard_normal((2, 4, 4, 3)).transpose(0, 3, 1, 2))    # channels last
_before = _x.data.copy()
batch_norm2d_fast(_x, Tensor(np.ones(3)), Tensor(np.zeros(3)))
assert np.array_equal(_x.data, _before), (
    "batch_norm2d_fast must not change its input (a channels-last input's rows are a "
    "view of it: subtract the mean into a new array)")
### END HIDDEN TESTS

# %% [markdown]
# The same batch through module 09's `BatchNorm2d` and through `batch_norm2d_fast`, forward
# and backward, the size of the cifar10 network's first layers (64 images, 32 channels of
# 32×32: 8 MB, more than the processor's caches hold), stored channels-last:

# %%
def _bn_step(fast):
    layer = BatchNorm2d(32)
    rng = np.random.default_rng(0)
    v, g = rng.standard_normal((2, 64, 32, 32, 32)).astype(np.float32).transpose(
        0, 1, 4, 2, 3)                                   # two (N, C, H, W), channels last

    def step():
        x = Tensor(v, requires_grad=True)
        y = batch_norm2d_fast(x, layer.weight, layer.bias)[0] if fast else layer(x)
        y.backward(g)
    return step


print("BatchNorm forward + backward: " + ", ".join(
    f"{name} {median_ms(_bn_step(fast), repeats=3):.1f} ms"
    for name, fast in [("module 09", False), ("one operation", True)]))

# %% [markdown]
# ## accelerate(model): the framework's convolution becomes the fast one
#
# A model built from module 09's layers should not have to be rebuilt to run fast: same
# object, same Parameters (an optimizer holding them keeps working), same `state_dict()`.
# Python lets an object carry its own `forward`: an attribute set on the instance is found
# before the class's method. `accelerate` walks the model (`children()`, recursively) and
# gives every `Conv2d` a `forward` that calls `conv2d_im2col` (or `conv2d_winograd` where
# the demo above showed it pays: 3×3, stride 1, padding 1, even sizes, from 32 channels),
# every `MaxPool2d` one that
# calls `max_pool2d_fast` (not `AvgPool2d`, which is a subclass of `MaxPool2d`, nor any
# other subclass: their `forward` is their own) and every `BatchNorm2d` one that trains
# with `batch_norm2d_fast` (in evaluation it uses the running statistics, as before).
# Calling it twice changes nothing more.
#
# ```python
# model = accelerate(build_model())   # the same object, now computing with im2col
# ```

# %%
#| export
# Winograd's transforms cost passes over memory that grow with C_in + C_out, its saving
# grows with C_in · C_out: on the cifar10 network it paid from 32 -> 32 channels on
# (measured at one BLAS thread on its training step) and lost on 3 -> 32.
WINOGRAD_MIN_CHANNELS = 32 * 32


def winograd_pays(conv, height, width):
    """Whether Conv2d `conv` is computed by Winograd on images of height x width: 3x3,
    stride 1, padding 1, even sizes, C_in · C_out >= WINOGRAD_MIN_CHANNELS."""
    return (conv.kernel_size == 3 and conv.stride == 1 and conv.padding == 1
            and height % 2 == 0 and width % 2 == 0
            and conv.in_channels * conv.out_channels >= WINOGRAD_MIN_CHANNELS)


def _fast_conv2d_forward(self, x):
    """Conv2d.forward by Winograd where it pays (winograd_pays), else by im2col (set on
    the instance by accelerate)."""
    x = x if isinstance(x, Tensor) else Tensor(x)
    if x.ndim != 4 or x.shape[1] != self.in_channels:
        raise ValueError(f"{self!r} expects inputs of shape "
                         f"(N, {self.in_channels}, H, W), got {x.shape}")
    if winograd_pays(self, x.shape[2], x.shape[3]):
        return conv2d_winograd(x, self.weight, self.bias)
    return conv2d_im2col(x, self.weight, self.bias, self.stride, self.padding)


def _fast_max_pool2d_forward(self, x):
    """MaxPool2d.forward by max_pool2d_fast (set on the instance by accelerate)."""
    x = x if isinstance(x, Tensor) else Tensor(x)
    return max_pool2d_fast(x, self.kernel_size, self.stride)


def _fast_batch_norm2d_forward(self, x):
    """BatchNorm2d.forward by batch_norm2d_fast in training, the class's own in
    evaluation (set on the instance by accelerate); the running statistics as module
    09 keeps them."""
    x = x if isinstance(x, Tensor) else Tensor(x)
    if not self.training:
        return BatchNorm2d.forward(self, x)
    if x.ndim != 4 or x.shape[1] != self.num_features:
        raise ValueError(f"{self!r} expects inputs of shape "
                         f"(N, {self.num_features}, H, W), got {x.shape}")
    y, mean, var = batch_norm2d_fast(x, self.weight, self.bias, self.eps)
    count = x.size // self.num_features
    m = self.momentum
    new_mean = (1 - m) * self.running_mean + m * mean
    new_var = (1 - m) * self.running_var + m * var * count / max(count - 1, 1)
    self.running_mean = new_mean.astype(self.running_mean.dtype)
    self.running_var = new_var.astype(self.running_var.dtype)
    return y


_FAST_FORWARD = {Conv2d: _fast_conv2d_forward, MaxPool2d: _fast_max_pool2d_forward,
                 BatchNorm2d: _fast_batch_norm2d_forward}


def _layers(module):
    """module and every module inside it, depth first."""
    yield module
    for child in module.children():
        yield from _layers(child)


def is_accelerated(layer):
    """Whether accelerate() gave `layer` its fast forward."""
    fast = _FAST_FORWARD.get(type(layer))
    forward = layer.__dict__.get("forward")
    return fast is not None and getattr(forward, "__func__", None) is fast


def accelerate(model):
    """The same `model`, each module-09 Conv2d, MaxPool2d and BatchNorm2d in it computing
    with conv2d_im2col, max_pool2d_fast and batch_norm2d_fast: same Parameters, nothing
    copied. Idempotent."""
    # TODO: for every layer in _layers(model) whose type (exactly) is a key of
    #       _FAST_FORWARD, set layer.forward to that function bound to the layer
    #       (types.MethodType, or the function's __get__(layer)). Return the model.
    ### BEGIN SOLUTION
    for layer in _layers(model):
        fast = _FAST_FORWARD.get(type(layer))
        if fast is not None:
            layer.forward = fast.__get__(layer)
    ### END SOLUTION
    return model

# %% [markdown]
# ### Test it: accelerate

# %%
#| test: accelerate (2 points)
def test_accelerate():
    manual_seed(0)
    model = Sequential(Conv2d(1, 4, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(),
                       Linear(64, 2))
    x = Tensor(np.random.default_rng(8).standard_normal((3, 1, 8, 8)))
    before = model(x).data
    params = model.parameters()
    same = accelerate(model)
    assert same is model, "accelerate returns the model it was given, not a copy"
    assert all(p is q for p, q in zip(params, model.parameters())), (
        "accelerate keeps every Parameter object: an optimizer holding them goes on "
        "working")
    out = model(x)
    assert np.allclose(out.data, before, atol=1e-5), (
        f"the accelerated model's output differs from the original's by "
        f"{np.abs(out.data - before).max():.2e}")
    assert model.layers[0](x)._op == "conv2d_im2col", (
        "after accelerate, Conv2d must compute with conv2d_im2col (its output records "
        "the op 'conv2d_im2col')")
    accelerate(model)
    assert np.allclose(model(x).data, before, atol=1e-5), "accelerate twice: the same"

test_accelerate()
### BEGIN HIDDEN TESTS
from tinytorch.core.spatial import AvgPool2d
from tinytorch.testing import assert_close

manual_seed(1)
_inner = Sequential(Conv2d(2, 3, 3, stride=2, padding=1), BatchNorm2d(3), ReLU(),
                    MaxPool2d(2, stride=1))
_model = Sequential(_inner, AvgPool2d(2), Flatten())
accelerate(_model)
accelerate(_model)
assert all(is_accelerated(_inner.layers[i]) for i in (0, 1, 3)), (
    "accelerate must reach the layers of a Sequential inside a Sequential (walk "
    "children())")
_avg = _model.layers[1]
assert not is_accelerated(_avg) and "forward" not in _avg.__dict__, (
    "AvgPool2d is a subclass of MaxPool2d but averages: accelerate must leave it alone "
    "(match the type exactly)")
assert [n for n, _ in _model.named_parameters()] == ["0.0.weight", "0.0.bias",
                                                    "0.1.weight", "0.1.bias"], (
    "accelerate must not add or rename parameters")
_x = np.random.default_rng(9).standard_normal((2, 2, 9, 7))
_y = _model(Tensor(_x, dtype=np.float64))
manual_seed(1)
_plain = Sequential(Sequential(Conv2d(2, 3, 3, stride=2, padding=1), BatchNorm2d(3),
                               ReLU(), MaxPool2d(2, stride=1)), AvgPool2d(2), Flatten())
assert np.allclose(_y.data, _plain(Tensor(_x, dtype=np.float64)).data, atol=1e-10), (
    "the accelerated nested model (stride 2, BatchNorm, overlapping pooling) must "
    "compute what the original computes")
_bn, _bn9 = _inner.layers[1], _plain.layers[0].layers[1]
for _buffer in ("running_mean", "running_var"):
    assert_close(getattr(_bn, _buffer), getattr(_bn9, _buffer),
                 what=f"the accelerated BatchNorm2d's {_buffer} after one batch")
    assert getattr(_bn, _buffer).dtype == np.float32, f"{_buffer} stays float32"
_model.eval()
_plain.eval()
assert np.allclose(_model(Tensor(_x)).data, _plain(Tensor(_x)).data, atol=1e-5), (
    "in evaluation the accelerated BatchNorm2d must use its running statistics")
### END HIDDEN TESTS

# %% [markdown]
# ## Does it train the same?
#
# The strongest check of all: a few SGD steps of a small CNN, once with module 09's
# kernels and once accelerated, from the same weights on the same batch. Every loss and
# every weight agree (to float32's rounding: the sums run in a different order).

# %%
#| test: trains_the_same (2 points)
def test_trains_the_same():
    rng = np.random.default_rng(10)
    x = Tensor(rng.standard_normal((16, 1, 12, 12)))
    y = Tensor(rng.integers(0, 3, 16), dtype=np.int64)
    runs = []
    for fast in (False, True):
        manual_seed(2)
        model = Sequential(Conv2d(1, 6, 3, padding=1), BatchNorm2d(6), ReLU(),
                           MaxPool2d(2), Conv2d(6, 8, 3, padding=1), ReLU(), Flatten(),
                           Linear(288, 3))
        if fast:
            accelerate(model)
        optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9)
        losses = []
        for _ in range(5):
            loss = CrossEntropyLoss()(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        runs.append((losses, [p.data.copy() for p in model.parameters()]))
    (slow_losses, slow_params), (fast_losses, fast_params) = runs
    assert np.allclose(slow_losses, fast_losses, rtol=1e-4), (
        f"5 SGD steps: module 09's losses {np.round(slow_losses, 5).tolist()}, "
        f"accelerated {np.round(fast_losses, 5).tolist()}. Check the gradients of "
        "conv2d_im2col and batch_norm2d_fast.")
    for slow, fast in zip(slow_params, fast_params):
        assert fast.dtype == np.float32 and np.allclose(slow, fast, atol=1e-4), (
            f"after 5 steps a parameter differs by {np.abs(slow - fast).max():.2e} "
            f"(dtype {fast.dtype})")

test_trains_the_same()

# %% [markdown]
# One training step of the `cnn` milestone's network on 32 digits, module 09's layers
# against the same network accelerated, the two steps taken in turn so that both see the
# same load (the benchmark does this for the cifar10 network, against PyTorch):

# %%
def _digits_step(fast):
    manual_seed(0)
    model = Sequential(Conv2d(1, 16, 3, padding=1), ReLU(), MaxPool2d(2),
                       Conv2d(16, 32, 3, padding=1), ReLU(), MaxPool2d(2),
                       Flatten(), Linear(32 * 7 * 7, 64), ReLU(), Linear(64, 10))
    if fast:
        accelerate(model)
    optimizer = SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = Tensor(np.random.default_rng(0).standard_normal((32, 1, 28, 28)))
    y = Tensor(np.arange(32) % 10, dtype=np.int64)

    def step():
        loss = CrossEntropyLoss()(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return step


_steps = {"module 09": _digits_step(False), "accelerated": _digits_step(True)}
_times = {name: [] for name in _steps}
for _round in range(6):                  # the first round warms up and is not counted
    for _name, _fn in _steps.items():
        _start = time.perf_counter()
        _fn()
        if _round:
            _times[_name].append(1000 * (time.perf_counter() - _start))
print("one step of 32 digits: " + ", ".join(
    f"{name} {np.median(ms):.1f} ms" for name, ms in _times.items()))

# %% [markdown]
# ## What you built, and what comes next
#
# Three ladders, measured: Python loops → vectorized NumPy → one BLAS call. Hundreds to
# thousands of times come from leaving Python; the last steps (kernel offsets against
# im2col, blocked against plain matmul) are small because BLAS already does the blocking,
# and they are where layout (channels last), copies and dtypes (float32, never a silent
# float64) decide, and so does the number of passes over memory (BatchNorm in one
# operation) and whether they find their data still in the cache (Winograd a chunk of
# images at a time). Beyond that, only doing less arithmetic helps: Winograd's 16
# products where im2col needs 36. `accelerate(model)` puts the fast kernels into any
# model of module 09's layers, and the `cnn` and `cifar10` milestones use it.
#
# Faster kernels do not change what generation does: module 14's `generate` recomputes the
# whole context for every new token. **Generation recomputes everything**, and module 16
# caches what it can.
