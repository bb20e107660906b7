"""The handwritten digits shared by the mnist and cnn milestones: which data counts, and the MLP.

Both milestones claim a test accuracy on the same digits: the 5,000 real MNIST digits shipped
with tinytorch (`tinytorch.datasets.load_mnist()`: 4,000 train, 1,000 test) or the official
MNIST (60,000 and 10,000, from `--data DIR` or the cache folder). Which of the two a run used is
decided by the checksums of all four files (the reader's `origin`); a run on any other data is
a path check. Neither milestone has an option that shrinks the test set.

The mnist milestone's MLP is here too, because the cnn milestone trains it as its baseline:
Linear(784, 128) -> ReLU -> Linear(128, 10), SGD(lr=0.1, momentum=0.9), batches of 64, 20
epochs, 10% of the training images held out for validation by the Trainer.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

if __package__:                         # imported as milestones.digits (tests, benchmarks)
    from . import harness
else:                                   # run from a script: this folder is on sys.path
    import harness

TARGET = 0.92       # the mnist milestone's test accuracy for this MLP
HIDDEN = 128        # hidden units
LR = 0.1            # SGD's learning rate
MOMENTUM = 0.9
BATCH_SIZE = 64
EPOCHS = 20
VALIDATION = 0.1    # the fraction of the training images held out to watch generalization
CLASSES = 10
NAMES = {"shipped": "the MNIST digits shipped with tinytorch", "official": "the official MNIST test set"}


@dataclass
class Result:
    """What one training run on the digits reached."""

    seed: int
    epochs: int
    data: str = ""                                             # which images, from where
    train_size: int = 0                                        # images trained on (validation held out)
    test_size: int = 0
    history: list[dict] = field(default_factory=list)          # the Trainer's record of each epoch
    test_loss: float = math.nan
    test_accuracy: float = 0.0
    confusion: list[list[int]] = field(default_factory=list)   # [true digit][predicted digit]
    seconds: float = 0.0                                       # the training time
    identity: harness.Data = harness.NO_DATA                   # the test set, by checksum

    @property
    def passed(self) -> bool:
        """The MLP reached the mnist milestone's target (on whatever data it ran)."""
        return self.test_accuracy >= TARGET and math.isfinite(self.test_loss) and self.test_size > 0


def identity(data) -> harness.Data:
    """The test set of `data` (a tinytorch.datasets.MNIST) as a milestone names it."""
    official = data.origin in NAMES
    name = NAMES[data.origin] if official else f"MNIST-format data from {data.source}"
    return harness.Data(name=name, checksum=data.test_checksum, official=official, examples=len(data.x_test))


def decide(data: harness.Data) -> tuple[bool, str]:
    """(whether a run on `data` is the milestone, the sentence saying why)."""
    if data.official:
        return True, (f"all {data.examples:,} test images of {data.name} ({data.checksum}) were evaluated, "
                      "the data the claim names")
    return False, (f"the test images are {data.name} ({data.checksum}), not the shipped digits nor the "
                   "official MNIST, whose checksums the claim names")


def load(data_dir: str | None, *, flatten: bool):
    """The digits (the reader's search order; see tinytorch.datasets.load_mnist)."""
    from tinytorch.datasets import load_mnist

    return load_mnist(data_dir, flatten=flatten)


def train_mlp(seed: int = 0, epochs: int = EPOCHS, data=None, data_dir: str | None = None,
              progress: bool = False, say=lambda *a: None) -> Result:
    """Train the MLP from `seed` for `epochs` epochs on `data` (else the digits from `data_dir`)
    and evaluate it on the test images."""
    from tinytorch.core.activations import ReLU
    from tinytorch.core.autograd import no_grad  # noqa: F401  (module 07 must be there)
    from tinytorch.core.layers import Linear, Sequential, manual_seed
    from tinytorch.core.losses import CrossEntropyLoss
    from tinytorch.core.optimizers import SGD
    from tinytorch.core.training import Trainer

    data = data if data is not None else load(data_dir, flatten=True)
    x_train, x_test = data.x_train.reshape(len(data.x_train), -1), data.x_test.reshape(len(data.x_test), -1)
    held_out = int(round(len(x_train) * VALIDATION))          # as the Trainer's validation_split
    result = Result(seed=seed, epochs=epochs, data=data.describe(), train_size=len(x_train) - held_out,
                    test_size=len(x_test), identity=identity(data))
    say(f"\ndata: {result.data}")
    say(f"seed {seed}, {epochs} epochs, batch {BATCH_SIZE}; {held_out:,} of the training images held out "
        "for validation\n")
    manual_seed(seed)                                          # the initial weights
    model = Sequential(Linear(784, HIDDEN), ReLU(), Linear(HIDDEN, CLASSES))
    optimizer = SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    trainer = Trainer(model, CrossEntropyLoss(), optimizer, seed=seed)   # the batch order, the split
    start = time.perf_counter()
    if epochs > 0:
        history = trainer.fit(x_train, data.y_train, epochs=epochs, batch_size=BATCH_SIZE,
                              validation_split=VALIDATION, progress=progress)
        result.history = [dict(record) for record in history.records]
    result.seconds = time.perf_counter() - start
    scores = trainer.evaluate(x_test, data.y_test)
    result.test_loss, result.test_accuracy = float(scores["loss"]), float(scores["accuracy"])
    result.confusion = harness.confusion_matrix(data.y_test, trainer.predict(x_test).argmax(axis=1))
    return result
