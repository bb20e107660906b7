"""milestones/harness.py: the verdict every milestone writes, the one way a run stops, the plots;
and the result contract as `tito milestone` sees it (a path check is never recorded)."""

from __future__ import annotations

import ast
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.course import Course
from milestones import harness, xor
from tests.conftest import ROOT, invoke, run_tito

SPEC = harness.Spec("demo", after="08", claim="≥ 90% on the demo set", target=harness.Target("accuracy", ">=", 0.9))
OFFICIAL = harness.Data(name="the demo set", checksum="sha256:abc", official=True, examples=100)
OTHER = harness.Data(name="other data from /tmp/x", checksum="sha256:def", official=False, examples=40)


@pytest.mark.parametrize("counts,reached,works,outcome,word,code", [
    (True, True, True, "achieved", "PASSED", 0),
    (True, False, True, "missed", "FAILED", 1),
    (True, True, False, "missed", "FAILED", 1),               # NaN loss: nothing is proved
    (False, True, True, "path-check", "PATH CHECK", 0),       # a path check passes whatever it reached ...
    (False, False, True, "path-check", "PATH CHECK", 0),
    (False, True, False, "path-check", "PATH CHECK FAILED", 1),   # ... unless its path breaks
])
def test_the_outcome_the_line_and_the_exit_code(counts, reached, works, outcome, word, code):
    verdict = harness.judge(SPEC, value=0.95, data=OFFICIAL if counts else OTHER, counts=counts, reached=reached,
                            works=works, reason="why", text="accuracy 95.0%")
    assert verdict.outcome == outcome and verdict.exit_code == code
    tail = "; not the milestone: why)" if not counts else ")"
    assert verdict.line == f"MILESTONE demo: {word} (accuracy 95.0%{tail}"
    assert ("PASSED" in verdict.line) is (outcome == "achieved")


def test_the_result_file_is_written_atomically_and_parsed(tmp_path, monkeypatch, capsys):
    verdict = harness.judge(SPEC, value=float("nan"), data=OTHER, counts=False, reached=False, works=True,
                            reason="the data is not the demo set", text="accuracy nan")
    monkeypatch.setenv(harness.RESULT_ENV, str(tmp_path / "tito" / "result.json"))
    assert harness.finish(verdict, str(tmp_path / "mine.json")) == 0
    assert capsys.readouterr().out == verdict.line + "\n", "the line is printed last"
    for path in (tmp_path / "tito" / "result.json", tmp_path / "mine.json"):
        content = json.loads(path.read_text(encoding="utf-8"))
        assert content == {
            "version": 1, "milestone": "demo", "outcome": "path-check", "claim": "≥ 90% on the demo set",
            "metric": {"name": "accuracy", "value": None}, "target": {"name": "accuracy", "op": ">=", "value": 0.9},
            "data": {"name": "other data from /tmp/x", "checksum": "sha256:def", "official": False, "examples": 40},
            "reason": "the data is not the demo set", "line": verdict.line}
        assert harness.Verdict.read(path) == verdict
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["mine.json", "result.json", "tito"], "no temp files"


@pytest.mark.parametrize("content,words", [
    ({"version": 2}, "not a version 1"),
    ({"version": 1, "milestone": "x"}, "lacks outcome"),
    ({**harness.judge(SPEC, value=1.0, data=OFFICIAL, counts=True, reached=True, works=True, reason="r",
                      text="t").to_dict(), "outcome": "recorded"}, "unknown outcome 'recorded'"),
])
def test_a_damaged_result_is_refused_with_a_reason(content, words):
    with pytest.raises(ValueError, match=words):
        harness.Verdict.from_dict(content)


def fail_inside_tinytorch():
    from tinytorch.core.tensor import Tensor

    return Tensor([[1.0, 2.0]]) @ Tensor([[1.0, 2.0]])          # (1, 2) @ (1, 2): a shape error in module 02


@pytest.mark.parametrize("make,words", [
    (lambda: ModuleNotFoundError("No module named 'tinytorch.core.training'", name="tinytorch.core.training"),
     ["FAILED (cannot import tinytorch.core.training", "complete modules 01-08 first"]),
    (lambda: harness.MilestoneError("the checkpoint x cannot be read. Delete it."),
     ["FAILED (the checkpoint x cannot be read. Delete it.)"]),
    (KeyboardInterrupt, ["FAILED (interrupted; run it again)"]),
])
def test_a_stopped_run_is_one_failed_line_and_a_missed_result(make, words, tmp_path, capsys):
    assert harness.stopped(SPEC, make(), str(tmp_path / "r.json"), interrupted="run it again") == 1
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert len(lines) == 1 and all(word in lines[0] for word in words), out.out
    assert "Traceback" not in out.out + out.err
    result = harness.Verdict.read(tmp_path / "r.json")
    assert result.outcome == "missed" and result.line == lines[0] and "stopped before it could be judged" in result.reason


def test_a_crash_in_the_package_shows_its_traceback_and_names_the_module(capsys):
    try:
        fail_inside_tinytorch()
    except Exception as error:                         # noqa: BLE001  (the crash under test)
        assert harness.stopped(SPEC, error) == 1
    out = capsys.readouterr()
    assert "Traceback" in out.err and "tinytorch/core/tensor.py" in out.err
    line = out.out.strip()
    assert line.startswith("MILESTONE demo: FAILED (stopped with ") and "module 02 tensor" in line, line
    assert "`tito test 02`" in line
    with pytest.raises(SystemExit):
        harness.stopped(SPEC, SystemExit(3))          # not a failure of the run: passed on


def test_plots_are_written_with_matplotlib(tmp_path):
    pytest.importorskip("matplotlib")
    history = [{"epoch": e, "loss": 1.0 / e, "accuracy": 0.5 + e / 10, "val_accuracy": 0.5 + e / 12} for e in (1, 2, 3)]
    confusion = [[5, 1, 0], [0, 6, 0], [1, 0, 4]]
    for path in (harness.plot_training(history, confusion, str(tmp_path / "t.png"), title="t", labels=["a", "b", "c"],
                                       baseline=("MLP", 0.7)),
                 harness.plot_loss([0.7, 0.3, 0.1], str(tmp_path / "l.png"), title="l", ylabel="loss")):
        assert path and Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_matplotlib_one_line_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert harness.plot_loss([1.0], "x.png", title="", ylabel="") is None
    said = []
    harness.say_plot(None, "x.png", "the loss curve", said.append)
    assert said == ["\nplot: matplotlib is not installed, so x.png was not written (pip install matplotlib; "
                    "the text above shows the same)"]


def test_milestones_import_only_tinytorch_numpy_matplotlib_and_each_other():
    """No sys.path tricks, no tito, no tests: the standard library, tinytorch, NumPy, matplotlib,
    the shared harness and digits beside them, and the milestones whose recipes another reuses
    (optimize: cnn and gpt; capstone: those, cifar10 and optimize)."""
    folder = ROOT / "milestones"
    for script in folder.glob("*.py"):
        tree = ast.parse(script.read_text(encoding="utf-8"))
        names = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names}
        names |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                  and node.module and not node.level}
        outside = names - set(sys.stdlib_module_names) - {"__future__"}
        assert outside <= {"tinytorch", "numpy", "matplotlib", "harness", "digits", "ngram", "cnn", "gpt", "cifar10",
                           "optimize"}, (script.name, outside)
        assert "sys.path.insert" not in script.read_text(encoding="utf-8"), script.name


def test_a_script_finds_the_harness_beside_it(tmp_path):
    """Run as a user runs it, from another folder: the script's folder is on sys.path."""
    run = subprocess.run([sys.executable, str(ROOT / "milestones" / "xor.py"), "--quiet", "--result", "r.json"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)})
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert result["outcome"] == "achieved" and result["data"]["name"] == "the 4 XOR points"
    assert "the 4 XOR points" in result["reason"] and result["line"] == run.stdout.strip()


# --- the contract through tito ---------------------------------------------------------------------

TITO_READS_RESULTS = any(harness.RESULT_ENV in path.read_text(encoding="utf-8")
                         for folder in ("tito", "autograder") for path in (ROOT / folder).rglob("*.py"))
needs_tito = pytest.mark.skipif(not TITO_READS_RESULTS, reason=f"tito does not read ${harness.RESULT_ENV} in "
                                "this tree yet (its side of the result contract is merged separately)")


def student_with_modules(workspace, last: int) -> dict:
    invoke("init", "--name", "Ada Lovelace", "--email", "ada@example.org")
    modules = [m for m in Course(ROOT).modules if m.number <= last]
    for module in modules:
        (workspace / module.package_path).parent.mkdir(parents=True, exist_ok=True)
        (workspace / module.package_path).write_bytes((ROOT / module.package_path).read_bytes())
    records = {m.slug: {"state": "complete", "completed_at": "2026-01-01T00:00:00Z"} for m in modules}
    (workspace / ".tito/progress.json").write_text(json.dumps({"version": 1, "modules": records}))
    return records


def milestones_recorded(workspace) -> dict:
    return json.loads((workspace / ".tito/progress.json").read_text()).get("milestones", {})


@needs_tito
@pytest.mark.slow
def test_tito_does_not_record_a_path_check_of_cifar10(workspace, tmp_path):
    from tests.milestones.test_cifar10 import synthetic

    data = tmp_path / "synthetic"
    synthetic.write_synthetic_cifar10(data, per_batch=24, test=40, seed=0)
    student_with_modules(workspace, 10)
    run = run_tito("milestone", "cifar10", "--", "--data", str(data), "--epochs", "1", "--batch-size", "20",
                   "--quiet", env={"OPENBLAS_NUM_THREADS": "1", "HOME": str(tmp_path / "home")})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "MILESTONE cifar10: PATH CHECK (" in run.stdout and "not the official CIFAR-10 test batch" in run.stdout
    assert "cifar10" not in milestones_recorded(workspace)


@needs_tito
@pytest.mark.slow
def test_tito_records_an_achieved_run_with_its_reason(workspace):
    student_with_modules(workspace, 6)
    run = run_tito("milestone", "xor", "--", "--quiet")
    assert run.returncode == 0, run.stdout + run.stderr
    record = json.dumps(milestones_recorded(workspace)["xor"], ensure_ascii=False)
    assert "achieved" in record and xor.verdict(xor.train(seed=0)).reason in record



@needs_tito
def test_on_a_terminal_the_milestone_writes_to_it_directly(tmp_path):
    """tito hands its terminal to the script (which then redraws its progress bar in place)."""
    import os
    import pty

    from tests.conftest import TITO

    leader, follower = pty.openpty()
    process = subprocess.Popen([*TITO, "milestone", "xor", "--reference", "--", "--quiet"], cwd=tmp_path,
                               stdin=subprocess.DEVNULL, stdout=follower, stderr=follower)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:                            # the terminal closed: the run is over
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert process.wait(timeout=120) == 0, seen
    assert b"MILESTONE xor: PASSED" in seen and b"achieved" in seen


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class _Pipe(io.StringIO):
    def isatty(self):
        return False


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_into_a_pipe_prints_a_line_at_most_every_interval_and_at_the_end():
    clock, lines = _Clock(), []
    bar = harness.Progress(100, "training", lines.append, every=30, stream=_Pipe(), clock=clock)
    for step in range(1, 101):
        clock.now = step * 1.0                      # one second per step
        bar.update(step, loss="2.000")
    bar.close()
    assert len(lines) == 5, lines                   # steps 1, 31, 61, 91 and the last
    assert lines[0].startswith("training [") and "1/100 · loss 2.000" in lines[0]
    assert "ETA 69 s" in lines[1]                   # 69 steps left at 1 s each
    assert lines[-1].endswith("100/100 · loss 2.000 · 2 min elapsed · ETA 0 s"), lines[-1]


def test_progress_on_a_terminal_redraws_one_line_and_ends_it():
    clock, terminal = _Clock(), _Terminal()
    bar = harness.Progress(10, "steps", print, start=4, stream=terminal, clock=clock)
    clock.now = 3.0
    bar.update(7)                                   # 3 timed steps in 3 s: 3 left, 3 s
    bar.close()
    written = terminal.getvalue()
    assert written.startswith("\r") and written.endswith("\n") and written.count("\r") == 1
    assert "7/10" in written and "ETA 3 s" in written and "#" * 16 in written


def test_a_quiet_progress_shows_nothing():
    lines, terminal = [], _Terminal()
    bar = harness.Progress(3, "x", lines.append, quiet=True, stream=terminal)
    bar.update(3)
    bar.close()
    assert lines == [] and terminal.getvalue() == ""


def test_fast_kernels_accelerate_with_module_15_and_keep_module_09_without_it(monkeypatch):
    from tinytorch.core.layers import Sequential
    from tinytorch.core.spatial import Conv2d, MaxPool2d
    from tinytorch.perf.acceleration import is_accelerated

    model = Sequential(Conv2d(1, 2, 3), MaxPool2d(2))
    same, kernels = harness.fast_kernels(model)
    assert same is model and "module 15" in kernels and all(is_accelerated(layer) for layer in model.layers)
    monkeypatch.setitem(sys.modules, "tinytorch.perf.acceleration", None)    # a package without module 15
    plain = Sequential(Conv2d(1, 2, 3))
    same, kernels = harness.fast_kernels(plain)
    assert same is plain and "module 09" in kernels and "forward" not in vars(plain.layers[0])
