"""Training speed: tinytorch against PyTorch CPU, the same models measured in the same run.

For each thread count (1 and 2), a fresh worker process pins its threads before NumPy and
torch load (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS, torch.set_num_threads)
and times, for the cifar10 milestone's CNN and the two digits models (benchmarks/models.py):

- one training step (forward, loss, backward, SGD with momentum, zero_grad) of the tinytorch
  model and of its PyTorch twin with the same initial weights, alternating step by step so
  that both see the same load; the median over the repeats after a warm-up, in ms per step
  and images per second, and their ratio;
- module 09's convolution: the definition with loops (conv2d_naive) against the kernel-offset
  loop (conv2d_forward) and torch's conv2d, on one small input;

then the time of one CIFAR-10 epoch (50,000 images) and of the 25 epochs of the recipe that
reaches 75%, from the cifar10 CNN's images per second at the largest thread count measured.

    python -m benchmarks training             (with the others: python -m benchmarks)
    python -m benchmarks.training [--repeats N] [--warmup N] [--threads 1,2] [--plot PATH]

Results: benchmarks/results/training.md (and training.png beside it when matplotlib is
installed). The workers unset OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, which some machines
here set for older OpenBLAS builds and which slow a current one; the results say which BLAS
kernel ran (threadpoolctl).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
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
    duration,
    emit,
    interleaved,
    load_average,
    run_worker,
    ticker,
    worker_text,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "training.md"
EPOCH_IMAGES = 50_000                                  # CIFAR-10's training set
RECIPE_EPOCHS = 25                                     # the small recipe that reaches 75%
TARGET = 2.5                                           # tinytorch's cifar10 step, in PyTorch's time
CONV_CASE = dict(n=8, c_in=16, c_out=32, size=14)     # the digits CNN's second layer, 8 images


# --- the worker: one thread count, in its own process ------------------------------------------

def steps(spec, seed: int = 0):
    """(tinytorch step, torch step): each call is one training step of the model of `spec`,
    or of its PyTorch twin, on the same batch, and returns the loss before the update."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from benchmarks.models import batch, pair
    from tinytorch.core.losses import CrossEntropyLoss
    from tinytorch.core.optimizers import SGD
    from tinytorch.core.tensor import Tensor

    model, twin = pair(spec, seed)
    x, y = batch(spec, seed)
    optimizer = SGD(model.parameters(), lr=spec.lr, momentum=0.9)
    twin_optimizer = torch.optim.SGD(twin.parameters(), lr=spec.lr, momentum=0.9)
    loss_fn = CrossEntropyLoss()
    labels = torch.from_numpy(y)

    def ours():
        optimizer.zero_grad()
        loss = loss_fn(model(Tensor(x)), Tensor(y, dtype=np.int64))
        loss.backward()
        optimizer.step()
        return loss.item()

    def theirs():
        twin_optimizer.zero_grad()
        loss = F.cross_entropy(twin(torch.from_numpy(x)), labels)
        loss.backward()
        twin_optimizer.step()
        return loss.item()

    return ours, theirs


def first_losses(spec, seed: int = 0) -> tuple[float, float]:
    """The loss of the tinytorch model and of its twin on the first batch (training mode)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from benchmarks.models import batch, pair
    from tinytorch.core.losses import CrossEntropyLoss
    from tinytorch.core.tensor import Tensor

    model, twin = pair(spec, seed)
    x, y = batch(spec, seed)
    ours = CrossEntropyLoss()(model(Tensor(x)), Tensor(y, dtype=np.int64)).item()
    with torch.no_grad():
        theirs = F.cross_entropy(twin(torch.from_numpy(x)), torch.from_numpy(y)).item()
    return ours, theirs


def measure_models(repeats: int, warmup: int, only: list[str] | None = None) -> list[dict]:
    """One row per model: median ms per step of tinytorch and torch, images/s, the ratio."""
    from benchmarks.models import specs

    rows = []
    for spec in specs():
        if only and spec.key not in only:
            continue
        ours, theirs = steps(spec)
        times_ours, times_theirs = interleaved(ours, theirs, repeats, warmup, ticker(spec.key, repeats))
        ms_ours, ms_theirs = 1e3 * statistics.median(times_ours), 1e3 * statistics.median(times_theirs)
        rows.append({
            "model": spec.key, "title": spec.title, "batch": spec.batch,
            "tinytorch_ms": ms_ours, "torch_ms": ms_theirs,
            "tinytorch_images_per_s": spec.batch / ms_ours * 1e3, "torch_images_per_s": spec.batch / ms_theirs * 1e3,
            "ratio": ms_ours / ms_theirs,
            "tinytorch_ms_min": 1e3 * min(times_ours), "torch_ms_min": 1e3 * min(times_theirs),
        })
    return rows


def measure_conv(repeats: int) -> dict:
    """conv2d_naive against conv2d_forward (module 09) and torch's conv2d: one forward pass of
    CONV_CASE, float32, padding 1; medians in ms."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from tinytorch.core.spatial import conv2d_forward, conv2d_naive

    rng = np.random.default_rng(0)
    case = CONV_CASE
    x = rng.standard_normal((case["n"], case["c_in"], case["size"], case["size"])).astype(np.float32)
    w = rng.standard_normal((case["c_out"], case["c_in"], 3, 3)).astype(np.float32)
    tick = ticker("conv", repeats)
    naive_times = []
    for _ in range(min(3, repeats)):                    # about a second each: a few calls
        start = time.perf_counter()
        slow = conv2d_naive(x, w, None, 1, 1)
        naive_times.append(time.perf_counter() - start)
    naive = statistics.median(naive_times)
    fast = conv2d_forward(x, w, None, 1, 1)
    if not np.allclose(slow, fast, rtol=1e-4, atol=1e-4):
        raise AssertionError("conv2d_naive and conv2d_forward disagree: the comparison would be void")
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)
    ours, theirs = interleaved(lambda: conv2d_forward(x, w, None, 1, 1), lambda: F.conv2d(xt, wt, padding=1),
                                repeats, 2, tick)
    offsets, torch_ms = 1e3 * statistics.median(ours), 1e3 * statistics.median(theirs)
    return {"naive_ms": 1e3 * naive, "offset_ms": offsets, "torch_ms": torch_ms,
            "speedup": 1e3 * naive / offsets, "ratio": offsets / torch_ms}


def worker(threads: int, repeats: int, warmup: int, only: list[str] | None) -> None:
    """Measure everything at one thread count; JSON lines on stdout (progress, then the result)."""
    import numpy
    import torch

    torch.set_num_threads(threads)
    models = measure_models(repeats, warmup, only)
    conv = measure_conv(max(repeats, 5))
    emit(result={
        "threads": threads, "models": models, "conv": conv,
        "torch_threads": torch.get_num_threads(), "blas": blas_pools(),
        "numpy": numpy.__version__, "torch": torch.__version__,
        "pinned": {name: os.environ.get(name) for name in THREAD_VARIABLES},
    })


# --- the parent: one worker per thread count, then the report ------------------------------------

def epoch_estimate(results: list[dict]) -> dict | None:
    """One CIFAR-10 epoch and the RECIPE_EPOCHS-epoch run, from the cifar10 CNN's images/s at
    the largest thread count measured."""
    candidates = [(r["threads"], row) for r in results for row in r["models"] if row["model"] == "cifar10_cnn"]
    if not candidates:
        return None
    threads, row = max(candidates, key=lambda item: item[0])
    ours, theirs = EPOCH_IMAGES / row["tinytorch_images_per_s"], EPOCH_IMAGES / row["torch_images_per_s"]
    return {"threads": threads, "tinytorch_epoch_s": ours, "torch_epoch_s": theirs,
            "tinytorch_run_s": RECIPE_EPOCHS * ours, "torch_run_s": RECIPE_EPOCHS * theirs}


def markdown(results: list[dict], started: str, loads: tuple[str, str], repeats: int, warmup: int) -> str:

    first = results[0]
    lines = [
        "# Training speed: tinytorch against PyTorch CPU",
        "",
        f"Measured {started} by `python -m benchmarks training` (benchmarks/training.py).",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, NumPy {first['numpy']}, PyTorch {first['torch']}. "
        f"Load average (1, 5, 15 min) before: {loads[0]}; after: {loads[1]} (other work on the machine "
        "slows both sides; the steps alternate so that both see the same load).",
        "",
        worker_text() + " Thread pools seen by threadpoolctl:",
        "",
    ]
    for result in results:
        lines.append(f"- {result['threads']} thread(s): {blas_text(result['blas'])}; torch intra-op threads "
                     f"{result['torch_threads']}")
    lines += [
        "",
        "## One training step",
        "",
        f"Forward, cross-entropy, backward, SGD (momentum 0.9) and zero_grad on one batch; median of "
        f"{repeats} steps after {warmup} warm-up steps; ratio = tinytorch's time / PyTorch's (NCHW "
        "float32, the same initial weights). The last column compares the fastest step of each side, "
        "which other work on the machine slows least.",
        "",
        "| model | batch | threads | tinytorch ms/step | PyTorch ms/step | tinytorch images/s | PyTorch images/s "
        "| ratio | ratio of the fastest steps |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        for row in result["models"]:
            lines.append(f"| {row['title']} | {row['batch']} | {result['threads']} | {row['tinytorch_ms']:.1f} | "
                         f"{row['torch_ms']:.1f} | {row['tinytorch_images_per_s']:,.0f} | "
                         f"{row['torch_images_per_s']:,.0f} | {row['ratio']:.2f}× | "
                         f"{row['tinytorch_ms_min'] / row['torch_ms_min']:.2f}× |")
    cifar = [(r["threads"], row["ratio"]) for r in results for row in r["models"] if row["model"] == "cifar10_cnn"]
    if cifar:
        verdicts = ", ".join(f"{ratio:.2f}× at {threads} thread(s)" for threads, ratio in cifar)
        within = all(ratio <= TARGET for _, ratio in cifar)
        lines += ["", f"Target: the cifar10 CNN's step in at most {TARGET}× PyTorch's time. Measured: {verdicts}: "
                      f"{'within' if within else 'NOT within'} the target."]
    case = CONV_CASE
    lines += [
        "",
        "## Module 09's convolution",
        "",
        f"One forward pass of {case['n']} images, {case['c_in']} → {case['c_out']} channels, "
        f"{case['size']}×{case['size']}, 3×3, padding 1, float32 (the digits CNN's second layer): the "
        "definition with four Python loops (`conv2d_naive`, median of up to 3 calls), the loop over "
        "the 9 kernel offsets (`conv2d_forward`, median) and torch's conv2d (median).",
        "",
        "| threads | conv2d_naive ms | conv2d_forward ms | torch conv2d ms | speed-up of the kernel offsets over the loops "
        "| kernel offsets' time / torch's |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        conv = result["conv"]
        lines.append(f"| {result['threads']} | {conv['naive_ms']:,.0f} | {conv['offset_ms']:.2f} | "
                     f"{conv['torch_ms']:.2f} | {conv['speedup']:,.0f}× | {conv['ratio']:.1f}× |")
    epoch = epoch_estimate(results)
    if epoch:
        lines += [
            "",
            "## CIFAR-10: one epoch, and the run to 75%",
            "",
            f"{EPOCH_IMAGES:,} training images at the cifar10 CNN's images/s with {epoch['threads']} thread(s); "
            f"the run assumes the recipe's {RECIPE_EPOCHS} epochs to reach 75% test accuracy (training steps "
            "only: no evaluation, data loading or augmentation counted).",
            "",
            f"| | one epoch | {RECIPE_EPOCHS} epochs |",
            "|---|---:|---:|",
            f"| tinytorch | {duration(epoch['tinytorch_epoch_s'])} | {duration(epoch['tinytorch_run_s'])} |",
            f"| PyTorch CPU | {duration(epoch['torch_epoch_s'])} | {duration(epoch['torch_run_s'])} |",
        ]
    return "\n".join(lines) + "\n"


def show(results: list[dict], console) -> None:
    from rich.table import Table

    table = Table(title="One training step: tinytorch vs PyTorch CPU (median)")
    table.add_column("model", no_wrap=True, min_width=11)
    for column in ("threads", "tinytorch ms", "PyTorch ms", "tinytorch img/s", "PyTorch img/s", "ratio"):
        table.add_column(column, justify="right")
    for result in results:
        for row in result["models"]:
            style = "red" if row["model"] == "cifar10_cnn" and row["ratio"] > TARGET else None
            table.add_row(row["model"], str(result["threads"]), f"{row['tinytorch_ms']:.1f}", f"{row['torch_ms']:.1f}",
                          f"{row['tinytorch_images_per_s']:,.0f}", f"{row['torch_images_per_s']:,.0f}",
                          f"{row['ratio']:.2f}×", style=style)
    console.print(table)
    conv = Table(title="conv2d forward, module 09")
    for column in ("threads", "naive ms", "kernel offsets ms", "torch ms", "offsets vs naive", "offsets vs torch"):
        conv.add_column(column, justify="right")
    for result in results:
        c = result["conv"]
        conv.add_row(str(result["threads"]), f"{c['naive_ms']:,.0f}", f"{c['offset_ms']:.2f}", f"{c['torch_ms']:.2f}",
                     f"{c['speedup']:,.0f}×", f"{c['ratio']:.1f}×")
    console.print(conv)
    epoch = epoch_estimate(results)
    if epoch:
        console.print(f"CIFAR-10 epoch at {epoch['threads']} thread(s): tinytorch {duration(epoch['tinytorch_epoch_s'])}, "
                      f"PyTorch {duration(epoch['torch_epoch_s'])}; {RECIPE_EPOCHS} epochs: "
                      f"{duration(epoch['tinytorch_run_s'])} vs {duration(epoch['torch_run_s'])}")


def save_plot(results: list[dict], path: Path) -> Path | None:
    """A bar chart of the ratios (tinytorch's time / PyTorch's) per model and thread count;
    None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    models = [row["model"] for row in results[0]["models"]]
    figure, axes = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(results)
    for index, result in enumerate(results):
        ratios = {row["model"]: row["ratio"] for row in result["models"]}
        positions = [m + index * width for m in range(len(models))]
        bars = axes.bar(positions, [ratios.get(name, math.nan) for name in models], width,
                        label=f"{result['threads']} thread(s)")
        axes.bar_label(bars, fmt="%.2f×", fontsize=8)
    axes.axhline(1.0, color="grey", linewidth=0.8)
    axes.axhline(TARGET, color="red", linewidth=0.8, linestyle="--", label=f"target for cifar10_cnn ({TARGET}×)")
    axes.set_xticks([m + width * (len(results) - 1) / 2 for m in range(len(models))], models)
    axes.set_ylabel("tinytorch time / PyTorch time per step")
    axes.set_title("Training step: tinytorch vs PyTorch CPU")
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path




def run(threads: list[int], repeats: int, warmup: int, only: list[str] | None, out: Path,
        plot: Path | None, console) -> list[dict]:
    """Measure every thread count, show the tables, write the results (and the plot)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from autograder.files import atomic_write

    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_before = load_average()
    results = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        for count in threads:
            results.append(run_worker(count, repeats, warmup, only, progress, module="benchmarks.training"))
    show(results, console)
    atomic_write(out, markdown(results, started, (load_before, load_average()), repeats, warmup))
    console.print(f"results: {out}")
    if plot is not None:
        saved = save_plot(results, plot)
        console.print(f"plot: {saved}" if saved else f"plot: matplotlib is not installed, {plot} not written "
                      "(pip install matplotlib)")
    return results



def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.training", description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts, each in its own "
                        "process (default 1,2)")
    parser.add_argument("--repeats", type=int, default=20, help="timed steps per model (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--quick", action="store_true", help="3 repeats, 1 warm-up step: a smoke run")
    parser.add_argument("--models", help="comma-separated subset of cifar10_cnn,digits_cnn,digits_mlp")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"the markdown results (default {RESULTS.relative_to(ROOT)})")
    parser.add_argument("--plot", type=Path, help="the bar chart of the ratios (default: training.png beside "
                        "the results when matplotlib is installed)")
    parser.add_argument("--no-plot", action="store_true", help="no bar chart")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    check_run_options(parser, args)
    from benchmarks.models import specs

    known = [spec.key for spec in specs()]
    args.models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    unknown = [m for m in args.models or [] if m not in known]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}: choose from {', '.join(known)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmarks` calls main() with no arguments: the defaults."""
    args = parse_args([] if argv is None else argv)
    if args.worker:
        worker(args.threads[0], args.repeats, args.warmup, args.models)
        return 0
    from rich.console import Console

    plot = None if args.no_plot else (args.plot or args.out.with_suffix(".png"))
    run(args.threads, args.repeats, args.warmup, args.models, args.out, plot, Console())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
