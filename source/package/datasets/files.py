"""What every dataset reader needs besides its format: where data lives, checksums, downloads.

One place for the parts the MNIST and CIFAR-10 readers (and the text corpus reader) share:

- `DatasetError`: a data file or folder is missing, damaged or not what it should be;
- `data_home()` and `search_folders(name)`: the cache folder (`$TINYTORCH_DATA` or
  `~/.tinytorch/data`) and the folders a reader looks in, in order;
- `file_digest(path, "md5" | "sha256")`: a file's checksum, read in blocks;
- `download(urls, target, md5, ...)`: try each URL in turn, check the md5, and move the file
  into place only when it is complete and correct;
- `reason(error)`: why a download failed, in a few words ("timed out", "HTTP 404", ...).

NumPy is not even needed here: the standard library only.
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

BLOCK = 1 << 20  # read and hash files a megabyte at a time


class DatasetError(ValueError):
    """A data file or folder is missing, damaged or not what it should be. The message is one
    line: the file, what is wrong, and what to do."""


def data_home() -> Path:
    """The cache folder: `$TINYTORCH_DATA` if set, else `~/.tinytorch/data`."""
    env = os.environ.get("TINYTORCH_DATA")
    return Path(env).expanduser() if env else Path.home() / ".tinytorch" / "data"


def search_folders(name: str) -> list[Path]:
    """Where a reader looks for the data set `name` when no folder is given, in order:
    `$TINYTORCH_DATA/name` (when that variable is set), then `~/.tinytorch/data/name`."""
    folders = []
    if os.environ.get("TINYTORCH_DATA"):
        folders.append(Path(os.environ["TINYTORCH_DATA"]).expanduser() / name)
    folders.append(Path.home() / ".tinytorch" / "data" / name)
    return folders


def file_digest(path: str | os.PathLike, algorithm: str = "md5") -> str:
    """The hex checksum of the file at `path` ("md5" as data sets publish them, or "sha256")."""
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with Path(path).open("rb") as stream:
        for block in iter(lambda: stream.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def reason(error: BaseException) -> str:
    """Why an operation on a file or URL failed, in a few words on one line."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code}"
    if isinstance(error, urllib.error.URLError):
        error = error.reason if isinstance(error.reason, BaseException) else error
    if isinstance(error, (TimeoutError, socket.timeout)):
        return "timed out"
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return text.replace("\n", " ")


def _fetch(url: str, folder: Path, name: str, timeout: float) -> tuple[Path, str]:
    """Download `url` into a temporary file in `folder`: (the file, its md5)."""
    handle, temp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
    temp = Path(temp_name)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            for block in iter(lambda: response.read(BLOCK), b""):
                digest.update(block)
                out.write(block)
        return temp, digest.hexdigest()
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def download(urls: Sequence[str], target: str | os.PathLike, md5: str, *, timeout: float,
             by_hand: str, offline: str) -> Path:
    """Put the file with checksum `md5` at `target`, from the first of `urls` that serves it.

    A file already at `target` with that md5 is kept (no request). Each download goes to a
    temporary file beside `target` and is moved into place (atomically) only when complete and
    correct, so nothing half-written or wrong is ever left. When no URL serves the file,
    `DatasetError` says, in one line, what each URL answered and then `by_hand` (what to put
    where) or, when no server answered at all, that the network looks unreachable and `offline`.
    Returns `target`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_file() and file_digest(target) == md5:
        return target
    failures, wrong = [], False
    for url in urls:
        try:
            temp, digest = _fetch(url, target.parent, target.name, timeout)
        except (OSError, ValueError) as error:  # URLError, HTTPError, timeouts, resets
            failures.append(f"{url}: {reason(error)}")
            continue
        if digest != md5:
            temp.unlink(missing_ok=True)
            failures.append(f"{url}: md5 {digest}, expected {md5}")
            wrong = True
            continue
        os.replace(temp, target)
        return target
    tried = "; ".join(failures)
    if wrong:
        raise DatasetError(f"Cannot download {target.name}: the servers did not send the official file "
                           f"({tried}). Nothing was kept; {by_hand}.")
    raise DatasetError(f"Cannot download {target.name}: no server answered ({tried}); the network looks "
                       f"unreachable from here. {offline}")
