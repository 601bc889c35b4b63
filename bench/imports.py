"""Cold import time of each handler module named in template.yaml, next to `import boto3`
measured in the same run: what a Lambda cold start pays before the first event."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from infra import template

ROOT = Path(__file__).resolve().parents[1]
PROBE = "import time; s = time.perf_counter(); import {module}; print(time.perf_counter() - s)"


def cold_import_seconds(module: str, repeats: int = 5) -> float:
    """Best of `repeats` fresh interpreters (no bytecode writing, the same environment as Lambda's)."""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    times = []
    for _ in range(repeats):
        done = subprocess.run(
            [sys.executable, "-c", PROBE.format(module=module)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        times.append(float(done.stdout.strip()))
    return min(times)


def measure(repeats: int = 5) -> dict[str, Any]:
    baseline = cold_import_seconds("boto3", repeats)
    handlers = {}
    for logical, handler in sorted(template.handlers().items()):
        module = handler.rsplit(".", 1)[0]
        seconds = cold_import_seconds(module, repeats)
        handlers[logical] = {"module": module, "seconds": seconds, "ratio_to_boto3": seconds / baseline}
    return {"boto3_seconds": baseline, "handlers": handlers, "repeats": repeats}


def table(result: dict[str, Any]) -> str:
    lines = [
        "Cold import of each handler module (fresh interpreter, best of {repeats})".format(**result),
        f"   {'import boto3 (baseline)':<48} {result['boto3_seconds'] * 1000:8.0f} ms     1.00x",
    ]
    for logical, row in result["handlers"].items():
        lines.append(
            f"   {row['module']:<48} {row['seconds'] * 1000:8.0f} ms  {row['ratio_to_boto3']:6.2f}x   ({logical})"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(measure()))
