"""Milestone optimize (after module 19): the models of the earlier milestones, made fast and small.

One run takes the cnn milestone's CNN (trained on the shipped digits with the cnn milestone's
recipe, or read from this milestone's checkpoint) and a character GPT, applies modules 15-18 and
measures every change with module 19's harness (warm-up, repeats, the median and its bootstrap
confidence interval, `compare`'s verdict):

    convolution  module 09's definition loops (conv2d_naive), module 09's kernel offsets and
                 module 15's im2col (accelerate) on the same batch of test digits; the logits of
                 the three checked equal (1e-4), the test accuracy of the fast path checked equal
                 to the model's on every test digit                         target: >= 10x
    generation   200 new tokens, greedy: module 14's GPT.generate against module 16's
                 generate_cached; the tokens checked identical              target: >= 10x
    size         module 18's prune_channels (half of the channels, by L1 norm) with a short
                 fine-tune, then module 17's int8 per-channel quantize_model; bytes by
                 model_nbytes, the quantized weights checked within half a step of their float
                 twins                             target: >= 4x smaller, <= 1 point of accuracy lost

The GPT: module 14's GPT with learned absolute positions can only reuse its cache while the text
fits in its context. The gpt milestone's model reads 64 characters, so past 64 a cache must be
refilled for every token and 200 new tokens cannot be 10x faster there. This milestone therefore
trains (briefly, once, then from its checkpoint) a GPT whose context holds the prompt and the 200
new tokens: 4 layers, width 128, 4 heads, 256 positions. Its text quality is not the claim; its
speed and its identical tokens are. When a finished checkpoint of the gpt milestone exists, its
model's figure is printed beside it.

    python milestones/optimize.py [--quick] [--data DIR] [--checkpoint DIR] [--restart]
                                  [--gpt-checkpoint DIR] [--seed N] [--plot PATH] [--quiet]
                                  [--history-json PATH] [--result PATH]

What counts as the milestone: the full settings on the shipped digits (or the official MNIST).
A speed-up counts only when its 95% interval lies above 1 (module 19's "faster") and its median
reaches the target; every optimized output must match its unoptimized twin, checked in the same
run. --quick (tiny models, a few repeats) and other data are path checks, never recorded.

The script imports only `tinytorch` and NumPy besides the milestones' own modules.
"""

from __future__ import annotations

import os

# One BLAS thread, as the other milestones: speed-ups are measured on one core.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import copy  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402

import numpy as np  # noqa: E402

if __package__:                         # imported as milestones.optimize (tests)
    from . import cnn, digits, gpt, harness
else:                                   # run as a script: this folder is on sys.path
    import cnn
    import digits
    import gpt
    import harness

NAME = "optimize"
SPEED_TARGET = 10.0       # times faster: convolution and generation
SIZE_TARGET = 4.0         # times smaller
ACCURACY_LOSS = 0.01      # at most 1 point of test accuracy lost
TOLERANCE = 1e-4          # logits of an optimized path against its twin (float32)
FINETUNE_LR = 0.01        # SGD after pruning (module 18's benchmark recipe)
CHECKPOINTS = "optimize-checkpoints"
RECIPE = 1                # part of each checkpoint's name: bump it when a recipe changes
SPEC = harness.Spec(NAME, after="19", claim="digit convolution ≥ 10× faster than module 09's definition "
                    "loops and 200-token greedy generation ≥ 10× faster than module 14's generate, each with "
                    "its 95% interval above 1, the cnn ≥ 4× smaller with ≤ 1 point of test accuracy lost, "
                    "every optimized output checked against its unoptimized twin in the same run",
                    target=harness.Target("speedup", ">=", SPEED_TARGET))


@dataclass(frozen=True)
class Settings:
    """How big the models are and how often each path is timed."""

    name: str
    cnn_widths: tuple | None      # (conv1, conv2, hidden); None: the cnn milestone's network
    cnn_epochs: int
    train_stride: int             # every n-th training digit
    batch: int                    # test digits per timed forward pass
    gpt: tuple                    # (n_layer, n_embd, n_head, block_size)
    gpt_steps: int
    gpt_batch: int
    new_tokens: int
    prune: float                  # share of each layer's channels removed
    finetune_epochs: int
    repeats: int                  # timed calls of a fast path
    slow_repeats: int             # timed calls of a slow path (definition loops, uncached generate)


FULL = Settings("full", None, cnn.EPOCHS, 1, 8, (4, 128, 4, 256), 150, 8, 200, 0.5, 2, 20, 5)
QUICK = Settings("quick", (4, 8, 16), 3, 4, 2, (1, 32, 2, 32), 5, 4, 20, 0.5, 1, 3, 3)

EXPLANATION = """\
MILESTONE optimize: the models of the earlier milestones, made fast and small
Modules 15-18 change how the models compute and store; module 19 says whether each change is
real: every path is timed after a warm-up, repeatedly, and a speed-up counts only when its 95%
confidence interval lies above 1. Every optimized output is checked against its unoptimized twin.
Targets: convolution and generation >= {speed:.0f}x faster, the cnn >= {size:.0f}x smaller with <= 1 point lost."""


@dataclass
class Row:
    """One line of the table: what changed, the two sides, the ratio and its interval."""

    what: str
    baseline: str
    optimized: str
    kind: str                     # "speed" or "size"
    ratio: float
    ci: tuple | None = None       # the speed-up's 95% interval (speed rows)
    verdict: str = ""             # compare's "faster" / "slower" / "within noise"; "" for sizes
    quality: str = ""
    checked: bool | None = None   # the twin check: True, False, or None (nothing to check)
    check: str = ""               # what the twin check compared
    target: float | None = None   # the milestone's target for this row, or None (reported only)
    accuracy_lost: float = 0.0    # size rows: points (as a fraction) of test accuracy lost

    @property
    def counted(self) -> bool:
        """A speed-up is a speed-up only when its interval lies above 1."""
        return self.kind == "size" or self.verdict == "faster"

    @property
    def met(self) -> bool:
        if self.checked is False or not math.isfinite(self.ratio):
            return False
        if self.target is None:
            return True
        if self.kind == "speed":
            return self.counted and self.ratio >= self.target
        return self.ratio >= self.target and self.accuracy_lost <= ACCURACY_LOSS + 1e-9

    def ratio_text(self) -> str:
        if self.kind == "size":
            return f"{self.ratio:.2f}x smaller"
        low, high = self.ci
        interval = f"(CI {times(low)}-{times(high)}x)"
        if self.verdict == "within noise":
            return f"within noise {interval}"
        return f"{times(self.ratio)}x {'faster' if self.verdict == 'faster' else 'slower'} {interval}"

    def verdict_text(self) -> str:
        if self.checked is False:
            return "FAILED: twin differs"
        if self.target is None:
            return "reported"
        if self.met:
            return f"met (>= {self.target:g}x)"
        if self.kind == "speed" and not self.counted:
            return "missed: not a speed-up"
        return f"missed (< {self.target:g}x)" if self.ratio < self.target else "missed: accuracy lost"


def times(ratio: float) -> str:
    """2,604 / 16.3 / 0.789: three significant digits, whole numbers from 100 up."""
    return f"{ratio:,.0f}" if ratio >= 100 else f"{ratio:.3g}"


def speed_row(what: str, baseline: str, optimized: str, slow, fast, *, target: float | None = None,
              checked: bool | None = None, check: str = "", quality: str = "") -> Row:
    """A speed row from two module-19 Measurements (or arrays of seconds): `compare` gives the
    speed-up, its interval and whether it is a speed-up at all."""
    from tinytorch.perf.benchmarking import compare

    result = compare(slow, fast)
    return Row(what, baseline, optimized, "speed", result.speedup, tuple(result.ci), result.verdict,
               quality=quality, checked=checked, check=check, target=target)


@dataclass
class Record:
    """What the run measured, for the table, the plot and --history-json."""

    settings: str
    seed: int
    rows: list[Row] = field(default_factory=list)
    environment: dict = field(default_factory=dict)
    data: str = ""
    identity: harness.Data = harness.NO_DATA
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


# --- the tinytorch pieces -----------------------------------------------------------------------


def _tinytorch():
    """The modules this milestone needs (an ImportError names the missing module)."""
    from tinytorch.core.activations import ReLU
    from tinytorch.core.autograd import no_grad
    from tinytorch.core.layers import Linear, Sequential, manual_seed
    from tinytorch.core.losses import CrossEntropyLoss
    from tinytorch.core.optimizers import SGD, CosineAnnealingLR
    from tinytorch.core.spatial import Conv2d, Flatten, MaxPool2d
    from tinytorch.core.training import Trainer, load_checkpoint, save_checkpoint
    from tinytorch.perf import acceleration, benchmarking, caching, compression, precision

    return types.SimpleNamespace(
        ReLU=ReLU, no_grad=no_grad, Linear=Linear, Sequential=Sequential, manual_seed=manual_seed,
        CrossEntropyLoss=CrossEntropyLoss, SGD=SGD, CosineAnnealingLR=CosineAnnealingLR, Conv2d=Conv2d,
        Flatten=Flatten, MaxPool2d=MaxPool2d, Trainer=Trainer, load_checkpoint=load_checkpoint,
        save_checkpoint=save_checkpoint, acceleration=acceleration, benchmarking=benchmarking,
        caching=caching, compression=compression, precision=precision)


# --- the CNN ------------------------------------------------------------------------------------


def build_cnn(settings: Settings):
    """The cnn milestone's network, or (quick) the same layers with fewer channels."""
    if settings.cnn_widths is None:
        return cnn.build_model()
    t = _tinytorch()
    c1, c2, hidden = settings.cnn_widths
    return t.Sequential(
        t.Conv2d(1, c1, 3, padding=1), t.ReLU(), t.MaxPool2d(2),      # (N, c1, 14, 14)
        t.Conv2d(c1, c2, 3, padding=1), t.ReLU(), t.MaxPool2d(2),     # (N, c2, 7, 7)
        t.Flatten(), t.Linear(c2 * 7 * 7, hidden), t.ReLU(), t.Linear(hidden, cnn.CLASSES))


def fit(model, x, y, *, epochs: int, lr: float, seed: int, progress: bool) -> None:
    """The cnn milestone's recipe: SGD with momentum, a cosine schedule from `lr` to 0, batches
    of 64, 10% held out, module 08's Trainer."""
    t = _tinytorch()
    optimizer = t.SGD(model.parameters(), lr=lr, momentum=cnn.MOMENTUM)
    scheduler = t.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
    trainer = t.Trainer(model, t.CrossEntropyLoss(), optimizer, scheduler=scheduler, seed=seed)
    if epochs > 0:
        trainer.fit(x, y, epochs=epochs, batch_size=cnn.BATCH_SIZE, validation_split=cnn.VALIDATION,
                    progress=progress)


def logits_of(model, x, batch: int = 250) -> np.ndarray:
    """The model's logits for x, in batches, without a graph."""
    t = _tinytorch()
    model.eval()
    with t.no_grad():
        return np.concatenate([model(x[i:i + batch]).data for i in range(0, len(x), batch)])


def accuracy(model, x, y) -> float:
    return float((logits_of(model, x).argmax(axis=1) == y).mean())


def checkpoint_path(root: str, kind: str, settings: dict) -> str:
    """root/<kind>-seed0-<8 hex of the settings>.npz: one file per recipe."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    return os.path.join(root, f"{kind}-seed{settings['seed']}-{digest}.npz")


def trained(model, path: str | None, restart: bool, train, say, what: str) -> None:
    """Fill `model` from the checkpoint at `path`, or train it (`train()`) and write one there
    (no path: train, keep nothing)."""
    t = _tinytorch()
    if path and os.path.exists(path) and not restart:
        try:
            t.load_checkpoint(path, model)
        except Exception as error:
            raise harness.MilestoneError(f"the checkpoint {path} cannot be read ({type(error).__name__}: "
                                         f"{error}). Delete it, or pass --restart to train again.") from None
        say(f"{what}: read from {path} (--restart trains it again)")
        return
    start = time.perf_counter()
    train()
    say(f"{what}: trained in {harness.duration(time.perf_counter() - start)}"
        + (f", saved to {path}" if path else ""))
    if path:
        t.save_checkpoint(path, model)


def with_convolution(model, kind: str):
    """A copy of the trained `model` whose Conv2d layers compute by `kind`: "definition"
    (module 09's conv2d_naive, forward only), "offsets" (module 09's Conv2d and MaxPool2d as
    the class defines them) or "im2col" (module 15's accelerate). The weights are the same."""
    t = _tinytorch()
    twin = copy.deepcopy(model)
    stack = [twin]
    while stack:
        layer = stack.pop()
        stack.extend(layer.children())
        layer.__dict__.pop("forward", None)      # undo accelerate(): the class's own forward
        if kind == "definition" and isinstance(layer, t.Conv2d):
            layer.forward = types.MethodType(_definition_forward, layer)
    return t.acceleration.accelerate(twin) if kind == "im2col" else twin


def _definition_forward(self, x):
    """Conv2d.forward by module 09's seven loops (four in Python, three in np.sum)."""
    from tinytorch.core.spatial import conv2d_naive
    from tinytorch.core.tensor import Tensor

    x = x.data if isinstance(x, Tensor) else np.asarray(x)
    bias = None if self.bias is None else self.bias.data
    return Tensor(conv2d_naive(x, self.weight.data, bias, self.stride, self.padding))


def close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype == np.float32 and bool(
        np.allclose(a, b, rtol=TOLERANCE, atol=TOLERANCE))


def convolution_rows(model, data, settings: Settings, say) -> list[Row]:
    """Time the three convolutions on one batch of test digits; check their logits and the fast
    path's accuracy on every test digit."""
    t = _tinytorch()
    x_test = data.x_test.reshape(-1, 1, 28, 28)
    batch = x_test[:settings.batch]
    loops, offsets, fast = (with_convolution(model, kind) for kind in ("definition", "offsets", "im2col"))
    reference = logits_of(offsets, batch)
    same_loops = close(logits_of(loops, batch), reference)      # also the loops' warm-up
    same_fast = close(logits_of(fast, batch), reference)
    predicted, predicted_fast = logits_of(offsets, x_test).argmax(1), logits_of(fast, x_test).argmax(1)
    before = float((predicted == data.y_test).mean())
    after = float((predicted_fast == data.y_test).mean())
    same_test = bool(np.array_equal(predicted, predicted_fast))
    say(f"  logits on {len(batch)} digits: definition {'=' if same_loops else '!='} offsets "
        f"{'=' if same_fast else '!='} im2col (1e-4); predictions on all {len(x_test):,} test digits "
        f"{'identical' if same_test else 'DIFFER'}")

    with t.no_grad():
        say(f"  timing module 09's definition loops ({settings.slow_repeats} calls) ...")
        slow = t.benchmarking.measure(lambda: loops(batch), warmup=0, repeats=settings.slow_repeats)
        middle = t.benchmarking.measure(lambda: offsets(batch), warmup=3, repeats=settings.repeats)
        quick = t.benchmarking.measure(lambda: fast(batch), warmup=3, repeats=settings.repeats)
    for label, m in (("definition", slow), ("offsets", middle), ("im2col", quick)):
        say(f"  {label:<10} {m}")
    shown = f"{len(batch)} digits"
    accuracy_text = f"{100 * before:.1f}% -> {100 * after:.1f}%"
    return [
        speed_row(f"conv, {shown}", "definition loops (09)", "kernel offsets (09)", slow, middle,
                  checked=same_loops, check="logits 1e-4", quality="same logits"),
        speed_row(f"conv, {shown}", "definition loops (09)", "im2col (15)", slow, quick, target=SPEED_TARGET,
                  checked=same_loops and same_fast and same_test, check="logits 1e-4, all test predictions",
                  quality=accuracy_text),
        speed_row(f"conv, {shown}", "kernel offsets (09)", "im2col (15)", middle, quick,
                  checked=same_fast and same_test, check="logits 1e-4, all test predictions",
                  quality=accuracy_text),
    ]


# --- the size of the CNN ------------------------------------------------------------------------


def half_step_check(quantized, float_model) -> bool:
    """Every int8 weight of `quantized` within half a grid step of the float weight of its
    twin in `float_model` (the layer of the same name): what rounding to the grid promises."""
    t = _tinytorch()
    floats = dict(t.precision.named_modules(float_model))
    layers = [(name, layer) for name, layer in t.precision.named_modules(quantized)
              if isinstance(layer, t.precision.QuantizedLayer)]
    for name, layer in layers:
        qt = layer.qweight
        ones = t.precision.QuantizedTensor(np.ones_like(qt.q), qt.scale, None, qt.bits, qt.axis)
        step = t.precision.dequantize(ones)                     # each weight's grid step
        error = np.abs(t.precision.dequantize(qt) - floats[name].weight.data)
        if not np.all(error <= step / 2 * (1 + 1e-5) + 1e-7):
            return False
    return bool(layers)


def quantize(model):
    """Module 17's int8 per-channel quantize_model (a new model; `model` is unchanged)."""
    return _tinytorch().precision.quantize_model(model, bits=8, per_channel=True)


def size_rows(model, data, settings: Settings, seed: int, say, progress: bool) -> list[Row]:
    """int8 alone, pruning alone (fine-tuned) and both, against the float32 model."""
    t = _tinytorch()
    x_train = data.x_train[::settings.train_stride].reshape(-1, 1, 28, 28)
    y_train = data.y_train[::settings.train_stride]
    x_test = data.x_test.reshape(-1, 1, 28, 28)
    base_bytes, base_accuracy = t.precision.model_nbytes(model), accuracy(model, x_test, data.y_test)
    pruned = t.compression.prune_channels(model, settings.prune)
    cut = accuracy(pruned, x_test, data.y_test)
    fit(pruned, x_train, y_train, epochs=settings.finetune_epochs, lr=FINETUNE_LR, seed=seed, progress=progress)
    tuned = accuracy(pruned, x_test, data.y_test)
    say(f"  {settings.prune:.0%} of the channels pruned: {100 * cut:.1f}%, after {settings.finetune_epochs} "
        f"epoch(s) of fine-tuning {100 * tuned:.1f}% (the model: {100 * base_accuracy:.1f}%)")
    rows = []
    for label, small, float_twin in (("int8 per channel (17)", quantize(model), model),
                                     (f"{settings.prune:.0%} channels pruned (18)", pruned, None),
                                     ("pruned + int8 (17, 18)", quantize(pruned), pruned)):
        small_bytes, small_accuracy = t.precision.model_nbytes(small), accuracy(small, x_test, data.y_test)
        checked = half_step_check(small, float_twin) if float_twin is not None else None
        rows.append(Row("cnn size", f"float32 {base_bytes:,} B", f"{label} {small_bytes:,} B", "size",
                        base_bytes / small_bytes,
                        quality=f"{100 * base_accuracy:.1f}% -> {100 * small_accuracy:.1f}%",
                        checked=checked, check="weights within half a step" if checked is not None else "",
                        target=SIZE_TARGET if float_twin is pruned else None,
                        accuracy_lost=base_accuracy - small_accuracy))
    return rows


# --- the GPT ------------------------------------------------------------------------------------


def build_gpt(vocab_size: int, settings: Settings):
    from tinytorch.models.transformer import GPT, GPTConfig

    n_layer, n_embd, n_head, block = settings.gpt
    return GPT(GPTConfig(vocab_size=vocab_size, block_size=block, n_layer=n_layer, n_head=n_head, n_embd=n_embd))


def train_gpt(model, ids: np.ndarray, settings: Settings, seed: int, say, quiet: bool) -> None:
    """The gpt milestone's AdamW and schedule, for settings.gpt_steps steps of full windows."""
    from tinytorch.models.transformer import next_token_loss, random_windows

    block = settings.gpt[3]
    optimizer = gpt.make_optimizer(model)
    generator = np.random.default_rng(seed)
    bar = harness.Progress(settings.gpt_steps, "training the GPT", say, quiet=quiet)
    try:
        for step in range(settings.gpt_steps):
            optimizer.lr = gpt.learning_rate(step, settings.gpt_steps)
            x, y = random_windows(ids, block, settings.gpt_batch, generator)
            loss = next_token_loss(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            bar.update(step + 1, loss=f"{loss.item():.3f}")
    finally:
        bar.close()


def generation_row(model, prompt: np.ndarray, new_tokens: int, settings: Settings, what: str,
                   quality: str, target: float | None, say) -> Row:
    """Module 14's generate against module 16's generate_cached: the same greedy tokens, timed."""
    t = _tinytorch()

    def uncached():
        return model.generate(prompt, new_tokens, top_k=1, generator=np.random.default_rng(0))

    def cached():
        return t.caching.generate_cached(model, prompt, new_tokens, top_k=1, generator=np.random.default_rng(0))

    same = bool(np.array_equal(uncached(), cached()))             # these calls are the warm-up
    say(f"  {what}: greedy tokens {'identical' if same else 'DIFFER'}; timing {settings.slow_repeats} "
        f"uncached and {settings.repeats} cached generations ...")
    slow = t.benchmarking.measure(uncached, warmup=0, repeats=settings.slow_repeats)
    fast = t.benchmarking.measure(cached, warmup=1, repeats=settings.repeats)
    say(f"  generate        {slow}\n  generate_cached {fast}")
    per_token = new_tokens / fast.median
    return speed_row(what, "generate (14)", f"generate_cached (16), {per_token:,.0f} tok/s", slow, fast,
                     target=target, checked=same, check="identical tokens", quality=quality)


def generation_rows(args, settings: Settings, say) -> list[Row]:
    """This milestone's GPT (trained here once), and the gpt milestone's if a finished
    checkpoint of it exists."""
    t = _tinytorch()
    corpus = gpt.load_corpus(None)
    tokenizer = gpt.make_tokenizer("char", corpus, 0)
    train_ids = np.array(tokenizer.encode(corpus.train), dtype=np.int64)
    val_ids = np.array(tokenizer.encode(corpus.val), dtype=np.int64)
    n_layer, n_embd, n_head, block = settings.gpt
    t.manual_seed(args.seed)
    model = build_gpt(tokenizer.vocab_size, settings)
    recipe = {"recipe": RECIPE, "seed": args.seed, "gpt": list(settings.gpt), "steps": settings.gpt_steps,
              "batch": settings.gpt_batch, "data": corpus.identity.checksum}
    path = None if args.quick else checkpoint_path(args.checkpoint, "gpt", recipe)
    parameters = sum(p.size for p in model.parameters())
    trained(model, path, args.restart, lambda: train_gpt(model, train_ids, settings, args.seed, say, args.quiet),
            say, f"GPT {n_layer}x{n_embd}, {n_head} heads, context {block}, {parameters:,} parameters, "
            f"{settings.gpt_steps} steps")
    model.eval()
    count = min(16, (len(val_ids) - 1) // block)
    windows = val_ids[np.arange(count)[:, None] * block + np.arange(block + 1)]
    val = gpt.evaluate(model, windows[:, :-1], windows[:, 1:]) / windows[:, 1:].size
    prompt = val_ids[None, :block - settings.new_tokens]              # (1, prompt): the text fills the context
    rows = [generation_row(model, prompt, settings.new_tokens, settings,
                           f"gpt ctx {block}, {prompt.shape[1]}+{settings.new_tokens} tok", f"val {val:.2f} nats",
                           SPEED_TARGET, say)]
    text = tokenizer.decode(model.generate(prompt, min(80, settings.new_tokens), top_k=1)[0].tolist())
    say(f"  its greedy text (trained {settings.gpt_steps} steps, validation {val:.2f} nats/char: its quality is "
        f"not the claim):\n    {text!r}")
    if not args.quick:
        rows += gpt_milestone_row(args, corpus, tokenizer, val_ids, settings, say)
    return rows


def gpt_milestone_row(args, corpus, tokenizer, val_ids, settings: Settings, say) -> list[Row]:
    """The gpt milestone's own model (context 64), when its finished checkpoint is there: reported."""
    t = _tinytorch()
    recipe = argparse.Namespace(seed=args.seed, steps=gpt.STEPS, batch_size=gpt.BATCH_SIZE, tokenizer="char",
                                vocab_size=gpt.BPE_VOCAB, eval_every=gpt.EVAL_EVERY)
    last = os.path.join(gpt.run_folder(args.gpt_checkpoint, gpt.run_settings(recipe, corpus)), "last.npz")
    if not os.path.exists(last) or gpt.saved_step(last) < gpt.STEPS:
        say(f"  (no finished gpt milestone checkpoint at {last}: its model's figure is left out)")
        return []
    model = gpt.build_model(tokenizer.vocab_size)
    t.load_checkpoint(last, model)
    model.eval()
    prompt = val_ids[None, :gpt.BLOCK_SIZE // 2]
    return [generation_row(model, prompt, settings.new_tokens, settings,
                           f"gpt milestone ctx {gpt.BLOCK_SIZE}, {prompt.shape[1]}+{settings.new_tokens} tok",
                           "its checkpoint", None, say)]


# --- the run ------------------------------------------------------------------------------------


def run(args, settings: Settings, say) -> Record:
    t = _tinytorch()
    began = time.perf_counter()
    record = Record(settings=settings.name, seed=args.seed, environment=t.benchmarking.environment())
    data = digits.load(args.data, flatten=False)
    record.data, record.identity = data.describe(), digits.identity(data)
    say(f"\ndata: {record.data}")
    say(f"settings: {settings.name}; BLAS threads {os.environ.get('OPENBLAS_NUM_THREADS')}; "
        f"load average {', '.join(f'{v:.1f}' for v in os.getloadavg())}")

    say("\n1. the cnn milestone's CNN")
    x_train = data.x_train[::settings.train_stride].reshape(-1, 1, 28, 28)
    y_train = data.y_train[::settings.train_stride]
    t.manual_seed(args.seed)
    model = build_cnn(settings)
    recipe = {"recipe": RECIPE, "seed": args.seed, "epochs": settings.cnn_epochs, "widths": settings.cnn_widths,
              "stride": settings.train_stride, "data": record.identity.checksum}
    path = None if args.quick else checkpoint_path(args.checkpoint, "cnn", recipe)
    fast_model, _ = harness.fast_kernels(model)                  # trains with module 15's kernels
    trained(model, path, args.restart, lambda: fit(fast_model, x_train, y_train, epochs=settings.cnn_epochs,
                                                   lr=cnn.LR, seed=args.seed, progress=not args.quiet),
            say, f"CNN, the cnn milestone's recipe ({settings.cnn_epochs} epochs)")

    say("\n2. convolution: module 09's loops against module 15's im2col")
    record.rows += convolution_rows(model, data, settings, say)
    say("\n3. generation: module 14's generate against module 16's KV cache")
    record.rows += generation_rows(args, settings, say)
    say("\n4. size: module 18's channel pruning and module 17's int8")
    record.rows += size_rows(with_convolution(model, "im2col"), data, settings, args.seed, say, not args.quiet)
    record.seconds = time.perf_counter() - began
    return record


def decide(record: Record, quick: bool) -> tuple[bool, str]:
    """(whether this run is the milestone, the sentence saying why)."""
    if quick:
        return False, "--quick runs tiny models with few repeats: it checks the path, it proves nothing"
    counts, reason = digits.decide(record.identity)
    return counts, reason


def table(record: Record) -> list[str]:
    """The one table: a row per comparison."""
    head = ("what", "baseline", "optimized", "speed-up / ratio (95% CI)", "quality before -> after",
            "twin checked", "verdict")
    cells = [head] + [(row.what, row.baseline, row.optimized, row.ratio_text(), row.quality,
                       {True: f"yes ({row.check})", False: f"FAILED ({row.check})", None: "-"}[row.checked],
                       row.verdict_text()) for row in record.rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(head))]
    lines = ["  " + "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells]
    lines.insert(1, "  " + "  ".join("-" * width for width in widths))
    return lines


def verdict(record: Record, quick: bool) -> harness.Verdict:
    """PASSED only when every targeted row is met and every twin check holds, on the real run."""
    targeted = [row for row in record.rows if row.target is not None]
    speeds = [row for row in targeted if row.kind == "speed"]
    failed = [row for row in record.rows if row.checked is False]
    reached = bool(targeted) and all(row.met for row in targeted) and not failed
    value = min((row.ratio if row.counted else 1.0 for row in speeds), default=math.nan)
    parts = [f"{row.what} {row.ratio_text()}" for row in speeds]
    parts += [f"cnn {row.ratio:.2f}x smaller, {row.quality}" for row in targeted if row.kind == "size"]
    checks = sum(row.checked is True for row in record.rows)
    text = "; ".join(parts) + (f"; {checks} twin checks passed" if not failed else
                               "; twin check FAILED: " + ", ".join(f"{r.what}: {r.optimized}" for r in failed))
    counts, reason = decide(record, quick)
    works = not failed and all(math.isfinite(row.ratio) for row in record.rows)
    return harness.judge(SPEC, value=value, data=record.identity, counts=counts, reason=reason, reached=reached,
                         works=works, text=text)


def plot(record: Record, path: str) -> str | None:
    """Speed-ups with their interval (log scale) beside the size ratios, as a PNG; None without
    matplotlib."""
    plt = harness._pyplot()
    if plt is None:
        return None
    speeds = [row for row in record.rows if row.kind == "speed"]
    sizes = [row for row in record.rows if row.kind == "size"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    labels = [f"{row.baseline}\n-> {row.optimized.split(',')[0]}\n({row.what})" for row in speeds]
    errors = np.array([[row.ratio - row.ci[0] for row in speeds], [row.ci[1] - row.ratio for row in speeds]])
    colors = ["tab:green" if row.counted else "tab:grey" for row in speeds]
    left.bar(range(len(speeds)), [row.ratio for row in speeds], yerr=np.maximum(errors, 0), color=colors,
             capsize=4)
    left.set_xticks(range(len(speeds)), labels, fontsize=7)
    left.set_yscale("log")
    left.axhline(SPEED_TARGET, color="red", linestyle="--", linewidth=0.8, label=f"target {SPEED_TARGET:g}x")
    left.axhline(1, color="black", linewidth=0.6)
    left.set_ylabel("speed-up (median, 95% CI)")
    left.set_title("speed (grey: within noise)")
    left.legend(fontsize=8)
    right.bar(range(len(sizes)), [row.ratio for row in sizes], color="tab:blue")
    right.set_xticks(range(len(sizes)), [f"{row.optimized.rsplit(' ', 2)[0]}\n{row.quality}" for row in sizes],
                     fontsize=7)
    right.axhline(SIZE_TARGET, color="red", linestyle="--", linewidth=0.8, label=f"target {SIZE_TARGET:g}x")
    right.set_ylabel("times smaller (model_nbytes)")
    right.set_title("cnn size (accuracy before -> after)")
    right.legend(fontsize=8)
    figure.suptitle(f"optimize milestone ({record.settings} settings)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return os.path.abspath(path)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="optimize.py", description="Milestone optimize: the models of the "
                                     "earlier milestones, made fast and small, every change measured.")
    parser.add_argument("--quick", action="store_true", help="tiny models and a few repeats: a path check "
                        "in well under a minute, never recorded")
    parser.add_argument("--data", metavar="DIR", help="a folder with the four MNIST files; default: the digits "
                        "shipped with tinytorch")
    parser.add_argument("--checkpoint", metavar="DIR", default=CHECKPOINTS, help="where the trained CNN and GPT "
                        f"are kept (default {CHECKPOINTS}/ in the current folder); a later run reads them")
    parser.add_argument("--restart", action="store_true", help="train the models again even if checkpoints exist")
    parser.add_argument("--gpt-checkpoint", metavar="DIR", default=gpt.CHECKPOINTS, help="where the gpt "
                        f"milestone keeps its checkpoints (default {gpt.CHECKPOINTS}/): its model's figure is "
                        "reported when a finished one is there")
    harness.add_options(parser, seed="the CNN's and the GPT's training", plot="optimize.png",
                        shows="the speed-ups and size ratios")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the milestone: 0 when it is achieved (or a path check runs through), 1 otherwise."""
    args = parse_args(argv)
    say = harness.sayer(args.quiet)
    settings = QUICK if args.quick else FULL
    say(EXPLANATION.format(speed=SPEED_TARGET, size=SIZE_TARGET))
    try:
        record = run(args, settings, say)
    except BaseException as error:                     # the harness re-raises what it does not handle
        return harness.stopped(SPEC, error, args.result, interrupted="a model is kept in its checkpoint once it is trained")
    say(f"\nthe optimizations, measured ({harness.duration(record.seconds)}; one BLAS thread; a speed-up counts "
        "only when its 95% interval lies above 1):")
    for line in table(record):
        say(line)
    if args.history_json:
        harness.write_json(args.history_json, {**asdict(record), "rows": [
            {**asdict(row), "met": row.met, "counted": row.counted} for row in record.rows]})
    path = args.plot or "optimize.png"
    harness.say_plot(plot(record, path), path, "the speed-ups and size ratios", say)
    return harness.finish(verdict(record, args.quick), args.result)


if __name__ == "__main__":
    harness.run_script(main)
