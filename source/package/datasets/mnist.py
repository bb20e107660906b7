"""MNIST: the reader for the official IDX files, the loader, and a download where the internet works.

`load_mnist()` reads the four official files from the first of these that has them:

1. `data_dir`, when given (the milestones' `--data DIR`): it must hold all four;
2. `$TINYTORCH_DATA/mnist`, when that variable is set;
3. `~/.tinytorch/data/mnist`, the cache folder that `download_mnist()` fills;
4. the subset shipped inside the package: 5,000 real MNIST digits (4,000 train, 1,000 test),
   see `mnist_subset/README.md` for where they come from and their licenses.

Each file may be gzipped or not (`train-images-idx3-ubyte.gz` or `train-images-idx3-ubyte`).
Files under the official names are checked against the official MNIST checksums, the shipped
subset against its own. Nothing is downloaded unless you call `download_mnist()`.

NumPy only.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import DatasetError, data_home, download, search_folders

# --- the IDX format -----------------------------------------------------------------------
#
# An IDX file is a header and the data, all big-endian:
#   magic: two zero bytes, a type code (0x08 = unsigned byte, ...), the number of dimensions;
#   one uint32 per dimension, its size; then the values, row-major.
# MNIST labels are 0x00000801 (unsigned bytes, 1-D), MNIST images 0x00000803 (3-D).

IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
LABELS_MAGIC = 0x00000801
IMAGES_MAGIC = 0x00000803
GZIP_MAGIC = b"\x1f\x8b"
_FIX = "Delete it and get it again (tinytorch.datasets.download_mnist()), or point --data at a complete copy."


def _fail(path: Path | str, problem: str, fix: str = _FIX) -> DatasetError:
    return DatasetError(f"{path} {problem}. {fix}")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path} does not exist. Check the path, or point --data at a folder "
                           "with the four MNIST files.") from None
    except OSError as error:
        raise DatasetError(f"{path} cannot be read: {error.strerror or error}.") from None


def _gunzip(raw: bytes, path: Path) -> bytes:
    """The decompressed content of a gzip file (one or more members)."""
    parts, rest = [], raw
    while rest:
        unpacker = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            parts.append(unpacker.decompress(rest))
        except zlib.error as error:
            raise _fail(path, f"is a damaged gzip file ({error})") from None
        if not unpacker.eof:
            data = b"".join(parts)
            _parse_idx(data, path, truncated_gzip=True)  # names what is missing, if it can
            raise _fail(path, f"is truncated: its gzip stream ends early, after {len(data):,} bytes")
        rest = unpacker.unused_data
        if rest and not rest.startswith(GZIP_MAGIC):
            raise _fail(path, f"has {len(rest):,} bytes of garbage after its gzip data")
    return b"".join(parts)


def _describe(code: int, ndim: int) -> str:
    if code == 0x08 and ndim == 1:
        return "labels"
    if code == 0x08 and ndim == 3:
        return "pixels"
    return "data"


def _parse_idx(data: bytes, path: Path, *, truncated_gzip: bool = False) -> np.ndarray:
    if not data:
        if truncated_gzip:
            return np.empty(0, np.uint8)  # nothing to name beyond "ends early"
        raise _fail(path, "is empty (0 bytes)")
    if len(data) < 4:
        if truncated_gzip:
            return np.empty(0, np.uint8)
        raise _fail(path, f"is too short for an IDX file ({len(data)} bytes)")
    magic = int.from_bytes(data[:4], "big")
    code, ndim = data[2], data[3]
    if data[:2] != b"\0\0" or code not in IDX_TYPES:
        raise _fail(
            path,
            f"is not an IDX file: it starts with 0x{magic:08X}, not an IDX magic number such as "
            f"0x{LABELS_MAGIC:08X} (labels) or 0x{IMAGES_MAGIC:08X} (images)")
    if ndim == 0:
        raise _fail(path, f"has an IDX header with 0 dimensions (magic 0x{magic:08X})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise _fail(path, f"is truncated: its header needs {header} bytes, the file has {len(data):,}")
    shape = tuple(int(n) for n in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[code]
    expected = dtype.itemsize * int(np.prod(shape, dtype=object))
    found = len(data) - header
    what = _describe(code, ndim)
    if found < expected:
        end = " (its gzip stream ends early)" if truncated_gzip else ""
        raise _fail(path, f"is truncated: expected {expected:,} bytes of {what} "
                          f"(shape {shape}), found {found:,}{end}")
    if found > expected:
        raise _fail(path, f"has {found - expected:,} bytes more than its header announces: "
                          f"expected {expected:,} bytes of {what} (shape {shape}), found {found:,}")
    values = np.frombuffer(data, dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))  # a writable copy in the machine's byte order


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one file in the official IDX format (the MNIST format), gzipped or not.

    Gzip is recognised by its magic bytes (1f 8b), not by the name. The header is checked: the
    magic number (two zero bytes, a known type code, at least one dimension) and that the data
    is exactly as long as the sizes announce. Any problem raises `DatasetError` with one line
    naming the file. Returns a new array of the stored shape (uint8 for MNIST)."""
    path = Path(path)
    return _parse_bytes(_read_bytes(path), path)


def _parse_bytes(raw: bytes, path: Path) -> np.ndarray:
    data = _gunzip(raw, path) if raw.startswith(GZIP_MAGIC) else raw
    return _parse_idx(data, path)


# --- where the files are ----------------------------------------------------------------------

NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# md5 of the official files, gzipped (as published) and uncompressed
OFFICIAL_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
# sha256 of the shipped subset, as written by scripts/make_mnist_subset.py
SUBSET_SHA256 = {
    "train-images-idx3-ubyte.gz": "76226cc87f1c4cc12f1f65b1d4ed7a55feffb0cd278ae4621b4e2a132637126b",
    "train-labels-idx1-ubyte.gz": "387339cb4d512c89c8fc667db02409099d2e11cb7be42663fcf0bbc05c1902ae",
    "t10k-images-idx3-ubyte.gz": "46c69f6f0dd4641853e321d7242ab02f6fcc9c94272ddd6c2953c0c4330e1111",
    "t10k-labels-idx1-ubyte.gz": "b42ecc3004fe544b93f9e23b216103f6e8417d82f371ca2a47bbdcdb5ce44998",
}
SUBSET_DIR = Path(__file__).resolve().parent / "mnist_subset"
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",  # the one torchvision uses
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)


def _locate(folder: Path) -> tuple[list[Path], list[str]]:
    """The four files in `folder` (gzipped preferred), and the names of those missing."""
    found, missing = [], []
    for name in NAMES:
        for candidate in (folder / f"{name}.gz", folder / name):
            if candidate.is_file():
                found.append(candidate)
                break
        else:
            missing.append(name)
    return found, missing


def _missing_text(missing: list[str]) -> str:
    return ", ".join(f"{name}[.gz]" for name in missing)


def _find_files(data_dir: str | os.PathLike | None) -> list[Path]:
    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        if not folder.is_dir():
            raise DatasetError(f"{folder} is not a folder. Point --data at the folder that holds "
                               "the four MNIST files, or leave it out to use the shipped subset.")
        found, missing = _locate(folder)
        if missing:
            raise DatasetError(
                f"{folder} lacks {len(missing)} of the 4 MNIST files: {_missing_text(missing)}. "
                "Put the official files there (gzipped or not), or leave --data out to use "
                "the shipped subset.")
        return found
    for folder in search_folders("mnist"):
        found, missing = _locate(folder)
        if not missing:
            return found
        if found:  # some but not all: a broken copy would otherwise go unnoticed
            raise DatasetError(
                f"{folder} holds only {len(found)} of the 4 MNIST files (missing: "
                f"{_missing_text(missing)}). Complete it with tinytorch.datasets.download_mnist() "
                "or by hand, or remove the folder to use the shipped subset.")
    return [SUBSET_DIR / f"{name}.gz" for name in NAMES]


def _verify(path: Path, raw: bytes) -> None:
    """Official names must hold the official files (or the shipped subset's)."""
    name = path.name
    if name in SUBSET_SHA256 and hashlib.sha256(raw).hexdigest() == SUBSET_SHA256[name]:
        return
    if path.parent == SUBSET_DIR:
        raise DatasetError(
            f"{path} is not the file shipped with tinytorch (its sha256 differs). The package is "
            "damaged: reinstall tinytorch (or run `tito build` in the course repository).")
    if name in OFFICIAL_MD5:
        digest = hashlib.md5(raw, usedforsecurity=False).hexdigest()
        if digest != OFFICIAL_MD5[name]:
            raise DatasetError(
                f"{path} is not the official MNIST file (md5 {digest}, expected "
                f"{OFFICIAL_MD5[name]}). Delete it and download again "
                "(tinytorch.datasets.download_mnist()); for other data in the MNIST format pass "
                "verify=False.")


def _identify(path: Path, raw: bytes) -> tuple[str, str]:
    """Which copy of MNIST this file is: ("shipped", "sha256:..."), ("official", "md5:...")
    or ("other", "sha256:..."), with its checksum in the algorithm of the table it matched."""
    sha256 = hashlib.sha256(raw).hexdigest()
    if SUBSET_SHA256.get(path.name) == sha256:
        return "shipped", f"sha256:{sha256}"
    md5 = hashlib.md5(raw, usedforsecurity=False).hexdigest()
    if OFFICIAL_MD5.get(path.name) == md5:
        return "official", f"md5:{md5}"
    return "other", f"sha256:{sha256}"


# --- the loader ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class MNIST:
    """The four arrays and where they came from. Unpacks like a 4-tuple:
    `x_train, y_train, x_test, y_test = load_mnist()`."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # the folder the files were read from
    full: bool  # True for the complete MNIST (60,000 train, 10,000 test)
    # which copy all four files are: "official" (the published md5s), "shipped" (the subset's
    # sha256s) or "other"; and the test images file's checksum in the matching algorithm
    origin: str = "other"
    test_checksum: str = ""

    def __iter__(self):
        return iter((self.x_train, self.y_train, self.x_test, self.y_test))

    def __len__(self) -> int:
        return 4

    def describe(self) -> str:
        """One line for a program to print: which data this is."""
        kind = "MNIST" if self.full else (
            "the MNIST subset shipped with tinytorch" if Path(self.source) == SUBSET_DIR
            else "MNIST-format data")
        return (f"{kind}: {len(self.x_train):,} training and {len(self.x_test):,} test images "
                f"from {self.source}")

    def __repr__(self) -> str:
        return (f"MNIST(x_train={self.x_train.shape}, x_test={self.x_test.shape}, "
                f"source={self.source!r}, full={self.full})")


def _read_checked(path: Path, verify: bool) -> tuple[np.ndarray, tuple[str, str]]:
    """The file's values and its identity (see `_identify`)."""
    raw = _read_bytes(path)
    shipped = path.parent == SUBSET_DIR
    if verify and shipped:  # a damaged package: say so before anything else
        _verify(path, raw)
    values = _parse_bytes(raw, path)  # names a truncated or malformed file precisely
    if verify and not shipped:
        _verify(path, raw)
    return values, _identify(path, raw)


def _check_pair(images: np.ndarray, labels: np.ndarray, image_path: Path, label_path: Path) -> None:
    if images.dtype != np.uint8 or images.ndim != 3:
        raise _fail(image_path, f"holds {images.dtype} data of {images.ndim} dimensions; MNIST "
                                f"images are unsigned bytes in 3 dimensions (magic 0x{IMAGES_MAGIC:08X})")
    if images.shape[1:] != (28, 28):
        raise _fail(image_path, f"holds images of {images.shape[1]}x{images.shape[2]} pixels, "
                                "MNIST images are 28x28")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise _fail(label_path, f"holds {labels.dtype} data of {labels.ndim} dimensions; MNIST "
                                f"labels are unsigned bytes in 1 dimension (magic 0x{LABELS_MAGIC:08X})")
    if len(labels) != len(images):
        raise _fail(label_path, f"holds {len(labels):,} labels but {image_path.name} holds "
                                f"{len(images):,} images", "Use files from the same copy of MNIST.")
    if labels.size and labels.max() > 9:
        raise _fail(label_path, f"holds the label {int(labels.max())}; MNIST labels are 0-9")


def load_mnist(
    data_dir: str | os.PathLike | None = None,
    *,
    normalize: bool = True,
    flatten: bool = False,
    verify: bool = True,
) -> MNIST:
    """MNIST as NumPy arrays: `x_train, y_train, x_test, y_test = load_mnist()`.

    Images are float32 in [0, 1] (`normalize=False`: the stored uint8 values 0-255), shaped
    (N, 28, 28), or (N, 784) with `flatten=True`; labels are int64 in 0-9. The result also says
    where the data came from (`.source`, `.full`, `.describe()`) and which copy it is: `.origin`
    is "official" when all four files have the published md5s, "shipped" when they are the
    subset's, else "other"; `.test_checksum` is the test images file's ("md5:..." or "sha256:...").

    Files come from `data_dir` if given (it must hold the four files), else
    `$TINYTORCH_DATA/mnist`, else `~/.tinytorch/data/mnist`, else the subset shipped with the
    package (4,000 train and 1,000 test images, 400 and 100 per class, ordered by class: shuffle
    before training). Files under the official names are checked against the official
    checksums; `verify=False` skips that (for other data in the MNIST format)."""
    train_images, train_labels, test_images, test_labels = _find_files(data_dir)
    (x_train, a), (y_train, b), (x_test, c), (y_test, d) = (
        _read_checked(path, verify) for path in (train_images, train_labels, test_images, test_labels))
    origins = {a[0], b[0], c[0], d[0]}
    _check_pair(x_train, y_train, train_images, train_labels)
    _check_pair(x_test, y_test, test_images, test_labels)

    def images(x: np.ndarray) -> np.ndarray:
        if normalize:
            x = x.astype(np.float32) / np.float32(255)
        return x.reshape(len(x), -1) if flatten else x

    return MNIST(
        images(x_train), y_train.astype(np.int64), images(x_test), y_test.astype(np.int64),
        source=str(train_images.parent),
        full=len(x_train) == 60_000 and len(x_test) == 10_000,
        origin=origins.pop() if len(origins) == 1 else "other",
        test_checksum=c[1],
    )


# --- the download (only when asked) ---------------------------------------------------------


def download_mnist(
    dest: str | os.PathLike | None = None,
    *,
    mirrors: tuple[str, ...] | list[str] = MIRRORS,
    timeout: float = 30.0,
) -> Path:
    """Download the four official MNIST files (gzipped) into `dest`, by default the cache folder
    (`$TINYTORCH_DATA/mnist` or `~/.tinytorch/data/mnist`), where `load_mnist()` finds them.

    Tries each mirror in turn, checks every file's md5 against the official one and moves it
    into place only when complete (files already there and correct are kept). Without internet
    it raises `DatasetError` saying so; `load_mnist()` then still works on the shipped subset.
    Returns the folder."""
    folder = Path(dest).expanduser() if dest is not None else data_home() / "mnist"
    names = ", ".join(f"{n}.gz" for n in NAMES)
    by_hand = f"put the official files ({names}) into {folder} by hand"
    for base in NAMES:
        name = f"{base}.gz"
        download([mirror.rstrip("/") + "/" + name for mirror in mirrors], folder / name,
                 OFFICIAL_MD5[name], timeout=timeout, by_hand=by_hand,
                 offline=("load_mnist() uses the 5,000-digit subset shipped with tinytorch by default; "
                          f"for the full MNIST {by_hand}."))
    return folder
