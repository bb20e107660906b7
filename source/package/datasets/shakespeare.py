"""Shakespeare as text: the corpus shipped with tinytorch, and the classic Tiny Shakespeare.

`load_shakespeare(split)` returns one split ("train" or "val") of one of these:

- `data=None` (the default): eight plays shipped inside the package (`shakespeare/`, about 1.1 MB:
  Hamlet, King Lear, Macbeth, Othello, Romeo and Juliet, Julius Caesar, Richard III, The Tempest),
  the last 10% of each play held out as "val". `shakespeare/README.md` says where the text comes
  from, its licence, how it was made (`scripts/make_shakespeare.py`) and its n-gram baselines.
- `data="tiny"`: the classic Tiny Shakespeare of karpathy/char-rnn (`input.txt`, 1,115,394
  characters, md5 6fb458f1232090904fb40fe944165e91), looked for in `$TINYTORCH_DATA/shakespeare`
  and `~/.tinytorch/data/shakespeare`, which `download_shakespeare()` fills. It is split as
  char-rnn and nanoGPT split it: the first 90% of the characters train, the rest validate, so
  results compare with published ones.
- `data=<path>`: that file, or `input.txt` in that folder, split 90/10 the same way. A file
  named `input.txt` must be the official one (its md5 is checked; `verify=False` skips that).

The default never depends on what happens to be in the cache folder: the same call gives the
same text on every machine. Nothing is downloaded unless you call `download_shakespeare()`.
Standard library only.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from .files import DatasetError, data_home, download, search_folders

SPLITS = ("train", "val")
SHIPPED_DIR = Path(__file__).resolve().parent / "shakespeare"
# sha256 of the shipped files, as written by scripts/make_shakespeare.py
SHIPPED_SHA256 = {
    "train.txt": "b7eabe09178d3410f2b8318a4ab82618bc89ac42911bc2696698ee5a4c3bafe0",
    "val.txt": "6c64f9a03327a058fbc521ec117462bcf5be2f12eeb16082d881974c37443638",
}
TINY_NAME = "input.txt"
TINY_MD5 = "6fb458f1232090904fb40fe944165e91"
TINY_URLS = ("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",)
TRAIN_FRACTION = 0.9
_GET_TINY = ("download it with tinytorch.datasets.download_shakespeare() where there is internet, "
             "or put char-rnn's input.txt there by hand")


@dataclass(frozen=True, eq=False)
class Shakespeare:
    """One split of a text corpus and where it came from."""

    text: str  # the whole split, as one string
    split: str  # "train" or "val"
    name: str  # which corpus, for people: "eight Shakespeare plays (shipped)", ...
    origin: str  # "shipped", or the path of the file the text was read from
    checksum: str  # sha256 of the text (UTF-8), to say exactly which text a result used

    def __len__(self) -> int:
        return len(self.text)

    def describe(self) -> str:
        """One line for a program to print: which text this is."""
        where = "shipped with tinytorch" if self.origin == "shipped" else f"from {self.origin}"
        return f"{self.name}, {self.split} split: {len(self.text):,} characters {where}"

    def __repr__(self) -> str:  # never the whole text
        return (f"Shakespeare(split={self.split!r}, name={self.name!r}, origin={self.origin!r}, "
                f"chars={len(self.text):,})")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path} does not exist. Check the path, or leave data out to use the "
                           "shipped corpus.") from None
    except OSError as error:
        raise DatasetError(f"{path} cannot be read: {error.strerror or error}.") from None


def _decode(raw: bytes, path: Path) -> str:
    """The file's text: UTF-8 (ASCII is UTF-8), not empty, no NUL bytes."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DatasetError(f"{path} is not UTF-8 text (byte 0x{raw[error.start]:02x} at offset "
                           f"{error.start:,}): it is damaged or not a text file. Get it again, or "
                           "pass a plain text file.") from None
    if "\0" in text:
        raise DatasetError(f"{path} holds a NUL byte at offset {text.index(chr(0)):,}: it is "
                           "damaged or not a text file. Get it again, or pass a plain text file.")
    return text


def _shipped(split: str) -> Shakespeare:
    path = SHIPPED_DIR / f"{split}.txt"
    raw = _read(path)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SHIPPED_SHA256[path.name]:
        raise DatasetError(f"{path} is not the file shipped with tinytorch (sha256 {digest}). The "
                           "package is damaged: reinstall tinytorch (or run `tito build` in the "
                           "course repository).")
    return Shakespeare(raw.decode("ascii"), split, "eight Shakespeare plays (shipped)", "shipped",
                       digest)


def _find_tiny() -> Path:
    folders = search_folders("shakespeare")
    for folder in folders:
        if (folder / TINY_NAME).is_file():
            return folder / TINY_NAME
    where = " or ".join(str(folder / TINY_NAME) for folder in folders)
    raise DatasetError(f"Tiny Shakespeare is not at {where}: {_GET_TINY}, or pass its path as data.")


def _from_file(path: Path, split: str, verify: bool) -> Shakespeare:
    if path.is_dir():
        path = path / TINY_NAME
    raw = _read(path)
    md5 = hashlib.md5(raw, usedforsecurity=False).hexdigest()
    official = md5 == TINY_MD5
    if verify and path.name == TINY_NAME and not official:
        raise DatasetError(f"{path} is not the official Tiny Shakespeare (md5 {md5}, expected "
                           f"{TINY_MD5}): delete it and {_GET_TINY}; for another text in this "
                           "format pass verify=False or another file name.")
    text = _decode(raw, path)
    cut = int(len(text) * TRAIN_FRACTION)  # char-rnn and nanoGPT: data[:int(n * 0.9)]
    if cut == 0 or cut == len(text):
        raise DatasetError(f"{path} has {len(text)} characters, too few to hold out 10% as "
                           "validation text. Pass a longer text.")
    part = text[:cut] if split == "train" else text[cut:]
    name = "Tiny Shakespeare (char-rnn)" if official else path.name
    return Shakespeare(part, split, name, str(path), hashlib.sha256(part.encode("utf-8")).hexdigest())


def load_shakespeare(split: str = "train", data: str | os.PathLike | None = None, *,
                     verify: bool = True) -> Shakespeare:
    """One split ("train" or "val") of Shakespeare's text: `load_shakespeare("val").text`.

    `data=None`: the eight plays shipped with tinytorch (train: the first 90% of each play, val:
    the last 10%). `data="tiny"`: the classic Tiny Shakespeare from the cache folder (see
    `download_shakespeare()`). `data=<path>`: that text file, or `input.txt` in that folder;
    the first 90% of its characters train, the rest validate. A file named `input.txt` must have
    Tiny Shakespeare's md5 unless `verify=False`. Problems raise `DatasetError` (one line)."""
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'val', got {split!r}.")
    if data is None:
        return _shipped(split)
    if isinstance(data, str) and data == "tiny":
        return _from_file(_find_tiny(), split, verify)
    return _from_file(Path(data).expanduser(), split, verify)


def download_shakespeare(dest: str | os.PathLike | None = None, *,
                         mirrors: tuple[str, ...] | list[str] = TINY_URLS,
                         timeout: float = 30.0) -> Path:
    """Download the classic Tiny Shakespeare (`input.txt`) into the folder `dest`, by default
    `$TINYTORCH_DATA/shakespeare` or `~/.tinytorch/data/shakespeare`, where
    `load_shakespeare(data="tiny")` finds it. The md5 is checked before the file is moved into
    place; a correct file already there is kept. Without internet it raises `DatasetError`
    saying so; the shipped corpus still works. Returns the file's path."""
    folder = Path(dest).expanduser() if dest is not None else data_home() / "shakespeare"
    return download(mirrors, folder / TINY_NAME, TINY_MD5, timeout=timeout,
                    by_hand=f"put char-rnn's {TINY_NAME} into {folder} by hand",
                    offline=("load_shakespeare() uses the eight plays shipped with tinytorch; for "
                             f"Tiny Shakespeare put char-rnn's {TINY_NAME} into {folder} by hand."))
