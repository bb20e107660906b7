"""Compression (module 18) on the digits milestones' models: accuracy, size and speed, measured.

In a worker process whose BLAS threads are pinned before NumPy loads (as benchmarks/training.py
does; one thread by default, as the milestones run), on the shipped MNIST digits:

- the mnist milestone's MLP (milestones/digits.py: its recipe, its 10% validation split),
  trained, then pruned by global magnitude at several sparsities: the test accuracy after
  pruning and after a short fine-tune that re-applies the masks after every SGD step
  (module 18's apply_masks); dense and CSR bytes (int32 indices); the time of a dense forward
  pass with 90% zeros against the unpruned one (unstructured zeros do not make a dense GEMM
  faster);
- its first Linear replaced by low_rank(rank) without retraining: accuracy and parameters;
- the cnn milestone's CNN (milestones/cnn.py: build_model, its learning rate and cosine
  schedule) trained, then prune_channels(0.5): accuracy after pruning and after a short
  fine-tune, bytes, and the inference time of 256 test images, full and pruned alternating
  (median after a warm-up; module 19 adds confidence intervals);
- knowledge distillation: a small MLP (784 -> 32 -> 10) trained on the labels alone and the
  same MLP, from the same weights and batches, trained on the CNN's softened outputs.

    python -m benchmarks compression          (with the others: python -m benchmarks)
    python -m benchmarks.compression [--threads 1] [--repeats N] [--warmup N] [--quick]

`--quick` trains for an epoch or two on 1,000 images: a smoke run whose accuracies mean
little. Results: benchmarks/results/compression.md, and compression.png beside it (accuracy
against sparsity) when matplotlib is installed.
"""

from __future__ import annotations

import argparse
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
    emit,
    interleaved,
    load_average,
    run_worker,
    ticker,
    worker_text,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "compression.md"
SPARSITIES = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98)
TARGET_SPARSITY = 0.9            # the mnist MLP, within 1 point of its accuracy after fine-tuning
TARGET_POINTS = 1.0
CHANNELS = 0.5                   # the share of the CNN's channels removed
RANKS = (8, 16, 32, 64)
FINE_TUNE_EPOCHS = 6             # the MLP's, after magnitude pruning
CNN_FINE_TUNE_EPOCHS = 2         # the CNN's, after channel pruning
FINE_TUNE_LR = 0.01              # a tenth of the mnist recipe's: the weights are already trained
STUDENT_HIDDEN = 32
TEMPERATURE, ALPHA = 4.0, 0.7
TIMED_IMAGES = 256


# --- the worker ---------------------------------------------------------------------------------

def logits(model, x):
    """The model's outputs for x in evaluation mode, without a graph, 500 images at a time."""
    import numpy as np

    from tinytorch.core.autograd import no_grad
    from tinytorch.core.tensor import Tensor

    model.eval()
    with no_grad():
        out = np.concatenate([model(Tensor(x[i:i + 500])).data for i in range(0, len(x), 500)])
    model.train()
    return out


def accuracy(model, x, y) -> float:
    return float((logits(model, x).argmax(axis=1) == y).mean())


def train_recipe(model, x, y, *, epochs: int, lr: float, seed: int, cosine: bool) -> None:
    """A milestone's recipe: SGD with momentum, batches of 64, the Trainer's 10% validation split
    (and the cosine schedule of the cnn milestone)."""
    from milestones import digits
    from tinytorch.core.losses import CrossEntropyLoss
    from tinytorch.core.optimizers import SGD, CosineAnnealingLR
    from tinytorch.core.training import Trainer

    optimizer = SGD(model.parameters(), lr=lr, momentum=digits.MOMENTUM)
    scheduler = CosineAnnealingLR(optimizer, T_max=max(epochs, 1)) if cosine else None
    trainer = Trainer(model, CrossEntropyLoss(), optimizer, scheduler=scheduler, seed=seed)
    if epochs > 0:
        trainer.fit(x, y, epochs=epochs, batch_size=digits.BATCH_SIZE,
                    validation_split=digits.VALIDATION, progress=False)


def fine_tune(model, x, y, *, epochs: int, seed: int, masks=None) -> None:
    """SGD at FINE_TUNE_LR on the recipe's training part (the same 90%), masks re-applied after
    every step when given."""
    from milestones import digits
    from tinytorch.core.losses import CrossEntropyLoss
    from tinytorch.core.optimizers import SGD
    from tinytorch.core.training import Trainer, train_validation_split
    from tinytorch.perf.compression import apply_masks

    x_fit, y_fit, _ = train_validation_split(x, y, digits.VALIDATION, seed)
    optimizer = SGD(model.parameters(), lr=FINE_TUNE_LR, momentum=digits.MOMENTUM)
    trainer = Trainer(model, CrossEntropyLoss(), optimizer, seed=seed + 1)
    on_batch = None if masks is None else (lambda loss: apply_masks(model, masks))
    for _ in range(epochs):
        trainer.train_epoch(x_fit, y_fit, digits.BATCH_SIZE, on_batch=on_batch)


def measure_mlp(data, epochs: int, fine_epochs: int, sparsities, repeats: int, warmup: int, seed: int) -> dict:
    import copy

    from milestones import digits
    from tinytorch.core.activations import ReLU
    from tinytorch.core.autograd import no_grad
    from tinytorch.core.layers import Linear, Sequential, manual_seed
    from tinytorch.core.tensor import Tensor
    from tinytorch.perf.compression import (
        csr_nbytes,
        dense_nbytes,
        low_rank,
        magnitude_prune,
        sparsity,
    )

    x, y = data["x_train"].reshape(len(data["x_train"]), -1), data["y_train"]
    x_test, y_test = data["x_test"].reshape(len(data["x_test"]), -1), data["y_test"]
    manual_seed(seed)
    model = Sequential(Linear(784, digits.HIDDEN), ReLU(), Linear(digits.HIDDEN, digits.CLASSES))
    tick = ticker("mnist MLP: train, prune, fine-tune", 1 + len(sparsities))
    train_recipe(model, x, y, epochs=epochs, lr=digits.LR, seed=seed, cosine=False)
    tick()
    dense_accuracy = accuracy(model, x_test, y_test)
    rows = []
    for amount in sparsities:
        pruned = copy.deepcopy(model)
        masks = magnitude_prune(pruned, amount, scope="global")
        after_prune = accuracy(pruned, x_test, y_test)
        fine_tune(pruned, x, y, epochs=fine_epochs, seed=seed, masks=masks)
        rows.append({"sparsity": sparsity(pruned), "after_prune": after_prune,
                     "after_fine_tune": accuracy(pruned, x_test, y_test),
                     "dense_bytes": dense_nbytes(pruned), "csr_bytes": csr_nbytes(pruned)})
        if amount == TARGET_SPARSITY:
            ninety = pruned
        tick()
    timing = None
    if TARGET_SPARSITY in sparsities:
        batch = Tensor(x_test[:TIMED_IMAGES])

        def forward(net):
            with no_grad():
                net(batch)

        ours, zeros = interleaved(lambda: forward(model), lambda: forward(ninety), repeats, warmup,
                                   ticker("mnist MLP: dense vs 90% zeros", repeats))
        timing = {"dense_ms": 1e3 * statistics.median(ours), "zeros_ms": 1e3 * statistics.median(zeros)}
    ranks = []
    for rank in RANKS:
        factored = Sequential(low_rank(model[0], rank), model[1], model[2])
        ranks.append({"rank": rank, "parameters": sum(p.size for p in factored.parameters()),
                      "accuracy": accuracy(factored, x_test, y_test)})
    return {"dense_accuracy": dense_accuracy, "dense_bytes": dense_nbytes(model), "csr_bytes": csr_nbytes(model),
            "parameters": sum(p.size for p in model.parameters()), "rows": rows, "timing": timing, "ranks": ranks,
            "epochs": epochs, "fine_tune_epochs": fine_epochs, "singular_values": _energy(model[0].weight.data)}


def _energy(w) -> dict:
    """The share of the squared Frobenius norm in the first r singular values, for each of RANKS."""
    import numpy as np

    s = np.linalg.svd(w.astype(np.float64), compute_uv=False)
    total = float((s ** 2).sum())
    return {str(rank): float((s[:rank] ** 2).sum() / total) for rank in RANKS}


def measure_cnn(data, epochs: int, fine_epochs: int, repeats: int, warmup: int, seed: int):
    """(results, the trained CNN): the CNN trained, its channels pruned, timed."""
    from milestones import cnn
    from tinytorch.core.autograd import no_grad
    from tinytorch.core.layers import manual_seed
    from tinytorch.core.tensor import Tensor
    from tinytorch.perf.compression import dense_nbytes, prune_channels

    x, y = data["x_train"].reshape(-1, 1, 28, 28), data["y_train"]
    x_test, y_test = data["x_test"].reshape(-1, 1, 28, 28), data["y_test"]
    manual_seed(seed)
    model = cnn.build_model()
    tick = ticker("cnn: train, prune, fine-tune", 3)
    start = time.perf_counter()
    train_recipe(model, x, y, epochs=epochs, lr=cnn.LR, seed=seed, cosine=True)
    train_seconds = time.perf_counter() - start
    tick()
    full_accuracy = accuracy(model, x_test, y_test)
    pruned = prune_channels(model, CHANNELS)
    after_prune = accuracy(pruned, x_test, y_test)
    tick()
    fine_tune(pruned, x, y, epochs=fine_epochs, seed=seed)
    tick()
    batch = Tensor(x_test[:TIMED_IMAGES])

    def forward(net):
        net.eval()
        with no_grad():
            net(batch)

    full_times, pruned_times = interleaved(lambda: forward(model), lambda: forward(pruned), repeats, warmup,
                                            ticker("cnn: full vs pruned inference", repeats))
    full_ms, pruned_ms = 1e3 * statistics.median(full_times), 1e3 * statistics.median(pruned_times)
    shapes = [list(p.shape) for p in pruned.parameters() if p.ndim >= 2]
    result = {"accuracy": full_accuracy, "after_prune": after_prune, "after_fine_tune": accuracy(pruned, x_test, y_test),
              "dense_bytes": dense_nbytes(model), "pruned_bytes": dense_nbytes(pruned), "full_ms": full_ms,
              "pruned_ms": pruned_ms, "speedup": full_ms / pruned_ms,
              "fastest_speedup": min(full_times) / min(pruned_times), "epochs": epochs,
              "fine_tune_epochs": fine_epochs, "train_seconds": train_seconds, "pruned_shapes": shapes}
    return result, model


def measure_distillation(data, teacher, epochs: int, seed: int) -> dict:
    """The same small MLP, same initial weights and batches: labels alone (alpha 0) vs distilled."""
    import numpy as np

    from milestones import digits
    from tinytorch.core.activations import ReLU
    from tinytorch.core.layers import Linear, Sequential, manual_seed
    from tinytorch.core.optimizers import SGD
    from tinytorch.core.tensor import Tensor
    from tinytorch.core.training import batch_indices, train_validation_split
    from tinytorch.perf.compression import distillation_loss

    x_fit, y_fit, _ = train_validation_split(data["x_train"], data["y_train"], digits.VALIDATION, seed)
    soft = logits(teacher, x_fit.reshape(-1, 1, 28, 28))                       # (N, 10)
    x_fit, x_test = x_fit.reshape(len(x_fit), -1), data["x_test"].reshape(len(data["x_test"]), -1)
    results = {}
    for name, alpha in (("alone", 0.0), ("distilled", ALPHA)):
        manual_seed(seed + 7)
        student = Sequential(Linear(784, STUDENT_HIDDEN), ReLU(), Linear(STUDENT_HIDDEN, digits.CLASSES))
        optimizer = SGD(student.parameters(), lr=digits.LR, momentum=digits.MOMENTUM)
        order = np.random.default_rng(seed)
        for _ in range(epochs):
            for batch in batch_indices(len(x_fit), digits.BATCH_SIZE, order):
                loss = distillation_loss(student(Tensor(x_fit[batch])), soft[batch], y_fit[batch],
                                         temperature=TEMPERATURE, alpha=alpha)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        results[name] = accuracy(student, x_test, data["y_test"])
    results["parameters"] = sum(p.size for p in student.parameters())
    results["teacher_parameters"] = sum(p.size for p in teacher.parameters())
    results["epochs"] = epochs
    return results


def worker(threads: int, repeats: int, warmup: int, quick: bool) -> None:
    import numpy

    from tinytorch.datasets import load_mnist

    mnist = load_mnist()
    data = {"x_train": mnist.x_train, "y_train": mnist.y_train, "x_test": mnist.x_test, "y_test": mnist.y_test}
    if quick:
        keep = numpy.random.default_rng(0).permutation(len(data["x_train"]))[:1000]   # sorted by digit
        data["x_train"], data["y_train"] = data["x_train"][keep], data["y_train"][keep]
    from milestones import cnn, digits

    mlp_epochs, cnn_epochs = (2, 1) if quick else (digits.EPOCHS, cnn.EPOCHS)
    fine, cnn_fine = (1, 1) if quick else (FINE_TUNE_EPOCHS, CNN_FINE_TUNE_EPOCHS)
    sparsities = (0.5, TARGET_SPARSITY) if quick else SPARSITIES
    mlp = measure_mlp(data, mlp_epochs, fine, sparsities, repeats, warmup, seed=0)
    cnn_result, teacher = measure_cnn(data, cnn_epochs, cnn_fine, repeats, warmup, seed=0)
    distilled = measure_distillation(data, teacher, 2 if quick else digits.EPOCHS, seed=0)
    emit(result={"threads": threads, "quick": quick, "mlp": mlp, "cnn": cnn_result, "distillation": distilled,
                  "data": mnist.describe().replace(f"{ROOT}/", ""), "train_images": len(data["x_train"]), "test_images": len(data["x_test"]),
                  "blas": blas_pools(), "numpy": numpy.__version__,
                  "pinned": {name: os.environ.get(name) for name in THREAD_VARIABLES}})


# --- the parent: the report ---------------------------------------------------------------------

def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def markdown(result: dict, started: str, loads: tuple[str, str], repeats: int, warmup: int) -> str:

    mlp, cnn, dist = result["mlp"], result["cnn"], result["distillation"]
    lines = [
        "# Compression: pruning, low rank and distillation on the digits models",
        "",
        f"Measured {started} by `python -m benchmarks compression` (benchmarks/compression.py)"
        + (", with `--quick` (1,000 training images, an epoch or two: a smoke run, not a measurement)."
           if result["quick"] else "."),
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, Python "
        f"{platform.python_version()}, NumPy {result['numpy']}. Load average (1, 5, 15 min) before: {loads[0]}; "
        f"after: {loads[1]} (other work on the machine slows every timing; the accuracies do not depend on it).",
        "",
        f"{worker_text()} Thread pools seen by threadpoolctl: {blas_text(result['blas'])}.",
        "",
        f"Data: {result['data']}; {result['train_images']:,} training images (10% of them held out by the "
        f"recipes), accuracy on all {result['test_images']:,} test images.",
        "",
        "## The mnist MLP, pruned by magnitude (global) and fine-tuned",
        "",
        f"Linear(784, 128) -> ReLU -> Linear(128, 10), {mlp['parameters']:,} parameters, trained with the mnist "
        f"milestone's recipe ({mlp['epochs']} epochs): test accuracy **{_pct(mlp['dense_accuracy'])}**. Each row "
        f"prunes a copy with `magnitude_prune(model, amount, scope=\"global\")`, then fine-tunes it for "
        f"{mlp['fine_tune_epochs']} epoch(s) of SGD (lr {FINE_TUNE_LR}, momentum 0.9) with `apply_masks` after "
        "every step. Sizes: every parameter as stored (float32) against the weight matrices in CSR (float32 "
        "values, int32 column indices and row pointers) and the biases dense.",
        "",
        "| sparsity | accuracy after pruning | after fine-tuning | change from dense | dense bytes | CSR bytes "
        "| CSR / dense |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| 0% | {_pct(mlp['dense_accuracy'])} | | | {mlp['dense_bytes']:,} | {mlp['csr_bytes']:,} | "
        f"{mlp['csr_bytes'] / mlp['dense_bytes']:.2f} |",
    ]
    for row in mlp["rows"]:
        change = 100 * (row["after_fine_tune"] - mlp["dense_accuracy"])
        lines.append(f"| {_pct(row['sparsity'])} | {_pct(row['after_prune'])} | {_pct(row['after_fine_tune'])} | "
                     f"{change:+.1f} points | {row['dense_bytes']:,} | {row['csr_bytes']:,} | "
                     f"{row['csr_bytes'] / row['dense_bytes']:.2f} |")
    target = [row for row in mlp["rows"] if abs(row["sparsity"] - TARGET_SPARSITY) < 0.005]
    if target:
        change = 100 * (target[0]["after_fine_tune"] - mlp["dense_accuracy"])
        met = change >= -TARGET_POINTS
        lines += ["", f"Target: at {TARGET_SPARSITY:.0%} sparsity, within {TARGET_POINTS:.0f} point of the dense "
                  f"accuracy after fine-tuning. Measured: {change:+.1f} points: "
                  + ("**met**." if met else "**not met**.")]
    if mlp["timing"]:
        t = mlp["timing"]
        lines += ["", f"Speed of the {TARGET_SPARSITY:.0%}-sparse MLP kept as dense arrays: a forward pass of "
                  f"{TIMED_IMAGES} test images took {t['zeros_ms']:.3f} ms against {t['dense_ms']:.3f} ms unpruned "
                  f"({t['dense_ms'] / t['zeros_ms']:.2f}× the speed; median of {repeats} after {warmup} warm-up, "
                  "alternating): a dense GEMM does the same work whatever the values, so unstructured zeros buy no "
                  "speed. They shrink the model only in a sparse format, and CSR with int32 indices is smaller than "
                  "the dense array only above about 50% sparsity (8 bytes per non-zero against 4 per entry)."]
    lines += ["", "## Low rank: the MLP's first Linear as two thin ones, without retraining", "",
              "`low_rank(model[0], rank)`; the rest of the trained model unchanged. Energy: the share of the "
              "matrix's squared Frobenius norm in its first `rank` singular values.", "",
              "| rank | parameters of the model | test accuracy | change | energy kept |", "|---:|---:|---:|---:|---:|"]
    for row in mlp["ranks"]:
        lines.append(f"| {row['rank']} | {row['parameters']:,} | {_pct(row['accuracy'])} | "
                     f"{100 * (row['accuracy'] - mlp['dense_accuracy']):+.1f} points | "
                     f"{_pct(mlp['singular_values'][str(row['rank'])])} |")
    lines += [
        "", "## The cnn milestone's CNN: half of its channels removed", "",
        f"`milestones/cnn.py`'s network and recipe ({cnn['epochs']} epochs, {cnn['train_seconds']:.0f} s of training): "
        f"test accuracy **{_pct(cnn['accuracy'])}**. `prune_channels(model, {CHANNELS})` removes half of the output "
        "channels of both convolutions and half of the hidden Linear's neurons by L1 norm (the next layers' inputs "
        f"cut to match: weight shapes {', '.join('×'.join(map(str, s)) for s in cnn['pruned_shapes'])}), then "
        f"{cnn['fine_tune_epochs']} epoch(s) of SGD (lr {FINE_TUNE_LR}, momentum 0.9) fine-tune it.",
        "",
        "| | test accuracy | parameter bytes | inference, 256 images (median) |",
        "|---|---:|---:|---:|",
        f"| full CNN | {_pct(cnn['accuracy'])} | {cnn['dense_bytes']:,} | {cnn['full_ms']:.1f} ms |",
        f"| half the channels, before fine-tuning | {_pct(cnn['after_prune'])} | {cnn['pruned_bytes']:,} | "
        f"{cnn['pruned_ms']:.1f} ms |",
        f"| half the channels, fine-tuned | {_pct(cnn['after_fine_tune'])} | {cnn['pruned_bytes']:,} | "
        f"{cnn['pruned_ms']:.1f} ms |",
        "",
        f"Speed-up of inference: **{cnn['speedup']:.2f}×** (median of {repeats} alternating forward passes after "
        f"{warmup} warm-up; {cnn['fastest_speedup']:.2f}× between the fastest passes), "
        f"{cnn['dense_bytes'] / cnn['pruned_bytes']:.1f}× fewer bytes; accuracy change after fine-tuning "
        f"{100 * (cnn['after_fine_tune'] - cnn['accuracy']):+.1f} points. Module 19's harness adds the confidence "
        "intervals.",
        "",
        "## Distillation: a small MLP taught by the CNN",
        "",
        f"Linear(784, {STUDENT_HIDDEN}) -> ReLU -> Linear({STUDENT_HIDDEN}, 10) ({dist['parameters']:,} parameters, "
        f"against the CNN's {dist['teacher_parameters']:,}), {dist['epochs']} epochs of the mnist recipe's SGD on the "
        f"same training images, the same initial weights and batches: once on the labels alone, once with "
        f"`distillation_loss(student, cnn_logits, labels, temperature={TEMPERATURE}, alpha={ALPHA})`.",
        "",
        "| student | test accuracy |",
        "|---|---:|",
        f"| trained alone | {_pct(dist['alone'])} |",
        f"| distilled from the CNN | {_pct(dist['distilled'])} |",
        f"| (the CNN teacher) | {_pct(cnn['accuracy'])} |",
    ]
    return "\n".join(lines) + "\n"


def save_plot(result: dict, path: Path) -> Path | None:
    """Test accuracy against sparsity, after pruning and after fine-tuning; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    mlp = result["mlp"]
    x = [0.0] + [100 * row["sparsity"] for row in mlp["rows"]]
    figure, axes = plt.subplots(figsize=(6.5, 4))
    axes.plot(x, [100 * mlp["dense_accuracy"]] + [100 * r["after_prune"] for r in mlp["rows"]], "o--",
              label="pruned (no fine-tuning)")
    axes.plot(x, [100 * mlp["dense_accuracy"]] + [100 * r["after_fine_tune"] for r in mlp["rows"]], "o-",
              label=f"pruned + {mlp['fine_tune_epochs']} epoch(s) of fine-tuning")
    axes.axhline(100 * mlp["dense_accuracy"] - TARGET_POINTS, color="grey", linewidth=0.8, linestyle=":",
                 label=f"dense accuracy - {TARGET_POINTS:.0f} point")
    axes.set_xlabel("sparsity of the weight matrices (%)")
    axes.set_ylabel("test accuracy (%)")
    axes.set_title("mnist MLP: global magnitude pruning")
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def run(threads: int, repeats: int, warmup: int, quick: bool, out: Path, plot: Path | None, console) -> dict:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from autograder.files import atomic_write

    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_before = load_average()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        result = run_worker(threads, repeats, warmup, None, progress, module="benchmarks.compression",
                            extra=["--quick"] if quick else [])
    mlp, cnn = result["mlp"], result["cnn"]
    console.print(f"mnist MLP {_pct(mlp['dense_accuracy'])}; "
                  + ", ".join(f"{_pct(r['sparsity'])} sparse: {_pct(r['after_fine_tune'])}" for r in mlp["rows"]))
    console.print(f"cnn {_pct(cnn['accuracy'])}; half the channels {_pct(cnn['after_fine_tune'])} after fine-tuning, "
                  f"{cnn['speedup']:.2f}× faster inference; distilled student "
                  f"{_pct(result['distillation']['distilled'])} vs {_pct(result['distillation']['alone'])} alone")
    atomic_write(out, markdown(result, started, (load_before, load_average()), repeats, warmup))
    console.print(f"results: {out}")
    if plot is not None:
        saved = save_plot(result, plot)
        console.print(f"plot: {saved}" if saved else f"plot: matplotlib is not installed, {plot} not written")
    return result


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compression", description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1", help="the BLAS thread count of the worker (default 1, as the "
                        "milestones run)")
    parser.add_argument("--repeats", type=int, default=20, help="timed forward passes of each model (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed passes first (default 3)")
    parser.add_argument("--quick", action="store_true", help="1,000 training images, an epoch or two, 3 repeats: "
                        "a smoke run")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"the markdown results (default "
                        f"{RESULTS.relative_to(ROOT)})")
    parser.add_argument("--no-plot", action="store_true", help="no plot of accuracy against sparsity")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    check_run_options(parser, args)
    if len(args.threads) != 1:
        parser.error(f"--threads takes one thread count here, got {','.join(map(str, args.threads))}")
    return args


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmarks` calls main() with no arguments: the defaults."""
    args = parse_args([] if argv is None else argv)
    if args.worker:
        worker(args.threads[0], args.repeats, args.warmup, args.quick)
        return 0
    from rich.console import Console

    plot = None if args.no_plot else args.out.with_suffix(".png")
    run(args.threads[0], args.repeats, args.warmup, args.quick, args.out, plot, Console())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
