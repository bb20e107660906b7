"""Where submissions come from: nbgrader's course layout, `tito submit` archives, or nbgrader's
exchange. Archives and the exchange are first brought into the course layout
(`assignments/submitted/<student>/<NN_name>/`, with nbgrader's `timestamp.txt`), so grading
always reads one place.

Archives are the ones `tito submit` writes; `autograder.submission.read_submission` reads
and verifies them (format and checksums). Of a student's archives for a module the newest
valid one wins, by its `submitted_at`; a broken archive is reported, never fatal. What a
module hands in besides its notebook (module 20's capstone report) is placed beside the
notebook, where `tito grade --export` reads it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from nbgrader.apps import NbGraderAPI
from nbgrader.utils import parse_utc

from autograder.config import nbgrader_config
from autograder.files import atomic_write
from autograder.submission import ATTACHMENTS, SubmissionError, read_submission

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f UTC"  # what nbgrader's exchange writes in timestamp.txt


@dataclass(frozen=True)
class Submission:
    """One student's notebook for one module, in the course layout."""

    student: str
    module: str  # slug, e.g. 01_setup
    folder: Path  # assignments/submitted/<student>/<module>

    @property
    def notebook(self) -> Path:
        return self.folder / f"{self.module}.ipynb"

    @property
    def timestamp(self) -> str | None:
        """The text of nbgrader's timestamp.txt, if there is one."""
        path = self.folder / "timestamp.txt"
        if not path.is_file():
            return None
        return path.read_text(encoding="utf-8", errors="replace").strip() or None


@dataclass(frozen=True)
class Problem:
    """Something found while collecting submissions that the instructor must know."""

    source: str
    message: str

    def to_dict(self) -> dict:
        return {"source": self.source, "message": self.message}


@dataclass(frozen=True)
class Version:
    """One valid archive of a student's module, whether or not it is the one graded."""

    student: str
    module: str
    submitted_at: str  # as the archive says, ISO-8601
    sha256: str
    archive: str  # the archive's file name
    data: bytes = field(repr=False)
    outcome: str = "collected"  # collected | superseded | kept-newer
    detail: str = ""


@dataclass
class Collected:
    submissions: list[Submission] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    identities: dict[str, dict] = field(default_factory=dict)  # student id -> {"name", "email"}
    versions: list[Version] = field(default_factory=list)  # every valid archive read (archives only)


def find_submissions(root: Path, slugs: list[str], students: list[str] | None = None) -> Collected:
    """Every `submitted/<student>/<module>/` of the given modules (and students)."""
    found = Collected()
    folder = Path(root) / "submitted"
    if not folder.is_dir():
        return found
    wanted = set(students or [])
    for student_dir in sorted(folder.iterdir()):
        if not student_dir.is_dir() or (wanted and student_dir.name not in wanted):
            continue
        if not STUDENT_ID.match(student_dir.name):
            found.problems.append(Problem(
                f"submitted/{student_dir.name}",
                "not a valid student id (letters, digits, _ . @ -): skipped",
            ))
            continue
        for slug in slugs:
            if (student_dir / slug).is_dir():
                found.submissions.append(Submission(student_dir.name, slug, student_dir / slug))
                identity = _identity_file(student_dir / slug)
                if identity:
                    found.identities[student_dir.name] = identity
    return found


def _identity_file(folder: Path) -> dict | None:
    try:
        meta = json.loads((folder / "submission.json").read_text(encoding="utf-8"))
        student = meta["student"]
        return {"name": str(student.get("name") or ""), "email": str(student.get("email") or "")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


# --- the notebook itself ------------------------------------------------------------------------

FIX = "open it in Jupyter or a text editor, fix it or download it again, and submit again"


class NotebookError(ValueError):
    """A handed-in notebook that cannot be read: one line saying what is wrong, where, and what
    the student does about it."""


def read_notebook(path: Path):
    """The handed-in notebook at `path` (nbformat v4), or NotebookError: a file cut short or
    edited by hand is named with the line and column where its JSON breaks."""
    import nbformat

    path = Path(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.end < len(data):
            raise NotebookError(f"{path.name} is not UTF-8 text (byte {error.start}): {FIX}") from None
        text = data[: error.start].decode("utf-8")  # cut short inside a character: say where the JSON ends
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        raise NotebookError(
            f"{path.name} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}): {FIX}"
        ) from None
    try:
        return nbformat.reads(text, as_version=4)
    except Exception as error:  # noqa: BLE001 - JSON, but not a notebook nbformat can read
        lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
        raise NotebookError(f"{path.name} is JSON but not a Jupyter notebook ({lines[-1][:200]}): {FIX}") from None


# --- tito submit archives ----------------------------------------------------------------------


def _parse_utc(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def import_archives(
    root: Path, folder: Path, slugs: list[str], students: list[str] | None = None
) -> Collected:
    """Verify every archive in `folder` and copy the newest valid one per student and module
    into the course layout. Broken archives are reported, never fatal; every valid archive is
    listed in `versions`, with what became of it."""

    collected = Collected()
    newest: dict[tuple[str, str], tuple[datetime, str, object]] = {}
    valid = []
    for path in sorted(Path(folder).glob("*.zip")):
        try:
            archive = read_submission(path)
            moment = _parse_utc(archive.submitted_at)
        except SubmissionError as error:
            collected.problems.append(Problem(path.name, f"{str(error).removeprefix(path.name + ': ')}: skipped"))
            continue
        except ValueError:
            collected.problems.append(Problem(path.name, "submitted_at is not an ISO-8601 time: skipped"))
            continue
        if not STUDENT_ID.match(archive.student_id):
            collected.problems.append(Problem(path.name, "not a valid student id: skipped"))
            continue
        if archive.module not in slugs or (students and archive.student_id not in students):
            continue
        key = (archive.student_id, archive.module)
        valid.append(archive)
        if key not in newest or (moment, path.name) > newest[key][:2]:
            newest[key] = (moment, path.name, archive)
    outcomes = {}
    for (student, module), (moment, _, archive) in sorted(newest.items()):
        target = Path(root) / "submitted" / student / module
        stamp = moment.strftime(TIMESTAMP_FORMAT)
        existing = Submission(student, module, target).timestamp
        outcomes[archive.path.name] = ("collected", f"into submitted/{student}/{module}")
        if existing:
            try:
                if parse_utc(existing) > moment:
                    collected.problems.append(Problem(
                        archive.path.name,
                        f"submitted/{student}/{module} already holds a newer submission ({existing}): kept it",
                    ))
                    outcomes[archive.path.name] = ("kept-newer", f"submitted/ holds a newer one ({existing})")
                    continue
            except (ValueError, OverflowError):
                pass  # an unreadable timestamp loses against a verified archive
        target.mkdir(parents=True, exist_ok=True)
        atomic_write(target / f"{module}.ipynb", archive.notebook_bytes)
        atomic_write(target / "timestamp.txt", stamp + "\n")
        for name in ATTACHMENTS.get(module, ()):             # what came with the notebook, and only that
            if name in archive.attachments:
                atomic_write(target / name, archive.attachments[name])
            else:
                (target / name).unlink(missing_ok=True)
        meta = {"module": module, "student": archive.student, "submitted_at": archive.submitted_at,
                "tito_version": archive.tito_version, "sha256": archive.sha256, "archive": archive.path.name}
        atomic_write(target / "submission.json", json.dumps(meta, indent=1, sort_keys=True) + "\n")
        collected.identities[student] = {"name": archive.student["name"], "email": archive.student["email"]}
    for archive in valid:
        winner = newest[(archive.student_id, archive.module)][2]
        outcome, detail = outcomes.get(archive.path.name, ("superseded", f"superseded by the newer {winner.path.name}"))
        collected.versions.append(Version(
            archive.student_id, archive.module, archive.submitted_at, archive.sha256, archive.path.name,
            archive.notebook_bytes, outcome, detail,
        ))
    return collected


# --- nbgrader's exchange --------------------------------------------------------------------------


def collect_exchange(root: Path, exchange: Path, course_id: str, slugs: list[str]) -> Collected:
    """nbgrader's own collect: the newest submission per student from the exchange's inbound
    folder into the course layout."""

    collected = Collected()
    inbound = Path(exchange) / course_id / "inbound"
    if not inbound.is_dir():
        collected.problems.append(Problem(str(inbound), "no such exchange inbound folder: nothing collected"))
        return collected
    config = nbgrader_config(Path(root))
    config.Exchange.root = str(exchange)
    config.CourseDirectory.course_id = course_id
    api = NbGraderAPI(config=config)
    for slug in slugs:
        result = api.collect(slug, update=True)
        if not result.get("success"):
            detail = (result.get("error") or result.get("log") or "").strip().splitlines()
            collected.problems.append(Problem(
                f"exchange {course_id}/{slug}", "nbgrader collect failed: " + (detail[-1] if detail else "?"),
            ))
    return collected
