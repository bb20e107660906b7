# %% [markdown]
# # Module 12: Embeddings — token ids need meaning and position
#
# Module 11 turned text into numbers: a tokenizer maps `"to be"` to a list of ids such as
# `[6, 4, 0, 1, 2]`. Those numbers are *names*, not quantities. Id 6 is not "more" than
# id 4, and `o` is not halfway between `b` and `r` because its id is. Fed to a `Linear`
# layer as they are, the ids would force exactly that reading on the model.
#
# The classic way out is **one-hot**: id `i` becomes a vector of vocabulary size with a 1 at
# position `i`. A `Linear` layer applied to a one-hot vector multiplies a matrix by a column
# that picks out one row of the weight matrix, and does a whole matrix product to do it. So
# skip the product: keep a table with one learned row per token, and *look the row up*.
# That table is an **embedding**, and its rows are the tokens' **meaning**: training moves
# tokens that behave alike (`a`, `e`, `o`) close together.
#
# Meaning is not enough. In `"dog bites man"` and `"man bites dog"` the same three vectors
# appear; only their order differs. The attention of module 13 mixes the vectors of a
# sequence with weights computed from the vectors themselves, so it cannot tell one order
# from the other. Each vector must also carry its **position**. This module builds:
#
# - `Embedding`: the lookup (a *gather*) and its gradient (a *scatter-add*, where a token
#   that occurs twice receives two gradients);
# - `PositionalEmbedding`: a learned vector per position, added to the token's;
# - `SinusoidalPositionalEncoding`: a fixed formula instead of a table, which still gives a
#   vector at a position never seen in training.
#
# First, the claim above, checked: a one-hot vector times `W` is a row of `W`.

# %%
import time

import numpy as np

from tinytorch.core.autograd import GRADIENTS, gradcheck
from tinytorch.core.layers import manual_seed
from tinytorch.core.tensor import Tensor

np.set_printoptions(precision=4, suppress=True)      # compact arrays in this notebook

text_demo = "to be or not to be"
vocab_demo = sorted(set(text_demo))                  # module 11's CharTokenizer does this
ids_demo = np.array([vocab_demo.index(c) for c in text_demo])
print("characters:", vocab_demo)
print("ids of 'to be':", ids_demo[:5])

W_demo = np.random.default_rng(0).standard_normal((len(vocab_demo), 3))   # (V, 3)
one_hot = np.eye(len(vocab_demo))[ids_demo[:5]]                           # (5, V)
print("one-hot @ W:\n", one_hot @ W_demo)                                 # (5, 3)
print("W[ids]:\n", W_demo[ids_demo[:5]])                                  # the same rows

# %% [markdown]
# ## The lookup: a gather
#
# `weight[ids]` is NumPy's *fancy indexing*: for ids of any shape, the result has that
# shape followed by the embedding size. A batch of `B` sequences of `T` ids, `(B, T)`,
# becomes `(B, T, D)` vectors: exactly what the rest of a language model reads.
#
# Your package file starts here: the cells marked `#| export` become
# `tinytorch/text/embeddings.py`. They use module 02's Tensor, module 04's `Module`,
# `Parameter` and seeded generator, and module 07's `register_gradient`, which puts this
# module's new operation, `"embedding"`, into the one `GRADIENTS` table.
#
# The ids are checked first (`_as_ids`, given): integers only, each in `[0, V)`. NumPy
# would read `-1` as "the last row" and a float id as an error deep inside NumPy; both
# deserve a clear sentence instead.

# %%
#| export
import numpy as np

from tinytorch.core.autograd import register_gradient
from tinytorch.core.layers import Module, Parameter, default_generator
from tinytorch.core.tensor import Tensor


def _as_ids(ids, num_embeddings):
    """ids (an int ndarray, a list, an int, or an integer Tensor) as an int64 array,
    checked to lie in [0, num_embeddings)."""
    if isinstance(ids, Tensor):
        ids = ids.data
    array = np.asarray(ids)
    if array.dtype.kind not in "iu":
        raise TypeError(
            f"embedding: ids must be integers, got dtype {array.dtype}: pass an int "
            "array or Tensor(ids, dtype=np.int64)")
    if array.size and (array.min() < 0 or array.max() >= num_embeddings):
        bad = array.min() if array.min() < 0 else array.max()
        raise IndexError(
            f"embedding: id {bad} is outside the table's {num_embeddings} rows "
            f"(ids run from 0 to {num_embeddings - 1})")
    return array.astype(np.int64, copy=False)


def embedding(ids, weight):
    """Row ids[...] of the table `weight` (V, D): ids of any shape (...) -> (..., D).

    >>> embedding([2, 0], Tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])).data
    array([[4., 5.],
           [0., 1.]], dtype=float32)
    """
    ids = _as_ids(ids, weight.shape[0])
    # TODO: gather the rows of weight.data named by ids (shape (..., D)) and return
    #       weight._result(rows, "embedding", weight, ids=ids): the table is the one
    #       parent, the ids are saved for the gradient rule.
    ### BEGIN SOLUTION
    rows = weight.data[ids]                                       # (..., D)
    return weight._result(rows, "embedding", weight, ids=ids)
    ### END SOLUTION

# %% [markdown]
# ### Test it: the lookup
#
# Each test cell checks the step just above it and says what it expected, what came, and a
# hint. The autograder adds more checks of the same step (more shapes, both float dtypes),
# so make the rule right, not only the example.

# %%
#| test: embedding_forward (2 points)
def test_embedding_forward():
    table = Tensor(np.arange(12.0).reshape(4, 3))
    out = embedding([3, 0, 3], table)
    assert isinstance(out, Tensor) and out.shape == (3, 3), (
        f"embedding([3, 0, 3], a (4, 3) table) should be a Tensor of shape (3, 3), "
        f"got {out!r}")
    assert np.array_equal(out.data, [[9, 10, 11], [0, 1, 2], [9, 10, 11]]), (
        f"expected rows 3, 0, 3 of the table, got {out.data.tolist()}")
    batch = np.array([[1, 2], [0, 1], [3, 3]])                      # (B=3, T=2)
    out = embedding(batch, table)
    assert out.shape == (3, 2, 3), (
        f"ids of shape (3, 2) with a table of width 3 give (3, 2, 3), got {out.shape}")
    assert np.array_equal(out.data[2, 1], table.data[3]), (
        "out[b, t] must be the row of ids[b, t]")
    out = embedding(Tensor([2, 1], dtype=np.int64), table)
    assert np.array_equal(out.data, table.data[[2, 1]]), (
        "an integer Tensor of ids must work like a list")

test_embedding_forward()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_raises, assert_untouched, cases, check_against

# Tables of both float dtypes and every magnitude, ids of 0, 1, 2 and 3 axes, repeated.
_r = np.random.default_rng(12)
for _ids_shape in [(), (5,), (2, 7), (3, 1, 4)]:
    _ids = _r.integers(0, 6, size=_ids_shape)
    check_against(lambda w, i=_ids: embedding(i, w), lambda w, i=_ids: w[i],
                  cases([(6, 4), (6, 1)]), name=f"embedding(ids of shape {_ids_shape})")
_table = Tensor(_r.standard_normal((5, 3)), dtype=np.float64)
_out = assert_untouched(embedding, np.array([[4, 0], [0, 4]]), _table)
assert _out.dtype == np.float64, (
    f"a float64 table must give float64 rows, got {_out.dtype}")
assert_raises(IndexError, embedding, [0, 5], _table, match="5")
assert_raises(IndexError, embedding, [-1], _table, match="-1")
assert_raises(TypeError, embedding, np.array([0.0, 1.0]), _table, match="integers")
### END HIDDEN TESTS

# %% [markdown]
# ## Its gradient: a scatter-add
#
# Row `ids[k]` of the table went to output position `k`, unchanged. So the gradient of the
# table is zero everywhere except the rows that were used, and row `i` receives the sum of
# the output gradients of every position whose id was `i`:
#
# ```
# ids = [3, 0, 3]         g = dL/d(out) = [[1, 1], [2, 2], [5, 5]]
# dL/dW row 0 = [2, 2]    row 3 = [1, 1] + [5, 5] = [6, 6]    rows 1, 2 = [0, 0]
# ```
#
# Repeated ids must **add**. `grad[ids] += g` looks right and is wrong: NumPy computes
# `grad[ids] + g` first and then writes each row once, so row 3 ends up `[5, 5]`, the last
# write. `np.add.at` is the unbuffered version that adds every occurrence. (In a language
# model repeated ids are the rule: a batch of 2,048 characters from a vocabulary of 65.)
#
# `np.add.at(grad, ids, g)` on a 2-D table is also slow: it walks the rows one index at a
# time. Two ways avoid that. Both flatten the problem: element `(i, j)` of the table is
# cell `i·D + j` of a 1-D array, so every gradient number knows its cell, and then either
# `np.bincount(cells, weights=g)` sums by cell, or `np.add.at` on the 1-D array does (a
# case NumPy optimizes). Measured below on a batch of 32 × 64 ids and a 1,000 × 64 table;
# here (NumPy 2.4, one thread of a shared 2-core machine, quiet to busy) row-wise
# `np.add.at` took 2.6 to 9 ms, `np.bincount` 0.9 to 3.5 ms and the 1-D `np.add.at` 0.8
# to 1.3 ms, the fastest in every run. Your machine prints its own figures.

# %%
_r = np.random.default_rng(0)
_ids = _r.integers(0, 1000, size=32 * 64)                          # (N,) flat ids
_g = _r.standard_normal((32 * 64, 64)).astype(np.float32)          # (N, D)


def scatter_rows():
    grad = np.zeros((1000, 64), np.float32)
    np.add.at(grad, _ids, _g)                                      # one row at a time
    return grad


def scatter_bincount():
    cells = (_ids[:, None] * 64 + np.arange(64)).reshape(-1)       # (N·D,)
    sums = np.bincount(cells, weights=_g.reshape(-1), minlength=1000 * 64)
    return sums.reshape(1000, 64).astype(np.float32)               # bincount is float64


def scatter_cells():
    cells = (_ids[:, None] * 64 + np.arange(64)).reshape(-1)       # (N·D,)
    grad = np.zeros(1000 * 64, np.float32)
    np.add.at(grad, cells, _g.reshape(-1))                         # 1-D: the fast path
    return grad.reshape(1000, 64)


for _fn in (scatter_rows, scatter_bincount, scatter_cells):
    assert np.allclose(_fn(), scatter_rows(), atol=1e-4)
    _start = time.perf_counter()
    for _ in range(10):
        _fn()
    print(f"{_fn.__name__:>16}: {100 * (time.perf_counter() - _start):6.2f} ms per call")

# %% [markdown]
# Write the rule with the cells: it keeps the gradient's dtype (float32 stays float32, no
# float64 detour) and was the fastest here. Module 07's engine calls it with `g` =
# dL/d(out) of shape `(..., D)`, the parent `weight`, and the saved `ids` of shape `(...)`;
# it returns one gradient per parent, a tuple of one array of the table's shape.

# %%
#| export
@register_gradient("embedding")
def embedding_grad(g, weight, ids):
    """dL/dW: row i is the sum of g over every position whose id is i (scatter-add)."""
    num, dim = weight.shape
    flat_ids = ids.reshape(-1)                                    # (N,): every position
    g_rows = g.reshape(-1, dim)                                   # (N, D)
    # TODO: add every row g_rows[k] into row flat_ids[k] of a zero table of weight's shape
    #       and g's dtype; repeated ids must add up. Return it as a 1-tuple.
    ### BEGIN SOLUTION
    cells = (flat_ids[:, None] * dim + np.arange(dim)).reshape(-1)    # (N·D,) flat cells
    grad = np.zeros(num * dim, dtype=g.dtype)
    np.add.at(grad, cells, g_rows.reshape(-1))
    return (grad.reshape(num, dim),)
    ### END SOLUTION


class Embedding(Module):
    """A table of num_embeddings learned vectors of size embedding_dim: forward(ids) looks
    up one row per id. ids of any shape (...) -> (..., embedding_dim).

    The weight starts standard normal, as PyTorch's nn.Embedding, drawn from module 04's
    seeded generator (see manual_seed).

    >>> Embedding(65, 16)(np.zeros((4, 8), dtype=np.int64)).shape
    (4, 8, 16)
    """

    def __init__(self, num_embeddings, embedding_dim):
        super().__init__()
        if int(num_embeddings) < 1 or int(embedding_dim) < 1:
            raise ValueError(f"Embedding needs positive sizes, got "
                             f"num_embeddings={num_embeddings}, "
                             f"embedding_dim={embedding_dim}")
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        shape = (self.num_embeddings, self.embedding_dim)
        self.weight = Parameter(default_generator().standard_normal(shape))

    def forward(self, ids):
        return embedding(ids, self.weight)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"

# %%
#| test: embedding_backward (2 points)
def test_embedding_backward():
    table = Tensor(np.zeros((4, 2)), requires_grad=True)
    out = embedding([3, 0, 3], table)
    out.backward(np.array([[1.0, 1.0], [2.0, 2.0], [5.0, 5.0]]))
    expected = [[2, 2], [0, 0], [0, 0], [6, 6]]
    assert table.grad is not None and np.array_equal(table.grad.data, expected), (
        f"ids [3, 0, 3], g [[1, 1], [2, 2], [5, 5]]: expected dL/dW {expected}, got "
        f"{None if table.grad is None else table.grad.data.tolist()}. Row 3 is used "
        "twice, so it receives g[0] + g[2]: add every occurrence, never assign.")
    assert "embedding" in GRADIENTS, (
        'no rule for "embedding" in GRADIENTS: decorate embedding_grad with '
        '@register_gradient("embedding")')
    assert gradcheck(lambda w: embedding([1, 2, 1, 0], w), [np.ones((3, 2))])
    manual_seed(0)
    layer = Embedding(5, 3)
    assert layer.weight.shape == (5, 3) and len(layer.parameters()) == 1, (
        "Embedding(5, 3) owns one Parameter, the (5, 3) table")

test_embedding_backward()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_dtype_kept, check_graph, untouched


def _scatter_oracle(ids):
    def grads(w, weights):
        grad = np.zeros_like(w)
        for k, i in enumerate(ids.reshape(-1)):       # the definition, one id at a time
            grad[i] += weights.reshape(-1, w.shape[1])[k]
        return [grad]
    return grads


# ids of 1, 2 and 3 axes (a batch of sentences), each with repeats, tables of several widths
_r = np.random.default_rng(121)
for _ids_shape, _table_shape in [((6,), (3, 4)), ((4, 5), (6, 3)), ((2, 3, 4), (5, 2)),
                                 ((3, 8), (2, 1))]:
    _ids = _r.integers(0, _table_shape[0], size=_ids_shape)
    check_graph(lambda w, i=_ids: embedding(i, w), [_r.standard_normal(_table_shape)],
                oracle_grads=_scatter_oracle(_ids),
                name=f"embedding(ids of shape {_ids_shape} with repeats, table "
                     f"{_table_shape})")
assert_dtype_kept(lambda w: embedding(np.array([[0, 2], [2, 2]]), w), shapes=((3, 4),))
# the rule leaves the incoming gradient alone
_g = _r.standard_normal((2, 3, 4))
untouched(embedding_grad)(_g, Tensor(np.zeros((5, 4))), np.array([[0, 1, 0], [4, 4, 4]]))
### END HIDDEN TESTS

# %% [markdown]
# ## An embedding alone is already a language model
#
# Give the table as many columns as there are tokens, `Embedding(V, V)`, and read row `i` as
# the scores (logits) of the token that follows token `i`. Trained with cross-entropy, row
# `i` learns how often each character follows `i`: a **bigram model**, the baseline that
# the `gpt` milestone must beat. On our tiny text it learns, for instance, that `t` is
# followed by `o` or ` `:

# %%
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import Adam

manual_seed(0)
bigram = Embedding(len(vocab_demo), len(vocab_demo))
optimizer, loss_fn = Adam(bigram.parameters(), lr=0.1), CrossEntropyLoss()
for step in range(100):
    logits = bigram(ids_demo[:-1])                   # (T-1, V): scores of the next id
    loss = loss_fn(logits, ids_demo[1:])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 25 == 0 or step == 99:
        print(f"step {step:3d}  loss {loss.item():.3f} nats per character")
_row = bigram.weight.data[vocab_demo.index("t")]                  # the scores after 't'
_probs = np.exp(_row - _row.max()) / np.exp(_row - _row.max()).sum()
_top = np.argsort(-_probs)[:3]
print("after 't':", {vocab_demo[i]: round(float(_probs[i]), 2) for i in _top})

# %% [markdown]
# ## Position, learned
#
# The simplest way to tell positions apart is to treat them like tokens: position `t` has
# an id, `t`, and a learned vector, row `t` of a second table. Add it to the token's vector:
#
# ```
# x (B, T, D):  token vectors        pos (T, D): rows 0..T-1 of the position table
# out = x + pos                      broadcast over the batch: (B, T, D)
# ```
#
# The table has `max_len` rows, so it knows positions `0 .. max_len-1` and nothing beyond.
# A longer input has no row to add; rather than letting NumPy fail with a shape error in
# the middle of a model (or, worse, silently reading the wrong rows), say so in one line,
# with both numbers. Both position classes share the check, `_sequence_length`.

# %%
#| export
def _sequence_length(x, max_len, dim, name):
    """T of x (..., T, D), after checking that D == dim and T <= max_len."""
    if x.ndim < 2 or x.shape[-1] != dim:
        raise ValueError(f"{name} expects inputs of shape (..., T, {dim}), got {x.shape}")
    length = x.shape[-2]
    # TODO: raise a ValueError naming the sequence length and max_len when the input is
    #       longer than the table (T positions need rows 0 .. T-1); else return it.
    ### BEGIN SOLUTION
    if length > max_len:
        raise ValueError(f"{name}: the sequence has {length} positions but max_len is "
                         f"{max_len}: crop the input to its last {max_len} tokens, or "
                         f"build the layer with max_len >= {length}")
    return length
    ### END SOLUTION


class PositionalEmbedding(Module):
    """A learned vector per position 0 .. max_len-1, added to the input:
    forward(x (B, T, D)) = x + weight[:T]. T > max_len is a ValueError.

    >>> PositionalEmbedding(8, 4)(Tensor(np.zeros((2, 5, 4)))).shape
    (2, 5, 4)
    """

    def __init__(self, max_len, dim):
        super().__init__()
        if int(max_len) < 1 or int(dim) < 1:
            raise ValueError(f"PositionalEmbedding needs positive sizes, got "
                             f"max_len={max_len}, dim={dim}")
        self.max_len, self.dim = int(max_len), int(dim)
        shape = (self.max_len, self.dim)
        self.weight = Parameter(default_generator().standard_normal(shape))

    def forward(self, x):
        x = x if isinstance(x, Tensor) else Tensor(x)
        length = _sequence_length(x, self.max_len, self.dim, "PositionalEmbedding")
        # TODO: look up the rows of positions 0 .. length-1 with embedding() (positions
        #       are ids too) and return x plus them: (T, D) broadcasts over (B, T, D).
        ### BEGIN SOLUTION
        positions = embedding(np.arange(length), self.weight)    # (T, D)
        return x + positions                                      # (B, T, D)
        ### END SOLUTION

    def extra_repr(self):
        return f"max_len={self.max_len}, dim={self.dim}"

# %%
#| test: positional_learned (2 points)
def test_positional_learned():
    manual_seed(0)
    layer = PositionalEmbedding(6, 3)
    x = Tensor(np.zeros((2, 4, 3)))
    out = layer(x)
    assert out.shape == (2, 4, 3), f"(2, 4, 3) in, (2, 4, 3) out; got {out.shape}"
    assert np.allclose(out.data[0], layer.weight.data[:4]) and np.allclose(
        out.data[1], layer.weight.data[:4]), (
        "PositionalEmbedding of zeros must give rows 0..T-1 of its table for every "
        "sequence of the batch")
    try:
        layer(Tensor(np.zeros((1, 8, 3))))
    except ValueError as error:
        assert "8" in str(error) and "6" in str(error), (
            f"the error should name the length 8 and max_len 6, got: {error}")
    else:
        raise AssertionError("8 positions through a table of 6 must raise ValueError")
    x = Tensor(np.ones((2, 3, 3)), requires_grad=True)
    layer(x).sum().backward()
    assert np.allclose(layer.weight.grad.data[:3], 2) and np.allclose(
        layer.weight.grad.data[3:], 0), (
        f"each used position row gets the gradient of both sequences (2), the rest 0; "
        f"got {layer.weight.grad.data.tolist()}")

test_positional_learned()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_raises, check_graph

# the last position the table holds is usable: T == max_len
manual_seed(1)
_layer = PositionalEmbedding(5, 2)
_out = _layer(Tensor(np.zeros((1, 5, 2))))
assert np.allclose(_out.data[0], _layer.weight.data), (
    "T == max_len must work and use every row of the table (positions 0 .. max_len-1)")
assert_raises(ValueError, _layer, Tensor(np.zeros((3, 6, 2))), match="6")
assert_raises(ValueError, _layer, Tensor(np.zeros((3, 2, 4))), match="2")
# one sequence (T, D) and a batch; gradients of the input and of the table


def _pos_fn(x, w):
    _layer.weight = w
    return _layer(x)


for _shape in [(4, 2), (3, 5, 2), (2, 1, 2)]:
    check_graph(_pos_fn, [np.random.default_rng(3).standard_normal(_shape),
                          np.random.default_rng(4).standard_normal((5, 2))],
                name=f"PositionalEmbedding(5, 2) on x {_shape}")
### END HIDDEN TESTS

# %% [markdown]
# ## Position, by a formula
#
# A learned table has two weaknesses: its size fixes the longest input for good, and rows
# of positions rarely seen in training stay close to their random start. The original
# Transformer (Vaswani et al., 2017) used a fixed table instead. Column pair `(2i, 2i+1)`
# is a sine and a cosine of the position at its own frequency, from 1 down to 1/10000:
#
# ```
# PE[pos, 2i]   = sin(pos / 10000^(2i/D))
# PE[pos, 2i+1] = cos(pos / 10000^(2i/D))
# ```
#
# For D = 4 the frequencies are 1 and 1/100, and the first positions are
#
# ```
# pos 0:  sin 0 = 0      cos 0 = 1       sin 0    = 0       cos 0    = 1
# pos 1:  sin 1 = 0.841  cos 1 = 0.540   sin 0.01 = 0.0100  cos 0.01 = 0.99995
# pos 2:  sin 2 = 0.909  cos 2 = -0.416  sin 0.02 = 0.0200  cos 0.02 = 0.9998
# ```
#
# The fast pairs tell near positions apart, the slow ones far positions, like the hands of
# a clock. Two properties follow from the formula. Every position has a vector, so an input
# longer than anything seen in training still gets one (whether the model *uses* it well
# is another matter; a learned table has no row to give at all). And moving `k` positions
# on turns each (sin, cos) pair by a fixed angle, so "k tokens back" is the same linear map
# at every position: something attention can learn once.
#
# An odd D has one more sine column than cosine columns. The table is computed once in
# float64 and kept as a buffer (saved with the weights, never learned); forward adds its
# first T rows in the input's dtype.

# %%
#| export
def sinusoidal_table(max_len, dim):
    """The (max_len, dim) float64 table PE[pos, 2i] = sin(pos / 10000^(2i/dim)),
    PE[pos, 2i+1] = cos(the same angle)."""
    positions = np.arange(max_len, dtype=np.float64)[:, None]    # (max_len, 1)
    # TODO: the frequency of pair i is 10000^(-2i/dim) for i = 0, 1, ... (one per
    #       even column); fill the even columns with the sines of positions * frequencies
    #       and the odd columns with the cosines (one fewer when dim is odd).
    ### BEGIN SOLUTION
    even = np.arange(0, dim, 2, dtype=np.float64)                # 2i: (ceil(dim/2),)
    angles = positions * 10000.0 ** (-even / dim)                # (max_len, ceil(dim/2))
    table = np.zeros((max_len, dim))
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles[:, :dim // 2])
    ### END SOLUTION
    return table


class SinusoidalPositionalEncoding(Module):
    """The fixed sine/cosine position vectors, added to the input: forward(x (B, T, D)) =
    x + PE[:T]. No parameters; the table is a buffer. T > max_len is a ValueError.

    >>> SinusoidalPositionalEncoding(8, 4)(Tensor(np.zeros((1, 2, 4)))).data[0, 1]
    array([0.84147096, 0.5403023 , 0.00999983, 0.99995   ], dtype=float32)
    """

    def __init__(self, max_len, dim):
        super().__init__()
        if int(max_len) < 1 or int(dim) < 1:
            raise ValueError(f"SinusoidalPositionalEncoding needs positive sizes, got "
                             f"max_len={max_len}, dim={dim}")
        self.max_len, self.dim = int(max_len), int(dim)
        self.register_buffer("pe", sinusoidal_table(self.max_len, self.dim))

    def forward(self, x):
        x = x if isinstance(x, Tensor) else Tensor(x)
        name = "SinusoidalPositionalEncoding"
        length = _sequence_length(x, self.max_len, self.dim, name)
        return x + Tensor(self.pe[:length], dtype=x.dtype)           # (B, T, D)

    def extra_repr(self):
        return f"max_len={self.max_len}, dim={self.dim}"

# %%
print(sinusoidal_table(3, 4))            # the worked example above

# %%
#| test: sinusoidal (2 points)
def test_sinusoidal():
    table = sinusoidal_table(5, 2)
    positions = np.arange(5.0)
    expected = np.stack([np.sin(positions), np.cos(positions)], axis=1)
    assert table.shape == (5, 2) and np.allclose(table, expected), (
        f"with dim 2 the only pair has frequency 1: [sin(pos), cos(pos)]; expected "
        f"{expected.round(4).tolist()}, got {np.round(table, 4).tolist()}")
    table = sinusoidal_table(50, 16)
    assert table.shape == (50, 16) and np.abs(table).max() <= 1, (
        f"sinusoidal_table(50, 16): shape (50, 16) and every value in [-1, 1], got "
        f"shape {table.shape}, largest |value| {np.abs(table).max():.3g}")
    assert np.allclose(table[:, 0], np.sin(np.arange(50))), (
        "column 0 is sin(pos): the first frequency is 10000^0 = 1")
    layer = SinusoidalPositionalEncoding(10, 16)
    assert layer.parameters() == [], "the sinusoidal encoding learns nothing"
    out = layer(Tensor(np.zeros((2, 7, 16))))
    assert out.shape == (2, 7, 16) and np.allclose(out.data[1], table[:7]), (
        "SinusoidalPositionalEncoding of zeros gives rows 0..T-1 of the table")

test_sinusoidal()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_close, assert_raises, cases, check_against, check_graph


def _formula(max_len, dim):
    """The paper's formula, element by element: an oracle independent of the solution."""
    out = np.zeros((max_len, dim))
    for pos in range(max_len):
        for col in range(dim):
            angle = pos / 10000 ** ((col - col % 2) / dim)
            out[pos, col] = np.sin(angle) if col % 2 == 0 else np.cos(angle)
    return out


for _max_len, _dim in [(7, 4), (12, 10), (9, 5), (3, 1), (40, 64)]:
    _table = sinusoidal_table(_max_len, _dim)
    assert _table.shape == (_max_len, _dim), (
        f"sinusoidal_table({_max_len}, {_dim}): expected shape {(_max_len, _dim)}, got "
        f"{_table.shape}")
    assert _table.dtype == np.float64, "the table is computed in float64"
    assert_close(_table, _formula(_max_len, _dim),
                 what=f"sinusoidal_table({_max_len}, {_dim}) against the formula: column "
                      "2i is sin(pos / 10000^(2i/D)), column 2i+1 the cosine of the same "
                      "angle")
# forward: every dtype and magnitude, a batch and one sequence, T == max_len allowed
_layer = SinusoidalPositionalEncoding(6, 5)
check_against(_layer, lambda x: x + _formula(6, 5)[:x.shape[-2]],
              cases([(2, 6, 5), (3, 5), (1, 1, 5)]),
              name="SinusoidalPositionalEncoding(6, 5)")
check_graph(_layer, [np.random.default_rng(8).standard_normal((2, 4, 5))],
            name="SinusoidalPositionalEncoding(6, 5)")
assert_raises(ValueError, _layer, Tensor(np.zeros((1, 7, 5))), match="7")
assert list(_layer.state_dict()) == ["pe"], (
    "the table is a buffer: state_dict() holds it as 'pe', parameters() holds nothing")
### END HIDDEN TESTS

# %% [markdown]
# The two position schemes side by side on one question: what vector does position 12 get
# from a layer built for 8 positions? The formula answers; the table cannot.

# %%
print("formula, position 12:", sinusoidal_table(13, 4)[12])
try:
    PositionalEmbedding(8, 4)(Tensor(np.zeros((1, 13, 4))))
except ValueError as error:
    print("learned table:", error)

# %% [markdown]
# ## What you built, and what comes next
#
# `Embedding` turns ids into learned vectors with a gather, and its gradient scatters back
# with an add, so a token used a hundred times in a batch learns from all hundred uses.
# Positions enter either as a second learned table or as the fixed sine/cosine formula,
# added to the token vectors, and both refuse an input longer than they were built for.
# Alone, an embedding table is a bigram model: each token predicts the next from itself.
#
# Every vector still knows only its own token and position. To predict what follows
# `"to be or not to "`, the model must look back along the sequence and decide which
# earlier tokens matter: **sequences need relationships**. Module 13 builds attention.
