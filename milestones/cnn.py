"""Milestone cnn (after module 09): a CNN beats the MLP on the same handwritten digits.

The mnist milestone's MLP reads each digit as 784 independent numbers and stops near 94%.
This milestone trains a small convolutional network on the same shipped digits, the same
split, with the same training code (the Trainer of module 08, SGD with momentum, batch 64,
a 10% validation split, the same seed; the learning rate follows a cosine schedule from 0.05
to 0 over 12 epochs), and then trains the mnist milestone's MLP in the
same process, from the same seed, as the baseline:

    Conv2d(1, 16, 3, padding=1) -> ReLU -> MaxPool2d(2)        (N, 16, 14, 14)
    Conv2d(16, 32, 3, padding=1) -> ReLU -> MaxPool2d(2)       (N, 32, 7, 7)
    Flatten -> Linear(1568, 64) -> ReLU -> Linear(64, 10)

Target: at least 96% on the 1,000 test images, and at least 2 points above the MLP.

    python milestones/cnn.py [--data DIR] [--epochs N] [--seed N] [--plot PATH] [--quiet]
                             [--history-json PATH] [--result PATH]

A PyTorch twin with two 3x3 conv layers of 16 and 32 channels reached about 97% in 15
epochs (DATA.md).

What counts as the milestone: as for mnist, a run on the shipped digits or the official MNIST
(the checksums of all four files), evaluated on all their test images, with the MLP baseline
trained on the same data; other data is a path check (digits.py). PASSED and exit code 0 when
both targets are met, FAILED and 1 otherwise; the verdict is also written as JSON (harness.py).

The script imports only `tinytorch` and NumPy besides the milestones' shared `harness` and
`digits` (the data rule and the MLP baseline).
"""

from __future__ import annotations

import os

# One BLAS thread: the matrices are small and several threads slow down on a busy machine.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402

if __package__:                         # imported as milestones.cnn (tests, benchmarks)
    from . import digits, harness
else:                                   # run as a script: this folder is on sys.path
    import digits
    import harness

NAME = "cnn"
TARGET = 0.96       # test accuracy
MARGIN = 0.02       # above the MLP's test accuracy
LR = 0.05           # SGD's learning rate
MOMENTUM = 0.9
BATCH_SIZE = digits.BATCH_SIZE
EPOCHS = 12
VALIDATION = digits.VALIDATION
CLASSES = 10
SPEC = harness.Spec(NAME, after="09", claim="≥ 96% test accuracy and ≥ 2 points above the mnist milestone's "
                    "MLP on the same shipped real MNIST digits (or the official MNIST test set)",
                    target=harness.Target("test_accuracy", ">=", TARGET))

EXPLANATION = """\
MILESTONE cnn: a CNN beats the MLP on the same handwritten digits
The MLP of the mnist milestone gives every pixel its own weights; a convolution slides the same
3x3 kernels over the whole image. The network Conv2d(1, 16, 3) -> ReLU -> MaxPool2d(2) ->
Conv2d(16, 32, 3) -> ReLU -> MaxPool2d(2) -> Flatten -> Linear(1568, 64) -> ReLU -> Linear(64, 10)
learns with the same code as the MLP: cross-entropy, SGD(lr={lr}, momentum={momentum}) with the
learning rate annealed to 0 over the run (cosine), batches of {batch}, your Trainer with {val:.0%} held out. Then the mnist milestone's MLP trains from the same
seed as the baseline. Target: at least {target:.0%} on the test images, and {margin:.0f} points above the MLP."""


@dataclass
class Result(digits.Result):
    """What the CNN reached, and the MLP baseline beside it."""

    mlp_test_accuracy: float = math.nan
    mlp_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return (self.test_accuracy >= TARGET and self.test_accuracy >= self.mlp_test_accuracy + MARGIN - 1e-9
                and math.isfinite(self.test_loss) and self.test_size > 0)


def _tinytorch():
    """The tinytorch pieces this milestone needs (an ImportError names the missing module)."""
    from tinytorch.core.activations import ReLU
    from tinytorch.core.layers import Linear, Sequential, manual_seed
    from tinytorch.core.losses import CrossEntropyLoss
    from tinytorch.core.optimizers import SGD, CosineAnnealingLR
    from tinytorch.core.spatial import Conv2d, Flatten, MaxPool2d
    from tinytorch.core.training import Trainer
    from tinytorch.datasets import load_mnist

    return (ReLU, Linear, Sequential, manual_seed, CrossEntropyLoss, (SGD, CosineAnnealingLR), Conv2d, Flatten,
            MaxPool2d, Trainer, load_mnist)


def build_model():
    """The milestone's CNN (call manual_seed first for reproducible weights)."""
    ReLU, Linear, Sequential, _, _, _, Conv2d, Flatten, MaxPool2d, _, _ = _tinytorch()
    return Sequential(
        Conv2d(1, 16, 3, padding=1), ReLU(), MaxPool2d(2),      # (N, 16, 14, 14)
        Conv2d(16, 32, 3, padding=1), ReLU(), MaxPool2d(2),     # (N, 32, 7, 7)
        Flatten(), Linear(32 * 7 * 7, 64), ReLU(), Linear(64, CLASSES))


def train(seed: int = 0, epochs: int = EPOCHS, data_dir: str | None = None, progress: bool = False,
          say=lambda *a: None, baseline: bool = True) -> Result:
    """Train the CNN from `seed` for `epochs` epochs, evaluate it on the test images, then (with
    `baseline`) train the mnist milestone's MLP on the same data from the same seed for its own epochs."""
    _, _, _, manual_seed, CrossEntropyLoss, (SGD, CosineAnnealingLR), _, _, _, Trainer, _ = _tinytorch()
    data = digits.load(data_dir, flatten=False)                # float32 in [0, 1], (N, 28, 28)
    x_train = data.x_train.reshape(-1, 1, 28, 28)              # NCHW: one grey channel
    x_test = data.x_test.reshape(-1, 1, 28, 28)
    held_out = int(round(len(x_train) * VALIDATION))
    result = Result(seed=seed, epochs=epochs, data=data.describe(), train_size=len(x_train) - held_out,
                    test_size=len(x_test), identity=digits.identity(data))
    say(f"\ndata: {result.data}")
    say(f"seed {seed}, {epochs} epochs, batch {BATCH_SIZE}; {held_out:,} of the training images held out "
        "for validation\n")
    manual_seed(seed)
    model, kernels = harness.fast_kernels(build_model())
    say(f"convolution: {kernels}")
    optimizer = SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    scheduler = CosineAnnealingLR(optimizer, T_max=max(epochs, 1))     # lr from LR down to 0 over the run
    trainer = Trainer(model, CrossEntropyLoss(), optimizer, scheduler=scheduler, seed=seed)
    start = time.perf_counter()
    if epochs > 0:
        history = trainer.fit(x_train, data.y_train, epochs=epochs, batch_size=BATCH_SIZE,
                              validation_split=VALIDATION, progress=progress)
        result.history = [dict(record) for record in history.records]
    result.seconds = time.perf_counter() - start
    scores = trainer.evaluate(x_test, data.y_test)
    result.test_loss, result.test_accuracy = float(scores["loss"]), float(scores["accuracy"])
    result.confusion = harness.confusion_matrix(data.y_test, trainer.predict(x_test).argmax(axis=1))
    if baseline:
        say(f"\nthe baseline: the mnist milestone's MLP, seed {seed}, {digits.EPOCHS} epochs ...")
        mlp = digits.train_mlp(seed=seed, data=data)
        result.mlp_test_accuracy, result.mlp_seconds = mlp.test_accuracy, mlp.seconds
        say(f"MLP test accuracy {100 * mlp.test_accuracy:.1f}% ({mlp.seconds:.1f} s)")
    return result


def verdict(result: Result) -> harness.Verdict:
    """PASSED, FAILED or PATH CHECK, with what was reached, against which MLP, on which data."""
    accuracy = f"test accuracy {100 * result.test_accuracy:.1f}%"
    mlp = f"MLP {100 * result.mlp_test_accuracy:.1f}%"
    reached = (f"on {result.test_size:,} test images after {result.epochs} epochs on "
               f"{result.train_size:,} training images, {result.seconds:.1f} s")
    if result.passed:
        text = f"{accuracy} ≥ {TARGET:.0%} and ≥ {mlp} + 2 {reached}"
    elif result.test_accuracy >= TARGET:
        text = f"{accuracy} < {mlp} + 2 {reached}"
    else:
        text = f"{accuracy} < {TARGET:.0%} {reached}"
    counts, reason = digits.decide(result.identity)
    if counts and not math.isfinite(result.mlp_test_accuracy):
        reason += "; but no MLP baseline was trained to compare with"
    return harness.judge(SPEC, value=result.test_accuracy, data=result.identity, counts=counts, reason=reason,
                         reached=result.passed, works=math.isfinite(result.test_loss) and result.test_size > 0,
                         text=text)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="cnn.py", description="Milestone cnn: a CNN beats the MLP on the same handwritten digits.")
    parser.add_argument("--data", metavar="DIR", help="a folder with the four MNIST files (e.g. the full "
                        "MNIST); default: the digits shipped with tinytorch")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"training epochs (default {EPOCHS})")
    harness.add_options(parser, seed="the weights, the split and the batch order, for the CNN and the MLP "
                        "baseline", plot="cnn_training.png", shows="the curves and the confusion matrix")
    args = parser.parse_args(argv)
    if args.epochs < 0:
        parser.error(f"--epochs must be 0 or more, got {args.epochs}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the milestone: 0 when it is achieved (or a path check runs through), 1 otherwise."""
    args = parse_args(argv)
    say = harness.sayer(args.quiet)
    say(EXPLANATION.format(lr=LR, momentum=MOMENTUM, batch=BATCH_SIZE, val=VALIDATION, target=TARGET,
                           margin=100 * MARGIN))
    try:
        result = train(seed=args.seed, epochs=args.epochs, data_dir=args.data, progress=not args.quiet, say=say)
    except BaseException as error:                     # the harness re-raises what it does not handle
        return harness.stopped(SPEC, error, args.result)

    if result.history:
        say(f"\ntraining curve of the CNN ({result.seconds:.1f} s, "
            f"{result.seconds / len(result.history):.2f} s per epoch):")
    else:
        say("\ntraining curve of the CNN:")
    for line in harness.text_curve(result.history):
        say(line)
    say(f"\nconfusion matrix on the {result.test_size:,} test images (test loss {result.test_loss:.4f}):")
    for line in harness.text_confusion(result.confusion):
        say(line)
    say(f"\nCNN {100 * result.test_accuracy:.1f}% vs MLP {100 * result.mlp_test_accuracy:.1f}% on the same "
        f"test images: {100 * (result.test_accuracy - result.mlp_test_accuracy):+.1f} points")
    path = args.plot or "cnn_training.png"
    saved = harness.plot_training(result.history, result.confusion, path,
                                  title=f"CNN 16-32 channels: test {100 * result.test_accuracy:.1f}%",
                                  baseline=("MLP (test)", result.mlp_test_accuracy))
    harness.say_plot(saved, path, "the curves and the confusion matrix", say)
    if args.history_json:
        harness.write_json(args.history_json, {**asdict(result), "passed": result.passed, "target": TARGET})
    return harness.finish(verdict(result), args.result)


if __name__ == "__main__":
    harness.run_script(main)
