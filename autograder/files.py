"""Writing files so that nothing is ever lost: atomic writes, timestamped backups, and
reading a notebook that may be broken without ever overwriting it.

Every write of the student's notebooks, progress and configuration goes through
`atomic_write`: the new content is written to a temporary file in the same folder, flushed
to disk, then moved over the old file in one step (`os.replace`). An interrupted command
leaves either the old file or the new one, never half of each.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from autograder.errors import CourseError


def atomic_write(path: Path, data: str | bytes) -> None:
    """Replace `path` with `data` (text is written as UTF-8) in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        if path.exists():  # keep the permissions the file had
            shutil.copymode(path, temporary)
        else:
            os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def iso(moment: datetime) -> str:
    """ISO-8601 in UTC with a Z: 2025-01-31T14:05:09Z."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def compact(moment: datetime) -> str:
    """The timestamp used in file names: 20250131T140509Z."""
    return moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def parse_iso(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError, AttributeError):
        return None


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def backup(path: Path, folder: Path) -> Path:
    """Copy `path` into `folder` as `<stem>-<timestamp><suffix>` (never replacing a backup)."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = compact(utc_now())
    target = folder / f"{path.stem}-{stamp}{path.suffix}"
    counter = 1
    while target.exists():
        counter += 1
        target = folder / f"{path.stem}-{stamp}-{counter}{path.suffix}"
    atomic_write(target, path.read_bytes())
    return target


def read_notebook(path: Path, fix_hint: str | None = None):
    """Read a notebook, naming its path and the fix when it is not valid JSON or not a notebook.

    The file itself is never touched."""
    import nbformat  # heavy: nbformat

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CourseError(f"{path} does not exist.", fix_hint) from None
    except UnicodeDecodeError as error:
        raise CourseError(f"{path} is not a valid notebook: not UTF-8 text ({error.reason}).", fix_hint) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise CourseError(
            f"{path} is not a valid notebook: broken JSON at line {error.lineno}, column {error.colno} "
            f"({error.msg}). tito leaves the file as it is.",
            fix_hint,
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise CourseError(f"{path} is not a valid notebook: it has no list of cells.", fix_hint)
    try:
        return nbformat.reads(text, as_version=4)
    except Exception as error:  # nbformat raises a variety of validation errors
        raise CourseError(f"{path} is not a valid notebook: {error}", fix_hint) from None
