"""Graceful shutdown: SIGTERM or SIGINT while a stream runs ends it with a final line (the
streams in flight get --grace seconds), then the process exits 0; `tito capstone serve` passes
a SIGTERM on to its server the same way."""

from __future__ import annotations

import json
import signal
import sys

import httpx
import pytest

from tests.serving.conftest import start_server

pytestmark = pytest.mark.slow


def stream_then_signal(server, sig) -> dict:
    body = {"prompt": "the ", "max_new_tokens": 1_000_000}
    with httpx.stream("POST", server.url + "/generate", json=body, timeout=60) as response:
        lines = response.iter_lines()
        assert "token" in json.loads(next(lines))
        server.process.send_signal(sig)
        rest = [json.loads(line) for line in lines if line]
    return rest[-1]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_stream_ends_it_with_a_final_line_and_exits_0(models_dir, tmp_path, sig):
    server = start_server(models_dir, tmp_path, "--grace", "1", "--max-new-tokens", "1000000")
    final = stream_then_signal(server, sig)
    assert final["done"] and final["finish"] == "shutdown" and "shutting down" in final["error"]
    assert server.process.wait(timeout=60) == 0, server.output()


def test_tito_capstone_serve_runs_the_server_and_passes_sigterm_on(models_dir, tmp_path):
    command = [sys.executable, "-m", "tito.main", "capstone", "serve", "--reference", "--models", str(models_dir)]
    server = start_server(models_dir, tmp_path, command=command, env={"TITO_WORKSPACE": str(tmp_path / "ws")})
    assert httpx.get(server.url + "/health").json()["language"]["tokenizer"] == "CharTokenizer"
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=60) == 0, server.output()
    output = server.output()
    assert f"Open {server.url}/" in output, output
    with pytest.raises(httpx.HTTPError):
        httpx.get(server.url + "/health", timeout=2)
