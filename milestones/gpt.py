"""Milestone gpt (after module 14): a GPT trained from scratch writes Shakespeare.

A character-level GPT built from the student's modules learns eight Shakespeare plays (the
corpus shipped in tinytorch.datasets: Hamlet, King Lear, Macbeth, Othello, Romeo and Juliet,
Julius Caesar, Richard III, The Tempest; the last 10% of each play is the validation text):

    module 11 CharTokenizer: characters -> ids            (--tokenizer bpe: module 11's BPE)
    module 12 Embedding + PositionalEmbedding             (B, 64) -> (B, 64, 64)
    module 13/14 2 pre-norm TransformerBlocks, 4 heads    (B, 64, 64)
    module 14 LayerNorm, head                             (B, 64, V) next-character logits
    module 05/14 next_token_loss, module 07 backward, module 06 AdamW

trained for a fixed number of steps on random windows of 64 characters, 32 per step, with a
learning rate warmed up over the first steps and annealed (cosine) to a tenth. The target is a
**validation loss of at most 2.0 nats per character**, measured on every character of the
validation text (consecutive windows of 64, each character predicted from the ones before it
in its window: a fixed set, the same every run). The script prints it beside what counting
reaches on the same split: unigram, bigram, trigram and 4-gram models fitted on the training
text (milestones/ngram.py). Then it writes samples from a fixed prompt at three temperatures
and reports the share of the generated words that occur in the corpus.

    python milestones/gpt.py [--steps N] [--data PATH] [--tokenizer char|bpe] [--vocab-size N]
                             [--checkpoint DIR] [--restart] [--seed N] [--plot PATH]
                             [--history-json PATH] [--quiet] [--result PATH]

A run survives an interruption: every EVAL_EVERY steps a checkpoint (weights, AdamW's moments
and step counts, the batch generator's state, the history) is written atomically into a folder
of its own under --checkpoint, and the same command run again continues from it exactly: the
resumed run ends with the same weights, bit for bit, as one that never stopped. Before training
the script times a few real steps and prints an estimate of the whole run.

What counts as the milestone: the character-level recipe as it is (its steps and batch size)
on the shipped corpus or on the classic Tiny Shakespeare file (--data, identified by its md5).
Then the verdict is PASSED at a validation loss of 2.0 or less, FAILED above. Anything else
(fewer or more steps, another batch size, the BPE tokenizer, other text) is a PATH CHECK that
says why it is not the milestone; it is never recorded.

The script imports only `tinytorch` and NumPy besides the milestones' own `harness` and `ngram`.
"""

from __future__ import annotations

import os

# One BLAS thread unless the environment says otherwise, as the other milestones.
_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
if not any(_variable in os.environ for _variable in _THREADS):
    for _variable in _THREADS:
        os.environ[_variable] = "1"

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402

import numpy as np  # noqa: E402

if __package__:                         # imported as milestones.gpt (tests, benchmarks)
    from . import harness, ngram
else:                                   # run as a script: this folder is on sys.path
    import harness
    import ngram

NAME = "gpt"
TARGET = 2.0              # validation nats per character
N_LAYER, N_HEAD, N_EMBD, BLOCK_SIZE = 2, 4, 64, 64
BATCH_SIZE = 32
STEPS = 2000
LR = 3e-3                 # AdamW's peak learning rate
MIN_LR = LR / 10          # where the cosine ends
WARMUP = 100              # steps of linear warm-up
WEIGHT_DECAY = 0.01
BETAS = (0.9, 0.99)
EVAL_EVERY = 250          # steps between checkpoints and validation estimates
CURVE_STRIDE = 8          # the curve's estimates use every 8th validation window
PROBE_STEPS = 3
PROMPT = "The king "
TEMPERATURES = (0.5, 0.8, 1.0)
SAMPLE_CHARS = 240
WORD_SAMPLES, WORD_CHARS = 8, 300    # the word check: 8 samples of 300 characters at T 0.8
BPE_VOCAB = 512
TIME_BUDGET = 600.0       # the claim's 10 minutes, reported beside the training time
CHECKPOINTS = "gpt-checkpoints"
RECIPE = 1                # part of each checkpoint folder's name: bump it when the recipe changes
SPEC = harness.Spec(NAME, after="14", claim="validation loss ≤ 2.0 nats/char on the shipped Shakespeare "
                    "(or the classic Tiny Shakespeare) with a character-level GPT",
                    target=harness.Target("val_loss", "<=", TARGET))
MilestoneError = harness.MilestoneError

EXPLANATION = """\
MILESTONE gpt: a GPT trained from scratch writes Shakespeare
Your modules, end to end: module 11's tokenizer turns the plays into ids, module 12 embeds them
with their positions, {layers} pre-norm transformer blocks of modules 13-14 ({heads} heads, width {width})
read windows of {block} tokens (characters), and module 14's head scores the next one. The loss is
module 05's cross-entropy on every position (next_token_loss), the gradients come from module 07
and AdamW (module 06) takes {steps:,} steps of {batch} windows, its learning rate warmed up and
annealed. A checkpoint every {every} steps: run the same command again after an interruption and
it continues where it stopped. Target: validation loss <= {target} nats per character."""


@dataclass
class Result:
    """What the run reached, on which text, and what it was estimated to take."""

    seed: int
    steps: int
    batch_size: int
    tokenizer: str = "char"
    vocab_size: int = 0
    parameters: int = 0
    data: str = ""
    history: list[dict] = field(default_factory=list)     # one record per EVAL_EVERY steps
    val_loss: float = math.nan          # nats per character, every validation character
    val_bits_per_char: float = math.nan
    val_chars: int = 0
    ngram: dict = field(default_factory=dict)             # {"1": nats/char, ...}
    samples: dict = field(default_factory=dict)           # {"0.8": text, ...}
    word_share: float = math.nan        # generated words that occur in the corpus
    words: int = 0
    seconds: float = 0.0                # training time (this session and the checkpoint's)
    identity: harness.Data = harness.NO_DATA
    counts: bool = False
    reason: str = ""
    resumed_from: int = 0
    checkpoint: str = ""
    eta_seconds: float = math.nan
    steps_per_second: float = math.nan

    @property
    def passed(self) -> bool:
        return math.isfinite(self.val_loss) and self.val_loss <= TARGET


def _tinytorch():
    """The tinytorch pieces this milestone needs (an ImportError names the missing module)."""
    from tinytorch.core.layers import manual_seed
    from tinytorch.core.optimizers import AdamW
    from tinytorch.core.training import History, load_checkpoint, save_checkpoint
    from tinytorch.datasets.shakespeare import TINY_MD5, load_shakespeare
    from tinytorch.models.transformer import (
        GPT,
        GPTConfig,
        count_parameters,
        next_token_loss,
        random_windows,
    )
    from tinytorch.text.tokenization import BPETokenizer, CharTokenizer

    return dict(manual_seed=manual_seed, AdamW=AdamW, History=History, load_checkpoint=load_checkpoint,
                save_checkpoint=save_checkpoint, GPT=GPT, GPTConfig=GPTConfig, count_parameters=count_parameters,
                next_token_loss=next_token_loss, random_windows=random_windows, load_shakespeare=load_shakespeare,
                TINY_MD5=TINY_MD5, BPETokenizer=BPETokenizer, CharTokenizer=CharTokenizer)


# --- the text ------------------------------------------------------------------------------------


@dataclass
class Corpus:
    train: str
    val: str
    description: str
    identity: harness.Data
    official: bool
    why: str              # why this text is (not) the text the claim names


def load_corpus(data: str | None) -> Corpus:
    """The train and validation text: the shipped plays, or what --data names (read by module
    tinytorch.datasets.shakespeare, which knows the classic Tiny Shakespeare by its md5). A
    missing or damaged file stops the run with the reader's one-line DatasetError."""
    t = _tinytorch()
    train, val = t["load_shakespeare"]("train", data=data), t["load_shakespeare"]("val", data=data)
    official = val.origin == "shipped" or _md5(val.origin) == t["TINY_MD5"]
    name = val.name if official else f"text from {val.origin}"
    identity = harness.Data(name=f"{name}, validation split", checksum=f"sha256:{val.checksum}",
                            official=official, examples=len(val.text))
    why = (f"{val.name} is the text the claim names" if official else
           f"{val.origin} is neither the shipped corpus nor the classic Tiny Shakespeare "
           f"(md5 {t['TINY_MD5']})")
    description = (f"{val.name}: {len(train.text):,} training and {len(val.text):,} validation characters"
                   + ("" if val.origin == "shipped" else f" from {val.origin}"))
    return Corpus(train.text, val.text, description, identity, official, why)


def _md5(path: str) -> str:
    with open(path, "rb") as stream:
        return hashlib.md5(stream.read(), usedforsecurity=False).hexdigest()


def make_tokenizer(kind: str, corpus: Corpus, vocab_size: int):
    """Module 11's CharTokenizer over the corpus's characters, or its BPETokenizer trained on
    the training text."""
    t = _tinytorch()
    if kind == "char":
        return t["CharTokenizer"].from_text(corpus.train + corpus.val)
    tokenizer = t["BPETokenizer"]()
    tokenizer.train(corpus.train, vocab_size)
    return tokenizer


def decide(corpus: Corpus, args: argparse.Namespace) -> tuple[bool, str]:
    """(whether this run is the milestone, the sentence saying why)."""
    if not corpus.official:
        return False, f"the text is not the milestone's: {corpus.why}"
    if args.tokenizer != "char":
        return False, (f"--tokenizer {args.tokenizer} trains on BPE tokens; the milestone is the character-level "
                       "model (compare the two by bits per character)")
    if args.steps != STEPS or args.batch_size != BATCH_SIZE:
        return False, (f"{args.steps:,} steps of {args.batch_size} windows is not the recipe's {STEPS:,} steps of "
                       f"{BATCH_SIZE}")
    return True, f"the recipe's {STEPS:,} steps on {corpus.identity.name}; every validation character scored"


# --- the model, the schedule, the batches --------------------------------------------------------


def build_model(vocab_size: int):
    """The milestone's GPT for `vocab_size` tokens (call manual_seed first for reproducible weights)."""
    t = _tinytorch()
    return t["GPT"](t["GPTConfig"](vocab_size=vocab_size, block_size=BLOCK_SIZE, n_layer=N_LAYER,
                                   n_head=N_HEAD, n_embd=N_EMBD))


def make_optimizer(model):
    return _tinytorch()["AdamW"](model.parameters(), lr=LR, betas=BETAS, weight_decay=WEIGHT_DECAY)


def learning_rate(step: int, steps: int) -> float:
    """Linear warm-up to LR over WARMUP steps, then a cosine down to MIN_LR at the last step."""
    warmup = min(WARMUP, max(steps // 10, 1))
    if step < warmup:
        return LR * (step + 1) / warmup
    progress = (step - warmup) / max(steps - warmup, 1)
    return MIN_LR + 0.5 * (LR - MIN_LR) * (1 + math.cos(math.pi * min(progress, 1.0)))


def validation_windows(ids: np.ndarray, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive windows over the validation ids, every `stride`-th one: (inputs, targets) of
    (n, BLOCK_SIZE), each id after the first predicted once (the last partial window dropped)."""
    count = (len(ids) - 1) // BLOCK_SIZE
    starts = np.arange(count)[::stride] * BLOCK_SIZE
    windows = ids[starts[:, None] + np.arange(BLOCK_SIZE + 1)]
    return windows[:, :-1], windows[:, 1:]


def evaluate(model, inputs: np.ndarray, targets: np.ndarray, batch: int = 64) -> float:
    """The summed next-token cross-entropy (nats) over every target, without a graph."""
    from tinytorch.core.autograd import no_grad

    t = _tinytorch()
    total = 0.0
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            for first in range(0, len(inputs), batch):
                x, y = inputs[first:first + batch], targets[first:first + batch]
                total += t["next_token_loss"](model(x), y).item() * y.size
    finally:
        model.train(was_training)
    return total


# --- checkpoints ---------------------------------------------------------------------------------


def run_settings(args: argparse.Namespace, corpus: Corpus) -> dict:
    """Everything that makes two runs the same run: their checkpoints are interchangeable."""
    return {"recipe": RECIPE, "seed": args.seed, "steps": args.steps, "batch_size": args.batch_size,
            "tokenizer": args.tokenizer, "vocab_size": args.vocab_size if args.tokenizer == "bpe" else None,
            "data": corpus.identity.checksum, "train_chars": len(corpus.train), "eval_every": args.eval_every}


def run_folder(root: str, settings: dict) -> str:
    """root/seed0-steps2000-batch32-char-<8 hex of all the settings>: one folder per run."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    name = (f"seed{settings['seed']}-steps{settings['steps']}-batch{settings['batch_size']}-"
            f"{settings['tokenizer']}-{digest}")
    return os.path.join(root, name)


def saved_step(path: str) -> int:
    """The step after which the checkpoint at `path` was written (a clear error when damaged)."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            return int(json.loads(str(stored["meta"]))["epoch"])
    except Exception as error:              # a truncated zip, a missing key, not JSON, ...
        raise MilestoneError(f"the checkpoint {path} cannot be read ({type(error).__name__}: {error}). "
                             "Delete it, or pass --restart to start this run over.") from None


# --- the ETA ----------------------------------------------------------------------------------------


def measure_speed(vocab_size: int, ids: np.ndarray, batch_size: int, seed: int) -> float:
    """Seconds per training step, from PROBE_STEPS real steps (after one warm-up step) of a
    throwaway model; the run itself starts from manual_seed(seed) afterwards."""
    t = _tinytorch()
    t["manual_seed"](seed)
    model = build_model(vocab_size)
    optimizer = make_optimizer(model)
    generator = np.random.default_rng(seed + 10_000)
    times = []
    for _ in range(PROBE_STEPS + 1):
        x, y = t["random_windows"](ids, BLOCK_SIZE, batch_size, generator)
        loss = t["next_token_loss"](model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter())
    return (times[-1] - times[0]) / PROBE_STEPS


# --- the run -------------------------------------------------------------------------------------


def train(args: argparse.Namespace, corpus: Corpus, say=lambda *a: None) -> Result:
    """Train (or continue training) the GPT as `args` say; evaluate it on the validation text."""
    t = _tinytorch()
    counts, reason = decide(corpus, args)
    tokenizer = make_tokenizer(args.tokenizer, corpus, args.vocab_size)
    train_ids = np.array(tokenizer.encode(corpus.train), dtype=np.int64)
    val_ids = np.array(tokenizer.encode(corpus.val), dtype=np.int64)
    if len(train_ids) <= BLOCK_SIZE + 1 or len(val_ids) <= BLOCK_SIZE + 1:
        raise MilestoneError(f"the text is too short: {len(train_ids)} training and {len(val_ids)} validation "
                             f"tokens, but a window needs {BLOCK_SIZE + 1}")
    settings = run_settings(args, corpus)
    folder = run_folder(args.checkpoint, settings)
    last = os.path.join(folder, "last.npz")
    result = Result(seed=args.seed, steps=args.steps, batch_size=args.batch_size, tokenizer=args.tokenizer,
                    vocab_size=tokenizer.vocab_size, data=corpus.description, identity=corpus.identity,
                    counts=counts, reason=reason, checkpoint=os.path.abspath(folder))
    baselines = ngram.ngram_losses(corpus.train, corpus.val)
    result.ngram = {str(order): loss for order, loss in baselines.items()}
    say(f"\ndata: {corpus.description}")
    say("counting, on the same validation text (" + ngram.SMOOTHING + "):\n  "
        + "   ".join(f"{order}-gram {loss:.3f}" for order, loss in baselines.items()) + "  nats/char")
    say(f"tokenizer: {args.tokenizer}, {tokenizer.vocab_size} tokens"
        + (f" ({len(corpus.val) / len(val_ids):.2f} characters per token on the validation text)"
           if args.tokenizer == "bpe" else "") + f"; seed {args.seed}, {args.steps:,} steps of {args.batch_size}")

    if os.path.exists(last) and not args.restart:
        result.resumed_from = saved_step(last)
        say(f"checkpoint: {folder}\n  holds this run after step {result.resumed_from:,} of {args.steps:,}: "
            + ("continuing from there (--restart starts over)" if result.resumed_from < args.steps
               else "the run is complete; evaluating it (--restart trains it again)"))
    else:
        say(f"checkpoint: {folder} (every {args.eval_every} steps; run the same command again to continue)"
            + ("\n  --restart: starting over" if os.path.exists(last) else ""))
    harness.write_json(os.path.join(folder, "settings.json"), settings)

    curve_x, curve_y = validation_windows(val_ids, CURVE_STRIDE)
    unit = "nats/char" if args.tokenizer == "char" else "nats/token"      # of the curve
    remaining = args.steps - result.resumed_from
    if remaining > 0 and not args.quiet:
        per_step = measure_speed(tokenizer.vocab_size, train_ids, args.batch_size, args.seed)
        result.steps_per_second = 1 / per_step
        evals = remaining // args.eval_every + 1
        result.eta_seconds = per_step * (remaining + evals * len(curve_x) / (3 * args.batch_size)
                                         + len(val_ids) / BLOCK_SIZE / (3 * args.batch_size))
        say(f"ETA: about {harness.duration(result.eta_seconds)} for {remaining:,} steps at {1 / per_step:.1f} steps/s "
            f"({1000 * per_step:.0f} ms per step of {args.batch_size} x {BLOCK_SIZE} tokens, "
            f"{PROBE_STEPS} steps timed)\n")

    t["manual_seed"](args.seed)                                  # the initial weights
    model = build_model(tokenizer.vocab_size)
    result.parameters = int(sum(p.size for p in model.parameters()))
    optimizer = make_optimizer(model)
    generator = np.random.default_rng(args.seed)                 # the batches
    history = t["History"]()
    if result.resumed_from:
        state = t["load_checkpoint"](last, model, optimizer)
        history = state["history"]
        generator.bit_generator.state = state["rng_state"]["batches"]
    step = result.resumed_from
    progress = harness.Progress(args.steps, "training", say, quiet=args.quiet, start=step)
    start, losses = time.perf_counter(), []
    try:
        while step < args.steps:
            optimizer.lr = learning_rate(step, args.steps)
            x, y = t["random_windows"](train_ids, BLOCK_SIZE, args.batch_size, generator)
            loss = t["next_token_loss"](model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            step += 1
            progress.update(step, loss=f"{losses[-1]:.3f}")
            if step % args.eval_every == 0 or step == args.steps:
                val = evaluate(model, curve_x, curve_y) / curve_y.size
                seconds = time.perf_counter() - start
                record = {"step": step, "loss": float(np.mean(losses)), "val_loss": val, "lr": optimizer.lr,
                          "seconds": seconds}
                history.append(record)
                t["save_checkpoint"](last, model, optimizer, epoch=step, history=history,
                                     rng_state={"batches": generator.bit_generator.state})
                progress.note(f"step {step:>5,}/{args.steps:,}  train {record['loss']:.3f}  "
                              f"val {val:.3f} (every {CURVE_STRIDE}th window)  {unit}  "
                              f"lr {optimizer.lr:.2g}  {harness.duration(seconds)}")
                start, losses = time.perf_counter(), []
    finally:
        progress.close()
    result.history = [dict(record) for record in history.records]
    result.seconds = sum(record.get("seconds", 0.0) for record in result.history)

    inputs, targets = validation_windows(val_ids)
    covered = len(tokenizer.decode(val_ids[1:1 + targets.size].tolist()))   # characters predicted
    result.val_chars = covered
    result.val_loss = evaluate(model, inputs, targets) / covered
    result.val_bits_per_char = result.val_loss / math.log(2)
    sample(model, tokenizer, corpus, result)
    return result


def words_of(text: str) -> list[str]:
    return re.findall(r"[a-z]+(?:'[a-z]+)?", text.lower())


def sample(model, tokenizer, corpus: Corpus, result: Result) -> None:
    """Samples from PROMPT at each temperature, and the share of generated words found in the
    corpus (WORD_SAMPLES samples at 0.8, one batched call), all from a generator of the seed."""
    generator = np.random.default_rng(result.seed + 1)
    prompt = np.array([tokenizer.encode(PROMPT)], dtype=np.int64)
    for temperature in TEMPERATURES:
        ids = model.generate(prompt, SAMPLE_CHARS, temperature=temperature, generator=generator)
        result.samples[str(temperature)] = tokenizer.decode(ids[0].tolist())
    batch = np.repeat(prompt, WORD_SAMPLES, axis=0)
    ids = model.generate(batch, WORD_CHARS, temperature=0.8, generator=generator)
    known = set(words_of(corpus.train + corpus.val))
    generated = [word for row in ids for word in words_of(tokenizer.decode(row[prompt.shape[1]:].tolist()))[1:-1]]
    result.words = len(generated)
    result.word_share = sum(word in known for word in generated) / max(len(generated), 1)


# --- showing the result --------------------------------------------------------------------------


def verdict(result: Result) -> harness.Verdict:
    """PASSED, FAILED or PATH CHECK, with what was reached and on which text."""
    mark = "≤" if result.passed else ">"
    four = result.ngram.get("4")
    text = (f"validation loss {result.val_loss:.3f} nats/char {mark} {TARGET} on {result.val_chars:,} characters "
            f"({result.val_bits_per_char:.2f} bits/char; 4-gram {four:.3f}) after {result.steps:,} steps, "
            f"{harness.duration(result.seconds)} of training" if four is not None else
            f"validation loss {result.val_loss:.3f} nats/char {mark} {TARGET}")
    works = math.isfinite(result.val_loss) and result.val_chars > 0
    return harness.judge(SPEC, value=result.val_loss, data=result.identity, counts=result.counts,
                         reason=result.reason, reached=result.passed, works=works, text=text)


def report(result: Result, say) -> None:
    say("\nvalidation loss (nats per character; lower is better):")
    rows = [(f"{order}-gram (counting)", loss) for order, loss in sorted(result.ngram.items())]
    rows.append((f"your GPT ({result.parameters:,} parameters)", result.val_loss))
    for label, loss in sorted(rows, key=lambda row: -row[1]):
        say(f"  {label:<32} {loss:6.3f}  {loss / math.log(2):5.2f} bits/char")
    say(f"  target                           {TARGET:6.3f}")
    if result.seconds:
        within = "within" if result.seconds <= TIME_BUDGET else "beyond"
        say(f"training time: {harness.duration(result.seconds)} ({within} the claim's {harness.duration(TIME_BUDGET)})")
    say(f"\nsamples from {PROMPT!r}:")
    for temperature, text in result.samples.items():
        say(f"--- temperature {temperature} ---\n{text}")
    say(f"\nwords: {100 * result.word_share:.0f}% of {result.words} generated words (8 samples at temperature "
        "0.8) occur in the corpus")


def plot(result: Result, path: str) -> str | None:
    """The training and validation curves beside the n-gram levels, as a PNG; None without matplotlib."""
    plt = harness._pyplot()
    if plt is None or not result.history:
        return None
    figure, axes = plt.subplots(figsize=(7, 4.5))
    steps = [record["step"] for record in result.history]
    axes.plot(steps, [record["loss"] for record in result.history], label="training loss (mean over the interval)")
    axes.plot(steps, [record["val_loss"] for record in result.history], label="validation loss (estimate)")
    for order, loss in sorted(result.ngram.items()):
        axes.axhline(loss, color="grey", linestyle=":", linewidth=0.8)
        axes.text(steps[-1], loss, f" {order}-gram", va="center", fontsize=8, color="grey")
    axes.axhline(TARGET, color="red", linestyle="--", linewidth=0.8, label=f"target {TARGET}")
    axes.set_xlabel("step")
    axes.set_ylabel("nats per " + ("character" if result.tokenizer == "char" else "token (curve)"))
    axes.set_title(f"GPT {N_LAYER}x{N_EMBD}, {result.parameters:,} parameters: validation {result.val_loss:.3f}")
    axes.legend(fontsize=8)
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return os.path.abspath(path)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gpt.py", description="Milestone gpt: a GPT trained from scratch "
                                     "writes Shakespeare.")
    parser.add_argument("--steps", type=int, default=STEPS, help=f"training steps (default {STEPS}); any other "
                        "number is a path check")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=f"windows of {BLOCK_SIZE} tokens per "
                        f"step (default {BATCH_SIZE})")
    parser.add_argument("--data", metavar="PATH", help="a text file to train on instead of the shipped plays, e.g. "
                        "the classic Tiny Shakespeare input.txt (recognized by its md5)")
    parser.add_argument("--tokenizer", choices=("char", "bpe"), default="char", help="characters (the milestone) "
                        "or module 11's byte-level BPE trained on the training text (a path check; compare by "
                        "bits per character)")
    parser.add_argument("--vocab-size", type=int, default=BPE_VOCAB, help=f"the BPE's vocabulary (default {BPE_VOCAB})")
    parser.add_argument("--checkpoint", metavar="DIR", default=CHECKPOINTS, help="where each run keeps its "
                        f"checkpoint folder (default {CHECKPOINTS}/ in the current folder); a run with the same "
                        "settings continues from it")
    parser.add_argument("--restart", action="store_true", help="start over even if a checkpoint of these "
                        "settings exists")
    parser.add_argument("--eval-every", type=int, default=EVAL_EVERY, metavar="N", help="steps between "
                        f"checkpoints and validation estimates (default {EVAL_EVERY})")
    harness.add_options(parser, seed="the initial weights, the batches and the samples", plot="gpt_training.png",
                        shows="the loss curves and the n-gram levels")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.eval_every < 1:
        parser.error(f"--eval-every must be at least 1, got {args.eval_every}")
    if args.vocab_size < 257:
        parser.error(f"--vocab-size must be at least 257 (256 bytes and one merge), got {args.vocab_size}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the milestone: 0 when it is achieved (or a path check runs through), 1 otherwise."""
    args = parse_args(argv)
    say = harness.sayer(args.quiet)
    try:
        corpus = load_corpus(args.data)                  # first: no data, one line and nothing else
        say(EXPLANATION.format(layers=N_LAYER, heads=N_HEAD, width=N_EMBD, block=BLOCK_SIZE, steps=args.steps,
                               batch=args.batch_size, every=args.eval_every, target=TARGET))
        result = train(args, corpus, say=say)
    except BaseException as error:                       # the harness re-raises what it does not handle
        return harness.stopped(SPEC, error, args.result, interrupted=f"every {args.eval_every} steps are in "
                               "the checkpoint: run the same command again to continue")
    report(result, say)
    if args.history_json:
        harness.write_json(args.history_json, {**asdict(result), "passed": result.passed, "target": TARGET})
        say(f"\nresult: written as JSON to {os.path.abspath(args.history_json)}")
    path = args.plot or "gpt_training.png"
    harness.say_plot(plot(result, path), path, "the loss curves and the n-gram levels", say)
    return harness.finish(verdict(result), args.result)


if __name__ == "__main__":
    harness.run_script(main)
