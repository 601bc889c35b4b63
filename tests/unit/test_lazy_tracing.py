"""Tracing stays on while its cost leaves the cold import: the X-Ray SDK is loaded by a handler's
first invocation (shared.adapters.tracing.LazyTracer), and X-Ray still receives its segments."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra import template

ROOT = Path(__file__).resolve().parents[2]

# Imports the handler, says whether that loaded the X-Ray SDK, then invokes it once with an input
# it answers without any AWS call (an invalid release input; a POST /events body that is refused).
PROBE = """
import json, sys
from infra.lambda_runtime import LambdaContext, api_gateway_event
import importlib
module = importlib.import_module(sys.argv[1])
print(json.dumps({"xray_loaded_by_import": any(m.startswith("aws_xray_sdk") for m in sys.modules)}))
if sys.argv[1] == "functions.release.app":
    event = {"decision_id": "not-a-decision-id"}
else:
    event = api_gateway_event("POST", "/events", body="[]")
module.handler(event, LambdaContext("probe"))
print(json.dumps({"xray_loaded_after_invocation": "aws_xray_sdk.core" in sys.modules}))
"""


@pytest.fixture
def xray_daemon() -> Iterator[socket.socket]:
    """A UDP socket standing in for the X-Ray daemon Lambda runs next to the function."""
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(0.2)  # read after the probe exited: whatever was sent is already queued
    yield daemon
    daemon.close()


def received(daemon: socket.socket) -> list[dict[str, Any]]:
    """The segment documents the daemon got (each datagram: a JSON header line, then the document)."""
    documents = []
    try:
        while True:
            data, _ = daemon.recvfrom(65536)
            documents.append(json.loads(data.decode().split("\n", 1)[1]))
    except TimeoutError:
        return documents


def lambda_with_active_tracing(daemon: socket.socket) -> dict[str, str]:
    port = daemon.getsockname()[1]
    return {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "LAMBDA_TASK_ROOT": str(ROOT),
        "AWS_LAMBDA_FUNCTION_NAME": "probe",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "followup-governor",
        "POWERTOOLS_METRICS_NAMESPACE": "FollowUpGovernorTest",
        # What Lambda sets for an invocation it samples with Tracing: Active, and where its daemon listens
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{port}",
        # Settings the ingest route reads (no AWS call is made: the body is refused first)
        "LEDGER_TABLE": "ledger",
        "DECISION_LOG_TABLE": "log",
        "EVENT_BUS_NAME": "bus",
        "POLICY_TABLE": "policy",
        "STATS_TABLE": "stats",
    }


@pytest.mark.parametrize(
    "module,subsegments",
    [
        ("functions.release.app", {"## handler"}),
        ("functions.ingest.app", {"## handler", "## functions.ingest.app.post_events"}),
    ],
)
def test_a_handler_loads_xray_at_its_first_invocation_and_is_traced_as_before(
    xray_daemon: socket.socket, module: str, subsegments: set[str]
) -> None:
    # Given Lambda's environment with active tracing, and a fresh interpreter
    env = lambda_with_active_tracing(xray_daemon)
    # When it imports the handler and invokes it once
    done = subprocess.run(
        [sys.executable, "-c", PROBE, module],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    flags = {
        k: v for line in done.stdout.splitlines() if line.startswith('{"xray') for k, v in json.loads(line).items()
    }
    # Then the import did not load the X-Ray SDK, the invocation did
    assert flags == {"xray_loaded_by_import": False, "xray_loaded_after_invocation": True}
    # And X-Ray received the handler's subsegment (and the traced route's), annotated as before
    documents = {d["name"]: d for d in received(xray_daemon)}
    assert subsegments <= set(documents)
    assert documents["## handler"]["annotations"] == {"ColdStart": True, "Service": "followup-governor"}
    assert documents["## handler"]["trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"


def test_the_lazy_tracer_refuses_what_it_cannot_wrap_faithfully() -> None:
    from shared.adapters.tracing import LazyTracer

    # Given a lazy tracer and a coroutine function (Powertools picks its wrapper by the function's kind)
    tracer = LazyTracer()

    async def route() -> None:
        return None

    # Then decorating it is refused at once, rather than traced wrongly at the first call
    with pytest.raises(TypeError, match="plain functions"):
        tracer.capture_method(route)
    # And nothing was built for it
    assert not tracer.built


# Loaded by the first invocation that needs them, never by the import (issue 12, cold imports).
FIRST_USE_ONLY = ("aws_xray_sdk", "boto3", "botocore.config", "botocore.retries.standard")


@pytest.mark.parametrize("module", sorted({h.rsplit(".", 1)[0] for h in template.handlers().values()}))
def test_no_handler_loads_xray_or_the_aws_client_machinery_at_import(module: str) -> None:
    # Given Lambda's environment (tracing on) and a fresh interpreter
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "LAMBDA_TASK_ROOT": str(ROOT)}
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.startswith({FIRST_USE_ONLY!r})))"
    # When it imports a handler of template.yaml
    done = subprocess.run(
        [sys.executable, "-c", code], check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    # Then neither X-Ray nor boto3's sessions, client configuration or retry rules were loaded
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
