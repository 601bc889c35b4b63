"""template.yaml as SAM deploys it: handlers importable the way Lambda imports them, least
privilege, the queue wiring AWS recommends, and every data resource present locally."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra import template

ROOT = Path(__file__).resolve().parents[1]
RESOURCES = template.translated()["Resources"]
DATA_SERVICES = ("dynamodb:", "sqs:", "events:", "s3:", "scheduler:")


def of_type(kind: str) -> dict[str, Any]:
    return {name: r for name, r in RESOURCES.items() if r["Type"] == kind}


@pytest.mark.parametrize("logical,handler", sorted(template.handlers().items()))
def test_every_handler_imports_from_a_clean_interpreter_like_lambda(logical: str, handler: str) -> None:
    # Given only the code root on sys.path (Lambda's /var/task) and no AWS settings at all
    module, function = handler.rsplit(".", 1)
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)}
    # When a fresh interpreter imports the handler module and looks the function up
    code = f"import importlib; m = importlib.import_module({module!r}); assert callable(getattr(m, {function!r}))"
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, cwd="/", env=env, capture_output=True, text=True, timeout=60
    )
    # Then it succeeds: nothing at import time needs AWS, the environment or a network
    assert result.returncode == 0, f"{logical}: {result.stderr}"


def statements() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, role in of_type("AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                found.append((name, statement))
    return found


def test_no_data_action_is_granted_on_every_resource() -> None:
    # Given every inline statement of every role SAM generates
    for role, statement in statements():
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        # Then no data action is allowed on "*"
        if any(a.startswith(DATA_SERVICES) for a in actions):
            assert "*" not in resources, f"{role} grants {actions} on *"


def test_the_decide_function_gets_only_the_table_actions_it_uses() -> None:
    # Given the decide function's role
    granted: dict[str, set[str]] = {}
    for role, statement in statements():
        if role != "DecideFunctionRole":
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        target = json.dumps(statement["Resource"])
        for action in actions:
            granted.setdefault(action, set()).add(target)
    # Then it may read and conditionally update the ledger, put log entries, publish, park: nothing more
    dynamodb = {a for a in granted if a.startswith("dynamodb:")}
    assert dynamodb == {"dynamodb:BatchGetItem", "dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:GetItem"}
    assert all("PolicyTable" in r for r in granted["dynamodb:GetItem"])
    # UpdateItem: the ledger slot, the log entry's "counted" mark, the daily counters
    assert all(
        any(t in r for t in ("LedgerTable", "DecisionLogTable", "StatsTable")) for r in granted["dynamodb:UpdateItem"]
    )
    assert all("DecisionLogTable" in r for r in granted["dynamodb:PutItem"])
    assert {a for a in granted if a.startswith("events:")} == {"events:PutEvents"}
    assert all("DecideDeadLetterQueue" in r for r in granted["sqs:SendMessage"])


def test_the_decide_queue_is_wired_as_aws_recommends() -> None:
    function = RESOURCES["DecideFunction"]["Properties"]
    mapping = next(iter(of_type("AWS::Lambda::EventSourceMapping").values()))["Properties"]
    queue = RESOURCES["DecideQueue"]["Properties"]
    # Partial batch responses, so one bad record never fails its neighbours
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # A visibility timeout of at least six times the function timeout
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]
    # A dead-letter queue that keeps parked events as long as SQS allows
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["DecideDeadLetterQueue", "Arn"]}
    assert RESOURCES["DecideDeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600


EXPIRING_TABLES = ("LedgerTable", "DecisionLogTable")  # policy versions are kept for good


def test_tables_are_recoverable_encrypted_and_expire_old_items() -> None:
    for name, table in of_type("AWS::DynamoDB::Table").items():
        props = table["Properties"]
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], name
        assert props["SSESpecification"]["SSEEnabled"], name
        if name in EXPIRING_TABLES:
            assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}, name


def test_alarms_watch_the_dead_letter_queue_and_function_errors() -> None:
    watched = {
        (a["Properties"]["Namespace"], a["Properties"]["MetricName"])
        for a in of_type("AWS::CloudWatch::Alarm").values()
    }
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in watched
    assert ("AWS/Lambda", "Errors") in watched


def test_every_table_index_queue_and_rule_of_the_template_exists_locally(aws: Any) -> None:
    # Given the local stack provisioned from template.yaml (the `aws` fixture)
    dynamodb, sqs, events = boto3.client("dynamodb"), boto3.client("sqs"), boto3.client("events")
    # Then every table exists with its keys, indexes and TTL
    for name, table in of_type("AWS::DynamoDB::Table").items():
        described = dynamodb.describe_table(TableName=aws.names[name])["Table"]
        assert described["KeySchema"] == table["Properties"]["KeySchema"]
        wanted = {i["IndexName"] for i in table["Properties"].get("GlobalSecondaryIndexes", [])}
        assert {i["IndexName"] for i in described.get("GlobalSecondaryIndexes", [])} == wanted
        ttl = dynamodb.describe_time_to_live(TableName=aws.names[name])["TimeToLiveDescription"]
        if name in EXPIRING_TABLES:
            assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    # And every queue, with its redrive policy
    for name, queue in of_type("AWS::SQS::Queue").items():
        attributes = sqs.get_queue_attributes(QueueUrl=aws.urls[name], AttributeNames=["All"])["Attributes"]
        if "RedrivePolicy" in queue["Properties"]:
            assert json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"] == aws.arns["DecideDeadLetterQueue"]
    # And every rule on its bus, targeting its queue
    for name, rule in of_type("AWS::Events::Rule").items():
        bus = aws.names["GovernorBus"]
        described = events.describe_rule(Name=aws.names[name], EventBusName=bus)
        assert json.loads(described["EventPattern"]) == rule["Properties"]["EventPattern"]
        targets = events.list_targets_by_rule(Rule=aws.names[name], EventBusName=bus)["Targets"]
        assert [t["Arn"] for t in targets] == [aws.arns["DecideQueue"]]


def test_requirements_txt_is_generated_from_the_pins_in_pyproject() -> None:
    from infra.pins import pins

    listed = [
        line for line in (ROOT / "requirements.txt").read_text().splitlines() if line and not line.startswith("#")
    ]
    assert listed == pins(include_dev=False), "run `make requirements`"


@pytest.mark.parametrize("name", sorted(__import__("infra.openapi", fromlist=["APIS"]).APIS))
def test_the_committed_openapi_document_is_what_the_code_generates(name: str) -> None:
    from infra import openapi

    committed = (openapi.DOCS / f"{name}.json").read_text()
    assert committed == openapi.document(name), f"docs/openapi/{name}.json drifted: run `make openapi`"


def test_every_route_of_each_api_document_is_routed_in_the_template() -> None:
    from infra import openapi

    routed = {(method.lower(), path.replace("{", "<").replace("}", ">")) for method, path in api_routes()}
    for name in openapi.APIS:
        paths = json.loads((openapi.DOCS / f"{name}.json").read_text())["paths"]
        documented = {(m, p.replace("{", "<").replace("}", ">")) for p, ms in paths.items() for m in ms}
        assert documented <= routed, f"{name}: documented but not routed: {documented - routed}"


def api_routes() -> set[tuple[str, str]]:
    found = set()
    for resource in template.raw()["Resources"].values():
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event["Type"] == "Api":
                found.add((event["Properties"]["Method"].upper(), event["Properties"]["Path"]))
    return found


def test_every_api_route_requires_iam_authorisation_when_deployed() -> None:
    apis = of_type("AWS::ApiGateway::RestApi")
    assert apis
    for name, api in apis.items():
        for path, methods in api["Properties"]["Body"]["paths"].items():
            for method, operation in methods.items():
                assert operation.get("security") == [{"AWS_IAM": []}], (
                    f"{name} {method.upper()} {path} is not IAM-authorised"
                )


def managed_policy_routes(logical: str) -> set[str]:
    statements = RESOURCES[logical]["Properties"]["PolicyDocument"]["Statement"]
    routes = set()
    for statement in statements:
        assert statement["Action"] in ("execute-api:Invoke", "events:PutEvents"), statement
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in resources:
            if "Fn::Sub" in resource:
                routes.add(resource["Fn::Sub"].split("${Stage}/", 1)[1])
    return routes


def test_the_marketing_ops_role_may_call_the_policy_routes_and_nothing_else() -> None:
    routes = managed_policy_routes("MarketingOpsPolicy")
    policy_routes = {
        f"{m}{p}".replace("{version}", "*")
        for m, p in ((m + "/", p.lstrip("/")) for m, p in api_routes() if p.startswith("/policy"))
    }
    assert routes == policy_routes


def test_the_marketing_ops_role_cannot_read_per_customer_data() -> None:
    routes = managed_policy_routes("MarketingOpsPolicy")
    assert not [r for r in routes if "decisions" in r or "customers" in r or "stats" in r]


def test_the_admin_role_may_call_the_admin_routes_and_nothing_else() -> None:
    routes = managed_policy_routes("AdminPolicy")
    admin = {(m, p) for m, p in api_routes() if p.startswith(("/decisions", "/customers", "/stats"))}
    expected = {f"{m}/{p.lstrip('/')}".replace("{decision_id}", "*").replace("{customer_id}", "*") for m, p in admin}
    expected = {r for r in expected if r != "GET/decisions/export"}  # covered by GET/decisions/*
    assert routes == expected


# What each function's code calls, by table (or bus / queue). A new grant must be added here on purpose.
GRANTS = {
    "DecideFunctionRole": {
        ("dynamodb:BatchGetItem", "LedgerTable"),
        ("dynamodb:UpdateItem", "LedgerTable"),
        ("dynamodb:PutItem", "DecisionLogTable"),
        ("dynamodb:UpdateItem", "DecisionLogTable"),
        ("dynamodb:UpdateItem", "StatsTable"),
        ("dynamodb:GetItem", "PolicyTable"),
        ("events:PutEvents", "GovernorBus"),
        ("sqs:SendMessage", "DecideDeadLetterQueue"),
    },
    "IngestFunctionRole": {("events:PutEvents", "GovernorBus")},
    "DecideApiFunctionRole": {
        ("dynamodb:BatchGetItem", "LedgerTable"),
        ("dynamodb:UpdateItem", "LedgerTable"),
        ("dynamodb:PutItem", "DecisionLogTable"),
        ("dynamodb:UpdateItem", "DecisionLogTable"),
        ("dynamodb:UpdateItem", "StatsTable"),
        ("dynamodb:GetItem", "PolicyTable"),
        ("events:PutEvents", "GovernorBus"),
    },
    "PolicyApiFunctionRole": {
        ("dynamodb:GetItem", "PolicyTable"),
        ("dynamodb:Query", "PolicyTable"),
        ("dynamodb:PutItem", "PolicyTable"),
        ("dynamodb:Query", "DecisionLogTable"),
    },
    "AdminApiFunctionRole": {
        ("dynamodb:GetItem", "DecisionLogTable"),
        ("dynamodb:Query", "DecisionLogTable"),
        ("dynamodb:PutItem", "DecisionLogTable"),
        ("dynamodb:GetItem", "LedgerTable"),
        ("dynamodb:UpdateItem", "LedgerTable"),
        ("dynamodb:GetItem", "PolicyTable"),
        ("dynamodb:Query", "PolicyTable"),
        ("dynamodb:GetItem", "StatsTable"),
        ("dynamodb:Query", "StatsTable"),
    },
}
TARGETS = ("LedgerTable", "DecisionLogTable", "StatsTable", "PolicyTable", "GovernorBus", "DecideDeadLetterQueue")


@pytest.mark.parametrize("role", sorted(GRANTS))
def test_each_function_is_granted_exactly_the_data_actions_its_code_uses(role: str) -> None:
    granted = set()
    for name, statement in statements():
        if name != role:
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in actions:
            if not action.startswith(("dynamodb:", "events:", "sqs:SendMessage")):
                continue  # SAM's own grants for the SQS event source, X-Ray, logs
            for resource in resources:
                targets = [t for t in TARGETS if t in json.dumps(resource)]
                assert targets, f"{role}: {action} on {resource}"
                granted |= {(action, t) for t in targets}
    assert granted == GRANTS[role]
