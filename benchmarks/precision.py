"""Precision (module 17): how much smaller the milestones' models get, and what it costs.

In a worker process whose BLAS threads are pinned before NumPy loads (benchmarks/training.py's
run_worker), on models really trained with the milestones' recipes:

- the cnn milestone's CNN (milestones/cnn.py: its build_model, SGD with momentum, the cosine
  schedule, batch 64, 10% validation, 12 epochs, seed 0) on the shipped digits;
- the gpt milestone's GPT (milestones/gpt.py's own train(): 2,000 AdamW steps of 32 windows,
  seed 0) on the shipped plays; its checkpoint folder is reused when it exists, so a second run
  only evaluates.

For float32, float16 (to_float16), int8 per tensor, int8 per channel and int4 per channel
(quantize_model: every Linear, Conv2d and embedding weight in int8 codes with float16 scales,
biases and norms in float16) it reports the stored bytes (model_nbytes), the cnn's test
accuracy on the 1,000 test digits and the gpt's validation loss on every validation character;
then the time to dequantize every quantized weight against one float32 forward pass (median
after a warm-up). Targets: both whole models ≥ 3.8× smaller, gpt validation loss within 0.01
nats and cnn accuracy within 1 point with int8 per channel.

    python -m benchmarks precision            (with the others: python -m benchmarks)
    python -m benchmarks.precision [--quick] [--threads 1] [--repeats N] [--warmup N]
                                   [--checkpoint DIR] [--plot PATH | --no-plot]

--quick is a smoke run of the same code (its quality figures mean nothing): the cnn recipe for
1 epoch on every 8th training digit (500; the files are sorted by class, so a prefix would hold
only 0s and 1s), scored on every 5th test digit (200); the gpt recipe
(model, AdamW, schedule, batches) for 20 steps in memory, without the milestone's checkpoints,
n-gram baselines and samples, scored on the first 32 validation windows (2,048 characters).
Sizes do not depend on training: they are the full run's. Results:
benchmarks/results/precision.md and precision.png beside it.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.common import (
    THREAD_VARIABLES,
    blas_pools,
    blas_text,
    check_run_options,
    cpu_name,
    emit,
    load_average,
    run_worker,
    worker_text,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "precision.md"
CHECKPOINTS = Path.home() / ".cache" / "tinytorch" / "precision-gpt-checkpoints"
SIZE_TARGET, LOSS_TARGET, ACCURACY_TARGET = 3.8, 0.01, 0.01
QUICK_EPOCHS, QUICK_TRAIN_EVERY, QUICK_TEST_EVERY = 1, 8, 5     # every 8th training digit, every 5th test one
QUICK_STEPS, QUICK_WINDOWS = 20, 32
VARIANTS = ("float32", "float16", "int8 per tensor", "int8 per channel", "int4 per channel")


def variants(model):
    """{name: model} for every storage format (copies; `model` stays float32)."""
    from tinytorch.perf.precision import quantize_model, to_float16

    return {"float32": model, "float16": to_float16(model),
            "int8 per tensor": quantize_model(model, per_channel=False),
            "int8 per channel": quantize_model(model),
            "int4 per channel": quantize_model(model, bits=4)}


def dequantize_vs_forward(model, x, repeats: int, warmup: int) -> dict:
    """Milliseconds to dequantize every weight of the int8 model, and one float32 forward of x
    (module 15's median_ms)."""
    from tinytorch.core.autograd import no_grad
    from tinytorch.perf.acceleration import median_ms
    from tinytorch.perf.precision import QuantizedLayer, dequantize, named_modules, quantize_model

    layers = [m for _, m in named_modules(quantize_model(model)) if isinstance(m, QuantizedLayer)]
    model.eval()
    with no_grad():
        forward_ms = median_ms(lambda: model(x), repeats, warmup)
    unpack_ms = median_ms(lambda: [dequantize(m.qweight) for m in layers], repeats, warmup)
    return {"dequantize_ms": unpack_ms, "forward_ms": forward_ms}


def train_cnn(epochs: int, seed: int = 0, every: int = 1):
    """The cnn milestone's recipe (its model, optimizer, schedule, batch and split) on every
    `every`-th training digit; (model, data)."""
    from milestones import cnn, digits
    from tinytorch.core.layers import manual_seed
    from tinytorch.core.losses import CrossEntropyLoss
    from tinytorch.core.optimizers import SGD, CosineAnnealingLR
    from tinytorch.core.training import Trainer

    data = digits.load(None, flatten=False)
    manual_seed(seed)
    model = cnn.build_model()
    optimizer = SGD(model.parameters(), lr=cnn.LR, momentum=cnn.MOMENTUM)
    trainer = Trainer(model, CrossEntropyLoss(), optimizer, seed=seed,
                      scheduler=CosineAnnealingLR(optimizer, T_max=max(epochs, 1)))
    x_train, y_train = data.x_train[::every], data.y_train[::every]
    trainer.fit(x_train.reshape(-1, 1, 28, 28), y_train, epochs=epochs, batch_size=cnn.BATCH_SIZE,
                validation_split=cnn.VALIDATION)
    return model, data


def accuracy(model, data, every: int = 1) -> float:
    """Accuracy on every `every`-th test digit."""
    from tinytorch.core.autograd import no_grad

    model.eval()
    with no_grad():
        logits = model(data.x_test[::every].reshape(-1, 1, 28, 28)).data
    return float((logits.argmax(axis=1) == data.y_test[::every]).mean())


def measure_cnn(epochs: int, repeats: int, warmup: int, quick: bool) -> dict:
    train_every, test_every = (QUICK_TRAIN_EVERY, QUICK_TEST_EVERY) if quick else (1, 1)
    start = time.perf_counter()
    model, data = train_cnn(epochs, every=train_every)
    trained = time.perf_counter() - start
    rows = [{"variant": name, "nbytes": _nbytes(m), "quality": accuracy(m, data, test_every)}
            for name, m in variants(model).items()]
    timing = dequantize_vs_forward(model, data.x_test[:64].reshape(-1, 1, 28, 28), repeats, warmup)
    return {"model": "cnn", "epochs": epochs, "train_seconds": trained, "rows": rows, "timing": timing,
            "scored_on": f"{len(data.y_test[::test_every]):,} test digits", "timing_input": "a batch of 64 digits"}


def train_gpt(steps: int, checkpoint: Path):
    """The gpt milestone's own train() (checkpointed); (model, validation inputs, targets, chars)."""
    import numpy as np

    from milestones import gpt as milestone
    from tinytorch.core.training import load_checkpoint

    args = milestone.parse_args(["--steps", str(steps), "--checkpoint", str(checkpoint), "--quiet"])
    corpus = milestone.load_corpus(None)
    result = milestone.train(args, corpus)
    tokenizer = milestone.make_tokenizer("char", corpus, 0)
    model = milestone.build_model(tokenizer.vocab_size)
    folder = milestone.run_folder(args.checkpoint, milestone.run_settings(args, corpus))
    load_checkpoint(os.path.join(folder, "last.npz"), model, milestone.make_optimizer(model))
    val_ids = np.array(tokenizer.encode(corpus.val), dtype=np.int64)
    inputs, targets = milestone.validation_windows(val_ids)
    return model, inputs, targets, result


def train_gpt_quick(steps: int, seed: int = 0):
    """The gpt milestone's model, AdamW, schedule and batches for `steps` steps in memory (no
    checkpoint, n-gram baselines or samples: the quick run); (model, first validation windows, targets)."""
    import numpy as np

    from milestones import gpt as milestone
    from tinytorch.core.layers import manual_seed
    from tinytorch.models.transformer import next_token_loss, random_windows

    corpus = milestone.load_corpus(None)
    tokenizer = milestone.make_tokenizer("char", corpus, 0)
    train_ids = np.array(tokenizer.encode(corpus.train), dtype=np.int64)
    manual_seed(seed)
    model = milestone.build_model(tokenizer.vocab_size)
    optimizer = milestone.make_optimizer(model)
    generator = np.random.default_rng(seed)
    for step in range(steps):
        optimizer.lr = milestone.learning_rate(step, steps)
        x, y = random_windows(train_ids, milestone.BLOCK_SIZE, milestone.BATCH_SIZE, generator)
        loss = next_token_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    val_ids = np.array(tokenizer.encode(corpus.val[:QUICK_WINDOWS * milestone.BLOCK_SIZE + 1]), dtype=np.int64)
    inputs, targets = milestone.validation_windows(val_ids)
    return model, inputs, targets


def measure_gpt(steps: int, checkpoint: Path, repeats: int, warmup: int, quick: bool) -> dict:
    from milestones import gpt as milestone

    start = time.perf_counter()
    if quick:
        model, inputs, targets = train_gpt_quick(steps)
        result = None
    else:
        model, inputs, targets, result = train_gpt(steps, checkpoint)
    trained = time.perf_counter() - start
    rows = []
    for name, variant in variants(model).items():
        # float16 activations run through NumPy's emulated float16 matmul: too slow to score here
        loss = math.nan if name == "float16" else milestone.evaluate(variant, inputs, targets) / targets.size
        rows.append({"variant": name, "nbytes": _nbytes(variant), "quality": loss})
    if result is not None and abs(rows[0]["quality"] - result.val_loss) > 1e-4:
        raise RuntimeError(f"the reloaded GPT scores {rows[0]['quality']:.4f}, the milestone {result.val_loss:.4f}")
    timing = dequantize_vs_forward(model, inputs[:32], repeats, warmup)
    return {"model": "gpt", "steps": steps, "train_seconds": trained, "rows": rows, "timing": timing,
            "scored_on": f"{targets.size:,} validation characters",
            "timing_input": "a batch of 32 windows of 64 characters"}


def _nbytes(model) -> int:
    from tinytorch.perf.precision import model_nbytes

    return model_nbytes(model)


def worker(threads: int, repeats: int, warmup: int, quick: bool, checkpoint: Path) -> None:
    import numpy

    emit(progress="cnn: train and score", done=0, total=2)
    cnn = measure_cnn(QUICK_EPOCHS if quick else 12, repeats, warmup, quick)
    emit(progress="gpt: train and score", done=1, total=2)
    gpt = measure_gpt(QUICK_STEPS if quick else 2000, checkpoint, repeats, warmup, quick)
    emit(progress="gpt: train and score", done=2, total=2)
    emit(result={"threads": threads, "quick": quick, "models": [cnn, gpt], "blas": blas_pools(),
                  "numpy": numpy.__version__, "pinned": {name: os.environ.get(name) for name in THREAD_VARIABLES}})


def _kb(nbytes: int) -> str:
    return f"{nbytes / 1024:,.1f} KB"


def markdown(result: dict, started: str, loads: tuple[str, str]) -> str:

    cnn, gpt = result["models"]
    lines = [
        "# Precision: stored size and quality of the milestones' models in fewer bits",
        "",
        f"Measured {started} by `python -m benchmarks precision` (benchmarks/precision.py)"
        + (f" with --quick: a smoke run whose quality figures mean nothing (the cnn trained on every "
           f"{QUICK_TRAIN_EVERY}th digit, the gpt for {QUICK_STEPS} steps in memory)." if result["quick"] else "."),
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, Python "
        f"{platform.python_version()}, NumPy {result['numpy']}. Load average (1, 5, 15 min) before: {loads[0]}; "
        f"after: {loads[1]} (timings on a loaded machine are slower than on an idle one; sizes and quality are not "
        "affected).",
        "",
        f"{worker_text()} Thread pools seen by threadpoolctl: {blas_text(result['blas'])}.",
        "",
        f"Models: the cnn milestone's CNN trained by its recipe for {cnn['epochs']} epoch(s) "
        f"({cnn['train_seconds']:.0f} s), scored on {cnn['scored_on']}; the gpt milestone's GPT trained "
        + ("by its recipe" if result["quick"] else "by its own train()") + f" for {gpt['steps']:,} steps "
        f"({gpt['train_seconds']:.0f} s" + ("" if result["quick"] else ", 0 when its checkpoint was already complete")
        + f"), scored on {gpt['scored_on']}. "
        "quantize_model stores every Linear, Conv2d and embedding weight as int8 codes with one float16 scale per "
        "output channel (per row of an embedding) and no zero point (symmetric), and the biases and norms as "
        "float16. int4 codes sit in int8 arrays (NumPy has no 4-bit type), so they store no fewer bytes than int8 "
        "here.",
        "",
        "| variant | cnn bytes | cnn size vs float32 | cnn test accuracy | change | gpt bytes | gpt size vs float32 "
        "| gpt validation loss (nats/char) | change |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base_c, base_g = cnn["rows"][0], gpt["rows"][0]
    for c, g in zip(cnn["rows"], gpt["rows"]):
        loss = "not scored (float16 matmul emulated by NumPy)" if math.isnan(g["quality"]) else f"{g['quality']:.4f}"
        change = "" if math.isnan(g["quality"]) else f"{g['quality'] - base_g['quality']:+.4f}"
        lines.append(f"| {c['variant']} | {_kb(c['nbytes'])} | {base_c['nbytes'] / c['nbytes']:.2f}× | "
                     f"{100 * c['quality']:.1f}% | {100 * (c['quality'] - base_c['quality']):+.1f} points | "
                     f"{_kb(g['nbytes'])} | {base_g['nbytes'] / g['nbytes']:.2f}× | {loss} | {change} |")
    int8_c = next(r for r in cnn["rows"] if r["variant"] == "int8 per channel")
    int8_g = next(r for r in gpt["rows"] if r["variant"] == "int8 per channel")
    ratios = {"cnn": base_c["nbytes"] / int8_c["nbytes"], "gpt": base_g["nbytes"] / int8_g["nbytes"]}
    loss_change = int8_g["quality"] - base_g["quality"]
    points = 100 * (int8_c["quality"] - base_c["quality"])
    def verdict(met: bool) -> str:
        return "not judged: a --quick run" if result["quick"] else ("met" if met else "not met")

    lines += [
        "",
        "Targets with int8 per channel: the whole stored model ≥ "
        f"{SIZE_TARGET}× smaller: {ratios['cnn']:.2f}× (cnn) and {ratios['gpt']:.2f}× (gpt) "
        f"({'met' if min(ratios.values()) >= SIZE_TARGET else 'not met'}); gpt validation loss within "
        f"{LOSS_TARGET}: {loss_change:+.4f} ({verdict(abs(loss_change) <= LOSS_TARGET)}); cnn accuracy "
        f"within {100 * ACCURACY_TARGET:.0f} point: {points:+.1f} ({verdict(abs(points) <= 100 * ACCURACY_TARGET)}).",
        "",
        "## Speed: the price of dequantizing",
        "",
        "NumPy has no int8 matrix product faster than its float32 one, so a quantized layer dequantizes its weight "
        "at every call and multiplies in float32. Median of the repeats after a warm-up:",
        "",
        "| model | dequantize every quantized weight | one float32 forward | input |",
        "|---|---:|---:|---|",
    ]
    for m in (cnn, gpt):
        lines.append(f"| {m['model']} | {m['timing']['dequantize_ms']:.2f} ms | {m['timing']['forward_ms']:.2f} ms | "
                     f"{m['timing_input']} |")
    lines += ["", "On hardware with int8 kernels (x86 VNNI, ARM dot-product instructions) the product itself "
              "runs on the int8 codes, and a memory-bound matrix-vector product reads 4× fewer bytes."]
    return "\n".join(lines) + "\n"


def save_plot(result: dict, path: Path) -> Path | None:
    """Size against quality for both models; None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, model, label, scale in [(axes[0], result["models"][0], "test accuracy (%)", 100),
                                    (axes[1], result["models"][1], "validation loss (nats/char)", 1)]:
        for row in model["rows"]:
            if math.isfinite(row["quality"]):
                ax.scatter(row["nbytes"] / 1024, scale * row["quality"])
                ax.annotate(row["variant"], (row["nbytes"] / 1024, scale * row["quality"]), fontsize=8,
                            textcoords="offset points", xytext=(4, 4))
        ax.set_xlabel("stored size (KB)")
        ax.set_ylabel(label)
        ax.set_title(f"the {model['model']} milestone's model")
        ax.grid(True, alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def run(args: argparse.Namespace, console) -> dict:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from autograder.files import atomic_write

    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_before = load_average()
    extra = ("--checkpoint", str(args.checkpoint)) + (("--quick",) if args.quick else ())
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        result = run_worker(args.threads[0], args.repeats, args.warmup, None, progress,
                            module="benchmarks.precision", extra=extra)
    atomic_write(args.out, markdown(result, started, (load_before, load_average())))
    console.print(f"results: {args.out}")
    if not args.no_plot:
        path = args.plot or args.out.with_suffix(".png")
        saved = save_plot(result, path)
        console.print(f"plot: {saved}" if saved else f"plot: matplotlib is not installed, {path} not written")
    return result


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.precision", description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1", help="the BLAS thread count of the worker (default 1)")
    parser.add_argument("--repeats", type=int, default=20, help="timed repeats (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed repeats first (default 3)")
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: the cnn on every {QUICK_TRAIN_EVERY}th digit "
                        f"for 1 epoch, the gpt for {QUICK_STEPS} steps, 3 repeats")
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINTS, help="where the gpt milestone's run keeps "
                        f"its checkpoint (default {CHECKPOINTS}); a complete one is reused")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"the markdown results (default "
                        f"{RESULTS.relative_to(ROOT)})")
    parser.add_argument("--plot", type=Path, help="the size-against-quality plot (default: precision.png beside "
                        "the results)")
    parser.add_argument("--no-plot", action="store_true", help="no plot")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    check_run_options(parser, args)
    if len(args.threads) != 1:
        parser.error(f"--threads takes one thread count here (sizes and quality do not depend on it), got "
                     f"{args.threads}")
    return args


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmarks` calls main() with no arguments: the defaults."""
    args = parse_args([] if argv is None else argv)
    if args.worker:
        worker(args.threads[0], args.repeats, args.warmup, args.quick, args.checkpoint)
        return 0
    from rich.console import Console

    run(args, Console())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
