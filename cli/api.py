"""The `governor` command's HTTP client: the local stack, or the deployed API signed with SigV4.

One `requests` session per Api (a listing that follows page tokens reuses one connection).
Every failure is an ApiError: an HTTP answer keeps its status and JSON error body; a connection
that cannot be made is status 0, code UNREACHABLE, naming the URL tried.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests

DEFAULT_URL = "http://127.0.0.1:8765"

# Exit codes scripts can rely on (README: "Exit codes").
OK, REFUSED, USAGE, CONFLICT, UNAVAILABLE = 0, 1, 2, 3, 4

TIMEOUT = (10, 300)  # connect, read: a synchronous simulation may take minutes


class ApiError(Exception):
    def __init__(self, status: int, body: Any, url: str = "") -> None:
        self.status = status
        self.body: dict[str, Any] = body if isinstance(body, dict) else {"message": str(body)}
        self.url = url
        super().__init__(self.describe())

    @property
    def code(self) -> str:
        return str(self.body.get("code", "ERROR"))

    @property
    def exit_code(self) -> int:
        if self.status in (409, 412):
            return CONFLICT
        if 400 <= self.status < 500:
            return REFUSED
        return UNAVAILABLE

    def describe(self) -> str:
        lines = [f"{self.status} {self.code}: {self.body.get('message', '')}"]
        lines += [f"  {f['field']}: {f['message']}" for f in self.body.get("fields") or [] if isinstance(f, dict)]
        return "\n".join(lines)


@dataclass
class Api:
    url: str = DEFAULT_URL
    sigv4: bool = False
    region: str | None = None
    author: str | None = None
    profile: str | None = None
    url_source: str = "default"  # where the URL came from, for "cannot reach" messages
    _session: requests.Session | None = field(default=None, init=False, repr=False, compare=False)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        query: dict[str, Any] | None = None,
    ) -> tuple[Any, dict[str, str]]:
        text, answer_headers = self.call_raw(method, path, body, headers, query)
        return json.loads(text or "null"), answer_headers

    def call_raw(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        query: dict[str, Any] | None = None,
    ) -> tuple[str, dict[str, str]]:
        with self._send(method, path, body, headers, query, stream=False) as answer:
            return answer.text, dict(answer.headers.items())

    def stream(
        self, method: str, path: str, query: dict[str, Any] | None = None
    ) -> tuple[Iterator[str], dict[str, str]]:
        """The answer's body as text chunks as they arrive (an export page), and its headers."""
        answer = self._send(method, path, None, None, query, stream=True)
        answer.encoding = answer.encoding or "utf-8"

        def chunks() -> Iterator[str]:
            with answer:
                for piece in answer.iter_content(chunk_size=65536, decode_unicode=True):
                    yield piece if isinstance(piece, str) else piece.decode()

        return chunks(), dict(answer.headers.items())

    def _send(
        self,
        method: str,
        path: str,
        body: Any,
        headers: dict[str, str] | None,
        query: dict[str, Any] | None,
        *,
        stream: bool,
    ) -> requests.Response:
        import requests

        target = self.url.rstrip("/") + path
        if query:
            target += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        if not target.startswith(("http://", "https://")):
            raise ApiError(0, {"code": "BAD_URL", "message": f"not an http(s) URL: {self.url}"}, self.url)
        data = json.dumps(body).encode() if body is not None else None
        sent = {"Content-Type": "application/json", **(headers or {})}
        if self.author:
            sent["X-Governor-Author"] = self.author
        if self.sigv4:
            sent = self._signed(method, target, data, sent)
        if self._session is None:
            self._session = requests.Session()
        try:
            answer = self._session.request(method, target, data=data, headers=sent, timeout=TIMEOUT, stream=stream)
        except requests.RequestException as error:
            raise ApiError(0, {"code": "UNREACHABLE", "message": reason_of(error)}, self.url) from None
        if answer.status_code >= 400:
            raw = answer.content
            answer.close()
            try:
                parsed = json.loads(raw or b"null")
            except ValueError:
                parsed = {"message": raw.decode(errors="replace")[:500]}
            raise ApiError(answer.status_code, parsed, self.url)
        return answer

    def _signed(self, method: str, url: str, data: bytes | None, headers: dict[str, str]) -> dict[str, str]:
        """SigV4 for API Gateway's IAM authorisation, with the caller's usual AWS credentials."""
        import boto3
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.exceptions import BotoCoreError

        try:
            session = boto3.Session(region_name=self.region, profile_name=self.profile)
            credentials = session.get_credentials()
        except BotoCoreError as error:
            raise ApiError(0, {"code": "NO_CREDENTIALS", "message": str(error)}, self.url) from None
        if credentials is None:
            raise ApiError(0, {"code": "NO_CREDENTIALS", "message": "no AWS credentials to sign with"}, self.url)
        request = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), "execute-api", session.region_name or "us-east-1").add_auth(
            request
        )
        return dict(request.headers.items())


def reason_of(error: Exception) -> str:
    """`connection refused` rather than urllib3's nested reprs."""
    text = str(error)
    for known in ("Connection refused", "Name or service not known", "timed out", "No route to host"):
        if known.lower() in text.lower():
            return known.lower()
    return type(error).__name__


def segment(value: str) -> str:
    """One path segment with every reserved character percent-encoded: an id such as `qa/c2` or
    `qa#c3` stays one segment (not two, not a fragment), as API Gateway needs it."""
    return urllib.parse.quote(value, safe="")


# Kept for cli/policy.py until it moves to Click (cli.context replaces these).


def table(rows: list[list[str]], header: list[str]) -> str:
    from cli.context import plain_table

    return plain_table([[str(v) for v in row] for row in rows], header)


def add_api_options(parser: Any) -> None:
    parser.add_argument("--url", default=None, help="API base URL (default $GOVERNOR_URL or the local stack)")
    parser.add_argument("--sigv4", action="store_true", help="sign requests for the deployed, IAM-authorised API")
    parser.add_argument("--region", default=None)
    parser.add_argument("--author", default=None, help="locally, who is acting (deployed: your IAM identity)")


def api_from(args: Any) -> Api:
    import os

    return Api(
        url=args.url or os.environ.get("GOVERNOR_URL", DEFAULT_URL),
        sigv4=args.sigv4,
        region=args.region,
        author=args.author,
    )


def run_command(args: Any) -> int:
    try:
        return int(args.action(api_from(args), args))
    except ApiError as error:
        print(error.describe())
        return error.exit_code
    except (OSError, ValueError) as error:
        print(f"error: {error}")
        return REFUSED
