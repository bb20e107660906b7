"""Continuous batching: one thread owns the LanguageEngine; every open stream shares its steps.

A request becomes a `Job` (its prompt's token ids, how many tokens, temperature, deadline).
`Scheduler.submit` admits it or refuses at once with `Busy` when `slots` streams run and
`queue` more wait: the server then answers 503 with Retry-After instead of queueing without
bound. The thread moves waiting jobs into free engine slots (`engine.open` prefills each
prompt alone, outside the lock: admission never waits for a prefill), calls `engine.step()`
once for all open slots (one batched forward), and hands
each new token to its job through the job's asyncio queue, thread-safely. A job ends, and its
slot is freed (`engine.close`), when it has its tokens, reaches its deadline, is cancelled
(the client went away) or the server is shutting down; its last event says which.

Events a job receives: ("token", id) any number of times, then one ("end", reason, message).
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from dataclasses import dataclass, field

FINISHED = ("length", "deadline", "disconnected", "shutdown", "error")


class Busy(RuntimeError):
    """Every slot is taken and the waiting queue is full."""


@dataclass(eq=False)
class Job:
    prompt: list[int]
    max_new_tokens: int
    temperature: float
    seed: int | None
    deadline: float  # time.monotonic() by which it must end
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    slot: int | None = None
    produced: int = 0
    cancelled: bool = False
    ended: bool = False
    created: float = field(default_factory=time.perf_counter)  # for the stream's timings

    def send(self, *event) -> None:
        """Called from the scheduler thread: deliver to the request's coroutine."""
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, event)
        except RuntimeError:  # the event loop is closed: nobody is listening any more
            pass


class Scheduler:
    def __init__(self, engine, *, queue: int, grace: float = 10.0):
        self.engine = engine
        self.slots = engine.max_batch
        self.queue = queue
        self.grace = grace
        self.finished = dict.fromkeys(FINISHED, 0)
        self.steps = 0
        self._waiting: collections.deque[Job] = collections.deque()
        self._active: dict[int, Job] = {}
        self._admitted = 0  # waiting + active, counted at admission under the lock
        self._opening: list[Job] = []  # taken from the queue, their prompts being prefilled
        self._lock = threading.Condition()
        self._closing_at: float | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="language-engine", daemon=True)

    # --- called from the event loop ---------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def submit(self, job: Job) -> Job:
        with self._lock:
            if self._closing_at is not None:
                raise Busy("the server is shutting down")
            if self._admitted >= self.slots + self.queue:
                raise Busy(f"all {self.slots} streams are busy and {self.queue} requests wait")
            self._admitted += 1
            self._waiting.append(job)
            self._lock.notify()
        return job

    def cancel(self, job: Job) -> None:
        """The client went away: the thread frees its slot at its next turn."""
        with self._lock:
            job.cancelled = True
            self._lock.notify()

    def begin_shutdown(self) -> None:
        """Streams in flight get `grace` seconds more to finish, then end with a final line."""
        with self._lock:
            if self._closing_at is None:
                self._closing_at = time.monotonic() + self.grace
            self._lock.notify()

    def stop(self) -> None:
        with self._lock:
            self._stop = True
            self._lock.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def status(self) -> dict:
        with self._lock:
            return {"slots": self.slots, "queue": self.queue, "active": len(self._active) + len(self._opening),
                    "waiting": len(self._waiting), "steps": self.steps, "finished": dict(self.finished)}

    # --- the thread ---------------------------------------------------------------------------

    def _end(self, job: Job, reason: str, message: str = "") -> None:
        """Under the lock: free the job's slot and send its last event."""
        if job.ended:
            return
        job.ended = True
        if job.slot is not None:
            self._active.pop(job.slot, None)
            try:
                self.engine.close(job.slot)
            except Exception:  # noqa: BLE001 - a broken close must not stop the other streams
                pass
        self._admitted -= 1
        self.finished[reason] += 1
        job.send("end", reason, message)

    def _sweep(self, now: float) -> None:
        """Under the lock: end what was cancelled or ran out of time, waiting or running."""
        closing = self._closing_at is not None and now >= self._closing_at
        for job in [*self._waiting, *self._active.values()]:
            if job.cancelled:
                self._end(job, "disconnected")
            elif closing:
                self._end(job, "shutdown", "the server is shutting down: the stream was ended early")
            elif now >= job.deadline:
                self._end(job, "deadline", f"the deadline was reached after {job.produced} tokens: "
                                           "ask for fewer tokens or a shorter prompt")
        self._waiting = collections.deque(job for job in self._waiting if not job.ended)

    def _admissions(self) -> list[Job]:
        """Under the lock: the waiting jobs that free slots can take now."""
        free = self.engine.free_slots          # the engine changes in this thread only
        self._opening = [self._waiting.popleft() for _ in range(min(free, len(self._waiting)))]
        return list(self._opening)

    def _open(self, job: Job) -> None:
        """Outside the lock (a prefill takes a while, and submit() must not wait for it):
        place the job in a free slot, then, under the lock, make it active."""
        try:
            slot = self.engine.open(job.prompt, temperature=job.temperature, seed=job.seed)
            failure = None
        except Exception as error:  # noqa: BLE001 - one bad prompt ends its own stream only
            slot, failure = None, f"the engine refused the prompt: {error}"
        with self._lock:
            self._opening.remove(job)
            if failure:
                self._end(job, "error", failure)
            else:  # cancelled meanwhile: the next sweep ends it and frees the slot
                job.slot = slot
                self._active[slot] = job

    def _run(self) -> None:
        while True:
            with self._lock:
                while not (self._stop or self._waiting or self._active):
                    self._lock.wait()
                if self._stop:
                    for job in [*self._waiting, *self._active.values()]:
                        self._end(job, "shutdown", "the server stopped")
                    return
                self._sweep(time.monotonic())
                opening = self._admissions()
            # prefills and the step run outside the lock: requests are admitted (or refused
            # with 503 at once) and cancelled meanwhile
            for job in opening:
                self._open(job)
            with self._lock:
                if not self._active:
                    continue
            try:
                tokens = self.engine.step()
                failure = None
            except Exception as error:  # noqa: BLE001 - end the streams with the reason, keep serving
                tokens, failure = {}, f"the engine failed: {type(error).__name__}: {error}"
            with self._lock:
                self.steps += 1
                if failure:
                    for job in list(self._active.values()):
                        self._end(job, "error", failure)
                    continue
                for slot, token in tokens.items():
                    job = self._active.get(slot)
                    if job is None or job.ended:
                        continue
                    job.produced += 1
                    job.send("token", int(token))
                    if job.produced >= job.max_new_tokens:
                        self._end(job, "length")
