"""A custom capstone track: module 09's convolution against module 15's im2col on a CNN layer.

This file is the template of `tito milestone capstone -- --track custom --custom FILE`. Copy it,
keep the four names, and put your own workload behind them. The milestone imports the file,
times `baseline` and `optimized` with module 19's `measure` (a warm-up, then repeats), compares
them with `compare`, and asks `quality` how good each one's result is. It passes when

    compare(baseline, optimized) says "faster" and the low end of its 95% interval is >= 2
    (at least twice as fast, beyond the noise), and
    quality(optimized) >= quality(baseline) - QUALITY_TOLERANCE (the quality is kept).

The four names:

    baseline()          the unoptimized workload: a function of no arguments, called many times
    optimized()         the same work, made faster; it must compute the same thing
    quality(fn) -> float    how good fn's result is, higher is better (an accuracy, the share of
                        outputs that are right, minus a loss, ...); called once per function
    QUALITY_TOLERANCE   how much quality the optimized one may lose (0.0: none)

Optional: REPEATS (timed calls of each function, default 10) and DESCRIPTION (one line for the
report: what is compared, on what).

Here: the second convolution of the cnn milestone's CNN, Conv2d(16, 32, 3, padding=1), on a
batch of 4 feature maps of 14x14 (what its first layer makes of 4 digits). The baseline is
module 09's `conv2d_naive`, the definition of a convolution written as loops; the optimized one
is module 15's `conv2d_im2col`: every 3x3x16 patch copied into one row of a matrix, then one
matrix multiply. The quality is the share of the output values within 1e-4 of the same
convolution computed independently, in float64, by NumPy's `einsum` over sliding windows: a
faster kernel is only an optimization when it still computes the convolution.
"""

from __future__ import annotations

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.spatial import conv2d_naive
from tinytorch.core.tensor import Tensor
from tinytorch.perf.acceleration import conv2d_im2col

DESCRIPTION = "Conv2d(16, 32, 3, padding=1) on 4 maps of 14x14: module 09's loops vs module 15's im2col"
QUALITY_TOLERANCE = 0.0   # the convolution may not lose a single value
REPEATS = 10

_generator = np.random.default_rng(0)
X = _generator.random((4, 16, 14, 14), dtype=np.float32)                 # (N, C_in, H, W)
W = (_generator.standard_normal((32, 16, 3, 3)) / 12).astype(np.float32)  # (C_out, C_in, K, K)
B = np.zeros(32, dtype=np.float32)


def baseline() -> np.ndarray:
    """Module 09: the definition, loops over images, channels and positions."""
    return conv2d_naive(X, W, B, stride=1, padding=1)


def optimized() -> np.ndarray:
    """Module 15: im2col and one matrix multiply (no graph: nothing is trained here)."""
    with no_grad():
        return conv2d_im2col(Tensor(X), Tensor(W), Tensor(B), stride=1, padding=1).data


def _reference() -> np.ndarray:
    """The same convolution in float64, written a third way: every 3x3 window of the padded
    input (a strided view), contracted with the kernels by einsum."""
    padded = np.pad(X.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))  # (N, C_in, H, W, 3, 3)
    return np.einsum("nchwij,ocij->nohw", windows, W.astype(np.float64)) + B[None, :, None, None]


def quality(fn) -> float:
    """The share of fn()'s output values within 1e-4 of the float64 reference (1.0: all)."""
    out = np.asarray(fn())
    expected = _reference()
    if out.shape != expected.shape:
        return 0.0
    return float(np.mean(np.abs(out - expected) <= 1e-4))
