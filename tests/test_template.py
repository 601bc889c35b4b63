"""template.yaml as SAM deploys it: handlers importable the way Lambda imports them, least
privilege, the queue wiring AWS recommends, and every data resource present locally."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra import iam, template

ROOT = Path(__file__).resolve().parents[1]
RESOURCES = template.translated()["Resources"]
DATA_SERVICES = ("dynamodb:", "sqs:", "events:", "s3:", "scheduler:", "secretsmanager:")


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


def mapping_of(function: str) -> dict[str, Any]:
    mappings: list[dict[str, Any]] = [
        m["Properties"]
        for m in of_type("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": function}
    ]
    (mapping,) = mappings
    return mapping


def test_the_decide_queue_is_wired_as_aws_recommends() -> None:
    function = RESOURCES["DecideFunction"]["Properties"]
    mapping = mapping_of("DecideFunction")
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
        indexes = {i["IndexName"] for i in table["Properties"].get("GlobalSecondaryIndexes", [])}
        assert {i["IndexName"] for i in described.get("GlobalSecondaryIndexes", [])} == indexes
        assert described.get("DeletionProtectionEnabled") is True, f"{name} can be deleted locally"
        ttl = dynamodb.describe_time_to_live(TableName=aws.names[name])["TimeToLiveDescription"]
        if name in EXPIRING_TABLES:
            assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    # And every queue, with its redrive policy
    for name, queue in of_type("AWS::SQS::Queue").items():
        attributes = sqs.get_queue_attributes(QueueUrl=aws.urls[name], AttributeNames=["All"])["Attributes"]
        if "RedrivePolicy" in queue["Properties"]:
            target = queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
            assert json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"] == aws.arns[target]
    # And every rule on its bus, with its pattern or schedule, targets, retry policies and dead-letter queues
    for name, rule in of_type("AWS::Events::Rule").items():
        props = aws.resolve(rule["Properties"])
        bus = props.get("EventBusName", "default")
        described = events.describe_rule(Name=aws.names[name], EventBusName=bus)
        if "EventPattern" in props:
            assert json.loads(described["EventPattern"]) == props["EventPattern"]
        else:
            assert described["ScheduleExpression"] == props["ScheduleExpression"]
        targets = events.list_targets_by_rule(Rule=aws.names[name], EventBusName=bus)["Targets"]
        kept = ("Id", "Arn", "RetryPolicy", "DeadLetterConfig")
        # Lambda targets are left out: locally the pollers and the scheduler call handlers instead
        wanted = [{k: t[k] for k in kept if k in t} for t in props.get("Targets", []) if ":lambda:" not in t["Arn"]]
        assert [{k: t[k] for k in kept if k in t} for t in targets] == wanted


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
        f"{m}{p}".replace("{version}", "*").replace("{job_id}", "*")
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


# ---- issue 10, item 13: what the template keeps, tells and records --------------------------


def test_tables_outlive_the_stack_and_refuse_deletion() -> None:
    # Given every table of the template after the SAM transform
    for name, table in of_type("AWS::DynamoDB::Table").items():
        # Then deleting or replacing the stack keeps it, and DynamoDB itself refuses to delete it
        assert table.get("DeletionPolicy") == "Retain", name
        assert table.get("UpdateReplacePolicy") == "Retain", name
        assert table["Properties"].get("DeletionProtectionEnabled") is True, name


def test_function_roles_carry_no_managed_policy_beyond_their_logs_and_traces() -> None:
    # Given the AWS managed policies on each function's role (SAM adds one per SQS event source,
    # AWSLambdaSQSQueueExecutionRole, allowing sqs:ReceiveMessage and DeleteMessage on every queue)
    for function, policies in iam.managed_policies(template.translated()).items():
        # Then only logging and X-Ray remain; queue access is an inline statement naming the queue
        assert policies <= iam.ALLOWED_MANAGED_POLICIES, f"{function}: {policies - iam.ALLOWED_MANAGED_POLICIES}"


def retention_of(log_group: Any) -> Any:
    logical = log_group["Ref"] if "Ref" in log_group else log_group["Fn::GetAtt"][0]
    group = RESOURCES[logical]
    assert group["Type"] == "AWS::Logs::LogGroup", logical
    return group["Properties"].get("RetentionInDays")


def test_every_function_and_the_api_log_to_a_group_kept_for_a_parameter_of_days() -> None:
    retention = {"Ref": "LogRetentionDays"}
    assert template.translated()["Parameters"]["LogRetentionDays"]["Type"] == "Number"
    # Given every function: it logs to a group of the template (not one Lambda creates and keeps forever)
    for name, function in of_type("AWS::Lambda::Function").items():
        group = function["Properties"].get("LoggingConfig", {}).get("LogGroup")
        assert group, (
            f"{name} has no LoggingConfig.LogGroup: add a log group with RetentionInDays: !Ref LogRetentionDays"
        )
        # Then that group has the retention of the parameter
        assert retention_of(group) == retention, name
    # And so does the API's access log
    for name, stage in of_type("AWS::ApiGateway::Stage").items():
        assert retention_of(stage["Properties"]["AccessLogSetting"]["DestinationArn"]) == retention, name


# Access-log variables that say how a request went, never what it carried: no bodies ($input,
# overrides) and no concrete path ($context.path holds /customers/<customer id>/...).
ACCESS_LOG_VARIABLES = {
    "$context.requestId",
    "$context.extendedRequestId",
    "$context.requestTime",
    "$context.requestTimeEpoch",
    "$context.httpMethod",
    "$context.resourcePath",
    "$context.status",
    "$context.responseLatency",
    "$context.integrationLatency",
    "$context.responseLength",
    "$context.protocol",
    "$context.identity.userArn",
    "$context.identity.sourceIp",
    "$context.error.messageString",
    "$context.integrationErrorMessage",
}


def test_the_api_writes_access_logs_without_bodies_or_customer_ids() -> None:
    stages = of_type("AWS::ApiGateway::Stage")
    assert stages
    for name, stage in stages.items():
        # Given the stage's access log setting
        setting = stage["Properties"].get("AccessLogSetting")
        assert setting, f"{name} writes no access log"
        # Then each line is JSON with the request id, and uses only variables that carry no payload
        assert json.loads(setting["Format"])["requestId"] == "$context.requestId"
        used = set(re.findall(r"\$[\w.]+", setting["Format"]))
        assert used <= ACCESS_LOG_VARIABLES, f"{name} logs {used - ACCESS_LOG_VARIABLES}"


def decorator_calls(path: Path) -> list[ast.expr]:
    tree = ast.parse(path.read_text())
    return [
        d
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for d in node.decorator_list
    ]


def test_no_traced_function_records_what_it_returns() -> None:
    # Given every Tracer decorator of the product's code (functions/ and shared/)
    found = []
    for path in sorted([*(ROOT / "functions").rglob("*.py"), *(ROOT / "shared").rglob("*.py")]):
        for decorator in decorator_calls(path):
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            if isinstance(target, ast.Attribute) and target.attr in ("capture_method", "capture_lambda_handler"):
                found.append((path, decorator))
    assert found
    # Then none puts its return value into the X-Ray segment: decisions and requests carry customer
    # ids and sentiment, and segments are kept and shown outside the governor's access control
    for path, decorator in found:
        keywords = {k.arg: k.value for k in decorator.keywords} if isinstance(decorator, ast.Call) else {}
        value = keywords.get("capture_response")
        assert isinstance(value, ast.Constant) and value.value is False, (
            f"{path.relative_to(ROOT)}:{decorator.lineno} traces its response: pass capture_response=False"
        )


def test_every_alarm_notifies_a_topic_when_it_fires_and_when_it_clears() -> None:
    notify = [{"Fn::If": ["CreateAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}]
    alarms = of_type("AWS::CloudWatch::Alarm")
    assert alarms
    for name, alarm in alarms.items():
        assert alarm["Properties"].get("AlarmActions") == notify, f"{name} notifies no one"
        assert alarm["Properties"].get("OKActions") == notify, name
    # The topic is made unless the caller brings one
    assert RESOURCES["AlarmTopic"]["Type"] == "AWS::SNS::Topic"
    assert RESOURCES["AlarmTopic"]["Condition"] == "CreateAlarmTopic"


def queue_policy_allows(queue: str, rule: str) -> bool:
    for policy in of_type("AWS::SQS::QueuePolicy").values():
        if {"Ref": queue} not in policy["Properties"]["Queues"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            source = statement.get("Condition", {}).get("ArnEquals", {}).get("aws:SourceArn")
            if statement["Action"] == "sqs:SendMessage" and source == {"Fn::GetAtt": [rule, "Arn"]}:
                return True
    return False


def test_events_a_rule_cannot_deliver_are_retried_then_parked_not_dropped() -> None:
    # Given every rule that matches events (a scheduled rule carries none: its next run redoes the work)
    rules = {n: r for n, r in of_type("AWS::Events::Rule").items() if "EventPattern" in r["Properties"]}
    assert rules
    for name, rule in rules.items():
        for target in rule["Properties"]["Targets"]:
            # Then a failed delivery is retried, then sent to a dead-letter queue the rule may write to
            assert target.get("RetryPolicy", {}).get("MaximumRetryAttempts", 0) > 0, f"{name}: no retry policy"
            queue = target.get("DeadLetterConfig", {}).get("Arn", {}).get("Fn::GetAtt", [None])[0]
            assert queue and RESOURCES[queue]["Type"] == "AWS::SQS::Queue", f"{name}: no dead-letter queue"
            assert queue_policy_allows(queue, name), f"{name} may not send to {queue}"
            # And someone hears about it
            watched = [
                a
                for a in of_type("AWS::CloudWatch::Alarm").values()
                if {"Fn::GetAtt": [queue, "QueueName"]} in [d["Value"] for d in a["Properties"].get("Dimensions", [])]
            ]
            assert watched, f"no alarm watches {queue}"


def test_functions_are_deployed_on_the_python_the_tests_run_on() -> None:
    tested = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for name, function in of_type("AWS::Lambda::Function").items():
        assert function["Properties"]["Runtime"] == tested, name


def test_the_decide_queue_starts_at_most_a_parameter_of_concurrent_deciders() -> None:
    # Given the SQS event source mappings (a stream's concurrency is its shards, one batch each)
    for name, mapping in of_type("AWS::Lambda::EventSourceMapping").items():
        if "StartingPosition" in mapping["Properties"]:
            continue
        # Then its concurrency is capped by a parameter within what Lambda accepts (2..1000)
        cap = mapping["Properties"].get("ScalingConfig", {}).get("MaximumConcurrency")
        assert cap and "Ref" in cap, f"{name} has no MaximumConcurrency"
        parameter = template.translated()["Parameters"][cap["Ref"]]
        assert 2 <= parameter["MinValue"] <= parameter["Default"] <= parameter["MaxValue"] <= 1000


# ---- issue 10, item 14: each role grants what its code is seen calling, nothing more ----------

USAGE = iam.load()


@pytest.mark.parametrize("function", sorted(template.handlers()))
def test_each_role_grants_exactly_what_its_function_was_seen_calling(function: str) -> None:
    # Given what a run of the whole suite saw the function's code call (infra/iam-usage.json, `make iam`),
    # and what Lambda does with the role for its SQS event sources
    translated = template.translated()
    assert function in USAGE, f"{function} is not in infra/iam-usage.json: run `make iam`"
    needed = USAGE[function] | iam.event_source_usage(translated).get(function, set())
    # Then its role's inline statements grant exactly that: every call allowed, no action or resource unused
    granted = iam.granted(translated)[function]
    assert not granted - needed, f"{function} is granted what it never calls: {sorted(granted - needed)}"
    assert not needed - granted, f"{function} calls what it is not granted: {sorted(needed - granted)}"


def test_the_recorder_sees_the_product_calls_of_each_handler_and_none_of_the_tests(aws: Any) -> None:
    from functions.policy_api.app import handler as policy_api
    from infra.lambda_runtime import LambdaContext, api_gateway_event
    from shared import wiring
    from shared.adapters.clock import FixedClock
    from tests.conftest import NOW, detail, drain, put_events

    os.environ.update(aws.environment("PolicyApiFunction"))
    wiring.use_clock(FixedClock(NOW))
    with iam.recording() as recorder:
        # Given an upstream system's event (a test call) decided by the queue handler
        put_events(aws, [detail(event_id="evt-recorded", customer_id="cust-recorded")])
        drain(aws)
        # And a simulation, whose log reads run on a thread pool
        body = json.dumps({"policy": {}, "days": 2})
        policy_api(api_gateway_event("POST", "/policy/simulate", body=body), LambdaContext("policy"))
        # And a read the test makes itself
        boto3.client("dynamodb").scan(TableName=aws.names["LedgerTable"])
    usage = recorder.usage()
    # Then the decide function's calls are named by action and template resource
    assert {
        ("dynamodb:BatchGetItem", "LedgerTable"),
        ("dynamodb:UpdateItem", "LedgerTable"),  # the ledger slot, inside the approval's transaction
        ("dynamodb:PutItem", "DecisionLogTable"),
    } <= usage["DecideFunction"]
    # And the stream's readers': the log stream function publishes what the decide function
    # committed, the log count function counts it
    assert ("events:PutEvents", "GovernorBus") in usage["LogStreamFunction"]
    assert not any(action.startswith("dynamodb:") for action, _ in usage["LogStreamFunction"])
    assert ("dynamodb:PutItem", "StatsTable") in usage["LogCountFunction"]
    # And the pool threads' reads are the policy function's: the day pages, then the entries by key
    assert ("dynamodb:Query", "StatsTable") in usage["PolicyApiFunction"]
    # And the test's own put and scan are nobody's
    assert not any(action == "dynamodb:Scan" for pairs in usage.values() for action, _ in pairs)
    assert set(usage) == {"DecideFunction", "LogStreamFunction", "LogCountFunction", "PolicyApiFunction"}


# ---- issue 11: the scheduled release of pending follow-ups -----------------------------------


def test_the_scheduler_role_may_only_invoke_the_release_function_and_park_its_failures() -> None:
    # Given the role EventBridge Scheduler assumes to run a pending follow-up's release
    role = RESOURCES["SchedulerRole"]["Properties"]
    (principal,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert principal["Principal"] == {"Service": ["scheduler.amazonaws.com"]}
    # Then it may invoke the release function and send to the release dead-letter queue, nothing else
    granted = {
        (action, iam._target(resource))
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        for action in statement["Action"]
        for resource in iam._listed(statement["Resource"])
    }
    assert granted == {("lambda:InvokeFunction", "ReleaseFunction"), ("sqs:SendMessage", "ReleaseDeadLetterQueue")}


def test_releases_that_keep_failing_are_parked_and_alarmed() -> None:
    # Given the release dead-letter queue and the release function
    alarms = of_type("AWS::CloudWatch::Alarm").values()
    watched = [json.dumps(a["Properties"]["Dimensions"]) for a in alarms]
    # Then an alarm watches the queue's depth and one the function's errors
    assert any("ReleaseDeadLetterQueue" in w for w in watched)
    assert any("ReleaseFunction" in w for w in watched)
    # And the function that schedules releases (announcing held follow-ups) is told the group, role, target and queue
    for function in ("LogStreamFunction",):
        variables = RESOURCES[function]["Properties"]["Environment"]["Variables"]
        assert {"SCHEDULE_GROUP", "SCHEDULER_ROLE_ARN", "RELEASE_FUNCTION_ARN", "RELEASE_DLQ_ARN"} <= set(variables)


def test_the_release_schedule_group_exists_locally(aws: Any) -> None:
    # Given the local stack provisioned from template.yaml
    group = boto3.client("scheduler").get_schedule_group(Name=aws.names["ReleaseScheduleGroup"])
    # Then the group pending follow-ups are scheduled in exists, so creating a schedule succeeds
    assert group["State"] == "ACTIVE"


# ---- issue 12: the decision log's stream is the outbox ----------------------------------------


@pytest.mark.parametrize("function", ["LogStreamFunction", "LogCountFunction"])
def test_the_decision_log_stream_is_wired_for_ordered_exactly_once_counting(function: str) -> None:
    # Given the decision log table and the event source mapping of one of its stream's two readers
    table = RESOURCES["DecisionLogTable"]["Properties"]
    mapping = mapping_of(function)
    # Then the table streams both images (a state change is told by comparing them)
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["DecisionLogTable", "StreamArn"]}
    # And nothing is skipped at the start, one batch per shard at a time, in order
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    assert mapping["ParallelizationFactor"] == 1
    # And a failed batch restarts at the record reported, never bisected (the count's receipt is
    # keyed by a batch's first record: a half starting inside a counted range would count it again)
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is False
    # And what still fails after the retries is described in a dead-letter queue an alarm watches,
    # as is the stream's age and the function's errors
    assert 0 < mapping["MaximumRetryAttempts"] <= 100
    destination = mapping["DestinationConfig"]["OnFailure"]["Destination"]
    assert destination == {"Fn::GetAtt": ["LogStreamDeadLetterQueue", "Arn"]}
    alarms = [json.dumps(a["Properties"]) for a in of_type("AWS::CloudWatch::Alarm").values()]
    assert any("LogStreamDeadLetterQueue" in a and "ApproximateNumberOfMessagesVisible" in a for a in alarms)
    assert any(function in a and "IteratorAge" in a for a in alarms)
    assert any(function in a and '"Errors"' in a for a in alarms)
    # And no outbox index or sweep is left
    assert "outbox" not in {i["IndexName"] for i in table["GlobalSecondaryIndexes"]}
    assert "OutboxFunction" not in RESOURCES


def test_the_decision_log_streams_locally(aws: Any) -> None:
    # Given the local stack provisioned from template.yaml
    described = boto3.client("dynamodb").describe_table(TableName=aws.names["DecisionLogTable"])["Table"]
    # Then its log table streams both images, where the local poller reads it
    assert described["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert described["LatestStreamArn"] == aws.get_att("DecisionLogTable", "StreamArn")


def test_each_decision_log_index_projects_every_attribute_its_readers_decode() -> None:
    from datetime import UTC, datetime, timedelta

    from shared.adapters import decision_log, outcome_log
    from shared.domain import engine
    from shared.domain.contacts import ContactLedger
    from shared.domain.decision import CancelReason, State
    from shared.domain.events import InteractionClosed
    from shared.domain.outcomes import FollowUpOutcome
    from shared.domain.policy import default_policy
    from tests.conftest import detail

    # Given every kind of entry the log table holds, with every attribute its writers set: a decision
    # (and what a release or cancellation adds), an admin record and an outcome record
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    event = InteractionClosed.model_validate(detail(event_id="e-1", customer_id="c-1", outcome="unresolved"))
    decision = engine.decide(event, ContactLedger("c-1"), default_policy(), now)
    kept = timedelta(days=400)
    entry = decision_log.put_once("log", decision, kept, fingerprint="f")["Item"]
    change = decision_log.state_update(decision.decision_id, State.CANCELLED, CancelReason.OPTED_OUT, now)
    entry |= {"state_reason": change["ExpressionAttributeValues"][":reason"], "state_changed_at": {"S": "t"}}
    admin = decision_log.admin_record("c-1", "opt_out", actor="a", at=now, details={}, retention=kept)
    outcome = FollowUpOutcome.model_validate(
        {"outcome_id": "o-1", "decision_id": decision.decision_id, "type": "survey_responded", "occurred_at": now}
    )
    recorded = outcome_log.to_item(outcome, decision, "f", now, kept)
    # Then each index of the table projects all of them but what no index reader decodes (the
    # idempotency fingerprint, read by key; the TTL): by-customer holds every kind
    table = RESOURCES["DecisionLogTable"]["Properties"]
    keys = {k["AttributeName"] for k in table["KeySchema"]}
    unread = {decision_log.FINGERPRINT, "expires_at"}
    for index in table["GlobalSecondaryIndexes"]:
        projection = index["Projection"]
        projected = (
            keys | {k["AttributeName"] for k in index["KeySchema"]} | set(projection.get("NonKeyAttributes", []))
        )
        for item in (entry, admin, recorded):
            if projection["ProjectionType"] != "ALL":
                assert set(item) - unread <= projected, index["IndexName"]
    # And by-customer is the only index: a day's decisions are listed on day pages, not in a `by-day`
    # index (each index costs a write unit per decision), so no entry carries its key `day_shard`
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == [decision_log.BY_CUSTOMER]
    assert "day_shard" not in {a["AttributeName"] for a in table["AttributeDefinitions"]}
    assert "day_shard" not in entry
