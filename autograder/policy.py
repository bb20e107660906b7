"""Due dates, late penalties and per-student extensions: the course's `course.yaml`, applied
through nbgrader's own mechanism.

    # course.yaml, in the course folder (beside pyproject.toml)
    due:                                  # one due date per module, with its UTC offset
      01_setup: 2026-12-01T23:59:00+00:00
    late_penalty:                         # none (the default) | zero | a rate
      per_hour: 1                         # points off for every started hour late (or per_day)
      max: 3                              # never more than this (optional)
    extensions:                           # per student and module: a duration or a new due date
      ada:
        01_setup: 48h                     # 90m, 36h, 2d, 1d 12h ...
      bob:
        01_setup: 2026-12-05T12:00:00+00:00

`tito grade` writes each module's due date into nbgrader's gradebook (`Assignment.duedate`)
and each extension into the student's submission (`SubmittedAssignment.extension`, what
nbgrader's `Gradebook.grant_extension` sets); nbgrader's `AssignLatePenalties` then records
the penalty (`SubmittedNotebook.late_submission_penalty`) from the submission's timestamp,
with `LatePenalty` below as its plugin. When course.yaml exists it is the one place for both:
a module it does not list has no due date, a student it does not list has no extension.
Without the file, the gradebook's own due dates and extensions (set with nbgrader's tools)
are left as they are, and late submissions are not penalised (nbgrader's default).

Every mistake in the file stops `tito grade` with one line naming the file and line.

`load_policy` reads and checks the file; `apply_policy` writes due dates and extensions into
the gradebook before grading (so the workers' copies hold them and their feedback shows the
penalty); `record_late` runs nbgrader's AssignLatePenalties on the real gradebook after each
submission's grades are merged, and reads the raw score, penalty and final score back.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nbformat
import yaml
from nbgrader.api import Gradebook
from nbgrader.plugins import LateSubmissionPlugin
from nbgrader.preprocessors import AssignLatePenalties
from sqlalchemy.exc import SAWarning
from traitlets import Enum, Float

from autograder.config import db_url, nbgrader_config
from autograder.errors import CourseError
from autograder.files import iso

POLICY_FILE = "course.yaml"
KEYS = ("due", "late_penalty", "extensions")
PERIODS = {"per_hour": 3600, "per_day": 86400}
_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*([wdhm])\s*)+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([wdhm])")
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60}
_STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


@dataclass(frozen=True)
class Penalty:
    """How many points a late submission loses; nbgrader never takes more than the score."""

    method: str = "none"  # none | zero | per_hour | per_day
    points: float = 0.0  # per started period (per_hour, per_day)
    cap: float | None = None  # at most this many points

    def penalty(self, score: float, seconds_late: float) -> float | None:
        if seconds_late <= 0 or self.method == "none":
            return None
        if self.method == "zero":
            return score
        periods = math.ceil(seconds_late / PERIODS[self.method])
        value = periods * self.points
        return value if self.cap is None else min(value, self.cap)

    def describe(self) -> str:
        if self.method == "none":
            return "no penalty"
        if self.method == "zero":
            return "a late submission scores zero"
        unit = "hour" if self.method == "per_hour" else "day"
        text = f"{self.points:g} point(s) per started {unit} late"
        return text + (f", at most {self.cap:g}" if self.cap is not None else "")

    def to_dict(self) -> dict:
        return {"method": self.method, "points": self.points, "cap": self.cap}


@dataclass(frozen=True)
class Policy:
    """What course.yaml says (empty when there is no such file)."""

    path: Path | None = None
    due: dict[str, datetime] = field(default_factory=dict)  # slug -> aware UTC time
    penalty: Penalty = Penalty()
    extensions: dict[tuple[str, str], timedelta] = field(default_factory=dict)  # (student, slug)

    @property
    def authoritative(self) -> bool:
        """With a course.yaml, due dates and extensions come from it alone."""
        return self.path is not None

    def extension(self, student: str, slug: str) -> timedelta | None:
        return self.extensions.get((student, slug))


class LatePenalty(LateSubmissionPlugin):
    """nbgrader's late-submission plugin, with the rates of course.yaml added to its own
    'none' and 'zero'. Set per run by `autograder.config.nbgrader_config(late_penalty=...)`."""

    method = Enum(("none", "zero", "per_hour", "per_day"), default_value="none").tag(config=True)
    points = Float(0.0, help="Points per started period late (per_hour, per_day).").tag(config=True)
    cap = Float(None, allow_none=True, help="At most this many points.").tag(config=True)

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float | None:
        return Penalty(self.method, self.points, self.cap).penalty(score, total_seconds_late)


# --- reading course.yaml ---------------------------------------------------------------------------


class _Invalid(Exception):
    def __init__(self, node, message: str):
        super().__init__(message)
        self.line = node.start_mark.line + 1 if node is not None else 1
        self.message = message


def _mapping(node, what: str) -> list[tuple[object, object]]:
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return []  # `due:` with nothing under it
    if not isinstance(node, yaml.MappingNode):
        raise _Invalid(node, f"{what} must be a mapping (key: value lines)")
    return node.value


def _scalar(node, what: str) -> str:
    if not isinstance(node, yaml.ScalarNode) or node.value == "":
        raise _Invalid(node, f"{what} must be a single value")
    return node.value


def parse_time(text: str) -> datetime | None:
    """An ISO-8601 time with its UTC offset (Z or +01:00), as aware UTC; None if it is not one."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(timezone.utc)


def parse_duration(text: str) -> timedelta | None:
    """`48h`, `90m`, `2d`, `1w`, `1d 12h` as a timedelta; None if it is not one."""
    if not _DURATION.match(text):
        return None
    seconds = sum(float(amount) * _UNITS[unit] for amount, unit in _DURATION_PART.findall(text))
    return timedelta(seconds=seconds)


def _time(node, what: str) -> datetime:
    text = _scalar(node, what)
    moment = parse_time(text)
    if moment is None:
        raise _Invalid(node, f"{what}: '{text}' is not a time with its UTC offset, like 2026-12-01T23:59:00+00:00")
    return moment


def _number(node, what: str) -> float:
    text = _scalar(node, what)
    try:
        value = float(text)
    except ValueError:
        raise _Invalid(node, f"{what}: '{text}' is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise _Invalid(node, f"{what}: '{text}' must be a number ≥ 0")
    return value


def _module(node, course) -> str:
    text = _scalar(node, "a module")
    try:
        return course.module(text).slug
    except CourseError:
        known = ", ".join(m.slug for m in course.modules)
        raise _Invalid(node, f"unknown module '{text}' (known: {known})") from None


def _penalty(node) -> Penalty:
    if isinstance(node, yaml.ScalarNode):
        if node.value in ("none", "zero"):
            return Penalty(node.value)
        raise _Invalid(node, f"late_penalty: '{node.value}' is not none, zero, or a rate (per_hour: N or per_day: N)")
    rates, cap = {}, None
    for key, value in _mapping(node, "late_penalty"):
        name = _scalar(key, "a key")
        if name in PERIODS:
            rates[name] = _number(value, f"late_penalty.{name}")
        elif name == "max":
            cap = _number(value, "late_penalty.max")
        else:
            raise _Invalid(key, f"late_penalty: unknown key '{name}' (per_hour, per_day, max)")
    if len(rates) != 1:
        raise _Invalid(node, "late_penalty needs exactly one rate: per_hour: N or per_day: N")
    [(method, points)] = rates.items()
    return Penalty(method, points, cap)


def _extensions(node, course, due: dict[str, datetime]) -> dict[tuple[str, str], timedelta]:
    found = {}
    for student_node, modules in _mapping(node, "extensions"):
        student = _scalar(student_node, "a student id")
        if not _STUDENT_ID.match(student):
            raise _Invalid(student_node, f"'{student}' is not a student id (letters, digits, _ . @ -)")
        for module_node, value in _mapping(modules, f"extensions.{student}"):
            slug = _module(module_node, course)
            if slug not in due:
                raise _Invalid(module_node, f"extensions.{student}.{slug}: {slug} has no due date under 'due'")
            text = _scalar(value, f"extensions.{student}.{slug}")
            length = parse_duration(text)
            if length is None:
                moment = parse_time(text)
                if moment is None:
                    raise _Invalid(value, (
                        f"extensions.{student}.{slug}: '{text}' is neither a duration (48h, 2d, 90m) "
                        "nor a time with its UTC offset"
                    ))
                length = moment - due[slug]
                if length <= timedelta(0):
                    raise _Invalid(value, f"extensions.{student}.{slug}: {text} is not after the due date")
            if length <= timedelta(0):
                raise _Invalid(value, f"extensions.{student}.{slug}: an extension must be longer than zero")
            found[(student, slug)] = length
    return found


def load_policy(course) -> Policy:
    """The policy in `<course>/course.yaml` (an empty one when there is no file). A mistake
    raises CourseError naming the file and line."""

    path = Path(course.root) / POLICY_FILE
    if not path.is_file():
        return Policy()
    hint = "Fix it as docs/instructors.md shows (\"Due dates, late penalties and extensions\")."
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (UnicodeDecodeError, OSError) as error:
        raise CourseError(f"{path}: cannot be read ({error}).", hint) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise CourseError(f"{path}{where}: not valid YAML ({getattr(error, 'problem', None) or error}).", hint) from None
    if root is None:
        return Policy(path)
    try:
        sections = {}
        for key, value in _mapping(root, "course.yaml"):
            name = _scalar(key, "a key")
            if name not in KEYS:
                raise _Invalid(key, f"unknown key '{name}' (known: {', '.join(KEYS)})")
            sections[name] = value
        due = {}
        if "due" in sections:
            for module_node, value in _mapping(sections["due"], "due"):
                slug = _module(module_node, course)
                due[slug] = _time(value, f"due.{slug}")
        penalty = _penalty(sections["late_penalty"]) if "late_penalty" in sections else Penalty()
        extensions = _extensions(sections["extensions"], course, due) if "extensions" in sections else {}
    except _Invalid as error:
        raise CourseError(f"{path}:{error.line}: {error.message}.", hint) from None
    return Policy(path, due, penalty, extensions)


def naive_utc(moment: datetime) -> datetime:
    """How nbgrader's gradebook stores times: naive, in UTC."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def describe_late(seconds: float) -> str:
    """`2 h 05 min`, `3 d 4 h`: how late, for people."""
    minutes = math.ceil(seconds / 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min"


# --- applying it: nbgrader's gradebook and its late-penalty step --------------------------------


def apply_policy(root: Path, policy, submissions) -> None:
    """Write the course's due dates into nbgrader's assignments and its extensions into the
    students' submissions (both read by nbgrader's late-penalty step), before any grading, so
    the workers' copies of the gradebook hold them too."""

    if not policy.authoritative:
        return
    warnings.filterwarnings("ignore", category=SAWarning)  # nbgrader's add_submission is noisy
    with Gradebook(db_url(root)) as gradebook:
        for slug in sorted({s.module for s in submissions}):
            assignment = gradebook.find_assignment(slug)
            due = policy.due.get(slug)
            assignment.duedate = naive_utc(due) if due else None
        gradebook.db.commit()
        for submission in submissions:
            gradebook.update_or_create_student(submission.student)
            gradebook.update_or_create_submission(
                submission.module, submission.student,
                extension=policy.extension(submission.student, submission.module),
            )


def record_late(root: Path, row, late_penalty: dict | None) -> None:
    """nbgrader's AssignLatePenalties on the real gradebook (`late_penalty`: the course's rule,
    as its plugin), then the row's raw score, penalty and final score, read back from it."""

    student, slug = row.student, row.module
    with Gradebook(db_url(root)) as gradebook:
        submission = gradebook.find_submission(slug, student)
        submission.timestamp = None if row.submitted_at is None else _naive_time(row.submitted_at)
        gradebook.db.commit()
    resources = {"nbgrader": {"notebook": slug, "assignment": slug, "student": student, "db_url": db_url(root)}}
    config = nbgrader_config(root, late_penalty=late_penalty)
    AssignLatePenalties(config=config).preprocess(nbformat.v4.new_notebook(), resources)
    with Gradebook(db_url(root)) as gradebook:
        submission = gradebook.find_submission(slug, student)
        raw = float(submission.score)
        penalty = float(submission.late_submission_penalty or 0.0)
        row.raw_score, row.late_penalty, row.score = raw, penalty, max(0.0, raw - penalty)
        row.seconds_late = float(submission.total_seconds_late)
        row.due = iso(_as_utc(submission.duedate)) if submission.duedate else None
        if submission.extension:
            row.extension = describe_late(submission.extension.total_seconds())


def _naive_time(text: str) -> datetime:
    return naive_utc(parse_time(text))


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc)
