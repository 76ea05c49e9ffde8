"""Live reload for the desk: a change counter, watched files and a server-sent event stream.

The version goes up when a watched file changes (templates, content files), when the queue
in the database changes (whoever changed it: the desk, the CLI, the scheduler), or when the
desk says so (`bump`). Open pages listen on `/desk/live` and refresh their preview.

The watcher runs only while at least one page listens. The database is polled (a digest of
the queue, every `poll_ms`): it works for SQLite and for any other database alike.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import suppress
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import StreamingResponse
from watchfiles import awatch

STREAM_SECONDS = 15.0  # then the browser reconnects (EventSource): a shutdown never waits long
RETRY_MS = 500
GRACE_SECONDS = 5.0  # the watcher outlives its last listener this long
_UNSEEN = object()


class LiveReload:
    """A version number that goes up on every change, and the watcher that moves it."""

    def __init__(
        self,
        paths: Iterable[Path],
        probe: Callable[[], object] | None = None,
        on_files: Callable[[set[Path]], list[str]] | None = None,
        poll_ms: int = 400,
    ):
        self.paths = [Path(p) for p in paths]
        self.probe = probe  # returns a value that changes when the data changes
        self.on_files = on_files  # e.g. re-import changed content files; returns problems
        self.poll_ms = poll_ms
        self.version = 0
        self.problems: list[str] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        self._listeners = 0
        self._task: asyncio.Task | None = None
        self._stop: asyncio.Event | None = None
        self._stamp: object = _UNSEEN  # what the probe said last; kept between watches

    def bump(self) -> int:
        """Announce a change (safe from any thread)."""
        with self._lock:
            self.version += 1
            version = self.version
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with suppress(RuntimeError):  # the loop stopped between the check and the call
                loop.call_soon_threadsafe(self._wake)
        return version

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    # ---- the watcher -------------------------------------------------------------------

    async def _start(self) -> None:
        self._listeners += 1
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._changed = asyncio.Event()
            self._stop = asyncio.Event()
            if self.probe is not None and self._stamp is _UNSEEN:
                self._stamp = await run_in_threadpool(self.probe)
            self._task = asyncio.create_task(self._watch())
            # Let the task run up to its first wait: by then the file watcher is in place,
            # so a change made right after `hello` is seen.
            for _ in range(3):
                await asyncio.sleep(0)

    async def _leave(self) -> None:
        self._listeners -= 1
        if self._listeners == 0 and self._loop is not None:
            # Pages reconnect every STREAM_SECONDS: keep watching through the gap.
            self._loop.call_later(GRACE_SECONDS, self._stop_if_alone)

    def _stop_if_alone(self) -> None:
        if self._listeners == 0 and self._task is not None:
            task, self._task = self._task, None
            assert self._stop is not None
            self._stop.set()
            task.cancel()

    async def _watch(self) -> None:
        watched = [str(p) for p in self.paths if p.exists()]
        if not watched:
            while True:
                await asyncio.sleep(self.poll_ms / 1000)
                await self._tick(set())
        async for changes in awatch(
            *watched,
            stop_event=self._stop,
            debounce=150,
            step=50,
            rust_timeout=self.poll_ms,
            yield_on_timeout=True,
        ):
            await self._tick({Path(path) for _change, path in changes})

    async def _tick(self, files: set[Path]) -> None:
        changed = bool(files)
        if files and self.on_files is not None:
            try:
                self.problems = await run_in_threadpool(self.on_files, files)
            except Exception as exc:  # the desk keeps running; the page shows the problem
                self.problems = [f"{type(exc).__name__}: {exc}"]
        if self.probe is not None:
            try:
                stamp = await run_in_threadpool(self.probe)
            except Exception:
                stamp = self._stamp  # a locked or migrating database: try again next tick
            if stamp != self._stamp:
                self._stamp, changed = stamp, True
        if changed:
            self.bump()

    # ---- the stream ----------------------------------------------------------------------

    def _event(self, name: str) -> str:
        data = json.dumps({"version": self.version, "problems": self.problems})
        return f"id: {self.version}\nevent: {name}\ndata: {data}\n\n"

    async def events(self, last_seen: int | None) -> AsyncIterator[str]:
        """Server-sent events: `hello` on connect, `change` on every change (then it ends)."""
        await self._start()
        try:
            yield f"retry: {RETRY_MS}\n"
            # A reconnecting page says what it saw last; it gets what it missed at once.
            if last_seen is not None and last_seen != self.version:
                yield self._event("change")
                return
            yield self._event("hello")
            seen = self.version
            assert self._changed is not None
            waiting = self._changed
            with suppress(TimeoutError):
                async with asyncio.timeout(STREAM_SECONDS):
                    while self.version == seen:
                        await waiting.wait()
                        waiting = self._changed
            if self.version != seen:
                yield self._event("change")
        finally:
            await self._leave()

    def response(self, request: Request) -> StreamingResponse:
        # A reconnecting EventSource sends Last-Event-ID; a fresh page says what it showed.
        seen = request.headers.get("last-event-id") or request.query_params.get("since", "")
        last_seen = int(seen) if seen.isdigit() else None
        return StreamingResponse(
            self.events(last_seen),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
