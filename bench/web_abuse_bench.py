"""The attacks of issue 10 against a real `jeudis serve`, with figures for docs/security.md.

    python bench/web_abuse_bench.py            # about a minute; loopback only

In a fresh temporary JEUDIS_HOME, `jeudis serve` runs as a subprocess on 127.0.0.1 with the
default settings (stderr, its log, captured). Then, in order:

1. 1,000 sign-ups from one client at full speed, all for one address: answers by status,
   confirmation messages in the ledger.
2. The same with the per-client limit off, for a new, a waiting and an active address
   (200 each, interleaved): the median answer time of each, the work being done after it.
3. A 100 MB body to /subscribe: the status and how long the answer took.
4. 1,100 connections that send half a request head and stall, then one normal request:
   its status and time, then the time until the server has closed the stalled ones.
5. The log: its size and lines, and whether any traceback is in it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from newsletter import signup, subscribers  # noqa: E402
from newsletter.config import load_settings  # noqa: E402
from newsletter.db import open_session  # noqa: E402
from newsletter.weeks import system_clock  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(home: Path, port: int, log: Path, **env: str) -> subprocess.Popen:
    environ = {**os.environ, "JEUDIS_HOME": str(home), **env}
    process = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "serve", "--port", str(port)],
        env=environ,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )
    for _ in range(400):
        try:
            httpx.get(f"http://127.0.0.1:{port}/subscribe", timeout=2)
            return process
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("jeudis serve did not start")


def confirmations(settings, address: str) -> int:
    from sqlmodel import select

    from newsletter.models import Delivery

    with open_session(settings) as session:
        rows = session.exec(
            select(Delivery).where(Delivery.purpose == "confirm", Delivery.recipient == address)
        )
        return len(list(rows))


def flood_one_address(url: str, settings) -> None:
    victim = "victime@example.org"
    codes: dict[int, int] = {}
    start = time.perf_counter()
    with httpx.Client(base_url=url, timeout=10) as client:
        for _ in range(1000):
            status = client.post("/subscribe", data={"email": victim}).status_code
            codes[status] = codes.get(status, 0) + 1
    rate = 1000 / (time.perf_counter() - start)
    time.sleep(1)  # the work after the answers
    print(f"1. 1,000 sign-ups for one address ({rate:.0f}/s): answers {codes}, ", end="")
    print(f"confirmations {confirmations(settings, victim)}")


def answer_times(url: str, settings) -> None:
    with open_session(settings) as session:
        subscribers.add(session, system_clock, "actif@example.org")
        signup.invite(session, settings, system_clock, "attente@example.org")
    times: dict[str, list[float]] = {"new": [], "waiting": [], "active": []}
    with httpx.Client(base_url=url, timeout=10) as client:
        for n in range(200):
            for kind, address in [
                ("new", f"nouveau{n}@example.org"),
                ("waiting", "attente@example.org"),
                ("active", "actif@example.org"),
            ]:
                start = time.perf_counter()
                client.post("/subscribe", data={"email": address})
                times[kind].append((time.perf_counter() - start) * 1000)
    medians = ", ".join(f"{k} {statistics.median(v):.2f} ms" for k, v in times.items())
    print(f"2. median answer, 200 each: {medians}")


def big_body(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        start = time.perf_counter()
        sock.sendall(
            b"POST /subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\n"
            b"Content-Length: 104857600\r\n\r\n" + b"x" * 65536
        )
        answer = sock.recv(200).split(b"\r\n", 1)[0].decode()
    print(f"3. 100 MB body: {answer!r} after {(time.perf_counter() - start) * 1000:.1f} ms")


def half_open(port: int, count: int = 1100) -> None:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(b"GET /subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Stall: ")
        sockets.append(sock)
    start = time.perf_counter()
    status = httpx.get(f"http://127.0.0.1:{port}/subscribe", timeout=30).status_code
    took = (time.perf_counter() - start) * 1000
    print(f"4. {count} half-open connections, then a normal request: {status} in {took:.1f} ms")
    start = time.perf_counter()
    for sock in sockets:
        with contextlib.suppress(ConnectionResetError):
            sock.recv(1)  # end of file (or a reset) once the server closed it
        sock.close()
    print(f"   all {count} closed by the server within {time.perf_counter() - start:.1f} s")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home, log = Path(tmp) / "home", Path(tmp) / "serve.log"
        home.mkdir()
        settings = load_settings({"JEUDIS_HOME": str(home)})
        port = free_port()
        process = serve(home, port, log)
        try:
            flood_one_address(f"http://127.0.0.1:{port}", settings)
        finally:
            process.terminate()
            process.wait(10)
        port = free_port()
        process = serve(home, port, log, JEUDIS_SIGNUP_PER_CLIENT_PER_HOUR="0")
        try:
            answer_times(f"http://127.0.0.1:{port}", settings)
            big_body(port)
            half_open(port)
        finally:
            process.terminate()
            process.wait(10)
        text = log.read_text(errors="replace")
        reasons: dict[str, int] = {}
        for line in text.splitlines():
            key = line.split(": ")[-1][:60]
            reasons[key] = reasons.get(key, 0) + 1
        for key, count in sorted(reasons.items(), key=lambda kv: -kv[1])[:6]:
            print(f"   {count:5} × {key}")
        print(
            f"5. log: {len(text.encode()):,} bytes, {len(text.splitlines()):,} lines, "
            f"tracebacks: {text.count('Traceback')}"
        )


if __name__ == "__main__":
    main()
