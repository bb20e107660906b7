"""Hints live in source/NN_name/hints.yaml, a ladder of three rungs per solution region: the
build names each region, refuses a ladder that does not fit its source (and any rung that
repeats a line of its own solution), and ships the file next to the student notebook."""

from __future__ import annotations

import json
import textwrap

import pytest

from autograder import build as pipeline
from autograder.course import Course, Module
from autograder.errors import CourseError
from tests.conftest import ROOT

COURSE = Course(ROOT)

SOURCE = textwrap.dedent('''\
    # %%
    #| export
    class Box:
        """A box."""

        def __init__(self, size):
            # TODO: keep the size.
            ### BEGIN SOLUTION
            self.size = size
            ### END SOLUTION

        def volume(self):
            # TODO: the cube of the size, computed twice for no reason.
            ### BEGIN SOLUTION
            side = self.size
            ### END SOLUTION
            # TODO: now the product.
            ### BEGIN SOLUTION
            return side * side * side
            ### END SOLUTION

    # %%
    #| id: loose
    # TODO: a region outside any def.
    ### BEGIN SOLUTION
    answer = compute_the_answer(6, 7)  # the line a hint must not give away
    ### END SOLUTION
    ''')

LADDER = {"nudge": "Look at the docstring.", "idea": "Multiply.", "sketch": "<size> times <size>"}


def regions():
    return pipeline.solution_regions(pipeline.parse_cells(SOURCE, "box.py"))


def hints_for(**changes):
    data = {region.name: dict(LADDER) for region in regions()}
    data.update(changes)
    return {name: pipeline.ladder(entry, name, "hints.yaml") for name, entry in data.items()}


def refusal(hints) -> str:
    with pytest.raises(CourseError) as caught:
        pipeline.check_hints(hints, regions(), "hints.yaml")
    return caught.value.message


def test_regions_are_named_after_the_def_they_sit_in():
    assert [(r.name, r.cell) for r in regions()] == [
        ("Box.__init__", "Box"), ("Box.volume", "Box"), ("Box.volume#2", "Box"), ("loose", "loose"),
    ]
    assert regions()[1].code == ("        side = self.size",)


def test_the_same_names_come_from_a_student_notebook():
    """At run time the stub stands where the region was: region_names gives the same name."""
    cells = pipeline.parse_cells(SOURCE, "box.py")
    lines = cells[0].source.split("\n")
    starts = [i for i, line in enumerate(lines) if pipeline.BEGIN_SOLUTION in line]
    stubbed = [line if i not in starts else line.replace(pipeline.BEGIN_SOLUTION, "raise X")
               for i, line in enumerate(lines)]
    assert pipeline.region_names(stubbed, starts, "Box") == ["Box.__init__", "Box.volume", "Box.volume#2"]


def test_a_fitting_ladder_is_accepted():
    pipeline.check_hints(hints_for(), regions(), "hints.yaml")


def test_a_hint_for_no_region_is_refused():
    message = refusal({**hints_for(), "Box.area": pipeline.ladder(LADDER, "Box.area", "h")})
    assert "'Box.area' matches no solution region" in message


def test_a_region_without_hints_is_refused():
    hints = hints_for()
    del hints["Box.volume#2"]
    assert "has no hints for 'Box.volume#2' (in cell Box)" in refusal(hints)


@pytest.mark.parametrize("entry", [
    {"nudge": "a", "idea": "b"},
    {"nudge": "a", "idea": "b", "sketch": "c", "answer": "d"},
    {"nudge": "a", "idea": "  ", "sketch": "c"},
    {"idea": "b", "nudge": "a", "sketch": "c"},
    ["a", "b", "c"],
], ids=["two rungs", "four rungs", "an empty rung", "out of order", "a list"])
def test_a_ladder_not_of_three_rungs_is_refused(entry):
    with pytest.raises(CourseError) as caught:
        pipeline.ladder(entry, "Box.volume", "hints.yaml")
    assert "'Box.volume' must be a ladder of exactly three rungs, nudge, idea and sketch" in caught.value.message


def test_a_rung_that_repeats_a_solution_line_is_refused_whatever_its_spacing():
    leaky = dict(LADDER, idea="Simply write\n    answer=compute_the_answer( 6,7 )\nand you are done.")
    assert refusal(hints_for(loose=leaky)) == (
        "hints.yaml: the idea of 'loose' repeats a line of its solution: answer = compute_the_answer(6, 7)"
    )


def test_only_its_own_region_and_no_trivial_line_count_as_a_leak():
    # another region's line, a line shorter than TRIVIAL non-space characters, a comment
    code = ("    return x", "    # the trick: add one", "    total = total + 1")
    assert pipeline.leaked_lines("return x; the trick: add one", code) == []
    assert pipeline.leaked_lines("then total = total + 1", code) == ["total = total + 1"]
    pipeline.check_hints(hints_for(**{"Box.__init__": dict(LADDER, sketch="side = self.size")}),
                         regions(), "hints.yaml")


def test_a_module_with_todos_needs_a_hints_file(tmp_path):
    (tmp_path / "box.py").write_text(SOURCE)
    module = Module(99, "box", "Box", "tinytorch.box", "boxes", tmp_path)
    cells = pipeline.read_module(module)
    with pytest.raises(CourseError) as caught:
        pipeline.module_hints(module, cells)
    assert "hints.yaml is missing: box.py has 4 TODOs without hints" in caught.value.message
    (tmp_path / "hints.yaml").write_text("Box.__init__:\n  nudge: a\n  idea: b\n")
    with pytest.raises(CourseError) as caught:
        pipeline.module_hints(module, cells)
    assert "must be a ladder of exactly three rungs" in caught.value.message


@pytest.mark.parametrize("module", COURSE.modules, ids=lambda m: m.slug)
def test_no_hint_of_the_course_repeats_its_solution(module):
    """Every TODO of every module has a ladder, and no rung gives a line of its solution."""
    cells = pipeline.read_module(module)
    hints = pipeline.load_hints(module.source_dir / pipeline.HINTS_FILE)
    found = pipeline.solution_regions(cells)
    assert sorted(hints) == sorted(r.name for r in found), f"{module.slug}: hints and TODOs differ"
    leaks = [
        f"{region.name} ({rung}): {line}"
        for region in found for rung, text in zip(pipeline.RUNGS, hints[region.name])
        for line in pipeline.leaked_lines(text, region.code)
    ]
    assert not leaks, f"{module.slug}: hints that give a solution line away: {leaks}"


@pytest.mark.parametrize("module", COURSE.modules, ids=lambda m: m.slug)
def test_the_release_ships_the_hints_and_short_stubs(module):
    folder = ROOT / "assignments/release" / module.slug
    shipped = (folder / pipeline.HINTS_FILE).read_text(encoding="utf-8")
    assert shipped == (module.source_dir / pipeline.HINTS_FILE).read_text(encoding="utf-8")
    stub = pipeline.code_stub(module)
    cells = json.loads((folder / f"{module.slug}.ipynb").read_text())["cells"]
    lines = [line for cell in cells for line in "".join(cell["source"]).split("\n")]
    assert not [line for line in lines if line.strip().startswith("# HINT")]
    stubs = [line for line in lines if line.strip() == stub]
    assert len(stubs) == len(pipeline.solution_regions(pipeline.read_module(module)))
    assert max(map(len, stubs)) <= 90, max(stubs, key=len)
    assert f"tito hint {module.number:02d}" in stub
