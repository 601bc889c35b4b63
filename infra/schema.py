"""Prints a published JSON Schema: the InteractionClosed event detail (the default) or, with the
argument `followup-outcome`, the FollowUpOutcome detail.

`make schema` writes them to infra/interaction-closed.schema.json and infra/followup-outcome.schema.json,
the files upstream and sending teams validate against; tests/unit/test_event_contract.py and
tests/unit/test_outcome_contract.py fail when a committed file and its model drift apart.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.domain import events, outcomes

HERE = Path(__file__).resolve().parent
SCHEMA_FILE = HERE / "interaction-closed.schema.json"
OUTCOME_SCHEMA_FILE = HERE / "followup-outcome.schema.json"
SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    "interaction-closed": events.json_schema,
    "followup-outcome": outcomes.json_schema,
}


def render(name: str = "interaction-closed") -> str:
    """The schema exactly as committed: sorted keys, two-space indent, trailing newline."""
    return json.dumps(SCHEMAS[name](), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> None:
    name = argv[0] if argv else "interaction-closed"
    if name not in SCHEMAS:
        sys.exit(f"unknown schema {name!r}; one of {', '.join(SCHEMAS)}")
    sys.stdout.write(render(name))


if __name__ == "__main__":
    main(sys.argv[1:])
