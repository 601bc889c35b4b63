"""Prints the published JSON Schema of the InteractionClosed event detail.

`make schema` writes it to infra/interaction-closed.schema.json, the file upstream teams validate
against; tests/unit/test_event_contract.py fails when the committed file and the model drift apart.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from shared.domain.events import json_schema

SCHEMA_FILE = Path(__file__).resolve().with_name("interaction-closed.schema.json")


def render() -> str:
    """The schema exactly as committed: sorted keys, two-space indent, trailing newline."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
