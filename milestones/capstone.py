"""Milestone capstone (after module 20): one integrated, optimized system, in one of three tracks.

The capstone takes what the earlier milestones built, makes it fast with modules 15-20, and
proves every claim with module 19's harness (a warm-up, repeats, the median and its bootstrap
95% interval, `compare`'s verdict) against the unoptimized twin measured in the same run, whose
output the optimized one must reproduce. Choose a track:

    --track language   the gpt milestone's model (its checkpoint, or its recipe trained here)
                       served by module 20's LanguageEngine against module 14's generate:
                         one stream                 >= 100 tokens/s
                         8 concurrent streams       >= 3x the tokens/s of one (batching)
                         validation loss            the engine's logits within 0.01 nats of
                                                    the training model's, on every window
                         greedy tokens              identical to module 14's, stream by stream
                       writes capstone-models/language.safetensors (module 20's export)
    --track vision     the cifar10 milestone's recipe rebuilt with modules 15-18:
                         training images/s          >= 2x the cifar10 milestone's module 09
                                                    configuration, same batches, same run;
                                                    both twins' weights agree afterwards
                         the time to 75%            estimated from the epochs the recipe needs
                         test accuracy              >= 75% on the official CIFAR-10 (only where
                                                    it is: the cifar10 milestone's run)
                         inference                  module 20's VisionEngine against the
                                                    model's forward (reported)
                       writes capstone-models/vision.safetensors: the cnn milestone's CNN,
                       trained on the shipped digits, for `tito capstone serve`
    --track custom     your own workload (--custom FILE, the template is
                       milestones/capstone_custom_example.py): baseline() against optimized(),
                       >= 2x with the 95% interval above 2, quality(fn) kept within
                       QUALITY_TOLERANCE

    python milestones/capstone.py --track language|vision|custom [--custom FILE] [--quick]
                                  [--models DIR] [--report PATH] [--data DIR]
                                  [--gpt-checkpoint DIR] [--seed N] [--plot PATH] [--quiet]
                                  [--history-json PATH] [--result PATH]

Every run prints one table (what was optimized, by how much with its interval, at what cost in
quality, the twin check) and a plot, and writes its track's entry into the JSON report
(--report, default capstone-report.json: one file holding each track's latest run, which `tito
submit 20` hands in with the notebook and `tito grade --export` collects into capstone.csv).

What counts as the milestone: the full settings (not --quick) and, per track, the data its
claims name: language, the gpt milestone's recipe (2,000 steps of 32 on the shipped plays, from
its checkpoint or trained here) scored on every validation window; vision, the official CIFAR-10
(the 75% is measured only there: without it the speed is measured and the run is a path check);
custom, the file you name. A run is PASSED only when every targeted claim is met and every twin
check holds. --quick (tiny models, few repeats) is a path check; it writes its tiny models and
its report entry only where --models and --report name explicitly, so it never replaces a real
run's files, and a path check never replaces a real run's entry in the report.

The script imports only `tinytorch` and NumPy besides the milestones' own modules.
"""

from __future__ import annotations

import os

# One BLAS thread, as the other milestones: every speed-up is measured on one core.
_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
if not any(_variable in os.environ for _variable in _THREADS):
    for _variable in _THREADS:
        os.environ[_variable] = "1"

import argparse  # noqa: E402
import copy  # noqa: E402
import datetime  # noqa: E402
import hashlib  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402

import numpy as np  # noqa: E402

if __package__:                         # imported as milestones.capstone (tests)
    from . import cifar10, cnn, digits, gpt, harness, optimize
else:                                   # run as a script: this folder is on sys.path
    import cifar10
    import cnn
    import digits
    import gpt
    import harness
    import optimize

NAME = "capstone"
TRACKS = ("vision", "language", "custom")
REPORT = "capstone-report.json"
REPORT_SCHEMA = "tinytorch.capstone-report"
REPORT_VERSION = 1
MODELS = "capstone-models"
EXAMPLE = "milestones/capstone_custom_example.py"

TOKENS_PER_SECOND = 100.0      # language: one stream
BATCHING = 3.0                 # language: 8 streams' tokens/s over one stream's
STREAMS = 8
VAL_LOSS_DELTA = 0.01          # language: nats
TRAINING_SPEEDUP = 2.0         # vision
ACCURACY = cifar10.TARGET      # vision: 75% on the official test batch
CUSTOM_SPEEDUP = 2.0           # custom: the low end of the interval
PROBABILITIES = 1e-5           # VisionEngine against the model's softmax
GRADIENTS = 1e-4               # the training twins' gradients against float64's, relative to the largest
                               # gradient value: module 15's error at most this or twice module 09's
EXPECTED_EPOCHS = 10           # README.md, "The cifar10 milestone", "What to expect": 75% around epoch 10

SPECS = {
    "language": harness.Spec(NAME, after="20", claim="the gpt milestone's model served by module 20's engine at "
                             "≥ 100 tokens/s for one stream and ≥ 3× that with 8 concurrent streams, validation "
                             "loss within 0.01 nats of the training model's and greedy tokens identical, measured "
                             "against module 14's generate in the same run",
                             target=harness.Target("tokens_per_second", ">=", TOKENS_PER_SECOND)),
    "vision": harness.Spec(NAME, after="20", claim="the cifar10 recipe trained ≥ 2× faster with modules 15-18 than "
                           "with the cifar10 milestone's module 09 configuration on the same batches, both twins "
                           "agreeing, and ≥ 75% test accuracy on the official CIFAR-10 test batch",
                           target=harness.Target("training_speedup", ">=", TRAINING_SPEEDUP)),
    "custom": harness.Spec(NAME, after="20", claim="the student's own workload ≥ 2× faster than its baseline, the "
                           "95% interval above 2, measured by module 19's harness, its quality kept",
                           target=harness.Target("speedup", ">=", CUSTOM_SPEEDUP)),
}

EXPLANATION = """\
MILESTONE capstone ({track} track): one integrated, optimized system
Modules 15-20 make the earlier milestones' models fast; module 19 says whether each change is
real: both sides are timed in this run after a warm-up, repeatedly, and a speed-up counts only
when its 95% confidence interval lies above 1. Every optimized output is checked against its
unoptimized twin, and what the optimization cost in quality is printed beside it."""


@dataclass(frozen=True)
class Settings:
    """How big the models are and how often each path is timed."""

    name: str
    repeats: int                  # timed calls of a fast path
    slow_repeats: int             # timed calls of a slow path
    tiny_gpt: bool                # the optimize milestone's --quick GPT, not the gpt milestone's
    prompt: int                   # prompt tokens of each stream
    new_tokens: int               # tokens generated per stream
    val_windows: int | None       # validation windows scored (None: every one)
    cifar_widths: tuple | None    # (conv1, conv2, conv3, conv4, hidden) of a small CIFAR CNN; None: the recipe's
    batch: int                    # training images per timed step
    cnn_widths: tuple | None      # the exported digit CNN's widths (None: the cnn milestone's)
    cnn_epochs: int
    cnn_stride: int               # every n-th training digit


FULL = Settings("full", 10, 5, False, 16, 48, None, None, cifar10.BATCH_SIZE, None, cnn.EPOCHS, 1)
QUICK = Settings("quick", 3, 3, True, 8, 16, 4, (4, 4, 8, 8, 16), 4, (4, 8, 16), 1, 8)


# --- one claim, one row of the table ---------------------------------------------------------------


@dataclass
class Claim:
    """One measured claim: what was compared, the value reached (with its 95% interval for a
    speed), the target (None: reported only), what it cost in quality and its twin check."""

    name: str
    baseline: str
    optimized: str
    value: float | None
    unit: str                     # "x", "tokens/s", "nats", "accuracy"
    target: float | None = None
    op: str = ">="                # value op target
    ci: tuple | None = None       # the value's 95% interval
    verdict: str = ""             # compare's "faster" / "slower" / "within noise" ("" when not a speed-up)
    strict: bool = False          # the interval's low end must reach the target too
    quality: str = ""             # quality before -> after
    checked: bool | None = None   # the twin check: True, False, or None (nothing to check)
    check: str = ""               # what the twin check compared
    note: str = ""                # why a value is missing, where a figure comes from

    @property
    def measured(self) -> bool:
        return self.value is not None and math.isfinite(self.value)

    @property
    def met(self) -> bool | None:
        """True or False against the target; None when reported only or not measured."""
        if self.checked is False:
            return False
        if self.target is None or not self.measured:
            return None
        reached = self.value >= self.target if self.op == ">=" else self.value <= self.target
        if self.verdict:
            reached = reached and self.verdict == "faster"
        if self.strict and self.ci is not None:
            reached = reached and self.ci[0] >= self.target
        return reached

    def value_text(self) -> str:
        if not self.unit:                               # a check alone, no figure
            return self.note or "-"
        if not self.measured:
            return f"not measured ({self.note})" if self.note else "not measured"
        number = _number(self.value, self.unit)
        interval = f" (CI {_number(self.ci[0], self.unit, bare=True)}-{_number(self.ci[1], self.unit)})" if self.ci else ""
        noise = " within noise" if self.verdict == "within noise" else ""
        return f"{number}{noise}{interval}"

    def target_text(self) -> str:
        return "-" if self.target is None else f"{self.op} {_number(self.target, self.unit)}"

    def verdict_text(self) -> str:
        if self.checked is False:
            return "FAILED: twin differs"
        met = self.met
        if met is None:
            return "reported" if self.target is None else "not measured"
        if met:
            return "met"
        if self.verdict and self.verdict != "faster":
            return "missed: not a speed-up"
        return "missed"

    def to_dict(self) -> dict:
        content = asdict(self)
        content["met"] = self.met
        content["ci"] = list(self.ci) if self.ci else None
        if not self.measured:
            content["value"] = None
        return content


def _number(value: float, unit: str, bare: bool = False) -> str:
    """The value in its unit ("2.3x", "75.1%", "0.0012 nats", "1,250 tokens/s"); `bare`: no unit."""
    if unit == "x":
        text, unit = optimize.times(value), "x"
        return text if bare else text + unit
    if unit == "accuracy":
        return f"{100 * value:.1f}" + ("" if bare else "%")
    text = f"{value:.4f}" if unit == "nats" else f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return text if bare else f"{text} {unit}"


def speed_claim(name: str, baseline: str, optimized: str, slow, fast, *, target: float | None, strict=False,
                checked=None, check="", quality="", scale: float = 1.0) -> Claim:
    """A speed-up from two module-19 Measurements (or arrays of seconds), by `compare`; `scale`
    multiplies the baseline's times (8 streams against 8 times one stream)."""
    from tinytorch.perf.benchmarking import compare

    slow = np.asarray(getattr(slow, "samples", slow), dtype=np.float64) * scale
    result = compare(slow, fast)
    return Claim(name, baseline, optimized, result.speedup, "x", target, ci=tuple(result.ci), verdict=result.verdict,
                 strict=strict, checked=checked, check=check, quality=quality)


@dataclass
class Record:
    """What the run measured: the table, the plot, the report."""

    track: str
    settings: str
    seed: int
    claims: list[Claim] = field(default_factory=list)
    environment: dict = field(default_factory=dict)
    identity: harness.Data = harness.NO_DATA
    counts: bool = False
    reason: str = ""
    models: dict = field(default_factory=dict)       # kind -> path written
    notes: list[str] = field(default_factory=list)
    started_at: str = ""
    finished_at: str = ""
    seconds: float = 0.0


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


# --- the tinytorch pieces --------------------------------------------------------------------------


def _tinytorch():
    """The modules every track needs (an ImportError names the missing module)."""
    from tinytorch.core.autograd import no_grad
    from tinytorch.core.layers import manual_seed
    from tinytorch.core.losses import CrossEntropyLoss
    from tinytorch.core.tensor import Tensor
    from tinytorch.core.training import load_checkpoint
    from tinytorch.perf import acceleration, benchmarking

    return types.SimpleNamespace(no_grad=no_grad, manual_seed=manual_seed,
                                 CrossEntropyLoss=CrossEntropyLoss, Tensor=Tensor, load_checkpoint=load_checkpoint,
                                 acceleration=acceleration, benchmarking=benchmarking)


def _capstone():
    """Module 20: export and the engines (the custom track does without)."""
    from tinytorch import capstone

    return capstone


def export_model(model, folder: str, kind: str, extra: dict, say) -> str:
    """Write `model` with module 20's export as folder/<kind>.safetensors and read it back:
    the loaded model must give the same outputs (checked by the caller's twin)."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{kind}.safetensors")
    _capstone().export(model, path, extra=extra)
    say(f"  written: {path} ({os.path.getsize(path):,} bytes; module 20's export, for `tito capstone serve`)")
    return path


# --- the language track ----------------------------------------------------------------------------


def gpt_recipe(args) -> argparse.Namespace:
    """The gpt milestone's own arguments: its recipe, its checkpoint folder."""
    return argparse.Namespace(seed=args.seed, steps=args.gpt_steps, batch_size=gpt.BATCH_SIZE, tokenizer="char",
                              vocab_size=gpt.BPE_VOCAB, eval_every=gpt.EVAL_EVERY, checkpoint=args.gpt_checkpoint,
                              restart=False, quiet=args.quiet, data=None)


def language_model(args, settings: Settings, corpus, tokenizer, train_ids, say):
    """(the model in eval mode, where it came from, whether it is the recipe's model)."""
    t = _tinytorch()
    if settings.tiny_gpt:                                          # --quick: a tiny GPT, a few steps
        tiny = optimize.QUICK
        t.manual_seed(args.seed)
        model = optimize.build_gpt(tokenizer.vocab_size, tiny)
        optimize.train_gpt(model, train_ids, tiny, args.seed, say, args.quiet)
        model.eval()
        return model, f"a tiny GPT {tiny.gpt[0]}x{tiny.gpt[1]} trained {tiny.gpt_steps} steps (--quick)", False
    recipe = gpt_recipe(args)
    folder = gpt.run_folder(args.gpt_checkpoint, gpt.run_settings(recipe, corpus))
    last = os.path.join(folder, "last.npz")
    done = os.path.exists(last) and gpt.saved_step(last) >= recipe.steps
    if not done:
        label = "its recipe" if recipe.steps == gpt.STEPS else f"a shorter run of {recipe.steps:,} steps (--gpt-steps)"
        say(f"  no finished gpt milestone checkpoint in {folder}: training {label} now (resumable)")
        gpt.train(recipe, corpus, say=say)
    model = gpt.build_model(tokenizer.vocab_size)
    t.load_checkpoint(last, model)
    model.eval()
    step = gpt.saved_step(last)
    recipe_model = step == gpt.STEPS and recipe.steps == gpt.STEPS
    return model, f"the gpt milestone's checkpoint {last} (step {step:,})", recipe_model


def engine_logits(model, inputs: np.ndarray, batch: int = 64, int8: bool = False) -> np.ndarray:
    """The logits (N, T, V) a LanguageEngine of `model` gives at every position of `inputs`
    (N, T), the way it serves: one token at a time through its KV cache (teacher-forced: the
    next token is the text's, not the engine's), `batch` windows in as many slots at once."""
    engine = _capstone().LanguageEngine(model, max_batch=batch, int8=int8)
    out = []
    for first in range(0, len(inputs), batch):
        ids = inputs[first:first + batch]                              # (B, T)
        slots = np.arange(len(ids))
        out.append(np.stack([engine.forward(ids[:, p:p + 1], np.full(len(ids), p), slots)
                             for p in range(ids.shape[1])], axis=1))   # (B, T, V)
    return np.concatenate(out)


def model_logits(model, inputs: np.ndarray, batch: int = 64) -> np.ndarray:
    t = _tinytorch()
    with t.no_grad():
        return np.concatenate([model(inputs[i:i + batch]).data for i in range(0, len(inputs), batch)])


def mean_loss(logits: np.ndarray, targets: np.ndarray) -> float:
    """The mean next-token cross-entropy (nats) of float logits, in float64."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return float(-np.take_along_axis(log_probs, targets[..., None], axis=-1).mean())


def language(args, settings: Settings, record: Record, say) -> None:
    t = _tinytorch()
    measure = t.benchmarking.measure
    corpus = gpt.load_corpus(None)
    tokenizer = gpt.make_tokenizer("char", corpus, 0)
    train_ids = np.array(tokenizer.encode(corpus.train), dtype=np.int64)
    val_ids = np.array(tokenizer.encode(corpus.val), dtype=np.int64)
    record.identity = corpus.identity
    say("\n1. the model")
    model, source, recipe_model = language_model(args, settings, corpus, tokenizer, train_ids, say)
    block = model.config.block_size
    inputs, targets = _windows(val_ids, block)
    if settings.val_windows is not None:
        inputs, targets = inputs[:settings.val_windows], targets[:settings.val_windows]
    reference = model_logits(model, inputs)
    model_loss = mean_loss(reference, targets)
    say(f"  {source}: validation loss {model_loss:.4f} nats/token on {targets.size:,} tokens "
        f"({len(inputs):,} windows of {block})")
    if args.quick:
        record.counts, record.reason = False, "--quick runs a tiny GPT and a few repeats: it checks the path"
    elif not recipe_model:
        record.counts, record.reason = False, (f"the model is not the gpt milestone's recipe ({gpt.STEPS:,} steps of "
                                               f"{gpt.BATCH_SIZE}): {source}")
    else:
        record.counts, record.reason = gpt.decide(corpus, gpt_recipe(args))

    say("\n2. module 20's LanguageEngine (float32) against module 14's generate")
    engine = _capstone().LanguageEngine(model, max_batch=STREAMS)
    new = settings.new_tokens
    starts = np.linspace(0, len(val_ids) - settings.prompt - 1, STREAMS).astype(int)
    prompts = [val_ids[s:s + settings.prompt].tolist() for s in starts]
    alone = [model.generate(np.array([p]), new, top_k=1, generator=np.random.default_rng(0))[0, len(p):].tolist()
             for p in prompts]                                    # module 14, one prompt at a time
    batched = engine.generate(prompts, new)
    single = engine.generate(prompts[:1], new)
    same_batched = batched == alone
    same_single = single == alone[:1]
    say(f"  greedy tokens, {STREAMS} prompts of {settings.prompt}: module 14 alone "
        f"{'=' if same_single else '!='} engine alone; module 14 alone {'=' if same_batched else '!='} engine "
        f"batched ({STREAMS} at once)")
    engine_loss = mean_loss(engine_logits(model, inputs), targets)
    say(f"  validation loss: engine {engine_loss:.4f}, model {model_loss:.4f} ({engine_loss - model_loss:+.5f} nats)")

    prompt = np.array([prompts[0]])
    say(f"  timing {settings.slow_repeats} module-14 generations and {settings.repeats} engine generations of "
        f"{new} tokens ...")
    slow = measure(lambda: model.generate(prompt, new, top_k=1, generator=np.random.default_rng(0)),
                   warmup=1, repeats=settings.slow_repeats)
    one = measure(lambda: engine.generate(prompts[:1], new), warmup=1, repeats=settings.repeats)
    many = measure(lambda: engine.generate(prompts, new), warmup=1, repeats=settings.repeats)
    say(f"  module 14 generate   {slow}\n  engine, 1 stream     {one}\n  engine, {STREAMS} streams    {many}")
    per_token = lambda seconds, streams=1: streams * new / seconds     # noqa: E731
    low, high = one.ci
    quality = f"val {model_loss:.3f} -> {engine_loss:.3f}"
    record.claims.append(Claim("one stream", f"generate (14): {per_token(slow.median):,.0f} tokens/s",
                               "LanguageEngine (20), float32", per_token(one.median), "tokens/s", TOKENS_PER_SECOND,
                               ci=(per_token(high), per_token(low)), quality=quality, checked=same_single,
                               check="greedy tokens identical"))
    record.claims.append(speed_claim("one stream vs module 14", "generate (14)", "LanguageEngine (20)", slow, one,
                                     target=None, quality=quality))
    claim = speed_claim(f"{STREAMS} streams vs one", f"engine, 1 stream x {STREAMS} in turn",
                        f"engine, {STREAMS} streams batched: {per_token(many.median, STREAMS):,.0f} tokens/s",
                        one, many, target=BATCHING, scale=STREAMS, checked=same_batched,
                        check=f"{STREAMS} streams' greedy tokens identical to module 14's")
    record.claims.append(claim)
    record.claims.append(Claim("validation loss change", "the training model (14)", "the engine's logits",
                               abs(engine_loss - model_loss), "nats", VAL_LOSS_DELTA, op="<=",
                               quality=quality, note="", check=f"{targets.size:,} validation tokens"))
    say("  the int8 engine (module 17's per-channel codes, dequantized in each product), for comparison ...")
    small = _capstone().LanguageEngine(model, int8=True, max_batch=STREAMS)
    int8_time = measure(lambda: small.generate(prompts[:1], new), warmup=1, repeats=settings.repeats)
    int8_loss = mean_loss(engine_logits(model, inputs, int8=True), targets)
    say(f"  int8 engine, 1 stream {int8_time}; validation loss {int8_loss:.4f}")
    record.claims.append(Claim("int8 engine (reported)", f"float32: {per_token(one.median):,.0f} tokens/s, "
                               f"{engine.nbytes:,} bytes", f"int8: {per_token(int8_time.median):,.0f} tokens/s, "
                               f"{small.nbytes:,} bytes", abs(int8_loss - model_loss), "nats", None,
                               quality=f"val {model_loss:.3f} -> {int8_loss:.3f}"))
    record.notes.append(f"the claims are the float32 engine's: its greedy tokens are module 14's and its logits the "
                        f"model's; the int8 engine keeps {engine.nbytes / small.nbytes:.1f}x fewer weight bytes, "
                        f"moves the validation loss by {int8_loss - model_loss:+.4f} nats and generates "
                        f"{per_token(int8_time.median):,.0f} tokens/s against {per_token(one.median):,.0f} (one "
                        "stream)")
    text = tokenizer.decode(batched[0])
    say(f"  the engine continues {tokenizer.decode(prompts[0])!r} with {text!r}")

    folder = models_folder(args)
    if folder:
        say("\n3. the model file")
        extra = {"task": "language", "tokenizer": _capstone().tokenizer_to_json(tokenizer),
                 "source": f"capstone milestone, language track: {source}; validation loss {model_loss:.4f} "
                           f"nats/char on {targets.size:,} characters of the {corpus.identity.name}"}
        path = export_model(model, folder, "language", extra, say)
        loaded, _ = _capstone().load(path)
        same = np.array_equal(model_logits(loaded, inputs[:2]), reference[:2])
        record.claims.append(Claim("exported model", "the trained model", "loaded from the file", None, "", None,
                                   checked=same, check="logits identical after the round trip",
                                   note=os.path.basename(path)))
        record.models["language"] = os.path.abspath(path)


def _windows(ids: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive windows of `block` over the validation ids, as the gpt milestone scores them:
    (inputs, targets) of (n, block), every id after the first predicted once."""
    count = (len(ids) - 1) // block
    windows = ids[np.arange(count)[:, None] * block + np.arange(block + 1)]
    return windows[:, :-1], windows[:, 1:]


# --- the vision track ------------------------------------------------------------------------------


def cifar_model(settings: Settings):
    """The cifar10 milestone's CNN, or (--quick) the same layers with fewer channels."""
    if settings.cifar_widths is None:
        return cifar10.build_model()
    from tinytorch.core.activations import ReLU
    from tinytorch.core.layers import Linear, Sequential
    from tinytorch.core.spatial import BatchNorm2d, Conv2d, Flatten, MaxPool2d

    a, b, c, d, hidden = settings.cifar_widths
    return Sequential(Conv2d(3, a, 3, padding=1), BatchNorm2d(a), ReLU(),
                      Conv2d(a, b, 3, padding=1), BatchNorm2d(b), ReLU(), MaxPool2d(2),
                      Conv2d(b, c, 3, padding=1), BatchNorm2d(c), ReLU(),
                      Conv2d(c, d, 3, padding=1), BatchNorm2d(d), ReLU(), MaxPool2d(2),
                      Flatten(), Linear(d * 8 * 8, hidden), ReLU(), Linear(hidden, cifar10.CLASSES))


def unaccelerated(model):
    """The model as module 09 computes it (module 15's accelerate undone): the cifar10
    milestone's configuration before module 15."""
    for layer in _layers(model):
        layer.__dict__.pop("forward", None)
    return model


def _layers(model):
    stack = [model]
    while stack:
        layer = stack.pop()
        stack.extend(layer.children())
        yield layer


def training_twins(model, x: np.ndarray, y: np.ndarray, settings: Settings, say):
    """Time training steps of the module-09 twin and the module-15 twin of `model` on the same
    batches, from the same weights: (slow, fast Measurements, whether the twins agree). The twin
    check is one step of each on the first batch: the same loss, and gradients as close to those
    of module 09 in float64 as module 09's own in float32 (at most twice its error, or GRADIENTS:
    float32 sums over 65,536 values per channel differ with their order by more than 1e-4)."""
    t = _tinytorch()
    baseline = unaccelerated(copy.deepcopy(model))
    fast = t.acceleration.accelerate(copy.deepcopy(model))

    def stepper(net):
        optimizer, _ = cifar10.make_optimizer(net, 1)
        loss_fn = t.CrossEntropyLoss()
        count = [0]

        def step():
            first = (count[0] * settings.batch) % (len(x) - settings.batch + 1)
            count[0] += 1
            inputs = t.Tensor(x[first:first + settings.batch])
            targets = t.Tensor(y[first:first + settings.batch], dtype=np.int64)
            loss = loss_fn(net(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss.item()
        return step

    def gradients(net):
        return [np.array(getattr(p.grad, "data", p.grad)) for p in net.parameters()]

    exact = unaccelerated(copy.deepcopy(model))
    for parameter in exact.parameters():
        parameter.data = parameter.data.astype(np.float64)
    inputs = t.Tensor(x[:settings.batch], dtype=np.float64)
    t.CrossEntropyLoss()(exact(inputs), t.Tensor(y[:settings.batch], dtype=np.int64)).backward()
    loss_09, loss_15 = stepper(baseline)(), stepper(fast)()         # also the warm-up
    grads_64, grads_09, grads_15 = gradients(exact), gradients(baseline), gradients(fast)
    scale = max(max(float(np.abs(g).max()) for g in grads_64), 1e-30)   # the largest gradient value of all
    error_09, error_15 = (max(float(np.abs(a - b).max()) for a, b in zip(grads_64, grads)) / scale
                          for grads in (grads_09, grads_15))
    agree = bool(np.isclose(loss_09, loss_15, rtol=1e-5) and error_15 <= max(GRADIENTS, 2 * error_09))
    say(f"  one step of each from the same weights on the same batch: losses {loss_09:.6f} and {loss_15:.6f}; "
        f"gradients against module 09's in float64: module 09 {error_09:.1e}, module 15 {error_15:.1e} of the "
        f"largest gradient value ({'as accurate' if agree else 'DIFFER'})")
    slow_time = t.benchmarking.measure(stepper(baseline), warmup=0, repeats=settings.slow_repeats)
    fast_time = t.benchmarking.measure(stepper(fast), warmup=0, repeats=settings.slow_repeats)
    return slow_time, fast_time, agree


def vision(args, settings: Settings, record: Record, say) -> None:
    t = _tinytorch()
    measure = t.benchmarking.measure
    say("\n1. training: the cifar10 recipe, module 09 against module 15 (of modules 15-18, the one "
        "that leaves the recipe as it is)")
    try:
        data = cifar10.load_data(args.data, None)
        x, y, where = data.x_train[:settings.batch * 16], data.y_train[:settings.batch * 16], data.description
        say(f"  timing on {where}")
    except harness.MilestoneError as error:
        data = None
        generator = np.random.default_rng(args.seed)
        x = generator.standard_normal((settings.batch * 4, 3, 32, 32)).astype(np.float32)
        y = generator.integers(0, cifar10.CLASSES, len(x))
        where = "random images of CIFAR-10's shape (a step's time does not depend on the pixels)"
        record.notes.append(f"no CIFAR-10: {error}")
        say(f"  no CIFAR-10 here (see the note below): timing on {where}")
    t.manual_seed(args.seed)
    model = cifar_model(settings)
    slow, fast, agree = training_twins(model, x, y, settings, say)
    say(f"  module 09 (the cifar10 milestone's kernels)  {slow}\n  module 15 (accelerate)                     {fast}")
    speed = speed_claim("training images/s", f"module 09: {settings.batch / slow.median:,.0f} images/s",
                        f"module 15: {settings.batch / fast.median:,.0f} images/s", slow, fast,
                        target=TRAINING_SPEEDUP, checked=agree, check="one step's loss and gradients")
    record.claims.append(speed)
    held_out = 50_000 - int(round(50_000 * cifar10.VALIDATION))
    epochs, cited = EXPECTED_EPOCHS, "README.md, the cifar10 milestone's expectation (not a measurement here)"
    result = None
    if data is not None and data.identity.official and data.full and not args.quick:
        say("\n   the real run: the cifar10 milestone's recipe with the fastest kernels (its checkpoint folder)")
        recipe = argparse.Namespace(seed=args.seed, epochs=cifar10.EPOCHS, batch_size=cifar10.BATCH_SIZE,
                                    checkpoint=args.cifar_checkpoint, restart=False, limit=None, quiet=args.quiet)
        result = cifar10.train(recipe, data, say=say)
        reached = [r["epoch"] for r in result.history if r.get("val_accuracy", 0) >= ACCURACY]
        if reached:
            epochs, cited = reached[0], "this run's validation accuracy (the first epoch at 75%)"
    estimates = {}
    for label, seconds in (("module 09", slow.median), ("module 15", fast.median)):
        estimates[label] = harness.duration(epochs * held_out / (settings.batch / seconds))
        say(f"  time to 75% with {label}: about {estimates[label]} ({epochs} epochs of {held_out:,} images "
            f"at {settings.batch / seconds:,.0f} images/s; epochs: {cited})")
    record.claims.append(Claim("time to 75% (estimate)", f"module 09: {estimates['module 09']}",
                               f"module 15: {estimates['module 15']}", None, "", None,
                               note=f"{epochs} epochs of {held_out:,} images"))
    record.notes.append(f"epochs to 75%: {epochs} ({cited}); training timed on {where}")
    if result is not None:
        record.identity = result.identity
        record.counts, record.reason = cifar10.decide(result.identity, None)
        record.claims.append(Claim("test accuracy", "-", "the cifar10 recipe, fastest kernels", result.test_accuracy,
                                   "accuracy", ACCURACY, note=f"{result.test_size:,} test images"))
    else:
        if args.quick:
            why = "--quick times a small CNN and trains nothing"
        elif data is None:
            why = "CIFAR-10 is not here: the speed is measured, the 75% is not"
        else:
            why = cifar10.decide(data.identity, None)[1] + ": the speed is measured, the 75% is not"
        record.counts, record.reason = False, why
        record.claims.append(Claim("test accuracy", "-", "the cifar10 recipe", None, "accuracy", ACCURACY,
                                   note="needs the official CIFAR-10" if not args.quick else "--quick"))

    say("\n2. inference: module 20's VisionEngine against the model's forward")
    images = x[:settings.batch]
    model.eval()
    fast_model = t.acceleration.accelerate(copy.deepcopy(model))
    engine = _capstone().VisionEngine(model)

    def forward():
        with t.no_grad():
            return _softmax(fast_model(t.Tensor(images)).data)

    same = bool(np.allclose(engine.predict_proba(images), forward(), atol=PROBABILITIES, rtol=0))
    slow = measure(forward, warmup=1, repeats=settings.repeats)
    quick_engine = measure(lambda: engine.predict_proba(images), warmup=1, repeats=settings.repeats)
    say(f"  the model's forward (eval, module 15 kernels)  {slow}\n  VisionEngine (BatchNorm folded)               "
        f"{quick_engine}")
    record.claims.append(speed_claim("inference images/s", f"forward: {len(images) / slow.median:,.0f} images/s",
                                     f"VisionEngine: {len(images) / quick_engine.median:,.0f} images/s", slow,
                                     quick_engine, target=None, checked=same,
                                     check=f"probabilities within {PROBABILITIES:g}"))

    folder = models_folder(args)
    if folder:
        say("\n3. the digit classifier for `tito capstone serve`: the cnn milestone's CNN")
        record.claims.append(digit_model(args, settings, folder, record, say))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def digit_model(args, settings: Settings, folder: str, record: Record, say) -> Claim:
    """The cnn milestone's CNN trained by its recipe on the shipped digits (the optimize
    milestone's checkpoint when there is one), exported; its test accuracy by the engine read
    back from the file, checked against the model's on every test digit."""
    t = _tinytorch()
    data = digits.load(None, flatten=False)
    identity = digits.identity(data)
    x_train = data.x_train[::settings.cnn_stride].reshape(-1, 1, 28, 28)
    y_train = data.y_train[::settings.cnn_stride]
    x_test = data.x_test.reshape(-1, 1, 28, 28)
    t.manual_seed(args.seed)
    cnn_settings = optimize.FULL if settings.cnn_widths is None else optimize.QUICK
    model = optimize.build_cnn(cnn_settings)
    recipe = {"recipe": optimize.RECIPE, "seed": args.seed, "epochs": settings.cnn_epochs,
              "widths": settings.cnn_widths, "stride": settings.cnn_stride, "data": identity.checksum}
    path = None if args.quick else optimize.checkpoint_path(args.cnn_checkpoint, "cnn", recipe)
    fast_model, _ = harness.fast_kernels(model)
    optimize.trained(model, path, False, lambda: optimize.fit(fast_model, x_train, y_train, epochs=settings.cnn_epochs,
                                                               lr=cnn.LR, seed=args.seed, progress=not args.quiet),
                     say, f"  the cnn milestone's CNN ({settings.cnn_epochs} epochs)")
    model.eval()
    predicted = optimize.logits_of(model, x_test).argmax(1)
    accuracy = float((predicted == data.y_test).mean())
    extra = {"task": "vision", "classes": json.dumps([str(d) for d in range(10)]),
             "input": json.dumps({"shape": [1, 28, 28], "scale": "0..1, white digit on black as MNIST"}),
             "source": f"capstone milestone, vision track: the cnn milestone's CNN, {settings.cnn_epochs} epochs on "
                       f"{len(x_train):,} digits; test accuracy {100 * accuracy:.1f}% on the {len(x_test):,} "
                       f"test digits of {identity.name}"}
    written = export_model(model, folder, "vision", extra, say)
    loaded, _ = _capstone().load(written)
    engine_predicted = _capstone().VisionEngine(loaded).predict_proba(x_test).argmax(1)
    same = bool(np.array_equal(engine_predicted, predicted))
    say(f"  test accuracy {100 * accuracy:.1f}%; the engine read from the file predicts "
        f"{'the same' if same else 'DIFFERENT'} digits on all {len(x_test):,}")
    record.models["vision"] = os.path.abspath(written)
    return Claim("digit classifier", "the cnn milestone's CNN", "VisionEngine from the file", accuracy, "accuracy",
                 None, checked=same, check=f"the same digit on all {len(x_test):,} test images",
                 note=identity.name)


# --- the custom track ------------------------------------------------------------------------------


def load_custom(path: str | None):
    """The student's file as a module, checked for its four names; MilestoneError (one line) else."""
    hint = f"the template: {EXAMPLE}"
    if not path:
        raise harness.MilestoneError(f"--track custom needs --custom FILE, the file of your workload ({hint})")
    if not os.path.isfile(path):
        raise harness.MilestoneError(f"--custom {path}: no such file ({hint})")
    spec = importlib.util.spec_from_file_location("capstone_custom", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        raise harness.MilestoneError(f"--custom {path}: a syntax error at line {error.lineno}: {error.msg} "
                                     f"({hint})") from None
    except Exception as error:
        raise harness.MilestoneError(f"--custom {path}: importing it raised {type(error).__name__}: {error} "
                                     f"({hint})") from None
    missing = [name for name in ("baseline", "optimized", "quality") if not callable(getattr(module, name, None))]
    if missing:
        raise harness.MilestoneError(f"--custom {path}: it defines no function {', '.join(missing)} ({hint})")
    tolerance = getattr(module, "QUALITY_TOLERANCE", None)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not tolerance >= 0:
        raise harness.MilestoneError(f"--custom {path}: QUALITY_TOLERANCE must be a number >= 0, got {tolerance!r} "
                                     f"({hint})")
    repeats = getattr(module, "REPEATS", 10)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 3:
        raise harness.MilestoneError(f"--custom {path}: REPEATS must be a whole number >= 3, got {repeats!r} ({hint})")
    return module


def _call(path: str, what: str, fn, *args, **kwargs):
    """fn(*args, **kwargs), a failure named in one line."""
    try:
        return fn(*args, **kwargs)
    except Exception as error:
        raise harness.MilestoneError(f"--custom {path}: {what} raised {type(error).__name__}: {error}") from None


def custom(args, settings: Settings, record: Record, say) -> None:
    t = _tinytorch()
    module = load_custom(args.custom)
    path = args.custom
    with open(path, "rb") as stream:
        digest = hashlib.sha256(stream.read()).hexdigest()
    record.identity = harness.Data(name=f"the custom workload in {os.path.basename(path)}",
                                   checksum=f"sha256:{digest}", official=True, examples=1)
    description = str(getattr(module, "DESCRIPTION", "") or os.path.basename(path))
    say(f"\n1. {description}")
    before = _call(path, "quality(baseline)", module.quality, module.baseline)
    after = _call(path, "quality(optimized)", module.quality, module.optimized)
    for name, value in (("quality(baseline)", before), ("quality(optimized)", after)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not math.isfinite(value):
            raise harness.MilestoneError(f"--custom {path}: {name} returned {value!r}, not a finite number")
    kept = bool(after >= before - module.QUALITY_TOLERANCE)
    say(f"  quality: baseline {before:.6g}, optimized {after:.6g} (may lose at most {module.QUALITY_TOLERANCE:g}): "
        f"{'kept' if kept else 'LOST'}")
    repeats = min(module.REPEATS, settings.repeats) if args.quick else module.REPEATS
    slow = _call(path, "baseline()", t.benchmarking.measure, module.baseline, warmup=1, repeats=repeats)
    fast = _call(path, "optimized()", t.benchmarking.measure, module.optimized, warmup=1, repeats=repeats)
    say(f"  baseline   {slow}\n  optimized  {fast}")
    record.notes.append(f"the workload: {description}")
    record.claims.append(speed_claim("custom workload", "baseline()", "optimized()", slow, fast, target=CUSTOM_SPEEDUP,
                                     strict=True, checked=kept, check=f"quality kept (tolerance "
                                     f"{module.QUALITY_TOLERANCE:g})", quality=f"{before:.4g} -> {after:.4g}"))
    if args.quick:
        record.counts, record.reason = False, "--quick times each side a few times: it checks the path"
    else:
        record.counts, record.reason = True, f"the workload in {path} (sha256 {digest[:12]}), measured as it is"


# --- the run, the verdict, the report --------------------------------------------------------------


def models_folder(args) -> str | None:
    """Where the model files go: --models, or the default folder (not for --quick)."""
    if args.models:
        return args.models
    return None if args.quick else MODELS


def run(args, settings: Settings, say) -> Record:
    t = _tinytorch()
    began = time.perf_counter()
    record = Record(track=args.track, settings=settings.name, seed=args.seed, started_at=_now(),
                    environment=t.benchmarking.environment())
    say(f"settings: {settings.name}; BLAS threads {os.environ.get('OPENBLAS_NUM_THREADS')}; load average "
        f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    {"language": language, "vision": vision, "custom": custom}[args.track](args, settings, record, say)
    record.finished_at = _now()
    record.seconds = time.perf_counter() - began
    return record


def verdict(record: Record) -> harness.Verdict:
    """PASSED only when every targeted claim is met and every twin check holds, on a run that
    counts; the metric is the track's first claim."""
    spec = SPECS[record.track]
    targeted = [claim for claim in record.claims if claim.target is not None]
    failed = [claim for claim in record.claims if claim.checked is False]
    reached = bool(targeted) and all(claim.met for claim in targeted) and not failed
    first = record.claims[0] if record.claims else None
    parts = [f"{claim.name} {claim.value_text()} ({claim.verdict_text()})" for claim in targeted]
    checks = sum(claim.checked is True for claim in record.claims)
    text = "; ".join(parts) + (f"; {checks} twin checks passed" if not failed else
                               "; twin check FAILED: " + ", ".join(f"{c.name}: {c.check}" for c in failed))
    works = not failed and all(claim.measured or claim.note for claim in record.claims)
    return harness.judge(spec, value=first.value if first and first.measured else None, data=record.identity,
                         counts=record.counts, reason=record.reason, reached=reached, works=works, text=text)


def table(record: Record) -> list[str]:
    """The one table: a row per claim."""
    head = ("claim", "baseline", "optimized", "measured (95% CI)", "target", "quality before -> after",
            "twin checked", "verdict")
    cells = [head] + [(c.name, c.baseline, c.optimized, c.value_text(), c.target_text(), c.quality or "-",
                       {True: f"yes ({c.check})", False: f"FAILED ({c.check})", None: "-"}[c.checked],
                       c.verdict_text()) for c in record.claims]
    widths = [max(len(line[i]) for line in cells) for i in range(len(head))]
    lines = ["  " + "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells]
    lines.insert(1, "  " + "  ".join("-" * width for width in widths))
    return lines


def plot(record: Record, path: str) -> str | None:
    """The speed-ups with their intervals (log scale), each with its target, as a PNG; None
    without matplotlib or without a speed-up."""
    plt = harness._pyplot()
    speeds = [claim for claim in record.claims if claim.unit == "x" and claim.measured]
    if plt is None or not speeds:
        return None
    figure, axes = plt.subplots(figsize=(2.2 + 2.0 * len(speeds), 4.5))
    values = [claim.value for claim in speeds]
    errors = np.array([[c.value - c.ci[0] for c in speeds], [c.ci[1] - c.value for c in speeds]])
    colors = ["tab:red" if c.met is False else "tab:green" if c.verdict == "faster" else "tab:grey" for c in speeds]
    axes.bar(range(len(speeds)), values, yerr=np.maximum(errors, 0), color=colors, capsize=4)
    for index, claim in enumerate(speeds):
        if claim.target is not None:
            axes.hlines(claim.target, index - 0.4, index + 0.4, colors="red", linestyles="--", linewidth=1)
    axes.set_xticks(range(len(speeds)), [f"{c.name}\n{c.baseline.split(':')[0]}\n-> {c.optimized.split(':')[0]}"
                                         for c in speeds], fontsize=7)
    axes.set_yscale("log")
    axes.yaxis.set_major_formatter(plt.FuncFormatter(lambda value, _: f"{value:g}x"))
    axes.yaxis.set_minor_formatter(plt.FuncFormatter(lambda value, _: f"{value:g}x"))
    axes.axhline(1, color="black", linewidth=0.6)
    axes.set_ylabel("speed-up (median, 95% CI; red dashes: target)")
    axes.set_title(f"capstone, {record.track} track ({record.settings} settings)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return os.path.abspath(path)


def packages() -> dict:
    """The versions a report's figures depend on."""
    import tinytorch

    return {"python": platform.python_version(), "numpy": np.__version__,
            "tinytorch": getattr(tinytorch, "__version__", "?"),
            "tinytorch_path": os.path.dirname(os.path.abspath(tinytorch.__file__))}


def entry(record: Record, decided: harness.Verdict) -> dict:
    """The track's entry of the JSON report."""
    return {"track": record.track, "outcome": decided.outcome, "line": decided.line, "reason": decided.reason,
            "settings": record.settings, "seed": record.seed,
            "claims": [claim.to_dict() for claim in record.claims],
            "claims_met": sum(claim.met is True for claim in record.claims if claim.target is not None),
            "claims_targeted": sum(claim.target is not None for claim in record.claims),
            "data": asdict(record.identity), "models": record.models, "notes": record.notes,
            "environment": record.environment, "packages": packages(),
            "started_at": record.started_at, "finished_at": record.finished_at, "seconds": round(record.seconds, 1)}


def read_report(path: str) -> dict:
    """The report at `path` ({} when there is none); a damaged one is a one-line error."""
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as stream:
            report = json.load(stream)
    except (OSError, ValueError) as error:
        raise harness.MilestoneError(f"the report {path} cannot be read ({error}); move it away or pass "
                                     "--report PATH") from None
    if not isinstance(report, dict) or report.get("schema") != REPORT_SCHEMA or not isinstance(report.get("tracks"), dict):
        raise harness.MilestoneError(f"{path} is not a capstone report; move it away or pass --report PATH")
    return report


def write_report(path: str, record: Record, decided: harness.Verdict, say) -> None:
    """Put the track's entry into the report at `path`, keeping the other tracks'; a path check
    never replaces a real run's entry."""
    report = read_report(path)
    tracks = report.get("tracks", {})
    old = tracks.get(record.track) or {}
    if decided.outcome == harness.PATH_CHECK and old.get("outcome") in (harness.ACHIEVED, harness.MISSED):
        say(f"\nreport: {path} keeps the {record.track} track's real run of {old.get('finished_at')} "
            "(a path check never replaces it)")
        return
    tracks[record.track] = entry(record, decided)
    harness.write_json(path, {"schema": REPORT_SCHEMA, "version": REPORT_VERSION, "written_at": _now(),
                              "tracks": dict(sorted(tracks.items()))})
    say(f"\nreport: the {record.track} track written into {os.path.abspath(path)}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="capstone.py", description="Milestone capstone: one integrated, "
                                     "optimized system, in the vision, language or custom track.")
    parser.add_argument("--track", help="which track: " + ", ".join(TRACKS))
    parser.add_argument("--custom", metavar="FILE", help=f"--track custom: your workload (template: {EXAMPLE})")
    parser.add_argument("--quick", action="store_true", help="tiny models and a few repeats: a path check in "
                        "well under a minute, never recorded")
    parser.add_argument("--models", metavar="DIR", help=f"where the model files go (default {MODELS}/ in the "
                        "current folder; --quick writes them only where this names)")
    parser.add_argument("--report", metavar="PATH", help=f"the JSON report (default {REPORT} in the current "
                        "folder; --quick writes it only where this names)")
    parser.add_argument("--data", metavar="DIR", help="--track vision: the folder holding CIFAR-10 (as for the "
                        "cifar10 milestone)")
    parser.add_argument("--gpt-checkpoint", metavar="DIR", default=gpt.CHECKPOINTS, help="--track language: where "
                        f"the gpt milestone keeps its checkpoints (default {gpt.CHECKPOINTS}/); a finished run is "
                        "read from there, else its recipe is trained there")
    parser.add_argument("--gpt-steps", type=int, default=gpt.STEPS, help=f"--track language: train the gpt recipe "
                        f"for this many steps when no finished checkpoint exists (default {gpt.STEPS}; fewer is a "
                        "path check)")
    parser.add_argument("--cifar-checkpoint", metavar="DIR", default=cifar10.CHECKPOINTS, help="--track vision: "
                        f"the cifar10 milestone's checkpoint folder (default {cifar10.CHECKPOINTS}/)")
    parser.add_argument("--cnn-checkpoint", metavar="DIR", default=optimize.CHECKPOINTS, help="--track vision: "
                        f"where the digit CNN is kept (default {optimize.CHECKPOINTS}/, shared with the optimize "
                        "milestone)")
    harness.add_options(parser, seed="the models' training and the timed batches", plot="capstone_<track>.png",
                        shows="the speed-ups with their intervals")
    args = parser.parse_args(argv)
    if args.track not in TRACKS:
        parser.error(f"--track must be one of {', '.join(TRACKS)}" + (f", not {args.track!r}" if args.track else "")
                     + f" (e.g. --track language; the custom track also needs --custom FILE, template {EXAMPLE})")
    if args.gpt_steps < 1:
        parser.error(f"--gpt-steps must be at least 1, got {args.gpt_steps}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the chosen track: 0 when it is achieved (or a path check runs through), 1 otherwise."""
    args = parse_args(argv)
    say = harness.sayer(args.quiet)
    settings = QUICK if args.quick else FULL
    spec = SPECS[args.track]
    report_path = args.report or (None if args.quick else REPORT)
    say(EXPLANATION.format(track=args.track))
    try:
        if report_path:
            read_report(report_path)                 # a damaged report stops the run before it starts
        record = run(args, settings, say)
    except BaseException as error:                   # the harness re-raises what it does not handle
        return harness.stopped(spec, error, args.result,
                               interrupted="the trained models are kept in their checkpoints")
    say(f"\nthe {args.track} track, measured ({harness.duration(record.seconds)}; one BLAS thread; a speed-up "
        "counts only when its 95% interval lies above 1):")
    for line in table(record):
        say(line)
    for note in record.notes:
        say(f"  note: {note}")
    decided = verdict(record)
    if args.history_json:
        harness.write_json(args.history_json, entry(record, decided))
    path = args.plot or f"capstone_{args.track}.png"
    harness.say_plot(plot(record, path), path, "the speed-ups with their intervals", say)
    if report_path:
        write_report(report_path, record, decided, say)
    return harness.finish(decided, args.result)


if __name__ == "__main__":
    harness.run_script(main)
