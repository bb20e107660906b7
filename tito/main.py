"""The `tito` root command: it only wires the sub-apps together (logic lives in commands/)."""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from autograder import version
from autograder.errors import CourseError
from tito.commands import (
    build,
    capstone,
    grade,
    hint,
    init,
    milestone,
    module,
    status,
    submit,
    system,
    test,
    worker,
)
from tito.console import print_error, show_library_warnings


class _TitoGroup(TyperGroup):
    """Turns a CourseError raised by any sub-command into one clear line and exit code 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CourseError as error:
            print_error(error)
            raise typer.Exit(error.code) from None


show_library_warnings()

app = typer.Typer(
    cls=_TitoGroup,
    name="tito",
    help="TinyTorch: build a small PyTorch in NumPy, one module at a time.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tito {version()}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", "-V", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """TinyTorch: build a small PyTorch in NumPy, one module at a time."""


build.register(app)
system.register(app)
init.register(app)
module.register(app)
test.register(app)
status.register(app)
submit.register(app)
hint.register(app)
grade.register(app)
worker.register(app)
milestone.register(app)
capstone.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
