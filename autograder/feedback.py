"""Keeping hidden tests out of the feedback students get back.

nbgrader renders feedback from the autograded notebook, whose test cells hold the restored
hidden tests, and whose failing asserts carry tracebacks that quote the failing line: both
leak the hidden tests (jupyter/nbgrader #917, #1363). `HideHiddenTests` runs inside nbgrader's
own generate_feedback (configured in autograder/config.py), after GetGrades, on the feedback
copy only (the autograded notebook keeps everything, for the instructor):

- in every graded cell, each `### BEGIN HIDDEN TESTS` … `### END HIDDEN TESTS` region becomes
  one comment line saying hidden tests ran there;
- every error in a graded cell keeps its type and message ("AssertionError: a '+build'
  suffix must be dropped") but loses its traceback, which would quote the code;
- in every output of every cell (printed text, results, error messages and the tracebacks
  of other cells), a line of the hidden tests is replaced by a short note: student code runs
  in the kernel that ran the hidden tests and can print them (IPython keeps every cell's
  source in `In`), and an error shown in an ungraded cell may carry an earlier test's
  traceback (nbgrader #1156). `tito grade` redacts its per-test messages the same way
  (`autograder.execute.results`). Copies the student disguised (encoded, split) are not caught.

So write hidden asserts whose message teaches without giving the test away.

`GraderNotes` puts what the grader noticed (a test cell edited or deleted, and restored) at
the top of the page, so the student learns it from the feedback, not from a lower score.
"""

from __future__ import annotations

import html
import re

import nbformat
from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.preprocessors.clearhiddentests import ClearHiddenTests
from traitlets import List, Unicode

HIDDEN_NOTE = "# (hidden tests ran here: the grader does not show them)"
TRACEBACK_NOTE = "(the traceback is not shown: it would quote the test's code)"
REDACTED = "(a hidden test line)"
MIN_REDACTED = 8  # shorter hidden lines (`)`, `x = 1`) say nothing and occur everywhere
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


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


def hidden_lines(notebook, begin: str = "BEGIN HIDDEN TESTS", end: str = "END HIDDEN TESTS") -> list[str]:
    """The lines of `notebook`'s hidden tests worth keeping out of sight: stripped, not too
    short, and not also written outside a hidden region (the student sees those anyway)."""
    hidden, visible = set(), set()
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        inside = False
        for line in cell.source.split("\n"):
            if begin in line:
                inside = True
            elif end in line and inside:
                inside = False
            else:
                (hidden if inside else visible).add(line.strip())
    return sorted((line for line in hidden - visible if len(line) >= MIN_REDACTED), key=len, reverse=True)


def redact(text: str, lines: list[str]) -> str:
    """`text` with every hidden line in it replaced by a note (colour codes dropped first, as
    a traceback colours code piece by piece); `text` itself when none occurs."""
    if not lines or not isinstance(text, str):
        return text
    plain = _ANSI.sub("", text)
    if not any(line in plain for line in lines):
        return text
    for line in lines:  # longest first, so a line inside a longer one does not split it
        plain = plain.replace(line, REDACTED)
    return plain


def redact_output(output, lines: list[str]) -> None:
    """Redact one output of a cell in place: its text, its error, its displayed data."""
    if not lines:
        return
    if "text" in output:
        output["text"] = redact(output["text"], lines)
    if output.get("output_type") == "error":
        output["evalue"] = redact(str(output.get("evalue", "")), lines)
        output["traceback"] = [redact(line, lines) for line in output.get("traceback", [])]
    data = output.get("data", {})
    for kind, value in list(data.items()):
        if not isinstance(value, str) or not kind.startswith("text/"):
            continue
        if kind == "text/html":
            plain = html.unescape(re.sub(r"<[^>]+>", "", value))
            if redact(plain, lines) != plain:
                data[kind] = f"<pre>{html.escape(redact(plain, lines))}</pre>"
        else:
            data[kind] = redact(value, lines)


class HideHiddenTests(NbGraderPreprocessor):
    """Strip hidden tests and tracebacks from graded cells, and hidden lines from every
    output (for feedback only)."""

    def preprocess(self, nb, resources):
        delimiters = ClearHiddenTests(parent=self)
        self._delimiters = (delimiters.begin_test_delimeter, delimiters.end_test_delimeter)
        self._hidden = hidden_lines(nb, *self._delimiters)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type != "code":
            return cell, resources
        if utils.is_grade(cell):
            cell.source = hide_hidden_regions(cell.source, *self._delimiters)
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    name, value = output.get("ename", "Error"), str(output.get("evalue", ""))
                    output["traceback"] = [f"{name}: {value}" if value else name, TRACEBACK_NOTE]
        for output in cell.get("outputs", []):
            redact_output(output, self._hidden)
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
