"""Milestone xor (after module 06): hand-computed gradients and an optimizer solve XOR.

XOR is 1 when exactly one of its two inputs is 1. No straight line separates the points
(0, 1) and (1, 0) from (0, 0) and (1, 1), so no single linear layer computes it; a hidden layer
with a nonlinearity does. The network, Linear(2, 8) -> Tanh -> Linear(8, 1) -> Sigmoid, is
trained with binary cross-entropy and Adam. Every gradient comes from a `backward` written by
hand in modules 03-05 (chained by Sequential.backward), every update from the module 06
optimizer: no autograd yet.

    python milestones/xor.py [--seed N] [--epochs N] [--plot PATH] [--quiet]
                             [--history-json PATH] [--result PATH]

What counts as the milestone: every run. XOR's data are its 4 points, all of them evaluated, so
any run that classifies all four correctly proves the claim, whatever its seed or epochs. The
verdict is PASSED and exit code 0 then, FAILED and 1 otherwise; it is also written as JSON
(harness.py) for `tito milestone`.

The script imports only `tinytorch` (and NumPy, which tinytorch is built on) besides the
milestones' shared `harness`; which tinytorch is decided by whoever runs it, e.g.
`PYTHONPATH=<folder holding a tinytorch package>`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field

if __package__:                         # imported as milestones.xor (tests)
    from . import harness
else:                                   # run as a script: this folder is on sys.path
    import harness

NAME = "xor"
HIDDEN = 8          # hidden units
LR = 0.05           # Adam's learning rate
EPOCHS = 300        # full-batch steps; every seed 0..199 is at 100% by epoch 55 at the latest
INPUTS = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
TARGETS = [[0.0], [1.0], [1.0], [0.0]]
SPEC = harness.Spec(NAME, after="06", claim="100% accuracy on the 4 XOR points",
                    target=harness.Target("accuracy", ">=", 1.0))
DATA = harness.Data(name="the 4 XOR points", examples=len(INPUTS), official=True,
                    checksum="sha256:" + hashlib.sha256(json.dumps([INPUTS, TARGETS]).encode()).hexdigest())

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


# --- the verdict and the script ----------------------------------------------------------------------


def verdict(result: Result) -> harness.Verdict:
    """PASSED or FAILED, with what was reached: every run on the 4 points is the milestone."""
    reached = f"accuracy {100 * result.accuracy:.1f}% on the 4 XOR points, loss {result.loss:.4f}"
    return harness.judge(SPEC, value=result.accuracy, data=DATA, counts=True, reached=result.passed,
                         works=math.isfinite(result.loss),
                         reason=f"XOR's data are {DATA.name} ({DATA.checksum}), all of them evaluated: any "
                                "run that classifies them all proves the claim",
                         text=reached if result.passed else f"{reached}; the target is 100%")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="xor.py", description="Milestone xor: hand-computed gradients + an optimizer solve XOR.")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"training steps (default {EPOCHS})")
    harness.add_options(parser, seed="the initial weights", plot="xor_loss.png", shows="the loss curve")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the milestone; 0 when it reaches 100%, 1 otherwise."""
    args = parse_args(argv)
    say = harness.sayer(args.quiet)
    say(EXPLANATION.format(hidden=HIDDEN, lr=LR))
    say(f"\nseed {args.seed}, {args.epochs} epochs")
    every = max(1, args.epochs // 10)

    def progress(epoch, loss, accuracy):
        if epoch == 1 or epoch % every == 0 or epoch == args.epochs:
            say(f"  epoch {epoch:>{len(str(args.epochs))}}/{args.epochs}  loss {loss:.4f}  accuracy {100 * accuracy:5.1f}%")

    try:
        result = train(seed=args.seed, epochs=args.epochs, progress=progress)
    except BaseException as error:                     # the harness re-raises what it does not handle
        return harness.stopped(SPEC, error, args.result)

    say(f"\nloss curve ({result.seconds:.2f} s):")
    for line in harness.text_chart(result.losses):
        say(line)
    say("\npredictions:")
    for point, target, p, guess in zip(INPUTS, TARGETS, result.probabilities, result.predictions, strict=True):
        mark = "ok" if guess == int(target[0]) else "WRONG"
        say(f"  x = ({point[0]:.0f}, {point[1]:.0f})  target {target[0]:.0f}  p(1) = {p:.4f}  -> {guess}  {mark}")
    path = args.plot or "xor_loss.png"
    saved = harness.plot_loss(result.losses, path, title="XOR: Linear -> Tanh -> Linear -> Sigmoid, Adam",
                              ylabel="binary cross-entropy")
    harness.say_plot(saved, path, "the loss curve", say)
    if args.history_json:
        harness.write_json(args.history_json, {**asdict(result), "passed": result.passed})
    return harness.finish(verdict(result), args.result)


if __name__ == "__main__":
    harness.run_script(main)
