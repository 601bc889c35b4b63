"""Prints the pinned requirements from pyproject.toml (runtime only, or with --all the dev pins too).

pyproject.toml is the one place versions are pinned; requirements.txt (what `sam build`
installs into the functions) is generated from it by `make requirements`.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pins(include_dev: bool) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = list(project["dependencies"])
    if include_dev:  # every optional group: the command line's and the developers'
        for group in project["optional-dependencies"].values():
            found += group
    return found


if __name__ == "__main__":
    header = "# Generated from pyproject.toml by `make requirements`; do not edit.\n"
    sys.stdout.write(header + "\n".join(pins("--all" in sys.argv)) + "\n")
