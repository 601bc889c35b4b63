"""boto3 clients, created lazily once per process and reused by every call.

The endpoint comes from boto3's own AWS_ENDPOINT_URL setting, so the same code talks to AWS
in Lambda and to moto locally.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

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


@cache
def _session() -> Any:
    # One session for every client of the process: it loads the endpoint and partition data, the
    # retry rules and the credentials once (a session per client loaded them for each, ~50 ms a
    # client on a cold start). Only built and used under _lock: creating clients is not thread-safe.
    import boto3  # noqa: PLC0415 - on the first client, off the cold-start import of every handler

    return boto3.session.Session()


@cache
def client(service: str) -> Any:
    # boto3 session creation is not thread-safe; the lock keeps first use from many threads sound.
    with _lock:
        # botocore.config (~150 ms with what it pulls in) is imported on the first client too.
        from botocore.config import Config  # noqa: PLC0415

        config = Config(
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=2,
            read_timeout=5,
            max_pool_connections=64,
        )
        if service == "dynamodbstreams":
            # Stream calls go to the regional endpoint, not an account-specific one (which moto,
            # where every call is tested, does not route; AWS serves both).
            config = config.merge(Config(account_id_endpoint_mode="disabled"))
        return _session().client(service, config=config)


def reset_clients() -> None:
    """Forget cached clients and their session (tests point a fresh moto at the process)."""
    client.cache_clear()
    _session.cache_clear()


class AwsPort:
    """Base of the stores and publishers: a client passed in (tests, tools) or the process-wide
    lazy one, as Powertools' persistence layers do."""

    service = "dynamodb"

    def __init__(self, client: Any = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        return self._client or client(self.service)
