# %% [markdown]
# # Module 13: Attention — sequences need relationships
#
# Module 12 gave every token a vector for its meaning plus its position. Each vector still
# knows only itself. To continue `"the cat sat, and then it"`, a model must know that `it`
# is the cat: the vector at `it` has to *collect information from earlier positions*, and
# which positions matter depends on the words, not on a fixed distance. A convolution's
# window is fixed; an MLP applied to each position sees one position. **Sequences need
# relationships** that the data chooses.
#
# **Attention** computes them. Each position asks a question (its *query* vector q), each
# position offers a label (its *key* k) and a content (its *value* v). Position i scores
# every position j by how well the key answers its query, `q_i · k_j`, turns the scores
# into weights that sum to 1 with a softmax, and takes the weighted average of the values:
#
# ```
# weights = softmax(Q Kᵀ / √d)      (T, T): row i = how much position i reads each j
# out     = weights V               (T, d): row i = the average of the values it read
# ```
#
# A language model predicts the next token, so position i may read positions 0..i only,
# never the future: the weights above the diagonal are forced to 0 (a **causal mask**).
#
# Here is the attention matrix of four tokens with hand-made 3-number vectors (used as
# query, key and value at once). `cat` and `it` point the same way; read the last row.

# %%
import time

import numpy as np

from tinytorch.core.autograd import GRADIENTS, gradcheck
from tinytorch.core.layers import manual_seed
from tinytorch.core.tensor import Tensor

np.set_printoptions(precision=4, suppress=True)      # compact arrays in this notebook

words = ["the", "cat", "sat", "it"]
X_demo = np.array([[1.0, 0.0, 0.0],     # the
                   [0.0, 2.0, 0.5],     # cat
                   [0.0, 0.3, 2.0],     # sat
                   [0.2, 2.0, 0.3]])    # it: close to cat
scores_demo = X_demo @ X_demo.T / np.sqrt(3)                         # (4, 4)
future = np.triu(np.ones((4, 4), dtype=bool), k=1)                   # j > i
scores_demo[future] = -np.inf                                        # no peeking
weights_demo = np.exp(scores_demo - scores_demo.max(axis=1, keepdims=True))
weights_demo /= weights_demo.sum(axis=1, keepdims=True)              # rows sum to 1

print("reads ->  " + "".join(f"{w:>7}" for w in words))
for word, row in zip(words, weights_demo):
    print(f"{word:>8}  " + "".join(f"{p:7.2f}" for p in row))

# %% [markdown]
# `it` spends 44% of its attention on `cat` (and 43% on itself), 4% on `the`; the zeros
# above the diagonal are the future it may not see. As a heat map, when matplotlib is
# installed (the notebook runs without it):

# %%
try:
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
if plt is None:
    print("matplotlib is not installed: the table above is the same matrix")
else:
    _fig, _ax = plt.subplots(figsize=(3.2, 3.2))
    _ax.imshow(weights_demo, cmap="Blues", vmin=0, vmax=1)
    _ax.set_xticks(range(4), words)
    _ax.set_yticks(range(4), words)
    _ax.set_xlabel("reads (key)")
    _ax.set_ylabel("position (query)")
    if plt.get_backend().lower() != "agg":        # a plain script has no screen
        plt.show()
    plt.close(_fig)

# %% [markdown]
# ## The causal mask
#
# A boolean matrix that is True where position i (the row) may read position j (the
# column), that is where j <= i: the lower triangle with its diagonal.
#
# ```
# causal_mask(4) = T . . .
#                  T T . .
#                  T T T .
#                  T T T T
# ```
#
# Your package file starts here: the cells marked `#| export` become
# `tinytorch/text/attention.py`, built on module 02's Tensor, module 04's Module and Linear,
# and module 07's `register_gradient` and `unbroadcast`.

# %%
#| export
import math

import numpy as np

from tinytorch.core.autograd import register_gradient, unbroadcast
from tinytorch.core.layers import Linear, Module
from tinytorch.core.tensor import Tensor


def causal_mask(T):
    """(T, T) bool: True where position i (row) may attend to position j (column), j <= i.

    >>> causal_mask(3).astype(int)
    array([[1, 0, 0],
           [1, 1, 0],
           [1, 1, 1]])
    """
    # TODO: return the (T, T) boolean lower triangle, diagonal included (np.tril of ones).
    ### BEGIN SOLUTION
    return np.tril(np.ones((T, T), dtype=bool))
    ### END SOLUTION

# %%
#| test: causal_triangle (1 point)
def test_causal_mask():
    mask = causal_mask(4)
    ok = isinstance(mask, np.ndarray) and mask.dtype == np.bool_
    assert ok and mask.shape == (4, 4), (
        f"causal_mask(4) should be a (4, 4) bool array, got "
        f"{getattr(mask, 'dtype', type(mask))} {getattr(mask, 'shape', '')}")
    assert mask[3].all() and mask[0, 0] and not mask[0, 1:].any(), (
        f"row 0 may read only position 0, the last row every position; got\n{mask}")
    assert mask.diagonal().all() and not mask[1, 2:].any(), (
        "every position may read itself (the diagonal is True), and nothing above it")

test_causal_mask()
### BEGIN HIDDEN TESTS
for _T in (1, 2, 5, 9):
    _mask = causal_mask(_T)
    _want = np.arange(_T)[None, :] <= np.arange(_T)[:, None]
    assert _mask.dtype == np.bool_ and np.array_equal(_mask, _want), (
        f"causal_mask({_T}): True exactly where column j <= row i, got\n{_mask}")
### END HIDDEN TESTS

# %% [markdown]
# ## A softmax that respects the mask
#
# Masked entries must get weight **exactly 0**. Replace their scores by `-inf` before the
# softmax: `exp(-inf)` is exactly 0 in every float format, and the other weights are
# normalized among themselves. Two details make it safe:
#
# - **Subtract each row's maximum first.** `exp(800)` overflows to `inf` even in float64,
#   and `inf / inf` is nan. `softmax(s) = softmax(s - c)` for any constant c, and with
#   c = the row's maximum every exponent is <= 0: no overflow, and one entry is exactly 1.
#   (The maximum is taken after masking, so a masked score never sets it.)
# - **A row with nothing allowed** (possible with a padding mask) has maximum `-inf`, and
#   `-inf - (-inf)` is nan. Such a row reads nothing: give it weights 0, as PyTorch does.
#
# Why `-inf` rather than the popular `-1e9`? `-1e9` only *looks* like minus infinity: a
# row whose entries are all masked then gets uniform weights over the forbidden positions,
# silently; and in float16 (module 17) -1e9 does not exist (the largest float16 is 65,504),
# so the constant itself overflows to `-inf` and code that relied on it being finite breaks.
# `-inf` says what we mean, and the two rules above handle it.

# %%
#| export
def masked_softmax(scores, allowed=None):
    """Softmax of a NumPy array along its last axis, over the entries where `allowed`
    (a bool array that broadcasts to scores) is True; masked entries get exactly 0, a row
    with nothing allowed gets all 0. Never overflows."""
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)                # same dtype
    # TODO: subtract each row's maximum (use 0 for a row whose maximum is -inf), take exp,
    #       and divide by the row's sum (leave a row whose sum is 0 all zeros).
    ### BEGIN SOLUTION
    top = scores.max(axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0)                       # an all-masked row
    e = np.exp(scores - top)                                       # every exponent <= 0
    total = e.sum(axis=-1, keepdims=True)
    return e / np.where(total > 0, total, 1)
    ### END SOLUTION

# %%
#| test: softmax_with_mask (2 points)
def test_masked_softmax():
    s = np.array([[1.0, 2.0, 3.0], [0.5, 0.5, 9.0]])
    got = masked_softmax(s)
    e = np.exp(s)
    expected = e / e.sum(axis=1, keepdims=True)
    assert np.allclose(got, expected), (
        f"without a mask this is the plain softmax: expected "
        f"{expected.round(4).tolist()}, got {np.round(got, 4).tolist()}")
    allowed = np.array([[True, True, False], [True, False, True]])
    got = masked_softmax(s, allowed)
    assert got[0, 2] == 0 and got[1, 1] == 0, (
        f"masked entries must get weight exactly 0, got {got.tolist()}")
    assert np.allclose(got[0, :2], [1 / (1 + np.e), np.e / (1 + np.e)]), (
        f"the allowed entries of row 0, scores 1 and 2, share the weight: expected "
        f"[0.2689, 0.7311], got {got[0, :2].round(4).tolist()}")
    single = masked_softmax(s.astype(np.float32))
    assert got.dtype == np.float64 and single.dtype == np.float32, (
        "masked_softmax keeps the scores' dtype")

test_masked_softmax()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_close, assert_untouched


def _softmax_oracle(s, allowed):
    s = np.where(allowed, s.astype(np.float64), -np.inf)
    out = np.zeros_like(s)
    for index in np.ndindex(s.shape[:-1]):          # row by row, the definition
        row = s[index]
        if np.isfinite(row).any():
            e = np.exp(row - row[np.isfinite(row)].max())
            out[index] = e / e.sum()
    return out


_r = np.random.default_rng(13)
for _shape, _scale in [((3, 5), 1.0), ((2, 4, 4), 1000.0), ((2, 3, 6), 1e-6), ((1, 1), 50.0)]:
    _s = _r.standard_normal(_shape) * _scale
    _allowed = _r.random(_shape) < 0.6
    _allowed[..., 0, :] = False                     # a row with nothing allowed
    for _dtype in ("float32", "float64"):
        _case = f"masked_softmax of {_shape} {_dtype} scores of size ~{_scale:g}"
        with np.errstate(all="ignore"):
            _got = assert_untouched(masked_softmax, _s.astype(_dtype), _allowed)
            _plain = masked_softmax(_s.astype(_dtype))
        assert _got.dtype == _dtype and _plain.dtype == _dtype, f"{_case}: dtype {_got.dtype}"
        assert_close(_got, _softmax_oracle(_s, _allowed),
                     what=f"{_case}, a random mask with one row all masked (weights 0 there)")
        assert_close(_plain, _softmax_oracle(_s, np.ones(_shape, bool)),
                     what=f"{_case}, no mask")
# a causal mask broadcast over a batch of heads
_s = _r.standard_normal((2, 3, 4, 4))
assert_close(masked_softmax(_s, causal_mask(4)), _softmax_oracle(_s, causal_mask(4)),
             what="masked_softmax of (2, 3, 4, 4) scores with causal_mask(4) broadcast")
### END HIDDEN TESTS

# %% [markdown]
# ## Scaled dot-product attention
#
# With queries `q (..., Tq, d)`, keys `k (..., Tk, d)` and values `v (..., Tk, dv)`:
#
# ```
# scores  = q @ kᵀ / √d                      (..., Tq, Tk)
# weights = masked_softmax(scores, allowed)  (..., Tq, Tk)
# out     = weights @ v                      (..., Tq, dv)
# ```
#
# Why divide by √d? A dot product of d random numbers of variance 1 has variance d: with
# d = 64 the scores spread over ±8 or more, the softmax puts almost all weight on one entry,
# and its gradient vanishes. Dividing by √d brings the variance back to 1.
#
# `allowed` combines what the caller asks for (given, `_allowed_pairs`): a boolean `mask` (True =
# may attend, as PyTorch's `attn_mask`) and/or `is_causal=True` (the lower triangle).
#
# ### One operation, one rule
#
# You could build attention from Tensor operations you have: matmul, transpose, a multiply,
# an added mask, module 03's Softmax, matmul again (`attention_composed`, given below), and
# module 07 would differentiate it. It would also record five nodes whose outputs are
# (..., T, T) arrays, each allocated, and the softmax rule would recompute the exponentials.
# A GPT step runs attention in every layer, so we record **one** node, `"attention"`, that
# keeps the weights it computed, and write its rule once:
#
# ```
# dV = weightsᵀ @ g                     dW = g @ Vᵀ          (the two matmul rules)
# dS = weights * (dW - rowsum(dW * weights)) * scale         (softmax's rule, then the scale)
# dQ = dS @ K                           dK = dSᵀ @ Q
# ```
#
# A masked entry has weight 0, so its dS is 0: nothing flows to what was not read. Below,
# the rule is checked against the composed version, and both are timed.

# %%
#| export
def _allowed_pairs(mask, is_causal, tq, tk):
    """The bool array of (query, key) pairs that may attend, or None for all of them."""
    allowed = None
    if mask is not None:
        mask = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
        if mask.dtype != np.bool_:
            raise TypeError(f"attention: mask must be a bool array (True = may attend), "
                            f"got dtype {mask.dtype}")
        try:
            fits = np.broadcast_shapes(mask.shape[-2:], (tq, tk)) == (tq, tk)
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"attention: a mask of shape {mask.shape} does not "
                             f"broadcast to the scores' last two axes ({tq}, {tk})")
        allowed = mask
    if is_causal:
        lower = np.tril(np.ones((tq, tk), dtype=bool))        # j <= i, as PyTorch's
        allowed = lower if allowed is None else allowed & lower
    return allowed


def _check_qkv(q, k, v):
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ValueError(f"attention needs q, k, v of shape (..., T, d), got {q.shape}, "
                         f"{k.shape}, {v.shape}")
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"attention: q (..., Tq, d) and k (..., Tk, d) need the same d, "
                         f"k and v the same Tk; got {q.shape}, {k.shape}, {v.shape}")


@register_gradient("attention")
def attention_grad(g, q, k, v, weights, scale):
    """(dL/dq, dL/dk, dL/dv) of out = softmax(q kᵀ · scale, masked) v, from the
    weights."""
    # TODO: follow the six lines above the cell: dV and dW, then dS (softmax's rule
    #       times the scale), then dQ and dK, named grad_v, grad_w, grad_s, grad_q,
    #       grad_k: the return below sums each over broadcast axes (unbroadcast).
    ### BEGIN SOLUTION
    grad_v = np.swapaxes(weights, -1, -2) @ g                         # (..., Tk, dv)
    grad_w = g @ np.swapaxes(v.data, -1, -2)                          # (..., Tq, Tk)
    rowsum = (grad_w * weights).sum(axis=-1, keepdims=True)           # (..., Tq, 1)
    grad_s = weights * (grad_w - rowsum) * scale                      # (..., Tq, Tk)
    grad_q = grad_s @ k.data                                          # (..., Tq, d)
    grad_k = np.swapaxes(grad_s, -1, -2) @ q.data                     # (..., Tk, d)
    ### END SOLUTION
    return (unbroadcast(grad_q, q.shape), unbroadcast(grad_k, k.shape),
            unbroadcast(grad_v, v.shape))


def scaled_dot_product_attention(q, k, v, mask=None, is_causal=False,
                                 return_weights=False):
    """softmax(q kᵀ / √d) v over the allowed pairs: q (..., Tq, d), k (..., Tk, d),
    v (..., Tk, dv) Tensors -> (..., Tq, dv).

    mask: bool, broadcast to (..., Tq, Tk), True where a query may attend to a key;
    is_causal: also forbid j > i. return_weights=True returns (out, weights), the
    weights a read-only NumPy array (..., Tq, Tk), for plotting.
    """
    _check_qkv(q, k, v)
    allowed = _allowed_pairs(mask, is_causal, q.shape[-2], k.shape[-2])
    # TODO: scale = 1/√d (a Python float); scores = q's data @ k's data with its last
    #       two axes swapped, times scale; weights = masked_softmax(scores, allowed);
    #       out = weights @ v's data, recorded as the op "attention" with parents q, k,
    #       v and saved weights=weights, scale=scale.
    ### BEGIN SOLUTION
    scale = 1.0 / math.sqrt(q.shape[-1])                              # d = q.shape[-1]
    scores = (q.data @ np.swapaxes(k.data, -1, -2)) * scale           # (..., Tq, Tk)
    weights = masked_softmax(scores, allowed)                         # (..., Tq, Tk)
    out = q._result(weights @ v.data, "attention", q, k, v,           # (..., Tq, dv)
                    weights=weights, scale=scale)
    ### END SOLUTION
    weights.flags.writeable = False            # the rule needs them as they are
    return (out, weights) if return_weights else out

# %%
#| test: attention_forward (2 points)
def test_attention_forward():
    rng = np.random.default_rng(0)
    v = Tensor(rng.standard_normal((2, 5, 3)))
    out = scaled_dot_product_attention(Tensor(np.zeros((2, 4, 6))),
                                       Tensor(rng.standard_normal((2, 5, 6))), v)
    assert isinstance(out, Tensor) and out.shape == (2, 4, 3), (
        f"q (2, 4, 6), k (2, 5, 6), v (2, 5, 3) give (2, 4, 3), got "
        f"{getattr(out, 'shape', out)}")
    mean_v = v.data.mean(axis=1, keepdims=True).repeat(4, axis=1)
    assert np.allclose(out.data, mean_v, atol=1e-6), (
        "with q = 0 every score is 0, so every query reads the mean of the values; "
        f"expected {mean_v[0, 0].round(4).tolist()}, "
        f"got {out.data[0, 0].round(4).tolist()}")
    x = Tensor(rng.standard_normal((1, 4, 2)))
    out, weights = scaled_dot_product_attention(x, x, x, is_causal=True,
                                                return_weights=True)
    assert weights.shape == (1, 4, 4) and np.allclose(weights.sum(axis=-1), 1), (
        f"the weights (1, 4, 4): each row sums to 1; got sums {weights.sum(axis=-1)}")
    assert (weights[0][~causal_mask(4)] == 0).all(), (
        f"is_causal=True: every weight above the diagonal must be exactly 0, got\n"
        f"{weights[0]}")
    assert np.allclose(out.data[0, 0], x.data[0, 0]), (
        "with a causal mask the first position reads only itself: out[0] = v[0]")

test_attention_forward()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_close, assert_raises, cases, check_against


def _sdpa_oracle(q, k, v, allowed=None):
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if allowed is not None:
        s = np.where(allowed, s, -np.inf)
    top = s.max(axis=-1, keepdims=True)
    e = np.exp(s - np.where(np.isfinite(top), top, 0))
    total = e.sum(axis=-1, keepdims=True)
    return (e / np.where(total > 0, total, 1)) @ v


# (q, k, v) shapes: head sizes above 1 (where 1/d and 1/√d differ), Tq != Tk, T = 1,
# leading batch and head axes
_SHAPES = [((4, 5), (6, 5), (6, 3)), ((2, 3, 4, 8), (2, 3, 4, 8), (2, 3, 4, 8)),
           ((1, 1, 4), (1, 1, 4), (1, 1, 2)), ((3, 2, 6), (3, 7, 6), (3, 7, 2))]
for _shapes in _SHAPES:
    check_against(scaled_dot_product_attention, _sdpa_oracle,
                  cases([_shapes], magnitudes=("ordinary", "tiny")),
                  name=f"scaled_dot_product_attention{tuple(s for s in _shapes)}")
    if _shapes[0][-2] == _shapes[1][-2]:
        _T = _shapes[0][-2]
        check_against(lambda q, k, v: scaled_dot_product_attention(q, k, v, is_causal=True),
                      lambda q, k, v, T=_T: _sdpa_oracle(q, k, v, causal_mask(T)),
                      cases([_shapes], magnitudes=("ordinary",)),
                      name=f"scaled_dot_product_attention(is_causal=True){_shapes}")
# a boolean mask broadcast over the batch, one query allowed nothing (its output is 0)
_r = np.random.default_rng(31)
_allowed = _r.random((5, 6)) < 0.5
_allowed[2] = False
check_against(lambda q, k, v: scaled_dot_product_attention(q, k, v, mask=_allowed),
              lambda q, k, v: _sdpa_oracle(q, k, v, _allowed),
              cases([((2, 5, 4), (2, 6, 4), (2, 6, 3))], magnitudes=("ordinary",)),
              name="scaled_dot_product_attention(mask=(5, 6) bool, row 2 all False)")
# large scores do not overflow
_q = Tensor(_r.standard_normal((3, 4)) * 300)
with np.errstate(all="ignore"):
    _out = scaled_dot_product_attention(_q, _q, _q, is_causal=True)
assert np.isfinite(_out.data).all(), (
    "scores near 1e5 gave inf or nan: subtract each row's maximum before exp")
assert_raises(TypeError, scaled_dot_product_attention, _q, _q, _q, mask=np.ones((4, 4)),
              match="bool")
### END HIDDEN TESTS

# %% [markdown]
# The same attention from Tensor operations, for checking and timing (given): the mask enters
# as an added array of 0 and `-inf`.

# %%
from tinytorch.core.activations import Softmax


def attention_composed(q, k, v, allowed=None):
    """softmax(q kᵀ / √d) v from matmul, transpose, mul, add, Softmax: five nodes."""
    axes = list(range(k.ndim))
    axes[-2], axes[-1] = axes[-1], axes[-2]
    scores = (q @ k.transpose(axes)) * (1.0 / np.sqrt(q.shape[-1]))       # (..., Tq, Tk)
    if allowed is not None:
        blocked = np.where(allowed, 0.0, -np.inf)
        scores = scores + Tensor(blocked, dtype=q.dtype)
    return Softmax(dim=-1)(scores) @ v                                 # (..., Tq, dv)


def _step(fn, q, k, v):
    for t in (q, k, v):
        t.grad = None
    start = time.perf_counter()
    out = fn(q, k, v)
    out.backward(np.ones(out.shape, dtype=out.dtype))
    return time.perf_counter() - start, [t.grad.data for t in (q, k, v)]


_rng = np.random.default_rng(1)
_qkv = [Tensor(_rng.standard_normal((2, 3, 5, 4)), dtype=np.float64, requires_grad=True)
        for _ in range(3)]
_, _fused = _step(lambda q, k, v: scaled_dot_product_attention(q, k, v, is_causal=True),
                  *_qkv)
_, _composed = _step(lambda q, k, v: attention_composed(q, k, v, causal_mask(5)), *_qkv)
for _name, _a, _b in zip("qkv", _fused, _composed):
    print(f"d{_name}: largest difference fused vs composed {np.abs(_a - _b).max():.1e}")

# the gpt milestone's shapes: a batch of 32, 4 heads, 64 positions, head size 16
_qkv = [Tensor(_rng.standard_normal((32, 4, 64, 16)), requires_grad=True)
        for _ in range(3)]
_mask = causal_mask(64)
_ways = {"composed": lambda q, k, v: attention_composed(q, k, v, _mask),
         "one op": lambda q, k, v: scaled_dot_product_attention(q, k, v, is_causal=True)}
_times = {name: [] for name in _ways}
for _ in range(5):                                   # alternate, keep each one's best
    for _name, _fn in _ways.items():
        _times[_name].append(_step(_fn, *_qkv)[0])
for _name, _t in _times.items():
    print(f"{_name:>9}: {1000 * min(_t):6.1f} ms forward + backward, (32, 4, 64, 16)")

# %% [markdown]
# Measured here (NumPy 2.4, float32, one thread of a shared 2-core machine), the best of
# several runs: 17 ms as one op against 25 ms composed when the machine was quiet, 33 to
# 39 ms against 49 to 62 ms when it was busy; about 1.5x for one layer's attention in one
# training step. It is the same arithmetic; the one op skips the
# intermediate (B, H, T, T) arrays of the composed graph and the softmax rule's second pass
# of exponentials, which cost as much as a matrix product here.

# %%
#| test: attention_backward (2 points)
def test_attention_backward():
    assert "attention" in GRADIENTS, (
        'no rule for "attention" in GRADIENTS: decorate attention_grad with '
        '@register_gradient("attention")')
    rng = np.random.default_rng(2)
    q, k, v = (rng.standard_normal((2, 3, 2)) for _ in range(3))
    assert gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v), [q, k, v])
    assert gradcheck(
        lambda q, k, v: scaled_dot_product_attention(q, k, v, is_causal=True), [q, k, v])

test_attention_backward()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_dtype_kept, check_graph, untouched

_r = np.random.default_rng(32)
_partial = _r.random((4, 6)) < 0.6
_partial[1] = False                                  # a query that reads nothing
for _shapes, _kw in [(((2, 3, 4, 5),) * 3, {"is_causal": True}),
                     (((4, 3), (6, 3), (6, 2)), {"mask": _partial}),
                     (((2, 1, 4), (2, 5, 4), (2, 5, 3)), {}),
                     (((3, 2), (1, 3, 2), (3, 4)), {})]:           # k and v broadcast
    check_graph(lambda q, k, v, kw=_kw: scaled_dot_product_attention(q, k, v, **kw),
                [_r.standard_normal(s) for s in _shapes],
                name=f"scaled_dot_product_attention on {_shapes} with {sorted(_kw)}")
assert_dtype_kept(lambda q, k, v: scaled_dot_product_attention(q, k, v, is_causal=True),
                  shapes=((2, 3, 4),) * 3)
# the rule leaves the incoming gradient and the saved weights alone
_x = [Tensor(_r.standard_normal((2, 3, 4))) for _ in range(3)]
_out, _w = scaled_dot_product_attention(*_x, is_causal=True, return_weights=True)
untouched(attention_grad)(_r.standard_normal((2, 3, 4)), *_x, weights=_w, scale=0.5)
### END HIDDEN TESTS

# %% [markdown]
# ## Many heads
#
# One attention has one set of weights per query: it can look for one kind of relation at
# a time. **Multi-head attention** runs H attentions side by side on slices of the vector,
# each with its own query, key and value projection, and concatenates what they read:
# one head can follow the previous character while another looks for the start of a word.
# The cost is the same as one big head, because each head works on D/H numbers.
#
# ```
# x (B, T, D) --q_proj, k_proj, v_proj (Linear D -> D)--> q, k, v   (B, T, D)
# split:  (B, T, D) -> reshape (B, T, H, D/H) -> transpose (B, H, T, D/H)
# attend: each of the B·H heads: (T, D/H) -> (T, D/H), causal
# merge:  (B, H, T, D/H) -> transpose (B, T, H, D/H) -> reshape (B, T, D)
# out_proj (Linear D -> D)  -> (B, T, D)
# ```
#
# The transpose matters. `reshape(B, H, T, D/H)` straight from `(B, T, D)` gives the same
# shape and silently wrong heads: it cuts the sequence of numbers where a new *head* should
# begin but a new *position* begins, so a "head" mixes several positions' vectors.

# %%
#| export
def split_heads(x, num_heads):
    """(B, T, D) Tensor -> (B, H, T, D/H): head h holds columns h·D/H .. (h+1)·D/H-1."""
    batch, length, dim = x.shape
    # TODO: reshape to (B, T, H, D/H), then swap the T and H axes with transpose.
    ### BEGIN SOLUTION
    heads = x.reshape(batch, length, num_heads, dim // num_heads)      # (B, T, H, hs)
    return heads.transpose(0, 2, 1, 3)                                 # (B, H, T, hs)
    ### END SOLUTION


def merge_heads(x):
    """(B, H, T, hs) Tensor -> (B, T, H·hs): the heads side by side again."""
    batch, num_heads, length, head_size = x.shape
    # TODO: undo split_heads: transpose back to (B, T, H, hs), reshape to (B, T, H·hs).
    ### BEGIN SOLUTION
    x = x.transpose(0, 2, 1, 3)                                        # (B, T, H, hs)
    return x.reshape(batch, length, num_heads * head_size)            # (B, T, D)
    ### END SOLUTION


class MultiHeadAttention(Module):
    """num_heads attentions of size embed_dim / num_heads side by side, each reading the
    sequence through its own slice of the query, key and value projections.

    x (B, T, D) -> (B, T, D); causal=True lets position t read positions 0..t only.
    After a forward, `last_weights` holds the weights (B, H, T, T) as a NumPy array.

    >>> MultiHeadAttention(16, 4)(Tensor(np.zeros((2, 5, 16)))).shape
    (2, 5, 16)
    """

    def __init__(self, embed_dim, num_heads, causal=True, bias=True):
        super().__init__()
        if int(embed_dim) < 1 or int(num_heads) < 1 or int(embed_dim) % int(num_heads):
            raise ValueError(f"MultiHeadAttention: embed_dim must be a positive multiple "
                             f"of num_heads, got embed_dim={embed_dim}, "
                             f"num_heads={num_heads}")
        self.embed_dim, self.num_heads = int(embed_dim), int(num_heads)
        self.causal = bool(causal)
        self.q_proj = Linear(self.embed_dim, self.embed_dim, bias=bias)
        self.k_proj = Linear(self.embed_dim, self.embed_dim, bias=bias)
        self.v_proj = Linear(self.embed_dim, self.embed_dim, bias=bias)
        self.out_proj = Linear(self.embed_dim, self.embed_dim, bias=bias)
        self.last_weights = None

    def forward(self, x, mask=None):
        """x (B, T, D); mask: an optional bool (T, T) or (B, 1, T, T), True = may attend
        (combined with the causal mask)."""
        x = x if isinstance(x, Tensor) else Tensor(x)
        if x.ndim != 3 or x.shape[-1] != self.embed_dim:
            raise ValueError(f"MultiHeadAttention({self.embed_dim}, {self.num_heads}) "
                             f"expects x of shape (B, T, {self.embed_dim}), "
                             f"got {x.shape}")
        # TODO: project x to q, k, v and split each into heads; attend with
        #       is_causal=self.causal and mask, keeping the weights in self.last_weights;
        #       merge the heads and return out_proj of the result.
        ### BEGIN SOLUTION
        q = split_heads(self.q_proj(x), self.num_heads)               # (B, H, T, hs)
        k = split_heads(self.k_proj(x), self.num_heads)               # (B, H, T, hs)
        v = split_heads(self.v_proj(x), self.num_heads)               # (B, H, T, hs)
        out, self.last_weights = scaled_dot_product_attention(
            q, k, v, mask=mask, is_causal=self.causal, return_weights=True)
        return self.out_proj(merge_heads(out))                        # (B, T, D)
        ### END SOLUTION

    def extra_repr(self):
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"causal={self.causal}")

# %%
#| test: multi_head (3 points)
def test_multi_head():
    x = Tensor(np.arange(24.0).reshape(1, 2, 12))
    heads = split_heads(x, 3)
    assert heads.shape == (1, 3, 2, 4), (
        f"split_heads of (1, 2, 12) into 3 heads: (1, 3, 2, 4), got {heads.shape}")
    assert np.array_equal(merge_heads(heads).data, x.data), (
        "merge_heads(split_heads(x)) must give x back")
    manual_seed(0)
    mha = MultiHeadAttention(8, 1)
    x = Tensor(np.random.default_rng(3).standard_normal((2, 5, 8)))
    out = mha(x)
    assert out.shape == (2, 5, 8) and mha.last_weights.shape == (2, 1, 5, 5), (
        f"MultiHeadAttention(8, 1) on (2, 5, 8): out (2, 5, 8), last_weights "
        f"(2, 1, 5, 5); got {out.shape} and {getattr(mha.last_weights, 'shape', None)}")
    q, k, v = (p(x) for p in (mha.q_proj, mha.k_proj, mha.v_proj))       # (2, 5, 8) each
    attended = scaled_dot_product_attention(q, k, v, is_causal=True)
    expected = mha.out_proj(attended).data
    assert np.allclose(out.data, expected, atol=1e-5), (
        "with one head, MultiHeadAttention is out_proj(causal attention of q_proj(x), "
        f"k_proj(x), v_proj(x)); largest difference "
        f"{np.abs(out.data - expected).max():.3g}")
    names = [name for name, _ in MultiHeadAttention(8, 2).named_parameters()]
    expected = [f"{p}_proj.{w}" for p in "qkv" for w in ("weight", "bias")]
    expected += ["out_proj.weight", "out_proj.bias"]
    assert names == expected, (
        f"the four projections are Linear children q_proj, k_proj, v_proj, out_proj: "
        f"got {names}")

test_multi_head()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_close, check_graph


def _mha_oracle(x, mha, allowed):
    """Head by head, with explicit column slices: no reshape to get wrong."""
    params = {n: p.data.astype(np.float64) for n, p in mha.named_parameters()}
    proj = {n: x @ params[f"{n}.weight"] + params[f"{n}.bias"]
            for n in ("q_proj", "k_proj", "v_proj")}
    hs = mha.embed_dim // mha.num_heads
    outs = []
    for h in range(mha.num_heads):
        cols = slice(h * hs, (h + 1) * hs)
        q, k, v = (proj[n][..., cols] for n in ("q_proj", "k_proj", "v_proj"))
        s = np.where(allowed, q @ np.swapaxes(k, -1, -2) / np.sqrt(hs), -np.inf)
        w = np.exp(s - s.max(axis=-1, keepdims=True))
        outs.append(w / w.sum(axis=-1, keepdims=True) @ v)
    return (np.concatenate(outs, axis=-1) @ params["out_proj.weight"]
            + params["out_proj.bias"])


_r = np.random.default_rng(33)
for _dim, _heads, _shape, _causal in [(8, 2, (2, 5, 8), True), (12, 3, (1, 4, 12), True),
                                      (6, 3, (3, 1, 6), True), (8, 4, (2, 3, 8), False)]:
    manual_seed(_heads)
    _mha = MultiHeadAttention(_dim, _heads, causal=_causal)
    _x = _r.standard_normal(_shape)
    _allowed = causal_mask(_shape[1]) if _causal else np.ones((_shape[1],) * 2, bool)
    _case = f"MultiHeadAttention({_dim}, {_heads}, causal={_causal}) on x {_shape}"
    assert_close(_mha(Tensor(_x, dtype=np.float64)), _mha_oracle(_x, _mha, _allowed),
                 what=f"{_case}: head h reads columns h*D/H .. (h+1)*D/H of q, k, v")
    assert _mha.last_weights.shape == (_shape[0], _heads, _shape[1], _shape[1]), (
        f"{_case}: last_weights should be (B, H, T, T), got {_mha.last_weights.shape}")
    check_graph(lambda x, m=_mha: m(x), [_x], name=_case)
# causality: changing the last token changes nothing before it
manual_seed(5)
_mha = MultiHeadAttention(8, 4)
_x = _r.standard_normal((1, 6, 8))
_y = _x.copy()
_y[0, -1] += 1.0
_a, _b = _mha(Tensor(_x)).data, _mha(Tensor(_y)).data
assert np.allclose(_a[0, :-1], _b[0, :-1], atol=1e-6), (
    "MultiHeadAttention(8, 4): changing the last token changed earlier outputs, so a "
    "position reads the future. Split the heads with a transpose, after the reshape.")
### END HIDDEN TESTS

# %% [markdown]
# ## Where it looks
#
# A layer that has not learned anything looks almost uniformly at the past. Its weights,
# kept after the forward pass, are what the `gpt` milestone plots once trained:

# %%
manual_seed(0)
_mha = MultiHeadAttention(16, 4)
_x = Tensor(np.random.default_rng(0).standard_normal((1, 5, 16)))
_mha(_x)
print("head 0, untrained:\n", _mha.last_weights[0, 0])

# %% [markdown]
# ## What you built, and what comes next
#
# Attention lets every position read the earlier positions it chooses: scores from query
# and key, a softmax that gives masked entries exactly 0 and never overflows, the weighted
# average of the values. It is one recorded operation with one rule, which matches the
# composed version and is faster; multi-head attention runs several side by side by a
# reshape and a transpose.
#
# Attention only mixes vectors; it computes nothing new from each of them, and stacking
# layers of it alone trains badly. Module 14 adds what a Transformer block has around it
# (LayerNorm, an MLP, residual connections), stacks the blocks into a GPT, and trains it to
# write Shakespeare: **combine it all into a language model**.
