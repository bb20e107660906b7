"""milestones/mnist.py: an autograd MLP reaches >= 92% on the shipped MNIST digits.

The training function is called in-process for several seeds (each must clear the target
with a margin) and for reproducibility; the script runs as a user runs it (a subprocess,
PYTHONPATH choosing the tinytorch package, no data cache in reach) for its exit code, its
output and its imports; and `tito milestone mnist` runs it on the reference and on a
student's package, where a pass is recorded in the progress.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from autograder.course import Course
from tests.conftest import ROOT, invoke, run_tito

pytestmark = pytest.mark.slow

SCRIPT = ROOT / "milestones" / "mnist.py"
PASSED = re.compile(r"^MILESTONE mnist: PASSED \(test accuracy (\d+\.\d)% ≥ 92% on 1,000 test images after "
                    r"(\d+) epochs on 3,600 training images, \d+\.\d s\)$")
FAILED = re.compile(r"^MILESTONE mnist: FAILED \(.+\)$")


from milestones import mnist  # noqa: E402


@pytest.fixture
def no_data_cache(tmp_path, monkeypatch):
    """Only the shipped digits in reach: no $TINYTORCH_DATA, no ~/.tinytorch cache."""
    env = {"TINYTORCH_DATA": str(tmp_path / "no-data"), "HOME": str(tmp_path / "home")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def run_script(*args: str, package_dir: Path = ROOT, cwd: Path, result: Path | None = None
               ) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(package_dir)}
    if result:
        env["TITO_MILESTONE_RESULT"] = str(result)             # as `tito milestone` asks for the verdict
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120)


def test_seeds_reach_the_target_with_a_margin(no_data_cache):
    accuracies = []
    for seed in (1, 2, 3):
        result = mnist.train(seed=seed)
        assert result.passed and result.test_accuracy >= 0.925, (seed, result.test_accuracy)
        assert len(result.history) == mnist.EPOCHS and result.train_size == 3600 and result.test_size == 1000
        assert sum(map(sum, result.confusion)) == 1000
        assert sum(result.confusion[d][d] for d in range(10)) == round(1000 * result.test_accuracy)
        assert result.history[-1]["val_accuracy"] > 0.9
        accuracies.append(result.test_accuracy)
    assert len(set(accuracies)) > 1, "different seeds, different runs"


def test_same_seed_same_run(no_data_cache):
    first, second = mnist.train(seed=4, epochs=2), mnist.train(seed=4, epochs=2)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in first.history]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in second.history]
    assert first.confusion == second.confusion and first.test_accuracy == second.test_accuracy


def test_script_passes_and_shows_its_work(tmp_path, no_data_cache):
    run = run_script("--seed", "0", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.strip().splitlines()
    match = PASSED.match(lines[-1])
    assert match and float(match.group(1)) >= 92.0 and match.group(2) == "20", lines[-1]
    out = run.stdout
    assert "shipped with tinytorch: 4,000 training and 1,000 test images" in out
    assert "epoch 20/20" in out and "val_accuracy" in out and "s per epoch" in out
    assert "confusion matrix on the 1,000 test images" in out and "most frequent mistakes" in out
    assert sum(1 for line in lines if re.match(r"^\s+[0-9] (\s+(\d+|\.)){10}\s+\d+\.\d%$", line)) == 10
    assert "matplotlib is not installed" in out or "saved to" in out
    assert run.stderr == ""


def test_quiet_prints_only_the_verdict(tmp_path, no_data_cache):
    run = run_script("--quiet", "--seed", "2", cwd=tmp_path, result=tmp_path / "tito" / "result.json")
    assert run.returncode == 0
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 1 and PASSED.match(lines[0]), run.stdout
    verdict = json.loads((tmp_path / "tito" / "result.json").read_text(encoding="utf-8"))
    assert verdict["outcome"] == "achieved" and verdict["line"] == lines[0] and verdict["data"]["official"] is True
    assert verdict["data"]["name"] in verdict["reason"] and verdict["data"]["checksum"].startswith("sha256:")


@pytest.mark.parametrize("epochs", ["0", "1"])
def test_a_run_that_cannot_reach_the_target_fails(tmp_path, no_data_cache, epochs):
    """0 epochs: the untrained network (about 10%); 1 epoch: about 88%, below the target."""
    run = run_script("--epochs", epochs, cwd=tmp_path)
    assert run.returncode == 1, run.stdout
    last = run.stdout.strip().splitlines()[-1]
    assert FAILED.match(last) and "PASSED" not in run.stdout and "< 92%" in last, last
    assert run_script("--epochs", "-1", cwd=tmp_path).returncode == 2       # a usage error (argparse)


def test_missing_data_folder_fails_with_one_line(tmp_path, no_data_cache):
    run = run_script("--quiet", "--data", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert run.returncode == 1 and "Traceback" not in run.stdout + run.stderr
    assert FAILED.match(run.stdout.strip()) and "is not a folder" in run.stdout


def test_names_a_missing_module(tmp_path, no_data_cache):
    """A package with modules 01-07 only: the script says what is missing and fails."""
    package = tmp_path / "pkg"
    shutil.copytree(ROOT / "tinytorch", package / "tinytorch", ignore=shutil.ignore_patterns("__pycache__"))
    (package / "tinytorch" / "core" / "training.py").unlink()
    run = run_script("--quiet", package_dir=package, cwd=tmp_path)
    assert run.returncode == 1
    last = run.stdout.strip().splitlines()[-1]
    assert FAILED.match(last) and "tinytorch.core.training" in last and "modules 01-08" in last, last


def test_plot_with_matplotlib_saves_the_png(tmp_path, monkeypatch, capsys, no_data_cache):
    saved = []

    class Axes:
        def __getattr__(self, name):
            return lambda *a, **k: Axes()

    class Figure:
        def tight_layout(self):
            pass

        def savefig(self, path, **kwargs):
            saved.append(path)
            Path(path).write_bytes(b"\x89PNG fake")

    pyplot = types.SimpleNamespace(subplots=lambda *a, **k: (Figure(), (Axes(), Axes())), close=lambda f: None)
    matplotlib = types.SimpleNamespace(use=lambda backend: None, pyplot=pyplot)
    monkeypatch.setitem(sys.modules, "matplotlib", matplotlib)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", pyplot)
    monkeypatch.chdir(tmp_path)
    assert mnist.main(["--epochs", "1", "--plot", "curves.png"]) == 1          # 1 epoch: below target
    assert saved == ["curves.png"] and (tmp_path / "curves.png").exists()
    out = capsys.readouterr().out
    assert f"saved to {tmp_path / 'curves.png'}" in out and "MILESTONE mnist: FAILED" in out


def test_plot_without_matplotlib_says_so(tmp_path, monkeypatch, capsys, no_data_cache):
    monkeypatch.setitem(sys.modules, "matplotlib", None)          # `import matplotlib` fails
    monkeypatch.chdir(tmp_path)
    mnist.main(["--epochs", "1", "--plot", "curves.png"])
    assert "matplotlib is not installed, so curves.png was not written" in capsys.readouterr().out
    assert not list(tmp_path.iterdir())


# --- through tito -----------------------------------------------------------------------------


def test_tito_runs_it_on_the_reference_without_recording(workspace, no_data_cache):
    invoke("init")
    result = run_tito("milestone", "mnist", "--reference", "--", "--quiet", "--seed", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Milestone mnist" in result.stdout and "MILESTONE mnist: PASSED" in result.stdout
    assert "not recorded" in result.stdout
    assert json.loads((workspace / ".tito/progress.json").read_text()).get("milestones", {}) == {}


def test_tito_records_it_for_a_student_and_names_missing_modules(workspace, no_data_cache):
    modules = [m for m in Course(ROOT).modules if m.number <= 8]
    assert [m.number for m in modules] == list(range(1, 9))
    invoke("init", "--name", "Ada Lovelace", "--email", "ada@example.org")
    progress = workspace / ".tito/progress.json"
    # modules 01-07 complete: 08 is named as missing
    records = {m.slug: {"state": "complete", "completed_at": "2026-01-01T00:00:00Z"} for m in modules[:7]}
    progress.write_text(json.dumps({"version": 1, "modules": records}))
    refused = invoke("milestone", "mnist", expected_code=1)
    assert "needs modules 01–08 complete; missing: 08 training" in refused.output
    for module in modules:
        shutil.copy2(ROOT / module.package_path, workspace / module.package_path)
    records[modules[7].slug] = {"state": "complete", "completed_at": "2026-01-01T00:00:00Z"}
    progress.write_text(json.dumps({"version": 1, "modules": records}))
    result = run_tito("milestone", "mnist", "--", "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "running on your package" in result.stdout and "Milestone mnist achieved" in result.stdout
    record = json.loads(progress.read_text())["milestones"]["mnist"]
    assert PASSED.match(record["result"]), record
