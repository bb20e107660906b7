"""Milestone cifar10 (after module 10): the full pipeline on real CIFAR-10.

A CNN with batch normalization learns the ten classes of CIFAR-10 (32x32 colour photos of
airplanes, cars, birds, cats, deer, dogs, frogs, horses, ships and trucks) with everything the
student built: the official python batches read by tinytorch.datasets, normalized per channel
with CIFAR-10's mean and std and augmented per training batch by module 10's transforms
(random crop 32 with padding 4, horizontal flip), the network of modules 04 and 09:

    Conv2d(3, 32, 3, padding=1) -> BatchNorm2d(32) -> ReLU
    Conv2d(32, 32, 3, padding=1) -> BatchNorm2d(32) -> ReLU -> MaxPool2d(2)   (N, 32, 16, 16)
    Conv2d(32, 64, 3, padding=1) -> BatchNorm2d(64) -> ReLU
    Conv2d(64, 64, 3, padding=1) -> BatchNorm2d(64) -> ReLU -> MaxPool2d(2)   (N, 64, 8, 8)
    Flatten -> Linear(4096, 256) -> ReLU -> Linear(256, 10)

trained by module 08's Trainer: cross-entropy, SGD with momentum 0.9 and weight decay 5e-4,
the learning rate annealed from 0.05 to 0 over the run (cosine), batches of 64, 25 epochs,
5,000 of the 50,000 training images held out for validation. Target: at least 75% on the
10,000 test images of the official test batch.

    python milestones/cifar10.py [--data DIR] [--epochs N] [--batch-size N] [--seed N]
                                 [--checkpoint DIR] [--restart] [--limit N]
                                 [--history-json PATH] [--plot PATH] [--quiet] [--result PATH]

A long run survives an interruption: after every epoch a checkpoint (weights, BatchNorm's
running statistics, momentum buffers, the random generators, the history) is written
atomically into a folder of its own under --checkpoint (default `cifar10-checkpoints/` in the
current folder; one folder per setting of seed, epochs, batch size, limit and data), and the
same command run again continues from it, exactly as if it had never stopped. Before training
the script times a few real training steps and prints an estimate of the whole run.

What counts as the milestone: a run whose seven files are the official CIFAR-10 (their md5s;
the test batch's is written into the verdict) and that evaluates all 10,000 test images, so no
--limit. Then the verdict is PASSED and exit code 0 at 75% or more, FAILED and 1 below. Any
other run (synthetic or other CIFAR-10-format data, or a --limit) is a PATH CHECK that says why
it is not the milestone: exit code 0 when it runs through with finite numbers, whatever its
accuracy, and it is never recorded as the milestone. The verdict is also written as JSON
(harness.py) for `tito milestone`.

The script imports only `tinytorch` and NumPy besides the milestones' shared `harness`.
"""

from __future__ import annotations

import os

# One BLAS thread, as the other milestones: several threads slow down badly on a busy machine.
# Any of these set in the environment wins (e.g. OMP_NUM_THREADS=4 on an idle machine of yours).
_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
if not any(_variable in os.environ for _variable in _THREADS):
    for _variable in _THREADS:
        os.environ[_variable] = "1"

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402

import numpy as np  # noqa: E402

if __package__:                         # imported as milestones.cifar10 (tests, benchmarks)
    from . import harness
else:                                   # run as a script: this folder is on sys.path
    import harness

NAME = "cifar10"
TARGET = 0.75             # test accuracy
LR = 0.05                 # SGD's learning rate at the start; cosine annealing takes it to 0
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
BATCH_SIZE = 64
EPOCHS = 25
VALIDATION = 0.1          # 5,000 of the 50,000 training images, held out to watch generalization
PADDING = 4               # random crop: pad by 4 zeros, cut 32x32 at a random offset
MEAN = (0.4914, 0.4822, 0.4465)   # CIFAR-10's training images, per channel (pixels in [0, 1])
STD = (0.2470, 0.2435, 0.2616)
CLASSES = 10
CHECKPOINTS = "cifar10-checkpoints"
RECIPE = 1                # part of each checkpoint folder's name: bump it when the recipe changes
PROBE_STEPS = 3           # training steps timed for the estimate (after one warm-up step)
MIN_LIMIT = 10            # --limit: enough images for a validation split
SPEC = harness.Spec(NAME, after="10", claim="≥ 75% test accuracy on the official CIFAR-10 test batch",
                    target=harness.Target("test_accuracy", ">=", TARGET))
MilestoneError = harness.MilestoneError

EXPLANATION = """\
MILESTONE cifar10: the full pipeline on real CIFAR-10
Colour photos of 32x32 pixels in ten classes. The reader's arrays are normalized with CIFAR-10's
per-channel mean and std (your Normalize), and every training batch is augmented by your
RandomCrop(32, padding={padding}) and RandomHorizontalFlip (module 10), so the network never sees
the same image twice. The CNN is yours (modules 04 and 09):
  Conv2d(3, 32) -> BatchNorm2d -> ReLU -> Conv2d(32, 32) -> BatchNorm2d -> ReLU -> MaxPool2d(2)
  Conv2d(32, 64) -> BatchNorm2d -> ReLU -> Conv2d(64, 64) -> BatchNorm2d -> ReLU -> MaxPool2d(2)
  Flatten -> Linear(4096, 256) -> ReLU -> Linear(256, 10)           (3x3 kernels, padding 1)
Your Trainer (module 08) trains it with cross-entropy and SGD(lr={lr}, momentum={momentum},
weight_decay={wd}), the learning rate annealed to 0 over the run (cosine), batches of {batch},
{val:.0%} of the training images held out, and a checkpoint after every epoch: run the same command
again after an interruption and it continues where it stopped. Target: at least {target:.0%} on the
test images."""


@dataclass
class Result:
    """What the run reached, on which data, where its checkpoint is, and what it was estimated
    to take."""

    seed: int
    epochs: int
    data: str = ""                                             # which images, from where
    train_size: int = 0                                        # images trained on (validation held out)
    test_size: int = 0
    history: list[dict] = field(default_factory=list)          # the Trainer's record of each epoch
    test_loss: float = math.nan
    test_accuracy: float = 0.0
    confusion: list[list[int]] = field(default_factory=list)   # [true class][predicted class]
    seconds: float = 0.0                                       # the training time
    identity: harness.Data = harness.NO_DATA                   # the test batch, by checksum
    limit: int | None = None                                   # --limit
    classes: list[str] = field(default_factory=list)
    full: bool = False                 # the complete CIFAR-10 (50,000 + 10,000 images)
    resumed_from: int = 0              # the epoch of the checkpoint it continued from (0: none)
    checkpoint: str = ""               # the folder holding last.npz
    eta_seconds: float = math.nan      # the estimate printed before training
    images_per_second: float = math.nan  # training speed measured for the estimate

    @property
    def passed(self) -> bool:
        return self.test_accuracy >= TARGET and math.isfinite(self.test_loss) and self.test_size > 0


def _tinytorch():
    """The tinytorch pieces this milestone needs (an ImportError names the missing module)."""
    from tinytorch.core.activations import ReLU
    from tinytorch.core.layers import Linear, Sequential, manual_seed
    from tinytorch.core.losses import CrossEntropyLoss
    from tinytorch.core.optimizers import SGD, CosineAnnealingLR
    from tinytorch.core.spatial import BatchNorm2d, Conv2d, Flatten, MaxPool2d
    from tinytorch.core.tensor import Tensor
    from tinytorch.core.training import Trainer
    from tinytorch.data import Compose, Normalize, RandomCrop, RandomHorizontalFlip
    from tinytorch.datasets import load_cifar10

    return dict(ReLU=ReLU, Linear=Linear, Sequential=Sequential, manual_seed=manual_seed,
                CrossEntropyLoss=CrossEntropyLoss, SGD=SGD, CosineAnnealingLR=CosineAnnealingLR,
                BatchNorm2d=BatchNorm2d, Conv2d=Conv2d, Flatten=Flatten, MaxPool2d=MaxPool2d, Tensor=Tensor,
                Trainer=Trainer, Compose=Compose, Normalize=Normalize, RandomCrop=RandomCrop,
                RandomHorizontalFlip=RandomHorizontalFlip, load_cifar10=load_cifar10)


def build_model():
    """The milestone's CNN for (N, 3, 32, 32) float32 images (call manual_seed first for
    reproducible weights)."""
    t = _tinytorch()
    Conv2d, BatchNorm2d, ReLU, MaxPool2d = t["Conv2d"], t["BatchNorm2d"], t["ReLU"], t["MaxPool2d"]
    return t["Sequential"](
        Conv2d(3, 32, 3, padding=1), BatchNorm2d(32), ReLU(),
        Conv2d(32, 32, 3, padding=1), BatchNorm2d(32), ReLU(), MaxPool2d(2),      # (N, 32, 16, 16)
        Conv2d(32, 64, 3, padding=1), BatchNorm2d(64), ReLU(),
        Conv2d(64, 64, 3, padding=1), BatchNorm2d(64), ReLU(), MaxPool2d(2),      # (N, 64, 8, 8)
        t["Flatten"](), t["Linear"](64 * 8 * 8, 256), ReLU(), t["Linear"](256, CLASSES))


def make_optimizer(model, epochs: int):
    """SGD with momentum and weight decay, and the cosine schedule over `epochs` epochs."""
    t = _tinytorch()
    optimizer = t["SGD"](model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    return optimizer, t["CosineAnnealingLR"](optimizer, T_max=max(epochs, 1))


def make_augmentation(generator):
    """Random crop 32 with padding 4, then a horizontal flip with p = 0.5, both drawing from
    `generator` (the Trainer's: its state is in every checkpoint, so a resume is exact)."""
    t = _tinytorch()
    return t["Compose"]([t["RandomCrop"](32, padding=PADDING, generator=generator),
                         t["RandomHorizontalFlip"](p=0.5, generator=generator)])


# --- data ----------------------------------------------------------------------------------------


@dataclass
class Data:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    source: str            # the folder the batches came from
    full: bool             # the complete CIFAR-10, not limited
    description: str
    identity: harness.Data = harness.NO_DATA   # the test images evaluated, by checksum


def decide(data: harness.Data, limit: int | None) -> tuple[bool, str]:
    """(whether a run on `data` with `--limit limit` is the milestone, the sentence saying why)."""
    if not data.official:
        from tinytorch.datasets.cifar10 import OFFICIAL, TEST_BATCH

        return False, (f"the test images are {data.name} ({data.checksum}), not the official CIFAR-10 test "
                       f"batch (md5:{OFFICIAL[TEST_BATCH][0]})")
    if limit is not None:
        return False, (f"--limit {limit} evaluates {data.examples:,} of the official test batch's 10,000 images; "
                       "the claim needs all of them")
    return True, (f"all {data.examples:,} images of the official CIFAR-10 test batch ({data.checksum}) were "
                  "evaluated, with every training batch official too")


def load_data(data_dir: str | None, limit: int | None) -> Data:
    """CIFAR-10 from `data_dir` (or the reader's cache folders), the first `limit` training and
    test images with --limit, normalized per channel. A missing or damaged data set is a
    MilestoneError of one line."""
    t = _tinytorch()
    try:
        data = t["load_cifar10"](data_dir)                 # float32 in [0, 1], (N, 3, 32, 32)
    except ValueError as error:                            # DatasetError: what is wrong and what to do
        if type(error).__name__ != "DatasetError":
            raise
        hint = "" if data_dir else " Or pass --data DIR, the folder holding it."
        raise MilestoneError(f"{error}{hint}") from None
    x_train, y_train, x_test, y_test = data
    description = data.describe()
    if limit is not None and (limit < len(x_train) or limit < len(x_test)):
        x_train, y_train, x_test, y_test = x_train[:limit], y_train[:limit], x_test[:limit], y_test[:limit]
        description = (f"the first {len(x_train):,} training and {len(x_test):,} test images (--limit) of "
                       f"{description}")
    official = data.origin == "official"
    identity = harness.Data(name="the official CIFAR-10 test batch" if official
                            else f"CIFAR-10-format data from {data.source}",
                            checksum=data.test_checksum, official=official, examples=len(x_test))
    normalize = t["Normalize"](MEAN, STD)
    return Data(normalize(x_train), y_train, normalize(x_test), y_test, list(data.classes), data.source,
                full=data.full and len(x_train) == len(data.x_train) and len(x_test) == len(data.x_test),
                description=description, identity=identity)


# --- checkpoints -----------------------------------------------------------------------------------


def run_settings(args: argparse.Namespace, data: Data) -> dict:
    """Everything that makes two runs the same run: their checkpoints are interchangeable."""
    return {"recipe": RECIPE, "seed": args.seed, "epochs": args.epochs, "batch_size": args.batch_size,
            "limit": args.limit, "data": os.path.abspath(data.source), "train_images": len(data.x_train),
            "test_images": len(data.x_test)}


def run_folder(root: str, settings: dict) -> str:
    """root/seed0-epochs25-batch64[-limit1000]-<8 hex of all the settings>: one folder per run."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    limit = f"-limit{settings['limit']}" if settings["limit"] is not None else ""
    name = f"seed{settings['seed']}-epochs{settings['epochs']}-batch{settings['batch_size']}{limit}-{digest}"
    return os.path.join(root, name)


def saved_epoch(path: str) -> int:
    """The epoch after which the checkpoint at `path` was written (a clear error when damaged)."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            return int(json.loads(str(stored["meta"]))["epoch"])
    except Exception as error:              # a truncated zip, a missing key, not JSON, ...
        raise MilestoneError(f"the checkpoint {path} cannot be read ({type(error).__name__}: {error}). "
                             "Delete it, or pass --restart to start this run over.") from None


# --- the estimate ----------------------------------------------------------------------------------


def epochs(n: int) -> str:
    """'1 epoch', '25 epochs'."""
    return f"{n} epoch" + "s" * (n != 1)


def measure_speed(data: Data, batch_size: int, seed: int) -> tuple[float, float]:
    """(training images/s, evaluation images/s), from PROBE_STEPS real training steps of the
    milestone's model, optimizer and augmentation (after one warm-up step) and one evaluation.
    The probe's model is thrown away; the run itself starts from manual_seed(seed) afterwards."""
    t = _tinytorch()
    t["manual_seed"](seed)
    model, _ = harness.fast_kernels(build_model())
    optimizer, _ = make_optimizer(model, 1)
    probe = t["Trainer"](model, t["CrossEntropyLoss"](), optimizer, seed=seed)
    picked = np.arange(batch_size * (PROBE_STEPS + 1)) % len(data.x_train)
    times: list[float] = []
    probe.train_epoch(data.x_train[picked], data.y_train[picked], batch_size,
                      on_batch=lambda loss: times.append(time.perf_counter()),
                      transform=make_augmentation(probe.generator))
    train_speed = batch_size * PROBE_STEPS / max(times[-1] - times[0], 1e-9)
    shown = picked[:2 * batch_size]
    start = time.perf_counter()
    probe.evaluate(data.x_train[shown], data.y_train[shown])
    eval_speed = len(shown) / max(time.perf_counter() - start, 1e-9)
    return train_speed, eval_speed


# --- the run ---------------------------------------------------------------------------------------


def train(args: argparse.Namespace, data: Data, say=lambda *a: None) -> Result:
    """Train (or continue training) the CNN on `data` as `args` say; evaluate it on the test images."""
    t = _tinytorch()
    held_out = int(round(len(data.x_train) * VALIDATION))
    settings = run_settings(args, data)
    folder = run_folder(args.checkpoint, settings)
    last = os.path.join(folder, "last.npz")
    result = Result(seed=args.seed, epochs=args.epochs, data=data.description,
                    train_size=len(data.x_train) - held_out, test_size=len(data.x_test), classes=data.classes,
                    full=data.full, checkpoint=os.path.abspath(folder), identity=data.identity,
                    limit=args.limit)
    say(f"\ndata: {data.description}")
    say(f"seed {args.seed}, {epochs(args.epochs)}, batch {args.batch_size}; {held_out:,} of the "
        f"{len(data.x_train):,} training images held out for validation")
    if os.path.exists(last) and not args.restart:
        result.resumed_from = saved_epoch(last)
        say(f"checkpoint: {folder}\n  holds this run after epoch {result.resumed_from} of {args.epochs}: "
            + ("continuing from there (--restart starts over)" if result.resumed_from < args.epochs
               else "the run is complete; evaluating it (--restart trains it again)"))
    elif os.path.exists(last):
        say(f"checkpoint: {folder}\n  --restart: starting over; the checkpoint there is replaced after epoch 1")
    else:
        say(f"checkpoint: {folder} (after every epoch; run the same command again to continue)")
    harness.write_json(os.path.join(folder, "settings.json"), settings)

    remaining = args.epochs - result.resumed_from
    if remaining > 0 and not args.quiet:
        train_speed, eval_speed = measure_speed(data, args.batch_size, args.seed)
        per_epoch = result.train_size / train_speed + held_out / eval_speed
        result.eta_seconds = remaining * per_epoch + result.test_size / eval_speed
        result.images_per_second = train_speed
        say(f"ETA: about {harness.duration(result.eta_seconds)} for {epochs(remaining)} "
            f"at {train_speed:,.0f} images/s ({1000 * args.batch_size / train_speed:,.0f} ms per training step "
            f"of {args.batch_size}, {PROBE_STEPS} steps timed; about {harness.duration(per_epoch)} per epoch)\n")

    t["manual_seed"](args.seed)                                 # the initial weights
    model, kernels = harness.fast_kernels(build_model())
    say(f"convolution: {kernels}")
    optimizer, scheduler = make_optimizer(model, args.epochs)
    trainer = t["Trainer"](model, t["CrossEntropyLoss"](), optimizer, scheduler=scheduler, seed=args.seed)
    history = trainer.fit(data.x_train, data.y_train, epochs=args.epochs, batch_size=args.batch_size,
                          validation_split=VALIDATION, checkpoint_dir=folder,
                          resume=last if result.resumed_from else None, progress=not args.quiet,
                          transform=make_augmentation(trainer.generator))
    result.history = [dict(record) for record in history.records]
    result.seconds = sum(record.get("seconds", 0.0) for record in result.history)
    logits = trainer.predict(data.x_test)                        # one pass over the test images
    loss = t["CrossEntropyLoss"]()(t["Tensor"](logits), t["Tensor"](data.y_test, dtype=np.int64))
    predictions = logits.argmax(axis=1)
    result.test_loss = float(loss.item())
    result.test_accuracy = float(np.mean(predictions == data.y_test))
    result.confusion = harness.confusion_matrix(data.y_test, predictions)
    return result


# --- showing the result ----------------------------------------------------------------------------


def verdict(result: Result) -> harness.Verdict:
    """PASSED, FAILED or PATH CHECK, with what was reached and on which data."""
    accuracy = f"test accuracy {100 * result.test_accuracy:.1f}% {'≥' if result.passed else '<'} {TARGET:.0%}"
    kind = "CIFAR-10" if result.full else "CIFAR-10-format data"
    reached = (f"on {result.test_size:,} test images of {kind} after {epochs(result.epochs)} on "
               f"{result.train_size:,} training images, {harness.duration(result.seconds)} of training")
    counts, reason = decide(result.identity, result.limit)
    return harness.judge(SPEC, value=result.test_accuracy, data=result.identity, counts=counts, reason=reason,
                         reached=result.passed, works=math.isfinite(result.test_loss) and result.test_size > 0,
                         text=f"{accuracy} {reached}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="cifar10.py", description="Milestone cifar10: the full pipeline on real CIFAR-10.")
    parser.add_argument("--data", metavar="DIR", help="the folder holding the CIFAR-10 python batches "
                        "(cifar-10-batches-py/ or its files) or cifar-10-python.tar.gz; default: "
                        "$TINYTORCH_DATA/cifar10, else ~/.tinytorch/data/cifar10")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"training epochs (default {EPOCHS}); "
                        "the learning rate anneals to 0 over them")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=f"images per training step "
                        f"(default {BATCH_SIZE})")
    parser.add_argument("--checkpoint", metavar="DIR", default=CHECKPOINTS, help="where each run keeps its "
                        f"checkpoint folder (default {CHECKPOINTS}/ in the current folder, which is your "
                        "workspace under `tito milestone`); a run with the same settings continues from it")
    parser.add_argument("--restart", action="store_true", help="start over even if a checkpoint of these "
                        "settings exists (it is replaced after the first epoch)")
    parser.add_argument("--limit", type=int, metavar="N", help="use only the first N training and N test "
                        "images: for a quick look (a path check, never the milestone)")
    harness.add_options(parser, seed="the weights, the split, the batch order and the augmentation",
                        plot="cifar10_training.png", shows="the curves and the confusion matrix")
    args = parser.parse_args(argv)
    if args.epochs < 0:
        parser.error(f"--epochs must be 0 or more, got {args.epochs}")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.limit is not None and args.limit < MIN_LIMIT:
        parser.error(f"--limit must be at least {MIN_LIMIT} (a tenth is held out for validation), got {args.limit}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the milestone: 0 when it is achieved (or a path check runs through), 1 otherwise."""
    args = parse_args(argv)
    say = harness.sayer(args.quiet)
    try:
        data = load_data(args.data, args.limit)        # first: no data, one line and nothing else
        say(EXPLANATION.format(padding=PADDING, lr=LR, momentum=MOMENTUM, wd=WEIGHT_DECAY, batch=args.batch_size,
                               val=VALIDATION, target=TARGET))
        result = train(args, data, say=say)
    except BaseException as error:                     # the harness re-raises what it does not handle
        return harness.stopped(SPEC, error, args.result, interrupted="every finished epoch is in the checkpoint: "
                               "run the same command again to continue")

    if result.history:
        say(f"\ntraining curve ({harness.duration(result.seconds)} of training, "
            f"{harness.duration(result.seconds / len(result.history))} per epoch"
            + (f"; estimated {harness.duration(result.eta_seconds)} for this session" if math.isfinite(result.eta_seconds)
               else "") + "):")
    for line in harness.text_curve(result.history):
        say(line)
    say(f"\nconfusion matrix on the {result.test_size:,} test images (test loss {result.test_loss:.4f}):")
    for line in harness.text_confusion(result.confusion):
        say(line)
    say("  classes: " + ", ".join(f"{index} {name}" for index, name in enumerate(result.classes)))
    if args.history_json:
        harness.write_json(args.history_json, {**asdict(result), "passed": result.passed, "target": TARGET})
        say(f"\nresult: written as JSON to {os.path.abspath(args.history_json)}")
    path = args.plot or "cifar10_training.png"
    saved = harness.plot_training(result.history, result.confusion, path, labels=result.classes,
                                  title=f"CNN 32-32-64-64 with BatchNorm: test {100 * result.test_accuracy:.1f}%")
    harness.say_plot(saved, path, "the curves and the confusion matrix", say)
    return harness.finish(verdict(result), args.result)


if __name__ == "__main__":
    harness.run_script(main)
