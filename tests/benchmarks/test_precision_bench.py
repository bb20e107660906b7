"""benchmarks/precision.py runs, and its report has the shape it promises.

One --quick run (the cnn recipe for 1 epoch on every 8th training digit, scored on every 5th
test digit; the gpt recipe for 20 steps in memory, scored on 32 validation windows; about 10 s on
an idle 2-core machine) through the command line: a row per storage format for both models,
sizes that shrink as the results say (float16 exactly half of float32, int8 per channel at least
3.8x smaller than float32: sizes do not depend on training), finite quality figures where they
are scored, and both timing rows. No test asserts on a time or on a quality figure.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys

import pytest

from benchmarks import precision
from tests.benchmarks.test_training_bench import table_rows
from tests.conftest import ROOT


def number(cell: str) -> float:
    """The number a cell starts with: "413.5 KB", "79.1%", "3.50×", "0.14 ms"."""
    return float(re.match(r"[-+]?[\d,.]+", cell).group().replace(",", ""))


@pytest.mark.slow
def test_a_quick_run_reports_every_format_of_both_models(tmp_path):
    out = tmp_path / "precision.md"
    run = subprocess.run([sys.executable, "-m", "benchmarks.precision", "--quick", "--checkpoint",
                          str(tmp_path / "checkpoints"), "--out", str(out)], cwd=ROOT, capture_output=True,
                         text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    text = out.read_text(encoding="utf-8")
    assert "with --quick" in text and "Load average" in text and "1 threads" in text
    rows = table_rows(text, "| variant | cnn bytes |")
    assert [row[0] for row in rows] == list(precision.VARIANTS)
    sizes = {row[0]: (number(row[1]), number(row[5])) for row in rows}
    assert sizes["float16"][0] == pytest.approx(sizes["float32"][0] / 2, abs=0.1)
    assert all(sizes["int8 per channel"][i] < sizes["float16"][i] for i in (0, 1))
    assert all(sizes["float32"][i] / sizes["int8 per channel"][i] >= 3.8 for i in (0, 1))
    assert all(math.isfinite(number(row[3])) for row in rows)
    assert all(math.isfinite(number(row[7])) for row in rows if row[0] != "float16")
    timing = table_rows(text, "| model | dequantize")
    assert [row[0] for row in timing] == ["cnn", "gpt"] and all(number(c) > 0 for r in timing for c in r[1:3])
    assert (tmp_path / "precision.png").exists()
