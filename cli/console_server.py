"""`governor console`'s server: the console's page on 127.0.0.1, every other request forwarded to the API.

The browser talks to one origin, this server; the deployed API stays IAM-only (no CORS, no second
auth system): each forwarded request is signed with SigV4 for `execute-api` with the operator's own
credentials, so what the console may do is what the operator's IAM policies allow, and a refusal
comes back as API Gateway's own 403. The answer is streamed back with its status and headers (ETag
included), so If-Match and 412 work as with the CLI.

A server that signs with your credentials must only do so for the console's own page:
- it binds 127.0.0.1 only;
- it answers only requests addressed to it by name (`Host` is 127.0.0.1:<port> or localhost:<port>),
  so a DNS-rebound name cannot reach it;
- it refuses requests another site's page makes (an `Origin` that is not its own, or
  `Sec-Fetch-Site` other than same-origin or none), so a page elsewhere cannot have it sign a change.
"""

from __future__ import annotations

import http.client
import json
import threading
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from infra.local import console_http

HOST = "127.0.0.1"
CHUNK = 64 * 1024
UPSTREAM_TIMEOUT = 300.0  # a synchronous simulation may take minutes, as with the CLI
# Never forwarded: hop-by-hop headers, the browser's own context (cookies, origin, referrer: the
# console's URL may hold a customer id) and anything that would change what the signature covers.
DROPPED_REQUEST_HEADERS = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "authorization",
        "cookie",
        "origin",
        "referer",
        "accept-encoding",
        "x-amz-date",
        "x-amz-security-token",
        "x-amz-content-sha256",
    }
)
DROPPED_RESPONSE_HEADERS = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date", "set-cookie"}
)

Credentials = tuple[str, str] | tuple[str, str, str | None]


class ConsoleServer:
    """The console on http://127.0.0.1:<port>, forwarding API calls to `api_url`, signed when
    `credentials` is given ((key, secret[, token]) or a botocore credentials object, refreshed per request)."""

    def __init__(
        self,
        api_url: str,
        credentials: Credentials | Any | None = None,
        region: str = "us-east-1",
        port: int = 0,
    ) -> None:
        parts = urllib.parse.urlsplit(api_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {api_url}")
        self.api_url = api_url.rstrip("/")
        self.credentials = credentials
        self.region = region
        self._server = ThreadingHTTPServer((HOST, port), _handler(self))
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> ConsoleServer:
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,), name="console", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> ConsoleServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Serves in the calling thread until stop() from another thread, or KeyboardInterrupt."""
        self._server.serve_forever()

    def own_hosts(self) -> set[str]:
        return {f"{HOST}:{self.port}", f"localhost:{self.port}"}

    def signed_headers(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        if self.credentials is None:
            return headers
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials as BotoCredentials

        if isinstance(self.credentials, tuple):
            key, secret, *token = self.credentials
            frozen: Any = BotoCredentials(key, secret, token[0] if token else None)
        else:  # a session's credentials: temporary ones refresh themselves
            frozen = self.credentials.get_frozen_credentials()
        request = AWSRequest(method=method, url=url, data=body or None, headers=headers)
        SigV4Auth(frozen, "execute-api", self.region).add_auth(request)
        return dict(request.headers.items())


def _handler(server: ConsoleServer) -> type[BaseHTTPRequestHandler]:
    class Console(BaseHTTPRequestHandler):
        server_version = "governor-console"
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: request lines would put customer ids in the terminal's scrollback

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def do_PUT(self) -> None:
            self._handle()

        def do_DELETE(self) -> None:
            self._handle()

        def do_PATCH(self) -> None:
            self._handle()

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            refusal = self._refusal()
            if refusal is not None:
                return self._send_json(403, {"code": "FORBIDDEN", "message": refusal})
            path = urllib.parse.urlsplit(self.path).path
            asset = console_http.asset(path) if self.command == "GET" else None
            if asset is not None:
                status, headers, data = asset
                return self._send(status, headers, data)
            return self._forward(body)

        def _refusal(self) -> str | None:
            if not self.path.startswith("/"):
                return "only paths of this server are served"
            if (self.headers.get("Host") or "").lower() not in server.own_hosts():
                return f"this console answers requests to {server.url} only"
            origin = self.headers.get("Origin")
            if origin is not None and origin.rstrip("/").lower() not in {f"http://{h}" for h in server.own_hosts()}:
                return "requests from another site's page are refused"
            if self.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
                return "requests from another site's page are refused"
            return None

        def _forward(self, body: bytes) -> None:
            target = server.api_url + self.path
            parts = urllib.parse.urlsplit(target)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in DROPPED_REQUEST_HEADERS}
            headers = server.signed_headers(self.command, target, body, headers)
            kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
            connection = kind(parts.netloc, timeout=UPSTREAM_TIMEOUT)
            try:
                connection.request(
                    self.command, parts.path + (f"?{parts.query}" if parts.query else ""), body or None, headers
                )
                answer = connection.getresponse()
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                message = f"the API at {server.api_url} did not answer ({type(error).__name__}: {error})"
                return self._send_json(502, {"code": "API_UNREACHABLE", "message": message})
            try:
                self._relay(answer)
            finally:
                connection.close()

        def _relay(self, answer: http.client.HTTPResponse) -> None:
            """The API's answer as it came: status, headers (ETag, x-amzn-ErrorType...), body in chunks."""
            length = answer.getheader("Content-Length")
            self.send_response(answer.status, answer.reason)
            for name, value in answer.getheaders():
                if name.lower() not in DROPPED_RESPONSE_HEADERS:
                    self.send_header(name, value)
            if length is None:  # no length announced (chunked): read it whole to announce one
                data = answer.read()
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            self.send_header("Content-Length", length)
            self.end_headers()
            while chunk := answer.read(CHUNK):
                self.wfile.write(chunk)

        def _send_json(self, status: int, body: dict[str, Any]) -> None:
            self._send(status, {"Content-Type": "application/json"}, json.dumps(body).encode())

        def _send(self, status: int, headers: dict[str, str], data: bytes) -> None:
            self.send_response(status, HTTPStatus(status).phrase)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Console
