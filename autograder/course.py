"""The course folder: where the sources, notebooks and package live, and which modules exist."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml

from autograder.errors import CourseError

_MODULE_DIR = re.compile(r"^(\d\d)_([a-z][a-z0-9_]*)$")


@dataclass(frozen=True)
class Module:
    """One module of the course, as declared by `source/NN_name/`."""

    number: int
    name: str
    title: str
    package: str  # dotted, e.g. tinytorch.core.tensor
    problem: str
    source_dir: Path

    @property
    def slug(self) -> str:
        return f"{self.number:02d}_{self.name}"

    @property
    def source_file(self) -> Path:
        return self.source_dir / f"{self.name}.py"

    @property
    def package_path(self) -> Path:
        """The package file relative to the folder that holds `tinytorch/`."""
        return Path(*self.package.split(".")).with_suffix(".py")

    @property
    def label(self) -> str:
        return f"{self.number:02d} {self.name}"


def _looks_like_course(path: Path) -> bool:
    return (path / "source").is_dir() and (path / "pyproject.toml").is_file()


def find_course_root(start: Path | None = None) -> Path:
    """The course folder: $TITO_COURSE, else the nearest parent of `start` (or the working
    directory) holding source/ and pyproject.toml, else the folder tito was installed from."""
    env = os.environ.get("TITO_COURSE")
    if env:
        root = Path(env).expanduser().resolve()
        if not _looks_like_course(root):
            raise CourseError(
                f"TITO_COURSE={env} is not a TinyTorch course folder (no source/ or pyproject.toml).",
                "Point TITO_COURSE at the folder you cloned, or unset it.",
            )
        return root
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if _looks_like_course(candidate):
            return candidate
    installed = Path(__file__).resolve().parent.parent
    if _looks_like_course(installed):
        return installed
    raise CourseError(
        "No TinyTorch course folder found here or above.",
        "cd into the folder you cloned, or set TITO_COURSE to it.",
    )


class Course:
    """The course folder and its modules."""

    def __init__(self, root: Path | None = None):
        self.root = (root or find_course_root()).resolve()

    @property
    def source_dir(self) -> Path:
        return self.root / "source"

    @property
    def assignments_dir(self) -> Path:
        return self.root / "assignments"

    @cached_property
    def modules(self) -> list[Module]:
        found = []
        for folder in sorted(self.source_dir.iterdir()):
            match = _MODULE_DIR.match(folder.name)
            if not folder.is_dir() or not match:
                continue
            meta_file = folder / "module.yaml"
            try:
                meta = yaml.safe_load(meta_file.read_text(encoding="utf-8")) or {}
            except FileNotFoundError:
                raise CourseError(
                    f"{meta_file} is missing.", "Every module folder needs a module.yaml: see source/README.md."
                ) from None
            except yaml.YAMLError as error:
                where = getattr(error, "problem_mark", None)
                line = f" (line {where.line + 1})" if where else ""
                raise CourseError(
                    f"{meta_file} is not valid YAML{line}: {getattr(error, 'problem', None) or error}.",
                    'Quote a value that holds a colon: problem: "still too big: remove weights".',
                ) from None
            if not isinstance(meta, dict):
                raise CourseError(f"{meta_file} must be a mapping of keys to values.", "See source/README.md.")
            missing = [key for key in ("title", "package") if not meta.get(key)]
            if missing:
                raise CourseError(f"{meta_file} lacks {', '.join(missing)}.", "See source/README.md.")
            found.append(
                Module(
                    number=int(match.group(1)),
                    name=match.group(2),
                    title=str(meta["title"]),
                    package=str(meta["package"]),
                    problem=str(meta.get("problem", "")),
                    source_dir=folder,
                )
            )
        return found

    def module(self, query: str | int) -> Module:
        """Find a module by `7`, `07`, `autograd` or `07_autograd`."""
        text = str(query).strip().lower()
        for module in self.modules:
            if text in (module.slug, module.name) or (text.isdigit() and int(text) == module.number):
                return module
        known = ", ".join(m.slug for m in self.modules) or "none"
        raise CourseError(f"Unknown module '{query}'.", f"Known modules: {known}.")
