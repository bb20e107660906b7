"""milestones/cnn.py: a CNN reaches >= 96% on the shipped MNIST digits, 2 points above the MLP.

The full run (12 epochs of the CNN, then the mnist milestone's MLP as the baseline) took
30-40 s alone on 2 cores and about 100 s while other test jobs shared them. Shortened runs
test the machinery (training, evaluation, confusion matrix, verdict, exit codes, a missing
module); one full run proves the target.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

SCRIPT = ROOT / "milestones" / "cnn.py"
PASSED = re.compile(r"^MILESTONE cnn: PASSED \(test accuracy (\d+\.\d)% ≥ 96% and ≥ MLP (\d+\.\d)% \+ 2 on 1,000 "
                    r"test images after (\d+) epochs on 3,600 training images, \d+\.\d s\)$")
FAILED = re.compile(r"^MILESTONE cnn: FAILED \(.+\)$")


from milestones import cnn, harness  # noqa: E402

SHIPPED = harness.Data(name="the MNIST digits shipped with tinytorch", checksum="sha256:46c69f6f", official=True,
                       examples=1000)


@pytest.fixture
def no_data_cache(tmp_path, monkeypatch):
    env = {"TINYTORCH_DATA": str(tmp_path / "no-data"), "HOME": str(tmp_path / "home")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def run_script(*args: str, package_dir: Path = ROOT, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(package_dir)}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=timeout)


def test_the_model_is_the_documented_cnn():
    from tinytorch.core.layers import manual_seed

    manual_seed(0)
    model = cnn.build_model()
    shapes = [p.shape for p in model.parameters()]
    assert shapes == [(16, 1, 3, 3), (16,), (32, 16, 3, 3), (32,), (1568, 64), (64,), (64, 10), (10,)]


TWO_SHORT_RUNS = """
import json, sys
sys.path.insert(0, sys.argv[1])
import cnn
runs = [cnn.train(seed=3, epochs=1, baseline=False) for _ in range(2)]
print(json.dumps([dict(history=[{k: v for k, v in r.items() if k != "seconds"} for r in run.history],
                       confusion=run.confusion, accuracy=run.test_accuracy, passed=run.passed,
                       train_size=run.train_size, test_size=run.test_size) for run in runs]))
"""


def test_one_epoch_trains_evaluates_and_repeats_with_the_same_seed(tmp_path, no_data_cache):
    """In a subprocess with one BLAS thread, as the script sets it (in-process, NumPy is already
    loaded with two threads, and a busy machine runs it several times slower)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", TWO_SHORT_RUNS, str(SCRIPT.parent)], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    first, second = json.loads(run.stdout.strip().splitlines()[-1])
    assert len(first["history"]) == 1 and first["train_size"] == 3600 and first["test_size"] == 1000
    assert sum(map(sum, first["confusion"])) == 1000
    assert sum(first["confusion"][d][d] for d in range(10)) == round(1000 * first["accuracy"])
    assert first["accuracy"] > 0.7, "one epoch of the CNN already reads most digits"
    assert not first["passed"], "no baseline, no pass"
    assert first == second, "the same seed gives the same run"


@pytest.mark.parametrize("cnn_accuracy,mlp_accuracy,passed", [
    (0.968, 0.944, True), (0.970, 0.955, False), (0.955, 0.90, False), (0.964, 0.944, True)])
def test_both_targets_decide(cnn_accuracy, mlp_accuracy, passed):
    result = cnn.Result(seed=0, epochs=10, train_size=3600, test_size=1000, test_loss=0.1,
                        test_accuracy=cnn_accuracy, mlp_test_accuracy=mlp_accuracy, identity=SHIPPED)
    assert result.passed is passed
    line = cnn.verdict(result).line
    assert (PASSED.match(line) is not None) is passed and (FAILED.match(line) is not None) is not passed, line


def test_a_run_that_cannot_reach_the_target_fails(tmp_path, no_data_cache):
    """0 epochs: the untrained CNN (about 10%), against the MLP's full run."""
    run = run_script("--epochs", "0", cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    last = run.stdout.strip().splitlines()[-1]
    assert FAILED.match(last) and "< 96%" in last, last
    assert "MLP test accuracy" in run.stdout and "confusion matrix on the 1,000 test images" in run.stdout
    assert run.stderr == ""
    assert run_script("--epochs", "-1", cwd=tmp_path).returncode == 2


def test_names_a_missing_module(tmp_path, no_data_cache):
    package = tmp_path / "pkg"
    shutil.copytree(ROOT / "tinytorch", package / "tinytorch", ignore=shutil.ignore_patterns("__pycache__"))
    (package / "tinytorch" / "core" / "spatial.py").unlink()
    run = run_script("--quiet", package_dir=package, cwd=tmp_path)
    assert run.returncode == 1
    last = run.stdout.strip().splitlines()[-1]
    assert FAILED.match(last) and "tinytorch.core.spatial" in last and "modules 01-09" in last, last


def test_full_run_passes(tmp_path, no_data_cache):
    run = run_script("--seed", "0", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    match = PASSED.match(run.stdout.strip().splitlines()[-1])
    assert match and float(match.group(1)) >= 96.0 and float(match.group(1)) >= float(match.group(2)) + 2
