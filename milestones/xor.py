"""Milestone xor (after module 06): hand-computed gradients and an optimizer solve XOR.

XOR is 1 when exactly one of its two inputs is 1. No straight line separates the points
(0, 1) and (1, 0) from (0, 0) and (1, 1), so no single linear layer computes it; a hidden layer
with a nonlinearity does. The network, Linear(2, 8) -> Tanh -> Linear(8, 1) -> Sigmoid, is
trained with binary cross-entropy and Adam. Every gradient comes from a `backward` written by
hand in modules 03-05 (chained by Sequential.backward), every update from the module 06
optimizer: no autograd yet.

    python milestones/xor.py [--seed N] [--epochs N] [--plot PATH] [--quiet]

The script imports only `tinytorch` (and NumPy, which tinytorch is built on); which tinytorch
is decided by whoever runs it, e.g. `PYTHONPATH=<folder holding a tinytorch package>`. It
exits 0 when the network classifies all four points correctly, 1 otherwise.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import traceback
from dataclasses import dataclass, field

NAME = "xor"
HIDDEN = 8          # hidden units
LR = 0.05           # Adam's learning rate
EPOCHS = 300        # full-batch steps; every seed 0..199 is at 100% by epoch 55 at the latest
INPUTS = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
TARGETS = [[0.0], [1.0], [1.0], [0.0]]

EXPLANATION = """\
MILESTONE xor: hand-computed gradients + an optimizer solve XOR
XOR is 1 when exactly one input is 1. No straight line separates (0,1) and (1,0) from (0,0)
and (1,1), so no single linear layer can compute it (module 03's problem); one hidden layer
with a nonlinearity can. This run trains Linear(2, {hidden}) -> Tanh -> Linear({hidden}, 1) -> Sigmoid
with BCELoss and Adam(lr={lr}): the gradients come from your own backward methods (modules
03-05, chained by Sequential.backward), the updates from your optimizer (module 06).
Target: 100% on the 4 points."""


@dataclass
class Result:
    """What one training run reached."""

    seed: int
    epochs: int
    losses: list[float] = field(default_factory=list)          # training loss at each epoch
    accuracies: list[float] = field(default_factory=list)      # accuracy at each epoch
    probabilities: list[float] = field(default_factory=list)   # final p(y = 1) for the 4 points
    loss: float = math.nan                                     # final loss, after training
    accuracy: float = 0.0                                      # final accuracy, 0..1
    seconds: float = 0.0

    @property
    def predictions(self) -> list[int]:
        return [int(p > 0.5) for p in self.probabilities]

    @property
    def passed(self) -> bool:
        return self.accuracy == 1.0 and math.isfinite(self.loss)


def _tinytorch():
    """The tinytorch pieces this milestone needs (an ImportError names the missing module)."""
    from tinytorch.core.activations import Sigmoid, Tanh
    from tinytorch.core.layers import Linear, Sequential, manual_seed
    from tinytorch.core.losses import BCELoss
    from tinytorch.core.optimizers import Adam
    from tinytorch.core.tensor import Tensor

    return Tensor, Linear, Sequential, manual_seed, Tanh, Sigmoid, BCELoss, Adam


def train(seed: int = 0, epochs: int = EPOCHS, hidden: int = HIDDEN, lr: float = LR,
          progress=None) -> Result:
    """Train the XOR network from `seed` for `epochs` full-batch steps and evaluate it.

    `progress(epoch, loss, accuracy)`, if given, is called after each epoch's forward pass.
    """
    import numpy as np

    Tensor, Linear, Sequential, manual_seed, Tanh, Sigmoid, BCELoss, Adam = _tinytorch()
    start = time.perf_counter()
    manual_seed(seed)                                   # the initial weights depend on the seed only
    model = Sequential(Linear(2, hidden), Tanh(), Linear(hidden, 1), Sigmoid())
    loss_fn = BCELoss()
    optimizer = Adam(model.parameters(), lr=lr)
    x, y = Tensor(INPUTS), Tensor(TARGETS)
    targets = np.asarray(TARGETS) > 0.5
    result = Result(seed=seed, epochs=epochs)
    for epoch in range(1, epochs + 1):
        probabilities = model(x)                        # forward: (4, 2) -> (4, 1)
        loss = loss_fn(probabilities, y)
        optimizer.zero_grad()
        model.backward(loss_fn.backward())              # every gradient, by hand, in reverse
        optimizer.step()
        result.losses.append(float(loss.item()))
        result.accuracies.append(float(np.mean((probabilities.data > 0.5) == targets)))
        if progress:
            progress(epoch, result.losses[-1], result.accuracies[-1])
    probabilities = model(x)                            # the trained network, evaluated
    result.loss = float(loss_fn(probabilities, y).item())
    result.probabilities = [float(p) for p in np.asarray(probabilities.data).reshape(-1)]
    result.accuracy = float(np.mean((np.asarray(probabilities.data) > 0.5) == targets))
    result.seconds = time.perf_counter() - start
    return result


# --- showing the result ------------------------------------------------------------------------


def text_chart(values: list[float], width: int = 60, height: int = 8) -> list[str]:
    """The curve as a small ASCII chart, log-scaled (a loss falls over orders of magnitude)."""
    if not values:
        return ["(no epochs)"]
    columns = min(width, len(values))
    buckets = [values[i * len(values) // columns: (i + 1) * len(values) // columns] for i in range(columns)]
    points = [sum(b) / len(b) for b in buckets]
    logs = [math.log10(max(v, 1e-12)) for v in points]
    top, bottom = max(logs), min(logs)
    span = (top - bottom) or 1.0
    rows = [[" "] * columns for _ in range(height)]
    for column, value in enumerate(logs):
        rows[round((top - value) / span * (height - 1))][column] = "*"
    high, low = f"{max(points):.4f}", f"{min(points):.4f}"
    pad = max(len(high), len(low))
    lines = []
    for index, row in enumerate(rows):
        label = high if index == 0 else low if index == height - 1 else ""
        lines.append(f"  {label:>{pad}} |{''.join(row)}".rstrip())
    lines.append(f"  {'':>{pad}} +{'-' * columns}")
    last = f"{len(values)} epochs"
    lines.append(f"  {'':>{pad}}  1{last:>{columns - 1}}")
    return lines


def save_plot(losses: list[float], path: str) -> str | None:
    """Save the loss curve as a PNG at `path`; None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")                           # files only, never a window
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(range(1, len(losses) + 1), losses)
    axes.set_yscale("log")
    axes.set_xlabel("epoch")
    axes.set_ylabel("binary cross-entropy")
    axes.set_title("XOR: Linear -> Tanh -> Linear -> Sigmoid, Adam")
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return os.path.abspath(path)


def verdict(result: Result) -> str:
    """The last line: PASSED or FAILED, with what was reached."""
    reached = f"accuracy {100 * result.accuracy:.1f}% on the 4 XOR points, loss {result.loss:.4f}"
    if result.passed:
        return f"MILESTONE {NAME}: PASSED ({reached})"
    return f"MILESTONE {NAME}: FAILED ({reached}; the target is 100%)"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="xor.py", description="Milestone xor: hand-computed gradients + an optimizer solve XOR.")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the initial weights (default 0)")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"training steps (default {EPOCHS})")
    parser.add_argument("--plot", metavar="PATH", help="save the loss curve as a PNG here (needs matplotlib; "
                        "default: xor_loss.png in the current folder when matplotlib is installed)")
    parser.add_argument("--quiet", action="store_true", help="print only the final MILESTONE line")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the milestone; 0 when it reaches 100%, 1 otherwise."""
    args = parse_args(argv)
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    say(EXPLANATION.format(hidden=HIDDEN, lr=LR))
    say(f"\nseed {args.seed}, {args.epochs} epochs")
    every = max(1, args.epochs // 10)

    def progress(epoch, loss, accuracy):
        if epoch == 1 or epoch % every == 0 or epoch == args.epochs:
            say(f"  epoch {epoch:>{len(str(args.epochs))}}/{args.epochs}  loss {loss:.4f}  accuracy {100 * accuracy:5.1f}%")

    try:
        result = train(seed=args.seed, epochs=args.epochs, progress=progress)
    except ImportError as error:
        print(f"MILESTONE {NAME}: FAILED (cannot import {getattr(error, 'name', None) or 'tinytorch'}: {error}; "
              "complete modules 01-06 first)", flush=True)
        return 1
    except Exception as error:                          # a student's unfinished or broken step
        traceback.print_exc()
        print(f"MILESTONE {NAME}: FAILED (training stopped with {type(error).__name__}: {error})", flush=True)
        return 1

    say(f"\nloss curve ({result.seconds:.2f} s):")
    for line in text_chart(result.losses):
        say(line)
    say("\npredictions:")
    for point, target, p, guess in zip(INPUTS, TARGETS, result.probabilities, result.predictions, strict=True):
        mark = "ok" if guess == int(target[0]) else "WRONG"
        say(f"  x = ({point[0]:.0f}, {point[1]:.0f})  target {target[0]:.0f}  p(1) = {p:.4f}  -> {guess}  {mark}")
    path = args.plot or "xor_loss.png"
    saved = save_plot(result.losses, path)
    if saved:
        say(f"\nplot: the loss curve is saved to {saved}")
    elif args.plot:
        say(f"\nplot: matplotlib is not installed, so {args.plot} was not written (pip install matplotlib)")
    else:
        say("\nplot: matplotlib is not installed; the text chart above is the loss curve (pip install matplotlib for a PNG)")
    print(verdict(result), flush=True)
    return 0 if result.passed else 1


if __name__ == "__main__":
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")        # never crash on a terminal's encoding
    sys.exit(main())
