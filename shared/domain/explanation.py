"""Why a decision came out as it did: each rule's code, verdict and figures, rendered when read.

The engine records one `Record` per rule it evaluated: a template code, the verdict and the raw
values the rule looked at (times as datetimes, spans as timedeltas, plus whatever private detail the
sentence needs and the public figures do not show). Nothing is formatted while deciding: the
`RuleCheck` a reader sees (rule name, verdict, sentence, figures) is rendered from the record by the
template of its code the first time the explanation is read, and the log stores the record, not
the sentence (`encode`/`decode`). A rendered explanation is what the engine wrote out before
issue 12, word for word (tests/unit/test_engine_golden.py).

Template codes are stored in the decision log: never reuse or change one, add a new code instead.

The templates and the stored form's codec (`render`, `encode`, `decode`, `TEMPLATES`) live in
shared.domain.explanation_templates, loaded when an explanation is first rendered, encoded or
decoded: most of this text is sentences, and compiling it is a large share of a function's cold
import (issue 12, goal 3) that no cold start needs. They stay importable from here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, overload

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler
from pydantic_core import core_schema

if TYPE_CHECKING:  # typed re-exports of what __getattr__ (below) loads at first use
    from shared.domain.explanation_templates import TEMPLATES as TEMPLATES  # noqa: PLC0414
    from shared.domain.explanation_templates import decode as decode  # noqa: PLC0414
    from shared.domain.explanation_templates import encode as encode  # noqa: PLC0414
    from shared.domain.explanation_templates import render as render  # noqa: PLC0414

_setattr = object.__setattr__


def format_utc(value: datetime) -> str:
    """Fixed-width UTC text (sorts like the instant it names): 2026-11-23T10:00:00.000000Z."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class RuleCheck(BaseModel):
    """One rule the engine evaluated, with the figures behind its verdict."""

    # defer_build (here and below): schemas are built at first use, not when a function is imported.
    model_config = ConfigDict(frozen=True, defer_build=True)

    rule: str
    passed: bool
    message: str
    figures: dict[str, Any] = Field(default_factory=dict)


_CHECK_FIELDS = frozenset(("rule", "passed", "message", "figures"))


def _check(rule: str, passed: bool, message: str, figures: dict[str, Any]) -> RuleCheck:
    """A RuleCheck of values already valid, without validating them again (as model_construct)."""
    check = RuleCheck.__new__(RuleCheck)
    _setattr(check, "__dict__", {"rule": rule, "passed": passed, "message": message, "figures": figures})
    _setattr(check, "__pydantic_fields_set__", set(_CHECK_FIELDS))
    _setattr(check, "__pydantic_extra__", None)
    _setattr(check, "__pydantic_private__", None)
    return check


# A record: (template code, passed, *the template's values).
Record = tuple[Any, ...]


class Explanation(Sequence[RuleCheck]):
    """The rules a decision (or a re-check) evaluated, in order: a sequence of RuleCheck rendered
    from the engine's records on first read, or holding RuleChecks read from an older form."""

    __slots__ = ("_checks", "_records")

    def __init__(self, records: tuple[Record, ...] = (), checks: tuple[RuleCheck, ...] | None = None) -> None:
        self._records = records
        self._checks = checks

    @classmethod
    def of_checks(cls, checks: Sequence[RuleCheck]) -> Explanation:
        return cls((), tuple(checks))

    @property
    def records(self) -> tuple[Record, ...] | None:
        """The engine's records, or None when this explanation holds only rendered checks."""
        return self._records if self._checks is None or self._records else None

    @property
    def checks(self) -> tuple[RuleCheck, ...]:
        checks = self._checks
        if checks is None:
            # The templates load at the first read, not with the model (see the module docstring).
            from shared.domain.explanation_templates import render  # noqa: PLC0415

            checks = tuple(render(record) for record in self._records)
            self._checks = checks
        return checks

    @overload
    def __getitem__(self, index: int) -> RuleCheck: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[RuleCheck, ...]: ...
    def __getitem__(self, index: int | slice) -> RuleCheck | tuple[RuleCheck, ...]:
        return self.checks[index]

    def __len__(self) -> int:
        return len(self._checks) if self._checks is not None else len(self._records)

    def __iter__(self) -> Iterator[RuleCheck]:
        return iter(self.checks)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Explanation):
            if self._checks is None and other._checks is None and self._records == other._records:
                return True
            return self.checks == other.checks
        if isinstance(other, tuple | list):
            return self.checks == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.checks)

    def __repr__(self) -> str:
        return f"Explanation({list(self.checks)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Explanation, (self._records, self._checks))

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        # Validated and serialized as the tuple of RuleCheck it always was (the JSON schema too).
        checks = handler.generate_schema(tuple[RuleCheck, ...])
        from_checks = core_schema.no_info_after_validator_function(cls.of_checks, checks)
        return core_schema.json_or_python_schema(
            json_schema=from_checks,
            python_schema=core_schema.union_schema([core_schema.is_instance_schema(cls), from_checks]),
            serialization=core_schema.plain_serializer_function_ser_schema(_as_checks, return_schema=checks),
        )


def _as_checks(value: Any) -> Any:
    # A model_copy(update=...) may hold a plain tuple of RuleCheck.
    return value.checks if isinstance(value, Explanation) else value


# --- the stored form's values that the decision log's own fields use too -------------------------
# (the rest of the stored form: shared.domain.explanation_templates)


def _span_value(span: timedelta) -> Any:
    if not span.microseconds:
        return span.days * 86400 + span.seconds
    seconds = span.total_seconds()
    if timedelta(seconds=seconds) == span:
        return seconds
    return [span.days, span.seconds, span.microseconds]


def _span_of(value: Any) -> timedelta:
    if isinstance(value, list):
        return timedelta(days=value[0], seconds=value[1], microseconds=value[2])
    return timedelta(seconds=value)


def instant_value(moment: datetime | None, base: datetime) -> Any:
    """An instant as stored: seconds from `base` (whole unless it has microseconds), or its UTC
    text where a float could not hold it exactly; None stays None."""
    if moment is None:
        return None
    value = _span_value(moment - base)
    return value if not isinstance(value, list) else format_utc(moment)


def instant_of(value: Any, base: datetime) -> datetime | None:
    """The instant `instant_value` stored (UTC)."""
    if value is None:
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value).astimezone(UTC)
    return base + timedelta(seconds=value)


# Reason codes (shared.domain.decision.Reason values) as stored: the position in this tuple.
# Append only: a stored entry keeps the codes it was written with.
REASON_NAMES: tuple[str, ...] = (
    "SURVEY_ELIGIBLE",
    "CALLBACK_UNRESOLVED",
    "CALLBACK_ESCALATED",
    "CALLBACK_NEGATIVE_SENTIMENT",
    "CALLBACK_REPEAT_CONTACT",
    "CALLBACK_REOPENED",
    "QUIET_HOURS_DEFERRED",
    "ALREADY_FOLLOWED_UP",
    "OPTED_OUT",
    "ABANDONED_INTERACTION",
    "STALE_EVENT",
    "CALLBACK_DISABLED",
    "CALLBACK_CAP_REACHED",
    "SURVEY_DISABLED",
    "SEGMENT_EXCLUDED",
    "SHORT_INTERACTION",
    "NOT_SAMPLED",
    "SURVEY_CAP_REACHED",
    "CONTACT_COOLDOWN",
    "CONTACT_CAP_REACHED",
    "SURVEY_COOLDOWN_AFTER_RESPONSE",
    "SURVEY_FATIGUE",
    "SURVEY_DELAYED",
)
REASON_CODE = {name: code for code, name in enumerate(REASON_NAMES)}


# What moved to shared.domain.explanation_templates, still importable from here.
_TEMPLATE_NAMES = frozenset(("TEMPLATES", "decode", "encode", "render"))


def __getattr__(name: str) -> Any:
    if name in _TEMPLATE_NAMES:
        from shared.domain import explanation_templates  # noqa: PLC0415 - see the module docstring

        return getattr(explanation_templates, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
