"""tinytorch.data (module 10): Dataset, TensorDataset, default_collate, DataLoader and the image
transforms, on the reference package.

The loader over a TensorDataset equals manual slicing; the collated path (any Dataset) equals
the fast path; seeded shuffling is reproducible and new every epoch; drop_last and len agree
with iteration; transforms match plain NumPy references (crop = a window of the zero-padded
image, every offset reachable; flip per image; normalize per channel), and torch's own
normalization where torch is installed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.tensor import Tensor
from tinytorch.data import (
    Compose,
    DataLoader,
    Dataset,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    TensorDataset,
    default_collate,
)


class OneAtATime(Dataset):
    def __init__(self, *arrays):
        self.arrays = arrays

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, i):
        return tuple(a[i] for a in self.arrays)


def data(n=23, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3, 4, 4)).astype(np.float32), rng.integers(0, 10, n)


def flat(loader, field=1):
    return np.concatenate([batch[field].data for batch in loader]).tolist()


# --- batching --------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 40), batch_size=st.integers(1, 12), drop_last=st.booleans())
def test_loader_equals_manual_slicing(n, batch_size, drop_last):
    x, y = data(n)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, drop_last=drop_last)
    batches = list(loader)
    want = n // batch_size if drop_last else math.ceil(n / batch_size)
    assert len(loader) == len(batches) == want
    for k, (xb, yb) in enumerate(batches):
        assert np.array_equal(xb.data, x[k * batch_size:(k + 1) * batch_size])
        assert np.array_equal(yb.data, y[k * batch_size:(k + 1) * batch_size])
        assert xb.dtype == np.float32 and yb.dtype == np.int64
        if drop_last:
            assert len(xb) == batch_size


@pytest.mark.parametrize("shuffle", [False, True])
def test_collated_path_equals_fast_path(shuffle):
    x, y = data()
    fast = DataLoader(TensorDataset(x, y), batch_size=5, shuffle=shuffle, seed=3)
    slow = DataLoader(OneAtATime(x, y), batch_size=5, shuffle=shuffle, seed=3)
    for (xf, yf), (xs, ys) in zip(fast, slow, strict=True):
        assert np.array_equal(xf.data, xs.data) and np.array_equal(yf.data, ys.data)
        assert xf.dtype == xs.dtype and yf.dtype == ys.dtype == np.int64


def test_tensor_inputs_and_single_array():
    x, y = data(6)
    loader = DataLoader(TensorDataset(Tensor(x), Tensor(y, dtype=np.int64)), batch_size=4)
    (xb, yb), _ = list(loader)
    assert np.array_equal(xb.data, x[:4]) and yb.dtype == np.int64
    (only,) = next(iter(DataLoader(TensorDataset(np.arange(5)), batch_size=5)))
    assert only.data.tolist() == [0, 1, 2, 3, 4]


def test_errors():
    with pytest.raises(ValueError, match="same first dimension"):
        TensorDataset(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            DataLoader(TensorDataset(np.zeros(3)), batch_size=bad)
    with pytest.raises(NotImplementedError):
        len(Dataset())
    with pytest.raises(ValueError, match="empty"):
        default_collate([])


# --- collate ---------------------------------------------------------------------------------


def test_default_collate_structure_and_dtypes():
    x, y = default_collate([(np.ones((2, 2)), 1), (np.zeros((2, 2)), 2)])
    assert x.shape == (2, 2, 2) and x.dtype == np.float32 and y.dtype == np.int64
    a, b, c = default_collate([[np.uint8(3), True, np.float64(0.5)]] * 3)
    assert a.dtype == np.int64 and b.dtype == np.int64 and c.dtype == np.float32
    single = default_collate([np.arange(3), np.arange(3)])
    assert isinstance(single, Tensor) and single.shape == (2, 3) and single.dtype == np.int64
    with pytest.raises(ValueError):
        default_collate([(np.ones(2), 1), (np.ones(2),)])  # ragged samples are refused


def test_custom_collate_receives_the_examples():
    seen = []
    loader = DataLoader(OneAtATime(np.arange(7)), batch_size=3, collate_fn=lambda s: seen.append(s) or len(s))
    assert list(loader) == [3, 3, 1] and [len(s) for s in seen] == [3, 3, 1]


# --- shuffling -------------------------------------------------------------------------------


def test_seeded_shuffling_is_reproducible_and_new_every_epoch():
    ds = TensorDataset(np.arange(100))
    a = DataLoader(ds, batch_size=16, shuffle=True, seed=7)
    b = DataLoader(ds, batch_size=16, shuffle=True, seed=7)
    epochs_a = [flat(a, 0) for _ in range(4)]
    epochs_b = [flat(b, 0) for _ in range(4)]
    assert epochs_a == epochs_b, "the same seed reproduces every epoch"
    assert all(sorted(e) == list(range(100)) for e in epochs_a)
    assert len({tuple(e) for e in epochs_a}) == 4, "each epoch has a new order"
    assert epochs_a[0] == np.random.default_rng(7).permutation(100).tolist()
    assert flat(DataLoader(ds, batch_size=16, shuffle=True, seed=8), 0) != epochs_a[0]


def test_generator_is_used_and_advanced():
    g = np.random.default_rng(1)
    reference = np.random.default_rng(1)
    loader = DataLoader(TensorDataset(np.arange(30)), batch_size=30, shuffle=True, generator=g)
    assert flat(loader, 0) == reference.permutation(30).tolist()
    assert flat(loader, 0) == reference.permutation(30).tolist()


def test_shuffle_with_drop_last_drops_a_random_remainder():
    loader = DataLoader(TensorDataset(np.arange(10)), batch_size=4, shuffle=True, drop_last=True, seed=0)
    seen = [set(flat(loader, 0)) for _ in range(20)]
    assert all(len(s) == 8 for s in seen) and set().union(*seen) == set(range(10))


# --- transforms ------------------------------------------------------------------------------


def reference_crop(image, dy, dx, size, padding):
    padded = np.pad(image, ((0, 0), (padding, padding), (padding, padding)))
    return padded[:, dy:dy + size, dx:dx + size]


def test_random_crop_keeps_shape_shifts_content_and_reaches_every_offset():
    x = np.random.default_rng(0).random((500, 3, 8, 8)).astype(np.float32) + 1  # no zeros inside
    out = RandomCrop(8, padding=2, seed=0)(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    offsets = []
    for image, crop in zip(x, out, strict=True):
        hits = [(dy, dx) for dy in range(5) for dx in range(5)
                if np.array_equal(crop, reference_crop(image, dy, dx, 8, 2))]
        assert len(hits) == 1
        offsets.append(hits[0])
    assert set(offsets) == {(dy, dx) for dy in range(5) for dx in range(5)}
    # the content moves by (2 - dy, 2 - dx): as many zero rows/columns come in as it moved
    zero_rows = np.all(out == 0, axis=(1, 3)).sum(axis=1)   # per image, how many rows are all zero
    zero_cols = np.all(out == 0, axis=(1, 2)).sum(axis=1)
    assert np.array_equal(zero_rows, [abs(dy - 2) for dy, _ in offsets])
    assert np.array_equal(zero_cols, [abs(dx - 2) for _, dx in offsets])


def test_random_crop_smaller_single_image_and_errors():
    image = np.arange(3 * 6 * 6, dtype=np.float32).reshape(3, 6, 6)
    out = RandomCrop(4, seed=1)(image)
    assert out.shape == (3, 4, 4)
    assert any(np.array_equal(out, image[:, i:i + 4, j:j + 4]) for i in range(3) for j in range(3))
    with pytest.raises(ValueError, match="does not fit"):
        RandomCrop(9)(image)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        RandomCrop(2)(np.zeros((4, 4)))
    assert np.array_equal(RandomCrop(6, 3, seed=4)(image), RandomCrop(6, 3, seed=4)(image))


def test_horizontal_flip_per_image():
    x = np.random.default_rng(0).random((2000, 2, 3, 5))
    before = x.copy()
    out = RandomHorizontalFlip(p=0.25, seed=0)(x)
    assert np.array_equal(x, before), "the input is not modified"
    flipped = np.array([np.array_equal(o, i[..., ::-1]) for o, i in zip(out, x, strict=True)])
    kept = np.array([np.array_equal(o, i) for o, i in zip(out, x, strict=True)])
    assert np.all(flipped ^ kept) and 0.21 < flipped.mean() < 0.29
    assert np.array_equal(RandomHorizontalFlip(1.0)(x[0]), x[0][..., ::-1])
    with pytest.raises(ValueError):
        RandomHorizontalFlip(1.5)


def test_normalize_matches_numpy_and_torch():
    x = np.random.default_rng(0).integers(0, 256, (4, 3, 5, 5)).astype(np.uint8)
    mean, std = [125.3, 123.0, 113.9], [63.0, 62.1, 66.7]
    out = Normalize(mean, std)(x)
    want = (x.astype(np.float64) - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]
    assert out.dtype == np.float32 and np.allclose(out, want, atol=1e-5)
    torch = pytest.importorskip("torch")
    t = torch.from_numpy(x.astype(np.float32))
    torch_out = (t - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert np.allclose(out, torch_out.numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="positive"):
        Normalize([0.0], [0.0])


def test_transform_in_the_loader_and_compose():
    x, y = data(12)
    augment = Compose([RandomHorizontalFlip(1.0), Normalize([1.0] * 3, [2.0] * 3)])
    for dataset in (TensorDataset(x, y), OneAtATime(x, y)):
        xb, yb = next(iter(DataLoader(dataset, batch_size=12, transform=augment)))
        assert np.allclose(xb.data, (x[..., ::-1] - 1) / 2) and np.array_equal(yb.data, y)
    assert np.array_equal(x, data(12)[0]), "the dataset's arrays are never modified"
    assert "RandomHorizontalFlip" in repr(augment) and "DataLoader(12 examples" in repr(
        DataLoader(TensorDataset(x), batch_size=5))


def test_seeded_augmentation_is_reproducible_through_the_loader():
    x, y = data(40)

    def run():
        loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True, seed=0,
                            transform=Compose([RandomCrop(4, 1, seed=1), RandomHorizontalFlip(seed=2)]))
        return [xb.data for _ in range(2) for xb, _ in loader]

    first, second = run(), run()
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert not np.array_equal(first[0], first[5])
