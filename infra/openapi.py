"""The OpenAPI documents of the HTTP APIs, generated from their Powertools resolvers and models.

`make openapi` writes them to docs/openapi/; a test fails when the committed files drift.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "openapi"
# API name -> (resolver module, title)
APIS = {
    "policy-api": ("functions.policy_api.app", "Follow-up governor: marketing-ops policy API"),
    "admin-api": ("functions.admin_api.app", "Follow-up governor: admin API"),
}


def document(name: str) -> str:
    module, title = APIS[name]
    app = importlib.import_module(module).app
    schema = app.get_openapi_json_schema(
        title=title,
        version="1.0.0",
        description="Every route requires SigV4 (IAM) authorisation when deployed. Errors are JSON: "
        '{"code", "message", "fields": [{"field", "message"}]}.',
    )
    return json.dumps(json.loads(schema), indent=2, sort_keys=True) + "\n"


def write_all() -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    for name in APIS:
        (DOCS / f"{name}.json").write_text(document(name))


if __name__ == "__main__":
    write_all()
    sys.stdout.write(f"wrote {', '.join(f'docs/openapi/{n}.json' for n in APIS)}\n")
