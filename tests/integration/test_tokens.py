"""Pagination tokens (shared/adapters/tokens.py): signed with the stack's own secret, bound to the
query and the API that gave them out, bounded, expiring; the key read once per process."""

from __future__ import annotations

import base64
import json
import os
import urllib.parse
from typing import Any

import boto3
import pytest

from infra import template
from infra.lambda_runtime import LambdaContext, api_gateway_event
from shared import wiring
from shared.adapters.tokens import MAX_TOKEN_CHARS, SecretKey, TokenSigner
from shared.domain.errors import InvalidInput
from shared.domain.policy import default_policy

KEY = b"k" * 64
STATE = {"day": "2026-11-23", "cursors": {"2026-11-23#03": "done"}}


def signer(now: float = 1_800_000_000.0) -> TokenSigner:
    return TokenSigner(lambda: KEY, clock=lambda: now)


def refused(call: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        call()
    assert [f["field"] for f in caught.value.fields] == ["next_token"]
    return caught.value


def test_a_token_reads_back_only_for_the_kind_and_query_it_was_given_for() -> None:
    token = signer().encode("decisions", "query-a", STATE)
    assert signer().decode("decisions", "query-a", token) == STATE
    refused(lambda: signer().decode("decisions", "query-b", token))
    refused(lambda: signer().decode("policy-versions", "query-a", token))
    refused(lambda: TokenSigner(lambda: b"another key " * 4).decode("decisions", "query-a", token))


def test_changing_any_byte_of_a_token_makes_it_invalid() -> None:
    # Given a genuine token
    token = signer().encode("decisions", "q", STATE)
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    # When any one byte is changed (the version, the time, the state or the MAC)
    for position in range(len(raw)):
        forged = bytearray(raw)
        forged[position] ^= 0x01
        text = base64.urlsafe_b64encode(bytes(forged)).decode().rstrip("=")
        # Then it is refused as next_token, never decoded into a query
        refused(lambda text=text: signer().decode("decisions", "q", text))


def test_a_token_expires_after_a_day() -> None:
    token = signer(now=1_800_000_000).encode("decisions", "q", STATE)
    assert signer(now=1_800_000_000 + 23 * 3600).decode("decisions", "q", token) == STATE
    refused(lambda: signer(now=1_800_000_000 + 25 * 3600).decode("decisions", "q", token))
    refused(lambda: signer(now=1_800_000_000 - 3600).decode("decisions", "q", token))  # from the future


@pytest.mark.parametrize(
    "token",
    ["", "A" * (MAX_TOKEN_CHARS + 1), "not base64 !", "AAAA", base64.urlsafe_b64encode(b'{"day":"zzzz"}').decode()],
    ids=["empty", "oversized", "not-base64", "too-short", "unsigned-json"],
)
def test_malformed_tokens_are_refused_before_anything_is_decoded(token: str) -> None:
    error = refused(lambda: signer().decode("decisions", "q", token))
    assert "repeat the query without it" in str(error)


def test_the_key_is_the_stacks_secret_read_once_per_process(aws: Any) -> None:
    # Given the admin function's environment, as the template gives it
    arn = aws.environment("AdminApiFunction")["SIGNING_SECRET_ARN"]
    client = boto3.client("secretsmanager")
    reads: list[str] = []
    client.meta.events.register("before-call.secretsmanager.GetSecretValue", lambda **_: reads.append("read"))
    # When many tokens are signed and read with it
    signing = TokenSigner(SecretKey(arn, client))
    for n in range(20):
        assert signing.decode("k", "q", signing.encode("k", "q", {"n": n})) == {"n": n}
    # Then Secrets Manager was asked once, and the key is the generated secret's value
    assert reads == ["read"]
    assert signing.key() == client.get_secret_value(SecretId=arn)["SecretString"].encode()
    assert len(signing.key()) == 64


def test_a_function_without_the_secret_cannot_page_and_says_why() -> None:
    from shared.domain.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="SIGNING_SECRET_ARN"):
        TokenSigner(SecretKey(None)).encode("k", "q", {})


def test_only_the_paging_functions_may_read_the_signing_secret() -> None:
    # Given the translated template
    resources = template.translated()["Resources"]
    assert resources["SigningSecret"]["Type"] == "AWS::SecretsManager::Secret"
    assert resources["SigningSecret"]["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32
    readers = {}
    for name, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        variables = resource["Properties"].get("Environment", {}).get("Variables", {})
        readers[name] = variables.get("SIGNING_SECRET_ARN") == {"Ref": "SigningSecret"}
    # Then the admin and policy functions get its ARN, and no other function does
    assert {n for n, reads in readers.items() if reads} == {"AdminApiFunction", "PolicyApiFunction"}
    grants = [
        (role, statement)
        for role, r in resources.items()
        if r["Type"] == "AWS::IAM::Role"
        for policy in r["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
        if any(str(a).startswith("secretsmanager:") for a in _list(statement["Action"]))
    ]
    # And only their roles may read it: GetSecretValue on that one secret, nothing more
    assert {role for role, _ in grants} == {"AdminApiFunctionRole", "PolicyApiFunctionRole"}
    for _, statement in grants:
        assert _list(statement["Action"]) == ["secretsmanager:GetSecretValue"]
        assert _list(statement["Resource"]) == [{"Ref": "SigningSecret"}]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_call(path: str) -> tuple[int, Any]:
    from functions.policy_api.app import handler

    route, _, query = path.partition("?")
    answer = handler(api_gateway_event("GET", route, query=urllib.parse.parse_qs(query)), LambdaContext("policy"))
    return answer["statusCode"], json.loads(answer["body"])


def test_the_policy_api_pages_with_signed_tokens_and_refuses_a_made_up_key(aws: Any) -> None:
    # Given the policy API's environment and three versions
    os.environ.update(aws.environment("PolicyApiFunction"))
    wiring.reset()
    store = wiring.policy_store()
    for based_on in range(3):
        store.save(default_policy(), based_on, "maria", f"change {based_on + 1}")
    # When a caller pages through the versions, the token it gets back works
    status, first = policy_call("/policy/versions?limit=2")
    assert status == 200 and [v["version"] for v in first["items"]] == [3, 2]
    status, rest = policy_call(f"/policy/versions?limit=2&next_token={urllib.parse.quote(first['next_token'])}")
    assert [v["version"] for v in rest["items"]] == [1, 0]
    # But a key made up in the format the API once trusted (base64 JSON of the table key) is refused
    made_up = {"policy_id": {"S": "contact-policy"}, "version_key": {"S": "v#00000002"}}
    forged = base64.urlsafe_b64encode(json.dumps(made_up, sort_keys=True).encode()).decode()
    status, body = policy_call(f"/policy/versions?next_token={urllib.parse.quote(forged)}")
    assert (status, [f["field"] for f in body["fields"]]) == (400, ["next_token"])
    # And so is a decisions token, even though it is signed with the same key
    other = wiring.token_signer().encode("decisions", "contact-policy", {"after": "v#00000002"})
    assert policy_call(f"/policy/versions?next_token={urllib.parse.quote(other)}")[0] == 400
