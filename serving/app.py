"""The capstone's HTTP service: a Starlette app that uvicorn runs (`python -m serving`).

Routes
- `GET /`          the page (serving/static/index.html and app.js: no build step, no CDN);
- `GET /health`    200 and what is loaded: each model's source, sizes, the scheduler's slots,
                   how many streams run and wait, and how the finished ones ended;
- `POST /generate` JSON `{"prompt": str, "max_new_tokens": int, "temperature": float,
                   "seed": int (optional)}` -> `application/x-ndjson`, one JSON object a line:
                   `{"token": id, "text": "..."}` per token as it is made, then one final line
                   `{"done": true, "finish": "length" | "deadline" | ..., "tokens": n,
                   "prompt_tokens": p, "seconds": s, "first_token_seconds": f,
                   "tokens_per_second": r}` and, when the stream ended early, `"error": "..."`;
- `POST /classify` a 28x28 PNG or PGM, as the raw body (`Content-Type: image/png`) or as the
                   `image` field of a multipart form -> `{"probabilities": {"0": p, ...},
                   "top": "7"}`.

Every refusal is a one-line JSON `{"error": "..."}` that says what to send instead: 400 bad
JSON or invalid UTF-8, 413 a body or prompt over the limit, 415 the wrong content type, 422 a
value out of range or an image that is not one / of the wrong size, 503 a model that is not
loaded (with the command that makes it) or every slot and queue place taken (with Retry-After).
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import json
import math
import time
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from serving import images
from serving.scheduler import Busy, Job, Scheduler

STATIC = Path(__file__).resolve().parent / "static"
LANGUAGE, VISION = "language.safetensors", "vision.safetensors"
MAKE = "run `tito milestone capstone --track {track}` to write {path}, then restart the server"
NDJSON = "application/x-ndjson"
GENERATE_KEYS = {"prompt", "max_new_tokens", "temperature", "seed"}


@dataclass(frozen=True)
class Limits:
    """What one request may ask, and how much the server takes on at once."""

    max_prompt_chars: int = 2000
    max_new_tokens: int = 500
    deadline: float = 30.0      # seconds a stream may last, from its admission
    slots: int = 8              # streams generated together (the engine's max_batch)
    queue: int = 8              # admitted requests waiting for a slot; beyond: 503
    max_image_bytes: int = 1 << 20
    grace: float = 10.0         # on SIGTERM, seconds the streams in flight get to finish
    int8: bool = False          # the engines' int8 weights (module 17)

    def __post_init__(self):
        for name, value in asdict(self).items():
            if name != "int8" and not value > 0:
                raise ValueError(f"the limit {name} must be positive, not {value}")


class ModelError(RuntimeError):
    """A model file that exists but cannot be served; the message says how to remake it."""


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class _Refusal(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


# --- the models ----------------------------------------------------------------------------------


@dataclass
class Language:
    engine: object
    tokenizer: object
    scheduler: Scheduler
    info: dict


@dataclass
class Vision:
    engine: object
    classes: list[str]
    height: int
    width: int
    info: dict


def _load(path: Path, task: str):
    from tinytorch.capstone import load

    try:
        model, metadata = load(path)
    except (ValueError, KeyError, OSError) as error:
        raise ModelError(f"{path} cannot be loaded ({error}); "
                         + MAKE.format(track=task, path=path.name)) from None
    if metadata.get("task", task) != task:
        raise ModelError(f"{path} holds a {metadata.get('task')!r} model, not a {task} one; "
                         + MAKE.format(track=task, path=path.name))
    return model, metadata


def load_language(path: Path, limits: Limits) -> Language:
    from tinytorch.capstone import LanguageEngine, tokenizer_from_json

    model, metadata = _load(path, "language")
    if "tokenizer" not in metadata:
        raise ModelError(f"{path} has no tokenizer in its metadata; " + MAKE.format(track="language", path=path.name))
    tokenizer = tokenizer_from_json(metadata["tokenizer"])
    engine = LanguageEngine(model, int8=limits.int8, max_batch=limits.slots)
    info = {"file": str(path), "source": metadata.get("source", ""), "vocab_size": engine.vocab_size,
            "block_size": engine.block_size, "tokenizer": type(tokenizer).__name__, "int8": limits.int8}
    return Language(engine, tokenizer, Scheduler(engine, queue=limits.queue, grace=limits.grace), info)


def load_vision(path: Path, limits: Limits) -> Vision:
    from tinytorch.capstone import VisionEngine

    model, metadata = _load(path, "vision")
    engine = VisionEngine(model, int8=limits.int8)
    shape = tuple(engine.input_shape)
    try:
        classes = [str(c) for c in json.loads(metadata["classes"])] if "classes" in metadata else None
        declared = json.loads(metadata["input"]).get("shape") if "input" in metadata else None
    except (ValueError, AttributeError):
        raise ModelError(f"{path}: its 'classes' or 'input' metadata is not the JSON the capstone writes; "
                         + MAKE.format(track="vision", path=path.name)) from None
    if declared and len(declared) >= 2:
        height, width = int(declared[-2]), int(declared[-1])
    elif len(shape) == 3:
        height, width = shape[1], shape[2]
    else:  # (features,): a square image flattened, as the MLP's 784 = 28 x 28
        height = width = math.isqrt(int(shape[0]))
    if height * width * (shape[0] if len(shape) == 3 else 1) != int(np.prod(shape)):
        raise ModelError(f"{path}: an input of {shape} is not one grey {height}x{width} image")
    info = {"file": str(path), "source": metadata.get("source", ""), "input_shape": list(shape),
            "image": [height, width], "classes": classes, "int8": limits.int8}
    return Vision(engine, classes, height, width, info)


# --- reading requests ------------------------------------------------------------------------------


async def _body(request: Request, limit: int) -> bytes:
    """The request's body, refused with 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _Refusal(413, f"the body is {int(declared):,} bytes; the limit is {limit:,}")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise _Refusal(413, f"the body is over the limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _number(body: dict, key: str, default, kind, low, high):
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise _Refusal(422, f"{key} must be {'an integer' if kind is int else 'a number'}, not {json.dumps(value)}")
    if not (math.isfinite(value) and low <= value <= high):
        raise _Refusal(422, f"{key} must be between {low} and {high}, not {value}")
    return kind(value)


def parse_generate(raw: bytes, media_type: str, limits: Limits) -> dict:
    """The checked fields of a /generate body, or a _Refusal saying what to fix."""
    if media_type != "application/json":
        raise _Refusal(415, f"send the request as application/json, not {media_type or 'no content type'}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _Refusal(400, f"the body is not valid UTF-8 (byte {error.start}): send UTF-8 JSON") from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as error:
        raise _Refusal(400, f"the body is not JSON ({error.msg} at character {error.pos})") from None
    if not isinstance(body, dict):
        raise _Refusal(400, 'the body must be a JSON object such as {"prompt": "The king ", "max_new_tokens": 100}')
    unknown = sorted(set(body) - GENERATE_KEYS)
    if unknown:
        raise _Refusal(422, f"unknown field(s) {', '.join(unknown)}: use {', '.join(sorted(GENERATE_KEYS))}")
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise _Refusal(422, "prompt must be a string of text")
    if not prompt:
        raise _Refusal(422, "the prompt is empty: give the text to continue")
    if len(prompt) > limits.max_prompt_chars:
        raise _Refusal(413, f"the prompt has {len(prompt):,} characters; the limit is {limits.max_prompt_chars:,}")
    seed = body.get("seed")
    if seed is not None:
        seed = _number(body, "seed", None, int, 0, 2**32 - 1)
    return {
        "prompt": prompt,
        "max_new_tokens": _number(body, "max_new_tokens", min(100, limits.max_new_tokens), int, 1, limits.max_new_tokens),
        "temperature": _number(body, "temperature", 0.8, float, 0.0, 2.0),
        "seed": seed,
    }


def image_upload(raw: bytes, media_type: str, content_type: str) -> bytes:
    """The image's bytes from a raw body or from a multipart form's `image` field."""
    if media_type == "multipart/form-data":
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw)
        if not message.is_multipart():
            raise _Refusal(400, "the multipart form could not be read: send the image in a field named 'image'")
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == "image":
                return part.get_payload(decode=True) or b""
        raise _Refusal(422, "the form has no field named 'image': send the file as image=@digit.png")
    if media_type in ("image/png", "image/x-portable-graymap", "image/x-portable-anymap", "application/octet-stream"):
        return raw
    raise _Refusal(415, f"send a PNG (image/png) or PGM body, or a multipart form, not {media_type or 'no content type'}")


# --- the app -----------------------------------------------------------------------------------


def create_app(models_dir: str | Path, *, limits: Limits | None = None) -> Starlette:
    """The app serving the models found in `models_dir` (either may be missing, not both).

    Raises ModelError (one line) when neither file exists or one cannot be loaded."""
    limits = limits or Limits()
    folder = Path(models_dir)
    if not (folder / LANGUAGE).is_file() and not (folder / VISION).is_file():
        raise ModelError(f"{folder} holds neither {LANGUAGE} nor {VISION}: run `tito milestone capstone "
                         "--track language` (or --track vision) first")
    language = load_language(folder / LANGUAGE, limits) if (folder / LANGUAGE).is_file() else None
    vision = load_vision(folder / VISION, limits) if (folder / VISION).is_file() else None

    def missing(track: str, name: str) -> JSONResponse:
        return _error(503, f"no {track} model is loaded: " + MAKE.format(track=track, path=folder / name))

    async def page(request: Request):
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def health(request: Request):
        return JSONResponse({
            "status": "ok",
            "limits": asdict(limits),
            "language": None if language is None else {**language.info, **language.scheduler.status()},
            "vision": None if vision is None else vision.info,
        })

    async def generate(request: Request):
        if language is None:
            return missing("language", LANGUAGE)
        try:
            raw = await _body(request, limits.max_prompt_chars * 4 + 4096)
            fields = parse_generate(raw, _media_type(request), limits)
            try:
                ids = [int(i) for i in language.tokenizer.encode(fields["prompt"])]
            except (ValueError, KeyError) as error:
                raise _Refusal(422, f"the prompt cannot be tokenized: {str(error).splitlines()[0]}") from None
            if not ids:
                raise _Refusal(422, "the prompt encodes to no tokens: give some text")
        except _Refusal as refusal:
            return _error(refusal.status, refusal.message)
        except ClientDisconnect:
            return _error(400, "the client went away while sending the body")
        job = Job(ids, fields["max_new_tokens"], fields["temperature"], fields["seed"],
                  deadline=time.monotonic() + limits.deadline, loop=asyncio.get_running_loop())
        try:
            language.scheduler.submit(job)
        except Busy as busy:
            return _error(503, f"busy: {busy}; try again in a second", headers={"Retry-After": "1"})
        return StreamingResponse(_stream(job, language.tokenizer, language.scheduler), media_type=NDJSON,
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def classify(request: Request):
        if vision is None:
            return missing("vision", VISION)
        try:
            media_type = _media_type(request)
            raw = await _body(request, limits.max_image_bytes)
            data = image_upload(raw, media_type, request.headers.get("content-type", ""))
            if not data:
                raise _Refusal(422, "the upload is empty: send a 28x28 PNG of a digit")
            try:
                height, width = images.size(data)
                if (height, width) != (vision.height, vision.width):
                    raise _Refusal(422, f"the image is {width}x{height} pixels; the model reads "
                                        f"{vision.width}x{vision.height}: resize it first")
                pixels = images.decode(data)
            except images.ImageError as error:
                raise _Refusal(422, str(error)) from None
        except _Refusal as refusal:
            return _error(refusal.status, refusal.message)
        except ClientDisconnect:
            return _error(400, "the client went away while sending the image")
        batch = pixels.reshape(1, *vision.engine.input_shape).astype(np.float32)
        probabilities = (await run_in_threadpool(vision.engine.predict_proba, batch))[0]
        names = vision.classes or [str(i) for i in range(len(probabilities))]
        table = {name: round(float(p), 6) for name, p in zip(names, probabilities)}
        return JSONResponse({"probabilities": table, "top": names[int(np.argmax(probabilities))]})

    @asynccontextmanager
    async def lifespan(app):
        if language is not None:
            language.scheduler.start()
        yield
        if language is not None:
            language.scheduler.stop()

    app = Starlette(routes=[
        Route("/", page),
        Route("/health", health),
        Route("/generate", generate, methods=["POST"]),
        Route("/classify", classify, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ], lifespan=lifespan)
    app.state.language, app.state.vision, app.state.limits = language, vision, limits
    return app


def _line(record: dict) -> bytes:
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


async def _stream(job: Job, tokenizer, scheduler: Scheduler):
    """The job's tokens as NDJSON lines, then the final line. Text is decoded incrementally
    (the whole output so far, minus what was sent) so a multi-byte character split over BPE
    tokens is sent once it is whole."""
    start, first, tokens, sent = job.created, None, [], ""
    try:
        while True:
            event = await job.events.get()
            if event[0] == "token":
                first = first if first is not None else time.perf_counter() - start
                tokens.append(event[1])
                text = tokenizer.decode(tokens)
                piece = "" if text.endswith("\ufffd") else text[len(sent):]
                sent += piece
                yield _line({"token": event[1], "text": piece})
                continue
            _, reason, message = event
            seconds = time.perf_counter() - start
            final = {"done": True, "finish": reason, "tokens": len(tokens), "prompt_tokens": len(job.prompt),
                     "seconds": round(seconds, 4),
                     "first_token_seconds": None if first is None else round(first, 4),
                     "tokens_per_second": round(len(tokens) / seconds, 2) if seconds > 0 else None}
            if message:
                final["error"] = message
            yield _line(final)
            return
    finally:
        if not job.ended:  # the client went away (the generator was closed or cancelled)
            scheduler.cancel(job)
