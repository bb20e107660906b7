# %% [markdown]
# # Module 10: DataLoader — one sample at a time is too slow
#
# Module 08's Trainer cuts arrays held in memory into mini-batches. Why mini-batches at all?
# Because the obvious loop, one example per step, spends its time in Python, not in
# arithmetic. Here is the same model trained for one epoch on the same 2,000 examples, first
# one sample at a time, then 64 at a time, measured.
#
# ## The problem, measured

# %%
import time

import numpy as np

from tinytorch.core.layers import Linear, manual_seed
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import SGD
from tinytorch.core.tensor import Tensor

_rng = np.random.default_rng(0)
x_demo = _rng.standard_normal((2000, 64)).astype(np.float32)
y_demo = _rng.integers(0, 10, 2000)


def one_epoch(batch_size):
    manual_seed(0)
    model, loss_fn = Linear(64, 10), CrossEntropyLoss()
    optimizer = SGD(model.parameters(), lr=0.01)
    start = time.perf_counter()
    for first in range(0, len(x_demo), batch_size):
        xb, yb = x_demo[first:first + batch_size], y_demo[first:first + batch_size]
        loss = loss_fn(model(Tensor(xb)), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


per_sample, batched = one_epoch(1), one_epoch(64)
print(f"one epoch, one sample per step:  {1000 * per_sample:7.1f} ms  (2,000 steps)")
print(f"one epoch, 64 samples per step:  {1000 * batched:7.1f} ms  (32 steps)")
print(f"batching is {per_sample / batched:.0f}x faster here")

# %% [markdown]
# Every step pays a fixed price in Python (building Tensors, recording the graph, walking it
# backwards, updating each parameter) whatever its size; the arithmetic of 64 rows costs
# hardly more than that of one, because NumPy does it in one call. So we feed the model
# **batches**: a stack of examples along a new first axis, `(B, ...)`.
#
# The same holds one step earlier, where the batch is *assembled*. A data set that hands out
# one example at a time, stacked into a batch by a Python loop, pays per example again. If
# the data is an array, `x[indices]` takes a whole batch in one NumPy call:

# %%
images = _rng.integers(0, 256, (10_000, 3, 32, 32), dtype=np.uint8)   # like CIFAR-10
order = _rng.permutation(len(images))


def per_sample_batches():
    starts = range(0, len(order), 64)
    return [np.stack([images[i] for i in order[s:s + 64]]) for s in starts]


def indexed_batches():
    return [images[order[s:s + 64]] for s in range(0, len(order), 64)]


for name, make in (("per sample, then np.stack", per_sample_batches),
                   ("one index array per batch", indexed_batches)):
    start = time.perf_counter()
    make()
    ms = 1000 * (time.perf_counter() - start)
    print(f"{name:26}: {ms:6.1f} ms for one epoch of batches")

# %% [markdown]
# For images this large, copying the pixels is most of the work either way, and one index
# array still saves the per-example Python; for small examples (a row of features, a
# token id) the per-example loop is nearly all of the cost. **One sample at a time is too
# slow**, in the model and in the pipeline that feeds it. This
# module writes the pipeline PyTorch users know, so that training code reads
# `for x, y in loader:` whatever the data:
#
# | piece | what it does |
# |---|---|
# | `Dataset` | anything with `len(ds)` and `ds[i]` (one example, e.g. an `(image, label)` pair) |
# | `TensorDataset(x, y, ...)` | a Dataset over arrays of the same length; `ds[index_array]` gives a whole batch at once |
# | `default_collate(samples)` | a list of examples -> one batch of Tensors (stacked along a new axis 0) |
# | `DataLoader(ds, batch_size, shuffle, drop_last, seed, transform)` | an epoch of batches, in a seeded, new order each epoch |
# | `Normalize`, `RandomCrop`, `RandomHorizontalFlip`, `Compose` | transforms: data augmentation for images |
#
# The CIFAR-10 reader itself (`tinytorch.datasets.load_cifar10`, the official python batches,
# checksums, safe extraction, the cache folder and the download) is course-provided: it is
# file-format work, not the lesson. Its result is plain arrays, ready for `TensorDataset`.
#
# Your package file starts here: the cells marked `#| export` become `tinytorch/data.py`.
# It needs NumPy and module 02's Tensor only.

# %%
#| export
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinytorch.core.tensor import Tensor

# %% [markdown]
# ## Dataset and TensorDataset
#
# A `Dataset` is a protocol, as in PyTorch: `__len__` says how many examples, `__getitem__(i)`
# returns example `i`. A subclass may read files, decode images, tokenize text: the loader
# does not care.
#
# The most common case is arrays already in memory: `TensorDataset(x, y)`. `ds[i]` is the
# tuple `(x[i], y[i])`, NumPy arrays (or NumPy scalars). Because it is backed by arrays, it
# can do better than one example at a time: `ds[index_array]` is `(x[index_array],
# y[index_array])`, a whole batch in one NumPy call each. The loader uses that fast path.
#
# ```
# x = [[0, 1], [2, 3], [4, 5]]     y = [7, 8, 9]
# ds[1]          -> ([2, 3], 8)
# ds[[2, 0]]     -> ([[4, 5], [0, 1]], [9, 7])
# ```
#
# Tensors are accepted too (their `.data` is stored), and all arrays must have the same
# first dimension: a mismatch is a `ValueError` now, not a wrong pairing later.

# %%
#| export
#| id: TensorDataset
def _as_array(values):
    """The NumPy array behind a Tensor, or the values as an array."""
    return values.data if isinstance(values, Tensor) else np.asarray(values)


class Dataset:
    """A data set: `len(ds)` examples, `ds[i]` the i-th one. Subclasses define both."""

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")


class TensorDataset(Dataset):
    """Arrays (or Tensors) of the same length, indexed together:
    `ds[i] == (a[i], b[i], ...)`. An index array gives a whole batch:
    `ds[[3, 1]] == (a[[3, 1]], b[[3, 1]], ...)`."""

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("TensorDataset needs at least one array")
        self.arrays = tuple(_as_array(a) for a in arrays)
        lengths = [len(a) if a.ndim else None for a in self.arrays]
        if None in lengths or len(set(lengths)) != 1:
            raise ValueError(f"TensorDataset: all arrays need the same first dimension, "
                             f"got shapes {[a.shape for a in self.arrays]}")

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, index):
        # TODO: return a tuple holding each array indexed by `index` (an int or an index
        #       array).
        ### BEGIN SOLUTION
        return tuple(a[index] for a in self.arrays)
        ### END SOLUTION

# %% [markdown]
# ### Test it: datasets
#
# Each test cell checks the step just above it and says what it expected, what came, and a
# hint. The autograder adds more checks of the same topic (other sizes, other dtypes), so make the rule right,
# not only the example.
#
# `tiny()` is the tests' data set: ten examples of two features, labels 0, 10, ..., 90.

# %%
def tiny():
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10) * 10
    return x, y

# %%
#| test: tensor_dataset (1 point)
def test_tensor_dataset():
    x, y = tiny()
    ds = TensorDataset(x, y)
    assert len(ds) == 10, f"len(TensorDataset(x, y)) should be 10, got {len(ds)}"
    xi, yi = ds[3]
    assert np.array_equal(xi, x[3]) and yi == 30, (
        f"ds[3] should be (x[3], y[3]) = ({x[3]}, 30), got ({xi}, {yi})")
    xb, yb = ds[np.array([4, 1])]
    assert np.array_equal(xb, x[[4, 1]]) and np.array_equal(yb, [40, 10]), (
        f"ds[[4, 1]] should be (x[[4, 1]], y[[4, 1]]), a whole batch; got {xb}, {yb}")

test_tensor_dataset()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_raises

_ds = TensorDataset(Tensor([[1.0, 2.0], [3.0, 4.0]]))
_item = _ds[1]
assert isinstance(_item, tuple) and len(_item) == 1, (
    f"TensorDataset(one Tensor)[1] should be a 1-tuple, got {_item!r}")
assert np.array_equal(_item[0], [3, 4]), (
    f"TensorDataset(one Tensor)[1] should be the 1-tuple (array([3, 4]),), got "
    f"{_item!r}: one array gives 1-tuples, and Tensors are stored as arrays")
_a, _b, _c = TensorDataset(np.zeros((5, 3)), np.ones(5), np.arange(5))[2:4]
assert _a.shape == (2, 3) and _b.shape == (2,) and _c.tolist() == [2, 3], (
    "TensorDataset(three arrays)[2:4]: a slice indexes every array the same way")
assert_raises(ValueError, TensorDataset, np.zeros(4), np.zeros(5))
### END HIDDEN TESTS

# %% [markdown]
# ## Collate: a list of examples becomes a batch
#
# A general Dataset returns one example at a time, so the loader asks for `batch_size` of
# them and **collates** the list into a batch. `default_collate` follows the examples'
# structure, like PyTorch's:
#
# - a list of arrays (or numbers) of the same shape is **stacked** along a new axis 0: B
#   arrays of shape `(3, 32, 32)` give one Tensor `(B, 3, 32, 32)`;
# - a list of tuples is collated **field by field**: `[(x0, y0), (x1, y1)]` gives the tuple
#   `(X, Y)`, with `X = stack([x0, x1])`, `Y = stack([y0, y1])`; a field that is itself a
#   tuple is collated the same way, and samples with different numbers of fields are an
#   error (`ValueError`), not a batch quietly cut to the shortest.
#
# The dtype matters. Module 02's Tensor makes everything float32 by default, which is right for
# inputs but wrong for class labels: a label is an index, and `CrossEntropyLoss` picks the
# logit at it. So integer data stays integer: **int64**, as PyTorch's labels are; everything
# else becomes float32. `_to_tensor` says it once, and the loader's fast path uses it too.
#
# ```
# default_collate([(np.array([1., 2.]), 3), (np.array([4., 5.]), 6)])
#   -> (Tensor [[1, 2], [4, 5]] float32,  Tensor [3, 6] int64)
# ```

# %%
#| export
#| id: default_collate
def _to_tensor(array):
    """An array as a Tensor: integers (and bools) become int64, all else float32."""
    array = np.asarray(array)
    # TODO: return Tensor(array, dtype=np.int64) when the array holds integers or bools
    #       (array.dtype.kind in "iub"), else Tensor(array) (float32).
    ### BEGIN SOLUTION
    if array.dtype.kind in "iub":
        return Tensor(array, dtype=np.int64)
    return Tensor(array)
    ### END SOLUTION


def default_collate(samples):
    """Stack a list of examples into a batch: arrays/numbers -> one Tensor (new axis 0);
    tuples or lists -> a tuple with each field collated."""
    if len(samples) == 0:
        raise ValueError("default_collate: cannot collate an empty list of samples")
    first = samples[0]
    # TODO: if the first sample is a tuple or a list, collate field by field and return a
    #       tuple (zip(*samples, strict=True) groups the i-th field of every sample, and
    #       raises ValueError when samples have different lengths); otherwise stack the
    #       samples with np.stack (it adds the new axis 0) and turn the result into a
    #       Tensor with _to_tensor. A Tensor sample counts as its .data.
    ### BEGIN SOLUTION
    if isinstance(first, (tuple, list)):
        return tuple(default_collate(list(field)) for field in zip(*samples, strict=True))
    return _to_tensor(np.stack([_as_array(s) for s in samples]))
    ### END SOLUTION

# %%
#| test: collate (2 points)
def test_collate():
    samples = [(np.array([1.0, 2.0]), 3), (np.array([4.0, 5.0]), 6)]
    batch = default_collate(samples)
    assert isinstance(batch, tuple) and len(batch) == 2, (
        f"a list of (x, y) pairs collates to a tuple (X, Y), got {type(batch).__name__}")
    xb, yb = batch
    assert isinstance(xb, Tensor) and xb.shape == (2, 2), (
        f"X should be a Tensor of shape (2, 2), the inputs stacked; got {xb!r}")
    assert np.array_equal(xb.data, [[1, 2], [4, 5]]), (
        f"X should be the inputs stacked along a new axis 0, [[1, 2], [4, 5]]; got {xb}")
    assert np.array_equal(yb.data, [3, 6]), f"Y should be [3, 6], got {yb}"
    assert yb.dtype == np.int64, (
        f"integer labels must stay integers (int64), got {yb.dtype}. Hint: Tensor(array) "
        "makes float32; pass dtype=np.int64 for integer arrays.")
    assert xb.dtype == np.float32, f"float inputs become float32, got {xb.dtype}"

test_collate()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_raises

_x = default_collate([np.zeros((3, 4, 4), np.uint8)] * 5)
assert isinstance(_x, Tensor) and _x.shape == (5, 3, 4, 4) and _x.dtype == np.int64, (
    f"five uint8 (3, 4, 4) arrays should stack into one int64 Tensor (5, 3, 4, 4), got "
    f"{_x!r}: plain arrays stack into one Tensor; integer pixels stay integer")
_x = default_collate([np.float64(0.5), np.float64(1.5)])
assert isinstance(_x, Tensor) and _x.dtype == np.float32 and _x.shape == (2,), (
    "float64 numbers become a float32 Tensor of shape (2,)")
_x, _y, _z = default_collate([(np.ones(2), np.int32(1), 0.5),
                              (np.zeros(2), np.int32(2), 1.5)])
assert _y.dtype == np.int64 and _z.dtype == np.float32 and _x.shape == (2, 2), (
    "three fields collate each: int32 labels to int64, Python floats to float32")
_x, _y = default_collate([[Tensor([1.0, 2.0]), 1]])
assert _x.shape == (1, 2) and _y.data.tolist() == [1], (
    "lists collate like tuples; Tensors count as arrays")
assert default_collate([(np.zeros(1), True)])[1].dtype == np.int64, (
    "bools count as integers")
# every field of every batch is a Tensor: what the model and the loss take
for _field in default_collate([(np.ones(2), 3, np.uint8(4)),
                               (np.zeros(2), 5, np.uint8(6))]):
    assert isinstance(_field, Tensor), (
        f"every field of a collated batch must be a Tensor, got {type(_field).__name__} "
        f"holding {_field!r}: build integer batches with Tensor(array, dtype=np.int64)")
# a field that is itself a tuple is collated the same way, recursively
_batch = default_collate([(np.ones(2), (1, 0.5)), (np.zeros(2), (2, 1.5))])
assert isinstance(_batch, tuple) and len(_batch) == 2 and isinstance(_batch[1], tuple), (
    f"[(x, (a, b)), ...] should collate to (X, (A, B)), got {_batch!r}: collate each "
    "field with default_collate itself, so nested tuples are followed too")
assert _batch[1][0].dtype == np.int64 and _batch[1][0].data.tolist() == [1, 2], (
    f"the nested integer field should be the int64 Tensor [1, 2], got {_batch[1][0]!r}")
assert _batch[1][1].dtype == np.float32 and _batch[1][1].data.tolist() == [0.5, 1.5], (
    f"the nested float field should be the float32 Tensor [0.5, 1.5], "
    f"got {_batch[1][1]!r}")
# samples with different numbers of fields are an error, not a batch cut to the shortest
assert_raises(ValueError, default_collate, [(np.ones(2), 1), (np.zeros(2),)])
assert_raises(ValueError, default_collate, [(np.ones(2),), (np.zeros(2), 1)])
### END HIDDEN TESTS

# %% [markdown]
# ## The DataLoader
#
# `DataLoader(dataset, batch_size=1, shuffle=False, drop_last=False, seed=None,
# generator=None, collate_fn=default_collate, transform=None)` is iterable: each
# `for batch in loader:` is one **epoch**.
#
# 1. **The order.** Without `shuffle`, `0, 1, ..., n-1`. With it, a permutation drawn from the
#    loader's own `np.random.Generator`: `generator` if given, else
#    `np.random.default_rng(seed)`. The generator is made **once**, in `__init__`, and each
#    epoch draws the next permutation from it: the same seed gives the same sequence of
#    epochs on every run, and every epoch has a new order. (Re-creating the generator at each
#    epoch would repeat the first order forever: the model would see the same batches in the
#    same order each epoch.)
# 2. **The batches.** The order cut into slices of `batch_size`. The last slice may be
#    smaller; `drop_last=True` drops it (a model with batch statistics, or a benchmark,
#    may want equal batches). So `len(loader)` is `ceil(n / batch_size)`, or
#    `floor(n / batch_size)` with `drop_last`.
# 3. **Fetching a batch.** For a `TensorDataset` with the default collate, the fast path:
#    `dataset[index_array]` gives the batch's arrays at once, each made a Tensor by
#    `_to_tensor` (the same result as collating, without the Python loop). Any other dataset:
#    `collate_fn([dataset[i] for i in indices])`.
# 4. **Transform.** If `transform` is given, it is applied to the batch's first field (the
#    inputs, as a NumPy array) before it becomes a Tensor: augmentation on a whole batch at a
#    time.
#
# With n = 10, batch_size = 4, shuffle and seed 0, two epochs could be:
#
# ```
# epoch 1: [7 2 9 0] [4 1 8 5] [3 6]         len(loader) == 3
# epoch 2: [1 5 0 8] [3 9 2 6] [4 7]         a new order from the same generator
# drop_last=True: the [3 6] and [4 7] batches are dropped; len(loader) == 2
# ```

# %%
#| export
class DataLoader:
    """Iterate over a Dataset in batches:
    `for x, y in DataLoader(ds, batch_size=64, shuffle=True, seed=0)`.

    Each iteration is one epoch; with `shuffle` each epoch has a new order drawn from the
    loader's generator (`generator`, else `np.random.default_rng(seed)`), so a seed
    reproduces the whole sequence of epochs. `transform(array)` is applied to each batch's
    inputs."""

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None,
                 generator=None, collate_fn=default_collate, transform=None):
        whole = not isinstance(batch_size, bool) and int(batch_size) == batch_size
        if not whole or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, "
                             f"got {batch_size!r}")
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        if generator is None:
            generator = np.random.default_rng(seed)
        self.generator = generator
        self.collate_fn, self.transform = collate_fn, transform

    def __len__(self):
        """The number of batches in one epoch."""
        n = len(self.dataset)
        # TODO: n // batch_size batches when drop_last, else ceil(n / batch_size).
        ### BEGIN SOLUTION
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
        ### END SOLUTION

    def batch_order(self):
        """One epoch's batches of indices: a list of index arrays."""
        n = len(self.dataset)
        # TODO: the order is self.generator.permutation(n) when shuffling, else
        #       np.arange(n); cut it into consecutive slices of batch_size, and leave out
        #       the last one when drop_last and it is smaller than batch_size. Return the
        #       first len(self) slices.
        ### BEGIN SOLUTION
        order = self.generator.permutation(n) if self.shuffle else np.arange(n)
        starts = range(0, n, self.batch_size)
        return [order[start:start + self.batch_size] for start in starts][:len(self)]
        ### END SOLUTION

    def _fetch(self, indices):
        """One batch: the fast path for a TensorDataset, else collate the examples."""
        if isinstance(self.dataset, TensorDataset) and self.collate_fn is default_collate:
            arrays = list(self.dataset[indices])
            if self.transform is not None:
                arrays[0] = self.transform(arrays[0])
            return tuple(_to_tensor(a) for a in arrays)
        batch = self.collate_fn([self.dataset[int(i)] for i in indices])
        if self.transform is not None:
            if isinstance(batch, tuple):
                batch = (_to_tensor(self.transform(batch[0].data)), *batch[1:])
            else:
                batch = _to_tensor(self.transform(batch.data))
        return batch

    def __iter__(self):
        for indices in self.batch_order():
            yield self._fetch(indices)

    def __repr__(self):
        return (f"DataLoader({len(self.dataset)} examples, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, "
                f"{len(self)} batches)")

# %%
#| test: batching (2 points)
def test_batching():
    x, y = tiny()
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and len(batches) == 3, (
        f"10 examples in batches of 4 make 3 batches (4, 4, 2); len(loader) = "
        f"{len(loader)}, iterating gave {len(batches)}")
    assert [b[0].shape for b in batches] == [(4, 2), (4, 2), (2, 2)], (
        f"batch shapes should be (4, 2), (4, 2), (2, 2): the last one is smaller; got "
        f"{[b[0].shape for b in batches]}")
    xb, yb = batches[1]
    assert np.array_equal(xb.data, x[4:8]) and np.array_equal(yb.data, y[4:8]), (
        "without shuffle the second batch is x[4:8], y[4:8]")

test_batching()
### BEGIN HIDDEN TESTS
_x = np.random.default_rng(3).standard_normal((103, 3, 2, 2)).astype(np.float32)
_y = np.arange(103) % 7
for _bs in (1, 10, 103, 200):
    _loader = DataLoader(TensorDataset(_x, _y), batch_size=_bs)
    _batches = list(_loader)
    assert len(_batches) == math.ceil(103 / _bs) == len(_loader), (
        f"103 examples, batch_size={_bs}: {math.ceil(103 / _bs)} batches, got "
        f"{len(_batches)} from iterating and {len(_loader)} from len()")
    for _k, (_xb, _yb) in enumerate(_batches):
        assert isinstance(_xb, Tensor) and isinstance(_yb, Tensor), (
            f"batch {_k} (batch_size={_bs}): every field must be a Tensor, got "
            f"{type(_xb).__name__} and {type(_yb).__name__}")
        assert np.array_equal(_xb.data, _x[_k * _bs:(_k + 1) * _bs]), (
            f"batch {_k} (batch_size={_bs}): the loader must equal manual slicing")
        _want = _y[_k * _bs:(_k + 1) * _bs]
        assert np.array_equal(_yb.data, _want) and _yb.dtype == np.int64, (
            f"batch {_k} (batch_size={_bs}): the labels, int64, as sliced")


class _OneAtATime(Dataset):                  # the same arrays, one example at a time
    def __len__(self):
        return len(_x)

    def __getitem__(self, i):
        return _x[i], _y[i]


_ds = _OneAtATime()
_slow = list(DataLoader(_ds, batch_size=10))
_fast = list(DataLoader(TensorDataset(_x, _y), batch_size=10))
assert len(_slow) == 11, f"103 examples in batches of 10: 11 batches, got {len(_slow)}"
for _k, (_a, _b) in enumerate(zip(_slow, _fast)):
    assert all(isinstance(_t, Tensor) for _t in _a), (
        f"collated batch {_k}: every field must be a Tensor, got "
        f"{[type(t).__name__ for t in _a]}")
    assert all(np.array_equal(_s.data, _f.data) and _s.dtype == _f.dtype
               for _s, _f in zip(_a, _b)), (
        f"batch {_k}: a plain Dataset must give the same batches (values and dtypes) as "
        "the TensorDataset fast path")
_seen = []
_loader = DataLoader(_ds, batch_size=4,
                     collate_fn=lambda s: _seen.append(len(s)) or len(s))
assert len(list(_loader)) == 26 and _seen == [4] * 25 + [3], (
    f"collate_fn receives each batch's list of examples: sizes [4] * 25 + [3], "
    f"got {_seen}")
### END HIDDEN TESTS

# %%
#| test: drop_last (1 point)
def test_drop_last():
    x, y = tiny()
    loader = DataLoader(TensorDataset(x, y), batch_size=4, drop_last=True)
    shapes = [b[0].shape for b in loader]
    assert shapes == [(4, 2), (4, 2)], (
        f"drop_last=True drops the smaller last batch: expected two batches of 4, "
        f"got {shapes}")
    assert len(loader) == 2, (
        f"len(loader) must agree with the iteration: 2, got {len(loader)}")

test_drop_last()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_every_example_appears

for _n, _bs, _want in ((12, 4, 3), (11, 4, 2), (3, 4, 0), (0, 2, 0), (9, 1, 9)):
    _l = DataLoader(TensorDataset(np.arange(_n)), batch_size=_bs, drop_last=True)
    assert len(_l) == _want == len(list(_l)), (
        f"n={_n}, batch_size={_bs}, drop_last: {_want} batches, got len {len(_l)} and "
        f"{len(list(_l))} from iterating")
    _l = DataLoader(TensorDataset(np.arange(_n)), batch_size=_bs)
    assert len(_l) == math.ceil(_n / _bs), (
        f"n={_n}, batch_size={_bs}: ceil(n / batch_size) batches, got {len(_l)}")
# drop_last with shuffle: every batch is full, no example twice in an epoch, and over a few
# epochs every example appears (the dropped ones change, since the order is drawn first)
for _n, _bs, _seed in ((11, 4, 0), (11, 3, 1), (20, 6, 2)):
    _l = DataLoader(TensorDataset(np.arange(_n)), batch_size=_bs, drop_last=True,
                    shuffle=True, seed=_seed)
    assert all(len(b[0]) == _bs for b in _l), (
        f"n={_n}, batch_size={_bs}, drop_last with shuffle: every batch is full")
    assert_every_example_appears(_l, _n, epochs=12)
### END HIDDEN TESTS

# %%
#| test: shuffle (2 points)
def test_shuffle():
    data = TensorDataset(np.arange(10))
    loader = DataLoader(data, batch_size=4, shuffle=True, seed=0)
    epoch = np.concatenate([b[0].data for b in loader])
    assert sorted(epoch.tolist()) == list(range(10)), (
        f"a shuffled epoch holds every example exactly once; got {epoch.tolist()}")
    assert epoch.tolist() != list(range(10)), (
        "shuffle=True should change the order (generator.permutation)")
    loader = DataLoader(data, batch_size=4, shuffle=True, seed=0)
    again = np.concatenate([b[0].data for b in loader])
    assert np.array_equal(epoch, again), (
        f"the same seed gives the same order: {epoch} vs {again}")

test_shuffle()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_every_example_appears

_data = TensorDataset(np.arange(50))


def _epochs(loader, k=3):
    return [np.concatenate([b[0].data for b in loader]).tolist() for _ in range(k)]


_e = _epochs(DataLoader(_data, batch_size=7, shuffle=True, seed=1))
assert _e[0] != _e[1] and _e[1] != _e[2], (
    "each epoch draws a new order from the same generator (made once, in __init__)")
assert _e == _epochs(DataLoader(_data, batch_size=7, shuffle=True, seed=1)), (
    "a seed reproduces every epoch")
assert _e[0] != _epochs(DataLoader(_data, batch_size=7, shuffle=True, seed=2), 1)[0], (
    "another seed, another order")
assert _e[0] == np.random.default_rng(1).permutation(50).tolist(), (
    "the order is generator.permutation(n)")
_g = np.random.default_rng(9)
assert _epochs(DataLoader(_data, batch_size=50, shuffle=True, generator=_g), 1)[0] == \
    np.random.default_rng(9).permutation(50).tolist(), "a generator given is used"
assert _epochs(DataLoader(_data, batch_size=8, seed=1), 2) == [list(range(50))] * 2, (
    "no shuffle: in order")
assert_every_example_appears(DataLoader(_data, batch_size=7, shuffle=True, seed=3), 50, 2)
### END HIDDEN TESTS

# %% [markdown]
# ## Transforms: data augmentation
#
# A CNN trained on 50,000 CIFAR-10 images sees each one 25 times in 25 epochs, and learns them
# by heart. **Augmentation** shows it a slightly different image each time, one that is
# still clearly a cat: shifted by a few pixels, or mirrored left to right. The model cannot
# memorize what keeps changing, and generalizes better (the Keras recipe behind the cifar10
# milestone's 75% uses exactly these two).
#
# A transform is a small callable, `array -> array`. Ours work on **channels-first** images,
# as CIFAR-10's python batches store them (`(N, 3072)` reshapes to `(N, 3, 32, 32)`): the last
# two axes are height and width, so one call takes a whole batch `(N, C, H, W)` (each image
# drawing its own random numbers), or a single image `(C, H, W)`.
#
# - `Normalize(mean, std)`: `(x - mean) / std` per channel, the channel axis being the third
#   from the end: `mean` of shape `(C,)` is reshaped to `(C, 1, 1)` to broadcast. Returns
#   float32.
# - `RandomCrop(size, padding)`: pad height and width by `padding` zeros on each side, then
#   cut a `size x size` window at a random offset `(dy, dx)`, each in `0..2*padding`
#   (inclusive: `2*padding + 1` choices). With `size = 32`, `padding = 4`, the image moves by
#   up to 4 pixels in each direction, and zeros fill what came in from outside. `dy = dx =
#   padding` gives the image back unchanged.
# - `RandomHorizontalFlip(p)`: with probability `p`, independently per image, mirror it left
#   to right (reverse the **last** axis, the width).
# - `Compose([t1, t2])`: apply them in order.
#
# The random ones take `seed` (or a `generator`), like the loader: the same seed gives the
# same augmentations.
#
# ```
# x = [[1, 2],        RandomCrop(2, padding=1), offset (dy, dx) = (0, 2):
#      [3, 4]]        padded  [[0, 0, 0, 0],         window rows 0-1, columns 2-3:
#                              [0, 1, 2, 0],         [[0, 0],
#                              [0, 3, 4, 0],          [2, 0]]
#                              [0, 0, 0, 0]]
# ```

# %%
#| export
def _batched(transform):
    """Let a method written for (N, C, H, W) batches also take one (C, H, W) image."""
    def apply(self, x):
        x = np.asarray(x)
        if x.ndim == 3:
            return transform(self, x[None])[0]
        if x.ndim != 4:
            raise ValueError(f"{type(self).__name__}: expected images (N, C, H, W) or "
                             f"(C, H, W), got shape {x.shape}")
        return transform(self, x)
    return apply


class Normalize:
    """`(x - mean) / std` per channel, channels first; returns float32."""

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1, 1, 1)   # (C, 1, 1)
        self.std = np.asarray(std, dtype=np.float32).reshape(-1, 1, 1)
        if np.any(self.std <= 0):
            raise ValueError(f"Normalize: std must be positive, got {std}")

    @_batched
    def __call__(self, x):
        # TODO: subtract self.mean and divide by self.std (both (C, 1, 1): they broadcast
        #       against (N, C, H, W)), and return float32.
        ### BEGIN SOLUTION
        return (x.astype(np.float32) - self.mean) / self.std
        ### END SOLUTION

    def __repr__(self):
        mean, std = self.mean.ravel().tolist(), self.std.ravel().tolist()
        return f"Normalize(mean={mean}, std={std})"


class RandomCrop:
    """Pad height and width by `padding` zeros, then cut a `size` x `size` window at a
    random offset, drawn per image."""

    def __init__(self, size, padding=0, seed=None, generator=None):
        self.size, self.padding = int(size), int(padding)
        if self.size < 1 or self.padding < 0:
            raise ValueError(f"RandomCrop: size must be >= 1 and padding >= 0, "
                             f"got {size}, {padding}")
        if generator is None:
            generator = np.random.default_rng(seed)
        self.generator = generator

    @_batched
    def __call__(self, x):
        n, _, height, width = x.shape
        p, s = self.padding, self.size
        if s > height + 2 * p or s > width + 2 * p:
            raise ValueError(f"RandomCrop: a {s}x{s} crop does not fit a "
                             f"{height}x{width} image padded by {p}")
        padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))        # (N, C, H+2p, W+2p)
        # TODO: draw one offset per image, dy in 0..height + 2p - s and dx in
        #       0..width + 2p - s (both ends included), and return the (N, C, s, s)
        #       windows padded[i, :, dy[i]:dy[i] + s, dx[i]:dx[i] + s].
        ### BEGIN SOLUTION
        dy = self.generator.integers(0, height + 2 * p - s + 1, size=n)
        dx = self.generator.integers(0, width + 2 * p - s + 1, size=n)
        windows = sliding_window_view(padded, (s, s), axis=(2, 3))  # N, C, H', W', s, s
        return windows[np.arange(n), :, dy, dx]                 # (N, C, s, s), one copy
        ### END SOLUTION

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror each image left to right with probability p, independently."""

    def __init__(self, p=0.5, seed=None, generator=None):
        if not 0 <= p <= 1:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = p
        if generator is None:
            generator = np.random.default_rng(seed)
        self.generator = generator

    @_batched
    def __call__(self, x):
        # TODO: draw one uniform number per image (self.generator.random(len(x))); the
        #       images where it is below p are reversed along the last axis (width);
        #       return a new array, x itself unchanged.
        ### BEGIN SOLUTION
        flip = self.generator.random(len(x)) < self.p
        out = x.copy()
        out[flip] = x[flip][..., ::-1]
        return out
        ### END SOLUTION

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"


class Compose:
    """Apply transforms in order:
    `Compose([RandomCrop(32, 4), RandomHorizontalFlip()])`."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x):
        for transform in self.transforms:
            x = transform(x)
        return x

    def __repr__(self):
        return f"Compose({self.transforms})"

# %%
#| test: normalize (1 point)
def test_normalize():
    x = np.arange(2 * 3 * 2 * 2, dtype=np.uint8).reshape(2, 3, 2, 2)
    out = Normalize(mean=[1.0, 2.0, 3.0], std=[1.0, 2.0, 4.0])(x)
    mean = np.array([1.0, 2.0, 3.0]).reshape(3, 1, 1)
    want = (x.astype(np.float32) - mean) / np.array([1.0, 2.0, 4.0]).reshape(3, 1, 1)
    assert out.shape == x.shape and np.allclose(out, want), (
        f"Normalize subtracts mean[c] and divides by std[c] for channel c (axis -3); "
        f"got\n{out}\nexpected\n{want}")
    assert out.dtype == np.float32, f"Normalize returns float32, got {out.dtype}"

test_normalize()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_untouched

_x = np.random.default_rng(0).random((4, 3, 5, 7)).astype(np.float32)
_m, _s = np.array([0.4914, 0.4822, 0.4465]), np.array([0.247, 0.243, 0.261])
_want = (_x - _m[:, None, None]) / _s[:, None, None]
_out = assert_untouched(Normalize(_m, _s), _x)
assert np.allclose(_out, _want, atol=1e-6), (
    "Normalize on a float32 batch (4, 3, 5, 7): (x - mean[c]) / std[c] per channel")
_one = assert_untouched(Normalize(_m, _s), _x[0])
assert np.allclose(_one, _want[0], atol=1e-6), "a single (C, H, W) image works too"
assert np.allclose(Normalize(0.5, 0.5)(np.full((1, 1, 2, 2), 255, np.uint8)), 509.0), (
    "no uint8 wrap-around: convert to float32 before subtracting")
for _dtype in (np.uint8, np.int64, np.float32, np.float64):
    _out = Normalize(_m, _s)((_x * 200).astype(_dtype))
    assert _out.dtype == np.float32, (
        f"Normalize of a {np.dtype(_dtype)} batch returned {_out.dtype}; it returns "
        "float32 whatever comes in")
### END HIDDEN TESTS

# %%
#| test: random_crop (2 points)
def test_random_crop():
    x = np.arange(1, 2 * 3 * 6 * 6 + 1, dtype=np.float32).reshape(2, 3, 6, 6)
    out = RandomCrop(6, padding=2, seed=0)(x)
    assert out.shape == x.shape, (
        f"RandomCrop(6, padding=2) keeps the shape (2, 3, 6, 6), got {out.shape}")
    same = RandomCrop(6, padding=0, seed=0)(x)
    assert np.array_equal(same, x), (
        "with padding 0 and size == the image size, the crop is the image")
    # every crop is a shifted copy of its image, zeros where it came from outside
    for seed in (1, 2):
        shift = RandomCrop(4, padding=1, seed=seed)(x[:1])
        assert shift.shape == (1, 3, 4, 4), (
            f"a crop of size 4 is (1, 3, 4, 4), got {shift.shape}")
        padded = np.pad(x[:1], ((0, 0), (0, 0), (1, 1), (1, 1)))
        windows = [padded[..., i:i + 4, j:j + 4] for i in range(5) for j in range(5)]
        assert any(np.array_equal(shift, w) for w in windows), (
            "a crop must be one 4x4 window of the zero-padded image (all channels "
            "shifted the same)")

test_random_crop()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_untouched, non_square_images

_x = np.random.default_rng(0).random((400, 2, 8, 8)).astype(np.float32) + 1
_out = RandomCrop(8, padding=2, seed=3)(_x)
_padded = np.pad(_x, ((0, 0), (0, 0), (2, 2), (2, 2)))
_offsets = set()
for _k in range(len(_x)):
    _match = [(i, j) for i in range(5) for j in range(5)
              if np.array_equal(_out[_k], _padded[_k, :, i:i + 8, j:j + 8])]
    assert len(_match) == 1, f"image {_k} is not a window of its own padded image"
    _offsets.add(_match[0])
assert len(_offsets) == 25, (
    f"offsets 0..2*padding, both ends, for each axis: 25 pairs, saw {len(_offsets)}")
assert np.array_equal(RandomCrop(8, 2, seed=5)(_x), RandomCrop(8, 2, seed=5)(_x)), (
    "a seed reproduces the crops")
_one = RandomCrop(4, padding=0, seed=0)(_x[0])
assert _one.shape == (2, 4, 4), (
    f"a single (C, H, W) image works too, got shape {_one.shape}")
# tall and wide images: each axis draws its own offset over its own range, per image
for _h, _w in ((9, 5), (5, 9)):
    _image = non_square_images(1, 2, _h, _w)[0] + 1          # each value names its place
    _padded = np.pad(_image, ((0, 0), (1, 1), (1, 1)))
    _windows = {_padded[:, i:i + 4, j:j + 4].tobytes(): (i, j)
                for i in range(_h - 1) for j in range(_w - 1)}
    _batch = np.repeat(_image[None], 1000, axis=0)
    _out = assert_untouched(RandomCrop(4, padding=1, seed=6), _batch, no_view=True)
    assert _out.shape == (1000, 2, 4, 4), (
        f"RandomCrop(4, padding=1) of 1000 (2, {_h}, {_w}) images: (1000, 2, 4, 4), "
        f"got {_out.shape}")
    _seen = set()
    for _k, _crop in enumerate(_out):
        _key = np.asarray(_crop, dtype=np.float32).tobytes()
        assert _key in _windows, (
            f"crop {_k} of a (2, {_h}, {_w}) image (size 4, padding 1) is no 4x4 window "
            "of the padded image: dy goes over the height's range, dx over the width's")
        _seen.add(_windows[_key])
    _never = sorted(set(_windows.values()) - _seen)
    assert not _never, (
        f"1000 crops of a (2, {_h}, {_w}) image (size 4, padding 1) never used the "
        f"offsets {_never[:6]} (dy in 0..{_h - 2}, dx in 0..{_w - 2}): dy goes over the "
        "height's range, dx over the width's")
### END HIDDEN TESTS

# %%
#| test: horizontal_flip (1 point)
def test_horizontal_flip():
    x = np.arange(2 * 1 * 2 * 3, dtype=np.float32).reshape(2, 1, 2, 3)
    assert np.array_equal(RandomHorizontalFlip(p=1.0)(x), x[..., ::-1]), (
        "p=1 mirrors every image left to right: the last axis (width) reversed")
    assert np.array_equal(RandomHorizontalFlip(p=0.0)(x), x), (
        "p=0 leaves every image as it is")

test_horizontal_flip()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_all_outcomes, assert_untouched, non_square_images

_x = np.random.default_rng(0).random((1000, 1, 2, 3))
_out = assert_untouched(RandomHorizontalFlip(p=0.3, seed=0), _x, no_view=True)
_flipped = np.array([np.array_equal(o, i[..., ::-1]) for o, i in zip(_out, _x)])
_kept = np.array([np.array_equal(o, i) for o, i in zip(_out, _x)])
assert np.all(_flipped ^ _kept), "each image is either flipped or kept"
assert 0.25 < _flipped.mean() < 0.35, (
    f"about 30% flipped with p=0.3, got {_flipped.mean():.0%}: one draw per image")
assert np.array_equal(RandomHorizontalFlip(p=0.5, seed=4)(_x),
                      RandomHorizontalFlip(p=0.5, seed=4)(_x)), (
    "a seed reproduces the flips")
# whatever is drawn, the result is a new array: never the input itself
_images = non_square_images(2, 3, 4, 6)
for _p in (0.0, 1.0):
    _out = assert_untouched(RandomHorizontalFlip(p=_p, seed=0), _images, no_view=True)
    _want = _images[..., ::-1] if _p else _images
    assert np.array_equal(_out, _want), (
        f"p={_p} on (2, 3, 4, 6) images: {'every' if _p else 'no'} width reversed")
# an image is flipped when its draw is *below* p: a draw of exactly p keeps it, so p=0
# never flips (a generator may return 0.0)


class _Draws:
    """A generator stand-in whose uniform draws are all `value`."""

    def __init__(self, value):
        self.value = value

    def random(self, size=None):
        return np.full(size, self.value)


for _p, _draw, _flips in ((0.0, 0.0, False), (0.5, 0.5, False), (0.5, 0.25, True)):
    _out = RandomHorizontalFlip(p=_p, generator=_Draws(_draw))(_images)
    assert np.array_equal(_out, _images[..., ::-1] if _flips else _images), (
        f"p={_p}, every draw {_draw}: the images should be "
        f"{'flipped' if _flips else 'kept'} (flip where the draw is below p)")
_flip = RandomHorizontalFlip(p=0.5, seed=5)
assert_all_outcomes(lambda: _flip(_images[0]),
                    {"kept": _images[0], "mirrored": _images[0][..., ::-1]}, trials=40)
### END HIDDEN TESTS

# %% [markdown]
# ## The whole pipeline, measured again
#
# The opening's 10,000 CIFAR-sized images through a loader: the `TensorDataset` fast path
# against the same arrays behind a plain `Dataset` that hands out one example at a time (which
# the loader then collates), and then the fast path with augmentation. (Timings vary from
# run to run on a shared machine; the ratio is what to look at.)

# %%
class OneAtATime(Dataset):
    """The same arrays, handed out one example at a time (no fast path)."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def epoch_ms(loader):
    start = time.perf_counter()
    batches = list(loader)
    return 1000 * (time.perf_counter() - start), *batches[-1]


pixels, labels = images / np.float32(255), _rng.integers(0, 10, len(images))
augment = Compose([RandomCrop(32, padding=4, seed=0), RandomHorizontalFlip(seed=0),
                   Normalize([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])])
runs = (("one example at a time", OneAtATime(pixels, labels), None),
        ("TensorDataset (fast path)", TensorDataset(pixels, labels), None),
        ("fast path + augmentation", TensorDataset(pixels, labels), augment))
for name, dataset, transform in runs:
    loader = DataLoader(dataset, batch_size=64, shuffle=True, seed=0, transform=transform)
    ms, xb, yb = epoch_ms(loader)
    print(f"{name:26}: {ms:6.1f} ms per epoch, {len(loader)} batches of "
          f"{tuple(xb.shape[1:])} {xb.dtype}, labels {yb.dtype}")

# %% [markdown]
# With CIFAR-10 on disk, the milestone's pipeline is four lines:
#
# ```python
# from tinytorch.datasets import load_cifar10
# x_train, y_train, x_test, y_test = load_cifar10()          # (N, 3, 32, 32) float32, int64
# train = DataLoader(TensorDataset(x_train, y_train), batch_size=64, shuffle=True, seed=0,
#                    transform=Compose([RandomCrop(32, 4, seed=0), RandomHorizontalFlip(seed=0)]))
# ```
#
# Module 08's Trainer takes the same transforms for its training batches, and the `cifar10`
# milestone trains that way. There the transforms draw from the Trainer's generator, so a
# checkpoint holds their state too and a resumed run augments exactly as an uninterrupted one:
#
# ```python
# augment = Compose([RandomCrop(32, padding=4, generator=trainer.generator),
#                    RandomHorizontalFlip(generator=trainer.generator)])
# trainer.fit(x_train, y_train, epochs=25, batch_size=64, validation_split=0.1, transform=augment)
# ```
#
# ## Test it: the whole pipeline

# %%
#| test: pipeline (1 point)
def test_pipeline():
    x = np.random.default_rng(0).integers(0, 256, (10, 3, 8, 8)).astype(np.uint8)
    y = np.arange(10)
    loader = DataLoader(TensorDataset(x, y), batch_size=5, transform=Compose([
        RandomHorizontalFlip(p=1.0), Normalize([0.0] * 3, [255.0] * 3)]))
    xb, yb = next(iter(loader))
    assert xb.shape == (5, 3, 8, 8) and xb.dtype == np.float32, (
        f"the first batch: expected (5, 3, 8, 8) float32, got {xb.shape} {xb.dtype}")
    assert np.allclose(xb.data, x[:5, :, :, ::-1] / 255.0), (
        "the transform applies to each batch's inputs")
    assert np.array_equal(yb.data, y[:5]) and yb.dtype == np.int64, (
        "labels are left alone")

test_pipeline()
### BEGIN HIDDEN TESTS
_l = DataLoader(OneAtATime(x_demo[:20].reshape(20, 1, 8, 8), y_demo[:20]), batch_size=8,
                transform=RandomHorizontalFlip(p=1.0))
_xb, _yb = next(iter(_l))
assert np.allclose(_xb.data, x_demo[:8].reshape(8, 1, 8, 8)[..., ::-1]), (
    "the transform applies on the collated path too")
assert _yb.dtype == np.int64, f"labels on the collated path: int64, got {_yb.dtype}"
### END HIDDEN TESTS
