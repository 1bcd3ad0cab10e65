"""How requests are let in and logged: the Gate bounds the uploads being received, the photos waiting and those
being colorized; AccessLog writes one timed line per request."""

from __future__ import annotations

import contextlib
import logging
import time

import anyio
from fastapi import Request

from colorem.serve.uploads import ApiError

log = logging.getLogger("colorem.serve")


class Gate:
    """Uploads pass three stages. Receiving: the body is arriving (at most `max_receiving` at once, each
    within the upload deadline, holding no slot and no place in the queue). Waiting: the photo is in memory
    and queued for a slot (at most `max_waiting`). Running: one of `concurrency` slots colorizes it. A
    request is refused with 503 before its body is read when the queue is full, so a burst cannot exhaust
    memory, and a slow client cannot keep others out for longer than the deadline. A photo whose client has
    gone by its turn is dropped unrun, so a page that cancels a request it no longer wants frees its place."""

    def __init__(self, concurrency: int, max_waiting: int, max_receiving: int):
        self.concurrency = concurrency
        self.limit = concurrency + max_waiting
        self.max_receiving = max_receiving
        self.semaphore = anyio.Semaphore(concurrency)
        self.receiving = 0
        self.in_flight = 0  # waiting or running
        self.running = 0
        self.served = 0
        self.dropped = 0  # requests whose client had gone when their turn came: never run

    @property
    def waiting(self) -> int:
        return max(0, self.in_flight - self.running)

    def check_room(self) -> None:
        if self.in_flight >= self.limit:
            raise ApiError(503, "The server is busy colorizing other photos; try again in a moment.",
                           {"in_flight": self.in_flight}, headers={"Retry-After": "2"})

    @contextlib.contextmanager
    def receive(self):
        self.check_room()
        if self.receiving >= self.max_receiving:
            raise ApiError(503, "The server is receiving too many uploads at once; try again in a moment.",
                           {"receiving": self.receiving}, headers={"Retry-After": "2"})
        self.receiving += 1
        try:
            yield
        finally:
            self.receiving -= 1

    @contextlib.contextmanager
    def admit(self):
        self.check_room()
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    @contextlib.asynccontextmanager
    async def slot(self, request: Request):
        async with self.semaphore:
            if await request.is_disconnected():
                self.dropped += 1
                raise ApiError(499, "The client closed the connection before its photo's turn.")
            self.running += 1
            try:
                yield
            finally:
                self.running -= 1
                self.served += 1


class AccessLog:
    """One log line per request at INFO: method, path, status and milliseconds until the last byte was sent
    (the CLI shows them at its default log level; uvicorn's own access log has no timing)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), 500  # 500: the app raised before it answered

        async def send_noting_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            log.info("%s %s %d %.0f ms", scope["method"], scope["path"], status, (time.perf_counter() - started) * 1000)
