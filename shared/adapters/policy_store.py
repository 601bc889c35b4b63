"""Versioned contact policies in DynamoDB. This module alone spells the policy table's keys.

Every accepted change is a new immutable version item (`v#00000042`) with its author, time,
comment and diff; one `current` item points at (and copies) the version in force. A change
commits both in one transaction, conditioned on the version it was based on, so two editors
can never both win: the second gets a 412. Version 0 is the built-in default policy.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from shared.adapters import aws
from shared.adapters.tokens import SecretKey, TokenSigner, refused
from shared.domain.decision import format_utc
from shared.domain.errors import InvalidInput, NotFound, VersionConflict, field_problems
from shared.domain.policy import STORED, Policy, default_policy

POLICY_ID = "contact-policy"
CURRENT = "current"


@dataclass(frozen=True)
class StoredPolicy:
    version: int
    policy: Policy
    author: str
    created_at: datetime
    comment: str
    kind: str = "update"  # update | rollback | builtin
    based_on: int | None = None
    diff: tuple[dict[str, Any], ...] = ()

    def as_json(self, with_policy: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "version": self.version,
            "author": self.author,
            "created_at": format_utc(self.created_at),
            "comment": self.comment,
            "kind": self.kind,
            "based_on": self.based_on,
            "diff": list(self.diff),
        }
        if with_policy:
            body["policy"] = policy_document(self.policy)
        return body


def policy_document(policy: Policy) -> dict[str, Any]:
    """The policy as marketing ops write it (without the version, which the store assigns)."""
    return policy.document()


def builtin() -> StoredPolicy:
    return StoredPolicy(
        0, default_policy(), "builtin", datetime(2026, 11, 23, tzinfo=UTC), "the documented default", kind="builtin"
    )


def diff(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """Every leaf that changed, by path (lists compare as a whole: a cap list is one rule)."""
    if isinstance(before, dict) and isinstance(after, dict):
        changes = []
        for key in sorted(set(before) | set(after)):
            changes += diff(before.get(key), after.get(key), f"{path}.{key}" if path else key)
        return changes
    if _normal(before) == _normal(after):
        return []
    return [{"path": path, "before": before, "after": after}]


def _normal(value: Any) -> Any:
    # Sets serialize as lists in no guaranteed order.
    return (
        sorted(value, key=json.dumps)
        if isinstance(value, list) and all(not isinstance(v, dict) for v in value)
        else value
    )


def _version_key(version: int) -> str:
    return f"v#{version:08d}"


def _key(sort_key: str) -> dict[str, Any]:
    return {"policy_id": {"S": POLICY_ID}, "version_key": {"S": sort_key}}


def _item(stored: StoredPolicy, sort_key: str) -> dict[str, Any]:
    return {
        **_key(sort_key),
        "version": {"N": str(stored.version)},
        "doc": {"S": json.dumps(policy_document(stored.policy), sort_keys=True)},
        "author": {"S": stored.author},
        "created_at": {"S": format_utc(stored.created_at)},
        "comment": {"S": stored.comment},
        "kind": {"S": stored.kind},
        "based_on": {"N": str(stored.based_on or 0)},
        "diff": {"S": json.dumps(list(stored.diff))},
    }


def _from_item(item: dict[str, Any]) -> StoredPolicy:
    version = int(item["version"]["N"])
    document = json.loads(item["doc"]["S"])
    return StoredPolicy(
        version=version,
        # A version stored before a validation rule was added stays readable (deciders need it).
        policy=Policy.model_validate({**document, "version": version}, context=STORED),
        author=item["author"]["S"],
        created_at=datetime.fromisoformat(item["created_at"]["S"]),
        comment=item["comment"]["S"],
        kind=item["kind"]["S"],
        based_on=int(item["based_on"]["N"]),
        diff=tuple(json.loads(item["diff"]["S"])),
    )


class PolicyStore(aws.AwsPort):
    def __init__(self, table: str, client: Any = None, signer: TokenSigner | None = None) -> None:
        self.table = table
        # Deciders never page: without a signer the key is looked up only if a token is needed.
        self.signer = signer or TokenSigner(SecretKey(None))
        super().__init__(client)

    def current(self) -> StoredPolicy:
        item = self.client.get_item(TableName=self.table, Key=_key(CURRENT), ConsistentRead=True).get("Item")
        return _from_item(item) if item else builtin()

    def get(self, version: int) -> StoredPolicy:
        if version == 0:
            return builtin()
        item = self.client.get_item(TableName=self.table, Key=_key(_version_key(version))).get("Item")
        if not item:
            raise NotFound(f"policy version {version} does not exist")
        return _from_item(item)

    def history(self, limit: int = 20, next_token: str | None = None) -> tuple[list[StoredPolicy], str | None]:
        """Newest first; the built-in default closes the list."""
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "policy_id = :id AND begins_with(version_key, :v)",
            "ExpressionAttributeValues": {":id": {"S": POLICY_ID}, ":v": {"S": "v#"}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if next_token:
            request["ExclusiveStartKey"] = _decode_token(self.signer, next_token)
        answer = self.client.query(**request)
        versions = [_from_item(item) for item in answer["Items"]]
        last = answer.get("LastEvaluatedKey")
        if not last and len(versions) < limit:
            versions.append(builtin())
        return versions, _encode_token(self.signer, last) if last else None

    def save(self, policy: Policy, based_on: int, author: str, comment: str, kind: str = "update") -> StoredPolicy:
        """Makes `policy` the new current version, if `based_on` is still current."""
        previous = self.current()
        if previous.version != based_on:
            raise VersionConflict(
                f"the policy changed since version {based_on}: version {previous.version} is current; "
                "review it and base your change on it",
                previous.version,
            )
        version = previous.version + 1
        try:
            # Exactly what will be read back; a rolled-back version must meet today's rules too.
            numbered = Policy.model_validate({**policy_document(policy), "version": version})
        except ValidationError as error:
            problems = field_problems(error, prefix=("policy",))
            raise InvalidInput(
                f"the policy has {len(problems)} problem(s) under the current rules; nothing was changed", problems
            ) from None
        stored = StoredPolicy(
            version=version,
            policy=numbered,
            author=author,
            created_at=datetime.now(UTC),
            comment=comment,
            kind=kind,
            based_on=based_on,
            diff=tuple(diff(policy_document(previous.policy), policy_document(policy))),
        )
        if based_on == 0:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(version_key)"}
        else:
            condition = {
                "ConditionExpression": "version = :based_on",
                "ExpressionAttributeValues": {":based_on": {"N": str(based_on)}},
            }
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": _item(stored, _version_key(version)),
                            "ConditionExpression": "attribute_not_exists(version_key)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": _item(stored, CURRENT),
                            **condition,
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    },
                ]
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            # Another editor committed first (between our read and our write).
            current = self.current().version
            raise VersionConflict(
                f"the policy changed since version {based_on}: version {current} is current; "
                "review it and base your change on it",
                current,
            ) from error
        return stored

    def rollback(self, to_version: int, based_on: int, author: str, comment: str) -> StoredPolicy:
        """Makes an old version current again, as a new version (history is never rewritten)."""
        old = self.get(to_version)
        return self.save(old.policy, based_on, author, comment or f"rollback to version {to_version}", kind="rollback")


TOKEN_KIND = "policy-versions"  # noqa: S105 - what the token pages, not a secret
_VERSION_KEY = re.compile(r"v#\d{8}")


def _encode_token(signer: TokenSigner, key: dict[str, Any]) -> str:
    return signer.encode(TOKEN_KIND, POLICY_ID, {"after": key["version_key"]["S"]})


def _decode_token(signer: TokenSigner, token: str) -> dict[str, Any]:
    """The key to resume after, from a signed token this API gave out (else a 400 on next_token)."""
    state = signer.decode(TOKEN_KIND, POLICY_ID, token)
    after = state.get("after")
    if set(state) != {"after"} or not isinstance(after, str) or not _VERSION_KEY.fullmatch(after):
        raise refused()
    return _key(after)


class CachedPolicy:
    """The current policy for deciders, re-read at most every `ttl` seconds: a new version takes
    effect within that time without a deploy, at one GetItem per instance per `ttl`."""

    def __init__(self, store: PolicyStore, ttl: float = 30.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.ttl = ttl
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._policy: Policy | None = None
        self._read_at = 0.0

    def __call__(self) -> Policy:
        now = self.monotonic()
        if self._policy is None or now - self._read_at >= self.ttl:
            with self._lock:
                if self._policy is None or now - self._read_at >= self.ttl:
                    self._policy = self.store.current().policy
                    self._read_at = now
        return self._policy
