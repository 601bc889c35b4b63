"""The console's files from the local gateway and from `governor console` (ConsoleServer), and the
console server's forwarding: signed with the operator's keys, answers streamed back as they came."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cli.console_server import ConsoleServer
from infra.local import console_http
from infra.local.emulator import free_port
from infra.local.stack import ROOT, LocalGovernor


def get(
    base: str, method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request with the path sent exactly as written (no client-side normalising of `..`)."""
    host_port = base.split("://", 1)[1]
    connection = http.client.HTTPConnection(host_port, timeout=60)
    data = json.dumps(body).encode() if body is not None else None
    sent = {"Content-Type": "application/json", **(headers or {})} if data is not None else dict(headers or {})
    try:
        connection.request(method, path, data, sent)
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def admin_console(stack: LocalGovernor) -> Any:
    with ConsoleServer(stack.url, credentials=stack.credentials["admin"]) as server:
        yield server


@pytest.fixture(scope="module")
def marketing_console(stack: LocalGovernor) -> Any:
    with ConsoleServer(stack.url, credentials=stack.credentials["marketing-ops"]) as server:
        yield server


# ---- the files -----------------------------------------------------------------------------------


def test_the_local_gateway_serves_the_console_page_at_the_root(stack: LocalGovernor) -> None:
    # Given the running stack / When a browser opens its address
    status, headers, body = get(stack.url, "GET", "/")
    # Then the console's page, never cached, under a policy that allows its own origin only
    assert status == 200
    assert body == (console_http.ASSETS / "index.html").read_bytes()
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["cache-control"] == "no-store"
    policy = headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "http:" not in policy and "https:" not in policy and "*" not in policy


def test_the_local_gateway_serves_the_console_files_with_their_types(stack: LocalGovernor) -> None:
    # Given the console's script and icon / When fetched under /console/
    script = get(stack.url, "GET", "/console/app.js")
    icon = get(stack.url, "GET", "/console/favicon.svg")
    # Then each comes with its content type
    assert (script[0], script[1]["content-type"]) == (200, "text/javascript; charset=utf-8")
    assert script[2] == (console_http.ASSETS / "app.js").read_bytes()
    assert (icon[0], icon[1]["content-type"]) == (200, "image/svg+xml")


@pytest.mark.parametrize(
    "path",
    [
        "/console/../../pyproject.toml",
        "/console/%2e%2e/%2e%2e/pyproject.toml",
        "/console/..%2F..%2Finfra%2Flocal%2Fstack.py",
        "/console/%00index.html",
        "/console/missing.js",
    ],
)
def test_no_path_reaches_a_file_outside_the_console_folder(stack: LocalGovernor, path: str) -> None:
    # Given a path that climbs out of cli/console_assets (or names nothing) / When requested
    status, headers, body = get(stack.url, "GET", path)
    # Then 404, and nothing of the checkout comes back
    assert status == 404
    assert headers["content-type"] == "application/json"
    assert b"[project]" not in body and b"LocalGovernor" not in body
    assert b"no console file" in body  # refused by the console's files, not by a missing route


def test_content_types_and_caching_by_kind_of_file(tmp_path: Path) -> None:
    # Given a folder with one file of each kind the console uses, and a secret outside it linked in
    for name in ("index.html", "a.js", "a.css", "a.svg", "a.png", "a.json", "notes.md"):
        (tmp_path / name).write_bytes(b"x")
    outside = tmp_path.parent / f"{tmp_path.name}-secret.json"
    outside.write_text("{}")
    (tmp_path / "link.json").symlink_to(outside)
    # When each is asked for
    types = {name: console_http.asset(f"/console/{name}", tmp_path) for name in ("a.js", "a.css", "a.svg", "a.png")}
    # Then each has its type, only the page is no-store, and what is not a page's kind or not inside is 404
    assert {n: a[1]["Content-Type"] for n, a in types.items() if a} == {
        "a.js": "text/javascript; charset=utf-8",
        "a.css": "text/css; charset=utf-8",
        "a.svg": "image/svg+xml",
        "a.png": "image/png",
    }
    assert console_http.asset("/console/a.json", tmp_path)[1]["Content-Type"] == "application/json"  # type: ignore[index]
    assert console_http.asset("/", tmp_path)[1]["Cache-Control"] == "no-store"  # type: ignore[index]
    assert types["a.js"] is not None and types["a.js"][1]["Cache-Control"] == "no-cache"
    assert console_http.asset("/console/notes.md", tmp_path)[0] == 404  # type: ignore[index]
    assert console_http.asset("/console/link.json", tmp_path)[0] == 404  # type: ignore[index]
    assert console_http.asset("/policy", tmp_path) is None


# ---- governor console: the server ----------------------------------------------------------------


def test_the_console_server_serves_the_same_files(admin_console: ConsoleServer) -> None:
    # Given a console server / When its page and a script are fetched
    page = get(admin_console.url, "GET", "/")
    script = get(admin_console.url, "GET", "/console/api.js")
    # Then they are the console's files, under the same policy
    assert page[0] == script[0] == 200
    assert page[2] == (console_http.ASSETS / "index.html").read_bytes()
    assert page[1]["content-security-policy"] == console_http.CONTENT_SECURITY_POLICY


def test_admin_keys_get_customer_routes_through_the_console(admin_console: ConsoleServer) -> None:
    # Given the console signing with the admin's keys / When the page asks for a customer
    status, _, body = get(admin_console.url, "GET", "/customers/cust-console-1/contact-state")
    # Then the API answered it
    assert status == 200
    assert json.loads(body)["customer_id"] == "cust-console-1"


def test_signatures_cover_queries_and_encoded_path_segments(admin_console: ConsoleServer) -> None:
    # Given the console signing with the admin's keys
    # When the page sends a query, and a customer id holding a slash (one encoded segment)
    listed = get(admin_console.url, "GET", "/decisions?customer_id=cust-console-1&limit=5")
    encoded = get(admin_console.url, "GET", "/customers/qa%2Fc2/contact-state")
    # Then both signatures verify and the API answers them
    assert listed[0] == 200
    assert encoded[0] == 200
    assert json.loads(encoded[2])["customer_id"] == "qa/c2"


def test_marketing_ops_keys_get_api_gateways_403_on_customer_routes_and_the_policy(
    marketing_console: ConsoleServer,
) -> None:
    # Given the console signing with the marketing-ops keys
    # When the page asks for a customer, then for the policy
    refused = get(marketing_console.url, "GET", "/customers/cust-console-1/contact-state")
    allowed = get(marketing_console.url, "GET", "/policy")
    # Then the customer route is refused by IAM, as deployed, and the policy route answers with its ETag
    assert refused[0] == 403
    assert (
        "governor-marketing-ops is not authorized to perform: execute-api:Invoke" in json.loads(refused[2])["message"]
    )
    assert refused[1]["x-amzn-errortype"] == "AccessDeniedException"
    assert allowed[0] == 200
    assert allowed[1]["etag"] == f'"{json.loads(allowed[2])["version"]}"'


def test_if_match_and_the_412_pass_through(marketing_console: ConsoleServer) -> None:
    # Given the current policy and its ETag, read through the console
    _, headers, body = get(marketing_console.url, "GET", "/policy")
    current, etag = json.loads(body), headers["etag"]
    change = {"policy": current["policy"], "comment": "through the console"}
    # When it is applied with that ETag, then again with the same (now stale) one
    applied = get(marketing_console.url, "PUT", "/policy", body=change, headers={"If-Match": etag})
    stale = get(marketing_console.url, "PUT", "/policy", body=change, headers={"If-Match": etag})
    # Then the first is a new version with its ETag, and the second is the API's 412
    assert applied[0] == 200
    assert applied[1]["etag"] == f'"{int(current["version"]) + 1}"'
    assert stale[0] == 412
    # And the author is the IAM user the gateway verified, not a header the page could set
    assert json.loads(applied[2])["author"].endswith(":user/governor-marketing-ops")


def test_a_post_body_passes_through(marketing_console: ConsoleServer) -> None:
    # Given a policy with a problem / When the page validates it through the console
    status, _, body = get(marketing_console.url, "POST", "/policy/validate", body={"policy": {"survey_cap": -1}})
    answer = json.loads(body)
    # Then the API saw the body (and its signature covered it)
    assert status == 200
    assert answer["valid"] is False and answer["problems"]


def test_an_unsigned_console_forwards_unsigned(stack: LocalGovernor) -> None:
    # Given a console without credentials (the local stack allows unsigned calls)
    with ConsoleServer(stack.url) as server:
        # When the page asks for a customer
        status, _, _ = get(server.url, "GET", "/customers/cust-console-1/contact-state")
    # Then it is answered
    assert status == 200


def test_the_console_binds_loopback_only_and_refuses_other_sites(admin_console: ConsoleServer) -> None:
    # Given the console server
    # When another name (DNS rebinding) or another site's page calls it
    rebound = get(admin_console.url, "GET", "/stats", headers={"Host": f"evil.example:{admin_console.port}"})
    cross = get(admin_console.url, "POST", "/policy/rollback", body={}, headers={"Origin": "http://evil.example"})
    fetched = get(admin_console.url, "GET", "/stats", headers={"Sec-Fetch-Site": "cross-site"})
    # Then it listens on 127.0.0.1 only and refuses all three before signing anything
    assert admin_console.address[0] == "127.0.0.1"
    for status, _, body in (rebound, cross, fetched):
        assert (status, json.loads(body)["code"]) == (403, "FORBIDDEN")


def test_an_unreachable_api_is_a_502_the_page_can_show() -> None:
    # Given a console pointed at a port nobody listens on
    with ConsoleServer(f"http://127.0.0.1:{free_port()}", credentials=("AKIAEXAMPLE", "secret")) as server:
        # When the page calls the API
        status, _, body = get(server.url, "GET", "/policy")
    # Then a JSON 502 says so
    assert status == 502
    assert json.loads(body)["code"] == "API_UNREACHABLE"


def test_governor_console_prints_its_address_and_serves(stack: LocalGovernor) -> None:
    # Given `governor console` started against the local stack
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "cli", "console", "--url", stack.url, "--no-open"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        # When its data line is read
        url = process.stdout.readline().strip()
        status, _, _ = get(url, "GET", "/")
        policy = get(url, "GET", "/policy")
    finally:
        process.terminate()
        _, errors = process.communicate(timeout=10)
    # Then it is a 127.0.0.1 address serving the console and the API, and the messages went to stderr
    assert url.startswith("http://127.0.0.1:")
    assert (status, policy[0]) == (200, 200)
    assert "Ctrl-C stops." in errors
