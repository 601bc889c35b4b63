"""Records every AWS call the product makes during the run (infra/iam.py) and holds the run to
infra/iam-usage.json, the usage the template's roles are checked against (tests/test_template.py).

- Any run: a call outside the file is reported at the end. A partial run (some files, -k, -m) only
  warns, since the people changing code run just their tests; the whole suite fails.
- The whole suite, all passing: a call listed in the file that no test made also fails the run
  (the file, and so the template, would grant more than the code uses).
- GOVERNOR_IAM_USAGE=write (`make iam`): the whole suite, every test outside tests/test_template.py
  passing, replaces the file with what it saw (the template tests make no product calls, and fail
  until the template follows the file). Any other run (some files, a failure, -x) only adds what it
  saw and removes nothing: a test that did not run may make the calls it did not see.
- Under pytest-xdist (`-n`), each worker records its own calls and hands them (and what it
  deselected) to the controller when it finishes; the controller holds the union to the file, as
  one process running every test would.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from infra import iam

_state: dict[str, Any] = {"deselected": 0, "failed": [], "report": [], "workers": {}}


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    recording = iam.recording()
    _state["recording"] = recording
    _state["recorder"] = recording.__enter__()


def pytest_deselected(items: list[pytest.Item]) -> None:
    _state["deselected"] += len(items)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """An xdist worker finished: add what it saw (a worker that died sent nothing, and failed the run)."""
    seen = getattr(node, "workeroutput", {}).get("iam_usage")
    if seen is None:
        return
    for function, pairs in seen["calls"].items():
        _state["workers"].setdefault(function, set()).update((action, resource) for action, resource in pairs)
    # Every worker collects the whole run and deselects the same tests.
    _state["deselected"] = max(_state["deselected"], seen["deselected"])


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed:
        _state["failed"].append(report.nodeid)


def _whole_suite(session: pytest.Session) -> bool:
    config = session.config
    tests = iam.ROOT / "tests"
    args = {Path(str(a).split("::")[0]).resolve() for a in config.args}
    return (
        args in ({tests}, {iam.ROOT})
        and not config.option.keyword
        and not config.option.markexpr
        and not _state["deselected"]
        and not config.option.collectonly
        and session.testscollected > 0
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    recorder: iam.Recorder = _state["recorder"]
    _state["recording"].__exit__(None, None, None)
    observed = recorder.usage()
    if _is_worker(session.config):
        # The controller checks or writes the union of every worker's calls (pytest_testnodedown).
        calls = {function: sorted(list(pair) for pair in pairs) for function, pairs in observed.items()}
        session.config.workeroutput["iam_usage"] = {"calls": calls, "deselected": _state["deselected"]}  # type: ignore[attr-defined]
        return
    for function, pairs in _state["workers"].items():
        observed.setdefault(function, set()).update(pairs)
    whole = _whole_suite(session)
    lines: list[str] = _state["report"]
    if os.environ.get("GOVERNOR_IAM_USAGE") == "write":
        before = iam.load()
        product_failures = [n for n in _state["failed"] if not n.startswith("tests/test_template.py")]
        complete = whole and not product_failures and not session.shouldfail and not session.shouldstop
        if not complete:
            # Some tests did not run (or stopped early): add what was seen, remove nothing.
            observed = {f: before.get(f, set()) | observed.get(f, set()) for f in set(before) | set(observed)}
        iam.save(observed)
        lines.append(f"IAM usage written to {iam.USAGE_FILE.relative_to(iam.ROOT)}")
        if not complete:
            lines.append("  partial run: calls added, none removed (`make iam` on the whole suite removes unused ones)")
            lines += [f"  failed: {n}" for n in product_failures]
        lines += [f"  + {d}" for d in iam.describe(iam.differences(observed, before))]
        lines += [f"  - {d}" for d in iam.describe(iam.differences(before, observed))]
        return
    committed = iam.load()
    unlisted = iam.describe(iam.differences(observed, committed))
    unused = iam.describe(iam.differences(committed, observed)) if whole and exitstatus == 0 else []
    if unlisted:
        lines.append("AWS calls the product made that infra/iam-usage.json lacks (run `make iam`, then grant them):")
        lines += [f"  {d}" for d in unlisted]
    if unused:
        lines.append("infra/iam-usage.json lists calls no test made (run `make iam`, then drop their grants):")
        lines += [f"  {d}" for d in unused]
    if whole and (unlisted or unused):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _state["report"]:
        terminalreporter.section("IAM usage")
        for line in _state["report"]:
            terminalreporter.write_line(line)
