"""template.yaml, loaded and run through the SAM transform: the single source of local resources.

`python -m infra.template --translated` prints the plain CloudFormation that `sam deploy` would
create, which `make test` lints with cfn-lint (cfn-lint on the SAM file alone misses SAM errors).
"""

from __future__ import annotations

import copy
import json
import os
import sys
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"


@cache
def _raw() -> dict[str, Any]:
    from cfnlint.decode import decode_str

    template, problems = decode_str(TEMPLATE.read_text())
    if problems or template is None:
        raise ValueError(f"template.yaml does not parse: {problems}")
    # cfn-lint's nodes carry line marks; a JSON round trip leaves plain dicts and strings.
    plain: dict[str, Any] = json.loads(json.dumps(template, default=str))
    return plain


def raw() -> dict[str, Any]:
    return copy.deepcopy(_raw())


class _NoManagedPolicies:
    """The translator asks AWS for managed policy ARNs; the template uses inline statements only."""

    def load(self) -> dict[str, str]:
        return {}


@cache
def _translated() -> dict[str, Any]:
    from samtranslator.translator.transform import transform

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template = raw()
    # The translator wants code in S3; `sam build` would upload it. The location is irrelevant here.
    template.get("Globals", {}).get("Function", {}).pop("CodeUri", None)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://local-build/code.zip"
    return transform(template, {}, _NoManagedPolicies())  # type: ignore[no-any-return]


def translated() -> dict[str, Any]:
    return copy.deepcopy(_translated())


def handlers() -> dict[str, str]:
    """Logical id of each function -> its Handler (module path + function name)."""
    return {
        name: resource["Properties"]["Handler"]
        for name, resource in translated()["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    }


if __name__ == "__main__":
    if "--translated" in sys.argv:
        json.dump(translated(), sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
