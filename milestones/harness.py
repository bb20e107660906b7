"""What every milestone shares: its verdict, its common options, the one way it stops on an
error, and how it shows a run (a progress bar with an ETA, text curves, the confusion matrix,
the plots).

A milestone proves a claim, e.g. "≥ 75% test accuracy on the official CIFAR-10 test batch".
Every run ends in a `Verdict` with one of three outcomes:

- achieved:   the run is the milestone (the data its claim names, identified by checksum, and
              nothing that shrinks the evaluation) and it reached the target. Prints PASSED,
              exits 0. Only this outcome is recorded in a student's progress.
- missed:     the run is the milestone and fell short, or stopped with an error. Prints FAILED,
              exits 1.
- path-check: any other run (other data, a --limit, ...). Prints PATH CHECK with the reason it
              is not the milestone; exits 0 when the path works (the run finished with finite
              numbers) and 1 when it breaks. Never recorded.

When the environment variable TITO_MILESTONE_RESULT names a file (`tito milestone` sets it),
or `--result PATH` is given, the verdict is also written there as JSON, atomically:

    {"version": 1, "milestone": "cifar10", "outcome": "achieved" | "missed" | "path-check",
     "claim": "...", "metric": {"name": "test_accuracy", "value": 0.893},
     "target": {"name": "test_accuracy", "op": ">=", "value": 0.75},
     "data": {"name": "...", "checksum": "md5:...", "official": true, "examples": 10000},
     "reason": "why this run is (or is not) the milestone", "line": "MILESTONE cifar10: ..."}

`data.official` says that the data is the data the claim names (its checksum is the known one),
`data.examples` how many examples the metric was measured on. `Verdict.read(path)` parses and
checks such a file.

A milestone run as a script (`python milestones/cnn.py`) imports this file as `harness` (a
script's folder is on sys.path); imported as part of the package `milestones` (tests,
benchmarks) it is `milestones.harness`. The standard library only; matplotlib only to plot.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field

RESULT_ENV = "TITO_MILESTONE_RESULT"
VERSION = 1
ACHIEVED, MISSED, PATH_CHECK = "achieved", "missed", "path-check"
OUTCOMES = (ACHIEVED, MISSED, PATH_CHECK)
WORDS = {ACHIEVED: "PASSED", MISSED: "FAILED"}


class MilestoneError(Exception):
    """A problem of the user's setup (data, checkpoint, options): the message is the whole story."""


# --- the verdict -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What the metric must reach: `value op target`, e.g. test_accuracy >= 0.75."""

    name: str
    op: str          # ">=" or "<="
    value: float


@dataclass(frozen=True)
class Spec:
    """A milestone: its name, the module after which it unlocks, its claim and its target."""

    name: str
    after: str       # "06": modules 01..06 must be complete
    claim: str
    target: Target


@dataclass(frozen=True)
class Data:
    """Which data a metric was measured on: a name a person reads, the checksum of the
    evaluation file ("md5:..." or "sha256:..."), whether it is the data the claim names, and on
    how many examples."""

    name: str
    checksum: str
    official: bool
    examples: int


NO_DATA = Data(name="", checksum="", official=False, examples=0)


@dataclass(frozen=True)
class Verdict:
    """The machine-readable end of a run (see the module docstring)."""

    milestone: str
    outcome: str
    claim: str
    metric: dict     # {"name": ..., "value": float or None}
    target: dict     # {"name": ..., "op": ">=" | "<=", "value": float}
    data: dict       # {"name", "checksum", "official", "examples"}
    reason: str
    line: str
    works: bool = field(default=True, compare=False)   # a path check's path worked (not written)

    @property
    def exit_code(self) -> int:
        """0 for achieved and for a path check whose path works, 1 otherwise."""
        return 0 if self.outcome == ACHIEVED or (self.outcome == PATH_CHECK and self.works) else 1

    def to_dict(self) -> dict:
        content = asdict(self)
        del content["works"]
        return {"version": VERSION, **content}

    @classmethod
    def from_dict(cls, content: dict) -> Verdict:
        """The verdict in `content` (a parsed result file); ValueError names what is wrong."""
        if not isinstance(content, dict) or content.get("version") != VERSION:
            raise ValueError(f"not a version {VERSION} milestone result")
        fields = {key: content.get(key) for key in cls.__dataclass_fields__ if key != "works"}
        missing = [key for key, value in fields.items() if value is None]
        if missing:
            raise ValueError(f"the milestone result lacks {', '.join(missing)}")
        if fields["outcome"] not in OUTCOMES:
            raise ValueError(f"unknown outcome {fields['outcome']!r} (expected one of {', '.join(OUTCOMES)})")
        return cls(**fields)

    @classmethod
    def read(cls, path: str | os.PathLike) -> Verdict:
        with open(path, encoding="utf-8") as stream:
            return cls.from_dict(json.load(stream))


def judge(spec: Spec, *, value: float | None, data: Data, counts: bool, reason: str, reached: bool,
          works: bool, text: str) -> Verdict:
    """The verdict of a finished run. `value` is the metric, `data` what it was measured on,
    `counts` whether this run is the milestone and `reason` the sentence saying why (or why
    not), `reached` whether the run met the milestone's target (its metric, and anything else
    its claim asks, such as the cnn's margin over the MLP), `works` whether the run's numbers
    are sound (finite), `text` what the line says was reached (the milestone's own words, e.g.
    "test accuracy 93.2% ≥ 92% on 1,000 test images ...")."""
    if counts:
        outcome = ACHIEVED if works and reached else MISSED
        line = f"MILESTONE {spec.name}: {WORDS[outcome]} ({text})"
    else:
        outcome = PATH_CHECK
        word = "PATH CHECK" if works else "PATH CHECK FAILED"
        line = f"MILESTONE {spec.name}: {word} ({text}; not the milestone: {reason})"
    value = value if value is not None and math.isfinite(value) else None
    return Verdict(milestone=spec.name, outcome=outcome, claim=spec.claim,
                   metric={"name": spec.target.name, "value": value}, target=asdict(spec.target),
                   data=asdict(data), reason=reason, line=line, works=works)


def finish(verdict: Verdict, result: str | None = None) -> int:
    """Write the verdict where asked (--result PATH, $TITO_MILESTONE_RESULT), print its line
    last, and return the exit code."""
    for path in dict.fromkeys(p for p in (result, os.environ.get(RESULT_ENV)) if p):
        write_json(path, verdict.to_dict())
    print(verdict.line, flush=True)
    return verdict.exit_code


def write_json(path: str | os.PathLike, content: dict) -> None:
    """Write `content` as JSON at `path` atomically (a temporary file beside it, then os.replace)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".milestone-", suffix=".json")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(content, stream, indent=2, ensure_ascii=False)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


# --- the one way a run stops -----------------------------------------------------------------------


def _in_module(error: BaseException) -> str:
    """' (raised in tinytorch/core/optimizers.py: module 06 optimizers, your code)' for the deepest
    frame of the traceback inside a tinytorch module file, or ''."""
    found = ""
    tb = error.__traceback__
    while tb is not None:
        module = sys.modules.get(tb.tb_frame.f_globals.get("__name__", ""))
        match = re.match(r"Module (\d+) (\w+)", getattr(module, "__doc__", None) or "")
        if match and module.__name__.startswith("tinytorch."):
            path = module.__name__.replace(".", "/") + ".py"
            found = (f"; raised in {path}, module {match.group(1)} {match.group(2)}: that is the code "
                     f"to fix (`tito test {match.group(1)}` runs its tests)")
        tb = tb.tb_next
    return found


def stopped(spec: Spec, error: BaseException, result: str | None = None, *, interrupted: str = "") -> int:
    """The one chain of handlers for a run that stopped: one FAILED line (an ImportError names
    the module to complete, a data or setup problem is its own message, Ctrl-C says so and
    `interrupted` adds what survives it, anything else prints the end of its traceback and the
    module it came from), the missed verdict written, exit code 1."""
    if isinstance(error, ImportError):
        missing = getattr(error, "name", None) or "tinytorch"
        text = f"cannot import {missing}: {error}; complete modules 01-{spec.after} first"
    elif isinstance(error, MilestoneError) or type(error).__name__ == "DatasetError":
        text = str(error)
    elif isinstance(error, KeyboardInterrupt):
        print()
        text = "interrupted" + (f"; {interrupted}" if interrupted else "")
    elif isinstance(error, Exception):                  # unfinished or broken code in the package
        traceback.print_exception(type(error), error, error.__traceback__, limit=-8)
        text = f"stopped with {type(error).__name__}: {error}{_in_module(error)}"
    else:
        raise error
    verdict = Verdict(milestone=spec.name, outcome=MISSED, claim=spec.claim,
                      metric={"name": spec.target.name, "value": None}, target=asdict(spec.target),
                      data=asdict(NO_DATA), reason=f"the run stopped before it could be judged: {text}",
                      line=f"MILESTONE {spec.name}: FAILED ({text})")
    finish(verdict, result)
    return 1


# --- the common options ----------------------------------------------------------------------------


def add_options(parser: argparse.ArgumentParser, *, seed: str, plot: str, shows: str) -> None:
    """--seed, --plot, --quiet, --history-json and --result, as every milestone has them. `seed`
    says what the seed decides, `plot` is the default PNG's name, `shows` what it shows."""
    parser.add_argument("--seed", type=int, default=0, help=f"random seed of {seed} (default 0)")
    parser.add_argument("--plot", metavar="PATH", help=f"save {shows} as a PNG here (needs matplotlib; "
                        f"default: {plot} in the current folder when matplotlib is installed)")
    parser.add_argument("--quiet", action="store_true", help="print only the final MILESTONE line")
    parser.add_argument("--history-json", metavar="PATH", help="also write the run's record (per-epoch "
                        "history, test results) as JSON here")
    parser.add_argument("--result", metavar="PATH", help="also write the verdict as JSON here (as for "
                        f"${RESULT_ENV}): outcome, metric, target, data, reason")


def sayer(quiet: bool):
    """print(), flushed, or nothing with --quiet."""
    return (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))


def run_script(main) -> None:
    """`python milestones/NAME.py`: never crash on a terminal's encoding; exit with main()'s code."""
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")
    sys.exit(main())


# --- the fastest kernels the package has ------------------------------------------------------------


def fast_kernels(model):
    """(model, what it computes with): with module 15 in the package, the same model made to
    compute its Conv2d and MaxPool2d layers with module 15's kernels (`accelerate`, which keeps
    every Parameter); without it, the model as module 09 built it."""
    try:
        from tinytorch.perf.acceleration import accelerate
    except ModuleNotFoundError as error:
        if error.name not in ("tinytorch.perf", "tinytorch.perf.acceleration"):
            raise
        return model, ("module 09's (a loop over the kernel offsets; module 15 makes it faster: "
                       "tito module complete 15)")
    return accelerate(model), ("module 15's (im2col and one matrix multiply, Winograd's where it pays; pooling by "
                              "strided slices; BatchNorm as one operation)")


# --- showing a run as text -------------------------------------------------------------------------


def duration(seconds: float) -> str:
    """'45 s', '12 min', '1 h 50 min'."""
    if not math.isfinite(seconds):
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


class Progress:
    """A long loop's progress: steps done, the numbers it watches and the time left.

    On a terminal one line is redrawn in place (a bar); into a pipe or a file (`tito` without a
    terminal, a log) a new line is printed at most every `every` seconds and at the end, so a
    log shows progress without thousands of lines. The ETA is the mean time per step so far
    times the steps left (steps resumed from a checkpoint are not counted as timed).

        bar = Progress(3000, "training", say)
        for step in range(start, 3000):
            ...
            bar.update(step + 1, loss=f"{loss:.3f}")
            if (step + 1) % 250 == 0:
                bar.note(f"step {step + 1}: validation loss {val:.3f}")
        bar.close()
    """

    def __init__(self, total: int, label: str, say, *, quiet: bool = False, start: int = 0,
                 every: float = 30.0, stream=None, clock=time.monotonic):
        self.total, self.label, self.say, self.every = total, label, say, every
        self.stream = stream if stream is not None else sys.stdout
        self.clock = clock
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.first, self.step, self.began = start, start, clock()
        self.last_shown, self.shown = -math.inf, ""
        self.quiet = quiet

    def eta(self) -> float:
        done, left = self.step - self.first, self.total - self.step
        return (self.clock() - self.began) / done * left if done > 0 else math.nan

    def line(self, **numbers) -> str:
        width = 24
        filled = int(width * self.step / max(self.total, 1))
        bar = "#" * filled + "-" * (width - filled)
        watched = "".join(f" · {name} {value}" for name, value in numbers.items())
        return (f"{self.label} [{bar}] {self.step}/{self.total}{watched} · "
                f"{duration(self.clock() - self.began)} elapsed · ETA {duration(self.eta())}")

    def update(self, step: int, **numbers) -> None:
        self.step = step
        if self.quiet:
            return
        now, end = self.clock(), step >= self.total
        if self.live:
            self.shown = self.line(**numbers)
            self.stream.write("\r" + self.shown + "\x1b[K")
            self.stream.flush()
        elif end or now - self.last_shown >= self.every:
            self.last_shown = now
            self.say(self.line(**numbers))

    def note(self, line: str) -> None:
        """Print `line` (an evaluation, a checkpoint) above the bar, which is then redrawn."""
        if self.quiet:
            return
        redraw = self.live and self.shown
        if redraw:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
        self.say(line)
        if redraw:
            self.stream.write(self.shown)
            self.stream.flush()

    def close(self) -> None:
        """End the redrawn line (on a terminal), so what follows starts on its own line."""
        if self.live and self.shown and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()
            self.shown = ""


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


def text_curve(history: list[dict], width: int = 30, rows: int = 20) -> list[str]:
    """Loss and accuracy per epoch as a table with bars (at most `rows` epochs shown)."""
    if not history:
        return ["  (no epochs: the network was not trained)"]
    shown = history if len(history) <= rows else [history[round(i * (len(history) - 1) / (rows - 1))]
                                                   for i in range(rows)]
    top = max(record["loss"] for record in history) or 1.0
    lines = [f"  {'epoch':>5}  {'loss':>7}  {'':{width}}  {'train':>6}  {'val':>6}"]
    for record in shown:
        bar = "#" * max(1, round(width * record["loss"] / top)) if math.isfinite(record["loss"]) else "nan"
        val = f"{100 * record['val_accuracy']:5.1f}%" if "val_accuracy" in record else "     -"
        lines.append(f"  {record['epoch']:>5}  {record['loss']:7.4f}  {bar:{width}}  "
                     f"{100 * record['accuracy']:5.1f}%  {val}")
    lines.append(f"  {'':>5}  {'':>7}  {'(bar: the training loss)':{width}}  {'accuracy':>14}")
    return lines


def confusion_matrix(labels, predictions, classes: int = 10) -> list[list[int]]:
    """counts[t][p]: how many examples of class t were predicted as p (the diagonal is right)."""
    import numpy as np

    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(labels), np.asarray(predictions)), 1)
    return counts.tolist()


def text_confusion(confusion: list[list[int]]) -> list[str]:
    """The matrix: a row per true class, a column per answer, and each class's accuracy."""
    lines = ["  true \\ read as " + " ".join(f"{d:>4}" for d in range(len(confusion))) + "   right"]
    for digit, row in enumerate(confusion):
        total = sum(row)
        right = f"{100 * row[digit] / total:5.1f}%" if total else "    -"
        cells = " ".join(f"{n:>4}" if n else "   ." for n in row)
        lines.append(f"  {digit:>15} {cells}  {right}")
    mistakes = [(row[p], t, p) for t, row in enumerate(confusion) for p in range(len(row)) if p != t and row[p]]
    if mistakes:
        worst = ", ".join(f"{t} read as {p} ({n}x)" for n, t, p in sorted(mistakes, reverse=True)[:3])
        lines.append(f"  most frequent mistakes: {worst}")
    return lines


# --- plots (matplotlib, when installed) ------------------------------------------------------------


def _pyplot():
    """matplotlib.pyplot drawing into files only, or None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")                           # files only, never a window
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def plot_loss(losses: list[float], path: str, *, title: str, ylabel: str) -> str | None:
    """The loss per epoch, log-scaled, as a PNG at `path`; None without matplotlib."""
    plt = _pyplot()
    if plt is None:
        return None
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(range(1, len(losses) + 1), losses)
    axes.set_yscale("log")
    axes.set_xlabel("epoch")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return os.path.abspath(path)


def plot_training(history: list[dict], confusion: list[list[int]], path: str, *, title: str,
                  labels: list[str] | None = None, baseline: tuple[str, float] | None = None) -> str | None:
    """The training curves (loss; train and validation accuracy; a `baseline` (name, accuracy)
    line) beside the confusion matrix on the test examples, as a PNG at `path`; None without
    matplotlib. `labels` names the classes (default: their numbers)."""
    plt = _pyplot()
    if plt is None:
        return None
    figure, (curves, matrix) = plt.subplots(1, 2, figsize=(11, 4.5))
    epochs = [record["epoch"] for record in history]
    curves.plot(epochs, [record["loss"] for record in history], label="training loss")
    curves.set_xlabel("epoch")
    curves.set_ylabel("cross-entropy")
    accuracy = curves.twinx()
    accuracy.plot(epochs, [record["accuracy"] for record in history], "g--", label="train accuracy")
    accuracy.plot(epochs, [record.get("val_accuracy", math.nan) for record in history], "g",
                  label="validation accuracy")
    if baseline:
        accuracy.axhline(baseline[1], color="grey", linestyle=":", label=baseline[0])
    accuracy.set_ylabel("accuracy")
    curves.legend(loc="center right")
    accuracy.legend(loc="lower right")
    curves.set_title(title)
    matrix.imshow(confusion, cmap="Blues")
    ticks = range(len(confusion))
    matrix.set_xticks(ticks, labels or list(ticks), rotation=60 if labels else 0)
    matrix.set_yticks(ticks, labels or list(ticks))
    matrix.set_xlabel("read as")
    matrix.set_ylabel("true class")
    matrix.set_title("confusion matrix (test examples)")
    for t, row in enumerate(confusion):
        for p, n in enumerate(row):
            if n:
                matrix.text(p, t, str(n), ha="center", va="center", fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return os.path.abspath(path)


def say_plot(saved: str | None, path: str, shows: str, say) -> None:
    """Say where the PNG went, or, in the one line every milestone uses, that it was not written."""
    if saved:
        say(f"\nplot: {shows} saved to {saved}")
    else:
        say(f"\nplot: matplotlib is not installed, so {path} was not written (pip install matplotlib; "
            "the text above shows the same)")
