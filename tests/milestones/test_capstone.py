"""milestones/capstone.py: the three tracks, their verdicts, their report and model files.

The full tracks train the gpt milestone's model or time the cifar10 recipe (minutes); here
`--quick` runs each track's path through `tito milestone capstone --reference` (tiny models, a
few repeats: a path check, never recorded) with every twin check in its table. The verdict's
rules are tested on made-up claims and by corrupting module 20's engines: a missed target fails
the run, and an engine whose output differs from its twin is caught. The custom example passes
for real, and a custom file with a mistake ends in one line.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from milestones import capstone, harness
from tests.conftest import ROOT, invoke, run_tito

pytestmark = pytest.mark.slow

EXAMPLE = str(ROOT / capstone.EXAMPLE)
TWINS = {  # the rows with a twin check, per track
    "language": ["one stream", "8 streams vs one", "exported model"],
    "vision": ["training images/s", "inference images/s", "digit classifier"],
    "custom": ["custom workload"],
}


def _quick(track: str, tmp_path, *more: str):
    return run_tito("milestone", "capstone", "--reference", "--", "--track", track, "--quick", "--plot",
                    str(tmp_path / f"{track}.png"), "--result", str(tmp_path / f"{track}.json"), *more,
                    env={"OPENBLAS_NUM_THREADS": "1"}, cwd=tmp_path, timeout=300)


def test_each_track_runs_quick_through_tito_as_a_path_check_that_writes_its_files(workspace, tmp_path):
    from tinytorch.capstone import LanguageEngine, VisionEngine, load

    invoke("init")
    models, report = tmp_path / "models", tmp_path / "report.json"
    runs = {"language": _quick("language", tmp_path, "--models", str(models), "--report", str(report)),
            "vision": _quick("vision", tmp_path, "--models", str(models), "--report", str(report)),
            "custom": _quick("custom", tmp_path, "--custom", EXAMPLE)}
    for track, run in runs.items():
        assert run.returncode == 0, run.stdout + run.stderr
        assert "MILESTONE capstone: PATH CHECK" in run.stdout and "not the milestone: --quick" in run.stdout
        assert "A path check, not the capstone milestone" in run.stdout
        lines = run.stdout.splitlines()
        for name in TWINS[track]:
            row = next((line for line in lines if line.strip().startswith(name)), None)
            assert row is not None and "yes (" in row, (track, name, run.stdout)
        verdict = harness.Verdict.read(tmp_path / f"{track}.json")
        assert verdict.outcome == harness.PATH_CHECK and verdict.milestone == "capstone"
        assert (tmp_path / f"{track}.png").stat().st_size > 0

    written = json.loads(report.read_text())
    assert written["schema"] == capstone.REPORT_SCHEMA and sorted(written["tracks"]) == ["language", "vision"]
    for entry in written["tracks"].values():
        assert entry["outcome"] == "path-check" and entry["environment"]["numpy"] == np.__version__
        assert entry["packages"]["tinytorch"] and entry["started_at"] <= entry["finished_at"]
        assert all({"name", "value", "target", "met", "ci"} <= set(claim) for claim in entry["claims"])
    # --quick writes only where it is told: the custom run named no report and no models folder
    assert not (tmp_path / capstone.REPORT).exists() and not (tmp_path / capstone.MODELS).exists()
    assert json.loads((workspace / ".tito/progress.json").read_text()).get("milestones", {}) == {}

    language, meta = load(models / "language.safetensors")
    assert meta["task"] == "language" and "tokenizer" in meta and "capstone milestone" in meta["source"]
    assert len(LanguageEngine(language).generate([[1, 2, 3]], 4)[0]) == 4
    vision, meta = load(models / "vision.safetensors")
    assert meta["task"] == "vision" and json.loads(meta["classes"]) == [str(d) for d in range(10)]
    assert json.loads(meta["input"])["shape"] == [1, 28, 28]
    probabilities = VisionEngine(vision).predict_proba(np.zeros((2, 1, 28, 28), dtype=np.float32))
    assert probabilities.shape == (2, 10) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)


def _record(*claims, counts=True):
    return capstone.Record(track="language", settings="full", seed=0, claims=list(claims), counts=counts,
                           reason="the recipe's model", identity=harness.NO_DATA)


def test_a_missed_target_or_a_failed_twin_fails_the_run_and_an_interval_must_clear_its_target():
    fast = capstone.Claim("one stream", "a", "b", 812.0, "tokens/s", 100.0, checked=True)
    slow = capstone.Claim("one stream", "a", "b", 80.0, "tokens/s", 100.0, checked=True)
    batched = capstone.Claim("8 streams vs one", "a", "b", 4.1, "x", 3.0, ci=(3.5, 4.5), verdict="faster")
    noisy = capstone.Claim("8 streams vs one", "a", "b", 4.1, "x", 3.0, ci=(0.9, 6.0), verdict="within noise")
    loss = capstone.Claim("validation loss change", "a", "b", 0.02, "nats", 0.01, op="<=")
    differs = capstone.Claim("exported model", "a", "b", None, "", None, checked=False, check="logits identical")
    assert capstone.verdict(_record(fast, batched)).outcome == harness.ACHIEVED
    for broken in ([slow, batched], [fast, noisy], [fast, batched, loss]):
        decided = capstone.verdict(_record(*broken))
        assert decided.outcome == harness.MISSED and decided.exit_code == 1, decided.line
    decided = capstone.verdict(_record(fast, batched, differs))
    assert decided.outcome == harness.MISSED and "twin check FAILED: exported model" in decided.line
    quick = capstone.verdict(_record(fast, batched, differs, counts=False))
    assert quick.outcome == harness.PATH_CHECK and quick.exit_code == 1             # the path is broken
    custom = capstone.Claim("custom workload", "a", "b", 2.5, "x", 2.0, ci=(1.9, 3.0), verdict="faster", strict=True)
    assert custom.met is False and custom.verdict_text() == "missed"                # the interval reaches below 2
    assert capstone.verdict(_record()).outcome == harness.MISSED                    # nothing measured: not proved


@pytest.mark.parametrize("track", ["language", "vision", "training"])
def test_a_corrupted_engine_is_caught_by_its_twin_check(track, tmp_path, monkeypatch, capsys):
    import tinytorch.capstone as module
    from tinytorch.core.autograd import GRADIENTS

    caught = "twin check FAILED"

    if track == "training":       # module 15's BatchNorm rule 1% off: more than float32's rounding
        rule = GRADIENTS["batchnorm2d_fast"]
        monkeypatch.setitem(GRADIENTS, "batchnorm2d_fast",
                            lambda g, *a, **k: (rule(g, *a, **k)[0] * 1.01, *rule(g, *a, **k)[1:]))
        track, caught = "vision", "training images/s: one step's loss and gradients"
    elif track == "language":
        forward = module.LanguageEngine.forward
        monkeypatch.setattr(module.LanguageEngine, "forward",
                            lambda self, *a: forward(self, *a) + np.eye(self.vocab_size, dtype=np.float32)[0] * 50)
    else:
        predict = module.VisionEngine.predict_proba
        monkeypatch.setattr(module.VisionEngine, "predict_proba", lambda self, x: np.roll(predict(self, x), 1, axis=1))
    code = capstone.main(["--track", track, "--quick", "--quiet", "--models", str(tmp_path / "m"),
                          "--result", str(tmp_path / "v.json"), "--plot", str(tmp_path / "p.png")])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert code == 1 and line.startswith("MILESTONE capstone: PATH CHECK FAILED") and "twin check FAILED" in line
    assert caught in line, line
    assert harness.Verdict.read(tmp_path / "v.json").outcome == harness.PATH_CHECK


def test_the_custom_example_passes_and_its_report_keeps_a_real_run(tmp_path, capsys):
    report = tmp_path / "report.json"
    code = capstone.main(["--track", "custom", "--custom", EXAMPLE, "--quiet", "--report", str(report),
                          "--plot", str(tmp_path / "c.png"), "--result", str(tmp_path / "v.json")])
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("MILESTONE capstone: PASSED (custom workload"), out
    entry = json.loads(report.read_text())["tracks"]["custom"]
    claim = entry["claims"][0]
    assert entry["outcome"] == "achieved" and claim["met"] and claim["ci"][0] >= capstone.CUSTOM_SPEEDUP
    assert entry["data"]["checksum"].startswith("sha256:")
    # a path check afterwards does not replace the real run's entry
    assert capstone.main(["--track", "custom", "--custom", EXAMPLE, "--quick", "--report", str(report),
                          "--plot", str(tmp_path / "c.png")]) == 0
    assert "keeps the custom track's real run" in capsys.readouterr().out
    assert json.loads(report.read_text())["tracks"]["custom"]["finished_at"] == entry["finished_at"]


BROKEN = {
    "syntax.py": ("def baseline(:\n", "a syntax error at line 1"),
    "incomplete.py": ("def baseline():\n    return 1\nQUALITY_TOLERANCE = 0\n", "it defines no function optimized, "
                      "quality"),
    "tolerance.py": ("def baseline(): pass\ndef optimized(): pass\ndef quality(fn): return 1.0\n",
                     "QUALITY_TOLERANCE must be a number >= 0, got None"),
    "raises.py": ("def baseline(): return 1 / 0\ndef optimized(): pass\ndef quality(fn): return fn() or 1.0\n"
                  "QUALITY_TOLERANCE = 0\n", "quality(baseline) raised ZeroDivisionError: division by zero"),
    "quality.py": ("def baseline(): pass\ndef optimized(): pass\ndef quality(fn): return 'good'\n"
                   "QUALITY_TOLERANCE = 0\n", "quality(baseline) returned 'good', not a finite number"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_custom_file_with_a_mistake_ends_in_one_line(name, tmp_path, capsys):
    text, message = BROKEN[name]
    (tmp_path / name).write_text(text)
    code = capstone.main(["--track", "custom", "--custom", str(tmp_path / name), "--quiet", "--report",
                          str(tmp_path / "r.json")])
    captured = capsys.readouterr()
    assert code == 1 and captured.err == ""
    [line] = captured.out.splitlines()
    assert line.startswith(f"MILESTONE capstone: FAILED (--custom {tmp_path / name}: {message}"), line
    assert not (tmp_path / "r.json").exists()


def test_a_missing_track_or_custom_file_is_one_line(capsys):
    with pytest.raises(SystemExit) as stopped:
        capstone.main([])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        "--track must be one of vision, language, custom (e.g. --track language; the custom track also needs "
        f"--custom FILE, template {capstone.EXAMPLE})")
    assert capstone.main(["--track", "custom", "--quiet"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"MILESTONE capstone: FAILED (--track custom needs --custom FILE, the file of your workload (the template: "
        f"{capstone.EXAMPLE}))"]
