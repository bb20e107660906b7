"""tinytorch.text.attention against PyTorch (CPU) as the oracle.

Over (batch, heads, T, head size) drawn by hypothesis, T = 1 included, with and without
`is_causal` and with boolean masks (rows with nothing allowed included),
scaled_dot_product_attention gives torch.nn.functional.scaled_dot_product_attention's
values and, through `loss.backward()`, its gradients for q, k and v; MultiHeadAttention
equals torch.nn.MultiheadAttention loaded with the same weights, in values, attention
weights and the gradients of the input and of every parameter. float64 to 1e-9, float32 to
1e-5. The one "attention" rule also equals the gradient of the same attention composed from
Tensor operations.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.activations import Softmax
from tinytorch.core.autograd import GRADIENT_SOURCES, GRADIENTS
from tinytorch.core.layers import manual_seed
from tinytorch.core.tensor import Tensor
from tinytorch.text.attention import (
    MultiHeadAttention,
    attention_grad,
    causal_mask,
    masked_softmax,
    merge_heads,
    scaled_dot_product_attention,
    split_heads,
)

SETTINGS = settings(max_examples=30, deadline=None)
TOL = {"float64": dict(rtol=1e-9, atol=1e-9), "float32": dict(rtol=1e-5, atol=1e-5)}


@st.composite
def attention_cases(draw):
    """q, k, v of shape (B, H, T, hs) (Tk may differ from Tq without a causal mask), a dtype,
    is_causal and an optional bool mask broadcast over the batch."""
    batch, heads = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    tq, size = draw(st.integers(1, 6)), draw(st.integers(1, 5))
    causal = draw(st.booleans())
    tk = tq if causal else draw(st.integers(1, 6))
    dtype = draw(st.sampled_from(["float32", "float64"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    q, k, v = (rng.standard_normal((batch, heads, t, size)).astype(dtype) for t in (tq, tk, tk))
    mask = rng.random((tq, tk)) < 0.7 if draw(st.booleans()) else None
    return q, k, v, dtype, causal, mask


def _leaves(arrays, dtype):
    ours = [Tensor(a, dtype=dtype, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    return ours, theirs


@SETTINGS
@given(attention_cases())
def test_sdpa_matches_torch_values_and_gradients(case):
    q, k, v, dtype, causal, mask = case
    ours, theirs = _leaves([q, k, v], dtype)
    out = scaled_dot_product_attention(*ours, mask=mask, is_causal=causal)
    if causal and mask is not None:          # torch takes one or the other: give it both
        torch_mask = torch.tensor(mask & causal_mask(q.shape[-2]))
        expected = F.scaled_dot_product_attention(*theirs, attn_mask=torch_mask)
    else:
        torch_mask = None if mask is None else torch.tensor(mask)
        expected = F.scaled_dot_product_attention(*theirs, attn_mask=torch_mask, is_causal=causal)
    assert out.dtype == np.dtype(dtype) and out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), **TOL[dtype])
    g = np.random.default_rng(0).uniform(0.5, 1.5, out.shape).astype(dtype)
    (out * Tensor(g, dtype=dtype)).sum().backward()
    (expected * torch.tensor(g)).sum().backward()
    for name, leaf, twin in zip("qkv", ours, theirs, strict=True):
        assert leaf.grad.dtype == np.dtype(dtype)
        np.testing.assert_allclose(leaf.grad.data, twin.grad.numpy(), **TOL[dtype],
                                   err_msg=f"gradient of {name}, causal={causal}, mask={mask}")


def _composed(q, k, v, allowed):
    """The same attention from matmul, transpose, mul, add and Softmax."""
    axes = list(range(k.ndim))
    axes[-2], axes[-1] = axes[-1], axes[-2]
    scores = (q @ k.transpose(axes)) * (1.0 / np.sqrt(q.shape[-1]))
    scores = scores + Tensor(np.where(allowed, 0.0, -np.inf), dtype=q.dtype)
    return Softmax(dim=-1)(scores) @ v


@pytest.mark.parametrize("shape", [(2, 3, 5, 4), (1, 1, 1, 3), (4, 7, 2)])
def test_the_one_rule_equals_the_composed_graph(shape):
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(shape) for _ in range(3)]
    g = rng.standard_normal(shape)
    grads = []
    for fn in (lambda q, k, v: scaled_dot_product_attention(q, k, v, is_causal=True),
               lambda q, k, v: _composed(q, k, v, causal_mask(shape[-2]))):
        leaves = [Tensor(a, dtype=np.float64, requires_grad=True) for a in arrays]
        fn(*leaves).backward(g)
        grads.append([leaf.grad.data for leaf in leaves])
    for ours, composed in zip(*grads, strict=True):
        np.testing.assert_allclose(ours, composed, rtol=1e-12, atol=1e-12)
    assert GRADIENTS["attention"] is attention_grad
    assert GRADIENT_SOURCES["attention"] == "tinytorch.text.attention.attention_grad"


def _torch_twin(mha):
    """torch.nn.MultiheadAttention holding mha's weights (ours are (in, out): transpose)."""
    dim = mha.embed_dim
    twin = torch.nn.MultiheadAttention(dim, mha.num_heads, batch_first=True, dtype=torch.float64)
    params = {name: torch.tensor(p.data, dtype=torch.float64) for name, p in mha.named_parameters()}
    with torch.no_grad():
        twin.in_proj_weight.copy_(torch.cat([params[f"{n}_proj.weight"].T for n in "qkv"]))
        twin.in_proj_bias.copy_(torch.cat([params[f"{n}_proj.bias"] for n in "qkv"]))
        twin.out_proj.weight.copy_(params["out_proj.weight"].T)
        twin.out_proj.bias.copy_(params["out_proj.bias"])
    return twin


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 3), st.integers(1, 6), st.sampled_from([(4, 1), (6, 2), (8, 4), (9, 3)]),
       st.booleans(), st.integers(0, 2**32 - 1))
def test_multi_head_attention_matches_a_torch_twin(batch, length, sizes, causal, seed):
    dim, heads = sizes
    manual_seed(seed)
    mha = MultiHeadAttention(dim, heads, causal=causal)
    for _, param in mha.named_parameters():
        param.data = param.data.astype(np.float64)
    twin = _torch_twin(mha)
    x = np.random.default_rng(seed).standard_normal((batch, length, dim))
    leaf, twin_leaf = Tensor(x, dtype=np.float64, requires_grad=True), torch.tensor(x, requires_grad=True)
    out = mha(leaf)
    blocked = torch.tensor(~causal_mask(length)) if causal else None     # torch: True = blocked
    expected, weights = twin(twin_leaf, twin_leaf, twin_leaf, attn_mask=blocked,
                             average_attn_weights=False)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), **TOL["float64"])
    assert isinstance(mha.last_weights, np.ndarray)
    np.testing.assert_allclose(mha.last_weights, weights.detach().numpy(), **TOL["float64"])
    g = np.random.default_rng(seed + 1).standard_normal(out.shape)
    out.backward(g)
    expected.backward(torch.tensor(g))
    np.testing.assert_allclose(leaf.grad.data, twin_leaf.grad.numpy(), **TOL["float64"])
    in_w, in_b = twin.in_proj_weight.grad.numpy(), twin.in_proj_bias.grad.numpy()
    for i, name in enumerate("qkv"):
        rows = slice(i * dim, (i + 1) * dim)
        proj = getattr(mha, f"{name}_proj")
        np.testing.assert_allclose(proj.weight.grad.data, in_w[rows].T, **TOL["float64"],
                                   err_msg=f"{name}_proj.weight")
        np.testing.assert_allclose(proj.bias.grad.data, in_b[rows], **TOL["float64"],
                                   err_msg=f"{name}_proj.bias")
    np.testing.assert_allclose(mha.out_proj.weight.grad.data, twin.out_proj.weight.grad.numpy().T,
                               **TOL["float64"])
    np.testing.assert_allclose(mha.out_proj.bias.grad.data, twin.out_proj.bias.grad.numpy(),
                               **TOL["float64"])


def test_float32_multi_head_attention_stays_float32_within_1e_5_of_float64():
    manual_seed(0)
    mha = MultiHeadAttention(8, 2)
    x = np.random.default_rng(0).standard_normal((2, 5, 8)).astype(np.float32)
    leaf = Tensor(x, requires_grad=True)
    out = mha(leaf)
    out.sum().backward()
    assert out.dtype == leaf.grad.dtype == mha.q_proj.weight.grad.dtype == np.float32
    twin = _torch_twin(mha)
    expected, _ = twin(*(torch.tensor(x, dtype=torch.float64),) * 3,
                       attn_mask=torch.tensor(~causal_mask(5)))
    np.testing.assert_allclose(out.data, expected.detach().numpy(), **TOL["float32"])


def test_masked_entries_get_exactly_zero_and_large_scores_do_not_overflow():
    s = np.array([[1e4, 0.0, -1e4], [800.0, 799.0, 5.0]], dtype=np.float32)
    w = masked_softmax(s, np.array([[True, False, True], [True, True, True]]))
    assert w[0, 1] == 0 and np.isfinite(w).all() and w.dtype == np.float32
    np.testing.assert_allclose(w[1, :2], [1 / (1 + np.exp(-1)), 1 / (1 + np.e)], rtol=1e-6)
    nothing = masked_softmax(np.ones((2, 3)), np.array([[False] * 3, [True] * 3]))
    np.testing.assert_array_equal(nothing[0], 0)


def test_a_query_that_may_read_nothing_gets_zero_output_and_zero_gradient():
    mask = np.array([[True, False], [False, False]])
    q, k, v = (Tensor(np.ones((2, 3)), dtype=np.float64, requires_grad=True) for _ in range(3))
    out = scaled_dot_product_attention(q, k, v, mask=mask)
    out.sum().backward()
    np.testing.assert_array_equal(out.data[1], 0)
    np.testing.assert_array_equal(q.grad.data[1], 0)


def test_causal_attention_never_reads_the_future():
    manual_seed(2)
    mha = MultiHeadAttention(12, 3)
    x = np.random.default_rng(2).standard_normal((2, 7, 12))
    later = x.copy()
    later[:, 4:] += 10.0
    np.testing.assert_allclose(mha(Tensor(later)).data[:, :4], mha(Tensor(x)).data[:, :4], atol=1e-5)
    assert np.all(mha.last_weights[..., ~causal_mask(7)] == 0)


def test_heads_split_and_merge_by_columns():
    x = Tensor(np.arange(2 * 3 * 6.0).reshape(2, 3, 6))
    heads = split_heads(x, 2)
    assert heads.shape == (2, 2, 3, 3)
    np.testing.assert_array_equal(heads.data[1, 1, 2], x.data[1, 2, 3:])      # head 1, position 2
    np.testing.assert_array_equal(merge_heads(heads).data, x.data)


@pytest.mark.parametrize(("call", "error", "words"), [
    (lambda: MultiHeadAttention(10, 3), ValueError, "multiple of num_heads"),
    (lambda: MultiHeadAttention(8, 2)(Tensor(np.zeros((2, 3, 6)))), ValueError, r"\(B, T, 8\)"),
    (lambda: scaled_dot_product_attention(*(Tensor(np.zeros((2, 3))),) * 3, mask=np.ones((2, 2))),
     TypeError, "bool"),
    (lambda: scaled_dot_product_attention(*(Tensor(np.zeros((2, 3))),) * 3,
                                          mask=np.ones((3, 2), bool)), ValueError, "broadcast"),
    (lambda: scaled_dot_product_attention(Tensor(np.zeros((2, 3))), Tensor(np.zeros((2, 4))),
                                          Tensor(np.zeros((2, 4)))), ValueError, "same d"),
])
def test_bad_input_gets_one_line_that_says_what_is_wrong(call, error, words):
    with pytest.raises(error, match=words) as raised:
        call()
    assert "\n" not in str(raised.value)
