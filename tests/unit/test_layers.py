"""The layers of shared/ are visible in the tree and kept by this test.

- shared/domain is pure: it imports no AWS SDK and no Powertools, and nothing outside the domain;
- shared/adapters never import the HTTP edge; the domain and adapters never import the functions.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / "shared"
FORBIDDEN_IN_DOMAIN = ("boto3", "botocore", "aws_lambda_powertools", "aws_xray_sdk", "shared.", "functions", "infra")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def modules_of(layer: str) -> list[Path]:
    return sorted((SHARED / layer).glob("*.py"))


@pytest.mark.parametrize("path", modules_of("domain"), ids=lambda p: p.name)
def test_the_domain_imports_no_sdk_no_powertools_and_no_outer_layer(path: Path) -> None:
    # Given a module of the pure domain
    # When its imports are read
    outside = {
        name
        for name in imported_modules(path)
        if name.startswith(FORBIDDEN_IN_DOMAIN) and not name.startswith("shared.domain")
    }
    # Then none reaches the SDK, Powertools or an outer layer
    assert not outside, f"{path.name} imports {sorted(outside)}"


@pytest.mark.parametrize("layer", ["adapters", "usecases", "domain"])
def test_inner_layers_never_import_the_http_edge_or_the_functions(layer: str) -> None:
    # Given every module of an inner layer
    for path in modules_of(layer):
        # Then none imports the HTTP edge or a Lambda function
        edge = {n for n in imported_modules(path) if n.startswith(("shared.api", "functions", "cli"))}
        assert not edge, f"{layer}/{path.name} imports {sorted(edge)}"


def test_importing_the_whole_domain_loads_no_aws_sdk_or_powertools() -> None:
    # Given a clean interpreter
    names = [f"shared.domain.{p.stem}" for p in modules_of("domain") if p.stem != "__init__"]
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 'aws_lambda_powertools'))\n"
        "print(','.join(bad))\n"
    )
    # When every domain module is imported
    result = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Then not even a transitive import brought the SDK or Powertools in
    assert result.stdout.strip() == ""


def test_shared_has_no_flat_modules_beyond_the_composition_root() -> None:
    # Given the top of shared/
    flat = sorted(p.name for p in SHARED.glob("*.py") if p.name != "__init__.py")
    # Then only the process-wide wiring, settings and the test-only fault hook live there
    assert flat == ["config.py", "faults.py", "wiring.py"]
