"""Write a synthetic CIFAR-10 in the official "python version" format, to try the cifar10
milestone's whole path (reader, checksums policy, augmentation, training, checkpoints) where
the real data cannot be downloaded.

The folder gets `cifar-10-batches-py/` with `data_batch_1` .. `data_batch_5`, `test_batch` and
`batches.meta`, each a protocol-2 pickle of a dict with bytes keys, exactly as in the official
archive: `b"data"` uint8 (N, 3072) (per image the 1024 red, the 1024 green, then the 1024 blue
values), `b"labels"` a list of N ints 0-9, `b"batch_label"`, `b"filenames"`; the meta file holds
`b"label_names"`. The images are not photos: each class has its own colour, and every image is
that colour plus uniform noise, so a network can learn the classes in an epoch or two. The
files are smaller than the official ones, so `load_cifar10(folder)` reads them as CIFAR-10-format
data (it checks md5s only for files of the official size or in its cache folders).

    python scripts/make_synthetic_cifar10.py DIR [--per-batch 400] [--test 400] [--seed 0]
    python milestones/cifar10.py --data DIR --epochs 1

The same seed writes the same bytes.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
from pathlib import Path

import numpy as np

FOLDER = "cifar-10-batches-py"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
PIXELS = 3 * 32 * 32
NOISE = 60                 # uniform noise of +-NOISE grey levels around each class's colour


def _palette(seed: int) -> np.ndarray:
    """Ten distinct RGB colours, one per class, (10, 3) in 40..215."""
    return np.random.default_rng((seed, 0)).integers(40, 216, (10, 3))


def synthetic_batch(n: int, seed: int, stream: int) -> tuple[np.ndarray, list[int]]:
    """n images as the official files store them: uint8 (n, 3072) and n labels, balanced."""
    rng = np.random.default_rng((seed, stream))
    labels = rng.permutation(np.arange(n) % 10)
    colours = _palette(seed)[labels]                                          # (n, 3)
    images = colours[:, :, None] + rng.integers(-NOISE, NOISE + 1, (n, 3, 1024))  # (n, 3, 32*32)
    return np.clip(images, 0, 255).astype(np.uint8).reshape(n, PIXELS), [int(v) for v in labels]


def _write(path: Path, content: dict) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "wb") as stream:
        pickle.dump(content, stream, protocol=2)
    os.replace(temporary, path)


def write_synthetic_cifar10(folder: str | os.PathLike, per_batch: int = 400, test: int = 400,
                            seed: int = 0) -> Path:
    """Write the seven files into folder/cifar-10-batches-py; returns that folder."""
    target = Path(folder) / FOLDER
    target.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    sizes = [per_batch] * 5 + [test]
    for stream, (name, n) in enumerate(zip(names, sizes), start=1):
        data, labels = synthetic_batch(n, seed, stream)
        label = "testing batch 1 of 1" if name == "test_batch" else f"training batch {stream} of 5"
        _write(target / name, {b"batch_label": label.encode(), b"labels": labels, b"data": data,
                               b"filenames": [f"synthetic_{stream}_{i}.png".encode() for i in range(n)]})
    _write(target / "batches.meta", {b"num_cases_per_batch": per_batch, b"num_vis": PIXELS,
                                     b"label_names": [c.encode() for c in CLASSES]})
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a synthetic CIFAR-10 in the official python format.")
    parser.add_argument("folder", help="where to write cifar-10-batches-py/")
    parser.add_argument("--per-batch", type=int, default=400, help="images per training batch file (5 files)")
    parser.add_argument("--test", type=int, default=400, help="images in test_batch")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.per_batch < 1 or args.test < 1:
        parser.error("--per-batch and --test must be at least 1")
    target = write_synthetic_cifar10(args.folder, args.per_batch, args.test, args.seed)
    print(f"wrote {5 * args.per_batch:,} training and {args.test:,} test images to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
