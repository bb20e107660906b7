"""Keeping hidden tests out of the feedback students get back.

nbgrader renders feedback from the autograded notebook, whose test cells hold the restored
hidden tests, and whose failing asserts carry tracebacks that quote the failing line: both
leak the hidden tests (jupyter/nbgrader #917, #1363). `HideHiddenTests` runs inside nbgrader's
own generate_feedback (configured in autograder/config.py), after GetGrades, on the feedback
copy only (the autograded notebook keeps everything, for the instructor):

- in every graded cell, each `### BEGIN HIDDEN TESTS` … `### END HIDDEN TESTS` region becomes
  one comment line saying hidden tests ran there;
- every error in a graded cell keeps its type and message ("AssertionError: a '+build'
  suffix must be dropped") but loses its traceback, which would quote the code.

So write hidden asserts whose message teaches without giving the test away.

`GraderNotes` puts what the grader noticed (a test cell edited or deleted, and restored) at
the top of the page, so the student learns it from the feedback, not from a lower score.
"""

from __future__ import annotations

import nbformat
from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.preprocessors.clearhiddentests import ClearHiddenTests
from traitlets import List, Unicode

HIDDEN_NOTE = "# (hidden tests ran here: the grader does not show them)"
TRACEBACK_NOTE = "(the traceback is not shown: it would quote the test's code)"


def hide_hidden_regions(source: str, begin: str, end: str) -> str:
    """`source` with every hidden-test region replaced by one comment line."""
    lines, inside = [], False
    for line in source.split("\n"):
        if begin in line:
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            lines.append(indent + HIDDEN_NOTE)
        elif end in line and inside:
            inside = False
        elif not inside:
            lines.append(line)
    return "\n".join(lines)


class HideHiddenTests(NbGraderPreprocessor):
    """Strip hidden tests and tracebacks from graded cells (for feedback only)."""

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type != "code" or not utils.is_grade(cell):
            return cell, resources
        delimiters = ClearHiddenTests(parent=self)
        cell.source = hide_hidden_regions(
            cell.source, delimiters.begin_test_delimeter, delimiters.end_test_delimeter
        )
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                name, value = output.get("ename", "Error"), str(output.get("evalue", ""))
                output["traceback"] = [f"{name}: {value}" if value else name, TRACEBACK_NOTE]
        return cell, resources


class GraderNotes(NbGraderPreprocessor):
    """Open the feedback with the grader's notes on this submission (set per submission)."""

    notes = List(Unicode(), default_value=[], help="One line each, shown to the student.").tag(config=True)

    def preprocess(self, nb, resources):
        if self.notes:
            lines = "\n".join(f"- {note}" for note in self.notes)
            nb.cells.insert(0, nbformat.v4.new_markdown_cell(
                f"**Notes from the grader**\n\n{lines}", id="tito-grader-notes"
            ))
        return nb, resources
