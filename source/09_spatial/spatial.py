# %% [markdown]
# # Module 09: Spatial — MLPs treat pixels independently
#
# The `mnist` milestone's MLP reads a 28×28 digit as 784 unrelated numbers. It reaches about
# 94% on the shipped test digits and then stops improving: more epochs only fit the
# training images better. Look at what it has to learn. Its first layer gives every pixel
# its own weight per hidden unit, so a stroke learned at the top-left teaches it nothing
# about the same stroke two pixels to the right, and shuffling the pixels (the same way in
# every image) would not change what it can learn at all: **MLPs treat pixels
# independently**.
#
# The fix is two ideas about images:
#
# - **locality**: what a pixel means depends on its neighbours, so look at small patches
#   (3×3) rather than the whole image at once;
# - **weight sharing**: a stroke is a stroke wherever it appears, so slide the *same* small
#   set of weights (a **kernel**) over every position.
#
# Sliding a kernel over an image is a **convolution**. This module builds `Conv2d`, the
# pooling layers that shrink an image (`MaxPool2d`, `AvgPool2d`), `Flatten` to hand the
# result to a `Linear`, and `BatchNorm2d`. Then the `cnn` milestone trains a CNN on the same
# digits with the same Trainer and beats the MLP by more than two points.
#
# ## Shapes: NCHW, as in PyTorch
#
# A batch of images is a 4-D Tensor `(N, C, H, W)`: N images, C channels (1 for grey
# digits, 3 for colour), H rows, W columns. A convolution's weight is
# `(C_out, C_in, K, K)`: C_out kernels, each covering all C_in input channels over a K×K
# patch. With stride S and zero padding P, the output has
#
# $$H_{out} = \left\lfloor \frac{H + 2P - K}{S} \right\rfloor + 1$$
#
# rows (the same for columns). A 28×28 digit with K=3, P=1, S=1 stays 28×28; with S=2 it
# becomes 14×14.

# %%
import time

import numpy as np

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import GRADIENTS, gradcheck
from tinytorch.core.layers import Linear, Sequential, manual_seed
from tinytorch.core.tensor import Tensor

np.set_printoptions(precision=4, suppress=True)      # compact arrays in this notebook

# %% [markdown]
# ## The definition, in loops
#
# Output pixel `(n, o, i, j)` is the bias of kernel `o` plus the sum, over every input
# channel `c` and kernel offset `(a, b)`, of
# `x_padded[n, c, i·S + a, j·S + b] · w[o, c, a, b]`. A worked example with one channel, no
# padding, stride 1:
#
# ```
# x = 1 2 3      w = 1 0      out[0, 0] = 1·1 + 2·0 + 4·0 + 5·(-1) = -4
#     4 5 6          0 -1     out[0, 1] = 2 - 6 = -4,  out[1, 0] = 4 - 8 = -4, ...
#     7 8 9
# ```
#
# (Deep-learning "convolution" does not flip the kernel: mathematicians call this a
# cross-correlation. PyTorch does the same.)
#
# Your package file starts here: the cells marked `#| export` become
# `tinytorch/core/spatial.py`. It uses module 02's Tensor, module 04's Module and Parameter
# (and its seeded generator, `default_generator()`, for the initial weights) and module 07's
# `register_gradient`, which puts the rules of this module's new operations into the one
# `GRADIENTS` table.

# %%
#| export
import numpy as np

from tinytorch.core.autograd import register_gradient
from tinytorch.core.layers import Module, Parameter, default_generator
from tinytorch.core.tensor import Tensor


def _check_conv_args(x, weight, stride, padding):
    if x.ndim != 4 or weight.ndim != 4 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"conv2d expects x of shape (N, C_in, H, W) and weight of shape "
                         f"(C_out, C_in, K, K) with the same C_in; got {x.shape} and "
                         f"{weight.shape}")
    if int(stride) < 1 or int(padding) < 0:
        raise ValueError(f"conv2d needs stride >= 1 and padding >= 0, got "
                         f"stride={stride}, padding={padding}")
    k = weight.shape[2]
    if x.shape[2] + 2 * padding < k or x.shape[3] + 2 * padding < weight.shape[3]:
        raise ValueError(f"conv2d: a {k}x{weight.shape[3]} kernel does not fit in an "
                         f"input of {x.shape[2]}x{x.shape[3]} pixels with padding "
                         f"{padding}")


def output_size(size, kernel_size, stride=1, padding=0):
    """How many positions a kernel takes along one axis: (size + 2P - K) // S + 1.

    >>> output_size(28, 3, stride=1, padding=1)
    28
    """
    return (size + 2 * padding - kernel_size) // stride + 1


def conv2d_naive(x, weight, bias=None, stride=1, padding=0):
    """The definition of a 2-D convolution, with loops: NumPy arrays in, an array out.

    x: (N, C_in, H, W); weight: (C_out, C_in, K, K); bias: (C_out,) or None.
    Returns (N, C_out, H_out, W_out). Slow: for checking on tiny inputs only.
    """
    _check_conv_args(x, weight, stride, padding)
    n_images, _, height, width = x.shape
    c_out, _, k, _ = weight.shape
    h_out = output_size(height, k, stride, padding)
    w_out = output_size(width, k, stride, padding)
    x_padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out = np.zeros((n_images, c_out, h_out, w_out), dtype=np.result_type(x, weight))
    # TODO: for every image n, kernel o and output position (i, j), out[n, o, i, j] is
    #       the sum of x_padded's patch (all channels, K x K, top-left corner at
    #       (i*stride, j*stride)) times weight[o], plus bias[o] when there is a bias.
    ### BEGIN SOLUTION
    for n in range(n_images):
        for o in range(c_out):
            for i in range(h_out):
                for j in range(w_out):
                    top, left = i * stride, j * stride
                    patch = x_padded[n, :, top:top + k, left:left + k]
                    out[n, o, i, j] = np.sum(patch * weight[o])
                    if bias is not None:
                        out[n, o, i, j] += bias[o]
    ### END SOLUTION
    return out

# %% [markdown]
# ### Test it: the definition
#
# Each test cell checks the step just above it and says what it expected, what came, and a
# hint. The autograder adds more checks of the same topic (more shapes, strides and paddings), so make the rule right,
# not only the example.

# %%
#| test: conv_naive (2 points)
def test_conv_naive():
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    w = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])
    out = conv2d_naive(x, w)
    assert out.shape == (1, 1, 2, 2) and np.allclose(out, -4), (
        f"conv2d_naive of 1..9 (3x3) with [[1, 0], [0, -1]]: expected "
        f"[[-4, -4], [-4, -4]], got {out[0, 0].tolist()} (shape {out.shape}). "
        "out[i, j] = sum(patch * kernel) with the patch's top-left corner at (i, j).")
    out = conv2d_naive(x, w, bias=np.array([10.0]))
    assert np.allclose(out, 6), (
        f"with bias 10 every output should be 6, got {out[0, 0].tolist()}")
    out = conv2d_naive(x, w, padding=1)
    expected = [[-1, -2, -3, 0], [-4, -4, -4, 3], [-7, -4, -4, 6], [0, 7, 8, 9]]
    assert np.allclose(out[0, 0], expected), (
        f"with padding 1 (a border of zeros): expected {expected}, "
        f"got {out[0, 0].tolist()}")

test_conv_naive()
### BEGIN HIDDEN TESTS
_out = conv2d_naive(np.arange(1.0, 10.0).reshape(1, 1, 3, 3),
                    np.array([[[[1.0, 0.0], [0.0, -1.0]]]]), stride=2, padding=1)
assert np.allclose(_out[0, 0], [[-1, -3], [-7, -4]]), (
    f"with stride 2 and padding 1: expected [[-1, -3], [-7, -4]], got "
    f"{_out[0, 0].tolist()}. The patch of output (i, j) starts at (i*stride, j*stride) "
    "of the padded input.")
from tinytorch.testing import assert_close


def _conv_oracle(x, w, b, s, p):
    """The definition once more, from NumPy's sliding windows: an oracle of its own."""
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    windows = np.lib.stride_tricks.sliding_window_view(xp, w.shape[2:], axis=(2, 3))
    out = np.einsum("nchwab,ocab->nohw", windows[:, :, ::s, ::s], w)
    return out if b is None else out + b[None, :, None, None]


# (x shape, kernels, K, stride, padding): tall and wide images, one and several channels,
# strides that leave rows and columns over
_r = np.random.default_rng(5)
_CASES = [((2, 3, 5, 4), 2, 2, 1, 0), ((2, 3, 5, 4), 2, 2, 3, 2),
          ((1, 2, 4, 7), 3, 3, 2, 1), ((2, 1, 6, 3), 2, 1, 1, 0)]
for _shape, _c_out, _k, _s, _p in _CASES:
    _x, _w = _r.standard_normal(_shape), _r.standard_normal((_c_out, _shape[1], _k, _k))
    for _b in (_r.standard_normal(_c_out), None):
        assert_close(conv2d_naive(_x, _w, _b, stride=_s, padding=_p),
                     _conv_oracle(_x, _w, _b, _s, _p),
                     what=f"conv2d_naive(x {_shape}, {_c_out} kernels {_k}x{_k}, "
                          f"stride={_s}, padding={_p}, "
                          f"bias {'None' if _b is None else 'given'})")
### END HIDDEN TESTS

# %% [markdown]
# Check it on the worked example above:

# %%
x_small = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
w_small = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])
print(conv2d_naive(x_small, w_small)[0, 0])
print("padding 1:\n", conv2d_naive(x_small, w_small, padding=1)[0, 0])

# %% [markdown]
# ## Fast enough: loop over the kernel offsets only
#
# Four nested loops in Python run one multiply-add per iteration: for one batch of 64
# digits through a 16→32-channel layer that is 64·32·14·14 = 400,000 Python iterations.
# Turn the loops inside out: for a fixed kernel offset `(a, b)`, *every* output pixel reads
# the input pixel `(a, b)` further on, and multiplies it by the same matrix,
# `weight[:, :, a, b].T` of shape (C_in, C_out). That is one matrix multiply for all images
# and pixels at once, so a 3×3 convolution is **9 matrix multiplies**, vectorized over batch,
# channels and pixels.
#
# To make "the input pixel `(a, b)` further on" a plain slice, pad the batch and put the
# channels last: `(N, H+2P, W+2P, C)`. Each padded pixel is then a row of C numbers, and
# reshaped to `(N·Hp·Wp, C)` the batch is a matrix with one pixel per row, image after image,
# line after line. Going `a` lines down and `b` columns right is going `a·Wp + b` rows down
# this list:
#
# ```
# padded 4x4 image, pixel rows 0..15       output row p reads input rows p + shift:
#    0  1  2  3                             offset (0, 0): shift 0     (0, 1): shift 1
#    4  5  6  7                             offset (1, 0): shift 4     (1, 1): shift 5
#    8  9 10 11
#   12 13 14 15                             all outputs, offset (a, b): x_rows[shift:shift + M]
# ```
#
# So offset `(a, b)` adds `x_rows[shift:shift + M] @ weight[:, :, a, b].T`,
# `(M, C_in) @ (C_in, C_out)`, to the outputs: a view of the input, no copy. We compute one output row per padded pixel, the
# output whose window starts there. Those whose window hangs over the right or bottom edge
# read pixels of the next line (or image) and are thrown away at the end: about 13% more work
# for a 32×32 image with padding 1, and no index arithmetic at all. With stride S we keep
# every S-th line and column of that grid (S² times the work needed; module 15 does better).
#
# Two more things made this loop fast here, measured on a CIFAR-10 CNN: a few images at a
# time (`_image_chunks`, about 4,096 rows) so that the running sum stays in the processor's
# cache across the nine multiplies (about 1.5× faster than the whole batch at once), and the
# output kept channels-last in memory (a transposed view, as PyTorch's `channels_last`), so
# the next convolution pads it with one straight copy. Module 15 goes one step further: one
# big matrix multiply for all offsets at once (im2col), and measures both.

# %%
#| export
_CHUNK_ROWS = 4096       # pixel rows per chunk of images: the running sums stay cached


def _padded_rows(x, padding):
    """(N, C, H, W) -> (N, H + 2P, W + 2P, C): zero-padded, channels last, contiguous, so
    that reshaped to (N·Hp·Wp, C) it has one padded pixel per row."""
    n_images, channels, height, width = x.shape
    rows = np.zeros((n_images, height + 2 * padding, width + 2 * padding, channels),
                    dtype=x.dtype)
    inside = rows[:, padding:padding + height, padding:padding + width, :]
    inside[...] = x.transpose(0, 2, 3, 1)
    return rows


def _image_chunks(n_images, pixels):
    """Slices of the batch of a few images each, about _CHUNK_ROWS pixel rows a slice."""
    step = max(1, _CHUNK_ROWS // pixels)
    return [slice(start, start + step) for start in range(0, n_images, step)]


def _kept(grid, stride, h_out, w_out):
    """The positions of an (N, Hp, Wp, C) grid that are outputs: every stride-th line and
    column from the top-left corner, h_out x w_out of them. A view, no copy."""
    return grid[:, :stride * (h_out - 1) + 1:stride, :stride * (w_out - 1) + 1:stride, :]


def conv2d_forward(x, weight, bias=None, stride=1, padding=0):
    """conv2d_naive's result with a loop over the K x K kernel offsets only (arrays).

    x: (N, C_in, H, W); weight: (C_out, C_in, K, K); bias: (C_out,) or None.
    Returns (N, C_out, H_out, W_out), stored channels-last (a transposed view of a
    contiguous (N, H_out, W_out, C_out) array).
    """
    _check_conv_args(x, weight, stride, padding)
    n_images, c_in, height, width = x.shape
    c_out, _, kh, kw = weight.shape
    h_out = output_size(height, kh, stride, padding)
    w_out = output_size(width, kw, stride, padding)
    rows = _padded_rows(x, padding)                               # (N, Hp, Wp, C_in)
    hp, wp = rows.shape[1], rows.shape[2]
    # weight[:, :, a, b] is a strided view that BLAS cannot use: NumPy would multiply it
    # with its own slow loops. One contiguous copy, (K, K, C_in, C_out), makes every
    # w_kk[a, b] a plain (C_in, C_out) matrix.
    w_kk = np.ascontiguousarray(weight.transpose(2, 3, 1, 0))
    # an output per padded pixel: (N, Hp, Wp, C_out)
    grid = np.zeros((n_images, hp, wp, c_out), dtype=np.result_type(x, weight))
    last = (kh - 1) * wp + (kw - 1)              # the shift of the kernel's last offset
    for chunk in _image_chunks(n_images, hp * wp):
        x_rows = rows[chunk].reshape(-1, c_in)                # (n·Hp·Wp, C_in), a view
        out_rows = grid[chunk].reshape(-1, c_out)             # (n·Hp·Wp, C_out), a view
        m = len(x_rows) - last                   # the output rows every offset can reach
        # TODO: for every kernel offset (a, b), add the input rows `shift = a*wp + b`
        #       further on, x_rows[shift:shift + m] (m, C_in), times w_kk[a, b]
        #       (C_in, C_out), to out_rows[:m].
        ### BEGIN SOLUTION
        for a in range(kh):
            for b in range(kw):
                shift = a * wp + b
                if c_in == 1:        # an outer product: broadcasting beats BLAS here
                    out_rows[:m] += x_rows[shift:shift + m] * w_kk[a, b]
                else:
                    out_rows[:m] += x_rows[shift:shift + m] @ w_kk[a, b]   # (m, C_out)
        ### END SOLUTION
    out = np.ascontiguousarray(_kept(grid, stride, h_out, w_out))     # (N, Ho, Wo, C_out)
    if bias is not None:
        out += bias
    return out.transpose(0, 3, 1, 2)                                  # (N, C_out, Ho, Wo)

# %% [markdown]
# The naive and the fast version must agree, and the fast one should be much faster:

# %%
_rng = np.random.default_rng(0)
_x, _w = _rng.standard_normal((2, 3, 9, 9)), _rng.standard_normal((4, 3, 3, 3))
_b = _rng.standard_normal(4)
for _stride, _padding in [(1, 0), (1, 1), (2, 1)]:
    _fast = conv2d_forward(_x, _w, _b, _stride, _padding)
    _diff = np.abs(_fast - conv2d_naive(_x, _w, _b, _stride, _padding)).max()
    print(f"stride {_stride}, padding {_padding}: largest difference {_diff:.2e}")
_x = _rng.standard_normal((8, 16, 14, 14)).astype(np.float32)
_w = _rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
for _name, _fn in [("naive", conv2d_naive), ("kernel offsets", conv2d_forward)]:
    _start = time.perf_counter()
    _fn(_x, _w, None, 1, 1)
    _ms = 1000 * (time.perf_counter() - _start)
    print(f"{_name:>15}: {_ms:8.1f} ms for 8 images, 16 -> 32 channels, 14x14")

# %% [markdown]
# ## The gradients of a convolution
#
# `out = conv(x, w) + b`. Given `g = dL/d(out)` of shape (N, C_out, H_out, W_out), first put
# it back on the grid the forward pass computed on (`_output_grid`): one row per padded
# pixel, zeros where the forward pass threw its rows away (and, with stride S, between the
# kept ones), so those rows send nothing back. Then each offset's line of the forward pass,
# `out_rows[p] += x_rows[p + shift] @ w[a, b]`, is a matrix product, and gives two lines:
#
# - **weight**: as for `Linear`, `x_rows[shift:shift + M].T @ g_rows[:M]`: one GEMM per
#   offset, `(C_in, M) @ (M, C_out)`, summed over the chunks of images.
# - **input**: the same paths backwards, `grad_rows[shift:shift + M] += g_rows[:M] @ w[a, b].T`:
#   each padded input pixel collects from every output that read it. Cropping the padding
#   off gives `dL/dx`. No loop over pixels and no `np.add.at`, just nine slices of a padded
#   buffer. (Summed over the offsets this is a convolution too: of the output gradient with
#   the kernel flipped by 180° and its in/out channels swapped.)
# - **bias**: every output pixel of channel o added `b[o]` once: `g.sum(axis=(0, 2, 3))`.
#
# Each rule takes the output gradient and the parents and returns one NumPy gradient per
# parent, and goes into module 07's `GRADIENTS` table under the op's name, through
# `@register_gradient("conv2d")` right above it.

# %%
#| export
def _output_grid(g, hp, wp, stride):
    """dL/d(out) (N, C_out, H_out, W_out) on the forward pass's grid of padded pixels,
    (N, Hp, Wp, C_out): g at the kept positions, 0 at every other one."""
    grid = np.zeros((g.shape[0], hp, wp, g.shape[1]), dtype=g.dtype)
    _kept(grid, stride, g.shape[2], g.shape[3])[...] = g.transpose(0, 2, 3, 1)
    return grid


def conv2d_input_grad(g, weight, input_shape, stride=1, padding=0):
    """dL/dx of a convolution (N, C_in, H, W), from g = dL/d(out) (N, C_out, H_out,
    W_out): every offset's rows of g, times the offset's kernel matrix transposed, added
    back to the input rows they came from; then the padding cropped off."""
    n_images, c_in, height, width = input_shape
    c_out, _, kh, kw = weight.shape
    hp, wp = height + 2 * padding, width + 2 * padding
    g_grid = _output_grid(g, hp, wp, stride)                      # (N, Hp, Wp, C_out)
    w_kk = np.ascontiguousarray(weight.transpose(2, 3, 0, 1))     # (K, K, C_out, C_in)
    grad = np.zeros((n_images, hp, wp, c_in), dtype=np.result_type(g, weight))
    last = (kh - 1) * wp + (kw - 1)
    for chunk in _image_chunks(n_images, hp * wp):
        g_rows = g_grid[chunk].reshape(-1, c_out)                 # (n·Hp·Wp, C_out)
        grad_rows = grad[chunk].reshape(-1, c_in)                 # (n·Hp·Wp, C_in)
        m = len(g_rows) - last
        # TODO: for every offset (a, b), add g_rows[:m] (m, C_out) times w_kk[a, b]
        #       (C_out, C_in) to the input rows it came from, grad_rows[shift:shift + m],
        #       shift = a*wp + b.
        ### BEGIN SOLUTION
        for a in range(kh):
            for b in range(kw):
                shift = a * wp + b
                grad_rows[shift:shift + m] += g_rows[:m] @ w_kk[a, b]
        ### END SOLUTION
    grad = grad[:, padding:padding + height, padding:padding + width, :]  # N, H, W, C_in
    return grad.transpose(0, 3, 1, 2)                                 # (N, C_in, H, W)


def conv2d_weight_grad(g, x, weight_shape, stride=1, padding=0):
    """dL/dw of a convolution: for each kernel offset (a, b),
    x_rows[shift:shift + M].T @ g_rows[:M]."""
    c_out, c_in, kh, kw = weight_shape
    rows = _padded_rows(x, padding)                               # (N, Hp, Wp, C_in)
    hp, wp = rows.shape[1], rows.shape[2]
    g_grid = _output_grid(g, hp, wp, stride)                      # (N, Hp, Wp, C_out)
    grad = np.zeros((kh, kw, c_in, c_out), dtype=np.result_type(g, x))
    last = (kh - 1) * wp + (kw - 1)
    for chunk in _image_chunks(x.shape[0], hp * wp):
        x_rows = rows[chunk].reshape(-1, c_in)
        g_rows = g_grid[chunk].reshape(-1, c_out)
        m = len(x_rows) - last
        # TODO: for every offset (a, b), add x_rows[shift:shift + m].T @ g_rows[:m]
        #       (C_in, C_out) to grad[a, b].
        ### BEGIN SOLUTION
        for a in range(kh):
            for b in range(kw):
                shift = a * wp + b
                grad[a, b] += x_rows[shift:shift + m].T @ g_rows[:m]
        ### END SOLUTION
    return np.ascontiguousarray(grad.transpose(3, 2, 0, 1))       # (C_out, C_in, K, K)

@register_gradient("conv2d")
def conv2d_grad(g, x, weight, bias=None, *, stride, padding):
    """The rule of "conv2d": (dL/dx, dL/dw[, dL/db])."""
    grad_x = None                                                 # no dL/dx for an image
    if x.requires_grad:
        grad_x = conv2d_input_grad(g, weight.data, x.shape, stride, padding)
    grads = (grad_x, conv2d_weight_grad(g, x.data, weight.shape, stride, padding))
    if bias is not None:
        grads += (g.sum(axis=(0, 2, 3)),)
    return grads


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """The differentiable 2-D convolution of Tensors: x (N, C_in, H, W), weight
    (C_out, C_in, K, K), bias (C_out,) or None -> (N, C_out, H_out, W_out)."""
    stride, padding = int(stride), int(padding)
    parents = (x, weight) if bias is None else (x, weight, bias)
    data = conv2d_forward(x.data, weight.data, None if bias is None else bias.data,
                          stride, padding)
    return x._result(data, "conv2d", *parents, stride=stride, padding=padding)



class Conv2d(Module):
    """A 2-D convolution layer: C_out kernels of size K x K over C_in channels (NCHW).

    Weight (C_out, C_in, K, K) and bias (C_out,) start uniform in ±1/sqrt(C_in*K*K), as in
    PyTorch, drawn from module 04's seeded generator (see manual_seed).

    >>> Conv2d(1, 16, 3, padding=1)(Tensor(np.zeros((2, 1, 28, 28)))).shape
    (2, 16, 28, 28)
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 bias=True):
        super().__init__()
        sizes = (int(in_channels), int(out_channels), int(kernel_size), int(stride))
        if min(sizes) < 1 or int(padding) < 0:
            raise ValueError(f"Conv2d needs positive channels, kernel_size and stride "
                             f"and padding >= 0, got {in_channels}, {out_channels}, "
                             f"kernel_size={kernel_size}, stride={stride}, "
                             f"padding={padding}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride = int(kernel_size), int(stride)
        self.padding = int(padding)
        bound = 1.0 / np.sqrt(self.in_channels * self.kernel_size ** 2)
        shape = (self.out_channels, self.in_channels, self.kernel_size, self.kernel_size)
        generator = default_generator()                   # module 04's: see manual_seed
        self.weight = Parameter(generator.uniform(-bound, bound, size=shape))
        self.bias = (Parameter(generator.uniform(-bound, bound, size=self.out_channels))
                     if bias else None)

    def forward(self, x):
        x = x if isinstance(x, Tensor) else Tensor(x)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self!r} expects inputs of shape "
                             f"(N, {self.in_channels}, H, W), got {x.shape}")
        return conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, bias={self.bias is not None}")

# %%
#| test: conv_forward (2 points)
def test_conv_forward():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    for padding in (0, 1):
        # the definition once more, by NumPy: every 3x3 window of the padded input, by w
        padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
        windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))
        expected = np.einsum("nchwab,ocab->nohw", windows, w) + b[None, :, None, None]
        fast = conv2d_forward(x, w, b, 1, padding)
        same_shape = fast.shape == expected.shape
        assert same_shape and np.allclose(fast, expected), (
            f"conv2d_forward differs from the definition with padding {padding}: largest "
            f"difference {np.abs(fast - expected).max() if same_shape else fast.shape}. "
            "Each offset (a, b) adds w_kk[a, b] @ window(a, b).")
    out = conv2d(Tensor(x[:, :, :4, :4]), Tensor(w), Tensor(b))
    assert isinstance(out, Tensor) and out.dtype == np.float32, (
        f"conv2d on float32 Tensors should give a float32 Tensor, got {out!r}")
    assert out.shape == (2, 4, 2, 2), (
        f"conv2d of (2, 3, 4, 4) with 4 kernels 3x3: shape (2, 4, 2, 2), got {out.shape}")

test_conv_forward()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_close, assert_dtype_kept


def _conv_oracle(x, w, b, s, p):
    """The definition once more, from NumPy's sliding windows: an oracle of its own."""
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    windows = np.lib.stride_tricks.sliding_window_view(xp, w.shape[2:], axis=(2, 3))
    out = np.einsum("nchwab,ocab->nohw", windows[:, :, ::s, ::s], w)
    return out if b is None else out + b[None, :, None, None]


# (x shape, kernels, K, stride, padding): tall and wide images, one input channel (the
# broadcasting branch) and several, kernels 1 to 5, strides 1 to 3, paddings 0 to 2, and
# batches larger than one of _image_chunks' chunks: 9 images of 32x32 padded pixels are
# chunks of 4, 4 and 1 images; one 66x70 image is a chunk of its own
_CONV_CASES = [((1, 2, 7, 5), 3, 3, 2, 1), ((3, 1, 5, 8), 2, 2, 3, 2),
               ((2, 4, 5, 6), 3, 5, 1, 2), ((1, 3, 4, 4), 2, 1, 1, 0),
               ((9, 2, 30, 30), 3, 3, 1, 1), ((2, 1, 66, 70), 2, 3, 2, 0)]
_r = np.random.default_rng(6)
for _shape, _c_out, _k, _s, _p in _CONV_CASES:
    for _dtype in map(np.dtype, ("float32", "float64")):
        _x = _r.standard_normal(_shape).astype(_dtype)
        _w = _r.standard_normal((_c_out, _shape[1], _k, _k)).astype(_dtype)
        for _b in (_r.standard_normal(_c_out).astype(_dtype), None):
            _what = (f"conv2d_forward(x {_shape} {_dtype}, {_c_out} kernels {_k}x{_k}, "
                     f"stride={_s}, padding={_p}, "
                     f"bias {'None' if _b is None else 'given'})")
            _out = conv2d_forward(_x, _w, _b, _s, _p)
            assert _out.dtype == _dtype, f"{_what} returned {_out.dtype}: keep x's dtype"
            _b64 = None if _b is None else _b.astype(np.float64)
            assert_close(_out, _conv_oracle(_x.astype(np.float64), _w.astype(np.float64),
                                            _b64, _s, _p), what=_what)


def conv2d_stride2_padding1(x, w):
    return conv2d(x, w, None, stride=2, padding=1)


assert_dtype_kept(conv2d_stride2_padding1, shapes=((2, 2, 5, 4), (3, 2, 3, 3)))
### END HIDDEN TESTS

# %%
#| test: conv_gradients (3 points)
def test_conv_gradients():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    b = rng.standard_normal(3)
    g = rng.standard_normal((2, 3, 5, 5))
    # the input gradient by the definition: out[n, o, i, j] used x_padded[n, c, i+a, j+b]
    expected = np.zeros((2, 2, 7, 7))
    for a in range(3):
        for b_ in range(3):
            window = expected[:, :, a:a + 5, b_:b_ + 5]
            window += np.einsum("noij,oc->ncij", g, w[:, :, a, b_])
    got = conv2d_input_grad(g, w, x.shape, stride=1, padding=1)
    assert got.shape == x.shape and np.allclose(got, expected[:, :, 1:6, 1:6]), (
        "conv2d_input_grad (stride 1, padding 1) differs from the definition. It is the "
        "output gradient, padded by K-1, convolved with the kernel flipped in both "
        "spatial axes and with its in/out channels swapped, then cropped by `padding` on "
        "every side.")
    got = conv2d_weight_grad(g, x, w.shape, stride=1, padding=1)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    want = np.einsum("noij,ncij->oc", g, xp[:, :, 0:5, 2:7])
    assert np.allclose(got[:, :, 0, 2], want), (
        "conv2d_weight_grad[:, :, a, b] should be the sum over images and pixels of g "
        "times the input window of offset (a, b).")
    assert gradcheck(lambda x, w, b: conv2d(x, w, b, stride=1, padding=1),
                     [x[:1, :, :4, :4], w, b])

test_conv_gradients()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_untouched, check_graph


def _conv_oracle_grads(x, w, b, s, p, g):
    """[dL/dx, dL/dw, dL/db] of sum(g * conv(x, w, b)), by the definition."""
    k, (h_out, w_out) = w.shape[2], g.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    windows = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))
    grad_w = np.einsum("noij,ncijab->ocab", g, windows[:, :, ::s, ::s])
    grad_xp = np.zeros_like(xp)
    for a in range(k):
        for c in range(k):
            rows = slice(a, a + s * (h_out - 1) + 1, s)
            columns = slice(c, c + s * (w_out - 1) + 1, s)
            grad_xp[:, :, rows, columns] += np.einsum("noij,oc->ncij", g, w[:, :, a, c])
    grad_x = grad_xp[:, :, p:p + x.shape[2], p:p + x.shape[3]]
    return [grad_x, grad_w, None if b is None else g.sum(axis=(0, 2, 3))]


# through module 07's engine, every gradient against the definition: tall and wide images,
# strides and paddings, one input channel and several, and batches larger than a chunk
# (9 images of 32x32 padded pixels: chunks of 4, 4 and 1; 66x70 pixels: one image a chunk)
_r = np.random.default_rng(7)
for _shape, _c_out, _k, _s, _p in [((1, 2, 5, 5), 2, 3, 2, 1), ((2, 1, 6, 5), 2, 2, 3, 1),
                                   ((1, 2, 4, 6), 3, 3, 2, 0), ((2, 3, 7, 4), 2, 3, 1, 2),
                                   ((9, 2, 30, 30), 3, 3, 1, 1),
                                   ((2, 1, 66, 70), 2, 3, 2, 0)]:
    _x, _w = _r.standard_normal(_shape), _r.standard_normal((_c_out, _shape[1], _k, _k))
    _b = _r.standard_normal(_c_out)
    check_graph(lambda x, w, b, s=_s, p=_p: conv2d(x, w, b, stride=s, padding=p),
                [_x, _w, _b],
                oracle_grads=lambda x, w, b, g, s=_s, p=_p: _conv_oracle_grads(
                    x, w, b, s, p, g),
                name=f"conv2d(x {_shape}, {_c_out} kernels {_k}x{_k}, stride={_s}, "
                     f"padding={_p})")
check_graph(lambda x, w: conv2d(x, w, None, stride=2, padding=2),
            [_r.standard_normal((1, 1, 5, 5)), _r.standard_normal((2, 1, 3, 3))],
            name="conv2d(x (1, 1, 5, 5), 2 kernels 3x3, no bias, stride=2, padding=2)")
# the rule reads the incoming gradient, the parents and the saved values: it changes none
_y = conv2d(Tensor(_r.standard_normal((2, 2, 6, 5)), requires_grad=True),
            Tensor(_r.standard_normal((3, 2, 3, 3)), requires_grad=True),
            Tensor(_r.standard_normal(3), requires_grad=True), stride=2, padding=1)
assert_untouched(GRADIENTS["conv2d"], np.linspace(-1.0, 1.0, _y.size).reshape(_y.shape),
                 *_y._parents, **_y._saved)
### END HIDDEN TESTS

# %%
#| test: conv2d_layer (2 points)
def test_conv2d_layer():
    manual_seed(3)
    layer = Conv2d(3, 8, 3, stride=2, padding=1)
    assert layer.weight.shape == (8, 3, 3, 3) and layer.bias.shape == (8,), (
        f"Conv2d(3, 8, 3): weight (8, 3, 3, 3) and bias (8,), got {layer.weight.shape}, "
        f"{layer.bias.shape}")
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    assert np.abs(layer.weight.data).max() <= 1 / np.sqrt(27), (
        "initial weights lie in ±1/sqrt(C_in*K*K)")
    out = layer(Tensor(np.ones((2, 3, 9, 9))))
    assert out.shape == (2, 8, 5, 5), (
        f"9x9 with K=3, stride 2, padding 1 gives 5x5, got {out.shape}")
    out.sum().backward()
    grad = layer.weight.grad
    assert grad is not None and grad.shape == layer.weight.shape, (
        "after out.sum().backward() the weight must have a gradient: register conv2d's "
        "rule with @register_gradient(\"conv2d\")")
    manual_seed(3)
    assert np.array_equal(Conv2d(3, 8, 3).weight.data, layer.weight.data), (
        "manual_seed must fix the weights")

test_conv2d_layer()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_raises

assert Conv2d(2, 4, 3, bias=False).bias is None, "Conv2d(..., bias=False) has no bias"
assert len(Conv2d(2, 4, 3, bias=False).parameters()) == 1, "without a bias: one parameter"
assert Conv2d(1, 2, 3).weight.dtype == np.float32, "Parameters are float32"
assert_raises(ValueError, Conv2d(3, 4, 3), Tensor(np.zeros((1, 2, 5, 5))))
assert "conv2d" in GRADIENTS, "register conv2d's rule with @register_gradient(\"conv2d\")"
### END HIDDEN TESTS

# %% [markdown]
# A check of all three gradients by finite differences (module 07's `gradcheck`), with a
# stride and a padding:

# %%
_rng = np.random.default_rng(1)
print(gradcheck(lambda x, w, b: conv2d(x, w, b, stride=2, padding=1),
                [_rng.standard_normal((2, 2, 5, 5)), _rng.standard_normal((3, 2, 3, 3)),
                 _rng.standard_normal(3)]))

# %% [markdown]
# ## Pooling: shrink the image, keep what matters
#
# After a convolution finds strokes, we rarely need to know their position to the pixel.
# **Pooling** summarizes each K×K window (usually 2×2, stride 2) by one number, halving H
# and W: the next convolution then sees a wider part of the digit for the same 3×3 cost.
#
# - **max pooling** keeps the largest value of each window. Its gradient goes, whole, to
#   the position that was largest (the first one, on ties, as PyTorch);
# - **average pooling** keeps the mean; its gradient is shared equally, `g / K²`.
#
# Both loop over the K×K offsets again: offset (a, b) of every window is one strided slice.
#
# ```
# x = 1 3 | 2 0      max pool 2x2 -> 4 2      avg pool 2x2 -> 2.5 1.0
#     4 2 | 1 1                      8 9                      6.0 5.0
#     ----+----
#     5 8 | 9 3
#     6 5 | 7 1
# ```

# %%
#| export
def _pool_args(x, kernel_size, stride):
    if x.ndim != 4:
        raise ValueError(f"pooling expects (N, C, H, W), got shape {x.shape}")
    stride = kernel_size if stride is None else int(stride)
    h_out = output_size(x.shape[2], kernel_size, stride)
    w_out = output_size(x.shape[3], kernel_size, stride)
    if h_out < 1 or w_out < 1:
        raise ValueError(f"a {kernel_size}x{kernel_size} pooling window does not fit in "
                         f"{x.shape[2]}x{x.shape[3]}")
    return stride, h_out, w_out


def _offset(array, a, b, stride, h_out, w_out):
    """Offset (a, b) of every pooling window of an (N, C, H, W) array: a strided view."""
    rows = slice(a, a + stride * (h_out - 1) + 1, stride)
    columns = slice(b, b + stride * (w_out - 1) + 1, stride)
    return array[:, :, rows, columns]


def max_pool2d(x, kernel_size=2, stride=None):
    """The maximum of each K x K window (stride defaults to K):
    (N, C, H, W) -> (N, C, Ho, Wo)."""
    kernel_size = int(kernel_size)
    stride, h_out, w_out = _pool_args(x, kernel_size, stride)
    out = _offset(x.data, 0, 0, stride, h_out, w_out).copy(order="K")  # in x's layout
    # TODO: for every offset (a, b), keep in `out` the larger of `out` and the offset's
    #       slice.
    ### BEGIN SOLUTION
    for a in range(kernel_size):
        for b in range(kernel_size):
            np.maximum(out, _offset(x.data, a, b, stride, h_out, w_out), out=out)
    ### END SOLUTION
    return x._result(out, "maxpool2d", x, kernel_size=kernel_size, stride=stride, out=out)


@register_gradient("maxpool2d")
def max_pool2d_grad(g, x, kernel_size, stride, out):
    """Each window's gradient goes to the position that held its maximum: the first one,
    in row-major order, when several tie (as PyTorch)."""
    grad = np.zeros_like(x.data, dtype=g.dtype)
    h_out, w_out = g.shape[2], g.shape[3]
    taken = np.zeros(out.shape, dtype=bool)      # windows whose maximum was already found
    # TODO: for every offset (a, b) in row-major order, the windows where the offset's
    #       slice of x equals `out` and that are not yet taken receive g at that offset;
    #       mark them taken.
    ### BEGIN SOLUTION
    for a in range(kernel_size):
        for b in range(kernel_size):
            winner = (_offset(x.data, a, b, stride, h_out, w_out) == out) & ~taken
            taken |= winner
            _offset(grad, a, b, stride, h_out, w_out)[...] += g * winner
    ### END SOLUTION
    return (grad,)


def avg_pool2d(x, kernel_size=2, stride=None):
    """The mean of each K x K window (stride defaults to K):
    (N, C, H, W) -> (N, C, Ho, Wo)."""
    kernel_size = int(kernel_size)
    stride, h_out, w_out = _pool_args(x, kernel_size, stride)
    out = np.zeros((x.shape[0], x.shape[1], h_out, w_out), dtype=x.dtype)
    # TODO: add the slice of every offset (a, b) to `out`, then divide by the window's
    #       size K*K.
    ### BEGIN SOLUTION
    for a in range(kernel_size):
        for b in range(kernel_size):
            out += _offset(x.data, a, b, stride, h_out, w_out)
    out /= kernel_size * kernel_size
    ### END SOLUTION
    return x._result(out, "avgpool2d", x, kernel_size=kernel_size, stride=stride)


@register_gradient("avgpool2d")
def avg_pool2d_grad(g, x, kernel_size, stride):
    """Every position of a window receives 1/K² of its gradient."""
    grad = np.zeros_like(x.data, dtype=g.dtype)
    share = g / (kernel_size * kernel_size)
    for a in range(kernel_size):
        for b in range(kernel_size):
            _offset(grad, a, b, stride, g.shape[2], g.shape[3])[...] += share
    return (grad,)



class MaxPool2d(Module):
    """Max pooling over K x K windows with stride S (default K).

    >>> MaxPool2d(2)(Tensor(np.zeros((1, 16, 28, 28)))).shape
    (1, 16, 14, 14)
    """

    def __init__(self, kernel_size=2, stride=None):
        super().__init__()
        if int(kernel_size) < 1 or (stride is not None and int(stride) < 1):
            raise ValueError(f"MaxPool2d needs kernel_size >= 1 and stride >= 1, got "
                             f"{kernel_size}, {stride}")
        self.kernel_size = int(kernel_size)
        self.stride = self.kernel_size if stride is None else int(stride)

    def forward(self, x):
        x = x if isinstance(x, Tensor) else Tensor(x)
        return max_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class AvgPool2d(MaxPool2d):
    """Average pooling over K x K windows with stride S (default K)."""

    def forward(self, x):
        x = x if isinstance(x, Tensor) else Tensor(x)
        return avg_pool2d(x, self.kernel_size, self.stride)

# %%
#| test: max_pool (2 points)
def test_max_pool():
    x = Tensor([[[[1.0, 3, 2, 0], [4, 2, 1, 1], [5, 8, 9, 3], [6, 5, 7, 1]]]],
               requires_grad=True)
    out = max_pool2d(x, 2)
    assert out.shape == (1, 1, 2, 2) and np.allclose(out.data[0, 0], [[4, 2], [8, 9]]), (
        f"max_pool2d 2x2 of the example: expected [[4, 2], [8, 9]], "
        f"got {out.data[0, 0].tolist()}")
    out.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    expected = [[0, 0, 2, 0], [1, 0, 0, 0], [0, 3, 4, 0], [0, 0, 0, 0]]
    assert np.allclose(x.grad.data[0, 0], expected), (
        f"each window's gradient goes to its maximum only: expected {expected}, "
        f"got {x.grad.data[0, 0].tolist()}")
    assert MaxPool2d(2)(Tensor(np.zeros((2, 3, 7, 7)))).shape == (2, 3, 3, 3), (
        "7x7 pooled 2x2 gives 3x3")

test_max_pool()
### BEGIN HIDDEN TESTS
_x = Tensor([[[[1.0, 1.0], [1.0, 0.0]]]], requires_grad=True)
max_pool2d(_x, 2).sum().backward()
assert np.allclose(_x.grad.data[0, 0], [[1, 0], [0, 0]]), (
    f"on ties only the first maximum (row-major) gets the gradient: expected "
    f"[[1, 0], [0, 0]], got {_x.grad.data[0, 0].tolist()}")
_x = Tensor(np.arange(16.0).reshape(1, 1, 4, 4) % 5, requires_grad=True)
_out = max_pool2d(_x, 2, stride=1)
assert _out.shape == (1, 1, 3, 3)
_out.sum().backward()
assert _x.grad.data.sum() == 9, (
    "overlapping windows (stride 1): each of the 9 windows sends 1")
from tinytorch.testing import assert_close, assert_untouched, check_graph

# tall and wide images, windows that overlap (stride < K) and leave rows and columns over;
# distinct values (a permutation), so each window has one maximum
_r = np.random.default_rng(8)
for _shape, _k, _s in [((2, 3, 7, 5), 2, 2), ((1, 2, 5, 8), 3, 2), ((2, 1, 6, 6), 3, 1),
                       ((1, 2, 4, 9), 2, 3)]:
    _v = _r.permutation(int(np.prod(_shape))).reshape(_shape) / 7.0
    _windows = np.lib.stride_tricks.sliding_window_view(_v, (_k, _k), axis=(2, 3))
    _name = f"max_pool2d(x {_shape}, {_k}, stride={_s})"
    for _dtype in ("float32", "float64"):
        assert_close(max_pool2d(Tensor(_v, dtype=_dtype), _k, _s),
                     _windows[:, :, ::_s, ::_s].max(axis=(-2, -1)),
                     what=f"{_name} {_dtype}")
    check_graph(lambda x, k=_k, s=_s: max_pool2d(x, k, s), [_v], name=_name)
    # forward and backward leave the input, the incoming gradient and the saved maxima
    _y = assert_untouched(max_pool2d, Tensor(_v, requires_grad=True), _k, _s)
    _g = np.linspace(0.5, 1.5, _y.size).reshape(_y.shape)
    assert_untouched(GRADIENTS["maxpool2d"], _g, *_y._parents, **_y._saved)
### END HIDDEN TESTS

# %% [markdown]
# ## Flatten: from images to vectors
#
# After the convolutions and pools, a `Linear` layer makes the decision. It wants
# `(N, features)`: `Flatten` keeps the batch axis and joins the rest,
# `(N, 32, 7, 7) -> (N, 1568)`. It is a `reshape`, whose gradient module 07 already knows.
#
# ## BatchNorm2d: keep every channel's scale in check
#
# Deeper CNNs train faster when each channel's activations are normalized: over the batch
# and all pixels, per channel, subtract the mean and divide by the standard deviation, then
# let the network choose its own scale `γ` and shift `β` (learned, one per channel):
#
# $$y = \gamma \cdot \frac{x - \mu_c}{\sqrt{\sigma_c^2 + \epsilon}} + \beta$$
#
# In training, μ and σ² are the batch's own (σ² the biased variance, dividing by the count);
# the layer also keeps **running** averages, `running = (1 - momentum)·running +
# momentum·batch` (the variance's unbiased estimate here, as PyTorch: σ² · count /
# (count - 1), with count = N·H·W values per channel, and `max(count - 1, 1)` so that one
# value per channel does not divide by zero), and in evaluation mode (after `model.eval()`)
# uses those: a single test image has no batch to average over.
#
# The running statistics are not learned (no gradient, the optimizer never sees them), yet
# they are part of the trained model: a model saved without them would evaluate with
# `running_mean = 0` and `running_var = 1` once loaded. So they are **buffers** (module 04):
# `register_buffer("running_mean", ...)` puts them into `state_dict()` as `running_mean` and
# `running_var` beside `weight` and `bias`, and a checkpoint (module 08) restores them.
#
# Written with Tensor operations (mean, subtract, power, divide, ...), autograd
# differentiates it with no new rule. It is also slow: the backward pass then walks about
# fifteen full-size arrays per layer, about a fifth of a CIFAR-10 CNN's training step here. The
# normalization `x̂ = (x - μ) / sqrt(σ² + ε)` has a short closed-form gradient, because μ
# and σ² are averages over the same (batch, pixel) axes, written `mean(·)` below:
#
# $$\frac{\partial L}{\partial x} = \frac{1}{\sqrt{\sigma^2 + \epsilon}}
#   \Big(g - \mathrm{mean}(g) - \hat{x}\cdot\mathrm{mean}(g\,\hat{x})\Big)$$
#
# So `batch_norm(x, mean, var, eps)` is one operation, with that rule registered in the
# `GRADIENTS` table: the same values and gradients (gradcheck and the parity tests with
# PyTorch say so), a few passes instead of fifteen. `mean` and `var` must be x's own batch
# statistics.

# %%
#| export
def batch_norm(x, mean, var, eps=1e-5):
    """(x - mean) / sqrt(var + eps) for a Tensor x (N, C, H, W) and its own batch
    statistics over axes (0, 2, 3), mean and var of shape (1, C, 1, 1): one differentiable
    operation."""
    inv_std = 1.0 / np.sqrt(var.data + eps)                               # (1, C, 1, 1)
    x_hat = (x.data - mean.data) * inv_std
    return x._result(x_hat, "batch_norm", x, x_hat=x_hat, inv_std=inv_std)


@register_gradient("batch_norm")
def batch_norm_grad(g, x, x_hat, inv_std):
    """The rule of "batch_norm": (g - mean(g) - x_hat * mean(g * x_hat)) * inv_std, the
    means per channel over (batch, rows, columns): the paths through the mean and the
    variance too."""
    axes = (0, 2, 3)
    g_mean = g.mean(axis=axes, keepdims=True)
    projection = (g * x_hat).mean(axis=axes, keepdims=True)
    return ((g - g_mean - x_hat * projection) * inv_std,)

# %%
#| export
class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1*d2*...): keep the batch axis, join the others."""

    def forward(self, x):
        x = x if isinstance(x, Tensor) else Tensor(x)
        return x.reshape(x.shape[0], -1)


class BatchNorm2d(Module):
    """Batch normalization per channel of (N, C, H, W) inputs, with running statistics.

    weight (γ) starts at 1 and bias (β) at 0; running_mean at 0 and running_var at 1
    (buffers, not Parameters: they are averaged, not learned, and saved by state_dict()).
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        if int(num_features) < 1 or not 0 <= momentum <= 1 or eps <= 0:
            raise ValueError(f"BatchNorm2d needs num_features >= 1, eps > 0 and momentum "
                             f"in [0, 1], got {num_features}, eps={eps}, "
                             f"momentum={momentum}")
        self.num_features = int(num_features)
        self.eps, self.momentum = float(eps), float(momentum)
        self.weight = Parameter(np.ones(self.num_features))
        self.bias = Parameter(np.zeros(self.num_features))
        features = self.num_features
        self.register_buffer("running_mean", np.zeros(features, dtype=np.float32))
        self.register_buffer("running_var", np.ones(features, dtype=np.float32))

    def forward(self, x):
        x = x if isinstance(x, Tensor) else Tensor(x)
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"{self!r} expects inputs of shape "
                             f"(N, {self.num_features}, H, W), got {x.shape}")
        shape = (1, self.num_features, 1, 1)
        # TODO: in training, normalize with the batch's mean and biased variance over
        #       axes (0, 2, 3) (Tensor operations, so autograd differentiates them) and
        #       update the running statistics (momentum, the unbiased variance); in
        #       evaluation, normalize with the running statistics. Then scale by weight
        #       and shift by bias, per channel.
        ### BEGIN SOLUTION
        if self.training:
            mean = x.mean(axis=(0, 2, 3), keepdims=True)                   # (1, C, 1, 1)
            centred = x - mean
            var = (centred * centred).mean(axis=(0, 2, 3), keepdims=True)  # biased
            count = x.size // self.num_features
            unbiased = var.data.reshape(-1) * count / max(count - 1, 1)
            m = self.momentum
            new_mean = (1 - m) * self.running_mean + m * mean.data.reshape(-1)
            new_var = (1 - m) * self.running_var + m * unbiased
            self.running_mean = new_mean.astype(self.running_mean.dtype)
            self.running_var = new_var.astype(self.running_var.dtype)
            normalized = batch_norm(x, mean, var, self.eps)
        else:
            mean = Tensor(self.running_mean.reshape(shape), dtype=x.dtype)
            std = np.sqrt(self.running_var + self.eps).reshape(shape)
            normalized = (x - mean) / Tensor(std, dtype=x.dtype)
        ### END SOLUTION
        return normalized * self.weight.reshape(shape) + self.bias.reshape(shape)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"

# %%
#| test: avg_pool_flatten (1 point)
def test_avg_pool_flatten():
    x = Tensor([[[[1.0, 3, 2, 0], [4, 2, 1, 1], [5, 8, 9, 3], [6, 5, 7, 1]]]],
               requires_grad=True)
    out = AvgPool2d(2)(x)
    assert np.allclose(out.data[0, 0], [[2.5, 1.0], [6.0, 5.0]]), (
        f"avg_pool 2x2 of the example: expected [[2.5, 1], [6, 5]], "
        f"got {out.data[0, 0].tolist()}")
    out.sum().backward()
    assert np.allclose(x.grad.data, 0.25), (
        "each position of a 2x2 window gets 1/4 of its gradient")
    flat = Flatten()(Tensor(np.zeros((5, 32, 7, 7))))
    assert flat.shape == (5, 1568), (
        f"Flatten of (5, 32, 7, 7) should be (5, 1568), got {flat.shape}")

test_avg_pool_flatten()
### BEGIN HIDDEN TESTS
_r = np.random.default_rng(9)
_out = avg_pool2d(Tensor(np.arange(9.0).reshape(1, 1, 3, 3)), 2, stride=1)
assert np.allclose(_out.data, [[[[2, 3], [5, 6]]]]), (
    f"avg_pool2d(arange(9) as 3x3, 2, stride=1): expected [[2, 3], [5, 6]], "
    f"got {_out.data[0, 0].tolist()}")
from tinytorch.testing import assert_close, assert_dtype_kept, check_graph

# tall and wide images, overlapping windows (stride < K), rows and columns left over
for _shape, _k, _s in [((1, 2, 7, 6), 3, 2), ((2, 3, 5, 8), 2, 2), ((1, 1, 6, 4), 3, 1),
                       ((2, 2, 4, 9), 2, 3)]:
    _v = _r.standard_normal(_shape)
    _windows = np.lib.stride_tricks.sliding_window_view(_v, (_k, _k), axis=(2, 3))
    _name = f"avg_pool2d(x {_shape}, {_k}, stride={_s})"
    for _dtype in ("float32", "float64"):
        assert_close(avg_pool2d(Tensor(_v, dtype=_dtype), _k, _s),
                     _windows[:, :, ::_s, ::_s].mean(axis=(-2, -1)),
                     what=f"{_name} {_dtype}")
    check_graph(lambda x, k=_k, s=_s: avg_pool2d(x, k, s), [_v], name=_name)


def avg_pool2d_3x3_stride2(x):
    return avg_pool2d(x, 3, stride=2)


assert_dtype_kept(avg_pool2d_3x3_stride2, shapes=((2, 3, 7, 5),))
_flat = Flatten()(Tensor(np.zeros((3, 2, 5, 7))))
assert _flat.shape == (3, 70), (
    f"Flatten of (3, 2, 5, 7) should be (3, 70), got {_flat.shape}")
### END HIDDEN TESTS

# %%
#| test: batchnorm (3 points)
def test_batchnorm():
    rng = np.random.default_rng(2)
    x = Tensor(rng.standard_normal((8, 3, 4, 4)) * 5 + 2)
    bn = BatchNorm2d(3)
    out = bn(x)
    mean, std = out.data.mean(axis=(0, 2, 3)), out.data.std(axis=(0, 2, 3))
    assert np.allclose(mean, 0, atol=1e-5) and np.allclose(std, 1, atol=1e-3), (
        f"in training, each channel is normalized with the batch's statistics: expected "
        f"mean 0 and std 1 per channel, got means {mean} and stds {std}")
    expected = 0.9 * 0 + 0.1 * x.data.mean(axis=(0, 2, 3))
    assert np.allclose(bn.running_mean, expected, atol=1e-5), (
        f"running_mean after one batch (momentum 0.1): expected {expected}, "
        f"got {bn.running_mean}")
    bn.eval()
    out = bn(x)
    assert not np.allclose(out.data.mean(axis=(0, 2, 3)), 0, atol=1e-2), (
        "in evaluation mode BatchNorm2d must use the running statistics, not the batch's")
    assert gradcheck(lambda x, g, b: _bn_train(x, g, b),
                     [rng.standard_normal((2, 2, 2, 3)), [1.5, 0.5], [0.1, -0.2]])
    copy = BatchNorm2d(3)
    copy.load_state_dict(bn.state_dict())
    assert np.allclose(copy.eval()(x).data, out.data), (
        "a BatchNorm2d loaded from another's state_dict() must evaluate like it: the "
        "running statistics are buffers, saved and loaded with the weights. Assign them "
        "to self.running_mean / self.running_var (the registered buffers).")


def _bn_train(x, gamma, beta):
    layer = BatchNorm2d(2)
    layer.weight, layer.bias = gamma, beta
    return layer(x)

test_batchnorm()
### BEGIN HIDDEN TESTS
_r = np.random.default_rng(10)
_x = _r.standard_normal((4, 2, 3, 3)) * 3 + 1
_bn = BatchNorm2d(2, momentum=0.5)
_bn(Tensor(_x))
_want = 0.5 + 0.5 * _x.var(axis=(0, 2, 3), ddof=1)
assert np.allclose(_bn.running_var, _want, atol=1e-4), (
    "running_var uses the unbiased variance (divide by count - 1), as PyTorch")
assert np.allclose(_bn.running_mean, 0.5 * _x.mean(axis=(0, 2, 3)), atol=1e-5), (
    "momentum weighs the new batch")
_state = _bn.state_dict()
assert list(_state) == ["weight", "bias", "running_mean", "running_var"], (
    f"state_dict() keys: expected weight, bias, running_mean, running_var, "
    f"got {list(_state)}")
assert len(_bn.parameters()) == 2, (
    "the running statistics are buffers: in state_dict(), never in parameters()")
from tinytorch.testing import assert_close, assert_untouched, check_graph

# Channels of very different scales (1e-3, 1, 1e3: eps matters for the small one), tall and
# wide images, a batch of one image, eps not the default, float32 and float64 inputs; two
# training steps (the running averages build on what they held), then evaluation.
_SCALES = np.array([1e-3, 1.0, 1e3]).reshape(1, 3, 1, 1)
for _shape, _eps in [((3, 3, 5, 2), 1e-5), ((2, 3, 2, 6), 0.1), ((1, 3, 4, 3), 1e-3)]:
    for _dtype in map(np.dtype, ("float32", "float64")):
        _case = f"BatchNorm2d(3, eps={_eps}, momentum=0.3) on {_shape} {_dtype}"
        _layer = BatchNorm2d(3, eps=_eps, momentum=0.3)
        _mean, _var = np.zeros(3), np.ones(3)
        for _step in (1, 2):
            _v = ((_r.standard_normal(_shape) + 0.5) * _SCALES).astype(_dtype)
            _out = assert_untouched(_layer, Tensor(_v, dtype=_dtype))
            _v = _v.astype(np.float64)
            _m, _s2 = _v.mean(axis=(0, 2, 3)), _v.var(axis=(0, 2, 3))
            _centred = _v - _m.reshape(1, 3, 1, 1)
            _want = _centred / np.sqrt(_s2.reshape(1, 3, 1, 1) + _eps)
            assert _out.dtype == _dtype, f"{_case}: the output is {_out.dtype}"
            assert_close(_out, _want, what=f"{_case}, training step {_step}: the output "
                         "(x - batch mean) / sqrt(batch variance + eps)")
            _count = _v.size // 3
            _mean = 0.7 * _mean + 0.3 * _m
            _var = 0.7 * _var + 0.3 * _s2 * _count / max(_count - 1, 1)
            for _name, _expected in (("running_mean", _mean), ("running_var", _var)):
                _buffer = getattr(_layer, _name)
                assert _buffer.dtype == np.float32, (
                    f"{_case}: {_name} became {_buffer.dtype}; the buffers stay float32 "
                    "(cast the new average to the buffer's dtype)")
                assert_close(_buffer, _expected,
                             what=f"{_case}, after training step {_step}: {_name} = "
                                  "0.7 * its previous value + 0.3 * the batch's")
        # evaluation: the running statistics, eps inside the root, and no update
        _rm, _rv = np.float32([0.5, -1.0, 2.0]), np.float32([1e-6, 1.0, 1e6])
        _layer.running_mean, _layer.running_var = _rm.copy(), _rv.copy()
        _layer.eval()
        _v = ((_r.standard_normal(_shape) + 0.5) * _SCALES).astype(_dtype)
        _out = assert_untouched(_layer, Tensor(_v, dtype=_dtype))
        _want = ((_v.astype(np.float64) - _rm.astype(np.float64).reshape(1, 3, 1, 1))
                 / np.sqrt(_rv.astype(np.float64).reshape(1, 3, 1, 1) + _eps))
        assert _out.dtype == _dtype, f"{_case} in eval mode: the output is {_out.dtype}"
        assert_close(_out, _want, dtype=np.float32,       # the statistics are float32
                     what=f"{_case} in eval mode, running_var [1e-6, 1, 1e6]: "
                     "(x - running_mean) / sqrt(running_var + eps)")
        assert np.array_equal(_layer.running_mean, _rm) and np.array_equal(
            _layer.running_var, _rv), (
            f"{_case}: evaluation changed the running statistics; only training updates "
            "them")
        # the graph reaches x in evaluation too (a model in eval mode can still be
        # differentiated, e.g. for the gradient of its input)
        check_graph(_layer, [_v.astype(np.float64)], name=f"{_case} in eval mode")
check_graph(lambda x, g, b: _bn_train(x, g, b),
            [_r.standard_normal((3, 2, 2, 5)), [1.5, -0.5], [0.1, -0.2]],
            name="BatchNorm2d(2) in training on (3, 2, 2, 5), weight [1.5, -0.5]")
# one value per channel: nothing to correct, the unbiased estimate must not divide by 0
_layer = BatchNorm2d(2, momentum=0.5)
_layer(Tensor(np.array([3.0, -1.0]).reshape(1, 2, 1, 1)))
assert np.allclose(_layer.running_var, 0.5), (
    f"a batch of one 1x1 image (one value per channel): running_var should be "
    f"0.5 * 1 + 0.5 * 0 = 0.5, got {_layer.running_var}. Divide by max(count - 1, 1), "
    "not count - 1.")
### END HIDDEN TESTS

# %% [markdown]
# A small CNN for 28×28 digits, shape by shape (the `cnn` milestone's network):

# %%
manual_seed(0)
_model = Sequential(Conv2d(1, 16, 3, padding=1), ReLU(), MaxPool2d(2),
                    Conv2d(16, 32, 3, padding=1), ReLU(), MaxPool2d(2),
                    Flatten(), Linear(32 * 7 * 7, 64), ReLU(), Linear(64, 10))
_h = Tensor(np.zeros((2, 1, 28, 28)))
for _layer in _model.layers:
    _h = _layer(_h)
    print(f"{type(_layer).__name__:>10} -> {_h.shape}")
print(f"parameters: {sum(p.size for p in _model.parameters()):,} "
      f"(the MLP 784-128-10 has {784 * 128 + 128 + 128 * 10 + 10:,})")

# %% [markdown]
# ## Test it: the whole network
#
# The convolution's rule is in module 07's table, so `loss.backward()` reaches every weight
# of the network above.

# %%
#| test: small_cnn (2 points)
def test_small_cnn():
    from tinytorch.core.losses import CrossEntropyLoss
    from tinytorch.core.optimizers import SGD
    rng = np.random.default_rng(4)
    # two classes: a vertical or a horizontal bar somewhere in an 8x8 image
    x, y = np.zeros((32, 1, 8, 8), dtype=np.float32), np.arange(32) % 2
    for n in range(32):
        i = rng.integers(0, 8)
        if y[n]:
            x[n, 0, i, :] = 1
        else:
            x[n, 0, :, i] = 1
    manual_seed(0)
    model = Sequential(Conv2d(1, 4, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(),
                       Linear(64, 2))
    optimizer, loss_fn = SGD(model.parameters(), lr=0.1, momentum=0.9), CrossEntropyLoss()
    losses = []
    for _ in range(30):
        loss = loss_fn(model(Tensor(x)), Tensor(y, dtype=np.int64))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    accuracy = np.mean(model(Tensor(x)).data.argmax(axis=1) == y)
    assert losses[-1] < 0.5 * losses[0] and accuracy == 1.0, (
        f"a small CNN should learn vertical vs horizontal bars in 30 steps: loss "
        f"{losses[0]:.3f} -> {losses[-1]:.3f}, accuracy {accuracy:.2f}. Check the "
        "gradients of conv2d and max_pool2d.")

test_small_cnn()

# %% [markdown]
# ## What you built, and what comes next
#
# Convolution (written as its definition, then as nine matrix multiplies), its three
# gradients (the input's is itself a convolution with the flipped kernel), max and average
# pooling, `Flatten` and `BatchNorm2d`, each recording its graph so `loss.backward()` needs
# nothing more. Run `tito milestone cnn`: the network above trains on the same digits with
# the same Trainer as the MLP and passes it by more than two points.
#
# Training still feeds the Trainer whole NumPy arrays held in memory and cuts batches by
# index. CIFAR-10's 50,000 colour images, shuffled and augmented, call for something that
# streams batches: **one sample at a time is too slow**, and module 10 builds the DataLoader.
# Module 15 then replaces the nine matrix multiplies by one (im2col) and measures the gain.
