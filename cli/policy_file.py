"""Policy files as marketing ops write them: JSON or YAML, read with the line of every key, so a
problem the policy API reports by path (`caps.survey.0.days`) is shown at its line in the file;
unknown keys get the nearest valid name; partial files are merged onto the version they change.

Pure: no I/O beyond the text given, no HTTP. The commands (cli/policy.py) do the rest."""

from __future__ import annotations

import bisect
import difflib
import json
import re
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from shared.domain.policy import Policy

Part = str | int
Where = tuple[Part, ...]
Kind = Literal["json", "yaml"]

# What `governor policy show --json` wraps the document in: a file holding these was copied from it.
# `version` is assigned by the store: the API ignores it in a document, so it is never suggested.
_NOT_WRITTEN = frozenset({"version"})


class PolicyFileError(ValueError):
    """A file that cannot be read as one policy object: named with its line when known."""

    def __init__(self, name: str, message: str, line: int | None = None) -> None:
        self.name, self.line, self.message = name, line, message
        super().__init__(f"{name}:{line}: {message}" if line else f"{name}: {message}")


@dataclass(frozen=True)
class PolicyFile:
    """A parsed policy file: the document, and the line (1-based) of each key and list item by path."""

    name: str
    document: dict[str, Any]
    lines: dict[Where, int] = field(default_factory=dict)

    def line_of(self, where: Where) -> int | None:
        """The line of `where`, or of its deepest part that is in the file (a problem inside a rule
        merged in from the current version is shown at the nearest key the file has)."""
        for end in range(len(where), 0, -1):
            line = self.lines.get(where[:end])
            if line is not None:
                return line
        return None


@dataclass(frozen=True)
class Problem:
    """One problem of a policy file: its path in the document, the line it is on, what is wrong."""

    where: Where
    message: str
    line: int | None = None
    suggestion: str | None = None

    @property
    def path(self) -> str:
        return ".".join(str(p) for p in self.where)

    def text(self) -> str:
        hint = f" (did you mean `{self.suggestion}`?)" if self.suggestion else ""
        return f"{self.path}: {self.message}{hint}" if self.where else f"{self.message}{hint}"

    def located(self, name: str) -> str:
        """`name:line: path: message`, the form editors and terminals link to the line."""
        return f"{name}:{self.line}: {self.text()}" if self.line else f"{name}: {self.text()}"

    def as_json(self) -> dict[str, Any]:
        return {"field": self.path, "line": self.line, "message": self.message, "did_you_mean": self.suggestion}


def kind_of(name: str) -> Kind:
    return "yaml" if name.lower().endswith((".yaml", ".yml")) else "json"


def parse(text: str, name: str, kind: Kind | None = None) -> PolicyFile:
    """Reads one policy object from JSON or YAML text, with the line of every key and list item."""
    kind = kind or kind_of(name)
    document, lines = _parse_yaml(text, name) if kind == "yaml" else _parse_json(text, name)
    if not isinstance(document, dict):
        raise PolicyFileError(name, "must hold one policy object ({...}), not " + _kind_name(document), 1)
    # A version record (`policy show -o json`, GET /policy): the policy model has neither key, so
    # both together always mean the wrapper, whatever else the API adds to it (based_on, diff, ...).
    if {"policy", "version"} <= set(document) and isinstance(document["policy"], dict):
        raise PolicyFileError(
            name,
            "holds a policy version as `governor policy show` prints it, not a policy: "
            "write the document alone (`governor policy show --raw`)",
            1,
        )
    return PolicyFile(name, document, lines)


def _kind_name(value: Any) -> str:
    if value is None:
        return "nothing"
    return {list: "a list", str: "a string", bool: "a boolean"}.get(type(value), "a number")


# ---- JSON, with lines -------------------------------------------------------------------------

_SPACE = re.compile(r"[ \t\n\r]*")


class _JsonLines:
    """A recursive-descent reader of JSON that records where each key and item starts. Scalars are
    decoded by the standard library's own scanner, so values are exactly what json.loads gives."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.newlines = [m.start() for m in re.finditer("\n", text)]
        self.decoder = json.JSONDecoder()
        self.lines: dict[Where, int] = {}

    def line(self, index: int) -> int:
        return bisect.bisect_left(self.newlines, index) + 1

    def skip(self, index: int) -> int:
        match = _SPACE.match(self.text, index)
        return match.end() if match else index

    def fail(self, message: str, index: int) -> json.JSONDecodeError:
        return json.JSONDecodeError(message, self.text, index)

    def value(self, index: int, where: Where) -> tuple[Any, int]:
        index = self.skip(index)
        self.lines.setdefault(where, self.line(index))
        char = self.text[index : index + 1]
        if char == "{":
            return self.object(index + 1, where)
        if char == "[":
            return self.array(index + 1, where)
        return self.decoder.raw_decode(self.text, index)

    def object(self, index: int, where: Where) -> tuple[dict[str, Any], int]:
        found: dict[str, Any] = {}
        index = self.skip(index)
        if self.text[index : index + 1] == "}":
            return found, index + 1
        while True:
            index = self.skip(index)
            if self.text[index : index + 1] != '"':
                raise self.fail("Expecting property name enclosed in double quotes", index)
            key, end = json.decoder.scanstring(self.text, index + 1)  # type: ignore[attr-defined]
            self.lines[(*where, key)] = self.line(index)
            index = self.skip(end)
            if self.text[index : index + 1] != ":":
                raise self.fail("Expecting ':' delimiter", index)
            found[key], index = self.value(index + 1, (*where, key))
            index = self.skip(index)
            char = self.text[index : index + 1]
            if char == "}":
                return found, index + 1
            if char != ",":
                raise self.fail("Expecting ',' delimiter", index)
            index += 1

    def array(self, index: int, where: Where) -> tuple[list[Any], int]:
        items: list[Any] = []
        index = self.skip(index)
        if self.text[index : index + 1] == "]":
            return items, index + 1
        while True:
            item, index = self.value(index, (*where, len(items)))
            items.append(item)
            index = self.skip(index)
            char = self.text[index : index + 1]
            if char == "]":
                return items, index + 1
            if char != ",":
                raise self.fail("Expecting ',' delimiter", index)
            index += 1


def _parse_json(text: str, name: str) -> tuple[Any, dict[Where, int]]:
    reader = _JsonLines(text)
    try:
        document, end = reader.value(0, ())
        end = reader.skip(end)
        if end != len(text):
            raise reader.fail("Extra data", end)
    except json.JSONDecodeError as error:
        raise PolicyFileError(name, f"not valid JSON: {error.msg} (column {error.colno})", error.lineno) from None
    except RecursionError:
        raise PolicyFileError(name, "not valid JSON: nested too deeply") from None
    return document, reader.lines


# ---- YAML, with lines -------------------------------------------------------------------------


def _parse_yaml(text: str, name: str) -> tuple[Any, dict[Where, int]]:
    import yaml

    try:
        # compose gives the nodes with their marks; safe_load the values (the same text, twice).
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        document = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "cannot be read"
        raise PolicyFileError(name, f"not valid YAML: {problem}", mark.line + 1 if mark else None) from None
    except yaml.YAMLError as error:
        raise PolicyFileError(name, f"not valid YAML: {error}") from None
    lines: dict[Where, int] = {}
    if root is not None:
        _yaml_lines(root, (), lines)
    return document, lines


def _yaml_lines(node: Any, where: Where, lines: dict[Where, int]) -> None:
    import yaml

    lines.setdefault(where, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                lines[(*where, key.value)] = key.start_mark.line + 1
                _yaml_lines(value, (*where, key.value), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _yaml_lines(item, (*where, index), lines)


# ---- problems, by line, with suggestions ------------------------------------------------------


def where_of(path: str, prefix: str = "policy") -> Where:
    """`policy.caps.survey.0.days` (a path as the policy API reports it) as ("caps", "survey", 0, "days")."""
    parts = path.split(".") if path else []
    if parts and parts[0] == prefix:
        parts = parts[1:]
    return tuple(int(p) if p.isdigit() else p for p in parts)


def problems(policy_file: PolicyFile, reported: list[dict[str, str]]) -> list[Problem]:
    """The API's problems ({"field", "message"}) placed on the file's lines, sorted by line; an
    unknown key gets the nearest valid name at its place."""
    unknown = unknown_keys(policy_file.document)
    found = []
    for problem in reported:
        where = where_of(problem["field"])
        if where and where[-1] == "<unknown field>":
            # The API leaves a key it cannot print unnamed: name it from the file.
            named = [u for u in unknown if u[:-1] == where[:-1]]
            where = named[0] if named else where[:-1]
        suggestion = None
        if where and isinstance(where[-1], str) and _is_unknown(problem["message"]):
            suggestion = suggest(where)
        found.append(Problem(where, problem["message"], policy_file.line_of(where), suggestion))
    return sorted(found, key=lambda p: (p.line or 0, p.path))


def _is_unknown(message: str) -> bool:
    return "Extra inputs are not permitted" in message or "unknown" in message.lower()


def suggest(where: Where) -> str | None:
    """The valid key nearest to the last part of `where` at its place in the policy model."""
    names = field_names(where[:-1])
    if not names or not isinstance(where[-1], str):
        return None
    close = difflib.get_close_matches(where[-1], names, n=1, cutoff=0.6)
    if not close:
        close = [n for n in names if n.lower() == where[-1].lower() or n.startswith(where[-1].lower())]
    return close[0] if close else None


def field_names(where: Where) -> list[str] | None:
    """The keys the policy model accepts at `where` (None: not an object there)."""
    model = _model_at(where)
    if model is None:
        return None
    return [name for name in model.model_fields if not (model is Policy and name in _NOT_WRITTEN)]


def unknown_keys(document: Any, where: Where = ()) -> list[Where]:
    """Every key of the document the policy model has no field for, by path."""
    if isinstance(document, list):
        return [found for i, item in enumerate(document) for found in unknown_keys(item, (*where, i))]
    if not isinstance(document, dict):
        return []
    names = field_names(where)
    if names is None:
        return []
    found: list[Where] = []
    for key, value in document.items():
        if key in names or (key in _NOT_WRITTEN and not where):
            found += unknown_keys(value, (*where, key))
        else:
            found.append((*where, key))
    return found


def _model_at(where: Where) -> type[BaseModel] | None:
    annotation: Any = Policy
    for part in where:
        model = _model_of(annotation)
        if isinstance(part, int):
            annotation = _item_of(annotation)
        elif model is not None and part in model.model_fields:
            annotation = model.model_fields[part].annotation
        else:
            return None
        if annotation is None:
            return None
    return _model_of(annotation)


def _unwrapped(annotation: Any) -> Iterator[Any]:
    """The types an annotation may hold: through Annotated and unions (`X | None`)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        yield from _unwrapped(typing.get_args(annotation)[0])
    elif origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            yield from _unwrapped(arg)
    else:
        yield annotation


def _model_of(annotation: Any) -> type[BaseModel] | None:
    for option in _unwrapped(annotation):
        if isinstance(option, type) and issubclass(option, BaseModel):
            return option
    return None


def _item_of(annotation: Any) -> Any:
    for option in _unwrapped(annotation):
        if typing.get_origin(option) in (tuple, list, frozenset, set):
            return typing.get_args(option)[0]
    return None


# ---- partial files ----------------------------------------------------------------------------


def merge(base: dict[str, Any], partial: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """`partial` merged onto `base`, deep: objects merge key by key, anything else (a list such as a
    cap list or the overrides, a number, null) replaces the base's value whole. Also answers what was
    kept from `base`: the paths the file does not give, outermost first."""
    merged: dict[str, Any] = {}
    kept: list[str] = []
    for key, value in base.items():
        if key not in partial:
            merged[key] = value
            kept.append(key)
        elif isinstance(value, dict) and isinstance(partial[key], dict):
            merged[key], inner = merge(value, partial[key])
            kept += [f"{key}.{k}" for k in inner]
        else:
            merged[key] = partial[key]
    for key, value in partial.items():
        if key not in base:
            merged[key] = value
    return merged, kept


# ---- the editor's header block ----------------------------------------------------------------

EDIT_MARK = "governor policy edit"


def comment_prefix(kind: Kind) -> str:
    return "#" if kind == "yaml" else "//"


def strip_header(text: str, kind: Kind) -> str:
    """The text with the leading comment block (the problems a previous save had) blanked, line for
    line, so the lines of the rest stay where the editor showed them. YAML would ignore the block
    anyway; JSON has no comments, so it must go before parsing."""
    prefix = comment_prefix(kind)
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if line.lstrip().startswith(prefix):
            lines[index] = ""
        elif line.strip():
            break
    return "\n".join(lines)


def body_of(text: str, kind: Kind) -> str:
    """The text without the leading comment block and the blank lines around it."""
    return strip_header(text, kind).lstrip("\n")


def with_header(body: str, kind: Kind, found: list[Problem], name: str) -> str:
    """`body` under a comment block listing `found`, each at its line in the file as it will be
    written (the block shifts the body down by its own length)."""
    prefix = comment_prefix(kind)
    size = len(found) + 3  # the first line, the problems, the last line, one blank line
    header = [f"{prefix} {EDIT_MARK}: {len(found)} problem(s); fix them and save, or empty the file to abort."]
    for problem in found:
        where = f"line {problem.line + size}: " if problem.line else ""
        header.append(f"{prefix}   {where}{problem.text()}")
    header.append(f"{prefix} (this block is removed before the file is read: {name})")
    return "\n".join([*header, "", body])
