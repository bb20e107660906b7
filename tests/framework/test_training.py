"""tinytorch.core.training (module 08): the Trainer and its pieces on the reference package.

The properties a training loop must have, each checked directly: a resumed run equals an
uninterrupted one bit for bit (with momentum, Adam, Dropout, a schedule, a validation split);
early stopping stops at the right epoch of a scripted loss; the same seed gives the same
history; evaluation runs in eval mode, under no_grad, with means over examples; checkpoints
are single .npz files written atomically; progress goes to stdout only, and not at all when
disabled.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Dropout, Linear, Module, Parameter, Sequential, manual_seed
from tinytorch.core.losses import CrossEntropyLoss, MSELoss
from tinytorch.core.optimizers import SGD, Adam, AdamW, CosineAnnealingLR, StepLR
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import (
    EarlyStopping,
    History,
    Trainer,
    accuracy,
    batch_indices,
    load_checkpoint,
    save_checkpoint,
    train_validation_split,
)


def blobs(n_per_class=60, seed=0):
    rng = np.random.default_rng(seed)
    centres = 3.0 * np.eye(3, 4)
    x = np.concatenate([c + rng.standard_normal((n_per_class, 4)) for c in centres]).astype(np.float32)
    return x, np.repeat(np.arange(3), n_per_class)


X, Y = blobs()


def make_model(seed=0, dropout=0.0):
    manual_seed(seed)
    return Sequential(Linear(4, 16), ReLU(), Dropout(dropout), Linear(16, 3))


OPTIMIZERS = {
    "sgd": lambda ps: SGD(ps, lr=0.05, momentum=0.9),
    "nesterov": lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda ps: Adam(ps, lr=0.01),
    "adamw": lambda ps: AdamW(ps, lr=0.01),
}


def run(epochs, *, optimizer="sgd", dropout=0.0, schedule=None, seed=0, **fit_options):
    model = make_model(seed, dropout)
    opt = OPTIMIZERS[optimizer](model.parameters())
    scheduler = {None: None, "step": lambda o: StepLR(o, step_size=2, gamma=0.5),
                 "cosine": lambda o: CosineAnnealingLR(o, T_max=6)}[schedule]
    trainer = Trainer(model, CrossEntropyLoss(), opt, seed=seed,
                      scheduler=scheduler(opt) if scheduler else None)
    fit_options.setdefault("progress", False)
    history = trainer.fit(X, Y, epochs=epochs, batch_size=16, **fit_options)
    return model, opt, history


def weights(model):
    return [p.data.copy() for p in model.parameters()]


def bitwise_equal(a, b):
    return len(a) == len(b) and all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(a, b))


def metrics(history):
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history.records]


# --- resume == uninterrupted -----------------------------------------------------------------


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_resume_equals_an_uninterrupted_run(tmp_path, optimizer):
    run(2, optimizer=optimizer, checkpoint_dir=tmp_path)
    resumed, resumed_opt, resumed_history = run(4, optimizer=optimizer, resume=tmp_path / "last.npz")
    straight, straight_opt, straight_history = run(4, optimizer=optimizer)
    assert bitwise_equal(weights(resumed), weights(straight))
    assert metrics(resumed_history) == metrics(straight_history) and len(resumed_history) == 4
    for p, q in zip(resumed_opt.params, straight_opt.params):
        state, expected = resumed_opt.state[p], straight_opt.state[q]
        assert state.keys() == expected.keys()
        for key in state:
            assert type(state[key]) is type(expected[key]) and np.array_equal(state[key], expected[key])


@pytest.mark.parametrize("schedule", ["step", "cosine"])
def test_resume_with_dropout_schedule_and_validation(tmp_path, schedule):
    options = dict(optimizer="adam", dropout=0.3, schedule=schedule, validation_split=0.25)
    run(3, checkpoint_dir=tmp_path, **options)
    resumed, resumed_opt, resumed_history = run(6, resume=tmp_path, **options)     # a folder: last.npz
    straight, straight_opt, straight_history = run(6, **options)
    assert bitwise_equal(weights(resumed), weights(straight))
    assert metrics(resumed_history) == metrics(straight_history)
    assert resumed_opt.lr == straight_opt.lr


def test_resume_every_epoch_in_turn(tmp_path):
    """Stop and resume after every single epoch: still the uninterrupted run."""
    for epoch in range(1, 5):
        run(epoch, dropout=0.2, checkpoint_dir=tmp_path, resume=tmp_path if epoch > 1 else None)
    resumed, _, _ = run(5, dropout=0.2, resume=tmp_path)
    straight, _, _ = run(5, dropout=0.2)
    assert bitwise_equal(weights(resumed), weights(straight))


def test_a_stopped_run_resumes_as_stopped(tmp_path):
    stopper = dict(validation=(X[:30], Y[:30]), early_stopping=EarlyStopping(patience=2))
    model = make_model()
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.0), seed=0)
    trainer.fit(X, Y, epochs=10, checkpoint_dir=tmp_path, progress=False, **stopper)
    assert len(trainer.history) == 3
    model = make_model()
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.0), seed=0)
    history = trainer.fit(X, Y, epochs=10, resume=tmp_path, progress=False,
                          validation=(X[:30], Y[:30]), early_stopping=EarlyStopping(patience=2))
    assert len(history) == 3, "the resumed run had already stopped early"


# --- early stopping ---------------------------------------------------------------------------


@pytest.mark.parametrize("values, patience, min_delta, mode, stop_at, best_epoch", [
    ([1.0, 0.8, 0.85, 0.81, 0.7], 2, 0.0, "min", 4, 2),
    ([1.0, 0.9, 0.8, 0.7, 0.6, 0.5], 1, 0.0, "min", None, 6),
    ([1.0, 0.97, 0.95, 0.94], 2, 0.05, "min", 3, 1),
    ([1.0, 0.94, 0.93, 0.92, 0.9], 3, 0.05, "min", 5, 2),
    ([0.5, 0.6, 0.6, 0.59], 2, 0.0, "max", 4, 2),
    ([1.0, math.nan, math.nan], 2, 0.0, "min", 3, 1),
])
def test_early_stopping_on_a_scripted_loss(values, patience, min_delta, mode, stop_at, best_epoch):
    stopper = EarlyStopping(patience=patience, min_delta=min_delta, mode=mode)
    stopped_at = None
    for epoch, value in enumerate(values, start=1):
        if stopper.step(value):
            stopped_at = epoch
            break
    assert stopped_at == stop_at and stopper.best_epoch == best_epoch and stopper.stopped == (stop_at is not None)


def test_fit_stops_at_the_right_epoch(tmp_path):
    """A scripted validation loss: a model whose output is the loss we want at each epoch."""
    script = [0.9, 0.5, 0.45, 0.6, 0.46, 0.47, 0.2]

    class Scripted(Module):
        def __init__(self):
            super().__init__()
            self.w = Parameter([0.0])
            self.evaluations = 0

        def forward(self, x):
            if not self.training:
                self.evaluations += 1
            value = script[min(self.evaluations, len(script)) - 1] if not self.training else 1.0
            return x * 0.0 + self.w * 0.0 + value          # (N, 1): the loss is this value squared

    model = Scripted()
    trainer = Trainer(model, lambda out, target: (out * out).mean(), SGD(model.parameters(), lr=0.1),
                      metrics=())
    x, y = np.ones((8, 1), np.float32), np.zeros((8, 1), np.float32)
    history = trainer.fit(x, y, epochs=20, validation=(x, y), checkpoint_dir=tmp_path, progress=False,
                          early_stopping=EarlyStopping(patience=3, min_delta=0.01))
    # best 0.45**2 at epoch 3; 0.6, 0.46, 0.47 do not beat it by 0.01 -> stop after epoch 6
    assert [r["epoch"] for r in history.records] == [1, 2, 3, 4, 5, 6]
    assert np.allclose(history["val_loss"], np.array(script[:6]) ** 2)
    best = load_checkpoint(tmp_path / "best.npz", Scripted())
    last = load_checkpoint(tmp_path / "last.npz", Scripted())
    assert best["epoch"] == 3 and last["epoch"] == 6


def test_early_stopping_checks_its_monitor_up_front():
    model = make_model()
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1))
    with pytest.raises(ValueError, match="val_loss"):
        trainer.fit(X, Y, epochs=3, early_stopping=EarlyStopping(), progress=False)   # no validation
    assert len(trainer.history) == 0
    with pytest.raises(ValueError):
        EarlyStopping(patience=0)
    with pytest.raises(ValueError):
        EarlyStopping(min_delta=-1)
    assert EarlyStopping(monitor="val_accuracy").mode == "max"


# --- reproducibility --------------------------------------------------------------------------


def test_same_seed_same_history_other_seed_other_history():
    first = run(4, dropout=0.2, validation_split=0.2)
    second = run(4, dropout=0.2, validation_split=0.2)
    other = run(4, dropout=0.2, validation_split=0.2, seed=1)
    assert metrics(first[2]) == metrics(second[2]) and bitwise_equal(weights(first[0]), weights(second[0]))
    assert metrics(other[2]) != metrics(first[2])


def test_split_depends_on_the_seed_only():
    a = train_validation_split(X, Y, 0.2, seed=4)
    b = train_validation_split(X, Y, 0.2, seed=4)
    assert all(np.array_equal(p, q) for p, q in zip([a[0], a[1], *a[2]], [b[0], b[1], *b[2]]))
    assert len(a[0]) == 144 and len(a[2][0]) == 36
    assert sorted(np.concatenate([a[1], a[2][1]]).tolist()) == sorted(Y.tolist())
    assert set(a[2][1].tolist()) == {0, 1, 2}, "a random split, not the last (sorted) rows"
    for bad in (0.0, 1.0, 0.001):
        with pytest.raises(ValueError):
            train_validation_split(X, Y, bad)


def test_batches():
    assert [b.tolist() for b in batch_indices(5, 2)] == [[0, 1], [2, 3], [4]]
    gen_a, gen_b = np.random.default_rng(3), np.random.default_rng(3)
    a, b = batch_indices(101, 10, gen_a), batch_indices(101, 10, gen_b)
    assert all(np.array_equal(p, q) for p, q in zip(a, b)) and len(a) == 11
    assert sorted(np.concatenate(a).tolist()) == list(range(101))
    assert gen_a.bit_generator.state == gen_b.bit_generator.state
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError):
            batch_indices(10, bad)


# --- evaluation -------------------------------------------------------------------------------


def test_evaluate_uses_eval_mode_no_grad_and_means_over_examples():
    model = make_model(dropout=0.5)
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1))
    trainer.train_epoch(X, Y, batch_size=32)
    model.eval()
    logits = model(Tensor(X[:100]))
    model.train()
    expected = CrossEntropyLoss()(logits, Y[:100]).item()
    for batch_size in (1, 7, 64, 100, 1000):
        scores = trainer.evaluate(X[:100], Y[:100], batch_size=batch_size)
        assert scores["loss"] == pytest.approx(expected, rel=1e-5)
        assert scores["accuracy"] == accuracy(logits, Y[:100])
    assert model.training and model[2].training
    for p in model.parameters():
        p.grad = None
    trainer.evaluate(X, Y)
    assert all(p.grad is None for p in model.parameters()), "evaluate computes no gradient"
    predictions = trainer.predict(X[:50], batch_size=16)
    assert predictions.shape == (50, 3) and np.allclose(predictions, logits.data[:50], atol=1e-6)
    model.eval()
    trainer.evaluate(X, Y)
    assert not model.training, "evaluate restores the mode the model was in"


def test_evaluate_builds_no_graph():
    model = make_model()
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1))
    seen = []
    original = Tensor._result

    def spy(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        seen.append(out.requires_grad)
        return out

    Tensor._result = spy
    try:
        trainer.evaluate(X, Y)
        trainer.predict(X)
    finally:
        Tensor._result = original
    assert seen and not any(seen)


def test_train_epoch_matches_a_hand_written_loop():
    model, reference = make_model(2), make_model(2)
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.05, momentum=0.9), seed=5)
    optimizer = SGD(reference.parameters(), lr=0.05, momentum=0.9)
    generator = np.random.default_rng(5)
    for _ in range(2):
        scores = trainer.train_epoch(X, Y, batch_size=25)
        total, correct = 0.0, 0
        for indices in batch_indices(len(X), 25, generator):
            logits = reference(Tensor(X[indices]))
            loss = CrossEntropyLoss()(logits, Y[indices])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(indices)
            correct += int(np.sum(logits.data.argmax(1) == Y[indices]))
        assert bitwise_equal(weights(model), weights(reference))
        assert scores["loss"] == pytest.approx(total / len(X), rel=1e-6)
        assert scores["accuracy"] == pytest.approx(correct / len(X))


def test_regression_and_custom_metrics():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3).astype(np.float32)
    manual_seed(0)
    model = Linear(3, 1)

    def mae(outputs, targets):
        return float(np.mean(np.abs(outputs - targets)))

    trainer = Trainer(model, MSELoss(), SGD(model.parameters(), lr=0.1), metrics=(mae,))
    history = trainer.fit(x, y, epochs=30, batch_size=16, progress=False)
    assert history.keys() == ["epoch", "lr", "loss", "mae", "seconds"]
    assert history["loss"][-1] < 1e-3 < history["loss"][0]
    with pytest.raises(ValueError, match="unknown metric"):
        Trainer(model, MSELoss(), SGD(model.parameters(), lr=0.1), metrics=("f1",))


def test_accuracy():
    assert accuracy([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]], [1, 0, 0]) == pytest.approx(2 / 3)
    for logits, labels in [(np.zeros((3,)), [0, 1, 2]), (np.zeros((3, 2)), [0, 1]), (np.zeros((0, 2)), [])]:
        with pytest.raises(ValueError):
            accuracy(logits, labels)


# --- checkpoints ------------------------------------------------------------------------------


def test_checkpoint_is_one_npz_written_atomically(tmp_path, monkeypatch):
    model = make_model()
    optimizer = Adam(model.parameters(), lr=0.02)
    Trainer(model, CrossEntropyLoss(), optimizer).train_epoch(X, Y, batch_size=40)
    path = tmp_path / "run" / "ckpt.npz"
    save_checkpoint(path, model, optimizer, epoch=7, history=History([{"epoch": 1, "loss": 2.0}]),
                    rng_state={"a": 2 ** 100}, extra={"note": [1, 2]})
    assert sorted(p.name for p in path.parent.iterdir()) == ["ckpt.npz"]
    with np.load(path, allow_pickle=False) as stored:       # plain arrays, no pickles
        names = set(stored.files)
        meta = json.loads(str(stored["meta"]))
    assert {"model/0.weight", "model/3.bias", "optimizer/0/exp_avg", "optimizer/3/step", "meta"} <= names
    assert meta["epoch"] == 7 and meta["optimizer"] == {"type": "Adam", "lr": 0.02, "params": 4}
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, optimizer, epoch=8)
    assert path.read_bytes() == before, "a failed write leaves the old checkpoint whole"
    assert sorted(p.name for p in path.parent.iterdir()) == ["ckpt.npz"], "and no temporary file"
    monkeypatch.undo()
    other = make_model(9)
    other_optimizer = Adam(other.parameters(), lr=1.0)
    saved = load_checkpoint(path, other, other_optimizer)
    assert bitwise_equal(weights(other), weights(model)) and other_optimizer.lr == 0.02
    assert saved["rng_state"] == {"a": 2 ** 100} and saved["extra"] == {"note": [1, 2]}
    assert saved["history"]["loss"] == [2.0] and saved["epoch"] == 7
    assert all(type(other_optimizer.state[p]["step"]) is int for p in other.parameters())


def test_checkpoint_mismatches_are_refused(tmp_path):
    model = make_model()
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    save_checkpoint(tmp_path / "c.npz", model, optimizer)
    with pytest.raises(ValueError, match="SGD"):
        load_checkpoint(tmp_path / "c.npz", make_model(), Adam(make_model().parameters()))
    manual_seed(0)
    wider = Sequential(Linear(4, 32), ReLU(), Dropout(0.0), Linear(32, 3))
    with pytest.raises(ValueError, match="shape"):
        load_checkpoint(tmp_path / "c.npz", wider)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.npz", model)


# --- progress ---------------------------------------------------------------------------------


def test_progress_lines_go_to_stdout_and_nothing_when_disabled(capsys):
    run(2, validation_split=0.2, progress=True)
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert err == "" and len(lines) == 2 and lines[0].startswith("epoch 1/2  loss ")
    assert "val_accuracy" in lines[0] and "%" in lines[0] and lines[0].endswith(" s")
    run(2, validation_split=0.2, progress=False)
    assert capsys.readouterr() == ("", "")


def test_progress_works_without_rich(monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "rich", None)
    monkeypatch.setitem(sys.modules, "rich.console", None)
    monkeypatch.setitem(sys.modules, "rich.progress", None)
    run(1, progress=True)
    out, err = capsys.readouterr()
    assert out.startswith("epoch 1/1") and err == ""


def test_training_needs_only_numpy():
    """The framework's only hard dependency is NumPy: training.py imports no rich at top level."""
    import ast
    import inspect

    import tinytorch.core.training as training

    tree = ast.parse(inspect.getsource(training))
    top = {alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
    top |= {node.module.split(".")[0] for node in tree.body if isinstance(node, ast.ImportFrom) and node.module}
    assert top <= {"json", "math", "os", "tempfile", "time", "numpy", "tinytorch"}


# --- buffers and augmentation in a resumed run ------------------------------------------------


class RunningMean(Module):
    """A buffer that changes every training step, as BatchNorm2d's running statistics do."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", np.zeros(4, dtype=np.float32))

    def forward(self, x):
        if self.training:
            self.mean = 0.9 * self.mean + 0.1 * x.data.mean(axis=0)
        return x - Tensor(self.mean)

    def backward(self, grad_output):
        return grad_output


def test_checkpoints_hold_buffers_and_a_transform_drawing_from_the_trainer_resumes_exactly(tmp_path):
    def go(epochs, **options):
        manual_seed(0)
        model = Sequential(RunningMean(), Linear(4, 16), ReLU(), Linear(16, 3))
        trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.05, momentum=0.9), seed=0)
        jitter = lambda x: x + trainer.generator.normal(0, 0.5, x.shape).astype(np.float32)  # noqa: E731
        history = trainer.fit(X, Y, epochs=epochs, batch_size=16, validation_split=0.2, progress=False,
                              transform=jitter, **options)
        return model, history

    go(2, checkpoint_dir=tmp_path)
    with np.load(tmp_path / "last.npz") as stored:
        assert "model/0.mean" in stored.files
    resumed, resumed_history = go(4, resume=tmp_path)
    straight, straight_history = go(4)
    assert bitwise_equal(list(resumed.state_dict().values()), list(straight.state_dict().values()))
    assert metrics(resumed_history) == metrics(straight_history)
    assert not np.array_equal(straight[0].mean, np.zeros(4))


def test_the_transform_touches_training_batches_only():
    model = make_model(0)
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1), seed=0)
    seen = []
    trainer.fit(X, Y, epochs=1, batch_size=50, validation_split=0.25, progress=False,
                transform=lambda x: (seen.append(len(x)), x)[1])
    assert seen == [50, 50, 35], "every training batch, no validation batch"
    trainer.evaluate(X, Y)
    trainer.predict(X)
    assert len(seen) == 3
