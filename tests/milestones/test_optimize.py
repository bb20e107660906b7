"""milestones/optimize.py: modules 15-18 applied to the earlier milestones' models, measured by 19.

The full run trains the cnn milestone's CNN and a 0.8 M-parameter GPT and times module 09's
definition loops (minutes); here `--quick` runs the same path with tiny models and a few
repeats (about 10 s alone), through `tito milestone optimize --reference`, and must be a path check
with every twin check in its table. The verdict's rules are tested on made-up rows: a speed-up
whose interval covers 1 is not counted, and an optimized output that differs from its twin
fails the run.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from milestones import harness, optimize
from tests.conftest import invoke, run_tito

pytestmark = pytest.mark.slow

TWINS = [  # (baseline, optimized) of every row with a twin check
    ("definition loops (09)", "kernel offsets (09)"),
    ("definition loops (09)", "im2col (15)"),
    ("kernel offsets (09)", "im2col (15)"),
    ("generate (14)", "generate_cached (16)"),
    ("float32", "int8 per channel (17)"),
    ("float32", "pruned + int8 (17, 18)"),
]
SHIPPED = harness.Data(name="the MNIST digits shipped with tinytorch", checksum="sha256:46c69f6f", official=True,
                       examples=1000)


def test_the_quick_run_through_tito_is_a_path_check_with_every_twin_checked(workspace, tmp_path):
    invoke("init")
    run = run_tito("milestone", "optimize", "--reference", "--", "--quick", "--plot", str(tmp_path / "o.png"),
                   "--result", str(tmp_path / "verdict.json"), "--history-json", str(tmp_path / "record.json"),
                   env={"OPENBLAS_NUM_THREADS": "1"}, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    for baseline, optimized in TWINS:
        row = next((line for line in lines if baseline in line and optimized in line), None)
        assert row is not None and "yes (" in row, (baseline, optimized, run.stdout)
    assert re.search(r"MILESTONE optimize: PATH CHECK \(.*6 twin checks passed; not the milestone: --quick", run.stdout)
    verdict = harness.Verdict.read(tmp_path / "verdict.json")
    assert verdict.outcome == harness.PATH_CHECK and verdict.data["official"]
    record = json.loads((tmp_path / "record.json").read_text())
    kinds = [(row["kind"], row["target"]) for row in record["rows"]]
    assert kinds.count(("speed", optimize.SPEED_TARGET)) == 2 and kinds.count(("size", optimize.SIZE_TARGET)) == 1
    assert all(row["checked"] is not False for row in record["rows"])
    assert (tmp_path / "o.png").stat().st_size > 0
    assert not (tmp_path / optimize.CHECKPOINTS).exists()             # --quick keeps nothing
    assert json.loads((workspace / ".tito/progress.json").read_text()).get("milestones", {}) == {}


def test_a_fresh_workspace_is_told_which_modules_it_needs(workspace):
    invoke("init")
    refused = invoke("milestone", "optimize", expected_code=1)
    assert "needs modules 01–19 complete; missing: 01 setup" in refused.output
    assert "optimize" in invoke("status").output


def test_a_speed_up_whose_interval_covers_1_is_not_counted():
    slow = np.array([10.0, 10.0, 10.0, 0.1, 0.1])              # median 10 s, but twice 0.1 s
    fast = np.array([0.5, 0.5, 0.5, 20.0, 20.0])               # median 0.5 s, but twice 20 s
    row = optimize.speed_row("conv", "loops", "im2col", slow, fast, target=10.0, checked=True)
    assert row.ratio == pytest.approx(20.0) and row.ci[0] < 1 < row.ci[1]
    assert row.verdict == "within noise" and not row.counted and not row.met
    assert row.ratio_text().startswith("within noise") and "missed: not a speed-up" == row.verdict_text()
    real = optimize.speed_row("conv", "loops", "im2col", slow[:3], fast[:3], target=10.0, checked=True)
    assert real.verdict == "faster" and real.met
    size = optimize.Row("cnn size", "a", "b", "size", 5.0, checked=True, target=4.0, accuracy_lost=0.002)
    record = optimize.Record("full", 0, rows=[row, real, size], identity=SHIPPED)
    verdict = optimize.verdict(record, quick=False)
    assert verdict.outcome == harness.MISSED and verdict.metric["value"] == 1.0   # not 20
    record.rows[0] = real
    assert optimize.verdict(record, quick=False).outcome == harness.ACHIEVED


def test_accuracy_lost_beyond_a_point_misses_the_size_target():
    size = optimize.Row("cnn size", "a", "b", "size", 9.0, checked=True, target=4.0, accuracy_lost=0.011)
    assert not size.met and size.verdict_text() == "missed: accuracy lost"


def test_an_output_that_differs_from_its_twin_fails_the_run():
    fast = np.full(5, 0.01)
    rows = [optimize.speed_row("gen", "generate (14)", "generate_cached (16)", np.ones(5), fast, target=10.0,
                               checked=False, check="identical tokens"),
            optimize.Row("cnn size", "a", "b", "size", 5.0, checked=True, target=4.0)]
    verdict = optimize.verdict(optimize.Record("full", 0, rows=rows, identity=SHIPPED), quick=False)
    assert verdict.outcome == harness.MISSED and verdict.exit_code == 1
    assert verdict.line.startswith("MILESTONE optimize: FAILED (") and "twin check FAILED" in verdict.line
    quick = optimize.verdict(optimize.Record("quick", 0, rows=rows, identity=SHIPPED), quick=True)
    assert quick.outcome == harness.PATH_CHECK and not quick.works and quick.exit_code == 1


def test_a_corrupted_cached_generation_is_caught_by_its_twin_check(monkeypatch):
    """The generation step of the run, on a tiny untrained GPT, with a KV cache that gets the
    last token wrong: its row says FAILED and the run with it fails."""
    from tinytorch.core.layers import manual_seed
    from tinytorch.perf import caching

    manual_seed(0)
    model = optimize.build_gpt(11, optimize.QUICK)
    prompt = np.array([[1, 2, 3, 4]])
    say = lambda *a: None  # noqa: E731
    honest = optimize.generation_row(model, prompt, 6, optimize.QUICK, "gpt", "", 10.0, say)
    assert honest.checked is True

    real = caching.generate_cached

    def corrupted(*args, **kwargs):
        ids = real(*args, **kwargs)
        ids[:, -1] = (ids[:, -1] + 1) % 11                       # one wrong token at the end
        return ids

    monkeypatch.setattr(caching, "generate_cached", corrupted)
    row = optimize.generation_row(model, prompt, 6, optimize.QUICK, "gpt", "", 10.0, say)
    assert row.checked is False and not row.met and row.verdict_text() == "FAILED: twin differs"
    size = optimize.Row("cnn size", "a", "b", "size", 5.0, checked=True, target=4.0)
    verdict = optimize.verdict(optimize.Record("full", 0, rows=[row, size], identity=SHIPPED), quick=False)
    assert verdict.outcome == harness.MISSED and "twin check FAILED: gpt" in verdict.line


def test_the_gpt_milestones_model_is_reported_when_its_finished_checkpoint_is_there(tmp_path):
    """Its row is timed and twin-checked but carries no target (its context of 64 is refilled
    for every token past 64); without the checkpoint it is left out, saying where it looked."""
    import argparse

    from milestones import gpt
    from tinytorch.core.layers import manual_seed
    from tinytorch.core.training import save_checkpoint

    corpus = gpt.load_corpus(None)
    tokenizer = gpt.make_tokenizer("char", corpus, 0)
    val_ids = np.array(tokenizer.encode(corpus.val[:200]), dtype=np.int64)
    args = argparse.Namespace(seed=0, gpt_checkpoint=str(tmp_path))
    said = []
    assert optimize.gpt_milestone_row(args, corpus, tokenizer, val_ids, optimize.QUICK, said.append) == []
    assert "no finished gpt milestone checkpoint" in said[-1]
    recipe = argparse.Namespace(seed=0, steps=gpt.STEPS, batch_size=gpt.BATCH_SIZE, tokenizer="char",
                                vocab_size=gpt.BPE_VOCAB, eval_every=gpt.EVAL_EVERY)
    folder = gpt.run_folder(str(tmp_path), gpt.run_settings(recipe, corpus))
    manual_seed(0)
    save_checkpoint(f"{folder}/last.npz", gpt.build_model(tokenizer.vocab_size), epoch=gpt.STEPS)
    [row] = optimize.gpt_milestone_row(args, corpus, tokenizer, val_ids, optimize.QUICK, said.append)
    assert row.checked is True and row.target is None and row.verdict_text() == "reported"
    assert row.what.startswith("gpt milestone ctx 64")
