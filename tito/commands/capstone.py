"""`tito capstone serve`: your GPT and digit classifier behind a web page, on your own package."""

from __future__ import annotations

from pathlib import Path

import typer

from autograder.course import Course
from autograder.errors import CourseError
from autograder.milestones import CAPSTONE_AFTER, check_models, require_modules, serve_capstone
from autograder.workspace import Workspace
from tito.options import REFERENCE_OPTION, WORKSPACE_OPTION
from tito.report import say

app = typer.Typer(no_args_is_help=True, help="The capstone: serve your models over HTTP with a web page.")


@app.command()
def serve(
    models: Path = typer.Option(
        None, "--models", help="The folder with language.safetensors and/or vision.safetensors. "
        "Default: capstone-models/ in the workspace (where `tito milestone capstone` writes them).",
        show_default=False,
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="The address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="The port to listen on."),
    reference: bool = REFERENCE_OPTION,
    workspace: Path = WORKSPACE_OPTION,
) -> None:
    """Serve the capstone's models: a page where you type a prompt and watch your GPT continue
    it token by token, and draw or upload a digit for your classifier; an HTTP API beside it
    (GET /health, POST /generate, POST /classify). Runs until Ctrl-C, then shuts down
    gracefully. Needs modules 01–20 complete, unless --reference."""
    course = Course()
    if reference:
        ws = Workspace.locate(workspace, course=course, reference=True)
        cwd, where = (ws.root if ws.exists else Path.cwd()), "the reference package"
    else:
        ws = Workspace.open(workspace, course=course)
        require_modules(ws, CAPSTONE_AFTER, "Serving the capstone", ws.load_progress())
        ws.ensure_package()
        cwd, where = ws.root, f"your package in {ws.root}"
    folder = (models if models is not None else cwd / "capstone-models").resolve()
    check_models(folder)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
    say(f"[bold]Capstone server[/] on {where}, models from {folder}")
    say(f"Open [bold]{url}[/] — Ctrl-C stops it.")
    code = serve_capstone(ws.package_dir, cwd, ["--models", str(folder), "--host", host, "--port", str(port)])
    if code != 0:
        raise CourseError(f"The capstone server exited with code {code}.", "Read its output above.", code=code)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="capstone", rich_help_panel="Student")
