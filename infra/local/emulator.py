"""The one AWS emulator: moto, with speed-ups that leave its answers unchanged, and in server mode
with DynamoDB's per-request atomicity. `governor local`, `governor replay`, the tests (in-process
mock_aws and server mode) and the benchmarks all run it: `install()` before moto serves anything.

The speed-ups (infra/local/moto_speedups.py) keep a request's cost flat as tables and queues grow;
they refuse to install on any moto but the pinned one.

DynamoDB applies each request (a conditional write, a transaction) atomically. moto evaluates
conditions correctly but lets two threads interleave inside one request, so two conditional
writes can both pass the same check. This server lets one DynamoDB request run at a time: exactly
the atomicity DynamoDB promises per request, and nothing more (a read-then-write across two
requests still races, as it would on AWS). Other services run concurrently, so SQS long polls do
not hold anything up.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from infra.local.moto_speedups import NOTES, PINNED_MOTO, UnsupportedMoto, install

__all__ = [
    "NOTES",
    "PINNED_MOTO",
    "AtomicMotoServer",
    "EmulatorProcess",
    "UnsupportedMoto",
    "free_port",
    "install",
    "start",
]

ROOT = Path(__file__).resolve().parents[2]
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class FifoLock:
    """A lock taken in arrival order. threading.Lock lets a late thread overtake early ones, so
    under 64 deciders one request could wait past the clients' read timeout while others pass."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._waiting: collections.deque[threading.Lock] = collections.deque()
        self._held = False

    def __enter__(self) -> None:
        with self._guard:
            if not self._held:
                self._held = True
                return
            turn = threading.Lock()
            turn.acquire()
            self._waiting.append(turn)
        turn.acquire()  # released by the holder before us, which hands the lock over

    def __exit__(self, *_: object) -> None:
        with self._guard:
            if self._waiting:
                self._waiting.popleft().release()  # still held: now by the next in line
            else:
                self._held = False


def one_dynamodb_request_at_a_time(app: WsgiApp) -> WsgiApp:
    lock = FifoLock()

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return app(environ, start_response)
        with lock:
            # Consume the whole answer inside the lock: moto may build it lazily.
            return list(app(environ, start_response))

    return serve


class AtomicMotoServer(ThreadedMotoServer):
    def _server_entry(self) -> None:
        app = one_dynamodb_request_at_a_time(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class EmulatorProcess:
    """The emulator in a process of its own, so that it does not share one interpreter lock with
    dozens of decider threads (as AWS does not share your CPU). It exits when told to or when its
    parent goes away (its stdin closes)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.process = subprocess.Popen(  # noqa: S603 - this interpreter, this module
            [sys.executable, "-m", "infra.local.emulator", "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdin=subprocess.PIPE,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the emulator process exited with {self.process.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the emulator process did not listen on {self.port} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdin:
            self.process.stdin.close()


def start(port: int = 0, *, own_process: bool = False) -> tuple[AtomicMotoServer | EmulatorProcess, str]:
    """Starts a quiet emulator on 127.0.0.1 with empty state; returns it (stop() it) and its endpoint.
    own_process: in a child process (heavy concurrency in this one), else on a thread here."""
    port = port or free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server: AtomicMotoServer | EmulatorProcess
    if own_process:
        server = EmulatorProcess(port)
        server.wait_ready()
    else:
        install()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = AtomicMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
    # moto keeps its state per process: every emulator starts from nothing.
    reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")  # noqa: S310 - our own emulator
    urllib.request.urlopen(reset, timeout=10).close()  # noqa: S310 - our own emulator
    return server, endpoint


def _serve(port: int) -> None:
    """The child process of EmulatorProcess: serve until terminated (SIGTERM) or orphaned."""
    install()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = AtomicMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    sys.stdin.read()  # returns when the parent closes the pipe or dies
    server.stop()


if __name__ == "__main__":
    _serve(int(sys.argv[sys.argv.index("--port") + 1]))
