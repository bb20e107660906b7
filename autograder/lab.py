"""The student's Jupyter Lab: what `tito module start NN --open` and `tito next --open` run.

- It is rooted at the workspace, so its file browser shows every module's folder and the
  student's own `tinytorch/`, and tabs left open in one module still load from another; it
  opens the module's notebook, both in the browser it starts and at the address it prints
  (its default URL, for a browser of the student's choosing).
- Its kernels import the student's package first: the environment it is given puts the
  workspace first on PYTHONPATH (`package_env`).
- nbgrader's instructor tools are off: its server extensions (formgrader, which also logs
  "The course directory root is not a subdirectory of the notebook server root" at every
  start, and the assignment, course-list and validate handlers) and its JupyterLab extension
  (the Nbgrader menu, Formgrader, the create-assignment sidebar that re-tags cells, the
  course and assignment lists, a Validate button that needs the server extension). Students
  test with `tito test` and hand in with `tito submit`.
- It starts as root too (a container), where Jupyter otherwise refuses without --allow-root.

All of this is configuration in a folder the launch owns, `<workspace>/.tito/jupyter/`, put
first on JUPYTER_CONFIG_PATH: it wins over other configuration, while the student's own
(~/.jupyter: settings, theme, password) is still read and never written. JupyterLab keeps the
layout of its tabs there too, per workspace.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

CONFIG_FOLDER = Path(".tito") / "jupyter"
# what nbgrader 0.9.6 enables in <prefix>/etc/jupyter/jupyter_server_config.d/nbgrader.json
NBGRADER_SERVER_EXTENSIONS = (
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.validate_assignment",
    "nbgrader.server_extensions.assignment_list",
    "nbgrader.server_extensions.course_list",
)
# nbgrader's JupyterLab extension: its name disables every one of its plugins
NBGRADER_LAB_EXTENSION = "@jupyter/nbgrader"


@dataclass(frozen=True)
class Lab:
    """A Jupyter Lab launch: run `argv` in `cwd` with `env`, after `write_config()`."""

    argv: list[str]
    env: dict[str, str] = field(repr=False)
    cwd: Path
    config_dir: Path
    config: dict[str, dict]  # a file under config_dir -> its JSON

    def write_config(self) -> None:
        for name, data in self.config.items():
            path = self.config_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def running_as_root() -> bool:
    return getattr(os, "geteuid", lambda: -1)() == 0


def student_lab(root: Path, notebook: Path, env: Mapping[str, str]) -> Lab:
    """Jupyter Lab rooted at the workspace `root`, opening `notebook` (inside it), run with
    `env` (which makes `import tinytorch` find the student's package)."""
    root = Path(root).resolve()
    relative = Path(notebook).resolve().relative_to(root).as_posix()
    config_dir = root / CONFIG_FOLDER
    server: dict = {
        "root_dir": str(root),
        "jpserver_extensions": {name: False for name in NBGRADER_SERVER_EXTENSIONS},
    }
    if running_as_root():
        server["allow_root"] = True
    config = {
        "jupyter_server_config.json": {
            "ServerApp": server,
            "LabApp": {
                "default_url": f"/lab/tree/{quote(relative)}",
                "workspaces_dir": str(config_dir / "lab" / "workspaces"),
            },
        },
        "labconfig/page_config.json": {"disabledExtensions": {NBGRADER_LAB_EXTENSION: True}},
    }
    env = dict(env)
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
        [str(config_dir)] + ([env["JUPYTER_CONFIG_PATH"]] if env.get("JUPYTER_CONFIG_PATH") else [])
    )
    return Lab([sys.executable, "-m", "jupyterlab", relative], env, root, config_dir, config)
