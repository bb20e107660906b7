"""benchmarks/compression.py runs, and its report has the shape it promises.

The benchmark runs once with `--quick` through its command line: every table is there with
the rows it names, accuracies between 0 and 100%, sizes and times positive and finite, and
the pruned sizes honest (CSR at 90% sparsity smaller than dense, at 0% larger; the
channel-pruned CNN smaller). No test asserts on a time's value or on an accuracy reached.
"""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from benchmarks import compression
from tests.benchmarks.test_training_bench import number, table_rows
from tests.conftest import ROOT


def percent(cell: str) -> float:
    return float(cell.rstrip("%"))


@pytest.mark.slow
def test_a_quick_run_writes_every_table_and_the_plot(tmp_path):
    out = tmp_path / "compression.md"
    run = subprocess.run([sys.executable, "-m", "benchmarks.compression", "--quick", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    text = out.read_text(encoding="utf-8")
    assert "with `--quick`" in text and "Load average" in text and "openblas" in text

    pruning = table_rows(text, "| sparsity | accuracy after pruning |")
    assert [row[0] for row in pruning] == ["0%", "50.0%", "90.0%"]
    for row in pruning[1:]:
        assert all(0 <= percent(cell) <= 100 for cell in row[1:3]), row
        dense, csr = number(row[4]), number(row[5])
        assert dense > 0 and csr > 0
    assert number(pruning[0][5]) > number(pruning[0][4]), "CSR of a dense matrix is larger"
    assert number(pruning[2][5]) < number(pruning[2][4]), "CSR at 90% sparsity is smaller"
    assert "Target: at 90% sparsity" in text

    ranks = table_rows(text, "| rank | parameters of the model |")
    assert [int(row[0]) for row in ranks] == list(compression.RANKS)
    assert all(0 <= percent(row[2]) <= 100 and 0 < percent(row[4]) <= 100 for row in ranks)

    cnn = table_rows(text, "| | test accuracy | parameter bytes |")
    assert [row[0] for row in cnn] == ["full CNN", "half the channels, before fine-tuning",
                                       "half the channels, fine-tuned"]
    full, pruned = number(cnn[0][2]), number(cnn[1][2])
    assert 0 < pruned < full
    assert all(math.isfinite(number(row[3].removesuffix(" ms"))) and number(row[3].removesuffix(" ms")) > 0
               for row in cnn)
    assert "Speed-up of inference:" in text

    students = table_rows(text, "| student | test accuracy |")
    assert [row[0] for row in students] == ["trained alone", "distilled from the CNN", "(the CNN teacher)"]
    assert all(0 <= percent(row[1]) <= 100 for row in students)
    assert out.with_suffix(".png").stat().st_size > 0


def test_options_are_checked_with_one_line_errors():
    for argv, message in ((["--threads", "1,2"], "one thread count"), (["--repeats", "0"], "--repeats")):
        run = subprocess.run([sys.executable, "-m", "benchmarks.compression", *argv], cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 2 and message in run.stderr, run.stderr
