"""The submission archive: written by `tito submit`, read by `tito grade`.

`<NN_name>-<student_id>-<YYYYmmddTHHMMSSZ>.zip` holds two files:

- `<NN_name>.ipynb`: the student's notebook, byte for byte;
- `submission.json`: {"module": "02_tensor", "student": {"id", "name", "email"},
  "submitted_at": "2025-01-31T14:05:09Z", "tito_version": "0.1.0", "sha256": "<hex>"},
  where sha256 is the checksum of the notebook file's bytes;

and, for a module that hands in more than its notebook (module 20 its capstone report:
`ATTACHMENTS`), each such file found, byte for byte, listed in submission.json as
"attachments": {name: sha256}.

`read_submission` verifies all of it, so a damaged or tampered archive is named, not graded.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from autograder.files import atomic_write

METADATA = "submission.json"
MODULE = re.compile(r"^\d\d_[a-z][a-z0-9_]*$")
STUDENT_ID = re.compile(r"^[a-z0-9._-]+$")
ARCHIVE_NAME = re.compile(
    r"^(?P<module>\d\d_[a-z][a-z0-9_]*)-(?P<student>[a-z0-9._-]+)-(?P<stamp>\d{8}T\d{6}Z)\.zip$"
)


# What a module hands in besides its notebook: files of the workspace's top folder, when present.
ATTACHMENTS = {"20_capstone": ("capstone-report.json",)}


class SubmissionError(ValueError):
    """An archive that is not a valid submission; the message says what is wrong."""


@dataclass(frozen=True)
class Submission:
    path: Path
    module: str
    student: dict[str, str]
    submitted_at: str
    tito_version: str
    sha256: str
    notebook_name: str
    notebook_bytes: bytes
    attachments: dict[str, bytes] = field(default_factory=dict)   # name -> bytes (see ATTACHMENTS)

    @property
    def student_id(self) -> str:
        return self.student["id"]

    def notebook(self):
        import nbformat  # heavy: nbformat

        return nbformat.reads(self.notebook_bytes.decode("utf-8"), as_version=4)


def archive_name(module: str, student_id: str, moment: datetime) -> str:
    stamp = moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{module}-{student_id}-{stamp}.zip"


def write_submission(
    notebook_path: Path,
    *,
    module: str,
    student: dict[str, str],
    dest_dir: Path,
    tito_version: str,
    now: datetime | None = None,
    attachments: dict[str, bytes] | None = None,
) -> Path:
    """Write the archive of `notebook_path` (and `attachments`, name -> bytes, among the module's
    ATTACHMENTS) into `dest_dir` (atomically) and return its path."""

    if not MODULE.match(module):
        raise SubmissionError(f"'{module}' is not a module name like 02_tensor.")
    for key in ("id", "name", "email"):
        if not isinstance(student.get(key), str) or not student[key].strip():
            raise SubmissionError(f"the student's {key} is missing.")
    if not STUDENT_ID.match(student["id"]):
        raise SubmissionError(f"'{student['id']}' is not a valid student id ([a-z0-9._-]).")
    attachments = dict(attachments or {})
    unknown = sorted(set(attachments) - set(ATTACHMENTS.get(module, ())))
    if unknown:
        raise SubmissionError(f"{module} hands in no file named {', '.join(unknown)}.")
    notebook = Path(notebook_path).read_bytes()
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)
    dest_dir = Path(dest_dir)
    target = dest_dir / archive_name(module, student["id"], moment)
    while target.exists():  # two submissions in one second: the later one gets the next second
        moment += timedelta(seconds=1)
        target = dest_dir / archive_name(module, student["id"], moment)
    metadata = {
        "module": module,
        "student": {"id": student["id"], "name": student["name"], "email": student["email"]},
        "submitted_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tito_version": tito_version,
        "sha256": hashlib.sha256(notebook).hexdigest(),
    }
    if attachments:
        metadata["attachments"] = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(attachments.items())}
    buffer = io.BytesIO()
    stamp = moment.timetuple()[:6]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in ((f"{module}.ipynb", notebook), *sorted(attachments.items()), (METADATA, _json_bytes(metadata))):
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    atomic_write(target, buffer.getvalue())
    return target


def _json_bytes(data: dict) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def read_submission(path: Path) -> Submission:
    """Open and verify an archive; raises SubmissionError naming the archive and the problem."""
    path = Path(path)

    def fail(why: str) -> SubmissionError:
        return SubmissionError(f"{path.name}: {why}")

    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise fail(f"not a readable zip archive ({error})") from None
    with archive:
        names = set(archive.namelist())
        if METADATA not in names:
            raise fail(f"{METADATA} is missing")
        try:
            metadata = json.loads(archive.read(METADATA).decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise fail(f"{METADATA} is not valid JSON ({error})") from None
        if not isinstance(metadata, dict):
            raise fail(f"{METADATA} is not a JSON object")
        module = metadata.get("module")
        if not isinstance(module, str) or not MODULE.match(module):
            raise fail(f"{METADATA} names no valid module (got {module!r})")
        student = metadata.get("student")
        if not isinstance(student, dict) or not all(
            isinstance(student.get(k), str) and student[k] for k in ("id", "name", "email")
        ):
            raise fail(f"{METADATA} lacks the student's id, name or email")
        for key in ("submitted_at", "tito_version", "sha256"):
            if not isinstance(metadata.get(key), str) or not metadata[key]:
                raise fail(f"{METADATA} lacks '{key}'")
        notebook_name = f"{module}.ipynb"
        if notebook_name not in names:
            raise fail(f"the notebook {notebook_name} is missing")
        notebook = archive.read(notebook_name)
        listed = metadata.get("attachments", {})
        if not isinstance(listed, dict) or not all(isinstance(v, str) for v in listed.values()):
            raise fail(f"{METADATA}'s attachments are not a table of names and checksums")
        unknown = sorted(set(listed) - set(ATTACHMENTS.get(module, ())))
        if unknown:
            raise fail(f"{METADATA} lists {', '.join(unknown)}, which {module} does not hand in")
        missing = sorted(set(listed) - names)
        if missing:
            raise fail(f"the attachment {', '.join(missing)} is missing")
        attachments = {name: archive.read(name) for name in sorted(listed)}
    for name, data in attachments.items():
        if hashlib.sha256(data).hexdigest() != listed[name].lower():
            raise fail(f"{name} does not match its checksum (damaged or changed after submission)")
    if hashlib.sha256(notebook).hexdigest() != metadata["sha256"].lower():
        raise fail("the notebook does not match its checksum (damaged or changed after submission)")
    return Submission(
        path=path,
        module=module,
        student={k: student[k] for k in ("id", "name", "email")},
        submitted_at=metadata["submitted_at"],
        tito_version=metadata["tito_version"],
        sha256=metadata["sha256"].lower(),
        notebook_name=notebook_name,
        notebook_bytes=notebook,
        attachments=attachments,
    )
