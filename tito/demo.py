"""`make demo`: show a newcomer what the course does with what exists now.

It runs real `tito` commands and the real notebook execution: the machine check, the drift
check, then every module's reference notebook (full marks) and untouched student notebook
(nothing yet), scored exactly as the autograder scores them.
"""

from __future__ import annotations

import subprocess
import sys

from rich.rule import Rule
from rich.table import Table

from autograder.execute import run
from tito.console import console
from tito.course import Course


def _tito(*args: str) -> None:
    console.print(f"\n[bold cyan]$ tito {' '.join(args)}[/]")
    subprocess.run([sys.executable, "-m", "tito.main", *args], check=True)


def main() -> None:
    course = Course()
    console.print(Rule("TinyTorch demo"))
    _tito("system", "doctor")
    _tito("build", "--check")
    table = Table(title="Each module, scored the way the autograder scores it")
    for column in ("module", "reference solution", "untouched student notebook"):
        table.add_column(column)
    for module in course.modules:
        scores = []
        for kind in ("source", "release"):
            path = course.assignments_dir / kind / module.slug / f"{module.slug}.ipynb"
            with console.status(f"running {path.relative_to(course.root)}"):
                _, results = run(path, package_dir=course.root)
            earned = sum(r.points for r in results)
            total = sum(r.max_points for r in results)
            scores.append(f"{earned:g}/{total:g}")
        table.add_row(module.label, *scores)
    console.print()
    console.print(table)


if __name__ == "__main__":
    main()
