# %% [markdown]
# # Module 18: Compression — still too big: remove weights
#
# Module 17 stored every weight in 8 bits instead of 32: the model became 4× smaller and
# hardly worse. Fewer bits per weight stop paying soon after (4 bits already hurt). To go
# further, keep **fewer weights**. A trained network has many weights close to zero, whole
# channels that barely fire, and matrices with far more numbers than information. Four
# ways to exploit that, each built and measured here:
#
# | method | what goes | the matrices | faster with NumPy? |
# |---|---|---|---|
# | magnitude pruning | the smallest single weights | same shape, zeros inside | no |
# | structured pruning | whole channels / neurons | smaller | yes |
# | low rank (SVD) | one matrix becomes two thin ones | fewer numbers | yes, at low rank |
# | distillation | a big model teaches a small one | you choose | yes |
#
# Two questions follow every step: **is it smaller** (in which storage format?) and **is
# it still right** (what does the accuracy say, before and after fine-tuning?). A matrix
# with 90% zeros is exactly as big as a NumPy array, and exactly as slow to multiply: the
# zeros pay off only in a sparse format, or when whole rows and columns go.
#
# The timings printed in this notebook are a median of a few repeats after a warm-up, on
# whatever else your machine is doing; module 19 makes such measurements rigorous.

# %%
import numpy as np

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import gradcheck
from tinytorch.core.layers import Linear, Sequential, manual_seed
from tinytorch.core.optimizers import SGD
from tinytorch.core.spatial import BatchNorm2d, Conv2d, Flatten, MaxPool2d
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import Trainer
from tinytorch.datasets import load_mnist
from tinytorch.perf.acceleration import median_ms  # module 15's stopwatch

np.set_printoptions(precision=3, suppress=True)      # compact arrays in this notebook


# %% [markdown]
# ## Sparsity: how many weights are zero?
#
# The **sparsity** of a model is the fraction of its weights that are exactly zero. Which
# weights? The matrices: every parameter with two or more axes (a Linear's (in, out)
# matrix, a Conv2d's (C_out, C_in, K, K) kernels). Biases and BatchNorm's scales are a
# fraction of a percent of a model, and pruning leaves them alone.
#
# Count zeros over **all** matrices together, not layer by layer: a model with a
# 1,000-weight layer at 90% and a 10-weight layer at 0% is 89% sparse, not 45%. And a
# model with no matrix at all (only activations) has sparsity 0.0: nothing is zero
# because nothing is there. Dividing 0 by 0 is the bug to avoid.

# %%
#| export
import copy

import numpy as np

from tinytorch.core.autograd import register_gradient
from tinytorch.core.layers import Linear, Module, Parameter, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.spatial import BatchNorm2d, Conv2d
from tinytorch.core.tensor import Tensor


def weight_matrices(model):
    """{dotted name: Parameter} of every parameter of `model` with two or more axes: the
    matrices of Linear layers and the kernels of Conv2d layers, which pruning works on."""
    return {name: p for name, p in model.named_parameters() if p.ndim >= 2}


def _arrays(model_or_array):
    """The arrays to count: a Module's weight matrices, or the one array (a Tensor's)."""
    if isinstance(model_or_array, Module):
        return [p.data for p in weight_matrices(model_or_array).values()]
    if isinstance(model_or_array, Tensor):
        return [model_or_array.data]
    return [np.asarray(model_or_array)]


def sparsity(model_or_array):
    """The fraction of entries that are exactly zero, over all weight matrices of a model
    together (or over one array); 0.0 when there is no entry at all.

    >>> sparsity(np.array([[0.0, 1.0], [0.0, 0.0]]))
    0.75
    """
    arrays = _arrays(model_or_array)
    # TODO: count all entries of `arrays` and the zeros among them (np.count_nonzero
    #       counts the others). Return zeros / entries as a Python float, and 0.0 when
    #       there are no entries at all (an empty model).
    ### BEGIN SOLUTION
    total = sum(array.size for array in arrays)
    if total == 0:
        return 0.0
    zeros = sum(array.size - np.count_nonzero(array) for array in arrays)
    return zeros / total
    ### END SOLUTION


# %%
#| test: sparsity (2 points)
def test_sparsity():
    got = sparsity(np.array([[0.0, 1.0], [0.0, 0.0]]))
    assert got == 0.75 and isinstance(got, float), (
        f"sparsity([[0, 1], [0, 0]]) should be 0.75 (a float), got {got!r}")
    assert sparsity(Tensor([1.0, 2.0])) == 0.0, "no zero in [1, 2]: sparsity 0.0"
    manual_seed(0)
    model = Sequential(Linear(4, 3), ReLU(), Linear(3, 2))
    model[0].weight.data[0] = 0                      # 3 of the 12 + 6 matrix entries
    model[0].bias.data[...] = 0                      # biases do not count
    assert abs(sparsity(model) - 3 / 18) < 1e-12, (
        f"3 zeros among the 18 entries of the two weight matrices: expected "
        f"{3 / 18:.4f}, "
        f"got {sparsity(model)}. Count over both matrices together; biases do not count.")

test_sparsity()
### BEGIN HIDDEN TESTS
assert sparsity(Sequential(ReLU())) == 0.0, (
    "a model with no weight matrix has sparsity 0.0 (no division by zero)")
assert sparsity(np.zeros((0, 4))) == 0.0, "an empty array has sparsity 0.0"
_big, _small = Linear(100, 10), Linear(10, 1)
_big.weight.data[:90] = 0                              # 900 of 1000
_mixed = Sequential(_big, _small)
assert abs(sparsity(_mixed) - 900 / 1010) < 1e-12, (
    f"900 zeros among 1010 entries is {900 / 1010:.4f}, got {sparsity(_mixed)}: count "
    "over all matrices together, not the mean of each layer's sparsity")
assert sparsity(np.array([-0.0, 0.0, 1e-30])) == 2 / 3, "-0.0 is zero; 1e-30 is not"
### END HIDDEN TESTS

# %% [markdown]
# ## Magnitude pruning: zero the smallest weights
#
# The simplest guess at which weights matter: the big ones. A weight w contributes w·x to
# its output; with inputs of similar size, a tiny |w| contributes little. **Magnitude
# pruning** with `amount` = 1/3 removes the third of the weights with the smallest |w|:
#
# ```
# W = [[ 0.9 , -0.1 ,  0.4 ],     |W| sorted: 0.02 0.05 0.1 | 0.2 0.3 0.4 0.7 0.8 0.9
#      [-0.05,  0.7 , -0.3 ],     round(1/3 · 9) = 3 go: 0.02, 0.05 and 0.1
#      [ 0.2 , -0.8 ,  0.02]]
#
# mask = [[1, 0, 1],              W · mask = [[0.9,  0  , 0.4],
#         [0, 1, 1],                          [0  ,  0.7, -0.3],
#         [1, 1, 0]]                          [0.2, -0.8,  0  ]]
# ```
#
# The **mask** (True = kept) is what pruning produces; applying it zeroes the rest. Two
# details make the count exact:
#
# - **ties**: if the 3rd and 4th smallest are equal, a threshold `|w| <= t` would remove
#   both, 4 instead of 3. Rank the weights instead (`np.argsort(..., kind="stable")`:
#   equal magnitudes keep their row-major order) and cut the ranking at exactly k;
# - **zeros count as the smallest**, so pruning an already pruned model never revives one.
#
# **Per layer or global?** `scope="layer"` removes the same fraction from every matrix.
# `scope="global"` ranks all weights of the model together and removes the smallest
# anywhere: a layer whose weights are all small (a wide layer: its initial weights are
# ±1/sqrt(fan-in)) loses more than `amount`, a layer of large weights less. Global
# pruning usually loses less accuracy at the same total sparsity, but it can empty a
# layer.

# %%
#| export
#| id: pruning
def _check_amount(amount):
    """amount as a float in [0, 1], or a one-line ValueError."""
    number = isinstance(amount, (int, float, np.integer, np.floating))
    if isinstance(amount, bool) or not number or not 0 <= amount <= 1:
        raise ValueError(f"amount is the fraction to remove, a number in [0, 1]; got "
                         f"{amount!r}")
    return float(amount)


def prune_mask(magnitudes, amount):
    """A bool mask of the shape of `magnitudes`: False at its round(amount · size)
    smallest entries (equal ones in row-major order), True at the others.

    >>> prune_mask(np.array([0.3, 0.1, 0.2, 0.1]), 0.5)
    array([ True, False,  True, False])
    """
    amount = _check_amount(amount)
    flat = np.asarray(magnitudes).reshape(-1)
    # TODO: n = round(amount * number of entries). Rank the entries from the smallest
    #       with a stable argsort, mark the first n of that ranking False in an all-True
    #       bool vector `keep`. Exactly n entries go, even when several are equal.
    ### BEGIN SOLUTION
    n_pruned = round(amount * flat.size)
    order = np.argsort(flat, kind="stable")          # smallest first; ties by position
    keep = np.ones(flat.size, dtype=bool)
    keep[order[:n_pruned]] = False
    ### END SOLUTION
    return keep.reshape(np.shape(magnitudes))


def apply_masks(model, masks):
    """Zero, in place, every weight whose mask entry is False ({name: bool array}, as
    magnitude_prune returns). Call it after every optimizer step while fine-tuning: the
    step gives pruned weights a gradient and would grow them back."""
    params = dict(model.named_parameters())
    for name, keep in masks.items():
        if name not in params:
            raise ValueError(f"apply_masks: the model has no parameter {name!r}; its "
                             f"parameters are {list(params)}")
        param = params[name]
        if np.shape(keep) != param.shape:
            raise ValueError(f"apply_masks: the mask of {name!r} has shape "
                             f"{np.shape(keep)}, the parameter {param.shape}")
        param.data[~np.asarray(keep, dtype=bool)] = 0      # in place: same array
    return model


def magnitude_prune(model, amount, scope="layer"):
    """Zero the smallest |weights| of every weight matrix of `model`, in place, and return
    the masks {name: bool array, True = kept}.

    scope="layer": every matrix loses round(amount · its size) of its own weights.
    scope="global": round(amount · all weights) go, the smallest anywhere in the model.
    """
    amount = _check_amount(amount)
    if scope not in ("layer", "global"):
        raise ValueError(f"magnitude_prune: scope is 'layer' or 'global', got {scope!r}")
    weights = weight_matrices(model)
    # TODO: "layer": masks[name] = prune_mask(|w|, amount) for every matrix. "global":
    #       one prune_mask over the |w| of all matrices joined into one vector
    #       (np.concatenate of the flattened arrays), then cut that long mask back into
    #       one piece per matrix, in order, each reshaped to its matrix's shape.
    ### BEGIN SOLUTION
    if scope == "layer":
        masks = {name: prune_mask(np.abs(p.data), amount) for name, p in weights.items()}
    else:
        joined = np.concatenate([np.zeros(0, np.float32)]
                                + [np.abs(p.data).reshape(-1) for p in weights.values()])
        keep = prune_mask(joined, amount)
        masks, start = {}, 0
        for name, p in weights.items():
            masks[name] = keep[start:start + p.size].reshape(p.shape)
            start += p.size
    ### END SOLUTION
    apply_masks(model, masks)
    return masks


# %%
W = np.array([[0.9, -0.1, 0.4], [-0.05, 0.7, -0.3], [0.2, -0.8, 0.02]])
mask = prune_mask(np.abs(W), 1 / 3)
print("mask:\n", mask.astype(int), "\nW with the mask applied:\n", np.where(mask, W, 0))

manual_seed(0)
model = Sequential(Linear(64, 32), ReLU(), Linear(32, 8))
for scope in ("layer", "global"):
    trial = Sequential(Linear(64, 32), ReLU(), Linear(32, 8))
    trial.load_state_dict(model.state_dict())
    masks = magnitude_prune(trial, 0.5, scope=scope)
    per_layer = {name: f"{1 - keep.mean():.0%}" for name, keep in masks.items()}
    print(f"{scope:6}: model {sparsity(trial):.0%} sparse; per matrix {per_layer}")

# %%
#| test: magnitude_prune (3 points)
def test_magnitude_prune():
    W = np.array([[0.9, -0.1, 0.4], [-0.05, 0.7, -0.3], [0.2, -0.8, 0.02]])
    expected = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0]], dtype=bool)
    got = prune_mask(np.abs(W), 1 / 3)
    assert np.array_equal(got, expected), (
        f"prune_mask(|W|, 1/3) of the worked example: expected\n{expected}\ngot\n{got}")
    manual_seed(1)
    model = Sequential(Linear(10, 6), ReLU(), Linear(6, 4))
    masks = magnitude_prune(model, 0.5, scope="layer")
    assert set(masks) == {"0.weight", "2.weight"}, (
        f"one mask per weight matrix, named as in named_parameters(); got {set(masks)}")
    for name, p in weight_matrices(model).items():
        assert (p.data == 0).sum() == p.size // 2, (
            f"{name}: half of its {p.size} weights must be zero after amount=0.5, "
            f"got {(p.data == 0).sum()}")
        assert np.array_equal(masks[name], p.data != 0), f"{name}: mask = kept weights"
    manual_seed(2)
    model = Sequential(Linear(10, 6), ReLU(), Linear(6, 4))
    model[2].weight.data *= 100                      # big weights in the last layer
    magnitude_prune(model, 0.5, scope="global")
    assert (model[0].weight.data == 0).sum() + (model[2].weight.data == 0).sum() == 42, (
        "scope='global' removes round(0.5 * 84) = 42 weights in all")
    assert (model[2].weight.data == 0).sum() == 0, (
        "scope='global' ranks all weights together: the big ones of layer 2 all stay")

test_magnitude_prune()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_raises

_ties = np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 0.5]])
_k = prune_mask(_ties, 0.5)
assert (~_k).sum() == 3, (
    f"prune_mask of {_ties.tolist()} with amount 0.5 must remove exactly 3 entries even "
    f"though four equal 1.0; it removed {(~_k).sum()}: rank, do not threshold")
assert np.array_equal(_k, [[False, False, True], [True, True, False]]), (
    "ties go in row-major order (a stable argsort)")
_flat = prune_mask(np.ones(10), 0.3)
assert (~_flat).sum() == 3 and np.array_equal(np.flatnonzero(~_flat), [0, 1, 2]), (
    "ten equal weights, amount 0.3: exactly the first three go")
assert prune_mask(np.ones((2, 2)), 0.0).all()
assert not prune_mask(np.ones((2, 2)), 1.0).any()
manual_seed(5)
_m = Sequential(Linear(7, 5), ReLU(), Linear(5, 3))
_m[0].weight.data[...] = 0.25                           # every weight of layer 0 tied
_masks = magnitude_prune(_m, 0.4, scope="global")
assert sparsity(_m) == round(0.4 * 50) / 50, (
    f"global pruning of 50 weights with 35 tied: sparsity {round(0.4 * 50) / 50} "
    "exactly, "
    f"got {sparsity(_m)}")
_zeros = [(p.data == 0).sum() for p in weight_matrices(_m).values()]
_again = magnitude_prune(_m, 0.4, scope="layer")
for (_name, _p), _before in zip(weight_matrices(_m).items(), _zeros):
    assert (_p.data == 0).sum() == max(_before, round(0.4 * _p.size)), (
        f"{_name}: pruning again at 0.4 per layer counts its zeros as the smallest: "
        f"{max(_before, round(0.4 * _p.size))} zeros, got {(_p.data == 0).sum()}")
    assert (~_again[_name]).sum() == round(0.4 * _p.size), f"{_name}: the mask's count"
assert_raises(ValueError, magnitude_prune, _m, 1.5, match="amount")
assert_raises(ValueError, magnitude_prune, _m, 0.5, scope="row", match="scope")
assert magnitude_prune(Sequential(ReLU()), 0.5, scope="global") == {}
### END HIDDEN TESTS

# %% [markdown]
# ### Fine-tuning keeps the mask
#
# Pruning 90% of a trained network's weights costs accuracy; a few epochs of training
# afterwards (**fine-tuning**) win most of it back, the remaining 10% learning to do the
# work of all. But the optimizer knows nothing of the mask: a pruned weight gets a
# gradient like any other, SGD moves it off zero, momentum keeps moving it. So re-apply
# the masks **after every optimizer step**; module 08's Trainer calls `on_batch` right
# after each step, which is the place:
#
# ```python
# keep_pruned = lambda loss: apply_masks(model, masks)
# trainer.train_epoch(x, y, batch_size=64, on_batch=keep_pruned)
# ```

# %%
#| test: masks_survive_steps (2 points)
def test_masks_survive_steps():
    manual_seed(3)
    model = Sequential(Linear(6, 5), ReLU(), Linear(5, 3))
    masks = magnitude_prune(model, 0.6)
    before = sparsity(model)
    optimizer = SGD(model.parameters(), lr=0.5, momentum=0.9)
    x = Tensor(np.random.default_rng(0).standard_normal((8, 6)))
    for _ in range(3):
        optimizer.zero_grad()
        (model(x) * model(x)).sum().backward()
        optimizer.step()
        assert sparsity(model) < before, (
            "an SGD step should have regrown pruned weights (they have gradients)")
        apply_masks(model, masks)
        assert sparsity(model) == before, (
            f"after apply_masks the sparsity must be back at {before}, got "
            f"{sparsity(model)}")
        for name, p in weight_matrices(model).items():
            assert not p.data[~masks[name]].any(), f"{name}: a pruned weight regrew"

test_masks_survive_steps()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_raises

_m = Sequential(Linear(3, 2))
_w = _m[0].weight.data
apply_masks(_m, {"0.weight": np.array([[True, False], [False, True], [True, True]])})
assert _m[0].weight.data is _w, "apply_masks must zero in place: the optimizer holds it"
assert_raises(ValueError, apply_masks, _m, {"1.weight": np.ones((3, 2), bool)},
              match="1.weight")
assert_raises(ValueError, apply_masks, _m, {"0.weight": np.ones((2, 3), bool)},
              match="shape")
### END HIDDEN TESTS

# %% [markdown]
# ## Zeros are not free: dense GEMM and sparse formats
#
# A pruned matrix is still a dense NumPy array: 90% zeros take 90% of its bytes, and BLAS
# multiplies every one of them (it never looks at the values). The time is the same:

# %%
rng = np.random.default_rng(0)
x = rng.standard_normal((64, 784)).astype(np.float32)       # a batch of 64 digits
dense = rng.standard_normal((784, 128)).astype(np.float32)  # the mnist MLP's first matrix
pruned = dense * prune_mask(np.abs(dense), 0.9)             # 90% zeros, same shape
narrow = np.ascontiguousarray(dense[:, :13])                # 90% of the columns gone
for name, w in [("dense", dense), ("90% zeros", pruned), ("13 columns", narrow)]:
    ms = median_ms(lambda: x @ w, 30)                   # noqa: B023 (called right here)
    print(f"x @ W, W {name:10} {str(w.shape):11}: {ms:.3f} ms")

# %% [markdown]
# Zeros pay off in a **sparse format**, which stores only the non-zeros. The common one,
# **CSR** (compressed sparse row), keeps three arrays for a (rows, columns) matrix:
#
# ```
# [[5, 0, 0],     values      = [5, 2, 7]       the non-zeros, row by row
#  [0, 0, 2],     col_index   = [0, 2, 1]       their columns (int32: 4 bytes each)
#  [0, 7, 0]]     row_pointer = [0, 1, 2, 3]    where each row starts (rows + 1 of them)
# ```
#
# In float32, every non-zero costs 4 bytes of value **plus 4 bytes of index**: twice what
# the dense array pays per entry. So CSR is smaller only when fewer than about half of the
# entries are non-zero. Below, `csr_nbytes` counts exactly that. A model's size in CSR
# keeps every weight matrix in CSR (rows = its first axis; a Conv2d kernel as a (C_out,
# C_in·K·K) matrix) and the vectors (biases, BatchNorm's scales) dense; `dense_nbytes`
# counts every parameter as stored. NumPy cannot multiply CSR matrices: a sparse library
# (scipy.sparse) or sparse kernels on the hardware are where the speed of unstructured
# sparsity comes from, and they pay off only at high sparsity.

# %%
#| export
INDEX_BYTES = 4          # int32 column indices and row pointers


def dense_nbytes(model_or_array):
    """Bytes of every parameter of a model as stored (or of one array)."""
    if isinstance(model_or_array, Module):
        return int(sum(p.data.nbytes for p in model_or_array.parameters()))
    return int(_arrays(model_or_array)[0].nbytes)


def _csr_bytes(array):
    """Bytes of one array in CSR with int32 indices, as a (first axis, the rest)
    matrix."""
    matrix = np.atleast_2d(array)
    matrix = matrix.reshape(matrix.shape[0], -1)                  # (rows, columns)
    # TODO: the non-zeros cost their value (matrix.itemsize bytes) plus one int32 column
    #       index each (INDEX_BYTES); the row pointers are rows + 1 int32 numbers.
    ### BEGIN SOLUTION
    nonzeros = np.count_nonzero(matrix)
    row_pointers = matrix.shape[0] + 1
    return nonzeros * (matrix.itemsize + INDEX_BYTES) + row_pointers * INDEX_BYTES
    ### END SOLUTION


def csr_nbytes(model_or_array):
    """Bytes of a model with its weight matrices in CSR (int32 indices) and its other
    parameters dense; or of one array in CSR."""
    if not isinstance(model_or_array, Module):
        return int(_csr_bytes(_arrays(model_or_array)[0]))
    total = 0
    for p in model_or_array.parameters():
        total += _csr_bytes(p.data) if p.ndim >= 2 else p.data.nbytes
    return int(total)


# %%
example = np.array([[5, 0, 0], [0, 0, 2], [0, 7, 0]], dtype=np.float32)
print(f"the 3x3 example: dense {dense_nbytes(example)} bytes, CSR {csr_nbytes(example)}")
rows, cols = dense.shape
# density d at which d·R·C·(4 + 4) + (R + 1)·4 = R·C·4
break_even = (rows * cols * 4 - (rows + 1) * 4) / (rows * cols * 8)
print(f"784 x 128 float32: CSR is smaller above {1 - break_even:.1%} sparsity")
for amount in (0.0, 0.5, 0.9):
    w = dense * prune_mask(np.abs(dense), amount)
    print(f"  {amount:.0%} sparse: dense {dense_nbytes(w):,} bytes, "
          f"CSR {csr_nbytes(w):,}")

# %%
#| test: csr_nbytes (2 points)
def test_csr_nbytes():
    example = np.array([[5, 0, 0], [0, 0, 2], [0, 7, 0]], dtype=np.float32)
    assert csr_nbytes(example) == 3 * 4 + 3 * 4 + 4 * 4, (
        f"3 values (12 bytes) + 3 int32 column indices (12) + 4 row pointers (16) = 40 "
        f"bytes, got {csr_nbytes(example)}")
    assert dense_nbytes(example) == 36, "nine float32 numbers are 36 bytes dense"
    manual_seed(0)
    model = Sequential(Linear(4, 3), ReLU(), Linear(3, 2))
    model[0].weight.data[:2] = 0                    # rows 0, 1 empty: 6 non-zeros left
    expected = (6 * 8 + 5 * 4) + 3 * 4 + (6 * 8 + 4 * 4) + 2 * 4
    assert csr_nbytes(model) == expected, (
        f"two matrices in CSR (rows = first axis) plus two float32 biases dense: "
        f"expected "
        f"{expected} bytes, got {csr_nbytes(model)}")
    assert dense_nbytes(model) == (12 + 3 + 6 + 2) * 4

test_csr_nbytes()
### BEGIN HIDDEN TESTS
_k = np.zeros((4, 2, 3, 3), dtype=np.float32)          # a Conv2d kernel: (4, 18) in CSR
_k[1, 0, 2, 2] = _k[3, 1, 0, 0] = 1
assert csr_nbytes(_k) == 2 * 8 + 5 * 4, (
    f"a (4, 2, 3, 3) kernel is a (4, 18) matrix: got {csr_nbytes(_k)}")
assert csr_nbytes(np.ones((2, 5), dtype=np.float64)) == 10 * 12 + 3 * 4, (
    "float64 values are 8 bytes each, indices still 4")
assert csr_nbytes(np.zeros((3, 3), np.float32)) == 16, "no non-zero: only 4 row pointers"
### END HIDDEN TESTS

# %% [markdown]
# ## Structured pruning: remove whole channels
#
# To make a dense GEMM faster, the matrix must be **smaller**: remove whole output
# channels of a Conv2d (or output neurons of a Linear), and with them the matching inputs
# of the layer after. A (C_out, C_in, K, K) kernel that loses half its output channels
# becomes (C_out/2, C_in, K, K); the next kernel, (C_next, C_out, K, K), loses half its
# inputs: both convolutions do about half the work, or less.
#
# Which channels? The same guess as before, per channel: the **L1 norm** of the weights
# that make it (`sum |w[o]|` over C_in, K, K for a Conv2d; over the inputs, column o, for
# a Linear). Keep the largest, in their original order. Everything that follows the
# channel must be cut to match:
#
# ```
# Conv2d(1, 8) -> BatchNorm2d(8) -> ReLU -> Conv2d(8, 16) -> Flatten -> Linear(16·7·7, 10)
#   keep channels [0, 2, 5, 6] of the first conv:
# Conv2d(1, 4) -> BatchNorm2d(4) -> ReLU -> Conv2d(4, 16) -> ...          (16 unchanged)
# ```
#
# - **BatchNorm2d** keeps the scale, shift, running mean and running variance of the kept
#   channels (all four: in evaluation the running statistics are what it uses);
# - **after Flatten**, channel c of a (C, H, W) image is the H·W consecutive inputs
#   c·H·W ... c·H·W + H·W − 1 of the Linear (NCHW flattens channel by channel);
# - the model's **last** layer keeps all its outputs: they are the classes.
#
# The pruned model is a new one: the original stays as it was, to compare with. Check:
# its output is exactly the original's with the removed channels' weights set to zero
# (for a channel followed by BatchNorm, zero its scale and shift too, or the channel
# outputs β instead of 0).

# %%
#| export
def channel_scores(layer):
    """The L1 norm of the weights of each output channel of a Conv2d (C_out,) or output
    neuron of a Linear (out_features,)."""
    # TODO: |weight| summed over everything but the output axis: a Conv2d weight is
    #       (C_out, C_in, K, K), a Linear weight (in_features, out_features).
    ### BEGIN SOLUTION
    magnitude = np.abs(layer.weight.data)
    if isinstance(layer, Conv2d):
        return magnitude.sum(axis=(1, 2, 3))                        # (C_out,)
    return magnitude.sum(axis=0)                                    # (out_features,)
    ### END SOLUTION


def _cut(layer, keep_in=None, keep_out=None):
    """Cut, in place, a Conv2d or Linear to the input channels `keep_in` and the output
    channels `keep_out`, or a BatchNorm2d to the channels `keep_out` (None: keep all)."""
    if isinstance(layer, BatchNorm2d):
        for name in ("weight", "bias"):
            old = getattr(layer, name)
            setattr(layer, name, Parameter(old.data[keep_out], dtype=old.dtype))
        layer.running_mean = layer.running_mean[keep_out]
        layer.running_var = layer.running_var[keep_out]
        layer.num_features = len(keep_out)
        return layer
    w = layer.weight.data
    out_axis, in_axis = (0, 1) if isinstance(layer, Conv2d) else (1, 0)
    if keep_out is not None:
        w = np.take(w, keep_out, axis=out_axis)
        if layer.bias is not None:
            layer.bias = Parameter(layer.bias.data[keep_out], dtype=layer.bias.dtype)
    if keep_in is not None:
        w = np.take(w, keep_in, axis=in_axis)
    layer.weight = Parameter(w, dtype=w.dtype)
    if isinstance(layer, Conv2d):
        layer.out_channels, layer.in_channels = w.shape[0], w.shape[1]
    else:
        layer.in_features, layer.out_features = w.shape
    return layer


def prune_channels(model, amount):
    """A new, smaller copy of a Sequential `model`: every Conv2d and Linear but the last
    loses round(amount · its outputs) output channels (the smallest L1 norms; at least one
    stays), and what follows is cut to match. `model` itself is not changed."""
    amount = _check_amount(amount)
    if not isinstance(model, Sequential):
        raise TypeError(f"prune_channels works on a Sequential, got "
                        f"{type(model).__name__}")
    pruned = copy.deepcopy(model)
    layers = list(pruned)
    ends = [i for i, layer in enumerate(layers) if isinstance(layer, (Conv2d, Linear))]
    keep, channels = None, None     # the kept channels flowing forward, of how many
    for index, layer in enumerate(layers):
        if isinstance(layer, BatchNorm2d):
            if keep is not None:
                _cut(layer, keep_out=keep)
        elif isinstance(layer, (Conv2d, Linear)):
            keep_in = None
            if keep is not None:
                inputs = layer.weight.shape[1 if isinstance(layer, Conv2d) else 0]
                if inputs % channels:
                    raise ValueError(f"prune_channels: layer {index} takes {inputs} "
                                     f"inputs, not a multiple of the {channels} channels "
                                     "before it")
                spread = inputs // channels        # inputs per channel: H·W after Flatten
                # TODO: the inputs of this layer that belong to the kept channels: channel
                #       c feeds inputs c·spread ... c·spread + spread − 1 (spread is 1
                #       between two convolutions or two Linears), in increasing order.
                ### BEGIN SOLUTION
                keep_in = (keep[:, None] * spread + np.arange(spread)).reshape(-1)
                ### END SOLUTION
            keep = None
            if index != ends[-1]:
                scores = channel_scores(layer)
                channels = len(scores)
                n_keep = max(1, channels - round(amount * channels))
                # TODO: the n_keep channels with the largest scores, in increasing order
                #       (a stable argsort of the negated scores, then sorted).
                ### BEGIN SOLUTION
                keep = np.sort(np.argsort(-scores, kind="stable")[:n_keep])
                ### END SOLUTION
            _cut(layer, keep_in, keep)
        elif isinstance(layer, Module) and layer.parameters():
            raise TypeError(f"prune_channels: layer {index} ({type(layer).__name__}) "
                            "has parameters it cannot cut: use Conv2d, Linear, "
                            "BatchNorm2d and layers without parameters")
    return pruned


# %%
manual_seed(0)
cnn = Sequential(                                   # the cnn milestone's network
    Conv2d(1, 16, 3, padding=1), ReLU(), MaxPool2d(2),      # (N, 16, 14, 14)
    Conv2d(16, 32, 3, padding=1), ReLU(), MaxPool2d(2),     # (N, 32, 7, 7)
    Flatten(), Linear(32 * 7 * 7, 64), ReLU(), Linear(64, 10))
half = prune_channels(cnn, 0.5)
print(half)
images = Tensor(np.random.default_rng(0).random((64, 1, 28, 28)))
full_ms = median_ms(lambda: cnn(images), 5)
half_ms = median_ms(lambda: half(images), 5)
print(f"64 images: full {full_ms:.1f} ms, half the channels {half_ms:.1f} ms, "
      f"{full_ms / half_ms:.1f}x faster; {dense_nbytes(cnn):,} -> {dense_nbytes(half):,} "
      "bytes")

# %%
#| test: prune_channels (3 points)
def zero_removed(model, pruned):
    """A copy of `model` with every output channel that `pruned` dropped set to zero."""
    zeroed = copy.deepcopy(model)
    for old, new in zip(zeroed, pruned):
        if isinstance(old, Conv2d):
            gone = old.out_channels - new.out_channels
            drop = np.argsort(channel_scores(old), kind="stable")[:gone]
            old.weight.data[drop] = 0
            old.bias.data[drop] = 0
        elif isinstance(old, Linear) and old.out_features != new.out_features:
            gone = old.out_features - new.out_features
            drop = np.argsort(channel_scores(old), kind="stable")[:gone]
            old.weight.data[:, drop] = 0
            old.bias.data[drop] = 0
    return zeroed


def test_prune_channels():
    manual_seed(4)
    mlp = Sequential(Linear(6, 8), ReLU(), Linear(8, 4), ReLU(), Linear(4, 3))
    before = [p.data.copy() for p in mlp.parameters()]
    smaller = prune_channels(mlp, 0.5)
    shapes = [p.shape for p in smaller.parameters()]
    assert shapes == [(6, 4), (4,), (4, 2), (2,), (2, 3), (3,)], (
        f"Linear(6, 8) -> Linear(8, 4) -> Linear(4, 3) at amount 0.5 should become "
        f"(6, 4), (4, 2), (2, 3) weights; got {shapes}")
    assert all(np.array_equal(a, p.data) for a, p in zip(before, mlp.parameters())), (
        "prune_channels must leave the original model unchanged")
    assert np.allclose(channel_scores(mlp[0]), np.abs(mlp[0].weight.data).sum(axis=0))
    x = Tensor(np.random.default_rng(0).standard_normal((5, 6)))
    want = zero_removed(mlp, smaller)(x).data
    assert np.allclose(smaller(x).data, want, atol=1e-5), (
        "the pruned MLP must compute what the original does with the removed neurons' "
        "weights and biases zeroed: keep the largest L1 norms, cut the next inputs")
    convs = Sequential(Conv2d(2, 6, 3, padding=1), ReLU(), Conv2d(6, 4, 3))
    small = prune_channels(convs, 1 / 3)
    kernels = (small[0].weight.shape, small[2].weight.shape)
    assert kernels == ((4, 2, 3, 3), (4, 4, 3, 3)), (
        f"Conv2d(2, 6) -> Conv2d(6, 4) at amount 1/3: kernels (4, 2, 3, 3) and "
        f"(4, 4, 3, 3), got {kernels}")
    images = Tensor(np.random.default_rng(1).standard_normal((2, 2, 6, 5)))
    assert np.allclose(small(images).data, zero_removed(convs, small)(images).data,
                       atol=1e-5), (
        "the pruned convolutions must equal the zeroed original")

test_prune_channels()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_close, assert_raises

manual_seed(7)
_net = Sequential(Conv2d(1, 6, 3, padding=1), BatchNorm2d(6), ReLU(), MaxPool2d(2),
                  Conv2d(6, 8, 3, padding=1), BatchNorm2d(8), ReLU(),
                  Flatten(), Linear(8 * 3 * 2, 12), ReLU(), Linear(12, 5))
_r = np.random.default_rng(8)
for _bn in (_net[1], _net[5]):
    _bn.weight.data[...] = _r.uniform(0.5, 2, _bn.num_features)
    _bn.bias.data[...] = _r.standard_normal(_bn.num_features)
    _bn.running_mean = _r.standard_normal(_bn.num_features).astype(np.float32)
    _bn.running_var = _r.uniform(0.5, 2, _bn.num_features).astype(np.float32)
_net.eval()
_small = prune_channels(_net, 0.5)
assert [type(a) for a in _small] == [type(a) for a in _net] and not _small.training
assert (_small[1].num_features, _small[5].num_features, _small[8].weight.shape) == (
    3, 4, (4 * 6, 6)), "Conv 6->3, BN 3, Conv 8->4, BN 4, Linear (4 channels * 3*2, 6)"
_zeroed = zero_removed(_net, _small)
for _i in (0, 4):
    _drop = np.flatnonzero(~_zeroed[_i].weight.data.any(axis=(1, 2, 3)))
    _zeroed[_i + 1].weight.data[_drop] = 0
    _zeroed[_i + 1].bias.data[_drop] = 0
_x = Tensor(_r.standard_normal((3, 1, 7, 4)))
assert_close(_small(_x), _zeroed(_x).data, rtol=1e-5, atol=1e-5,
             what="the pruned Conv2d + BatchNorm2d + Flatten + Linear model against the "
                  "original with those channels zeroed (BatchNorm statistics and the "
                  "channel-major inputs of the Linear after Flatten cut to match)")
assert_close(prune_channels(_net, 0.0)(_x), _net(_x).data, rtol=1e-6, atol=1e-6,
             what="prune_channels(model, 0.0) keeps every channel and input in order: the "
                  "same outputs as the model")
assert prune_channels(_net, 1.0)[0].out_channels == 1, "at least one channel stays"
assert_raises(TypeError, prune_channels, Linear(3, 2), 0.5, match="Sequential")
### END HIDDEN TESTS

# %% [markdown]
# ## Low rank: one matrix as a product of two thin ones
#
# A Linear's (in, out) matrix W has in·out numbers, but a trained W is often close to a
# matrix of much lower **rank**. The singular value decomposition writes any W as
# `W = U · diag(s) · Vᵀ`, with s sorted from the largest; keeping the first r terms gives
# the best rank-r approximation there is (Eckart–Young), and its error is exactly what was
# dropped:
#
# ```
# ‖W − W_r‖ (Frobenius) = sqrt(s[r]² + s[r+1]² + ...)
# ```
#
# W_r factors into A = U_r·diag(sqrt(s_r)) of shape (in, r) and B = diag(sqrt(s_r))·V_rᵀ
# of shape (r, out): one Linear(in, out) becomes Linear(in, r, no bias) -> Linear(r, out),
# with r·(in + out) weights instead of in·out. For the mnist MLP's 784×128 matrix, rank 32
# keeps 29,184 of 100,352 weights (29%) and computes two smaller GEMMs; below rank
# in·out / (in + out) ≈ 110 it is both smaller and faster.

# %%
#| export
def low_rank(linear, rank):
    """Sequential(Linear(in, rank, bias=False), Linear(rank, out)) whose matrices A (in,
    rank) and B (rank, out) multiply to the best rank-`rank` approximation of
    linear.weight (truncated SVD, sqrt of the singular values on each side); the second
    Linear keeps the bias. `linear` itself is not changed."""
    if not isinstance(linear, Linear):
        raise TypeError(f"low_rank factors a Linear, got {type(linear).__name__}")
    w = linear.weight.data                                        # (in, out)
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not (
            1 <= rank <= min(w.shape)):
        raise ValueError(f"low_rank: rank must be a whole number from 1 to "
                         f"{min(w.shape)} for a {w.shape} matrix, got {rank!r}")
    u, s, vt = np.linalg.svd(w.astype(np.float64), full_matrices=False)
    # TODO: keep the first `rank` columns of u, values of s and rows of vt (s is sorted
    #       from the largest), then a = u·sqrt(s) (in, rank), b = sqrt(s)·vt (rank, out).
    ### BEGIN SOLUTION
    u, s, vt = u[:, :rank], s[:rank], vt[:rank]
    root = np.sqrt(s)
    a = u * root                                                  # (in, rank)
    b = root[:, None] * vt                                        # (rank, out)
    ### END SOLUTION
    first, second = copy.deepcopy(linear), copy.deepcopy(linear)
    first.weight, first.bias = Parameter(a, dtype=w.dtype), None
    first.in_features, first.out_features = a.shape
    second.weight = Parameter(b, dtype=w.dtype)
    second.in_features, second.out_features = b.shape
    return Sequential(first, second)


# %%
manual_seed(0)
layer = Linear(784, 128)
s = np.linalg.svd(layer.weight.data, compute_uv=False)
probe = Tensor(np.random.default_rng(0).random((64, 784)))
print(" rank  weights  share  error = sqrt(sum of dropped s^2)    ms")
for rank in (8, 32, 64, 128):
    factored = low_rank(layer, rank)
    a, b = factored[0].weight.data, factored[1].weight.data
    error = np.linalg.norm(layer.weight.data - a @ b)
    n = a.size + b.size
    ms = median_ms(lambda: factored(probe))          # noqa: B023 (called right here)
    print(f"{rank:5} {n:8,} {n / layer.weight.size:6.0%} {error:8.4f} = "
          f"{np.sqrt((s[rank:] ** 2).sum()):.4f} {ms:10.3f}")
print(f"dense Linear(784, 128): {median_ms(lambda: layer(probe)):.3f} ms")

# %% [markdown]
# A random matrix, like this untrained one, has no structure to find: its singular values
# fall slowly and every rank costs error. Trained weight matrices concentrate their
# energy in fewer directions; the benchmark measures what rank a trained layer needs.

# %%
#| test: low_rank_factors (2 points)
def test_low_rank():
    manual_seed(5)
    layer = Linear(7, 4)
    full = low_rank(layer, 4)
    assert [p.shape for p in full.parameters()] == [(7, 4), (4, 4), (4,)], (
        f"rank 4 of a (7, 4) Linear: A (7, 4) without bias, B (4, 4) with the bias; got "
        f"{[p.shape for p in full.parameters()]}")
    x = Tensor(np.random.default_rng(0).standard_normal((3, 7)))
    assert np.allclose(full(x).data, layer(x).data, atol=1e-5), (
        "at full rank the two Linears must reproduce the original")
    half = low_rank(layer, 2)
    assert (half[0].out_features, half[1].in_features) == (2, 2)
    assert half[0].bias is None and half[1].bias is not layer.bias

test_low_rank()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_raises, assert_untouched

manual_seed(9)
_lin = Linear(9, 6)
_w = _lin.weight.data.astype(np.float64)
_s = np.linalg.svd(_w, compute_uv=False)
for _r in (1, 3, 5):
    _f = low_rank(_lin, _r)
    _prod = _f[0].weight.data.astype(np.float64) @ _f[1].weight.data
    _err = np.linalg.norm(_w - _prod)
    assert abs(_err - np.sqrt((_s[_r:] ** 2).sum())) < 1e-5, (
        f"rank {_r}: the error ||W - A B|| must be sqrt of the sum of the dropped "
        f"squared "
        f"singular values, {np.sqrt((_s[_r:] ** 2).sum()):.6f}; got {_err:.6f}. Keep the "
        "LARGEST singular values (the first ones)")
    assert np.allclose(np.linalg.norm(_f[0].weight.data, axis=0),
                       np.linalg.norm(_f[1].weight.data, axis=1), atol=1e-5), (
        "split sqrt(s) evenly: A's columns and B's rows have equal norms")
assert_raises(ValueError, low_rank, _lin, 7, match="rank")
assert_raises(ValueError, low_rank, _lin, 0, match="rank")
# the Linear it factors stays as it was, and the factors are new arrays, not views of it
_f = assert_untouched(low_rank, _lin, 3, watch=[_lin.weight.data, _lin.bias.data])
assert not any(np.shares_memory(_q.data, _o.data) for _q in _f.parameters()
               for _o in _lin.parameters()), "the factors must not share memory with the Linear"
### END HIDDEN TESTS

# %% [markdown]
# ## Distillation: a small model learns from a big one
#
# Pruning and factoring shrink a trained model. **Knowledge distillation** (Hinton,
# Vinyals and Dean, 2015) trains a small **student** from scratch, with a big trained
# **teacher** as its guide. The teacher knows more than the labels say: for a 7 that looks
# a little like a 1, its probabilities might be 0.90 for "7", 0.09 for "1" and 0.01 for
# the rest. Those small numbers say which digits resemble which; the label "7" says
# nothing of it.
#
# A softmax at **temperature** T, softmax(z / T), makes them visible: T = 1 is the usual
# softmax, a larger T flattens it (the 0.09 grows, the 0.90 shrinks). The student learns
# to match the teacher's softened probabilities p = softmax(z_teacher / T) with its own
# q = softmax(z_student / T), by the Kullback–Leibler divergence, averaged over the batch:
#
# ```
# KL(p || q) = Σⱼ pⱼ · (log pⱼ − log qⱼ)          d KL / d z_student = (q − p) / T
# ```
#
# The gradient shrinks as 1/T and the difference q − p as about 1/T again, so the soft
# term is multiplied by **T²** to keep its gradients the size of the label's. With the
# usual cross-entropy on the labels, weighted by alpha:
#
# ```
# loss = alpha · T² · KL(p || q) + (1 − alpha) · CrossEntropy(z_student, labels)
# ```
#
# The KL term is one recorded operation with its rule registered for module 07's engine,
# as module 09 did for convolution; the teacher's logits are a constant (no gradient).

# %%
#| export
#| id: distillation_loss
def _log_softmax(z):
    """log softmax along the last axis, without overflow."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def soft_target_kl(student_logits, teacher_logits, temperature):
    """KL(softmax(teacher / T) || softmax(student / T)), the mean over the rows of (N, C)
    logits: one recorded op, "soft_target_kl" (the teacher's logits get no gradient)."""
    z = student_logits.data
    if isinstance(teacher_logits, Tensor):
        teacher_logits = teacher_logits.data
    teacher = np.asarray(teacher_logits, dtype=z.dtype)                # a constant
    if z.ndim != 2 or teacher.shape != z.shape:
        raise ValueError(f"soft_target_kl: student and teacher logits must both be "
                         f"(N, C), got {z.shape} and {teacher.shape}")
    # TODO: log p = _log_softmax(teacher / temperature), log q the same of z; p = exp(log
    #       p), q = exp(log q). kl = the sum over classes of p * (log p - log q), then
    #       the mean over the rows (a 0-d array of z's dtype).
    ### BEGIN SOLUTION
    log_p = _log_softmax(teacher / temperature)
    log_q = _log_softmax(z / temperature)
    p, q = np.exp(log_p), np.exp(log_q)
    kl = (p * (log_p - log_q)).sum(axis=-1).mean()
    ### END SOLUTION
    return student_logits._result(np.asarray(kl, dtype=z.dtype), "soft_target_kl",
                                  student_logits, p=p, q=q, temperature=temperature)


@register_gradient("soft_target_kl")
def soft_target_kl_grad(g, student, p, q, temperature):
    """d KL / d z_student = (q − p) / (T · N): the mean over N rows, softmax at T."""
    # TODO: return a one-element tuple: g times (q − p) divided by (temperature · rows).
    ### BEGIN SOLUTION
    return (g * (q - p) / (temperature * len(p)),)
    ### END SOLUTION


def distillation_loss(student_logits, teacher_logits, targets, temperature=4.0,
                      alpha=0.5):
    """alpha · T² · KL(softmax(teacher / T) || softmax(student / T)) + (1 − alpha) ·
    CrossEntropy(student, targets): a Tensor to call backward() on."""
    if not temperature > 0 or not 0 <= alpha <= 1:
        raise ValueError(f"distillation_loss needs temperature > 0 and alpha in [0, 1], "
                         f"got temperature={temperature}, alpha={alpha}")
    temperature, alpha = float(temperature), float(alpha)
    # TODO: the soft term soft_target_kl(...) times alpha · T², plus module 05's
    #       CrossEntropyLoss()(student_logits, targets) times (1 − alpha).
    ### BEGIN SOLUTION
    soft = soft_target_kl(student_logits, teacher_logits, temperature)
    hard = CrossEntropyLoss()(student_logits, targets)
    return soft * (alpha * temperature * temperature) + hard * (1 - alpha)
    ### END SOLUTION


# %%
student = Tensor([[2.0, 1.0, 0.1]], requires_grad=True)
teacher = Tensor([[3.0, 1.5, 0.0]])
for T in (1.0, 4.0):
    p = np.exp(_log_softmax(teacher.data / T))
    print(f"T = {T}: the teacher's softened probabilities {p[0]}")
loss = distillation_loss(student, teacher, np.array([0]), temperature=4.0, alpha=0.5)
loss.backward()
print(f"loss {loss.item():.4f}, d loss / d student {student.grad.data[0]}")

# %%
#| test: distillation (3 points)
def test_distillation():
    student = Tensor([[2.0, 1.0, 0.1], [0.0, 0.5, -1.0]], requires_grad=True)
    teacher = np.array([[3.0, 1.5, 0.0], [-1.0, 2.0, 0.0]])
    p = np.exp(teacher) / np.exp(teacher).sum(axis=1, keepdims=True)
    q = np.exp(student.data) / np.exp(student.data).sum(axis=1, keepdims=True)
    kl = (p * np.log(p / q)).sum(axis=1).mean()
    got = soft_target_kl(student, teacher, 1.0)
    assert abs(got.item() - kl) < 1e-5, f"KL(p || q) at T = 1: expected {kl}, got {got}"
    assert got.dtype == np.float32, "float32 logits give a float32 loss"
    assert abs(soft_target_kl(student, student.data, 3.0).item()) < 1e-6, (
        "a student that equals its teacher has KL 0 at every temperature")
    ce = -np.log(q[[0, 1], [0, 1]]).mean()
    loss = distillation_loss(student, teacher, np.array([0, 1]), temperature=1.0,
                             alpha=0.25)
    assert abs(loss.item() - (0.25 * kl + 0.75 * ce)) < 1e-5, (
        f"alpha · T² · KL + (1 − alpha) · CE at T = 1, alpha = 0.25: expected "
        f"{0.25 * kl + 0.75 * ce:.6f}, got {loss.item():.6f}")
    x = Tensor(student.data, dtype=np.float64, requires_grad=True)
    assert gradcheck(lambda z: soft_target_kl(z, teacher, 1.0), [x]), (
        "soft_target_kl_grad disagrees with central differences at T = 1")

test_distillation()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_close, check_graph

_r = np.random.default_rng(11)
_t = _r.standard_normal((5, 4)) * 3
for _T in (2.0, 4.0, 0.5):
    check_graph(lambda z, T=_T: soft_target_kl(z, _t, T), [_r.standard_normal((5, 4))],
                rtol=1e-5, atol=1e-8, name=f"soft_target_kl at T = {_T}")
_z = Tensor(_r.standard_normal((5, 4)), requires_grad=True)
_y = np.array([0, 1, 2, 3, 1])
_loss = distillation_loss(_z, _t, _y, temperature=4.0, alpha=0.7)
_p = np.exp(_log_softmax(_t / 4.0))
_q = np.exp(_log_softmax(_z.data.astype(np.float64) / 4.0))
_ce = -_log_softmax(_z.data.astype(np.float64))[np.arange(5), _y].mean()
_want = 0.7 * 16 * (_p * (np.log(_p) - np.log(_q))).sum(axis=1).mean() + 0.3 * _ce
assert abs(_loss.item() - _want) < 1e-4, (
    f"distillation_loss at T = 4, alpha = 0.7: expected {_want:.6f} (the soft term times "
    f"T² = 16), got {_loss.item():.6f}")
_loss.backward()
_soft = np.exp(_log_softmax(_z.data.astype(np.float64)))
_onehot = np.eye(4)[_y]
assert_close(_z.grad, 0.7 * 4.0 * (_q - _p) / 5 + 0.3 * (_soft - _onehot) / 5,
             rtol=1e-4, atol=1e-6, what="d distillation_loss / d student logits")
assert _z.grad.dtype == np.float32, "the gradient of float32 logits stays float32"
### END HIDDEN TESTS

# %% [markdown]
# ### A student MLP learns from a CNN teacher
#
# A small demo on the shipped digits, kept short: a CNN teacher trained for two epochs on
# 2,000 images, then the same tiny MLP (784 → 16 → 10) trained twice on only 500 of
# them: once on the labels alone, once with the teacher's soft targets (T = 4, alpha =
# 0.7). Both see the same batches; the accuracy on 1,000 test images is printed. The
# benchmark (`benchmarks/compression.py`) runs the full-size version.

# %%
digits = load_mnist()
# the shipped training images are sorted by digit: take 2,000 at random
chosen = np.random.default_rng(0).permutation(len(digits.x_train))[:2000]
x_train = digits.x_train[chosen].reshape(-1, 1, 28, 28)         # (2000, 1, 28, 28)
y_train = digits.y_train[chosen]
x_test, y_test = digits.x_test.reshape(-1, 1, 28, 28), digits.y_test
manual_seed(0)
teacher_net = Sequential(Conv2d(1, 8, 3, padding=1), ReLU(),
                         MaxPool2d(2),                       # (N, 8, 14, 14)
                         Flatten(), Linear(8 * 14 * 14, 10))
teacher_trainer = Trainer(teacher_net, CrossEntropyLoss(),
                          SGD(teacher_net.parameters(), lr=0.05, momentum=0.9))
teacher_trainer.fit(x_train, y_train, epochs=2, batch_size=64, progress=False)
print(f"teacher CNN: {teacher_trainer.evaluate(x_test, y_test)['accuracy']:.1%}")

few, labels = x_train[:500].reshape(500, 784), y_train[:500]     # (500, 784)
soft_targets = teacher_trainer.predict(x_train[:500])           # (500, 10) logits


def train_student(distill, epochs=15):
    manual_seed(1)
    net = Sequential(Linear(784, 16), ReLU(), Linear(16, 10))
    optimizer = SGD(net.parameters(), lr=0.1, momentum=0.9)
    order = np.random.default_rng(0)
    for _ in range(epochs):
        for batch in np.array_split(order.permutation(500), 8):
            logits = net(Tensor(few[batch]))
            if distill:
                loss = distillation_loss(logits, soft_targets[batch], labels[batch],
                                         temperature=4.0, alpha=0.7)
            else:
                loss = CrossEntropyLoss()(logits, labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    scores = net(Tensor(x_test.reshape(-1, 784))).data.argmax(axis=1)
    return (scores == y_test).mean()


print(f"student on the labels alone: {train_student(False):.1%}; "
      f"distilled from the CNN: {train_student(True):.1%}")

# %% [markdown]
# ## What you built
#
# - `sparsity`, `magnitude_prune` (per layer and global, exact counts), `apply_masks`
#   (after every optimizer step while fine-tuning);
# - `dense_nbytes` and `csr_nbytes`: zeros make a model smaller only in a sparse format,
#   and CSR with int32 indices pays off only above about 50% sparsity;
# - `prune_channels`: a smaller dense model, measurably faster, equal to the original with
#   those channels zeroed;
# - `low_rank`: a Linear as two thin ones, error = the dropped singular values;
# - `distillation_loss`: a student trained on a teacher's softened probabilities.
#
# `python -m benchmarks compression` measures them on the milestones' models: the mnist
# MLP at 90% sparsity after fine-tuning, the cnn's channels halved, and a distilled
# student.
# Every timing here was one run on a busy machine; module 19 builds the harness that says
# when a speed-up is real.
