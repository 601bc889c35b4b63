"""Which AWS failures are worth a retry (shared/adapters/aws_errors.py): botocore's own rules."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)

from shared.adapters.aws_errors import is_transient


def client_error(code: str, status: int | None = None) -> ClientError:
    response: dict[str, Any] = {"Error": {"Code": code, "Message": "m"}}
    if status is not None:
        response["ResponseMetadata"] = {"HTTPStatusCode": status}
    return ClientError(response, "Query")  # type: ignore[arg-type]


def label(error: BaseException) -> str:
    code = error.response["Error"]["Code"] if isinstance(error, ClientError) else ""
    return f"{type(error).__name__}:{code}"


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        # botocore's throttling list, including codes the old hand-kept list lacked
        (client_error("ThrottlingException", 400), True),
        (client_error("ProvisionedThroughputExceededException", 400), True),
        (client_error("TooManyRequestsException", 429), True),
        (client_error("RequestThrottledException"), True),
        (client_error("RequestTimeout"), True),
        # any 5xx or 429, whatever its code
        (client_error("SomethingNewAndFailing", 503), True),
        (client_error("InternalServerError", 500), True),
        (client_error("Unnamed", 429), True),
        # DynamoDB's conflict with another writer
        (client_error("TransactionConflictException", 400), True),
        # a request we got wrong, a missing grant, a missing resource: no retry mends them
        (client_error("ValidationException", 400), False),
        (client_error("AccessDeniedException", 400), False),
        (client_error("ResourceNotFoundException", 400), False),
        (client_error("ConditionalCheckFailedException", 400), False),
        # botocore's own: transport failures are transient, the rest are bugs or configuration
        (ReadTimeoutError(endpoint_url="https://x"), True),
        (ConnectTimeoutError(endpoint_url="https://x"), True),
        (EndpointConnectionError(endpoint_url="https://x"), True),
        (ParamValidationError(report="Key: invalid type"), False),
        (NoCredentialsError(), False),
        (ValueError("not AWS at all"), False),
    ],
    ids=lambda v: str(v) if isinstance(v, bool) else label(v),
)
def test_transient_means_botocore_would_retry_it(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient
