"""benchmarks/caching.py runs and reports what it claims to.

The benchmark runs once through its command line with --quick (one thread, contexts 16 and
32): both tables hold a row for each model and context with positive, finite numbers, and the
cached and uncached generations produced the same tokens. No test asserts on a time; the
verdict lines are checked against the tables' own figures, not against the targets.
"""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from benchmarks import caching
from tests.benchmarks.test_training_bench import number, table_rows
from tests.conftest import ROOT


@pytest.mark.slow
def test_a_quick_run_writes_both_tables_with_the_same_tokens(tmp_path):
    out = tmp_path / "caching.md"
    run = subprocess.run([sys.executable, "-m", "benchmarks.caching", "--quick", "--out", str(out), "--no-plot"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    text = out.read_text(encoding="utf-8")
    assert "Load average" in text and "1 thread(s): openblas" in text
    assert "113,920 parameters; cache 65,536 bytes" in text, "the milestone's model and its cache's exact size"
    expected = [(model, str(c)) for model in caching.MODELS for c in caching.QUICK_CONTEXTS]
    per_token = table_rows(text, "| threads | model | context | module 14 ms |")
    assert [(row[1], row[2]) for row in per_token] == expected
    for row in per_token:
        values = [number(cell) for cell in row[3:]]
        assert all(math.isfinite(v) and v > 0 for v in values), row
        module14_ms, cached_ms, speedup = values[0], values[2], values[5]
        assert speedup == pytest.approx(module14_ms / cached_ms, rel=0.05, abs=0.06), row
    whole = table_rows(text, "| threads | model | context | tokens/s, module 14 |")
    assert [(row[1], row[2]) for row in whole] == expected
    assert all(row[-1] == "yes" for row in whole), "generate_cached must give module 14's greedy tokens"
    assert all(number(cell) > 0 for row in whole for cell in row[3:-1])


def test_the_verdicts_read_the_per_token_speed_up_at_the_target_contexts():
    row = {"context": 64, "uncached_s": 3e-3, "recomputed_s": 2e-3, "cached_s": 1e-3,
           "uncached_tokens_per_s": 100.0, "cached_tokens_per_s": 250.0}
    results = [{"threads": 1, "models": [{"model": "m", "rows": [row, {**row, "context": 32}]}]}]
    (line,) = caching.verdicts(results)
    assert "context 64" in line and "3.0× per token" in line and "NOT met" in line and "2.5× end to end" in line
    row["cached_s"] = 5e-4
    assert "6.0× per token (target ≥ 5×: met)" in caching.verdicts(results)[0]


def test_bad_contexts_are_a_one_line_error():
    with pytest.raises(SystemExit):
        caching.parse_args(["--contexts", "16,x"])
    with pytest.raises(SystemExit):
        caching.parse_args(["--contexts", "1"])
    assert caching.parse_args(["--quick"]).contexts == list(caching.QUICK_CONTEXTS)
