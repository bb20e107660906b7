"""What `tito grade` collected, kept for good: the receipt of each run and every version of
every notebook it ever saw.

- **The store.** Every notebook a run collects (each valid archive, each notebook in
  `submitted/`, before anything replaces it) is copied once into
  `assignments/grades/collected/<student>/<NN_name>/<sha256>.ipynb`, beside a `<sha256>.json`
  that says when it was submitted, where it came from and when it was first collected. The
  name is the checksum of the bytes, so a later submission never replaces the record of an
  earlier one, and a file is never written twice.
- **The receipt.** Before grading, each run lists what it collected: student, module,
  submitted time, checksum, source (the folder, an archive, the exchange), and whether it is
  new, unchanged since the last grade, replaces an earlier version, or was not used (an older
  archive; a refused one, with the reason). The list is printed and written to
  `assignments/grades/receipts/<run>.json`, one file per run, never overwritten.

Where a notebook in `submitted/` came from is read from the folder: an archive's
`submission.json` names the archive and the notebook's checksum; a notebook that changed
while this run collected from nbgrader's exchange came from there; otherwise the store's
record of that version says, else it is the folder's own.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from nbgrader.utils import parse_utc

from autograder.config import GRADES_DIR, RECEIPTS_DIR, RUNS_DIR, STORE_DIR
from autograder.files import atomic_write, compact
from autograder.policy import parse_time

NEW, UNCHANGED, REPLACES = "new", "unchanged", "replaces"  # the states of a graded entry


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def store(root: Path, student: str, module: str, data: bytes, meta: dict) -> Path:
    """Keep `data` as `collected/<student>/<module>/<sha256>.ipynb` (once: an existing copy is
    the same bytes, so it is never rewritten). Returns its path."""

    digest = sha256_bytes(data)
    folder = Path(root) / GRADES_DIR / STORE_DIR / student / module
    target = folder / f"{digest}.ipynb"
    if not target.is_file():
        atomic_write(target, data)
    record = folder / f"{digest}.json"
    if not record.is_file():
        atomic_write(record, json.dumps({**meta, "sha256": digest}, indent=1, sort_keys=True) + "\n")
    return target


@dataclass
class Entry:
    """One version of one student's module seen by this run."""

    student: str
    module: str
    submitted_at: str | None  # ISO-8601 UTC, from the submission itself
    sha256: str | None  # None: no notebook in the folder
    source: str  # folder | exchange | archive <name>
    state: str  # new | unchanged | replaces | superseded | kept-newer
    detail: str  # what the state means here, for people
    graded: bool
    stored: str | None = None  # relative to the nbgrader course root

    def to_dict(self) -> dict:
        return {
            "student": self.student, "module": self.module, "submitted_at": self.submitted_at,
            "sha256": self.sha256, "source": self.source, "state": self.state, "detail": self.detail,
            "graded": self.graded, "stored": self.stored,
        }


@dataclass
class Receipt:
    run: str
    collected_at: str  # ISO-8601 UTC, the grading machine's clock
    entries: list[Entry] = field(default_factory=list)
    refused: list[dict] = field(default_factory=list)  # {"source", "reason"}
    path: Path | None = None

    def to_dict(self) -> dict:
        return {
            "run": self.run, "collected_at": self.collected_at,
            "entries": [e.to_dict() for e in self.entries], "refused": self.refused,
        }

    def write(self, root: Path) -> Path:
        self.path = Path(root) / GRADES_DIR / RECEIPTS_DIR / f"{self.run}.json"
        atomic_write(self.path, json.dumps(self.to_dict(), indent=2) + "\n")
        return self.path


def run_stamp(root: Path, now: datetime) -> str:
    """A name for this run that no earlier run or receipt has: 20260102T030405Z (-2, -3 … when
    two runs start in the same second)."""

    base = compact(now)
    folders = [Path(root) / GRADES_DIR / RUNS_DIR, Path(root) / GRADES_DIR / RECEIPTS_DIR]
    stamp, counter = base, 1
    while any((folder / f"{stamp}.json").exists() for folder in folders):
        counter += 1
        stamp = f"{base}-{counter}"
    return stamp


def iso_time(text: str | None) -> str | None:
    """An ISO-8601 time or an nbgrader timestamp (`2025-03-01 08:00:00.000000 UTC`) as
    ISO-8601 UTC, 2025-03-01T08:00:00Z; None when there is none or it is unreadable."""

    if not text:
        return None
    moment = parse_time(text)
    if moment is not None:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        return parse_utc(text).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError):
        return None


def notebook_bytes(submission) -> bytes | None:
    try:
        return submission.notebook.read_bytes()
    except OSError:
        return None


def keep_submitted(root: Path, submissions, run: str, collected_at: str) -> dict[tuple[str, str], str]:
    """Store every notebook in `submitted/` (so nothing a collection replaces is lost); return
    (student, module) -> sha256."""
    digests = {}
    for submission in submissions:
        data = notebook_bytes(submission)
        if data is None:
            continue
        meta = {"student": submission.student, "module": submission.module,
                "submitted_at": iso_time(submission.timestamp), "source": "folder",
                "first_collected": collected_at, "run": run}
        digests[(submission.student, submission.module)] = store(
            root, submission.student, submission.module, data, meta).stem
    return digests


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def source_of(root: Path, submission, digest: str | None, exchanged: set) -> str:
    """Where the notebook in submitted/ came from (see the module's docstring)."""
    meta = _read_json(submission.folder / "submission.json")
    if meta.get("archive") and digest and str(meta.get("sha256", "")).lower() == digest:
        return f"archive {meta['archive']}"
    if (submission.student, submission.module) in exchanged:
        return "exchange"
    if digest:
        kept = _read_json(Path(root) / GRADES_DIR / STORE_DIR / submission.student / submission.module / f"{digest}.json")
        if isinstance(kept.get("source"), str) and kept["source"]:
            return kept["source"]
    return "folder"


def build_receipt(root: Path, run: str, collected_at: str, found, collected, exchanged: set,
                  history: dict) -> Receipt:
    """The receipt of one run: every valid archive (`collected.versions`), every submission
    about to be graded (`found.submissions`, compared with `history`, the rows of earlier
    runs), and every refused archive; each version is stored on the way."""
    receipt = Receipt(run, collected_at)
    for version in collected.versions:
        source = f"archive {version.archive}"
        kept = store(root, version.student, version.module, version.data, {
            "student": version.student, "module": version.module, "submitted_at": iso_time(version.submitted_at),
            "source": source, "first_collected": collected_at, "run": run,
        })
        if version.outcome != "collected":
            receipt.entries.append(Entry(
                version.student, version.module, iso_time(version.submitted_at), version.sha256, source,
                version.outcome, version.detail, False, kept.relative_to(root).as_posix(),
            ))
    for submission in found.submissions:
        data = notebook_bytes(submission)
        digest = sha256_bytes(data) if data is not None else None
        source = source_of(root, submission, digest, exchanged)
        stored = None
        if data is not None:
            stored = store(root, submission.student, submission.module, data, {
                "student": submission.student, "module": submission.module,
                "submitted_at": iso_time(submission.timestamp), "source": source,
                "first_collected": collected_at, "run": run,
            }).relative_to(root).as_posix()
        before = history.get((submission.student, submission.module))
        when = f"run {before['run']}" if before and before.get("run") else "the last run"
        if before is None:
            state, detail = NEW, "new: not graded before"
        elif before.get("sha256") and before.get("sha256") == digest:
            state, detail = UNCHANGED, f"unchanged since it was graded in {when}"
        else:
            old = (before.get("sha256") or "")[:12] or "the version"
            state, detail = REPLACES, f"replaces {old} graded in {when}"
        if digest is None:
            detail += " (no notebook in the folder)"
        receipt.entries.append(Entry(
            submission.student, submission.module, iso_time(submission.timestamp), digest, source, state,
            detail, True, stored,
        ))
    receipt.entries.sort(key=lambda e: (e.student, e.module, not e.graded, e.submitted_at or ""))
    listed = {v.archive for v in collected.versions}  # a valid archive not used is an entry already
    problems = [*collected.problems, *found.problems]
    receipt.refused = [{"source": p.source, "reason": p.message} for p in problems if p.source not in listed]
    return receipt
