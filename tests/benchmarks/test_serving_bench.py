"""benchmarks/serving.py runs and reports what it claims to.

One --quick run against its own server: a row per concurrency level with every request
completed and positive, finite figures; the overload burst split into served and refused
(503) with none lost; every bad input answered with the status it must get and the server
still up. No test asserts on a time."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from benchmarks import serving
from tests.benchmarks.test_training_bench import number, table_rows
from tests.conftest import ROOT


@pytest.mark.slow
def test_a_quick_run_writes_every_level_the_overload_and_the_bad_inputs(tmp_path):
    out = tmp_path / "serving.md"
    run = subprocess.run([sys.executable, "-m", "benchmarks.serving", "--quick", "--out", str(out), "--no-plot"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    text = out.read_text(encoding="utf-8")
    assert "Load average before / after" in text and "random weights" in text and "113,920 parameters" in text
    levels = table_rows(text, "| concurrency | completed |")
    assert [row[0] for row in levels] == [str(c) for c in serving.LEVELS]
    for row in levels:
        assert row[1] == f"{serving.QUICK_REQUESTS}/{serving.QUICK_REQUESTS}", row
        assert all(math.isfinite(number(cell)) and number(cell) > 0 for cell in row[2:]), row
    (burst,) = table_rows(text, "| served | refused (503) |")
    served, refused, other = (int(cell) for cell in burst[:3])
    assert served + refused == 4 * (serving.SLOTS + serving.QUEUE) and other == 0
    assert served >= serving.SLOTS + serving.QUEUE and refused > 0, "beyond slots + queue: 503, not a queue"
    bad = table_rows(text, "| request | path | status (expected) |")
    assert len(bad) == len(serving.BAD_INPUTS)
    for row in bad:
        status, expected = row[2].split(" ")
        assert f"({status})" == expected and row[4] == "yes" and row[5], row


def test_bad_options_are_usage_errors(tmp_path):
    with pytest.raises(SystemExit):
        serving.parse_args(["--requests", "0"])
    with pytest.raises(SystemExit):
        serving.parse_args(["--model", str(tmp_path / "missing.safetensors")])
    assert serving.parse_args(["--quick"]).tokens == serving.QUICK_TOKENS
