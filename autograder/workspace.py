"""The student's workspace: notebooks, the student's own `tinytorch`, progress and identity.

Layout (see README.md, "For students")::

    W/modules/NN_name/NN_name.ipynb   the student's notebook (authoritative)
    W/modules/NN_name/NN_name.py      its jupytext twin, with `tito module start NN --format py`
    W/modules/NN_name/backups/        timestamped copies made before anything is replaced
    W/tinytorch/                      the student's package: one file per completed module, plus
                                      what every tinytorch holds (autograder.build.base_package)
    W/.tito/progress.json             which module is started/complete, last test results
    W/.tito/config.yaml               the student's identity (and an optional nbgrader exchange)
    W/submissions/                    archives written by `tito submit`

Which workspace: `--workspace DIR`, else `$TITO_WORKSPACE`, else `workspace/` in the course
folder. Code runs against the student's package by putting W first on PYTHONPATH: W holds a
regular package `tinytorch/` (with `__init__.py`), so it fully shadows the reference one.
`Workspace.package_dir` is the one place that decides which package code imports; milestones reuse it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from autograder.build import base_package
from autograder.course import Course, Module
from autograder.errors import CourseError, warn
from autograder.files import atomic_write, compact, iso, parse_iso, utc_now

WORKSPACE_ENV = "TITO_WORKSPACE"
DEFAULT_FOLDER = "workspace"

LOCKED, AVAILABLE, STARTED, COMPLETE = "locked", "available", "started", "complete"
PROGRESS_VERSION = 1

def package_env(package_dir: Path, base: dict | None = None) -> dict[str, str]:
    """An environment in which `import tinytorch` finds the package under `package_dir` first."""
    env = dict(os.environ if base is None else base)
    rest = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(package_dir) + (os.pathsep + rest if rest else "")
    return env


# --- identity ---------------------------------------------------------------------------------

_ID_CHARS = re.compile(r"[^a-z0-9._-]")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def student_id_from_email(email: str) -> str:
    """The email's local part, lowercased, reduced to letters, digits, '.', '_' and '-'."""
    return _ID_CHARS.sub("", email.split("@", 1)[0].lower())


def check_identity(name: str | None, email: str | None, student_id: str | None = None) -> None:
    if name is not None and not name.strip():
        raise CourseError("The name is empty.", "Give your full name, e.g. --name 'Ada Lovelace'.")
    if email is not None and not _EMAIL.match(email.strip()):
        raise CourseError(f"'{email}' does not look like an email address.", "Use name@domain.tld.")
    if student_id is not None and not re.fullmatch(r"[a-z0-9._-]+", student_id):
        raise CourseError(
            f"'{student_id}' is not a valid student id.", "Use lowercase letters, digits, '.', '_' and '-'."
        )


@dataclass
class Identity:
    name: str
    email: str
    id: str

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "email": self.email}

    def __str__(self) -> str:
        return f"{self.name} <{self.email}> (id: {self.id})"


# --- progress ---------------------------------------------------------------------------------


@dataclass
class Progress:
    """What `.tito/progress.json` holds. `modules` maps a slug to its record:
    {"state": "started"|"complete", "started_at", "completed_at", "format": "ipynb"|"py",
    "last_test": {"at", "points", "max_points", "passed", "total", "failed": [ids]},
    "paired": {"ipynb": sha256, "py": sha256}}."""

    modules: dict[str, dict] = field(default_factory=dict)
    current: str | None = None
    # milestone name -> {"achieved_at", "result"}: the last run that reached its target
    milestones: dict[str, dict] = field(default_factory=dict)

    def entry(self, slug: str) -> dict:
        return self.modules.setdefault(slug, {})

    def state(self, slug: str) -> str | None:
        return self.modules.get(slug, {}).get("state")

    def to_json(self) -> str:
        data = {
            "version": PROGRESS_VERSION, "current": self.current, "modules": self.modules,
            "milestones": self.milestones,
        }
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Progress:
        """Parse and check the file; raises ValueError saying what is wrong."""
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("modules"), dict):
            raise ValueError("it has no 'modules' table")
        for slug, record in data["modules"].items():
            if not isinstance(record, dict) or record.get("state") not in (STARTED, COMPLETE):
                raise ValueError(f"the record of '{slug}' has no valid state")
            for key in ("last_test", "paired"):  # details that can be lost without harm
                if key in record and not isinstance(record[key], dict):
                    del record[key]
        current = data.get("current")
        milestones = data.get("milestones")
        return cls(
            modules=data["modules"],
            current=current if isinstance(current, str) else None,
            milestones={k: v for k, v in milestones.items() if isinstance(v, dict)}
            if isinstance(milestones, dict) else {},
        )


# --- the workspace ----------------------------------------------------------------------------


class Workspace:
    """A student's workspace folder (it exists when it holds `.tito/`)."""

    def __init__(self, root: Path, course: Course, reference: bool = False):
        self.root = Path(root).expanduser().resolve()
        self.course = course
        self.reference = reference

    @classmethod
    def locate(
        cls, path: Path | None = None, *, course: Course | None = None, reference: bool = False
    ) -> Workspace:
        """The workspace named by `path`, $TITO_WORKSPACE or the default (it may not exist yet)."""
        course = course or Course()
        if path is None and os.environ.get(WORKSPACE_ENV):
            path = Path(os.environ[WORKSPACE_ENV])
        if path is None:
            path = course.root / DEFAULT_FOLDER
        return cls(Path(path), course, reference)

    @classmethod
    def open(
        cls, path: Path | None = None, *, course: Course | None = None, reference: bool = False
    ) -> Workspace:
        """The existing workspace, or a clear error that says how to make one."""
        workspace = cls.locate(path, course=course, reference=reference)
        if not workspace.exists:
            where = workspace.root
            raise CourseError(
                f"No TinyTorch workspace at {where} (it has no .tito/ folder).",
                f"Make one with `tito init {where}` (or `tito module start 01`, which makes it on "
                f"first use); choose another folder with --workspace or ${WORKSPACE_ENV}.",
            )
        return workspace

    # -- folders and files

    @property
    def exists(self) -> bool:
        return (self.root / ".tito").is_dir()

    @property
    def tito_dir(self) -> Path:
        return self.root / ".tito"

    @property
    def progress_file(self) -> Path:
        return self.tito_dir / "progress.json"

    @property
    def config_file(self) -> Path:
        return self.tito_dir / "config.yaml"

    @property
    def modules_dir(self) -> Path:
        return self.root / "modules"

    @property
    def submissions_dir(self) -> Path:
        return self.root / "submissions"

    @property
    def package_dir(self) -> Path:
        """The folder whose `tinytorch/` code imports: the workspace, or the course folder for
        `--reference`."""
        return self.course.root if self.reference else self.root

    def module_dir(self, module: Module) -> Path:
        return self.modules_dir / module.slug

    def notebook_path(self, module: Module) -> Path:
        return self.module_dir(module) / f"{module.slug}.ipynb"

    def script_path(self, module: Module) -> Path:
        return self.module_dir(module) / f"{module.slug}.py"

    def backups_dir(self, module: Module) -> Path:
        return self.module_dir(module) / "backups"

    def package_file(self, module: Module) -> Path:
        """The student's exported file of this module."""
        return self.root / module.package_path

    def release_notebook(self, module: Module) -> Path:
        """The student notebook the course ships (what `tito module start` copies)."""
        path = self.course.assignments_dir / "release" / module.slug / f"{module.slug}.ipynb"
        if not path.is_file():
            raise CourseError(
                f"The course has no student notebook for {module.label} yet ({path}).",
                f"Ask your instructor, or run `tito build {module.number:02d}` in the course folder.",
            )
        return path

    def relative(self, path: Path) -> str:
        """A path as the student reads it: relative to the workspace when inside it."""
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    # -- making one

    def create(self) -> bool:
        """Make the folders, the package's `__init__.py` files and empty progress; False when
        the workspace was already there (then only missing pieces are added)."""
        root = self.root
        course_root = self.course.root
        if root == course_root or root in course_root.parents:
            raise CourseError(
                f"{root} holds the course itself; a workspace must be a folder of its own.",
                f"Use e.g. `tito init {course_root / DEFAULT_FOLDER}`.",
            )
        if (root / "tinytorch").exists() and not self.exists:
            raise CourseError(
                f"{root} already holds a tinytorch/ folder that tito did not make.",
                "Choose an empty folder for your workspace.",
            )
        created = not self.exists
        for folder in (self.tito_dir, self.modules_dir, self.submissions_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.ensure_package()
        if not self.progress_file.exists():
            atomic_write(self.progress_file, Progress().to_json())
        return created

    def ensure_package(self) -> None:
        """Write what every `tinytorch` holds before a module is exported into it (the
        generated `__init__.py` files and the course's support files, e.g. dataset readers),
        where missing or stale: new modules of the course may need new sub-packages."""

        for relative, content in base_package(self.course).items():
            path = self.root / relative
            data = content.encode("utf-8") if isinstance(content, str) else content
            if not path.is_file() or path.read_bytes() != data:
                atomic_write(path, data)

    # -- progress

    def load_progress(self) -> Progress:
        """Read progress; a missing or damaged file is rebuilt from the workspace (and a
        damaged one kept beside it), never a crash."""
        path = self.progress_file
        try:
            return Progress.from_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            progress = self.rebuild_progress()
        except (ValueError, UnicodeDecodeError) as error:
            kept = path.with_name(f"{path.name}.corrupt-{compact(utc_now())}")
            os.replace(path, kept)
            progress = self.rebuild_progress()
            warn(
                f"{path} was corrupted ({_short(error)}); rebuilt it from the "
                f"workspace ({_summary(progress)}). The damaged file is kept as {kept.name}."
            )
        self.save_progress(progress)
        return progress

    def rebuild_progress(self) -> Progress:
        """What the files say: an exported package file means complete, a notebook started."""
        progress = Progress()
        for module in self.course.modules:
            if self.package_file(module).is_file():
                state = COMPLETE
            elif self.notebook_path(module).is_file():
                state = STARTED
            else:
                continue
            record = progress.entry(module.slug)
            record["state"] = state
            record["format"] = "py" if self.script_path(module).is_file() else "ipynb"
            record["rebuilt_at"] = iso(utc_now())
        started = [slug for slug, r in progress.modules.items() if r["state"] == STARTED]
        progress.current = started[-1] if started else None
        return progress

    def save_progress(self, progress: Progress) -> None:
        atomic_write(self.progress_file, progress.to_json())

    def state(self, module: Module, progress: Progress) -> str:
        recorded = progress.state(module.slug)
        if recorded:
            return recorded
        return LOCKED if self.missing_prerequisites(module, progress) else AVAILABLE

    def missing_prerequisites(self, module: Module, progress: Progress) -> list[Module]:
        """Module N needs modules 1..N-1 complete."""
        return self.missing_up_to(module.number - 1, progress)

    def missing_up_to(self, number: int, progress: Progress) -> list[Module]:
        """The modules numbered up to `number` that are not complete (milestones use this)."""
        return [
            m for m in self.course.modules
            if m.number <= number and progress.state(m.slug) != COMPLETE
        ]

    def current_module(self, progress: Progress) -> Module | None:
        """The module in progress: the one started last and not complete."""
        started = [m for m in self.course.modules if progress.state(m.slug) == STARTED]
        if not started:
            return None
        for module in started:
            if module.slug == progress.current:
                return module
        return max(
            started, key=lambda m: (progress.modules[m.slug].get("started_at") or "", m.number)
        )

    def next_module(self, progress: Progress) -> Module | None:
        """The first module that is not complete."""
        for module in self.course.modules:
            if progress.state(module.slug) != COMPLETE:
                return module
        return None

    # -- configuration and identity

    def load_config(self) -> dict:
        path = self.config_file
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            data, reason = None, _short(error)
        else:
            if isinstance(data, dict) or data is None:
                return data or {}
            reason = "it is not a table of settings"
        kept = path.with_name(f"{path.name}.corrupt-{compact(utc_now())}")
        os.replace(path, kept)
        config = self._rebuild_config()
        self.save_config(config)
        found = "your identity recovered from your package" if config else "nothing to recover"
        warn(
            f"{path} was corrupted ({reason}); rebuilt it ({found}). "
            f"The damaged file is kept as {kept.name}."
        )
        return config

    def _rebuild_config(self) -> dict:
        progress = self.load_progress()
        for module in self.course.modules:
            package = self.package_file(module)
            if progress.state(module.slug) == COMPLETE and package.is_file():
                if "def personal_info" in package.read_text(encoding="utf-8", errors="replace"):
                    try:
                        info = probe_package(self, module).get("identity")
                        name, email = info["name"], info["email"]
                    except (CourseError, KeyError, TypeError):
                        continue
                    return {"student": {"name": name, "email": email, "id": student_id_from_email(email)}}
        return {}

    def save_config(self, config: dict) -> None:
        text = "# The workspace's configuration, written by tito (safe to edit by hand).\n"
        text += yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
        atomic_write(self.config_file, text)

    def identity(self, config: dict | None = None) -> Identity | None:
        student = (config if config is not None else self.load_config()).get("student")
        if not isinstance(student, dict):
            return None
        name, email = student.get("name"), student.get("email")
        if not name or not email:
            return None
        return Identity(str(name), str(email), str(student.get("id") or student_id_from_email(email)))

    def set_identity(self, name: str | None, email: str | None, student_id: str | None = None) -> Identity:
        """Store the identity; the id follows the email unless it was chosen by hand."""
        check_identity(name, email, student_id)
        config = self.load_config()
        student = config.get("student")
        student = dict(student) if isinstance(student, dict) else {}
        old_email = student.get("email")
        derived_before = old_email is None or student.get("id") in (None, student_id_from_email(old_email))
        if name is not None:
            student["name"] = name.strip()
        if email is not None:
            student["email"] = email.strip()
        if student_id is not None:
            student["id"] = student_id
        elif derived_before and student.get("email"):
            student["id"] = student_id_from_email(student["email"])
        config["student"] = student
        self.save_config(config)
        return self.identity(config)


def probe_package(workspace: Workspace, module: Module, timeout: int = 120) -> dict:
    """Import the module's package file in a fresh Python (never in tito's own process) with the
    workspace's package first on the path; return where it came from and, when the module
    defines `personal_info()`, what it returns."""
    script = (
        "import importlib, json, sys\n"
        "module = importlib.import_module(sys.argv[1])\n"
        "info = getattr(module, 'personal_info', None)\n"
        "out = {'file': getattr(module, '__file__', None)}\n"
        "if callable(info):\n"
        "    out['identity'] = info()\n"
        "print('\\n' + json.dumps(out, default=str))\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", script, module.package],
            env=package_env(workspace.package_dir), cwd=workspace.root,
            capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise CourseError(f"Importing {module.package} took longer than {timeout} s.") from None
    if done.returncode != 0:
        last = [line for line in done.stderr.strip().splitlines() if line.strip()][-3:]
        raise CourseError(f"Your package does not import: {' | '.join(last) or 'no error message'}.")
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise CourseError(f"Importing {module.package} printed no result.") from None


def _short(error: object) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _summary(progress: Progress) -> str:
    states = [r["state"] for r in progress.modules.values()]
    return f"{states.count(COMPLETE)} complete, {states.count(STARTED)} started"


def timestamp_of(record: dict, key: str) -> str:
    """A recorded UTC time, shown in local time as YYYY-MM-DD HH:MM (or '')."""
    moment = parse_iso(record.get(key) or "")
    return moment.astimezone().strftime("%Y-%m-%d %H:%M") if moment else ""
