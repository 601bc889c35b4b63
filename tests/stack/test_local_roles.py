"""The local gateway keeps the roles apart as API Gateway's IAM authoriser does deployed: users made
in moto's IAM from the template's AdminPolicy and MarketingOpsPolicy, SigV4 verified, policies evaluated."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from infra.local import authz
from infra.local.stack import LocalGovernor
from tests.openapi_check import check

ACCOUNT = "123456789012"


def call(
    stack: LocalGovernor,
    method: str,
    path: str,
    *,
    keys: tuple[str, str] | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
    sent_body: bytes | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One HTTP request to the stack, signed for execute-api with `keys` as botocore signs it."""
    url = stack.url + path
    data = json.dumps(body).encode() if body is not None else None
    sent = {"Content-Type": "application/json", **(headers or {})}
    if keys is not None:
        request = AWSRequest(method=method, url=url, data=data, headers=sent)
        SigV4Auth(Credentials(*keys), "execute-api", "us-east-1").add_auth(request)
        sent = dict(request.headers.items())
    wire = sent_body if sent_body is not None else data
    request = urllib.request.Request(url, data=wire, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers.items()), json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), json.loads(error.read() or b"null")


def resource(method: str, path: str) -> str:
    return f"arn:aws:execute-api:us-east-1:{ACCOUNT}:local/dev/{method}{path}"


def test_the_role_users_exist_in_moto_iam_with_the_template_policies(stack: LocalGovernor) -> None:
    # Given the running stack / When its IAM is read through the IAM API
    iam = stack.client("iam")
    attached = {
        user: iam.list_attached_user_policies(UserName=user)["AttachedPolicies"]
        for user in ("governor-admin", "governor-marketing-ops")
    }
    marketing = attached["governor-marketing-ops"][0]["PolicyArn"]
    version = iam.get_policy(PolicyArn=marketing)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=marketing, VersionId=version)["PolicyVersion"]["Document"]
    document = json.loads(document) if isinstance(document, str) else document
    # Then each role user carries its template policy, resolved for the local API
    assert attached["governor-admin"][0]["PolicyName"] == "governor-local-AdminPolicy"
    assert resource("GET", "/policy") in document["Statement"][0]["Resource"]
    assert set(stack.credentials) == {"admin", "marketing-ops"}


def test_admin_keys_reach_the_customer_routes(stack: LocalGovernor) -> None:
    # Given the admin role's keys / When it reads a customer's contact state
    status, _, _ = call(stack, "GET", "/customers/cust-roles-1/contact-state", keys=stack.credentials["admin"])
    # Then API Gateway lets it through to the function
    assert status == 200


def test_marketing_ops_keys_are_refused_the_customer_routes_with_api_gateways_403(stack: LocalGovernor) -> None:
    # Given the marketing-ops role's keys / When it reads a customer's contact state
    path = "/customers/cust-roles-1/contact-state"
    status, headers, body = call(stack, "GET", path, keys=stack.credentials["marketing-ops"])
    # Then 403 in API Gateway's words, naming the user and the route's ARN
    assert status == 403
    assert body == {
        "message": f"User: arn:aws:iam::{ACCOUNT}:user/governor-marketing-ops is not authorized to perform: "
        f"execute-api:Invoke on resource: {resource('GET', path)}"
    }
    assert headers["x-amzn-ErrorType"] == "AccessDeniedException"
    # And the refusal is the one the OpenAPI document declares for the route (Server is the HTTP server's own)
    sent = {k: v for k, v in headers.items() if k.lower() != "server"}
    check(
        "GET", "/customers/{customer_id}/contact-state", {"statusCode": 403, "headers": sent, "body": json.dumps(body)}
    )


def test_marketing_ops_keys_reach_the_policy_routes_and_are_its_author(stack: LocalGovernor) -> None:
    # Given the marketing-ops keys
    keys = stack.credentials["marketing-ops"]
    # When it reads the policy, then validates one
    status, headers, current = call(stack, "GET", "/policy", keys=keys)
    validated, _, answer = call(stack, "POST", "/policy/validate", keys=keys, body={"policy": current["policy"]})
    # Then both are let through
    assert (status, validated) == (200, 200)
    assert headers["ETag"]
    assert answer["valid"] is True


def test_a_wrong_secret_gets_a_signature_mismatch(stack: LocalGovernor) -> None:
    # Given the admin's key id signed with another secret
    key, _ = stack.credentials["admin"]
    # When it calls an admin route
    status, headers, body = call(stack, "GET", "/stats", keys=(key, "not-the-secret"))
    # Then 403 with API Gateway's signature message
    assert status == 403
    assert body["message"].startswith("The request signature we calculated does not match the signature you provided")
    assert headers["x-amzn-ErrorType"] == "InvalidSignatureException"


def test_a_body_changed_after_signing_gets_a_signature_mismatch(stack: LocalGovernor) -> None:
    # Given a request signed over one body and sent with another
    keys = stack.credentials["marketing-ops"]
    tampered = json.dumps({"policy": {"caps": "changed"}}).encode()
    # When it reaches the gateway
    status, _, body = call(stack, "POST", "/policy/validate", keys=keys, body={"policy": {}}, sent_body=tampered)
    # Then the signature does not match
    assert status == 403
    assert "signature we calculated does not match" in body["message"]


def test_an_unknown_access_key_is_refused(stack: LocalGovernor) -> None:
    # Given keys IAM never issued / When they sign a request
    status, _, body = call(stack, "GET", "/policy", keys=("AKIAUNKNOWNUNKNOWN00", "secret"))
    # Then 403 as for an invalid token
    assert status == 403
    assert body == {"message": "The security token included in the request is invalid."}


def test_an_unsigned_request_is_still_served_locally(stack: LocalGovernor) -> None:
    # Given no signature / When a customer route is called
    status, _, _ = call(stack, "GET", "/customers/cust-roles-1/contact-state")
    # Then the local stack serves it, as before roles existed
    assert status == 200


def test_a_deny_added_in_iam_takes_effect_at_once(stack: LocalGovernor) -> None:
    # Given an inline policy on the admin user denying GET /stats, put through moto's IAM
    iam = stack.client("iam")
    deny = {"Effect": "Deny", "Action": "execute-api:*", "Resource": "arn:aws:execute-api:*:*:*/*/GET/sta?s"}
    iam.put_user_policy(
        UserName="governor-admin",
        PolicyName="no-stats",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [deny]}),
    )
    try:
        # When the admin reads stats, and a customer
        refused, _, _ = call(stack, "GET", "/stats", keys=stack.credentials["admin"])
        allowed, _, _ = call(stack, "GET", "/customers/cust-roles-1/contact-state", keys=stack.credentials["admin"])
    finally:
        iam.delete_user_policy(UserName="governor-admin", PolicyName="no-stats")
    # Then the explicit Deny wins over the managed Allow, on that route only
    assert (refused, allowed) == (403, 200)


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        (
            "arn:aws:execute-api:*:*:api/dev/GET/customers/*/preferences",
            "arn:aws:execute-api:r:1:api/dev/GET/customers/a/b/preferences",
            True,
        ),
        ("arn:aws:execute-api:r:1:api/dev/GET/policy", "arn:aws:execute-api:r:1:api/dev/GET/policy/versions", False),
        ("arn:aws:execute-api:r:1:api/dev/GET/polic?", "arn:aws:execute-api:r:1:api/dev/GET/policy", True),
        ("arn:aws:execute-api:r:1:api/dev/GET/polic?", "arn:aws:execute-api:r:1:api/dev/GET/polic", False),
        ("arn:aws:execute-api:r:1:api/dev/GET/[a]", "arn:aws:execute-api:r:1:api/dev/GET/a", False),
    ],
)
def test_resources_match_with_iams_wildcards_only(pattern: str, value: str, matches: bool) -> None:
    # Given one Allow statement / When a resource is evaluated / Then * and ? are the only wildcards
    statement = {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": pattern}
    assert authz.allows([statement], "execute-api:Invoke", value) is matches


def test_an_allow_needs_the_action_and_a_conditional_allow_grants_nothing() -> None:
    # Given statements for another action, and one with a condition this emulation does not evaluate
    arn = "arn:aws:execute-api:r:1:api/dev/GET/policy"
    other = {"Effect": "Allow", "Action": "execute-api:ManageConnections", "Resource": "*"}
    conditional = {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*", "Condition": {"x": {}}}
    # When evaluated / Then neither allows (failing closed), and no statement at all is an implicit deny
    assert not authz.allows([other, conditional], "execute-api:Invoke", arn)
    assert not authz.allows([], "execute-api:Invoke", arn)
    assert authz.allows(
        [{"Effect": "Allow", "Action": "EXECUTE-API:invoke", "Resource": arn}], "execute-api:Invoke", arn
    )
