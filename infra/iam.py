"""Least privilege from observation: what each function's code is seen calling, against what its role grants.

A test run records every AWS call the product makes (a botocore `before-parameter-build` hook on
every client: it sees the call's own parameters), names the function whose handler is on the call
stack and the template resource the call touched, and maps the operation to the IAM action that
authorises it. `make iam` runs the whole suite and writes the result to infra/iam-usage.json;
tests/test_template.py checks that each role of the translated template grants exactly that
file's actions on exactly its resources, plus what Lambda's event source mappings do on the
function's behalf; the suite's own run checks that it saw no call outside the file
(tests/iam_plugin.py).

Only calls made by product code count: the innermost frame of this repository on the stack must be
in shared/ or functions/ (a test's own boto3 client, or a test callback run inside a handler, is not
the product's), and a frame of functions/<name>/ names the function. Work a handler hands to a
thread pool inherits the submitting thread's function.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
USAGE_FILE = ROOT / "infra" / "iam-usage.json"
Grant = tuple[str, str]  # (IAM action, template resource: logical id, or "Table/index/name")

_ROOT = f"{ROOT}{os.sep}"
_IGNORED = (f"{ROOT / '.venv'}{os.sep}", __file__)
_PRODUCT = (f"{ROOT / 'shared'}{os.sep}", f"{ROOT / 'functions'}{os.sep}")
_FUNCTIONS = f"{ROOT / 'functions'}{os.sep}"

# Managed policies a function's role may carry: its own log lines and X-Ray segments, no data access.
ALLOWED_MANAGED_POLICIES = {"service-role/AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess"}
# What Lambda's SQS event source mapping does with the function's role, on the mapped queue.
SQS_EVENT_SOURCE_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
# What Lambda's DynamoDB stream event source mapping does with it: read the stream (listing is
# authorised on the table's streams), and describe a failed batch to its on-failure queue.
STREAM_EVENT_SOURCE_ACTIONS = ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator")
STREAM_LIST_ACTION = "dynamodb:ListStreams"
# DynamoDB authorises each item of a transaction with the single-item action.
_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


# ---- what a call needs -------------------------------------------------------------------------


def needed(service: str, operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """The (IAM action, physical resource) pairs that authorise one API call."""
    if service == "dynamodb":
        return _dynamodb(operation, params)
    if service == "sqs":
        queue = params.get("QueueUrl") or params.get("QueueName") or "?"
        return [(f"sqs:{operation.removesuffix('Batch')}", queue)]
    if service == "events" and operation == "PutEvents":
        return [("events:PutEvents", e.get("EventBusName", "default")) for e in params.get("Entries", [])]
    if service == "secretsmanager":
        return [(f"secretsmanager:{operation}", params.get("SecretId", "?"))]
    if service == "scheduler" and operation in ("CreateSchedule", "DeleteSchedule"):
        # Authorised on the schedule (named here by its group); creating one also passes its target's role.
        pairs = [(f"scheduler:{operation}", params.get("GroupName", "default"))]
        if "RoleArn" in params.get("Target", {}):
            pairs.append(("iam:PassRole", params["Target"]["RoleArn"]))
        return pairs
    if service == "states" and operation == "StartExecution":
        return [("states:StartExecution", params.get("stateMachineArn", "?"))]
    # Anything else is named "?" so that the comparison fails and says to teach this function.
    return [(f"{service}:{operation}", "?")]


# GetRecords names only a shard iterator: it is authorised on the stream the iterator was got for,
# the one the same thread last asked an iterator of (a function reads one stream).
_stream_of_iterators = threading.local()


def _dynamodb(operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    if "StreamArn" in params:  # DynamoDB Streams: DescribeStream, GetShardIterator
        _stream_of_iterators.arn = params["StreamArn"]
        return [(f"dynamodb:{operation}", params["StreamArn"])]
    if operation == "GetRecords":
        return [("dynamodb:GetRecords", getattr(_stream_of_iterators, "arn", "?"))]
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [(f"dynamodb:{operation}", table) for table in params.get("RequestItems", {})]
    if operation in ("TransactWriteItems", "TransactGetItems"):
        found = []
        for item in params.get("TransactItems", []):
            for kind, request in item.items():
                action = "GetItem" if kind == "Get" else _TRANSACT_ACTIONS[kind]
                found.append((f"dynamodb:{action}", request["TableName"]))
        return found
    table = params.get("TableName", "?")
    if params.get("IndexName"):
        table = f"{table}/index/{params['IndexName']}"
    return [(f"dynamodb:{operation}", table)]


def logical(physical: str) -> str:
    """The template resource a physical name, URL or ARN belongs to ("?name" if none provisioned it)."""
    from infra.local.provision import logical_id

    table, stream, _ = physical.partition("/stream/")
    if stream:  # a table's stream is X/stream (as the template's grants name it)
        found = logical_id(table) or logical_id(table.rsplit("/", 1)[-1])
        return f"{found}/stream" if found else f"?{physical}"
    base, _, index = physical.partition("/index/")
    found = logical_id(base) or logical_id(base.rsplit("/", 1)[-1])
    if found is None:
        return f"?{physical}"
    return f"{found}/index/{index}" if index else found


# ---- who made a call ---------------------------------------------------------------------------

_inherited = threading.local()


def _caller(frame: FrameType | None) -> tuple[bool, str | None]:
    """(made by product code, the functions/<name> directory on the stack, if any)."""
    product: bool | None = None
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(_ROOT) and not filename.startswith(_IGNORED):
            if product is None:
                product = filename.startswith(_PRODUCT)
                if not product:
                    return False, None
            if filename.startswith(_FUNCTIONS):
                return True, filename[len(_FUNCTIONS) :].split(os.sep, 1)[0]
        frame = frame.f_back
    return bool(product), getattr(_inherited, "function", None)


class Recorder:
    """The product's calls seen while it is active: function directory -> {(action, physical)}."""

    def __init__(self) -> None:
        self.calls: dict[str, set[tuple[str, str]]] = {}
        self.unattributed: Counter[str] = Counter()
        self._lock = threading.Lock()

    def record(self, function: str | None, pairs: list[tuple[str, str]]) -> None:
        with self._lock:
            if function is None:
                self.unattributed.update(action for action, _ in pairs)
            else:
                self.calls.setdefault(function, set()).update(pairs)

    def usage(self) -> dict[str, set[Grant]]:
        """Function logical id -> {(action, template resource)}."""
        by_directory = {handler.split(".")[1]: name for name, handler in _handlers().items()}
        found: dict[str, set[Grant]] = {}
        for directory, pairs in self.calls.items():
            function = by_directory.get(directory, f"?functions/{directory}")
            found.setdefault(function, set()).update((action, logical(p)) for action, p in pairs)
        return found


_recorders: list[Recorder] = []
_installed = False


def _before_parameter_build(model: Any, params: dict[str, Any], **_: Any) -> None:
    if not _recorders:
        return
    product, function = _caller(sys._getframe(1))
    if not product:
        return
    pairs = needed(model.service_model.signing_name, model.name, params)
    for recorder in list(_recorders):
        recorder.record(function, pairs)


def _install() -> None:
    """Hooks every botocore session created from now on, and thread pools, once per process."""
    global _installed
    if _installed:
        return
    import botocore.handlers

    # The way moto hooks every client: each new session registers the built-in handlers.
    botocore.handlers.BUILTIN_HANDLERS.append(("before-parameter-build", _before_parameter_build))
    submit = ThreadPoolExecutor.submit

    def carrying(self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        _, function = _caller(sys._getframe(1)) if _recorders else (False, None)
        if function is None:
            return submit(self, fn, *args, **kwargs)

        def run(*a: Any, **k: Any) -> Any:
            _inherited.function = function
            try:
                return fn(*a, **k)
            finally:
                _inherited.function = None

        return submit(self, run, *args, **kwargs)

    ThreadPoolExecutor.submit = carrying  # type: ignore[method-assign,assignment]
    _installed = True


@contextmanager
def recording() -> Iterator[Recorder]:
    """Records the product's AWS calls made by clients created while (or after) the hook exists."""
    _install()
    recorder = Recorder()
    _recorders.append(recorder)
    try:
        yield recorder
    finally:
        _recorders.remove(recorder)


# ---- what the template grants ------------------------------------------------------------------


def _handlers() -> dict[str, str]:
    from infra import template

    return template.handlers()


def _target(resource: Any) -> str:
    """A statement's resource as a template resource: GetAtt X.Arn / Ref X -> X, ${X.Arn}/index/i -> X/index/i."""
    if resource == "*":
        return "*"
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        target = resource["Fn::GetAtt"]
        logical, attribute = target if isinstance(target, list) else target.split(".", 1)
        # A table's stream is a resource of its own: X/stream, as its table's indexes are X/index/i.
        return f"{logical}/stream" if attribute == "StreamArn" else str(logical)
    if isinstance(resource, dict) and "Ref" in resource:
        return str(resource["Ref"])
    if isinstance(resource, dict) and "Fn::Sub" in resource and isinstance(resource["Fn::Sub"], str):
        match = re.fullmatch(r"\$\{(\w+)\.Arn\}(/.*)?", resource["Fn::Sub"])
        if match:
            return match[1] + (match[2] or "")
        # Every schedule of a schedule group: arn:...:scheduler:...:schedule/${Group}/*
        match = re.fullmatch(
            r"arn:\$\{AWS::Partition\}:scheduler:\$\{AWS::Region\}:\$\{AWS::AccountId\}:schedule/\$\{(\w+)\}/\*",
            resource["Fn::Sub"],
        )
        if match:
            return match[1]
    raise ValueError(f"teach infra/iam.py to read this resource: {json.dumps(resource)}")


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_of(function: dict[str, Any]) -> str:
    role = function["Properties"]["Role"]["Fn::GetAtt"]
    return str(role[0] if isinstance(role, list) else role.split(".")[0])


def granted(translated: dict[str, Any]) -> dict[str, set[Grant]]:
    """Function logical id -> the (action, resource) pairs its role's inline statements allow."""
    resources = translated["Resources"]
    found: dict[str, set[Grant]] = {}
    for name, function in resources.items():
        if function["Type"] != "AWS::Lambda::Function":
            continue
        role = resources[role_of(function)]["Properties"]
        pairs: set[Grant] = set()
        for policy in role.get("Policies", []):
            for statement in _listed(policy["PolicyDocument"]["Statement"]):
                assert statement["Effect"] == "Allow", f"{name}: only Allow statements are compared"
                for action in _listed(statement["Action"]):
                    pairs |= {(action, _target(r)) for r in _listed(statement["Resource"])}
        found[name] = pairs
    return found


def managed_policies(translated: dict[str, Any]) -> dict[str, set[str]]:
    """Function logical id -> names of the AWS managed policies on its role (after ':policy/')."""
    resources = translated["Resources"]
    found = {}
    for name, function in resources.items():
        if function["Type"] == "AWS::Lambda::Function":
            arns = resources[role_of(function)]["Properties"].get("ManagedPolicyArns", [])
            found[name] = {json.dumps(arn).split(":policy/", 1)[-1].rstrip('"}') for arn in arns}
    return found


def event_source_usage(translated: dict[str, Any]) -> dict[str, set[Grant]]:
    """What Lambda itself does with each function's role: poll, delete and describe its SQS queues;
    read its DynamoDB streams and send what failed to their on-failure destinations."""
    found: dict[str, set[Grant]] = {}
    for mapping in translated["Resources"].values():
        if mapping["Type"] != "AWS::Lambda::EventSourceMapping":
            continue
        props = mapping["Properties"]
        function, source = props["FunctionName"]["Ref"], _target(props["EventSourceArn"])
        grants = found.setdefault(function, set())
        if not source.endswith("/stream"):
            grants.update((action, source) for action in SQS_EVENT_SOURCE_ACTIONS)
            continue
        grants.update((action, source) for action in STREAM_EVENT_SOURCE_ACTIONS)
        grants.add((STREAM_LIST_ACTION, f"{source}/*"))
        destination = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        if destination is not None:
            grants.add(("sqs:SendMessage", _target(destination)))
    return found


# ---- the committed usage -----------------------------------------------------------------------


def load(path: Path = USAGE_FILE) -> dict[str, set[Grant]]:
    document = json.loads(path.read_text()) if path.exists() else {"functions": {}}
    return {name: {(a, r) for a, r in pairs} for name, pairs in document["functions"].items()}


def save(usage: dict[str, set[Grant]], path: Path = USAGE_FILE) -> None:
    every = {name: sorted(usage.get(name, set())) for name in sorted(set(_handlers()) | set(usage))}
    functions = ",\n".join(
        f"  {json.dumps(name)}: ["
        + ",".join(f"\n   {json.dumps(list(pair))}" for pair in pairs)
        + ("\n  ]" if pairs else "]")
        for name, pairs in every.items()
    )
    about = (
        "Each function's AWS calls seen in a run of the test suite, as [IAM action, template resource]. "
        "Written by `make iam` (the whole suite); tests/test_template.py checks each role grants exactly these."
    )
    path.write_text(f'{{\n "about": {json.dumps(about)},\n "functions": {{\n{functions}\n }}\n}}\n')


def differences(left: dict[str, set[Grant]], right: dict[str, set[Grant]]) -> dict[str, set[Grant]]:
    """What `left` has that `right` lacks, by function."""
    found = {name: pairs - right.get(name, set()) for name, pairs in left.items()}
    return {name: pairs for name, pairs in found.items() if pairs}


def describe(found: dict[str, set[Grant]]) -> list[str]:
    return [
        f"{name}: {action} on {resource}" for name, pairs in sorted(found.items()) for action, resource in sorted(pairs)
    ]
