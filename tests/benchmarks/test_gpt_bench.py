"""benchmarks/gpt.py runs, and compares like with like.

The benchmark runs once, shortened (one thread, one timed step, no warm-up), through its
command line: its tables hold only positive, finite numbers. No test asserts on a time. The
two training steps it times start from the same weights and the same batch: the same loss,
and again the same loss after one AdamW step on each side.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys

import pytest

from benchmarks import gpt
from tests.benchmarks.test_training_bench import number, table_rows
from tests.conftest import ROOT


@pytest.mark.slow
def test_a_short_run_writes_both_tables_with_positive_finite_numbers(tmp_path):
    out = tmp_path / "gpt.md"
    run = subprocess.run([sys.executable, "-m", "benchmarks.gpt", "--threads", "1", "--repeats", "1",
                          "--warmup", "0", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    text = out.read_text(encoding="utf-8")
    assert "2,048 tokens per step" in text and re.search(r"1 thread\(s\): .*openblas", text)
    (step,) = table_rows(text, "| threads | tinytorch ms/step |")
    assert step[0] == "1" and all(math.isfinite(number(c)) and number(c) > 0 for c in step[1:]), step
    generation = table_rows(text, "| threads | batch |")
    assert [row[1] for row in generation] == [str(b) for b in gpt.GENERATION_BATCHES]
    assert all(number(c) > 0 for row in generation for c in row[2:])


def test_both_steps_start_from_the_same_model_and_take_the_same_update():
    ours, theirs, tokens = gpt.steps(seed=1)
    assert tokens == 32 * 64
    first, first_twin = ours(), theirs()
    assert first == pytest.approx(first_twin, abs=1e-4)
    second, second_twin = ours(), theirs()
    assert second < first and second == pytest.approx(second_twin, abs=1e-4)
