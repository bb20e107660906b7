"""benchmarks/acceleration.py runs, and compares like with like.

The benchmark runs once, shortened (--quick: three timed steps after one warm-up, one
thread), through its command line: its tables (the cifar10 CNN's step, the small reference CNN's
step, the epochs) hold one row per thread count and one per rung of each ladder, with positive, finite numbers, and the chart is written. No test asserts on a
time. The four training steps it times start from the same weights and the same batch: the
same loss, and again the same loss after one SGD step on each side.
"""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from benchmarks import acceleration
from tests.benchmarks.test_training_bench import number, table_rows
from tests.conftest import ROOT


@pytest.mark.slow
def test_a_quick_run_writes_every_table_with_positive_finite_numbers(tmp_path):
    out, plot = tmp_path / "acceleration.md", tmp_path / "acceleration.png"
    run = subprocess.run([sys.executable, "-m", "benchmarks.acceleration", "--quick", "--threads", "1",
                          "--out", str(out), "--plot", str(plot)], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    text = out.read_text(encoding="utf-8")
    assert "Load average" in text and "OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE" in text
    (step,) = table_rows(text, "| threads | module 09 ms/step |")
    assert step[0] == "1" and len(step) == 10
    assert all(math.isfinite(number(cell)) and number(cell) > 0 for cell in step[1:]), step
    (cpu,) = table_rows(text, "| threads | module 09 CPU ms |")
    assert cpu[0] == "1" and all(number(cell) > 0 for cell in cpu[1:]), cpu
    assert "Targets for the accelerated step: " in text and "target ≤ 1.1×" in text
    assert "MALLOC_MMAP_THRESHOLD_=" in text and "MALLOC_TRIM_THRESHOLD_=" in text
    assert "its convolutions (3→32 im2col, 32→32 winograd, 32→64 winograd, 64→64 winograd)" in text
    (reference,) = table_rows(text, "| threads | module 09 ms/step | module 15 ms/step | PyTorch ms/step | PyTorch "
                              "without oneDNN ms/step | module 15 / PyTorch |")
    assert reference[0] == "1" and len(reference) == 7 and all(number(cell) > 0 for cell in reference[1:])
    (epoch,) = table_rows(text, "| threads | module 09: epoch |")
    assert epoch[0] == "1" and len(epoch) == 7
    matmul = table_rows(text, "| implementation | ms | speed-up over the loops |")
    conv = table_rows(text, "| implementation | ms | speed-up over the seven loops |")
    assert [row[0] for row in matmul][0] == "three Python loops" and len(matmul) == 4
    assert conv[0][0].startswith("seven Python loops") and any(row[0].startswith("im2col") for row in conv)
    for row in matmul + conv:
        assert number(row[1]) > 0 and number(row[2]) > 0, row
    assert "Target: im2col at least 100× faster than the seven loops." in text
    if "matplotlib is not installed" not in run.stdout:
        assert plot.stat().st_size > 0


@pytest.mark.parametrize("spec", [None, acceleration.reference_spec()], ids=["cifar10", "reference"])
def test_all_four_steps_start_from_the_same_model_and_take_the_same_update(spec):
    slow, fast, theirs, theirs_gemm = acceleration.steps(seed=1, spec=spec)
    first = [slow(), fast(), theirs(), theirs_gemm()]
    assert all(loss == pytest.approx(first[0], rel=1e-4) for loss in first)
    second = [slow(), fast(), theirs(), theirs_gemm()]
    assert second[0] < first[0] and all(loss == pytest.approx(second[0], rel=1e-4) for loss in second)


def test_bad_options_are_one_line_errors():
    for argv in (["--threads", "x"], ["--repeats", "0"]):
        with pytest.raises(SystemExit):
            acceleration.parse_args(argv)
