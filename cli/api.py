"""A small client for the governor's HTTP APIs: the local stack, or the deployed API with SigV4."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

DEFAULT_URL = os.environ.get("GOVERNOR_URL", "http://127.0.0.1:8765")

# Exit codes scripts can rely on.
OK, REFUSED, USAGE, CONFLICT, UNAVAILABLE = 0, 1, 2, 3, 4


class ApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body: dict[str, Any] = body if isinstance(body, dict) else {"message": str(body)}
        super().__init__(self.describe())

    @property
    def exit_code(self) -> int:
        if self.status == 412:
            return CONFLICT
        if 400 <= self.status < 500:
            return REFUSED
        return UNAVAILABLE

    def describe(self) -> str:
        lines = [f"{self.status} {self.body.get('code', 'ERROR')}: {self.body.get('message', '')}"]
        lines += [f"  {f['field']}: {f['message']}" for f in self.body.get("fields", [])]
        return "\n".join(lines)


@dataclass
class Api:
    url: str = DEFAULT_URL
    sigv4: bool = False
    region: str | None = None
    author: str | None = None

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
        target = self.url.rstrip("/") + path
        if query:
            target += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        if not target.startswith(("http://", "https://")):
            raise ApiError(0, {"code": "BAD_URL", "message": f"not an http(s) URL: {self.url}"})
        data = json.dumps(body).encode() if body is not None else None
        sent = {"Content-Type": "application/json", **(headers or {})}
        if self.author:
            sent["X-Governor-Author"] = self.author
        if self.sigv4:
            sent = self._signed(method, target, data, sent)
        request = urllib.request.Request(target, data=data, method=method, headers=sent)  # noqa: S310 - checked above
        try:
            with urllib.request.urlopen(request, timeout=300) as answer:  # noqa: S310 - checked above
                return answer.read().decode(), dict(answer.headers.items())
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                parsed = json.loads(raw or b"null")
            except ValueError:
                parsed = {"message": raw.decode(errors="replace")[:500]}
            raise ApiError(error.code, parsed) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            raise ApiError(0, {"code": "UNREACHABLE", "message": f"{self.url}: {error}"}) from None

    def _signed(self, method: str, url: str, data: bytes | None, headers: dict[str, str]) -> dict[str, str]:
        """SigV4 for API Gateway's IAM authorisation, with the caller's usual AWS credentials."""
        import boto3
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        session = boto3.Session(region_name=self.region)
        credentials = session.get_credentials()
        if credentials is None:
            raise ApiError(0, {"code": "NO_CREDENTIALS", "message": "no AWS credentials to sign with"})
        request = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), "execute-api", session.region_name or "us-east-1").add_auth(
            request
        )
        return dict(request.headers.items())


def segment(value: str) -> str:
    """One path segment with every reserved character percent-encoded: an id such as `qa/c2` or
    `qa#c3` stays one segment (not two, not a fragment), as API Gateway needs it."""
    return urllib.parse.quote(value, safe="")


def table(rows: list[list[str]], header: list[str]) -> str:
    """A plain aligned table that reads well in a terminal and in CI logs."""
    cells = [header, *rows]
    widths = [max(len(str(row[i])) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def add_api_options(parser: Any) -> None:
    parser.add_argument("--url", default=None, help="API base URL (default $GOVERNOR_URL or the local stack)")
    parser.add_argument("--sigv4", action="store_true", help="sign requests for the deployed, IAM-authorised API")
    parser.add_argument("--region", default=None)
    parser.add_argument("--author", default=None, help="locally, who is acting (deployed: your IAM identity)")


def api_from(args: Any) -> Api:
    return Api(url=args.url or DEFAULT_URL, sigv4=args.sigv4, region=args.region, author=args.author)


def run_command(args: Any) -> int:
    """Runs `args.action(api, args)`, turning API refusals into their exit codes."""
    try:
        return int(args.action(api_from(args), args))
    except ApiError as error:
        print(error.describe())
        return error.exit_code
    except (OSError, ValueError) as error:
        print(f"error: {error}")
        return REFUSED
