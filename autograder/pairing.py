"""A module as a plain Python file, for students who prefer an editor to Jupyter.

`tito module start NN --format py` writes `NN_name.py` (jupytext "percent" format) beside the
notebook. **The notebook `NN_name.ipynb` stays authoritative**: it is what `tito test` runs,
what `tito module complete` exports and what `tito submit` hands in. Before each of those
commands tito syncs the pair:

- only the `.py` changed since the last sync: its cells are merged into the notebook;
- only the notebook changed: the `.py` is rewritten from it;
- both changed: the newer one wins and the other is first backed up to `backups/`.

In the `.py`, each graded or solution cell's header carries its nbgrader id
(`# %% personal_info`): that is how the cell finds its way back to the notebook with its
grading metadata. Keep those header lines as they are.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

from autograder.course import Module
from autograder.files import atomic_write, backup, read_notebook
from autograder.workspace import Progress, Workspace

_FORMAT = "py:percent"


def _grade_id(cell) -> str | None:
    return (cell.get("metadata", {}).get("nbgrader") or {}).get("grade_id")


def script_text(notebook) -> str:
    """The notebook as a percent-format script, each nbgrader cell titled with its id."""
    import jupytext  # heavy: jupytext

    plain = copy.deepcopy(notebook)
    plain.metadata = {"jupytext": {"notebook_metadata_filter": "-all"}}
    for cell in plain.cells:
        gid = _grade_id(cell)
        cell.metadata = {"title": gid} if gid else {}
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return jupytext.writes(plain, fmt=_FORMAT)


def merge_script(notebook, text: str):
    """A copy of `notebook` whose cells are those of the script `text`. Cells keep their id,
    metadata (nbgrader's included) and outputs when matched: by the title (the grade id) for
    nbgrader cells, by content and position for the others."""
    import jupytext  # heavy: jupytext
    import nbformat  # heavy: nbformat
    from jupytext.combine import map_outputs_to_inputs  # heavy: jupytext

    parsed = jupytext.reads(text, fmt=_FORMAT)
    by_id = {_grade_id(c): c for c in notebook.cells if _grade_id(c)}
    untitled_old = [c for c in notebook.cells if not _grade_id(c)]
    untitled_new = [c for c in parsed.cells if c.metadata.get("title") not in by_id]
    matches = dict(zip(map(id, untitled_new), map_outputs_to_inputs(untitled_new, untitled_old), strict=True))
    merged, used = [], set()
    for cell in parsed.cells:
        title = cell.metadata.get("title")
        base = None
        if title in by_id and title not in used:
            base = by_id[title]
            used.add(title)
        elif matches.get(id(cell)) is not None:
            base = untitled_old[matches[id(cell)]]
        if base is not None and base.cell_type == cell.cell_type:
            new = copy.deepcopy(base)
            if new.source != cell.source and new.cell_type == "code":
                new.outputs, new.execution_count = [], None
            new.source = cell.source
        elif cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(cell.source)
        elif cell.cell_type == "raw":
            new = nbformat.v4.new_raw_cell(cell.source)
        else:
            new = nbformat.v4.new_code_cell(cell.source)
        merged.append(new)
    result = copy.deepcopy(notebook)
    result.cells = merged
    return result


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _record(progress: Progress, module: Module, notebook: Path, script: Path) -> None:
    progress.entry(module.slug)["paired"] = {"ipynb": _digest(notebook), "py": _digest(script)}


def write_script(workspace: Workspace, module: Module, progress: Progress) -> Path:
    """Write the `.py` twin from the notebook (never over an existing one) and record the pair."""
    notebook = workspace.notebook_path(module)
    script = workspace.script_path(module)
    if not script.exists():
        atomic_write(script, script_text(read_notebook(notebook, _hint(module))))
    _record(progress, module, notebook, script)
    return script


def _hint(module: Module) -> str:
    return (
        "Fix the JSON in an editor, or back it up and start over from the release notebook with "
        f"`tito module reset {module.number:02d}`."
    )


def sync(workspace: Workspace, module: Module, progress: Progress) -> list[str]:
    """Bring the notebook and its `.py` twin together (see the module docstring); return what
    was done, one line each. Only modules started with `--format py` have a twin."""
    record = progress.modules.get(module.slug, {})
    notebook, script = workspace.notebook_path(module), workspace.script_path(module)
    if record.get("format") != "py" or not notebook.is_file():
        return []
    rel = workspace.relative
    nb = read_notebook(notebook, _hint(module))  # a broken notebook stops here, untouched
    if not script.is_file():
        write_script(workspace, module, progress)
        return [f"wrote {rel(script)} from the notebook (it was missing)"]
    last = record.get("paired") or {}
    nb_hash, py_hash = _digest(notebook), _digest(script)
    nb_changed, py_changed = nb_hash != last.get("ipynb"), py_hash != last.get("py")
    if not nb_changed and not py_changed:
        return []
    text = script.read_text(encoding="utf-8")
    if nb_changed and py_changed and script_text(nb) == text:  # same content: nothing to do
        _record(progress, module, notebook, script)
        return []
    done = []
    py_wins = py_changed and (not nb_changed or script.stat().st_mtime >= notebook.stat().st_mtime)
    if py_wins:
        if nb_changed:
            kept = backup(notebook, workspace.backups_dir(module))
            done.append(f"both files changed; the .py is newer, the notebook was kept as {rel(kept)}")
        import nbformat  # heavy: nbformat

        atomic_write(notebook, nbformat.writes(merge_script(nb, text)) + "\n")
        done.append(f"merged {rel(script)} into {rel(notebook)}")
    else:
        if py_changed:
            kept = backup(script, workspace.backups_dir(module))
            done.append(f"both files changed; the notebook is newer, the .py was kept as {rel(kept)}")
        atomic_write(script, script_text(nb))
        done.append(f"updated {rel(script)} from {rel(notebook)}")
    _record(progress, module, notebook, script)
    return done
