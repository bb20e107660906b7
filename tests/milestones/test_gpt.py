"""milestones/gpt.py: the whole path of the gpt milestone, in a short configuration.

A run of the script on the reference package, on a slice of the shipped plays written to a
file (so a path check), learns: its validation loss ends below the bigram loss of the same
split, which the script computes itself. A run killed with SIGKILL after its first checkpoint
and started again through `tito milestone gpt --reference` ends bitwise where the
uninterrupted run ends, and records nothing. The verdict is achieved only for the recipe on the
shipped corpus (or the classic Tiny Shakespeare), missed above the target there, and a path
check for anything else. The n-gram baselines are checked against counts by hand.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from milestones import gpt, harness, ngram
from tests.conftest import ROOT, invoke, run_tito

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("gpt")]

SCRIPT = ROOT / "milestones" / "gpt.py"
LEARN = ["--steps", "400", "--batch-size", "8", "--eval-every", "200"]   # about 15 s of training
RESUME = ["--steps", "40", "--batch-size", "4", "--eval-every", "20"]


def script_env(tmp: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
            "HOME": str(tmp / "home")}


@pytest.fixture(scope="session")
def text(tmp_path_factory) -> Path:
    """The first 120,000 characters of the shipped training text, as a file: 108,000 to train on
    and 12,000 to validate (the reader's 90/10 split of a file)."""
    from tinytorch.datasets.shakespeare import load_shakespeare

    path = tmp_path_factory.mktemp("text") / "plays.txt"
    path.write_text(load_shakespeare("train").text[:120_000], encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def uninterrupted(text, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("uninterrupted")
    run = subprocess.run([sys.executable, str(SCRIPT), "--data", str(text), *LEARN, "--checkpoint", str(tmp / "ck"),
                          "--history-json", str(tmp / "result.json"), "--result", str(tmp / "verdict.json"),
                          "--plot", str(tmp / "curve.png")],
                         capture_output=True, text=True, env=script_env(tmp), cwd=tmp, timeout=300)
    return run, json.loads((tmp / "result.json").read_text()), tmp


def checkpoint(folder: Path) -> tuple[dict, dict]:
    (path,) = folder.glob("*/last.npz")
    with np.load(path, allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    meta = json.loads(str(arrays.pop("meta")))
    meta["history"] = [{k: v for k, v in record.items() if k != "seconds"} for record in meta["history"]]
    return arrays, meta


def test_a_short_run_learns_below_the_bigram_loss_and_says_so(uninterrupted, text):
    run, result, tmp = uninterrupted
    assert run.returncode == 0 and run.stderr == "", run.stdout[-3000:] + run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    assert lines[-1].startswith("MILESTONE gpt: PATH CHECK (validation loss "), lines[-1]
    assert f"not the milestone: the text is not the milestone's: {text}" in lines[-1]
    bigram, four = result["ngram"]["2"], result["ngram"]["4"]
    assert result["ngram"]["1"] > bigram > result["ngram"]["3"] > four > 0
    first, last = result["history"][0]["val_loss"], result["history"][-1]["val_loss"]
    assert math.log(result["vocab_size"]) > first > last, "the validation estimate falls"
    assert result["val_loss"] < bigram, (result["val_loss"], bigram)
    assert result["val_chars"] == 12_000 // 64 * 64 and result["steps"] == 400
    assert [record["step"] for record in result["history"]] == [200, 400]
    assert f"{result['val_loss']:.3f} nats/char > 2.0 on 11,968 characters" in lines[-1]
    assert re.search(r"^ETA: about .* for 400 steps at [\d.]+ steps/s", run.stdout, re.M)
    assert "counting, on the same validation text (interpolated absolute discounting" in run.stdout
    for temperature in gpt.TEMPERATURES:
        sample = result["samples"][str(temperature)]
        assert sample.startswith(gpt.PROMPT) and len(sample) == len(gpt.PROMPT) + gpt.SAMPLE_CHARS
        assert f"--- temperature {temperature} ---\n{sample}" in run.stdout
    assert 0 < result["word_share"] <= 1 and result["words"] > 50
    assert re.search(r"^words: \d+% of \d+ generated words", run.stdout, re.M)
    assert (tmp / "curve.png").stat().st_size > 0 or "matplotlib is not installed" in run.stdout


def test_the_verdict_file_is_the_path_check_it_printed(uninterrupted, text):
    run, result, tmp = uninterrupted
    verdict = harness.Verdict.read(tmp / "verdict.json")
    assert verdict.outcome == "path-check" and verdict.line == run.stdout.strip().splitlines()[-1]
    assert verdict.metric == {"name": "val_loss", "value": pytest.approx(result["val_loss"])}
    assert verdict.target == {"name": "val_loss", "op": "<=", "value": 2.0}
    assert verdict.data["official"] is False and verdict.data["checksum"].startswith("sha256:")
    assert verdict.data["examples"] == 12_000


def run_script(args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          env=script_env(tmp), cwd=tmp, timeout=300)


def test_a_killed_run_resumes_exactly_and_a_reference_run_records_nothing(text, tmp_path, workspace):
    """SIGKILL right after step 20's line (its checkpoint is written before the line), then the
    same command through `tito milestone gpt --reference`: the same weights, AdamW state,
    batches, history, validation loss and samples as a run that never stopped."""
    straight = tmp_path / "straight"
    straight.mkdir()
    done = run_script(["--data", str(text), *RESUME, "--checkpoint", str(straight / "ck"), "--quiet",
                       "--history-json", str(straight / "result.json")], straight)
    assert done.returncode == 0, done.stdout + done.stderr
    folder, result = tmp_path / "ck", tmp_path / "result.json"
    args = ["--data", str(text), *RESUME, "--checkpoint", str(folder), "--history-json", str(result)]
    process = subprocess.Popen([sys.executable, str(SCRIPT), *args], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=script_env(tmp_path), cwd=tmp_path)
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith("step    20/40"):         # printed after the checkpoint is written
            process.send_signal(signal.SIGKILL)
            break
    process.stdout.close()
    assert process.wait(timeout=120) == -signal.SIGKILL, "".join(seen)
    assert checkpoint(folder)[1]["epoch"] == 20 and not result.exists()

    invoke("init")
    resumed = run_tito("milestone", "gpt", "--reference", "--", *args, env={"OPENBLAS_NUM_THREADS": "1"})
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "holds this run after step 20 of 40: continuing from there" in resumed.stdout
    assert "step    40/40" in resumed.stdout and "step    20/40" not in resumed.stdout
    assert "MILESTONE gpt: PATH CHECK" in resumed.stdout and "Nothing recorded." in resumed.stdout
    progress = workspace / ".tito" / "progress.json"
    assert not progress.exists() or json.loads(progress.read_text()).get("milestones", {}) == {}

    arrays, meta = checkpoint(folder)
    expected_arrays, expected_meta = checkpoint(straight / "ck")
    assert arrays.keys() == expected_arrays.keys()
    for key, value in expected_arrays.items():
        assert arrays[key].dtype == value.dtype and np.array_equal(arrays[key], value), f"{key} differs"
    assert meta == expected_meta
    again, first = json.loads(result.read_text()), json.loads((straight / "result.json").read_text())
    assert again["resumed_from"] == 20 and first["resumed_from"] == 0
    for key in ("val_loss", "samples", "word_share", "ngram", "vocab_size"):
        assert again[key] == first[key], key


def test_the_bpe_option_trains_on_tokens_and_reports_per_character(text, tmp_path):
    run = run_script(["--data", str(text), "--tokenizer", "bpe", "--vocab-size", "300", "--steps", "20",
                      "--batch-size", "4", "--eval-every", "10", "--history-json", str(tmp_path / "r.json"),
                      "--checkpoint", str(tmp_path / "ck")], tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["tokenizer"] == "bpe" and result["vocab_size"] == 300
    assert re.search(r"^tokenizer: bpe, 300 tokens \([\d.]+ characters per token", run.stdout, re.M)
    assert "nats/token" in run.stdout and result["val_chars"] > 0
    assert result["val_bits_per_char"] == pytest.approx(result["val_loss"] / math.log(2))
    assert run.stdout.strip().splitlines()[-1].startswith("MILESTONE gpt: PATH CHECK (validation loss ")


# --- the verdict's contract, without training ----------------------------------------------------

def judged(official: bool, val_loss: float, argv: list[str]) -> harness.Verdict:
    data = harness.Data("eight Shakespeare plays (shipped), validation split", "sha256:" + "0" * 64, official,
                        111_591)
    corpus = gpt.Corpus("", "", "", data, official, "why")
    counts, reason = gpt.decide(corpus, gpt.parse_args(argv))
    result = gpt.Result(seed=0, steps=gpt.STEPS, batch_size=gpt.BATCH_SIZE, val_loss=val_loss, val_chars=111_424,
                        val_bits_per_char=val_loss / math.log(2), ngram={"1": 3.3, "2": 2.5, "3": 2.0, "4": 1.6},
                        identity=data, counts=counts, reason=reason, seconds=300.0)
    return gpt.verdict(result)


def test_the_recipe_on_the_shipped_text_is_achieved_at_or_below_2_and_missed_above():
    achieved = judged(True, 1.95, [])
    assert achieved.outcome == "achieved" and achieved.exit_code == 0
    assert achieved.line.startswith("MILESTONE gpt: PASSED (validation loss 1.950 nats/char ≤ 2.0 on 111,424")
    missed = judged(True, 2.05, [])
    assert missed.outcome == "missed" and missed.exit_code == 1 and "FAILED" in missed.line


@pytest.mark.parametrize("official,argv,why", [
    (False, [], "the text is not the milestone's"),
    (True, ["--steps", "100"], "100 steps of 32 windows is not the recipe's 2,000 steps"),
    (True, ["--batch-size", "16"], "of 16 windows is not the recipe's"),
    (True, ["--tokenizer", "bpe"], "--tokenizer bpe trains on BPE tokens"),
])
def test_anything_else_is_a_path_check_even_below_the_target(official, argv, why):
    verdict = judged(official, 1.5, argv)
    assert verdict.outcome == "path-check" and verdict.exit_code == 0 and why in verdict.reason
    assert verdict.line.startswith("MILESTONE gpt: PATH CHECK (validation loss 1.500")


def test_the_shipped_corpus_is_official_and_another_file_is_not(tmp_path):
    shipped = gpt.load_corpus(None)
    assert shipped.official and shipped.identity.official and shipped.identity.examples == len(shipped.val)
    other = tmp_path / "input.txt"
    other.write_text("to be or not to be " * 100)
    with pytest.raises(ValueError, match="not the official Tiny Shakespeare"):
        gpt.load_corpus(str(other))
    plain = tmp_path / "plays.txt"
    plain.write_text("to be or not to be " * 100)
    assert not gpt.load_corpus(str(plain)).official


def test_missing_data_is_one_failed_line(tmp_path):
    run = subprocess.run([sys.executable, str(SCRIPT), "--data", str(tmp_path / "nothing.txt"), "--result",
                          str(tmp_path / "v.json")], capture_output=True, text=True, env=script_env(tmp_path),
                         cwd=tmp_path, timeout=120)
    assert run.returncode == 1 and run.stdout.strip().splitlines() == [
        f"MILESTONE gpt: FAILED ({tmp_path / 'nothing.txt'} does not exist. Check the path, or leave data out "
        "to use the shipped corpus.)"]
    assert harness.Verdict.read(tmp_path / "v.json").outcome == "missed"


def test_the_learning_rate_warms_up_then_anneals_to_a_tenth():
    rates = [gpt.learning_rate(step, 3000) for step in range(3000)]
    assert rates[0] == pytest.approx(gpt.LR / gpt.WARMUP) and rates[gpt.WARMUP - 1] == pytest.approx(gpt.LR)
    assert max(rates) == pytest.approx(gpt.LR) and rates[-1] == pytest.approx(gpt.MIN_LR, rel=1e-3)
    assert all(a >= b for a, b in zip(rates[gpt.WARMUP:], rates[gpt.WARMUP + 1:]))


# --- the n-gram baselines ----------------------------------------------------------------------

def test_ngram_losses_are_counts_with_interpolated_absolute_discounting():
    train, val = "abcabcabd", "ca"
    losses = ngram.ngram_losses(train, val, orders=(1, 2))
    # alphabet a b c d; unigram counts + 1: a 4, b 4, c 3, d 2 (of 13); scored: val[1:] = "a"
    assert losses[1] == pytest.approx(-math.log(4 / 13))
    # bigram "c a": c was followed by something twice, by "a" both times (one type)
    p = (2 - 0.75) / 2 + 0.75 * 1 / 2 * 4 / 13
    assert losses[2] == pytest.approx(-math.log(p))


def test_ngram_losses_fall_with_the_order_on_the_shipped_plays():
    corpus = gpt.load_corpus(None)
    losses = ngram.ngram_losses(corpus.train, corpus.val)
    assert list(losses) == [1, 2, 3, 4]
    assert losses[1] > losses[2] > losses[3] > losses[4] > 1.0
    assert losses[1] < math.log(len(set(corpus.train + corpus.val)))
