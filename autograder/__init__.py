"""The grading side of the course: nbgrader configuration and the pipeline behind
`tito grade`, plus the notebook execution that `tito test` shares with it."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def tools_on_path() -> None:
    """nbgrader starts helper programs (alembic, jupyter) by name: make sure the ones installed
    beside this interpreter are found even when the virtual environment is not activated."""
    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if bin_dir not in path.split(os.pathsep):
        os.environ["PATH"] = bin_dir + (os.pathsep + path if path else "")
