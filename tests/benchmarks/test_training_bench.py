"""benchmarks/training.py runs, and compares like with like.

The benchmark itself runs once, shortened (one thread, one timed step, no warm-up), through
its command line: the results table names every model and holds only positive, finite
numbers. No test asserts on a time. The PyTorch twins of benchmarks/models.py get the
tinytorch models' weights: the same loss on the first batch, and again after one training
step on each side (the same update).
"""

from __future__ import annotations

import math
import re
import subprocess
import sys

import pytest

from benchmarks import models, training
from tests.conftest import ROOT

SPECS = models.specs()


def table_rows(text: str, header: str) -> list[list[str]]:
    """The cells of the markdown table that follows the line starting with `header`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def number(cell: str) -> float:
    return float(re.sub(r"[×,]", "", cell))


@pytest.mark.slow
def test_a_short_run_writes_a_table_of_every_model_with_positive_finite_numbers(tmp_path):
    out = tmp_path / "training.md"
    run = subprocess.run([sys.executable, "-m", "benchmarks.training", "--threads", "1", "--repeats", "1",
                          "--warmup", "0", "--out", str(out), "--no-plot"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    text = out.read_text(encoding="utf-8")
    assert "Threads pinned" in text and "OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE" in text
    assert re.search(r"1 thread\(s\): .*openblas .*1 threads\); torch intra-op threads 1", text), text

    steps = table_rows(text, "| model | batch | threads |")
    assert [row[0] for row in steps] == [spec.title for spec in SPECS]
    for row in steps:
        assert row[1:3] == [str(next(s.batch for s in SPECS if s.title == row[0])), "1"]
        values = [number(cell) for cell in row[3:]]
        assert all(math.isfinite(v) and v > 0 for v in values), row

    (conv,) = table_rows(text, "| threads | conv2d_naive ms |")
    assert conv[0] == "1" and all(math.isfinite(number(c)) and number(c) > 0 for c in conv[1:]), conv
    epoch = table_rows(text, "| | one epoch |")
    assert [row[0] for row in epoch] == ["tinytorch", "PyTorch CPU"]
    assert all(re.fullmatch(r"\d+(\.\d)? (s|min|h)", cell) for row in epoch for cell in row[1:]), epoch
    assert "cifar10_cnn" in run.stdout and "One training step" in run.stdout and "results:" in run.stdout


@pytest.fixture
def one_thread():
    """One BLAS and one torch thread, as the benchmark's 1-thread worker: two thread pools
    spinning in one process on a busy machine make a step many times slower."""
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("spec", SPECS, ids=[spec.key for spec in SPECS])
def test_the_torch_twin_computes_the_same_loss_and_the_same_update(spec, one_thread):
    ours, theirs = training.first_losses(spec)
    assert abs(ours - theirs) <= 1e-4, (spec.key, ours, theirs)
    step_ours, step_theirs = training.steps(spec)
    first = step_ours(), step_theirs()
    assert abs(first[0] - first[1]) <= 1e-4, (spec.key, first)
    second = step_ours(), step_theirs()                  # after one SGD step on each side
    assert second[0] != first[0] and abs(second[0] - second[1]) <= 1e-3, (spec.key, first, second)


def test_the_cifar10_network_is_the_milestones_and_its_twin_matches_it_layer_for_layer():
    model, twin = models.pair(SPECS[0])
    block = ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]
    layers = [*block, *block, "Flatten", "Linear", "ReLU", "Linear"]
    assert [type(layer).__name__ for layer in model.layers] == layers
    assert [type(layer).__name__ for layer in twin] == layers
    assert [(layer.in_channels, layer.out_channels) for layer in model.layers if hasattr(layer, "in_channels")] == [
        (3, 32), (32, 32), (32, 64), (64, 64)]
    assert sum(p.size for p in model.parameters()) == sum(p.numel() for p in twin.parameters()) == 1_117_354


def test_a_layer_without_a_twin_is_named():
    from tinytorch.core.layers import Dropout, Sequential

    with pytest.raises(TypeError, match="no PyTorch twin for a Dropout layer"):
        models.torch_twin(Sequential(Dropout(0.5)))


@pytest.mark.parametrize(("argv", "message"), [
    (["--threads", "0"], "at least one thread count of 1 or more"),
    (["--threads", "two"], "comma-separated whole numbers"),
    (["--repeats", "0"], "--repeats must be 1 or more"),
    (["--models", "resnet"], "unknown model(s) resnet: choose from cifar10_cnn, digits_cnn, digits_mlp"),
])
def test_bad_options_say_what_to_do(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        training.parse_args(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
