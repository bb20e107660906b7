"""CIFAR-10: the reader for the official "python version" batches, safe archive extraction, the
loader, and a download where the internet works.

The official archive `cifar-10-python.tar.gz` holds one folder, `cifar-10-batches-py/`, with
`data_batch_1` .. `data_batch_5` (10,000 training images each), `test_batch` (10,000 test
images) and `batches.meta` (the ten class names). Each is a Python 2 pickle of a dict:
`b"data"`, a uint8 array of shape (N, 3072) (per image the 1024 red, then the 1024 green, then
the 1024 blue values, rows top to bottom), and `b"labels"`, N integers 0-9.

`load_cifar10()` reads them from the first of these that has them:

1. `data_dir`, when given (the milestone's `--data DIR`): it may hold the batch files, the
   `cifar-10-batches-py/` folder, or only the archive (extracted there, safely, on first use);
2. `$TINYTORCH_DATA/cifar10`, when that variable is set;
3. `~/.tinytorch/data/cifar10`, the cache folder that `download_cifar10()` fills.

Nothing ships inside the package (CIFAR-10 is 170 MB) and nothing is downloaded unless you call
`download_cifar10()`.

**Why the checksums matter.** The batches are pickles, and unpickling a file runs whatever code
its author put in it. So the reader unpickles only files it has a reason to trust:

- with `verify=True` (the default), a file in a cache folder must be the official file (its md5
  is checked, so nobody can drop a malicious "data_batch_1" there), and any file of the exact
  size of an official one must have its md5 too (a damaged download is named, not half-read);
- a smaller file in a folder you named yourself (`data_dir`) is read as CIFAR-10-format data:
  you pointed at it, as you would point Python at a script. Tests use such small files;
- `verify=False` skips all checks: only for files you trust.

NumPy and the standard library only.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import DatasetError, data_home, download, file_digest, reason, search_folders

FOLDER = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_SIZE = 170_498_071
URLS = ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",)
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
NAMES = (*TRAIN_BATCHES, TEST_BATCH, META)
# md5 and size in bytes of the official files, as extracted from the official archive
OFFICIAL = {
    "data_batch_1": ("c99cafc152244af753f735de768cd75f", 31_035_704),
    "data_batch_2": ("d4bba439e000b95fd0a9bffe97cbabec", 31_035_320),
    "data_batch_3": ("54ebc095f3ab1f0389bbae665268c751", 31_035_999),
    "data_batch_4": ("634d18415352ddfa80567beed471001a", 31_035_696),
    "data_batch_5": ("482c414d41f54cd18b22e5b47cb7c3cb", 31_035_623),
    "test_batch": ("40351d587109b95175f43aff81a1287e", 31_035_526),
    "batches.meta": ("5ff9c542aee3614f3951f8cda6e48888", 158),
}
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
PIXELS = 3 * 32 * 32
_FIX = "Delete it and get it again (tinytorch.datasets.download_cifar10()), or point --data at a complete copy."


def _fail(path: Path | str, problem: str, fix: str = _FIX) -> DatasetError:
    return DatasetError(f"{path} {problem}. {fix}")


# --- safe extraction ------------------------------------------------------------------------


def _unsafe(member: tarfile.TarInfo) -> str | None:
    """Why a member must not be extracted, or None when it is a plain file or folder inside."""
    name = member.name
    parts = Path(name).parts
    if name.startswith(("/", "\\")) or os.path.isabs(name) or (parts and ":" in parts[0]):
        return "has an absolute path"
    if ".." in parts or ".." in name.replace("\\", "/").split("/"):
        return "points outside the folder (..)"
    if member.issym() or member.islnk():
        return f"is a link (to {member.linkname})"
    if not (member.isfile() or member.isdir()):
        return "is a device, a pipe or another special file"
    return None


def extract_cifar10(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Extract the CIFAR-10 archive into `dest` safely; return `dest/cifar-10-batches-py`.

    Every member is checked before anything is written: an absolute path, a `..`, a link, a
    device or any name outside `cifar-10-batches-py/` makes the whole archive a `DatasetError`
    (a crafted archive could otherwise write anywhere on the disk). Only the batch files and
    `batches.meta` are written, into a temporary folder that is renamed into place when
    complete, so an interrupted extraction leaves nothing half-written."""
    archive, dest = Path(archive), Path(dest)
    target = dest / FOLDER
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                problem = _unsafe(member)
                if problem is None and Path(member.name).parts[:1] != (FOLDER,):
                    problem = f"is not inside {FOLDER}/"
                if problem:
                    raise _fail(archive, f"is unsafe: its member {member.name!r} {problem}; nothing "
                                         "was extracted", "Use the official archive.")
            wanted = {f"{FOLDER}/{name}": member for member in members
                      for name in NAMES if member.isfile() and member.name == f"{FOLDER}/{name}"}
            missing = [name for name in NAMES if f"{FOLDER}/{name}" not in wanted]
            if missing:
                raise _fail(archive, f"lacks {', '.join(missing)} in {FOLDER}/")
            dest.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(prefix=f".{FOLDER}.", dir=dest))
            try:
                for name, member in wanted.items():
                    source = tar.extractfile(member)
                    with source, (scratch / Path(name).name).open("wb") as out:
                        shutil.copyfileobj(source, out)
                if target.exists():
                    shutil.rmtree(target)
                os.replace(scratch, target)
            except BaseException:
                shutil.rmtree(scratch, ignore_errors=True)
                raise
    except FileNotFoundError:
        raise DatasetError(f"{archive} does not exist. Check the path.") from None
    except (tarfile.TarError, EOFError, OSError) as error:
        raise _fail(archive, f"is not a complete tar.gz archive ({reason(error)})") from None
    return target


# --- reading one batch ----------------------------------------------------------------------


def _trusted(path: Path, explicit: bool, verify: bool) -> str:
    """Refuse to unpickle a file unless it is official or the user pointed at it (see above);
    return its md5."""
    md5, size = OFFICIAL[path.name]
    actual = path.stat().st_size
    digest = file_digest(path)
    if verify and (actual == size or not explicit):
        if digest != md5:
            what = ("is damaged: it has the size of the official file but not its md5"
                    if actual == size else
                    f"is not the official CIFAR-10 file ({actual:,} bytes, md5 {digest})")
            raise _fail(path, f"{what}; it was not unpickled (a pickle can run code)",
                        "Delete it and download again (tinytorch.datasets.download_cifar10()); "
                        "for your own files in this format, pass their folder as data_dir")
    return digest


def read_batch(path: str | os.PathLike) -> dict:
    """Unpickle one CIFAR-10 batch file (no checksum: call it only on files you trust).

    Returns the dict with bytes keys, as stored: `b"data"` uint8 (N, 3072), `b"labels"`; or,
    for `batches.meta`, `b"label_names"`. Damaged files raise `DatasetError` with one line."""
    path = Path(path)
    try:
        with path.open("rb") as stream:
            content = pickle.load(stream, encoding="bytes")
    except FileNotFoundError:
        raise DatasetError(f"{path} does not exist. Check the path.") from None
    except EOFError:
        raise _fail(path, "is truncated: its pickle ends early") from None
    except Exception as error:  # UnpicklingError, ValueError, ... from damaged data
        raise _fail(path, f"is not a CIFAR-10 batch (cannot unpickle: {reason(error)})") from None
    if not isinstance(content, dict):
        raise _fail(path, f"holds a {type(content).__name__}, not the dict of a CIFAR-10 batch")
    return content


def _images_labels(path: Path, content: dict) -> tuple[np.ndarray, np.ndarray]:
    data, labels = content.get(b"data"), content.get(b"labels")
    if not isinstance(data, np.ndarray) or labels is None:
        raise _fail(path, 'lacks b"data" (an array) or b"labels"; it is not a CIFAR-10 batch')
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        raise _fail(path, f"holds {data.dtype} data of shape {data.shape}; CIFAR-10 batches "
                          f"hold uint8 of shape (N, {PIXELS})")
    labels = np.asarray(labels)
    if labels.shape != (len(data),) or labels.dtype.kind not in "iu":
        raise _fail(path, f"holds {labels.size} labels of type {labels.dtype} for {len(data)} "
                          "images; it needs one integer label per image")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise _fail(path, f"holds the label {int(labels.max() if labels.max() > 9 else labels.min())}; "
                          "CIFAR-10 labels are 0-9")
    return data.reshape(len(data), 3, 32, 32), labels.astype(np.int64)


# --- where the files are --------------------------------------------------------------------


def _batch_folder(folder: Path) -> Path | None:
    """The folder holding the batch files: `folder` itself or `folder/cifar-10-batches-py`."""
    for candidate in (folder, folder / FOLDER):
        if all((candidate / name).is_file() for name in NAMES):
            return candidate
    return None


def _missing(folder: Path) -> list[str]:
    inner = folder / FOLDER if (folder / FOLDER).is_dir() else folder
    return [name for name in NAMES if not (inner / name).is_file()]


def _find(data_dir: str | os.PathLike | None, verify: bool) -> tuple[Path, bool]:
    """(the folder with the batch files, whether the user named it), extracting if needed."""
    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        if not folder.is_dir():
            raise DatasetError(f"{folder} is not a folder. Point --data at the folder that holds "
                               f"{FOLDER}/ or {ARCHIVE}.")
        candidates, explicit = [folder], True
    else:
        candidates, explicit = search_folders("cifar10"), False
    for folder in candidates:
        found = _batch_folder(folder)
        if found is not None:
            return found, explicit
        if (folder / ARCHIVE).is_file():
            archive = folder / ARCHIVE
            must_match = verify and (not explicit or archive.stat().st_size == ARCHIVE_SIZE)
            if must_match and file_digest(archive) != ARCHIVE_MD5:
                raise _fail(folder / ARCHIVE, "is not the official archive (its md5 differs)")
            return extract_cifar10(folder / ARCHIVE, folder), explicit
        if explicit or (folder.exists() and any(folder.iterdir())):
            missing = _missing(folder)
            raise DatasetError(
                f"{folder} lacks {len(missing)} of the {len(NAMES)} CIFAR-10 files "
                f"({', '.join(missing)}) and holds no {ARCHIVE}. Download them with "
                "tinytorch.datasets.download_cifar10(), or complete the folder by hand.")
    raise DatasetError(
        f"CIFAR-10 is not on this machine (looked in {', '.join(str(f) for f in candidates)}). "
        "Run tinytorch.datasets.download_cifar10() where the internet works, or put "
        f"{ARCHIVE} (from https://www.cs.toronto.edu/~kriz/cifar.html) into one of those folders.")


# --- the loader -----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CIFAR10:
    """The four arrays, the class names and where they came from. Unpacks like a 4-tuple:
    `x_train, y_train, x_test, y_test = load_cifar10()`."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]
    source: str
    full: bool  # True for the complete CIFAR-10 (50,000 train, 10,000 test)
    # "official" when all seven files have the official md5s, else "other"; and the md5 of
    # the test batch as read ("md5:...")
    origin: str = "other"
    test_checksum: str = ""

    def __iter__(self):
        return iter((self.x_train, self.y_train, self.x_test, self.y_test))

    def __len__(self) -> int:
        return 4

    def describe(self) -> str:
        kind = "CIFAR-10" if self.full else "CIFAR-10-format data"
        return (f"{kind}: {len(self.x_train):,} training and {len(self.x_test):,} test images "
                f"from {self.source}")

    def __repr__(self) -> str:
        return (f"CIFAR10(x_train={self.x_train.shape}, x_test={self.x_test.shape}, "
                f"source={self.source!r}, full={self.full})")


def load_cifar10(
    data_dir: str | os.PathLike | None = None,
    *,
    normalize: bool = True,
    channels_last: bool = False,
    verify: bool = True,
) -> CIFAR10:
    """CIFAR-10 as NumPy arrays: `x_train, y_train, x_test, y_test = load_cifar10()`.

    Images are float32 in [0, 1] (`normalize=False`: the stored uint8 0-255), shaped
    (N, 3, 32, 32), channels first as stored (`channels_last=True`: (N, 32, 32, 3)); labels are
    int64 in 0-9; `.classes` holds the ten names. `.origin` is "official" when every file has
    its official md5 (else "other") and `.test_checksum` is the test batch's md5. Where the files
    are looked for, and which are checked against the official md5s before they are unpickled,
    is said in the module's docstring; any problem is a `DatasetError` of one line naming the
    file."""
    folder, explicit = _find(data_dir, verify)
    parts, digests = {}, {}
    for name in NAMES:
        path = folder / name
        digests[name] = _trusted(path, explicit, verify)
        parts[name] = read_batch(path)
    train = [_images_labels(folder / name, parts[name]) for name in TRAIN_BATCHES]
    x_test, y_test = _images_labels(folder / TEST_BATCH, parts[TEST_BATCH])
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    names = parts[META].get(b"label_names")
    if not isinstance(names, list) or len(names) != 10:
        raise _fail(folder / META, 'lacks b"label_names", the ten class names')
    classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)

    def images(x: np.ndarray) -> np.ndarray:
        if channels_last:
            x = x.transpose(0, 2, 3, 1)
        x = np.ascontiguousarray(x)
        return x.astype(np.float32) / np.float32(255) if normalize else x

    return CIFAR10(images(x_train), y_train, images(x_test), y_test, classes=classes,
                   source=str(folder), full=len(x_train) == 50_000 and len(x_test) == 10_000,
                   origin="official" if all(digests[n] == OFFICIAL[n][0] for n in NAMES) else "other",
                   test_checksum=f"md5:{digests[TEST_BATCH]}")


# --- the download (only when asked) ---------------------------------------------------------


def download_cifar10(
    dest: str | os.PathLike | None = None,
    *,
    urls: tuple[str, ...] | list[str] = URLS,
    timeout: float = 60.0,
) -> Path:
    """Download the official archive into `dest` (by default the cache folder,
    `$TINYTORCH_DATA/cifar10` or `~/.tinytorch/data/cifar10`) and extract it there safely.

    The archive goes to a temporary file, its md5 is checked against the official one, and only
    then is it moved into place (an archive already there with the right md5 is kept).
    Without internet it raises `DatasetError` with one line saying so and what to do instead.
    Returns the folder that holds the batch files."""
    folder = Path(dest).expanduser() if dest is not None else data_home() / "cifar10"
    by_hand = f"put {ARCHIVE} (md5 {ARCHIVE_MD5}) into {folder} by hand"
    target = download(urls, folder / ARCHIVE, ARCHIVE_MD5, timeout=timeout, by_hand=by_hand,
                      offline=f"Where the internet works, run download_cifar10() again, or {by_hand}.")
    return extract_cifar10(target, folder)
