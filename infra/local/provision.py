"""Creates every data resource template.yaml declares (bus, rules, queues, tables) on an AWS
endpoint, normally moto, straight from the translated template: no second, hand-kept list.

The functions themselves are not created: locally their handlers are called in-process with
Lambda-shaped events (moto's Lambda needs Docker), and their environment is resolved here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from infra import template

ACCOUNT = "123456789012"
DATA_TYPES = (
    "AWS::Events::EventBus",
    "AWS::SQS::Queue",
    "AWS::DynamoDB::Table",
    "AWS::Events::Rule",
    "AWS::SecretsManager::Secret",
    "AWS::Scheduler::ScheduleGroup",
    "AWS::StepFunctions::StateMachine",
)


@dataclass
class ProvisionedResources:
    """What was created: logical id -> physical name, URL and ARN, and each function's environment."""

    stack: str
    region: str
    parameters: dict[str, str]
    names: dict[str, str] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    arns: dict[str, str] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    stream_arns: dict[str, str] = field(default_factory=dict)  # table logical id -> its stream's ARN
    # Local stand-ins for what AWS runs by itself, made once per stack (the log stream's poller).
    runtime: dict[str, Any] = field(default_factory=dict)

    def ref(self, logical: str) -> str:
        if logical in self.parameters:
            return self.parameters[logical]
        if self.types.get(logical) == "AWS::SQS::Queue":
            return self.urls[logical]
        return self.names[logical]

    def get_att(self, logical: str, attribute: str) -> str:
        if attribute == "Arn" and logical not in self.arns and _is_function(logical):
            # Functions are not created locally (their handlers run in-process): the ARN only names one,
            # e.g. as a scheduled rule's target, which provisioning then leaves out.
            return f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{self.stack}-{logical}"
        if attribute == "Arn" and logical not in self.arns and _is_role(logical):
            # Roles are not created locally either; their ARN is passed (Scheduler's target role).
            return role_arn(self.stack, logical)
        if attribute == "Arn":
            return self.arns[logical]
        if attribute == "StreamArn":
            return self.stream_arns[logical]
        if attribute in ("QueueName", "Name"):
            return self.names[logical]
        if attribute == "QueueUrl":
            return self.urls[logical]
        raise KeyError(f"{logical}.{attribute} is not resolvable locally")

    def resolve(self, node: Any) -> Any:
        """Resolves the intrinsic functions this template uses (Ref, GetAtt, Sub, Join)."""
        if isinstance(node, list):
            return [self.resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if set(node) == {"Ref"}:
            return self._pseudo(node["Ref"]) or self.ref(node["Ref"])
        if set(node) == {"Fn::GetAtt"}:
            target = node["Fn::GetAtt"]
            logical, attribute = target if isinstance(target, list) else target.split(".", 1)
            return self.get_att(logical, attribute)
        if set(node) == {"Fn::Sub"}:
            return self._sub(node["Fn::Sub"])
        if set(node) == {"Fn::Join"}:
            separator, parts = node["Fn::Join"]
            return separator.join(str(self.resolve(p)) for p in parts)
        return {key: self.resolve(value) for key, value in node.items()}

    def _pseudo(self, name: str) -> str | None:
        return {"AWS::Region": self.region, "AWS::AccountId": ACCOUNT, "AWS::StackName": self.stack}.get(name)

    def _sub(self, spec: Any) -> str:
        text, variables = (spec, {}) if isinstance(spec, str) else (spec[0], spec[1])
        out, rest = "", text
        while "${" in rest:
            before, _, tail = rest.partition("${")
            name, _, rest = tail.partition("}")
            if name in variables:
                value = self.resolve(variables[name])
            elif "." in name:
                value = self.get_att(*name.split(".", 1))
            else:
                value = self._pseudo(name) or self.ref(name)
            out += before + str(value)
        return out + rest

    def environment(self, function: str) -> dict[str, str]:
        """The resolved environment variables of one function of the template."""
        resource = template.translated()["Resources"][function]
        variables = resource["Properties"].get("Environment", {}).get("Variables", {})
        return {name: str(self.resolve(value)) for name, value in variables.items()}


def provision(
    session: Any, stack: str = "governor-local", parameters: dict[str, str] | None = None
) -> ProvisionedResources:
    """Creates the template's bus, queues, tables and rules through `session` (a boto3 Session)."""
    translated = template.translated()
    defaults = {k: str(v.get("Default", "")) for k, v in translated.get("Parameters", {}).items()}
    region = session.region_name or "us-east-1"
    local = ProvisionedResources(stack=stack, region=region, parameters={**defaults, **(parameters or {})})
    resources = {k: v for k, v in translated["Resources"].items() if v["Type"] in DATA_TYPES}
    for logical, resource in _in_dependency_order(resources):
        local.types[logical] = resource["Type"]
        props = local.resolve(resource.get("Properties", {}))
        _CREATORS[resource["Type"]](session, local, logical, props)
        for physical in (local.names, local.urls, local.arns):
            if logical in physical:
                _LOGICAL[physical[logical]] = logical
    for logical, resource in translated["Resources"].items():
        if resource["Type"] == "AWS::IAM::Role":
            _LOGICAL[role_arn(stack, logical)] = logical
    return local


def role_arn(stack: str, logical: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{stack}-{logical}"


# Every name, URL and ARN provisioned in this process -> its logical id, so that a tool watching
# AWS calls (the tests' IAM usage recorder, infra/iam.py) can name the template resource a call touched.
_LOGICAL: dict[str, str] = {}


def logical_id(physical: str) -> str | None:
    """The logical id of a resource provisioned in this process, from its name, URL or ARN."""
    return _LOGICAL.get(physical)


def _is_function(logical: str) -> bool:
    return bool(template.translated()["Resources"].get(logical, {}).get("Type") == "AWS::Lambda::Function")


def _is_role(logical: str) -> bool:
    return bool(template.translated()["Resources"].get(logical, {}).get("Type") == "AWS::IAM::Role")


def _in_dependency_order(resources: dict[str, Any]) -> list[tuple[str, Any]]:
    def refs(node: Any) -> set[str]:
        if isinstance(node, list):
            return set().union(*(refs(n) for n in node)) if node else set()
        if not isinstance(node, dict):
            return set()
        found: set[str] = set()
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                found |= {part.split("}")[0].split(".")[0] for part in text.split("${")[1:]}
            found |= refs(value)
        return found

    ordered: list[tuple[str, Any]] = []
    done: set[str] = set()
    pending = dict(resources)
    while pending:
        ready = [k for k, v in pending.items() if not (refs(v) & set(resources)) - done]
        if not ready:
            raise ValueError(f"circular references among {sorted(pending)}")
        for logical in sorted(ready):
            ordered.append((logical, pending.pop(logical)))
            done.add(logical)
    return ordered


def _bus(session: Any, local: ProvisionedResources, logical: str, props: dict[str, Any]) -> None:
    name = props["Name"]
    answer = session.client("events").create_event_bus(Name=name)
    local.names[logical], local.arns[logical] = name, answer["EventBusArn"]


def _queue(session: Any, local: ProvisionedResources, logical: str, props: dict[str, Any]) -> None:
    name = props.get("QueueName") or f"{local.stack}-{logical}"
    attributes = {
        key: json.dumps(value)
        if isinstance(value, dict)
        else str(value).lower()
        if isinstance(value, bool)
        else str(value)
        for key, value in props.items()
        if key not in ("QueueName", "Tags")
    }
    sqs = session.client("sqs")
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    local.names[logical], local.urls[logical] = name, url
    local.arns[logical] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _table(session: Any, local: ProvisionedResources, logical: str, props: dict[str, Any]) -> None:
    name = props.get("TableName") or f"{local.stack}-{logical}"
    dynamodb = session.client("dynamodb")
    request: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    if props.get("GlobalSecondaryIndexes"):
        request["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    if props.get("SSESpecification", {}).get("SSEEnabled"):
        request["SSESpecification"] = {"Enabled": True}
    if props.get("DeletionProtectionEnabled"):
        # moto refuses DeleteTable on it as DynamoDB does, so a local stack keeps it the same way.
        request["DeletionProtectionEnabled"] = True
    if props.get("StreamSpecification"):
        # moto keeps the stream (infra/local/streams.py reads it as Lambda's event source mapping
        # would; the mapping itself, like every function's, is not created locally).
        view = props["StreamSpecification"]["StreamViewType"]
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
    answer = dynamodb.create_table(**request)
    local.names[logical], local.arns[logical] = name, answer["TableDescription"]["TableArn"]
    if "LatestStreamArn" in answer["TableDescription"]:
        local.stream_arns[logical] = answer["TableDescription"]["LatestStreamArn"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        dynamodb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
        )
    if props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
        dynamodb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )


def _rule(session: Any, local: ProvisionedResources, logical: str, props: dict[str, Any]) -> None:
    name = props.get("Name") or f"{local.stack}-{logical}"
    bus = props.get("EventBusName", "default")
    events = session.client("events")
    # A rule matches events (EventPattern) or runs on a schedule (ScheduleExpression).
    matching = {"EventPattern": json.dumps(props["EventPattern"])} if "EventPattern" in props else {}
    if "ScheduleExpression" in props:
        matching["ScheduleExpression"] = props["ScheduleExpression"]
    answer = events.put_rule(
        Name=name,
        EventBusName=bus,
        State=props.get("State", "ENABLED"),
        Description=props.get("Description", ""),
        **matching,
    )
    local.names[logical], local.arns[logical] = name, answer["RuleArn"]
    # Lambda targets make moto's PutEvents fail; locally the pollers call the handlers instead.
    # moto keeps a target's retry policy and dead-letter queue (it never uses them), so they can be checked.
    kept = ("Id", "Arn", "RetryPolicy", "DeadLetterConfig")
    targets = [{k: t[k] for k in kept if k in t} for t in props.get("Targets", []) if ":lambda:" not in t["Arn"]]
    if targets:
        events.put_targets(Rule=name, EventBusName=bus, Targets=targets)


def _secret(session: Any, local: ProvisionedResources, logical: str, props: dict[str, Any]) -> None:
    """A secret with a generated value, as CloudFormation's GenerateSecretString makes it."""
    generate = props.get("GenerateSecretString", {})
    value = session.client("secretsmanager").get_random_password(
        PasswordLength=int(generate.get("PasswordLength", 32)),
        ExcludePunctuation=bool(generate.get("ExcludePunctuation", False)),
    )["RandomPassword"]
    name = props.get("Name") or f"{local.stack}-{logical}"
    answer = session.client("secretsmanager").create_secret(Name=name, SecretString=value)
    # Ref of a secret is its ARN.
    local.names[logical], local.arns[logical] = answer["ARN"], answer["ARN"]


def _schedule_group(session: Any, local: ProvisionedResources, logical: str, props: dict[str, Any]) -> None:
    """moto stores the group's schedules (and never fires them: the local stack does)."""
    name = props.get("Name") or f"{local.stack}-{logical}"
    answer = session.client("scheduler").create_schedule_group(Name=name)
    local.names[logical], local.arns[logical] = name, answer["ScheduleGroupArn"]


def _state_machine(session: Any, local: ProvisionedResources, logical: str, props: dict[str, Any]) -> None:
    """moto stores the definition and starts executions, but runs none (infra/local/simulations.py does).
    The definition gets its DefinitionSubstitutions as CloudFormation gives them."""
    definition = str(props["DefinitionString"])
    for key, value in props.get("DefinitionSubstitutions", {}).items():
        definition = definition.replace("${" + key + "}", str(value))
    name = props.get("StateMachineName") or f"{local.stack}-{logical}"
    answer = session.client("stepfunctions").create_state_machine(
        name=name, definition=definition, roleArn=props["RoleArn"], type=props.get("StateMachineType", "STANDARD")
    )
    # Ref of a state machine is its ARN.
    local.names[logical], local.arns[logical] = answer["stateMachineArn"], answer["stateMachineArn"]


_CREATORS = {
    "AWS::Events::EventBus": _bus,
    "AWS::SQS::Queue": _queue,
    "AWS::DynamoDB::Table": _table,
    "AWS::Events::Rule": _rule,
    "AWS::SecretsManager::Secret": _secret,
    "AWS::Scheduler::ScheduleGroup": _schedule_group,
    "AWS::StepFunctions::StateMachine": _state_machine,
}
