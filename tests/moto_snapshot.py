"""moto's whole state, taken once and handed out as deep copies (the `aws` fixture's speed-up).

Provisioning template.yaml on a fresh moto costs ~40 AWS calls and ~20 boto3 clients (0.4-0.6 s of CPU);
the suite did it for each of ~300 tests. The `aws` fixture now provisions once per session, takes a
snapshot of every moto backend that provisioning touched, and gives each test a fresh deep copy of
it inside its own `mock_aws` (a few ms): the same tables, indexes, TTL, queues with redrive, bus,
rules, targets, secret, schedule group and state machine, and nothing a previous test wrote
(tests/integration/test_aws_fixture.py compares a copy with a fresh provisioning).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

# Lock-like objects moto keeps in its models (an SQS queue's Condition). They cannot be deep-copied;
# each copy gets new, unheld ones.
_LOCKS: dict[type, Any] = {
    type(threading.Lock()): threading.Lock,
    type(threading.RLock()): threading.RLock,
    threading.Condition: threading.Condition,
    threading.Semaphore: threading.Semaphore,
}


def _locks_in(root: Any) -> list[Any]:
    """Every lock reachable from `root` through containers and instance attributes."""
    found: list[Any] = []
    seen: set[int] = set()
    pending = [root]
    while pending:
        node = pending.pop()
        if id(node) in seen or isinstance(node, str | bytes | int | float | type(None) | type):
            continue
        seen.add(id(node))
        if type(node) in _LOCKS:
            found.append(node)
        elif isinstance(node, dict):
            pending += node.values()
        elif isinstance(node, list | tuple | set | frozenset):
            pending += node
        elif hasattr(node, "__dict__"):
            pending.append(vars(node))
    return found


class MotoSnapshot:
    """Every backend moto holds at the time it is taken (inside an active `mock_aws`)."""

    def __init__(self) -> None:
        from moto.core.base_backend import BackendDict

        where: list[tuple[Any, str, str]] = []
        backends: list[Any] = []
        services: list[Any] = BackendDict._instances  # type: ignore[misc]  # moto's registry of backends in use
        for service in services:
            for account, region, backend in service.iter_backends():
                where.append((service, account, region))
                backends.append(backend)
        self._where = where
        self._saved = self._copy(backends, _locks_in(backends))
        self._locks = _locks_in(self._saved)

    @staticmethod
    def _copy(backends: list[Any], locks: list[Any]) -> list[Any]:
        memo = {id(lock): _LOCKS[type(lock)]() for lock in locks}
        return copy.deepcopy(backends, memo)

    def restore(self) -> None:
        """Puts a fresh copy of every saved backend in place (inside a `mock_aws` that has just
        reset moto); other backends start empty as usual, and the mock's reset at exit clears all."""
        for (service, account, region), backend in zip(self._where, self._copy(self._saved, self._locks), strict=True):
            dict.__setitem__(service[account], region, backend)


@dataclass(frozen=True)
class Provisioned:
    """template.yaml provisioned once (`stack`, infra.local.provision's answer) and moto's state
    right after it."""

    stack: Any
    snapshot: MotoSnapshot

    @contextmanager
    def fresh(self) -> Iterator[Any]:
        """A new moto holding what provisioning created (and nothing else), for the block; yields
        the provisioned resources (names, URLs, ARNs, environments)."""
        from moto import mock_aws

        with mock_aws():
            self.snapshot.restore()
            yield copy.deepcopy(self.stack)


def provision_once() -> Provisioned:
    """Provisions template.yaml on a fresh moto and keeps the result (the `provisioned` fixture)."""
    import boto3
    from moto import mock_aws

    from infra.local import emulator
    from infra.local.provision import provision

    emulator.install()  # the one emulator's speed-ups, as the local stack and the bench run it
    with mock_aws():
        stack = provision(boto3.Session(region_name="us-east-1"))
        return Provisioned(stack, MotoSnapshot())
