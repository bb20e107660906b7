"""The capstone server over real HTTP: one `python -m serving` process for this module, with
2 slots, 1 waiting place, a 3-second deadline and no practical token limit, so that overload,
deadlines and disconnects can be provoked. No test asserts on a time."""

from __future__ import annotations

import json
import time

import httpx
import numpy as np
import pytest

from serving import images
from tests.serving.conftest import start_server

pytestmark = pytest.mark.slow

SLOTS, QUEUE = 2, 1
ENDLESS = 1_000_000  # more tokens than any deadline lets through: the engine crops past block_size


@pytest.fixture(scope="module")
def server(models_dir, tmp_path_factory):
    running = start_server(models_dir, tmp_path_factory.mktemp("server"), "--slots", str(SLOTS), "--queue", str(QUEUE),
                           "--deadline", "3", "--max-new-tokens", str(ENDLESS), "--max-prompt-chars", "200")
    yield running
    assert running.stop() == 0, running.output()


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as http:
        yield http


def stream_lines(client, body) -> list[dict]:
    with client.stream("POST", "/generate", json=body) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("application/x-ndjson")
        return [json.loads(line) for line in response.iter_lines() if line]


def health(client) -> dict:
    response = client.get("/health")
    assert response.status_code == 200
    return response.json()


def settle(client) -> dict:
    """/health once no stream runs or waits (a bounded wait: the deadline ends any stream)."""
    for _ in range(300):
        state = health(client)["language"]
        if state["active"] == 0 and state["waiting"] == 0:
            return state
        time.sleep(0.05)
    pytest.fail(f"streams still open: {state}")


def test_health_lists_both_models_and_the_limits(client):
    state = health(client)
    assert state["language"]["tokenizer"] == "CharTokenizer" and state["language"]["slots"] == SLOTS
    assert state["vision"]["image"] == [28, 28] and state["vision"]["classes"] == [str(i) for i in range(10)]
    assert state["limits"]["queue"] == QUEUE and state["limits"]["deadline"] == 3


def test_the_page_and_its_script_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="prompt"' in page.text and "/static/app.js" in page.text
    assert "http" not in page.text.replace("http-equiv", ""), "the page must load nothing from another site"
    script = client.get("/static/app.js")
    assert script.status_code == 200 and "getReader" in script.text


def test_generate_streams_the_engines_greedy_tokens_then_a_final_line(client, models_dir):
    from tinytorch.capstone import LanguageEngine, load, tokenizer_from_json

    model, metadata = load(models_dir / "language.safetensors")
    tokenizer = tokenizer_from_json(metadata["tokenizer"])
    prompt = "THE king. "
    expected = LanguageEngine(model, max_batch=1).generate([tokenizer.encode(prompt)], 24)[0]
    lines = stream_lines(client, {"prompt": prompt, "max_new_tokens": 24, "temperature": 0})
    *tokens, final = lines
    assert [line["token"] for line in tokens] == [int(t) for t in expected], "the stream must be the engine's tokens"
    assert "".join(line["text"] for line in tokens) == tokenizer.decode(expected)
    assert final["done"] and final["finish"] == "length" and final["tokens"] == 24 and "error" not in final
    assert final["prompt_tokens"] == len(prompt) and final["tokens_per_second"] > 0


def test_sampling_with_a_seed_repeats(client):
    body = {"prompt": "the ", "max_new_tokens": 12, "temperature": 1.0, "seed": 7}
    assert stream_lines(client, body)[:-1] == stream_lines(client, body)[:-1]


@pytest.mark.parametrize("upload", ["png", "multipart", "pgm"])
def test_classify_gives_the_engines_probabilities(client, models_dir, test_digit, upload):
    from tinytorch.capstone import VisionEngine, load

    pixels, label = test_digit
    png = images.png(pixels)
    if upload == "png":
        response = client.post("/classify", content=png, headers={"Content-Type": "image/png"})
    elif upload == "multipart":
        response = client.post("/classify", files={"image": ("digit.png", png, "image/png")})
    else:
        pgm = b"P5\n# a shipped test digit\n28 28\n255\n" + np.round(pixels * 255).astype(np.uint8).tobytes()
        response = client.post("/classify", content=pgm, headers={"Content-Type": "image/x-portable-graymap"})
    assert response.status_code == 200, response.text
    result = response.json()
    engine = VisionEngine(load(models_dir / "vision.safetensors")[0])
    expected = engine.predict_proba(images.decode(png).reshape(1, 784))[0]
    assert list(result["probabilities"]) == [str(i) for i in range(10)]
    np.testing.assert_allclose(list(result["probabilities"].values()), expected, atol=2e-6)
    assert result["top"] == label


BAD = [
    # (what, path, body, content type, status, words in the error)
    ("empty prompt", "/generate", json.dumps({"prompt": ""}), "application/json", 422, "empty"),
    ("huge prompt", "/generate", json.dumps({"prompt": "a" * 201}), "application/json", 413, "limit is 200"),
    ("huge body", "/generate", "x" * 100_000, "application/json", 413, "limit"),
    ("invalid UTF-8", "/generate", b'{"prompt": "\xff\xfe"}', "application/json", 400, "UTF-8"),
    ("wrong content type", "/generate", "prompt=hi", "application/x-www-form-urlencoded", 415, "application/json"),
    ("bad JSON", "/generate", '{"prompt": ', "application/json", 400, "not JSON"),
    ("not an object", "/generate", "[1, 2]", "application/json", 400, "JSON object"),
    ("unknown field", "/generate", json.dumps({"prompt": "a", "tokens": 3}), "application/json", 422, "tokens"),
    ("prompt not text", "/generate", json.dumps({"prompt": 3}), "application/json", 422, "string"),
    ("unknown character", "/generate", json.dumps({"prompt": "Zebra"}), "application/json", 422, "'Z'"),
    ("zero tokens", "/generate", json.dumps({"prompt": "a", "max_new_tokens": 0}), "application/json", 422, "max_new_tokens"),
    ("too many tokens", "/generate", json.dumps({"prompt": "a", "max_new_tokens": ENDLESS + 1}), "application/json", 422, "max_new_tokens"),
    ("fractional tokens", "/generate", json.dumps({"prompt": "a", "max_new_tokens": 2.5}), "application/json", 422, "integer"),
    ("negative temperature", "/generate", json.dumps({"prompt": "a", "temperature": -1}), "application/json", 422, "temperature"),
    ("temperature as text", "/generate", json.dumps({"prompt": "a", "temperature": "hot"}), "application/json", 422, "temperature"),
    ("not an image", "/classify", b"hello, world", "image/png", 422, "not a PNG or PGM"),
    ("truncated PNG", "/classify", images.png(np.zeros((28, 28)))[:40], "image/png", 422, "truncated"),
    ("wrong size", "/classify", images.png(np.zeros((32, 32))), "image/png", 422, "32x32"),
    ("wrong content type", "/classify", json.dumps({"image": []}), "application/json", 415, "image/png"),
    ("empty upload", "/classify", b"", "image/png", 422, "empty"),
    ("form without image", "/classify", b"--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--b--\r\n",
     "multipart/form-data; boundary=b", 422, "'image'"),
]


@pytest.mark.parametrize("what, path, body, content_type, status, words", BAD, ids=[b[0] + " " + b[1] for b in BAD])
def test_bad_input_is_a_one_line_error_and_the_server_stays_up(client, what, path, body, content_type, status, words):
    response = client.post(path, content=body, headers={"Content-Type": content_type})
    assert response.status_code == status, f"{what}: {response.status_code} {response.text}"
    message = response.json()["error"]
    assert words in message and "\n" not in message, message
    assert health(client)["status"] == "ok"


def test_overload_is_refused_at_once_with_retry_after_and_disconnects_free_the_slots(client, server):
    before = settle(client)["finished"]
    with httpx.Client(base_url=server.url, timeout=60) as other:
        streams = [other.send(other.build_request("POST", "/generate", json={"prompt": "the ", "max_new_tokens": ENDLESS}),
                              stream=True) for _ in range(SLOTS + QUEUE)]
        try:
            assert [s.status_code for s in streams] == [200] * (SLOTS + QUEUE)
            # the scheduler's thread places them in slots on its next turn
            until = time.monotonic() + 30
            while (state := health(client)["language"])["waiting"] > QUEUE and time.monotonic() < until:
                time.sleep(0.02)
            assert (state["active"], state["waiting"]) == (SLOTS, QUEUE)
            refused = client.post("/generate", json={"prompt": "the ", "max_new_tokens": 5})
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
            assert "busy" in refused.json()["error"]
            first = next(streams[0].iter_lines())
            assert "token" in json.loads(first)
        finally:
            for stream in streams:
                stream.close()
    after = settle(client)["finished"]
    assert after["disconnected"] - before["disconnected"] == SLOTS + QUEUE, (before, after)
    assert after["deadline"] == before["deadline"], "the closed streams must end as disconnected, not by deadline"
    assert stream_lines(client, {"prompt": "the ", "max_new_tokens": 3})[-1]["finish"] == "length"


def test_a_stream_past_its_deadline_ends_with_an_error_line(client):
    *tokens, final = stream_lines(client, {"prompt": "the ", "max_new_tokens": ENDLESS, "temperature": 0})
    assert final["done"] and final["finish"] == "deadline" and "deadline" in final["error"]
    assert final["tokens"] == len(tokens) > 16, "it must have run past the model's block_size (16), cropping"
    assert settle(client)["active"] == 0


def test_a_missing_model_is_a_503_naming_the_command_that_makes_it(models_dir, tmp_path):
    import asyncio

    from serving.app import ModelError, create_app

    async def ask(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as http:
            return await http.post("/generate", json={"prompt": "the "}), await http.get("/health")

    (tmp_path / "vision.safetensors").write_bytes((models_dir / "vision.safetensors").read_bytes())
    response, state = asyncio.run(ask(create_app(tmp_path)))
    assert response.status_code == 503
    assert "tito milestone capstone --track language" in response.json()["error"]
    assert state.json()["language"] is None and state.json()["vision"]["image"] == [28, 28]
    (tmp_path / "vision.safetensors").unlink()
    with pytest.raises(ModelError, match="--track language` \\(or --track vision\\)"):
        create_app(tmp_path)
    (tmp_path / "language.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(ModelError, match="cannot be loaded.*--track language"):
        create_app(tmp_path)
