"""boto3 clients, created lazily once per process and reused by every call.

The endpoint comes from boto3's own AWS_ENDPOINT_URL setting, so the same code talks to AWS
in Lambda and to moto locally.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from shared.adapters.aws_errors import is_transient
from shared.domain.errors import TransientFailure

# What a call to AWS may raise. Of these, only what `retryable` accepts is worth a retry later;
# anything else (a request we built wrong, a missing grant, and any other exception at all) is a
# bug of ours: it must raise, fail the invocation and show in the function's Errors alarm, not be
# retried quietly into the dead-letter queue.
AWS_ERRORS: tuple[type[Exception], ...] = (ClientError, BotoCoreError, TransientFailure)


def retryable(error: BaseException) -> bool:
    """Throttling, 5xx, timeouts, connection failures (botocore's own rules), or our TransientFailure."""
    return isinstance(error, TransientFailure) or is_transient(error)


_lock = threading.Lock()
_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=2,
    read_timeout=5,
    max_pool_connections=64,
)


@cache
def client(service: str) -> Any:
    # boto3 session creation is not thread-safe; the lock keeps first use from many threads sound.
    with _lock:
        import boto3  # noqa: PLC0415 - imported on first use, off the cold-start path of pure code

        return boto3.session.Session().client(service, config=_CONFIG)  # type: ignore[call-overload]


def reset_clients() -> None:
    """Forget cached clients (tests point a fresh moto at the process)."""
    client.cache_clear()


class AwsPort:
    """Base of the stores and publishers: a client passed in (tests, tools) or the process-wide
    lazy one, as Powertools' persistence layers do."""

    service = "dynamodb"

    def __init__(self, client: Any = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        return self._client or client(self.service)
