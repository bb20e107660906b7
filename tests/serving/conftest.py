"""The capstone server's fixtures: small model files made here with module 20's `export` (a
tiny untrained GPT over a character tokenizer; an MLP trained a few seconds on the shipped
MNIST subset), and a real `python -m serving` process on a free loopback port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT

VOCAB = " abcdefghijklmnopqrstuvwxyzTHEK.,!?'\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-3000:]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


def start_server(models: Path, scratch: Path, *args: str, command: list[str] | None = None,
                 env: dict | None = None, port: int | None = None) -> Server:
    """`python -m serving` (or `command`) on a free port, once /health answers."""
    import httpx

    port = port or free_port()
    log = scratch / f"server-{port}.log"
    command = command or [sys.executable, "-m", "serving", "--models", str(models), "--log-level", "warning", *args]
    handle = log.open("w")
    process = subprocess.Popen([*command, "--port", str(port)], stdout=handle, stderr=subprocess.STDOUT,
                               cwd=scratch, env={**os.environ, **(env or {})})
    handle.close()
    server = Server(f"http://127.0.0.1:{port}", process, log)
    until = time.monotonic() + 120
    while time.monotonic() < until:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode} before answering:\n{server.output()}")
        try:
            if httpx.get(server.url + "/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.stop()
    pytest.fail(f"the server did not answer /health within 120 s:\n{server.output()}")


def make_language(path: Path) -> None:
    from tinytorch.capstone import export, tokenizer_to_json
    from tinytorch.core.layers import manual_seed
    from tinytorch.models.transformer import GPT, GPTConfig
    from tinytorch.text.tokenization import CharTokenizer

    tokenizer = CharTokenizer(list(VOCAB))
    manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16))
    export(model, path, extra={"task": "language", "tokenizer": tokenizer_to_json(tokenizer),
                               "source": "tests: an untrained 1-layer GPT"})


def make_vision(path: Path) -> None:
    from tinytorch.capstone import export
    from tinytorch.core.activations import ReLU
    from tinytorch.core.layers import Linear, Sequential, manual_seed
    from tinytorch.core.losses import CrossEntropyLoss
    from tinytorch.core.optimizers import SGD
    from tinytorch.core.training import Trainer
    from tinytorch.datasets import load_mnist

    data = load_mnist(flatten=True)
    manual_seed(0)
    model = Sequential(Linear(784, 32), ReLU(), Linear(32, 10))
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1, momentum=0.9), seed=0)
    trainer.fit(data.x_train, data.y_train, epochs=2, batch_size=64)
    model.eval()
    export(model, path, extra={"task": "vision", "classes": json.dumps([str(i) for i in range(10)]),
                               "input": json.dumps({"shape": [1, 28, 28], "scale": "0..1, white digit on black as MNIST"}),
                               "source": "tests: an MLP trained 2 epochs on the shipped MNIST subset"})


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("capstone-models")
    make_language(folder / "language.safetensors")
    make_vision(folder / "vision.safetensors")
    return folder


@pytest.fixture(scope="session")
def test_digit(models_dir):
    """(pixels (28, 28), label) of a shipped test digit the served classifier gets right, found
    by asking the engine, as the page will."""
    from tinytorch.capstone import VisionEngine, load
    from tinytorch.datasets import load_mnist

    data = load_mnist()
    engine = VisionEngine(load(models_dir / "vision.safetensors")[0])
    probabilities = engine.predict_proba(data.x_test[:200].reshape(200, 784))
    confident = [i for i in range(200) if probabilities[i].argmax() == data.y_test[i] and probabilities[i].max() > 0.9]
    assert confident, "the test classifier gets none of the first 200 test digits right with confidence"
    index = confident[len(confident) // 2]
    return data.x_test[index], str(int(data.y_test[index]))


__all__ = ["ROOT", "Server", "free_port", "start_server"]
