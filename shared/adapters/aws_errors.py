"""Which AWS failures are worth a retry, by botocore's own rules rather than a list kept here.

botocore's standard retry mode decides with its throttling and transient error codes, the HTTP
status (5xx, 429) and the transport errors (connection, timeouts). A failure it would have retried
is still transient once its retries ran out: the caller may retry later. Everything else, including
ParamValidationError (a request we built wrong) and missing credentials, is a fault of ours that
no retry can mend.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

# DynamoDB's transaction conflict is retried by the DynamoDB client's legacy rules, not by the
# generic standard-mode lists: another writer touched the item at the same instant.
_ALSO_TRANSIENT = frozenset({"TransactionConflictException"})


@cache
def _checkers() -> tuple[Any, ...]:
    # botocore.retries.standard pulls in botocore.utils, urllib3 and more (~100 ms): a cold start
    # must not pay for it before the first failure that needs classifying.
    from botocore.retries.standard import ThrottledRetryableChecker, TransientRetryableChecker  # noqa: PLC0415

    return (TransientRetryableChecker(), ThrottledRetryableChecker())


def error_code(error: BaseException) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return type(error).__name__


def is_transient(error: BaseException) -> bool:
    """True for throttling, 5xx/429 answers, timeouts and connection failures."""
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if isinstance(status, int) and (status >= 500 or status == 429):
            return True
        if error_code(error) in _ALSO_TRANSIENT:
            return True
        from botocore.retries.standard import RetryContext  # noqa: PLC0415 - see _checkers

        context = RetryContext(attempt_number=1, parsed_response=error.response)
        return any(checker.is_retryable(context) for checker in _checkers())
    if isinstance(error, BotoCoreError):
        return isinstance(error, ConnectionError | HTTPClientError)
    return False
