"""tinytorch.text.embeddings against torch.nn.Embedding (CPU) as the oracle.

Over id shapes, table sizes and dtypes drawn by hypothesis (with repeated ids, which the
scatter-add must accumulate), Embedding gives torch's rows and, through `loss.backward()`,
torch's table gradient: float64 to 1e-9, float32 to 1e-5. The positional layers: the
learned one adds rows 0..T-1 and sends gradients to them, the sinusoidal table equals the
paper's formula computed here element by element, and both refuse T > max_len in one line.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.autograd import GRADIENT_SOURCES, GRADIENTS, gradcheck
from tinytorch.core.layers import manual_seed
from tinytorch.core.tensor import Tensor
from tinytorch.text.embeddings import (
    Embedding,
    PositionalEmbedding,
    SinusoidalPositionalEncoding,
    embedding,
    embedding_grad,
    sinusoidal_table,
)

SETTINGS = settings(max_examples=30, deadline=None)
TOL = {"float64": dict(rtol=1e-9, atol=1e-9), "float32": dict(rtol=1e-5, atol=1e-5)}


@st.composite
def lookups(draw):
    """(ids, table, dtype): ids of 0 to 3 axes drawn from a small vocabulary, so repeats are
    common, and a table of any width."""
    vocab, dim = draw(st.integers(1, 9)), draw(st.integers(1, 6))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=0, max_size=3)))
    dtype = draw(st.sampled_from(["float32", "float64"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ids = rng.integers(0, vocab, size=shape)
    return ids, rng.standard_normal((vocab, dim)).astype(dtype), dtype


@SETTINGS
@given(lookups())
def test_embedding_matches_torch_values_and_gradients(case):
    ids, table, dtype = case
    weight = Tensor(table, dtype=dtype, requires_grad=True)
    out = embedding(ids, weight)
    theirs = torch.nn.Embedding.from_pretrained(torch.tensor(table), freeze=False)
    expected = theirs(torch.tensor(ids))
    assert out.dtype == np.dtype(dtype) and out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), **TOL[dtype])
    g = np.random.default_rng(1).uniform(0.5, 1.5, out.shape).astype(dtype)
    (out * Tensor(g, dtype=dtype)).sum().backward()
    (expected * torch.tensor(g)).sum().backward()
    assert weight.grad.dtype == np.dtype(dtype)
    np.testing.assert_allclose(weight.grad.data, theirs.weight.grad.numpy(), **TOL[dtype],
                               err_msg=f"table gradient, ids {ids.tolist()}")


def test_repeated_ids_accumulate_and_the_layer_is_a_module():
    manual_seed(0)
    layer = Embedding(4, 2)
    ids = np.array([[3, 3, 3], [0, 3, 1]])
    layer(ids).sum().backward()
    np.testing.assert_array_equal(layer.weight.grad.data, [[1, 1], [1, 1], [0, 0], [4, 4]])
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    assert repr(layer) == "Embedding(4, 2)"
    manual_seed(0)
    np.testing.assert_array_equal(Embedding(4, 2).weight.data, layer.weight.data)


def test_ids_may_be_a_list_an_int_tensor_or_a_single_int():
    table = Tensor(np.arange(6.0).reshape(3, 2))
    np.testing.assert_array_equal(embedding([2, 0], table).data, [[4, 5], [0, 1]])
    np.testing.assert_array_equal(embedding(Tensor([1], dtype=np.int64), table).data, [[2, 3]])
    assert embedding(2, table).shape == (2,)
    assert embedding(np.zeros((0, 4), dtype=np.int64), table).shape == (0, 4, 2)


@pytest.mark.parametrize(("ids", "error", "words"), [
    ([0, 3], IndexError, "id 3 is outside the table's 3 rows"),
    ([-1], IndexError, "id -1"),
    (np.array([0.0, 1.0]), TypeError, "ids must be integers"),
    (Tensor([0, 1]), TypeError, "dtype=np.int64"),          # a float32 Tensor by default
])
def test_bad_ids_get_one_line_that_says_what_to_do(ids, error, words):
    with pytest.raises(error, match=words) as raised:
        embedding(ids, Tensor(np.zeros((3, 2))))
    assert "\n" not in str(raised.value)


def test_the_rule_sits_in_module_07s_table_and_passes_gradcheck():
    assert GRADIENTS["embedding"] is embedding_grad
    assert GRADIENT_SOURCES["embedding"] == "tinytorch.text.embeddings.embedding_grad"
    assert gradcheck(lambda w: embedding(np.array([[0, 2], [2, 2]]), w), [np.ones((3, 2))])


def _formula(max_len, dim):
    """Vaswani et al. (2017), section 3.5, one element at a time."""
    table = np.empty((max_len, dim))
    for pos in range(max_len):
        for col in range(dim):
            angle = pos / 10000 ** (2 * (col // 2) / dim)
            table[pos, col] = math.sin(angle) if col % 2 == 0 else math.cos(angle)
    return table


@pytest.mark.parametrize(("max_len", "dim"), [(1, 1), (5, 2), (9, 7), (64, 32), (20, 3)])
def test_sinusoidal_table_is_the_formula(max_len, dim):
    np.testing.assert_allclose(sinusoidal_table(max_len, dim), _formula(max_len, dim),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sinusoidal_encoding_adds_the_first_rows_in_the_inputs_dtype(dtype):
    layer = SinusoidalPositionalEncoding(16, 6)
    x = np.random.default_rng(0).standard_normal((3, 10, 6)).astype(dtype)
    leaf = Tensor(x, dtype=dtype, requires_grad=True)
    out = layer(leaf)
    assert out.dtype == np.dtype(dtype) and layer.parameters() == []
    np.testing.assert_allclose(out.data, x + _formula(16, 6)[:10], **TOL[dtype])
    out.sum().backward()
    np.testing.assert_array_equal(leaf.grad.data, np.ones_like(x))
    assert list(layer.state_dict()) == ["pe"]


def test_learned_positions_match_a_torch_twin():
    manual_seed(3)
    layer = PositionalEmbedding(8, 4)
    x = np.random.default_rng(2).standard_normal((2, 5, 4))
    leaf = Tensor(x, dtype=np.float64, requires_grad=True)
    layer.weight = Tensor(layer.weight.data, dtype=np.float64, requires_grad=True)
    g = np.random.default_rng(3).standard_normal((2, 5, 4))
    out = layer(leaf)
    (out * Tensor(g, dtype=np.float64)).sum().backward()
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(layer.weight.data, requires_grad=True)
    expected = tx + torch.nn.functional.embedding(torch.arange(5), tw)
    (expected * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(out.data, expected.detach().numpy(), **TOL["float64"])
    np.testing.assert_allclose(leaf.grad.data, tx.grad.numpy(), **TOL["float64"])
    np.testing.assert_allclose(layer.weight.grad.data, tw.grad.numpy(), **TOL["float64"])


@pytest.mark.parametrize("cls", [PositionalEmbedding, SinusoidalPositionalEncoding])
def test_past_max_len_is_one_line_naming_both_numbers_and_max_len_itself_fits(cls):
    layer = cls(6, 4)
    assert layer(Tensor(np.zeros((2, 6, 4)))).shape == (2, 6, 4)
    with pytest.raises(ValueError, match="7 positions but max_len is 6") as raised:
        layer(Tensor(np.zeros((2, 7, 4))))
    assert "\n" not in str(raised.value)
    with pytest.raises(ValueError, match=r"\(\.\.\., T, 4\)"):
        layer(Tensor(np.zeros((2, 3, 5))))


@pytest.mark.parametrize("cls", [Embedding, PositionalEmbedding, SinusoidalPositionalEncoding])
def test_sizes_must_be_positive(cls):
    with pytest.raises(ValueError, match="positive sizes"):
        cls(0, 4)
