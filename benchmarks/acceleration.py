"""Module 15: the loop ladders, and the cifar10 training step with module 09's and module 15's
convolution against PyTorch CPU, measured in the same run.

For each thread count (1 and 2), a fresh worker process pins its threads before NumPy and
torch load (benchmarks/training.py's machinery) and times one training step (forward,
cross-entropy, backward, SGD with momentum, zero_grad) of the cifar10 milestone's CNN three
ways, from the same initial weights on the same batch, alternating step by step so that all
three see the same load:

- module 09's layers as the milestone builds them (a loop over the kernel offsets);
- the same model after `accelerate` (module 15: im2col and one GEMM, or Winograd's F(2x2, 3x3) from
  32 channels on, pooling by strided slices, BatchNorm as one operation);
- its PyTorch twin (benchmarks/models.py), with PyTorch's default CPU convolution (oneDNN's
  direct convolution kernels);
- the same twin with oneDNN switched off (`torch.backends.mkldnn.enabled = False`): PyTorch's
  own im2col and GEMM convolution, module 15's first recipe.

The same four steps of a small CIFAR CNN without BatchNorm (conv 3->32, pool, conv 32->64, pool,
4096->128->10, batch 64) follow, for comparison: mostly GEMMs, where the cifar10 CNN adds
BatchNorm, ReLU and pooling over four times the activations.

The first step's losses of the two tinytorch models must agree (else the comparison is void).
The first worker also climbs the ladders, each rung checked against the one below it:

- matmul of 64x64 float32 matrices: three Python loops, blocks of 16, blocks of 64, np.matmul;
- a 3x3 convolution (2 images, 4 -> 8 channels, 10x10, padding 1, float32): seven loops
  (conv2d_definition), module 09's four loops (conv2d_naive), module 09's kernel offsets, im2col
  and one GEMM, torch's conv2d.

Then one CIFAR-10 epoch (50,000 images) and the 25 epochs of the recipe, from the accelerated
step at each thread count.

    python -m benchmarks acceleration         (with the others: python -m benchmarks)
    python -m benchmarks.acceleration [--repeats N] [--warmup N] [--threads 1,2] [--quick]
                                      [--plot PATH | --no-plot] [--out PATH]

Results: benchmarks/results/acceleration.md (and acceleration.png beside it when matplotlib is
installed). The workers unset OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE and keep freed memory for
the next array (benchmarks/common.py's worker_env), as training.py's do.
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
    load_average,
    run_worker,
    ticker,
    worker_text,
)
from benchmarks.training import EPOCH_IMAGES, RECIPE_EPOCHS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "acceleration.md"
TARGETS = {1: 1.1, 2: 1.5}          # the accelerated cifar10 step, in PyTorch's time, per thread count
LADDER_TARGET = 100                 # im2col's speed-up over the seven loops, at least
MATMUL_SIZE = 64
CONV_CASE = dict(n=2, c_in=4, c_out=8, size=10)
PARTS = ("step", "reference", "ladder")


# --- the worker ----------------------------------------------------------------------------------

def interleaved(fns: list, repeats: int, warmup: int, tick=lambda: None, cpu: list | None = None) -> list[list[float]]:
    """Time each of `fns` in turn, `repeats` rounds after `warmup` untimed rounds: all see the
    same load on a shared machine. One list of seconds per function; with `cpu` (a list),
    one list per function of the process's CPU seconds is appended to it too (time taken
    from this process by others does not count there: a figure less moved by a busy machine)."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times, cpu_times = [[] for _ in fns], [[] for _ in fns]
    for _ in range(repeats):
        for fn, record, cpu_record in zip(fns, times, cpu_times):
            start, cpu_start = time.perf_counter(), time.process_time()
            fn()
            record.append(time.perf_counter() - start)
            cpu_record.append(time.process_time() - cpu_start)
        tick()
    if cpu is not None:
        cpu.extend(cpu_times)
    return times


def reference_spec():
    """A small CIFAR CNN without BatchNorm, batch 64: conv 3->32, ReLU, pool, conv 32->64, ReLU,
    pool, 4096->128->10. Its step is mostly GEMMs, the cifar10 CNN's also BatchNorm, ReLU and
    pooling over four times the activations."""
    from benchmarks.models import Spec, milestone

    def build():
        from tinytorch.core.activations import ReLU
        from tinytorch.core.layers import Linear, Sequential
        from tinytorch.core.spatial import Conv2d, Flatten, MaxPool2d

        return Sequential(Conv2d(3, 32, 3, padding=1), ReLU(), MaxPool2d(2), Conv2d(32, 64, 3, padding=1), ReLU(),
                          MaxPool2d(2), Flatten(), Linear(64 * 8 * 8, 128), ReLU(), Linear(128, 10))

    cifar10 = milestone("cifar10")
    return Spec("reference_cnn", "small CIFAR CNN without BatchNorm", build, (3, 32, 32), 64, cifar10.LR)


def steps(seed: int = 0, spec=None):
    """(module 09 step, accelerated step, torch step, torch step without oneDNN): one training
    step each of `spec`'s model (default: the cifar10 CNN), from the same initial weights on the
    same batch; each returns its loss."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from benchmarks.models import batch, pair, specs
    from tinytorch.core.losses import CrossEntropyLoss
    from tinytorch.core.optimizers import SGD
    from tinytorch.core.tensor import Tensor
    from tinytorch.perf.acceleration import accelerate

    spec = spec or next(s for s in specs() if s.key == "cifar10_cnn")
    model, twin = pair(spec, seed)
    fast, _ = pair(spec, seed)
    accelerate(fast)
    x, y = batch(spec, seed)
    labels = torch.from_numpy(y)

    def tinytorch_step(net):
        optimizer = SGD(net.parameters(), lr=spec.lr, momentum=0.9)

        def step():
            optimizer.zero_grad()
            loss = CrossEntropyLoss()(net(Tensor(x)), Tensor(y, dtype=np.int64))
            loss.backward()
            optimizer.step()
            return loss.item()

        return step

    def torch_step(net, onednn: bool):
        optimizer = torch.optim.SGD(net.parameters(), lr=spec.lr, momentum=0.9)

        def step():
            previous = torch.backends.mkldnn.enabled
            torch.backends.mkldnn.enabled = onednn
            try:
                optimizer.zero_grad()
                loss = F.cross_entropy(net(torch.from_numpy(x)), labels)
                loss.backward()
                optimizer.step()
            finally:
                torch.backends.mkldnn.enabled = previous
            return loss.item()

        return step

    _, gemm_twin = pair(spec, seed)
    return tinytorch_step(model), tinytorch_step(fast), torch_step(twin, True), torch_step(gemm_twin, False)


def conv_kernels(spec, seed: int = 0) -> list[str]:
    """How the accelerated model computes each of its convolutions, in order, as one forward
    pass records it: "3→32 im2col", "32→64 winograd", ..."""
    from benchmarks.models import batch, pair
    from tinytorch.core.tensor import Tensor
    from tinytorch.perf.acceleration import accelerate

    model, _ = pair(spec, seed)
    node, found, seen = accelerate(model)(Tensor(batch(spec, seed)[0])), [], set()
    stack = [node]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node._op in ("conv2d_im2col", "conv2d_winograd"):
            c_out, c_in = node._parents[1].shape[:2]
            found.append(f"{c_in}→{c_out} {node._op.removeprefix('conv2d_')}")
        stack.extend(node._parents)
    return found[::-1]


def measure_step(repeats: int, warmup: int, spec=None) -> dict:
    """Median ms per step of the four, and their ratios; the first losses checked equal."""
    from benchmarks.models import specs

    spec = spec or next(s for s in specs() if s.key == "cifar10_cnn")
    slow, fast, theirs, theirs_gemm = steps(spec=spec)
    first = [slow(), fast(), theirs(), theirs_gemm()]
    if not all(math.isclose(first[0], loss, rel_tol=1e-4) for loss in first[1:]):
        raise AssertionError(f"the first losses differ (module 09, accelerated, torch, torch without oneDNN: "
                             f"{first}): the comparison would be void")
    cpu: list = []
    times = interleaved([slow, fast, theirs, theirs_gemm], repeats, warmup, ticker(f"{spec.key} step", repeats), cpu)
    ms = [1e3 * statistics.median(t) for t in times]
    cpu_ms = [1e3 * statistics.median(t) for t in cpu]
    return {"batch": spec.batch, "module09_ms": ms[0], "im2col_ms": ms[1], "torch_ms": ms[2], "torch_gemm_ms": ms[3],
            "speedup": ms[0] / ms[1], "ratio_module09": ms[0] / ms[2], "ratio_im2col": ms[1] / ms[2],
            "ratio_im2col_gemm": ms[1] / ms[3], "fastest_ratio_im2col": min(times[1]) / min(times[2]),
            "first_losses": first, "cpu_ms": dict(zip(("module09", "im2col", "torch", "torch_gemm"), cpu_ms)),
            "kernels": conv_kernels(spec)}


def _median_ms(fn, calls: int) -> float:
    return 1e3 * statistics.median(interleaved([fn], calls, 0)[0])


def measure_ladder(repeats: int) -> dict:
    """The matmul and convolution ladders (ms per call, median), each rung checked against
    the rung below it before it is timed."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from tinytorch.core.spatial import conv2d_forward, conv2d_naive
    from tinytorch.core.tensor import Tensor
    from tinytorch.perf.acceleration import (
        conv2d_definition,
        conv2d_im2col,
        matmul_blocked,
        matmul_loops,
    )

    rng = np.random.default_rng(0)
    tick = ticker("ladders", 2)
    a = rng.standard_normal((MATMUL_SIZE, MATMUL_SIZE)).astype(np.float32)
    b = rng.standard_normal((MATMUL_SIZE, MATMUL_SIZE)).astype(np.float32)
    reference = matmul_loops(a, b)
    matmul = [("three Python loops", lambda: matmul_loops(a, b), 1),
              ("blocks of 16", lambda: matmul_blocked(a, b, 16), repeats),
              ("blocks of 64 (one block)", lambda: matmul_blocked(a, b, 64), repeats),
              ("np.matmul (BLAS)", lambda: a @ b, repeats)]
    for name, fn, _ in matmul[1:]:
        if not np.allclose(fn(), reference, rtol=1e-4, atol=1e-4):
            raise AssertionError(f"matmul {name} disagrees with the loops: the comparison would be void")
    matmul_rows = [{"name": name, "ms": _median_ms(fn, calls)} for name, fn, calls in matmul]
    tick()

    case = CONV_CASE
    x = rng.standard_normal((case["n"], case["c_in"], case["size"], case["size"])).astype(np.float32)
    w = rng.standard_normal((case["c_out"], case["c_in"], 3, 3)).astype(np.float32)
    xt, wt = Tensor(x), Tensor(w)
    xtorch, wtorch = torch.from_numpy(x), torch.from_numpy(w)
    reference = conv2d_definition(x, w, None, 1, 1)
    conv = [("seven Python loops (conv2d_definition)", lambda: conv2d_definition(x, w, None, 1, 1), 1),
            ("four loops and np.sum (module 09's conv2d_naive)", lambda: conv2d_naive(x, w, None, 1, 1), 1),
            ("9 kernel offsets (module 09's conv2d_forward)", lambda: conv2d_forward(x, w, None, 1, 1), repeats),
            ("im2col and one GEMM (conv2d_im2col)", lambda: conv2d_im2col(xt, wt, None, 1, 1).data, repeats),
            ("torch's conv2d", lambda: F.conv2d(xtorch, wtorch, padding=1).numpy(), repeats)]
    for name, fn, _ in conv[1:]:
        if not np.allclose(fn(), reference, rtol=1e-4, atol=1e-4):
            raise AssertionError(f"convolution {name} disagrees with the seven loops: the comparison would be void")
    conv_rows = [{"name": name, "ms": _median_ms(fn, calls)} for name, fn, calls in conv]
    tick()
    for rows in (matmul_rows, conv_rows):
        for row in rows:
            row["speedup"] = rows[0]["ms"] / row["ms"]
    return {"matmul": matmul_rows, "conv": conv_rows}


def worker(threads: int, repeats: int, warmup: int, parts: list[str]) -> None:
    """Measure `parts` at one thread count; JSON lines on stdout (progress, then the result)."""
    import numpy
    import torch

    torch.set_num_threads(threads)
    result = {"threads": threads, "torch_threads": torch.get_num_threads(), "blas": blas_pools(),
              "numpy": numpy.__version__, "torch": torch.__version__,
              "pinned": {name: os.environ.get(name) for name in THREAD_VARIABLES}}
    if "step" in parts:
        result["step"] = measure_step(repeats, warmup)
    if "reference" in parts:
        result["reference"] = measure_step(repeats, warmup, reference_spec())
    if "ladder" in parts:
        result["ladder"] = measure_ladder(max(repeats, 5))
    emit(result=result)


# --- the report ----------------------------------------------------------------------------------

def epochs(results: list[dict]) -> list[dict]:
    """One CIFAR-10 epoch and the recipe's run, per thread count, from each step's images/s."""
    rows = []
    for result in results:
        step = result["step"]
        per_image = {key: step[f"{key}_ms"] / 1e3 / step["batch"] for key in ("module09", "im2col", "torch")}
        rows.append({"threads": result["threads"],
                     **{f"{key}_epoch_s": EPOCH_IMAGES * seconds for key, seconds in per_image.items()}})
    return rows


def markdown(results: list[dict], started: str, loads: tuple[str, str], repeats: int, warmup: int) -> str:

    first = results[0]
    lines = [
        "# Module 15: the loop ladders, and the cifar10 step with im2col",
        "",
        f"Measured {started} by `python -m benchmarks acceleration` (benchmarks/acceleration.py).",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, NumPy {first['numpy']}, PyTorch {first['torch']}. "
        f"Load average (1, 5, 15 min) before: {loads[0]}; after: {loads[1]} (other work on the machine slows "
        "every side; the three steps alternate so that all see the same load).",
        "",
        worker_text() + " Thread pools seen by threadpoolctl:",
        "",
    ]
    for result in results:
        lines.append(f"- {result['threads']} thread(s): {blas_text(result['blas'])}; torch intra-op threads "
                     f"{result['torch_threads']}")
    lines += [
        "",
        "## The cifar10 CNN's training step",
        "",
        "Forward, cross-entropy, backward, SGD (momentum 0.9) and zero_grad on one batch of 64 images, from the "
        f"same initial weights: median of {repeats} steps after {warmup} warm-up steps. PyTorch (NCHW float32) "
        "twice: as it comes (its CPU convolution is oneDNN's direct convolution) and with oneDNN off (its own "
        "im2col and GEMM, on its BLAS: module 15's first recipe). Module 15 = the model after `accelerate`: "
        f"its convolutions ({', '.join(first['step']['kernels'])}), pooling by strided slices, BatchNorm as "
        "one operation. Ratio = the time over PyTorch's; the "
        "fastest-steps column compares the fastest step of each side, which other work on the machine slows "
        "least.",
        "",
        "| threads | module 09 ms/step | module 15 ms/step | PyTorch ms/step | PyTorch without oneDNN ms/step "
        "| module 15's speed-up over module 09 | module 09 / PyTorch | module 15 / PyTorch "
        "| module 15 / PyTorch, fastest steps | module 15 / PyTorch without oneDNN |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        s = result["step"]
        lines.append(f"| {result['threads']} | {s['module09_ms']:.1f} | {s['im2col_ms']:.1f} | {s['torch_ms']:.1f} | "
                     f"{s['torch_gemm_ms']:.1f} | {s['speedup']:.2f}× | {s['ratio_module09']:.2f}× | "
                     f"{s['ratio_im2col']:.2f}× | {s['fastest_ratio_im2col']:.2f}× | "
                     f"{s['ratio_im2col_gemm']:.2f}× |")
    lines += ["", "The same steps in CPU time of the worker process (median; time the machine gave to other "
              "processes is not counted, so these move less with the load, though a busy machine still slows "
              "caches and memory; with 2 threads it is the sum of both threads' time):", "",
              "| threads | module 09 CPU ms | module 15 CPU ms | PyTorch CPU ms | PyTorch without oneDNN CPU ms "
              "| module 15 / module 09 | module 15 / PyTorch | module 15 / PyTorch without oneDNN |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for result in results:
        c = result["step"]["cpu_ms"]
        lines.append(f"| {result['threads']} | {c['module09']:.1f} | {c['im2col']:.1f} | {c['torch']:.1f} | "
                     f"{c['torch_gemm']:.1f} | {c['im2col'] / c['module09']:.2f}× | {c['im2col'] / c['torch']:.2f}× | "
                     f"{c['im2col'] / c['torch_gemm']:.2f}× |")
    verdicts = []
    for result in results:
        target = TARGETS.get(result["threads"])
        if target is not None:
            ratio = result["step"]["ratio_im2col"]
            verdicts.append(f"{ratio:.2f}× at {result['threads']} thread(s) (target ≤ {target}×: "
                            f"{'met' if ratio <= target else 'NOT met'})")
    if verdicts:
        lines += ["", "Targets for the accelerated step: " + "; ".join(verdicts) + "."]
    lines += ["", "First losses (module 09, accelerated, PyTorch, PyTorch without oneDNN), checked equal "
              "before timing: "
              + "; ".join(", ".join(f"{loss:.5f}" for loss in r["step"]["first_losses"]) + f" at {r['threads']} "
                          "thread(s)" for r in results) + "."]
    references = [r for r in results if "reference" in r]
    if references:
        lines += ["", "For comparison, the same four steps of a small CIFAR CNN without BatchNorm (conv 3→32, ReLU, "
                  "pool, conv 32→64, ReLU, pool, 4096→128→10, batch 64): mostly GEMMs, where the cifar10 CNN also "
                  "normalizes, rectifies and pools four times as many activations, passes over memory in which "
                  "a NumPy framework pays for every temporary array.", "",
                  "| threads | module 09 ms/step | module 15 ms/step | PyTorch ms/step | PyTorch without oneDNN ms/step "
                  "| module 15 / PyTorch | module 15 / PyTorch without oneDNN |", "|---:|---:|---:|---:|---:|---:|---:|"]
        for result in references:
            r = result["reference"]
            lines.append(f"| {result['threads']} | {r['module09_ms']:.1f} | {r['im2col_ms']:.1f} | "
                         f"{r['torch_ms']:.1f} | {r['torch_gemm_ms']:.1f} | {r['ratio_im2col']:.2f}× | "
                         f"{r['ratio_im2col_gemm']:.2f}× |")
    lines += ["", "## CIFAR-10: one epoch, and the run to 75%", "",
              f"{EPOCH_IMAGES:,} training images at each step's images/s; the run is the recipe's {RECIPE_EPOCHS} "
              "epochs (training steps only: no evaluation, data loading or augmentation counted).", "",
              f"| threads | module 09: epoch | {RECIPE_EPOCHS} epochs | module 15: epoch | {RECIPE_EPOCHS} epochs "
              f"| PyTorch: epoch | {RECIPE_EPOCHS} epochs |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for row in epochs(results):
        cells = [f"{duration(row[f'{key}_epoch_s'])} | {duration(RECIPE_EPOCHS * row[f'{key}_epoch_s'])}"
                 for key in ("module09", "im2col", "torch")]
        lines.append(f"| {row['threads']} | " + " | ".join(cells) + " |")
    ladder = next((r["ladder"] for r in results if "ladder" in r), None)
    if ladder:
        case = CONV_CASE
        conv_speedup = next(row["speedup"] for row in ladder["conv"] if row["name"].startswith("im2col"))
        lines += ["", f"## The ladders ({first['threads']} thread(s))", "",
                  f"Each rung's result checked against the rung below it. Median of {max(repeats, 5)} calls (one "
                  "call for the Python loops).", "",
                  f"Matmul of two {MATMUL_SIZE}×{MATMUL_SIZE} float32 matrices:", "",
                  "| implementation | ms | speed-up over the loops |", "|---|---:|---:|"]
        lines += [f"| {row['name']} | {row['ms']:.3f} | {row['speedup']:,.0f}× |" for row in ladder["matmul"]]
        lines += ["", f"A 3×3 convolution, {case['n']} images, {case['c_in']} → {case['c_out']} channels, "
                  f"{case['size']}×{case['size']}, padding 1, float32, forward only:", "",
                  "| implementation | ms | speed-up over the seven loops |", "|---|---:|---:|"]
        lines += [f"| {row['name']} | {row['ms']:.3f} | {row['speedup']:,.0f}× |" for row in ladder["conv"]]
        lines += ["", f"Target: im2col at least {LADDER_TARGET}× faster than the seven loops. Measured "
                  f"{conv_speedup:,.0f}×: {'met' if conv_speedup >= LADDER_TARGET else 'NOT met'}."]
    return "\n".join(lines) + "\n"


def save_plot(results: list[dict], path: Path) -> Path | None:
    """Two panels: the step's ms per thread count (module 09, im2col, PyTorch) and the ladders'
    speed-ups (log scale); None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    ladder = next((r["ladder"] for r in results if "ladder" in r), None)
    figure, axes = plt.subplots(1, 2 if ladder else 1, figsize=(11 if ladder else 6, 4.2), squeeze=False)
    step_axes = axes[0][0]
    kinds = [("module09_ms", "module 09"), ("im2col_ms", "module 15 (accelerate)"), ("torch_ms", "PyTorch"),
             ("torch_gemm_ms", "PyTorch without oneDNN")]
    width = 0.8 / len(kinds)
    for index, (key, label) in enumerate(kinds):
        positions = [t + index * width for t in range(len(results))]
        bars = step_axes.bar(positions, [r["step"][key] for r in results], width, label=label)
        step_axes.bar_label(bars, fmt="%.0f", fontsize=8)
    step_axes.set_xticks([t + width * (len(kinds) - 1) / 2 for t in range(len(results))],
                         [f"{r['threads']} thread(s)" for r in results])
    step_axes.set_ylabel("ms per training step (batch 64)")
    step_axes.set_title("cifar10 CNN training step")
    step_axes.set_ylim(0, 1.35 * max(r["step"][key] for r in results for key, _ in kinds))
    step_axes.legend(fontsize=8, ncol=2, loc="upper center")
    if ladder:
        ladder_axes = axes[0][1]
        rows = [("matmul: " + row["name"], row["speedup"]) for row in ladder["matmul"][1:]]
        rows += [("conv: " + row["name"].split(" (")[0], row["speedup"]) for row in ladder["conv"][1:]]
        bars = ladder_axes.barh([name for name, _ in rows], [speedup for _, speedup in rows],
                                color=["tab:blue"] * (len(ladder["matmul"]) - 1)
                                + ["tab:orange"] * (len(ladder["conv"]) - 1))
        ladder_axes.bar_label(bars, fmt="%.0f×", fontsize=8)
        ladder_axes.set_xscale("log")
        ladder_axes.invert_yaxis()
        ladder_axes.set_xlabel("speed-up over the Python loops (log scale)")
        ladder_axes.set_title("The ladders")
        ladder_axes.tick_params(axis="y", labelsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def run(threads: list[int], repeats: int, warmup: int, out: Path, plot: Path | None, console) -> list[dict]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from autograder.files import atomic_write

    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_before = load_average()
    results = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        for index, count in enumerate(threads):
            parts = list(PARTS) if index == 0 else ["step", "reference"]
            results.append(run_worker(count, repeats, warmup, parts, progress, module="benchmarks.acceleration"))
    for result in results:
        s = result["step"]
        console.print(f"{result['threads']} thread(s): module 09 {s['module09_ms']:.1f} ms/step, module 15 "
                      f"{s['im2col_ms']:.1f}, PyTorch {s['torch_ms']:.1f} (without oneDNN {s['torch_gemm_ms']:.1f}): "
                      f"module 15 {s['ratio_im2col']:.2f}× PyTorch's time ({s['speedup']:.2f}× faster than module 09)")
    atomic_write(out, markdown(results, started, (load_before, load_average()), repeats, warmup))
    console.print(f"results: {out}")
    if plot is not None:
        saved = save_plot(results, plot)
        console.print(f"plot: {saved}" if saved else f"plot: matplotlib is not installed, {plot} not written")
    return results


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.acceleration", description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts, each in its own process "
                        "(default 1,2)")
    parser.add_argument("--repeats", type=int, default=20, help="timed training steps (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--quick", action="store_true", help="3 repeats, 1 warm-up step: a smoke run")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the markdown results (default "
                        f"{RESULTS.relative_to(ROOT)})")
    parser.add_argument("--plot", type=Path, help="the bar charts (default: acceleration.png beside the results "
                        "when matplotlib is installed)")
    parser.add_argument("--no-plot", action="store_true", help="no chart")
    parser.add_argument("--models", help=argparse.SUPPRESS)          # the worker's parts: step,ladder
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    check_run_options(parser, args)
    args.parts = [p for p in (args.models or ",".join(PARTS)).split(",") if p in PARTS]
    return args


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmarks` calls main() with no arguments: the defaults."""
    args = parse_args([] if argv is None else argv)
    if args.worker:
        worker(args.threads[0], args.repeats, args.warmup, args.parts)
        return 0
    from rich.console import Console

    plot = None if args.no_plot else (args.plot or args.out.with_suffix(".png"))
    run(args.threads, args.repeats, args.warmup, args.out, plot, Console())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
