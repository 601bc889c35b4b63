"""Cold import of each handler named in template.yaml against `import boto3` plus Powertools'
Logger, Metrics and Tracer classes, measured in the same run (issue 12, goal 3: every ratio <= 1.3).

Each figure is the least of `repeats` fresh interpreters, the baseline and the handlers shuffled
round by round (see `measure`). The interpreters see what a Lambda cold start sees:
- the governor's code as SAM packages it: source only (its builder leaves `__pycache__` out, and
  /var/task is read-only), so every module a handler imports is compiled as it is imported. The
  code is copied to a scratch directory for that, so stale or missing bytecode in the checkout
  cannot change the figures; the libraries keep the bytecode pip compiled for them;
- Lambda's own variables (Powertools believes it runs in Lambda, so tracing is enabled, as
  deployed), but no AWS credentials or endpoint: nothing at import may need them.

`python -m bench.cold_imports` prints the table; `--importtime MODULE` prints `-X importtime`'s
heaviest imports of one module, to see what a handler pulls in; `--instructions` counts the
instructions each import executes instead (valgrind), the same on a busy machine as on a quiet one:
for comparing two trees (`--source`) while others load the machine. The goal is judged on CPU time.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from infra import template

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "import boto3; from aws_lambda_powertools import Logger, Metrics, Tracer"
PROBE = (
    "import time; w, c = time.perf_counter(), time.process_time(); {statement}; "
    "print(time.perf_counter() - w, time.process_time() - c)"
)
GOAL = 1.3


# What a handler can import from the code root (template.yaml: CodeUri: .).
PACKAGES = ("functions", "shared")


@contextmanager
def task_root(source: Path = ROOT) -> Iterator[Path]:
    """A source-only copy of the governor's packages, as SAM's build leaves them in /var/task."""
    with tempfile.TemporaryDirectory(prefix="cold-imports-") as scratch:
        for package in PACKAGES:
            shutil.copytree(
                source / package, Path(scratch) / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        yield Path(scratch)


def lambda_environment(root: Path = ROOT) -> dict[str, str]:
    """The variables a cold start in Lambda has that change what Powertools does at import."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(root),
        # Nothing is written next to the code, so every probe compiles it afresh, as Lambda does.
        "PYTHONDONTWRITEBYTECODE": "1",
        "LAMBDA_TASK_ROOT": str(root),
        "AWS_LAMBDA_FUNCTION_NAME": "cold-import-probe",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "followup-governor",
        "POWERTOOLS_METRICS_NAMESPACE": "FollowUpGovernor",
    }


def _fresh(command: list[str], root: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """`command` run in `root` with Lambda's environment, its output kept."""
    return subprocess.run(
        command, cwd=root, env=lambda_environment(root), capture_output=True, text=True, check=False, timeout=timeout
    )


def cold_seconds(statement: str, root: Path = ROOT) -> tuple[float, float]:
    """One fresh interpreter's (wall, CPU) seconds to run `statement` (imports only), `root` the code root."""
    done = _fresh([sys.executable, "-c", PROBE.format(statement=statement)], root, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{statement!r} failed in a fresh interpreter:\n{done.stderr}")
    wall, cpu = done.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def instructions(statement: str, root: Path = ROOT) -> int:
    """Instructions a fresh interpreter executes for `statement`, its own start-up left out
    (valgrind's callgrind, Ir). Unlike CPU time, a busy machine does not change it; it does not
    see what an instruction costs (a cache miss, a page fault), and runs ~50 times slower."""
    if shutil.which("valgrind") is None:
        raise RuntimeError("--instructions needs valgrind (apt-get install valgrind)")

    def counted(code: str) -> int:
        valgrind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
        done = _fresh([*valgrind, sys.executable, "-c", code], root, timeout=900)
        found = re.search(r"Collected : (\d+)", done.stderr)
        if done.returncode != 0 or found is None:
            raise RuntimeError(f"{code!r} failed under valgrind:\n{done.stderr[-2000:]}")
        return int(found.group(1))

    return counted(statement) - counted("pass")


def instruction_table(source: Path = ROOT) -> str:
    """Per handler: the instructions of its cold import and their ratio to the baseline's."""
    modules = handler_modules(source)
    with task_root(source) as root:
        base = instructions(BASELINE, root)
        lines = [
            "Cold import of each handler, in instructions executed (valgrind; one run each: they do not vary)",
            f"   {'boto3 + Powertools Logger, Metrics, Tracer':<48} {base / 1e6:7.0f} M    1.00x",
        ]
        for logical, module in modules.items():
            count = instructions(f"import {module}", root)
            lines.append(f"   {module:<48} {count / 1e6:7.0f} M   {count / base:5.2f}x   ({logical})")
    return "\n".join(lines)


def handler_modules(source: Path = ROOT) -> dict[str, str]:
    """Logical function name -> handler module, from template.yaml: those `source` has (an older
    tree may lack a function added since)."""
    modules = {logical: handler.rsplit(".", 1)[0] for logical, handler in sorted(template.handlers().items())}
    return {logical: m for logical, m in modules.items() if (source / f"{m.replace('.', '/')}.py").exists()}


def measure(repeats: int = 7, source: Path = ROOT) -> dict[str, Any]:
    """Per handler: its cold import time and its ratio to the baseline's, over `repeats` rounds.

    A round times the baseline and every handler once each, in a shuffled order. Each figure is the
    minimum over the rounds: a shared machine only ever adds time to a probe (other processes,
    a busy cache, a vCPU stolen by the host), so the least disturbed probe is the closest to what
    the import itself costs. The ratio is of CPU time, which waiting for a CPU does not inflate;
    the wall times are reported too. `source` is the tree whose code is measured (this checkout,
    or another, e.g. a `git archive` of an earlier commit)."""
    modules = handler_modules(source)
    statements = {BASELINE: BASELINE, **{logical: f"import {module}" for logical, module in modules.items()}}
    times: dict[str, list[tuple[float, float]]] = {key: [] for key in statements}
    order = list(statements)
    shuffler = random.Random(12)
    with task_root(source) as root:
        for _ in range(repeats):
            shuffler.shuffle(order)
            for key in order:
                times[key].append(cold_seconds(statements[key], root))
    base_cpu = min(cpu for _, cpu in times[BASELINE])
    handlers: dict[str, dict[str, Any]] = {
        logical: {
            "module": modules[logical],
            "cpu_seconds": min(cpu for _, cpu in times[logical]),
            "wall_seconds": min(wall for wall, _ in times[logical]),
            "ratio": min(cpu for _, cpu in times[logical]) / base_cpu,
        }
        for logical in modules
    }
    ratio_max = max(row["ratio"] for row in handlers.values())
    return {
        "baseline": BASELINE,
        "baseline_cpu_seconds": base_cpu,
        "baseline_wall_seconds": min(wall for wall, _ in times[BASELINE]),
        "handlers": handlers,
        "repeats": repeats,
        "cold_import_ratio_max": ratio_max,
        "goal": GOAL,
        "met": ratio_max <= GOAL,
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        f"Cold import of each handler (fresh interpreters, Lambda's environment; least of {result['repeats']}, "
        "shuffled rounds)",
        f"   {'':<48} {'CPU':>8}    {'wall':>8}    ratio (CPU)",
        f"   {'boto3 + Powertools Logger, Metrics, Tracer':<48} {result['baseline_cpu_seconds'] * 1000:5.0f} ms"
        f"    {result['baseline_wall_seconds'] * 1000:5.0f} ms     1.00x",
    ]
    for logical, row in result["handlers"].items():
        lines.append(
            f"   {row['module']:<48} {row['cpu_seconds'] * 1000:5.0f} ms    {row['wall_seconds'] * 1000:5.0f} ms"
            f"   {row['ratio']:6.2f}x   ({logical})"
        )
    verdict = "met" if result["met"] else "NOT met"
    lines.append(f"   worst ratio {result['cold_import_ratio_max']:.2f}x, goal <= {result['goal']}x: {verdict}")
    return "\n".join(lines)


def importtime(module: str, top: int = 25) -> str:
    """The `top` heaviest imports (cumulative microseconds) of `module` in a fresh interpreter."""
    with task_root() as root:
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            cwd=root,
            env=lambda_environment(root),
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|", 2)
        rows.append((int(cumulative), int(own), name.rstrip()))
    rows.sort(reverse=True)
    return "\n".join(f"{cum / 1000:9.1f} ms {own / 1000:7.1f} ms  {name}" for cum, own, name in rows[:top])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--importtime", metavar="MODULE", help="show the heaviest imports of one module instead")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--instructions", action="store_true", help="count instructions (valgrind) instead")
    parser.add_argument("--source", type=Path, default=ROOT, help="the tree to measure (default: this checkout)")
    args = parser.parse_args(argv)
    if args.importtime:
        print(importtime(args.importtime, args.top))
        return 0
    if args.instructions:
        print(instruction_table(args.source))
        return 0
    result = measure(args.repeats, args.source)
    print(table(result))
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
