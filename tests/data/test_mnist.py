"""The MNIST reader and loader: the shipped subset, the official IDX format, damaged files, where
the files are looked for, the (offline) download, and the script that made the subset."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import importlib.util
import threading
from pathlib import Path

import numpy as np
import pytest

from tinytorch.datasets import mnist as mnist_module
from tinytorch.datasets.mnist import (
    MNIST,
    NAMES,
    SUBSET_DIR,
    SUBSET_SHA256,
    DatasetError,
    download_mnist,
    load_mnist,
    read_idx,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_user_data(tmp_path, monkeypatch):
    """No test sees the real cache folder or TINYTORCH_DATA."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("TINYTORCH_DATA", raising=False)
    return home


# --- writing files in the official format, independently of the code under test -------------


def idx(array: np.ndarray, code: int = 0x08) -> bytes:
    """An IDX file by the book: 0x00 0x00, type code, ndim, big-endian uint32 sizes, data."""
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    header = bytes([0, 0, code, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + np.asarray(array).astype(dtype).tobytes()


def write(path: Path, data: bytes, gz: bool | None = None) -> Path:
    if gz is None:
        gz = path.name.endswith(".gz")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def fake_mnist(folder: Path, n_train: int, n_test: int, *, gz: bool = True, seed: int = 0):
    """Four small files under the official names (so not the official content)."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        write(folder / (name + (".gz" if gz else "")), idx(array))
    return arrays


def assert_one_line_naming(error: pytest.ExceptionInfo, path: Path | str, *words: str) -> str:
    message = str(error.value)
    assert isinstance(error.value, ValueError)
    assert "\n" not in message, f"the message should be one line, got:\n{message}"
    assert str(path) in message, f"the message should name {path}: {message}"
    for word in words:
        assert word in message, f"the message should say {word!r}: {message}"
    return message


# --- the shipped subset -------------------------------------------------------------------


def test_shipped_subset_loads():
    data = load_mnist()
    assert isinstance(data, MNIST)
    x_train, y_train, x_test, y_test = data  # unpacks like a 4-tuple
    assert x_train.shape == (4000, 28, 28) and x_test.shape == (1000, 28, 28)
    assert y_train.shape == (4000,) and y_test.shape == (1000,)
    assert x_train.dtype == np.float32 and x_test.dtype == np.float32
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0 and x_train.max() == 1.0
    assert np.bincount(y_train, minlength=10).tolist() == [400] * 10
    assert np.bincount(y_test, minlength=10).tolist() == [100] * 10
    assert data.full is False and Path(data.source) == SUBSET_DIR
    assert "subset" in data.describe() and "4,000" in data.describe()
    # real digits, not noise: about a fifth of the pixels are ink, the border is blank
    assert 0.1 < (x_train > 0.5).mean() < 0.3
    assert x_train[:, 0, :].max() == 0.0


def test_shipped_subset_options_and_determinism():
    raw = load_mnist(normalize=False, flatten=True)
    assert raw.x_train.dtype == np.uint8 and raw.x_train.shape == (4000, 784)
    assert raw.x_test.shape == (1000, 784) and raw.x_train.max() == 255
    again = load_mnist()
    np.testing.assert_array_equal(again.x_train, raw.x_train.reshape(-1, 28, 28) / np.float32(255))
    np.testing.assert_array_equal(again.y_test, load_mnist().y_test)


def test_shipped_files_match_recorded_checksums_and_source():
    for name, digest in SUBSET_SHA256.items():
        shipped = (SUBSET_DIR / name).read_bytes()
        assert hashlib.sha256(shipped).hexdigest() == digest, name
        source_copy = ROOT / "source" / "package" / "datasets" / "mnist_subset" / name
        assert source_copy.read_bytes() == shipped, f"{name}: run `tito build`"
    assert (SUBSET_DIR / "README.md").is_file(), "the license statement ships beside the files"


def test_damaged_shipped_subset_says_reinstall(tmp_path, monkeypatch):
    copy = tmp_path / "mnist_subset"
    copy.mkdir()
    for name in SUBSET_SHA256:
        (copy / name).write_bytes((SUBSET_DIR / name).read_bytes())
    target = copy / "t10k-images-idx3-ubyte.gz"
    target.write_bytes(target.read_bytes()[:-100])
    monkeypatch.setattr(mnist_module, "SUBSET_DIR", copy)
    with pytest.raises(DatasetError) as error:
        load_mnist()
    assert_one_line_naming(error, target, "reinstall")


# --- the IDX reader on files in the official format -------------------------------------------


@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "raw"])
def test_read_idx_images_and_labels(tmp_path, gz):
    images = np.arange(3 * 28 * 28, dtype=np.int64).reshape(3, 28, 28).astype(np.uint8)
    labels = np.array([7, 0, 9], dtype=np.uint8)
    image_file = write(tmp_path / "images", idx(images), gz)
    label_file = write(tmp_path / "labels", idx(labels), gz)
    assert image_file.read_bytes()[:4] == (b"\x1f\x8b\x08\x00" if gz else b"\x00\x00\x08\x03")
    got = read_idx(image_file)
    assert got.dtype == np.uint8 and got.shape == (3, 28, 28)
    np.testing.assert_array_equal(got, images)
    got[0, 0, 0] = 1  # a writable copy
    np.testing.assert_array_equal(read_idx(str(label_file)), labels)


def test_read_idx_detects_gzip_by_content_not_name(tmp_path):
    labels = np.array([1, 2, 3], dtype=np.uint8)
    gz_without_suffix = write(tmp_path / "train-labels-idx1-ubyte", idx(labels), gz=True)
    raw_with_suffix = write(tmp_path / "labels.gz", idx(labels), gz=False)
    np.testing.assert_array_equal(read_idx(gz_without_suffix), labels)
    np.testing.assert_array_equal(read_idx(raw_with_suffix), labels)


@pytest.mark.parametrize("code, values", [
    (0x09, [-128, -1, 0, 127]),
    (0x0B, [-30000, 1, 258]),
    (0x0C, [-(2**31), 65536, 2**31 - 1]),
    (0x0D, [0.5, -1.25, 3e38]),
    (0x0E, [1e-300, -2.0, np.pi]),
])
def test_read_idx_other_types_big_endian(tmp_path, code, values):
    array = np.array(values).reshape(-1, 1)
    got = read_idx(write(tmp_path / "f", idx(array, code), gz=False))
    assert got.shape == array.shape and got.dtype.isnative
    np.testing.assert_array_equal(got, array.astype(got.dtype))


LABELS = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
IMAGES = np.zeros((2, 28, 28), dtype=np.uint8)
RANDOM_IMAGES = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)


def _damaged_cases():
    good = idx(IMAGES)
    return {
        # name: (file bytes, words the message must contain)
        "empty file": (b"", ["is empty"]),
        "too short": (b"\x00\x00", ["too short"]),
        "corrupted magic": (b"\x01\x02" + good[2:], ["not an IDX file", "0x01020803"]),
        "wrong dtype code": (b"\x00\x00\x07\x03" + good[4:], ["not an IDX file", "0x00000703"]),
        "zero dimensions": (b"\x00\x00\x08\x00", ["0 dimensions"]),
        "truncated header": (good[:10], ["truncated", "header"]),
        "truncated payload": (good[:-5], ["truncated", f"expected {IMAGES.size:,} bytes of pixels",
                                          f"found {IMAGES.size - 5:,}"]),
        "extra trailing bytes": (good + b"\x00" * 3, ["3 bytes more than its header announces"]),
        "garbage, not gzip": (b"<html>404 Not Found</html>", ["not an IDX file", "0x3C68746D"]),
        "damaged gzip": (gzip.compress(good)[:10] + b"\xff" * 40, ["damaged gzip"]),
        "truncated gzip": (gzip.compress(idx(RANDOM_IMAGES))[:-30],
                           ["truncated", "bytes of pixels", "gzip stream ends early"]),
        "gzip of a truncated file": (gzip.compress(good[:-1]), ["truncated", "found 1,567"]),
        "garbage after gzip": (gzip.compress(good) + b"junk", ["garbage after its gzip data"]),
    }


@pytest.mark.parametrize("case", list(_damaged_cases()))
def test_read_idx_damaged_files_raise_one_line_naming_the_file(tmp_path, case):
    data, words = _damaged_cases()[case]
    path = write(tmp_path / "train-images-idx3-ubyte.gz", data, gz=False)
    with pytest.raises(DatasetError) as error:
        read_idx(path)
    assert_one_line_naming(error, path, *words)


def test_truncated_full_size_header_names_sizes(tmp_path):
    header = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (60000, 28, 28))
    path = write(tmp_path / "train-images-idx3-ubyte.gz", header + b"\x00" * 1024, gz=True)
    with pytest.raises(DatasetError) as error:
        read_idx(path)
    assert_one_line_naming(error, path, "is truncated: expected 47,040,000 bytes of pixels",
                           "found 1,024", "download")


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(DatasetError) as error:
        read_idx(tmp_path / "nope.gz")
    assert_one_line_naming(error, tmp_path / "nope.gz", "does not exist")


# --- load_mnist: folders, lookup order, checksums --------------------------------------------


def test_data_dir_missing_files_are_named(tmp_path):
    folder = tmp_path / "mine"
    write(folder / "train-images-idx3-ubyte.gz", idx(IMAGES))
    write(folder / "t10k-labels-idx1-ubyte", idx(LABELS))
    with pytest.raises(DatasetError) as error:
        load_mnist(folder)
    message = assert_one_line_naming(error, folder, "lacks 2 of the 4",
                                     "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte")
    assert "train-images" not in message
    with pytest.raises(DatasetError) as error:
        load_mnist(tmp_path / "absent")
    assert_one_line_naming(error, tmp_path / "absent", "is not a folder")


@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "raw"])
def test_official_names_are_checked_against_official_checksums(tmp_path, gz):
    folder = tmp_path / "mnist"
    arrays = fake_mnist(folder, 6, 4, gz=gz)
    with pytest.raises(DatasetError) as error:
        load_mnist(folder)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    expected = mnist_module.OFFICIAL_MD5[name]
    assert_one_line_naming(error, folder / name, "not the official MNIST file", expected,
                           "verify=False")
    data = load_mnist(folder, verify=False, normalize=False)
    np.testing.assert_array_equal(data.x_train, arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(data.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert data.source == str(folder) and data.full is False


def test_official_checksum_accepted(tmp_path, monkeypatch):
    folder = tmp_path / "mnist"
    fake_mnist(folder, 5, 3)
    digests = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    monkeypatch.setattr(mnist_module, "OFFICIAL_MD5", digests)
    data = load_mnist(folder, flatten=True)
    assert data.x_train.shape == (5, 784) and data.x_test.shape == (3, 784)


def test_data_dir_may_be_the_shipped_subset_itself():
    assert load_mnist(SUBSET_DIR).x_test.shape == (1000, 28, 28)


def test_lookup_order_env_then_cache_then_subset(tmp_path, monkeypatch, no_user_data):
    cache = no_user_data / ".tinytorch" / "data" / "mnist"
    env_root = tmp_path / "env"
    fake_mnist(cache, 5, 2, seed=1)
    assert load_mnist(verify=False).x_train.shape[0] == 5, "the cache folder comes before the subset"
    with pytest.raises(DatasetError) as error:  # and its files are checked
        load_mnist()
    assert_one_line_naming(error, cache / "train-images-idx3-ubyte.gz", "not the official")

    monkeypatch.setenv("TINYTORCH_DATA", str(env_root))
    assert load_mnist(verify=False).x_train.shape[0] == 5, "no $TINYTORCH_DATA/mnist: use the cache"
    fake_mnist(env_root / "mnist", 7, 3, seed=2)
    assert load_mnist(verify=False).x_train.shape[0] == 7, "$TINYTORCH_DATA comes before the cache"
    explicit = tmp_path / "explicit"
    fake_mnist(explicit, 9, 2, seed=3)
    assert load_mnist(explicit, verify=False).x_train.shape[0] == 9, "data_dir comes first"

    monkeypatch.delenv("TINYTORCH_DATA")
    for path in cache.iterdir():
        path.unlink()
    assert load_mnist().x_train.shape[0] == 4000, "nothing anywhere: the shipped subset"


def test_partial_cache_folder_is_an_error(no_user_data):
    cache = no_user_data / ".tinytorch" / "data" / "mnist"
    fake_mnist(cache, 3, 2)
    (cache / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DatasetError) as error:
        load_mnist()
    assert_one_line_naming(error, cache, "only 3 of the 4", "t10k-images-idx3-ubyte")


@pytest.mark.parametrize("change, words", [
    ("labels count", ["holds 4 labels", "5 images"]),
    ("label value", ["label 12"]),
    ("image size", ["10x10 pixels"]),
    ("images as labels", ["1 dimensions", "0x00000803"]),
])
def test_files_that_are_not_mnist(tmp_path, change, words):
    folder = tmp_path / "mnist"
    arrays = fake_mnist(folder, 5, 2)
    bad = {
        "labels count": ("train-labels-idx1-ubyte", np.zeros(4, np.uint8)),
        "label value": ("train-labels-idx1-ubyte", np.array([1, 2, 12, 3, 4], np.uint8)),
        "image size": ("train-images-idx3-ubyte", np.zeros((5, 10, 10), np.uint8)),
        "images as labels": ("train-images-idx3-ubyte", arrays["train-labels-idx1-ubyte"]),
    }
    name, array = bad[change]
    write(folder / f"{name}.gz", idx(array))
    with pytest.raises(DatasetError) as error:
        load_mnist(folder, verify=False)
    assert_one_line_naming(error, folder / f"{name}.gz", *words)


# --- download: never implicit, clear when offline, atomic --------------------------------------


@pytest.fixture
def no_proxy(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def test_download_offline_message(tmp_path, no_proxy):
    dest = tmp_path / "cache"
    with pytest.raises(DatasetError) as error:
        download_mnist(dest, mirrors=["http://127.0.0.1:9/"], timeout=2)  # loopback, closed port
    assert_one_line_naming(error, dest, "unreachable", "127.0.0.1", "shipped", "by hand",
                           "t10k-labels-idx1-ubyte.gz")
    assert list(dest.iterdir()) == [], "no partial files are left behind"


def test_download_default_destination_is_the_cache(tmp_path, monkeypatch, no_proxy):
    monkeypatch.setenv("TINYTORCH_DATA", str(tmp_path / "data"))
    with pytest.raises(DatasetError) as error:
        download_mnist(mirrors=["http://127.0.0.1:9/"], timeout=2)
    assert_one_line_naming(error, tmp_path / "data" / "mnist")


@pytest.fixture
def local_mirror(tmp_path):
    """An HTTP server on loopback serving a folder (no network involved)."""
    served = tmp_path / "served"
    served.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_download_checks_md5_and_moves_into_place(tmp_path, monkeypatch, local_mirror, no_proxy):
    served, url = local_mirror
    arrays = fake_mnist(served, 4, 2)
    dest = tmp_path / "cache"
    with pytest.raises(DatasetError) as error:  # the served files are not the official ones
        download_mnist(dest, mirrors=[url], timeout=5)
    assert_one_line_naming(error, dest, "md5")
    assert list(dest.iterdir()) == [], "a file with the wrong checksum is not kept"

    digests = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in served.iterdir()}
    monkeypatch.setattr(mnist_module, "OFFICIAL_MD5", digests)
    assert download_mnist(dest, mirrors=["http://127.0.0.1:9/", url], timeout=5) == dest
    assert sorted(p.name for p in dest.iterdir()) == sorted(f"{n}.gz" for n in NAMES)
    np.testing.assert_array_equal(load_mnist(dest).y_train, arrays["train-labels-idx1-ubyte"])
    download_mnist(dest, mirrors=["http://127.0.0.1:9/"], timeout=2)  # all there: no request


# --- the script that made the subset -----------------------------------------------------------


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("make_mnist_subset", ROOT / "scripts" / "make_mnist_subset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_converts_a_csv_into_official_files(tmp_path, script):
    rng = np.random.default_rng(0)
    labels = np.array([2, 0, 2, 1, 0, 0, 2, 1, 1, 0, 2, 1])  # 4 of each class, not sorted
    pixels = rng.integers(0, 256, (len(labels), 784))
    csv = "\n".join(",".join(map(str, [*row, label])) for row, label in zip(pixels, labels)) + "\n"

    files = script.convert(csv, train_per_class=3)
    assert files == script.convert(csv, train_per_class=3), "deterministic bytes"
    for data in files.values():
        assert data[:4] == b"\x1f\x8b\x08\x00", "gzip without a file name"
        assert data[4:8] == b"\0\0\0\0", "gzip with mtime 0"
    digests = script.write_files(files, tmp_path)
    assert digests == {n: hashlib.sha256(d).hexdigest() for n, d in files.items()}

    train = [0, 1, 2, 3, 4, 5, 6, 7, 8]  # the first 3 of each class, in file order
    test = [9, 10, 11]
    images = pixels.astype(np.uint8).reshape(-1, 28, 28)
    np.testing.assert_array_equal(read_idx(tmp_path / "train-images-idx3-ubyte.gz"), images[train])
    np.testing.assert_array_equal(read_idx(tmp_path / "train-labels-idx1-ubyte.gz"), labels[train])
    np.testing.assert_array_equal(read_idx(tmp_path / "t10k-images-idx3-ubyte.gz"), images[test])
    np.testing.assert_array_equal(read_idx(tmp_path / "t10k-labels-idx1-ubyte.gz"), labels[test])
    assert gzip.decompress(files["t10k-labels-idx1-ubyte.gz"])[:8] == bytes([0, 0, 8, 1, 0, 0, 0, 3])
    data = load_mnist(tmp_path, normalize=False, verify=False)  # official names, not the content
    assert data.x_train.shape == (9, 28, 28) and data.full is False


def test_script_rejects_bad_csv(script):
    with pytest.raises(ValueError, match="785"):
        script.parse_csv("1,2,3\n")
    with pytest.raises(ValueError, match="0..9"):
        script.parse_csv(",".join(["0"] * 784 + ["10"]))
    with pytest.raises(ValueError, match="fewer than"):
        script.convert(",".join(["0"] * 784 + ["1"]), train_per_class=2)
