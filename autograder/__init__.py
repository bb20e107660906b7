"""The course library below the command line: the course model, the build, the student's
workspace and workflow, notebook execution, and the grading pipeline behind `tito grade`.
`tito` is a thin layer of commands over it; nothing here imports `tito`
(docs/contributors.md, "Layers")."""

from __future__ import annotations

import os
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

try:
    __version__ = version("tinytorch")  # the distribution that ships tinytorch, tito and this library
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"


def tools_on_path() -> None:
    """nbgrader starts helper programs (alembic, jupyter) by name: make sure the ones installed
    beside this interpreter are found even when the virtual environment is not activated."""
    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if bin_dir not in path.split(os.pathsep):
        os.environ["PATH"] = bin_dir + (os.pathsep + path if path else "")
