"""What changed since the last grade, and saying so.

Each run's summary is kept in `assignments/grades/runs/<run>.json` (summary.json is the
latest). `previous_rows` reads, for every student and module, the row of the run that last
graded it; `mark_change` compares a new row with it on what the student sees (status,
score, late penalty, notes, and each test's points, status and message): `new`,
`unchanged` or `changed`. `stamp_feedback` opens the student's feedback page with one
sentence: when it was generated, which page it replaces and what changed, and, with a due
date, when the work was handed in and what lateness cost.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from autograder.config import GRADES_DIR, RUNS_DIR, SUMMARY_FILE
from autograder.files import atomic_write
from autograder.policy import describe_late


def _run_key(path: Path) -> tuple[str, int]:
    base, _, counter = path.stem.partition("-")
    return base, int(counter) if counter.isdigit() else 1


def previous_rows(root: Path) -> dict[tuple[str, str], dict]:
    """The latest graded row of each (student, module) in the run history, each with the
    `run` and `started_at` of the run that graded it. Before any history was kept, the last
    summary.json stands in."""
    grades = Path(root) / GRADES_DIR
    files = sorted((grades / RUNS_DIR).glob("*.json"), key=_run_key, reverse=True)
    if not files and (grades / SUMMARY_FILE).is_file():
        files = [grades / SUMMARY_FILE]
    latest: dict[tuple[str, str], dict] = {}
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            rows = data["rows"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged history file costs its own runs only
        for row in rows:
            if isinstance(row, dict) and "student" in row and "module" in row:
                latest.setdefault((row["student"], row["module"]), {
                    **row, "run": data.get("run"), "started_at": data.get("started_at"),
                })
    return latest


def outcome(data: dict) -> dict:
    """What a student sees of a row: compared between runs to find what changed."""
    return {
        "status": data.get("status"),
        "score": data.get("score"),
        "late_penalty": data.get("late_penalty", 0.0),
        "notes": data.get("notes", []),
        "cells": [{k: c.get(k) for k in ("grade_id", "points", "status", "message")} for c in data.get("cells", [])],
    }


def mark_change(row, before: dict | None) -> None:
    if before is None:
        row.change = "new"
        return
    row.previous = {"run": before.get("run"), "started_at": before.get("started_at"), "score": before.get("score")}
    row.change = "unchanged" if outcome(before) == outcome(row.to_dict()) else "changed"


def when(text: str | None) -> str:
    return text.replace("T", " ").replace("Z", " UTC") if text else "an earlier run"


def feedback_note(row, started_at: str, replaced: bool, penalty_text: str) -> str:
    lines = [f"Feedback generated {when(started_at)}."]
    if replaced:
        before = row.previous or {}
        text = f"It replaces the feedback generated {when(before.get('started_at'))}"
        if row.change == "changed" and before.get("score") is not None and before["score"] != row.score:
            text += f": your score changed from {before['score']:g} to {row.score:g}."
        elif row.change == "changed":
            text += ": the results of your tests changed."
        elif row.change == "unchanged":
            text += "; nothing in it changed."
        else:
            text += "."
        lines.append(text)
    if row.due and row.submitted_at:
        whose = "your due date (with your extension)" if row.extension else "the due date"
        if row.seconds_late > 0:
            lines.append(
                f"Handed in {when(row.submitted_at)}, {describe_late(row.seconds_late)} after {whose}, "
                f"{when(row.due)}: late penalty {row.late_penalty:g} point(s) ({penalty_text})."
            )
        else:
            lines.append(f"Handed in {when(row.submitted_at)}, by {whose}, {when(row.due)}.")
    return " ".join(lines)


def stamp_feedback(root: Path, row, note: str) -> None:
    """Open the student's feedback page with `note` (when it was generated, what it replaced,
    how late it was)."""

    if not row.feedback:
        return
    page = root / row.feedback
    if not page.is_file():
        return
    text = page.read_text(encoding="utf-8")
    block = (
        '\n<div class="tito-feedback-note" style="margin:1em;padding:0.5em 1em;border:1px solid #999;'
        f'background:#f6f6f6"><p>{html.escape(note)}</p></div>\n'
    )
    match = re.search(r"<body[^>]*>", text)
    text = text[: match.end()] + block + text[match.end():] if match else block + text
    atomic_write(page, text)
