"""The local stack's stand-in for API Gateway's IAM authoriser, on moto's real IAM.

Deployed, every route of GovernorApi needs a SigV4 signature (`DefaultAuthorizer: AWS_IAM`), and
what a caller may invoke is what its IAM policies allow: the template's AdminPolicy and
MarketingOpsPolicy managed policies split the routes between the two roles. Locally:

- at start, `create_role_users` creates in moto's IAM one user per role (`governor-admin`,
  `governor-marketing-ops`) with the template's policy document attached (its `${GovernorApi}`,
  `${Stage}`, region and account resolved for the local API, as CloudFormation resolves them
  deployed) and an access key each;
- an unsigned request stays allowed (the local stack's convenience, as before);
- a signed request (an `Authorization: AWS4-HMAC-SHA256 ...` header) is verified as API Gateway
  does: the signature is computed again with botocore's SigV4Auth over the same method, path,
  query, signed headers and body with the key's secret, then the key's user, its attached and
  inline policies are read from moto's IAM at each request (a detached policy or a deactivated key
  takes effect at once) and evaluated for `execute-api:Invoke` on
  `arn:aws:execute-api:<region>:<account>:<api-id>/<stage>/<METHOD>/<path>`: an explicit Deny wins,
  else an Allow is needed; `*` and `?` match as in IAM. The refusals are API Gateway's 403 bodies.

Only the secrets of the keys made here are known (IAM never returns a secret after CreateAccessKey).
Policy conditions are not evaluated: a statement with a Condition is taken as failing closed (an
Allow does not apply, a Deny does). Nothing of an AWS API is imitated: IAM is moto's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import json
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from infra import template

API_ID = "local"  # the apiId the local gateway's proxy events carry (infra/lambda_runtime.py)
ACTION = "execute-api:Invoke"
SERVICE = "execute-api"
# API Gateway refuses a signature made more than this far from its clock.
MAX_SKEW = timedelta(minutes=5)

# role -> (IAM user, the template's managed policy)
ROLES = {
    "admin": ("governor-admin", "AdminPolicy"),
    "marketing-ops": ("governor-marketing-ops", "MarketingOpsPolicy"),
}

SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)
INVALID_TOKEN = "The security token included in the request is invalid."  # noqa: S105 - a message
_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),"
    r"\s*Signature=(?P<signature>[0-9a-f]+)\s*$"
)


@dataclass(frozen=True)
class Refusal:
    """API Gateway's answer to a request it does not let through."""

    status: int
    message: str
    error_type: str  # API Gateway's x-amzn-ErrorType

    def answer(self) -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": "application/json", "x-amzn-ErrorType": self.error_type}
        return self.status, headers, json.dumps({"message": self.message}).encode()


@dataclass(frozen=True)
class Caller:
    """A verified and authorised caller."""

    user_arn: str
    access_key: str


@dataclass
class Authorizer:
    iam: Any  # a boto3 IAM client on the stack's moto
    region: str
    account: str
    stage: str
    api_id: str = API_ID
    secrets: dict[str, str] = field(default_factory=dict)  # access key id -> secret, from CreateAccessKey
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))  # signatures are AWS's wall clock

    def resource_arn(self, method: str, path: str) -> str:
        return (
            f"arn:aws:execute-api:{self.region}:{self.account}:{self.api_id}/{self.stage}/{method}/{path.lstrip('/')}"
        )

    def check(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> Refusal | Caller | None:
        """None for an unsigned request (allowed locally), the Caller when the signature is right
        and the caller's policies allow the route, else the Refusal to send."""
        lowered = {name.lower(): value for name, value in headers.items()}
        authorization = lowered.get("authorization")
        if authorization is None:
            return None
        parsed = _AUTHORIZATION.match(authorization.strip())
        if parsed is None:
            return Refusal(
                403,
                "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters "
                "(AWS4-HMAC-SHA256).",
                "IncompleteSignatureException",
            )
        scope = parsed["credential"].split("/")
        if len(scope) != 5 or scope[4] != "aws4_request":
            return Refusal(403, "Credential should be scoped to a valid region.", "IncompleteSignatureException")
        key_id, day, region, service, _ = scope
        stamp = lowered.get("x-amz-date", "")
        try:
            signed_at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            return Refusal(
                403,
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
                "IncompleteSignatureException",
            )
        now = self.now()
        if abs(now - signed_at) > MAX_SKEW:
            return Refusal(
                403,
                f"Signature expired: {stamp} is now earlier than {(now - MAX_SKEW):%Y%m%dT%H%M%SZ} "
                f"({now:%Y%m%dT%H%M%SZ} - 5 min.)",
                "InvalidSignatureException",
            )
        if region != self.region or service != SERVICE or day != stamp[:8]:
            return Refusal(
                403,
                f"Credential should be scoped to a valid region and to service '{SERVICE}'.",
                "InvalidSignatureException",
            )
        user = self._active_key_user(key_id)
        if user is None or key_id not in self.secrets:
            return Refusal(403, INVALID_TOKEN, "UnrecognizedClientException")
        signed = parsed["signed"].split(";")
        if "host" not in signed or any(name not in lowered for name in signed):
            return Refusal(403, SIGNATURE_MISMATCH, "InvalidSignatureException")
        expected = _signature(
            method, raw_path, {n: lowered[n] for n in signed}, body, key_id, self.secrets[key_id], stamp, region
        )
        if not hmac.compare_digest(expected, parsed["signature"]):
            return Refusal(403, SIGNATURE_MISMATCH, "InvalidSignatureException")
        user_arn = f"arn:aws:iam::{self.account}:user/{user}"
        resource = self.resource_arn(method, raw_path.split("?", 1)[0])
        if not allows(self._statements(user), ACTION, resource):
            return Refusal(
                403,
                f"User: {user_arn} is not authorized to perform: {ACTION} on resource: {resource}",
                "AccessDeniedException",
            )
        return Caller(user_arn, key_id)

    def _active_key_user(self, key_id: str) -> str | None:
        error = self.iam.exceptions.NoSuchEntityException
        try:
            user = str(self.iam.get_access_key_last_used(AccessKeyId=key_id)["UserName"])
            keys = self.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
        except error:
            return None
        return user if any(k["AccessKeyId"] == key_id and k["Status"] == "Active" for k in keys) else None

    def _statements(self, user: str) -> list[dict[str, Any]]:
        """Every statement of the user's inline policies and attached managed policies (their
        default version), as IAM holds them now: one GetAccountAuthorizationDetails for them all."""
        users: list[dict[str, Any]] = []
        policies: dict[str, Any] = {}
        for page in self.iam.get_paginator("get_account_authorization_details").paginate(
            Filter=["User", "LocalManagedPolicy"]
        ):
            users.extend(page.get("UserDetailList", []))
            for policy in page.get("Policies", []):
                default = [v for v in policy.get("PolicyVersionList", []) if v.get("IsDefaultVersion")]
                policies[policy["Arn"]] = default[0]["Document"] if default else None
        documents: list[Any] = []
        for found in users:
            if found["UserName"] != user:
                continue
            documents += [p["PolicyDocument"] for p in found.get("UserPolicyList", [])]
            documents += [policies.get(p["PolicyArn"]) for p in found.get("AttachedManagedPolicies", [])]
        statements: list[dict[str, Any]] = []
        for document in documents:
            if document is None:
                continue
            # IAM answers documents URL-encoded; boto3 usually decodes them already.
            parsed = json.loads(urllib.parse.unquote(document)) if isinstance(document, str) else document
            listed = parsed.get("Statement", [])
            statements.extend(listed if isinstance(listed, list) else [listed])
        return statements


def allows(statements: list[dict[str, Any]], action: str, resource: str) -> bool:
    """IAM's evaluation within one account: an explicit Deny wins, else an Allow is needed."""
    allowed = False
    for statement in statements:
        if not _applies(statement, action, resource):
            continue
        if statement.get("Effect") == "Deny":
            return False
        if statement.get("Effect") == "Allow" and "Condition" not in statement:
            allowed = True
    return allowed


def _applies(statement: dict[str, Any], action: str, resource: str) -> bool:
    if "Action" in statement:
        action_matches = any(_matches(p, action, ignore_case=True) for p in _listed(statement["Action"]))
    else:
        action_matches = not any(_matches(p, action, ignore_case=True) for p in _listed(statement.get("NotAction")))
    if "Resource" in statement:
        resource_matches = any(_matches(p, resource) for p in _listed(statement["Resource"]))
    else:
        resource_matches = not any(_matches(p, resource) for p in _listed(statement.get("NotResource")))
    return action_matches and resource_matches


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _matches(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM's wildcards: `*` any run of characters (slashes included), `?` one character, nothing else special."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) is not None


def _signature(  # noqa: PLR0917 - the parts of one signature, named where it is called
    method: str,
    raw_path: str,
    headers: dict[str, str],
    body: bytes,
    key_id: str,
    secret: str,
    stamp: str,
    region: str,
) -> str:
    """The SigV4 signature botocore computes for this request, over exactly the headers the client signed."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    # The scheme only decides whether the payload is hashed; botocore always hashes it for
    # execute-api (payload signing is on unless an operation turns it off), so http works for both.
    request = AWSRequest(method=method, url=f"http://{headers['host']}{raw_path}", data=body or None, headers=headers)
    request.context["timestamp"] = stamp
    signer = SigV4Auth(Credentials(key_id, secret), SERVICE, region)
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))


def create_role_users(iam: Any, resources: Any) -> tuple[Authorizer, dict[str, tuple[str, str]]]:
    """Creates (or, on a stack whose moto state was kept, brings up to date) the role users, their
    policies from template.yaml and a fresh access key each; returns the authoriser and
    {"admin": (key, secret), "marketing-ops": (key, secret)}."""
    stage = str(resources.parameters.get("Stage", "dev"))
    account = _account(resources)
    authorizer = Authorizer(iam=iam, region=resources.region, account=account, stage=stage)
    documents = policy_documents(resources)
    credentials: dict[str, tuple[str, str]] = {}
    for role, (user, logical) in ROLES.items():
        policy_arn = _ensure_policy(iam, account, f"{resources.stack}-{logical}", documents[logical])
        with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):  # kept from an earlier run
            iam.create_user(UserName=user, Tags=[{"Key": "governor:role", "Value": role}])
        iam.attach_user_policy(UserName=user, PolicyArn=policy_arn)
        # IAM keeps at most two keys a user, and an old key's secret is not known any more.
        for old in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
            iam.delete_access_key(UserName=user, AccessKeyId=old["AccessKeyId"])
        key = iam.create_access_key(UserName=user)["AccessKey"]
        authorizer.secrets[key["AccessKeyId"]] = key["SecretAccessKey"]
        credentials[role] = (key["AccessKeyId"], key["SecretAccessKey"])
    return authorizer, credentials


def policy_documents(resources: Any) -> dict[str, dict[str, Any]]:
    """The template's role policies, resolved as CloudFormation would for the local API."""
    local = dataclasses.replace(
        resources, parameters={**resources.parameters, "GovernorApi": API_ID, "AWS::Partition": "aws"}
    )
    found = template.translated()["Resources"]
    return {logical: local.resolve(found[logical]["Properties"]["PolicyDocument"]) for _, logical in ROLES.values()}


def _ensure_policy(iam: Any, account: str, name: str, document: dict[str, Any]) -> str:
    arn = f"arn:aws:iam::{account}:policy/{name}"
    text = json.dumps(document)
    try:
        iam.create_policy(PolicyName=name, PolicyDocument=text)
        return arn
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    # Kept from an earlier run: the template may have changed since, so its document becomes the default.
    for version in iam.list_policy_versions(PolicyArn=arn)["Versions"]:
        if not version["IsDefaultVersion"]:
            iam.delete_policy_version(PolicyArn=arn, VersionId=version["VersionId"])
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=text, SetAsDefault=True)
    return arn


def _account(resources: Any) -> str:
    from infra.local.provision import ACCOUNT

    return str(getattr(resources, "account", ACCOUNT))
