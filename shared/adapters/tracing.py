"""X-Ray tracing through Powertools' Tracer, built at the first traced call instead of at import.

`Tracer()` imports the X-Ray SDK and, in Lambda, patches botocore, requests and the other
libraries it knows: about 130-200 ms that every cold start paid before its handler was even
found. A `LazyTracer` offers the same decorators (`capture_lambda_handler`, `capture_method`), and
`.tracer` is the Tracer itself for anything else (annotations, metadata); the Tracer is built,
with the same options (so the same service, patching and X-Ray provider), when the first
decorated function runs. That is still before the invocation's first AWS call: clients are lazy
(shared.adapters.aws) and the X-Ray SDK patches botocore's client class, so every call of the
invocation is traced as before.
"""

from __future__ import annotations

import functools
import inspect
import threading
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools import Tracer

F = TypeVar("F", bound="Callable[..., Any]")


class LazyTracer:
    """Powertools' Tracer, built on first use; `LazyTracer(**options)` takes `Tracer`'s options."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._tracer: Tracer | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        """Whether the Tracer (and with it the X-Ray SDK) has been built yet."""
        return self._tracer is not None

    @property
    def tracer(self) -> Tracer:
        """The Powertools Tracer, built the first time it is asked for (once, whichever thread asks)."""
        if self._tracer is None:
            with self._lock:
                if self._tracer is None:
                    from aws_lambda_powertools import Tracer  # noqa: PLC0415 - the point: built on first use

                    self._tracer = Tracer(**self._options)
        return self._tracer

    def capture_lambda_handler(
        self,
        lambda_handler: F | None = None,
        capture_response: bool | None = None,
        capture_error: bool | None = None,
    ) -> Any:
        """`Tracer.capture_lambda_handler`, applied when the handler is first called."""
        if lambda_handler is None:
            return functools.partial(
                self.capture_lambda_handler, capture_response=capture_response, capture_error=capture_error
            )
        handler = lambda_handler
        traced: Callable[..., Any] | None = None

        @functools.wraps(handler)
        def decorate(event: Any, context: Any, **kwargs: Any) -> Any:
            nonlocal traced
            if traced is None:
                traced = self.tracer.capture_lambda_handler(
                    handler, capture_response=capture_response, capture_error=capture_error
                )
            return traced(event, context, **kwargs)

        return decorate

    def capture_method(
        self,
        method: F | None = None,
        capture_response: bool | None = None,
        capture_error: bool | None = None,
    ) -> Any:
        """`Tracer.capture_method` for plain functions (what the handlers trace: route functions),
        applied when the function is first called."""
        if method is None:
            return functools.partial(
                self.capture_method, capture_response=capture_response, capture_error=capture_error
            )
        if inspect.iscoroutinefunction(method) or inspect.isgeneratorfunction(method):
            # Powertools picks its wrapper by the function's kind; a plain wrapper would hide it.
            raise TypeError(f"LazyTracer.capture_method traces plain functions; use Tracer for {method.__name__}")
        function = method
        traced: Callable[..., Any] | None = None

        @functools.wraps(function)
        def decorate(*args: Any, **kwargs: Any) -> Any:
            nonlocal traced
            if traced is None:
                decorator = self.tracer.capture_method(capture_response=capture_response, capture_error=capture_error)
                traced = cast("Callable[..., Any]", decorator(function))
            return traced(*args, **kwargs)

        return cast(F, decorate)
