"""A handler's cold import leaves out what its first invocation can load (issue 12, goal 3), checked
without timing: which modules a fresh interpreter holds after importing a handler of template.yaml,
and that the first request then loads them and answers as before. The time itself is measured by
bench/cold_imports.py (`make bench`); tests/unit/test_lazy_tracing.py covers X-Ray and boto3.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra import template

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = sorted({h.rsplit(".", 1)[0] for h in template.handlers().values()})

# Never loaded by a handler's import: the explanations' sentences and stored form are compiled when
# an explanation is first rendered, encoded or decoded.
NO_HANDLER_IMPORTS = ("shared.domain.explanation_templates",)
# The HTTP APIs also leave out botocore's exceptions (shared.api.http classifies them once
# botocore has loaded them), hashlib (OpenSSL: the fingerprints use CPython's sha256) and, those
# that read settings only through shared.wiring, the settings model (built by the first factory).
LEFT_OUT = {
    "functions.admin_api.app": ("botocore.exceptions", "hashlib", "shared.config", "shared.domain.events"),
    "functions.decide_api.app": ("botocore.exceptions", "hashlib", "shared.config"),
    "functions.outcomes_api.app": ("botocore.exceptions", "hashlib", "shared.config"),
    "functions.policy_api.app": ("botocore.exceptions", "hashlib", "shared.domain.decision"),
    "functions.release.app": ("shared.config",),
}


def fresh_interpreter(code: str) -> str:
    """stdout of `code` run by a new interpreter in a Lambda-like environment without AWS settings."""
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "LAMBDA_TASK_ROOT": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_handler_with_a_lean_import_is_listed() -> None:
    # Given the handlers named here
    # Then each is a handler of template.yaml (a renamed one would make its check vacuous)
    assert set(LEFT_OUT) <= set(HANDLERS)


@pytest.mark.parametrize("module", HANDLERS)
def test_a_handler_import_leaves_out_what_its_first_invocation_loads(module: str) -> None:
    # Given a fresh interpreter
    watched = NO_HANDLER_IMPORTS + LEFT_OUT.get(module, ())
    code = (
        f"import sys, {module}\n"
        f"print(sorted(w for w in {watched!r} if any(m == w or m.startswith(w + '.') for m in sys.modules)))"
    )
    # When it imports a handler of template.yaml
    loaded = fresh_interpreter(code).strip()
    # Then none of the modules its first invocation loads is there yet
    assert loaded == "[]"


def test_the_admin_api_checks_a_customer_id_at_its_first_request_after_a_lean_import() -> None:
    # Given the admin API imported in a fresh interpreter (the event contract left out)
    code = """
import json, sys
from infra.lambda_runtime import LambdaContext, api_gateway_event
from functions.admin_api import app
print(json.dumps({"events_loaded_by_import": "shared.domain.events" in sys.modules}))
answer = app.handler(api_gateway_event("GET", "/customers/someone@example.com/preferences"), LambdaContext("probe"))
print(json.dumps({"status": answer["statusCode"], "body": json.loads(answer["body"])}))
"""
    # When its first request names a customer by an e-mail address (refused before any AWS call)
    lines = [json.loads(line) for line in fresh_interpreter(code).splitlines() if line.startswith("{")]
    # Then the import had not loaded the event contract, and the request is refused as before
    assert lines[0] == {"events_loaded_by_import": False}
    assert lines[1]["status"] == 400
    assert lines[1]["body"]["code"] == "INVALID_INPUT"
    assert "e-mail address" in lines[1]["body"]["message"]


def test_an_explanation_loads_its_sentences_when_first_read_and_reads_as_before() -> None:
    # Given a fresh interpreter holding the decision model and an explanation of engine records
    code = """
import json, sys
from datetime import UTC, datetime
from shared.domain.decision import Explanation
from shared.domain import explanation
records = (("cbe", True), ("mht", False, 30, 60))
held = Explanation(records)
loaded = {"before": "shared.domain.explanation_templates" in sys.modules, "length": len(held)}
checks = [c.model_dump() for c in held]
loaded["after"] = "shared.domain.explanation_templates" in sys.modules
base = datetime(2026, 11, 23, tzinfo=UTC)
loaded["round_trip"] = explanation.decode(explanation.encode(held, base), base) == held
print(json.dumps({**loaded, "checks": checks}))
"""
    # When it is counted, then read, then stored and read back
    answer = json.loads(fresh_interpreter(code).strip().splitlines()[-1])
    # Then the sentences were loaded by the first read, not before, and render as they always did
    assert (answer["before"], answer["length"], answer["after"], answer["round_trip"]) == (False, 2, True, True)
    assert answer["checks"] == [
        {"rule": "callback_enabled", "passed": True, "message": "callbacks are enabled", "figures": {}},
        {
            "rule": "min_handle_time",
            "passed": False,
            "message": "handled in 30 s, surveys need 60 s",
            "figures": {"handle_seconds": 30, "minimum_seconds": 60},
        },
    ]
