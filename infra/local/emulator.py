"""moto in server mode, with DynamoDB's per-request atomicity.

DynamoDB applies each request (a conditional write, a transaction) atomically. moto evaluates
conditions correctly but lets two threads interleave inside one request, so two conditional
writes can both pass the same check. This server lets one DynamoDB request run at a time: exactly
the atomicity DynamoDB promises per request, and nothing more (a read-then-write across two
requests still races, as it would on AWS). Other services run concurrently, so SQS long polls do
not hold anything up.
"""

from __future__ import annotations

import logging
import socket
import threading
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def one_dynamodb_request_at_a_time(app: WsgiApp) -> WsgiApp:
    lock = threading.Lock()

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


def start(port: int = 0) -> tuple[AtomicMotoServer, str]:
    """Starts a quiet emulator on 127.0.0.1 with empty state; returns it and its endpoint."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = port or free_port()
    server = AtomicMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto keeps its state per process: every emulator starts from nothing.
    reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")  # noqa: S310 - our own emulator
    urllib.request.urlopen(reset, timeout=10).close()  # noqa: S310 - our own emulator
    return server, endpoint
