"""The parser contract (`ToolCallParser`, `ParsedToolCalls`) and the pieces the format parsers share."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from haystack.dataclasses import ToolCall

#: Tool schemas as `apply_chat_template` takes them (`{"type": "function", "function": {...}}`) or as
#: Haystack's `Tool.tool_spec` (`{"name": ..., "parameters": {...}}`). Only formats that write argument values
#: as untyped text (Qwen 3.5 XML, response templates) use them, to tell `"7"` from `7`.
ToolSchemas = Sequence[Mapping[str, Any]]

#: The parsers `get_parser` knows, by name (the names a config may use).
TOOL_PARSER_NAMES: tuple[str, ...] = ("hermes", "qwen3_coder", "llama3_json", "mistral", "gpt_oss", "response_template")


@dataclass
class ParsedToolCalls:
    """
    The result of a `ToolCallParser`.

    :param text: The completion without its well-formed tool calls (malformed ones stay in the text).
    :param tool_calls: One `ToolCall` per well-formed call, in order; ids are `f"{id_prefix}_{index}"`.
    :param errors: One message per block that looks like a call but does not parse (bad JSON, missing name,
        arguments not an object, unterminated tag): a format error to count, never a final answer.
    :param reasoning: The reasoning the parser split off, when it does (only `ResponseTemplateToolParser`);
        the other parsers leave any `<think>` block in `text`.
    """

    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    reasoning: str | None = None


class ToolCallParser(ABC):
    """
    Reads the tool calls of one chat format out of a decoded completion.

    Subclasses set `name` (one of `TOOL_PARSER_NAMES`) and implement `parse`, which never raises on model
    output: whatever looks like a call of its format but does not parse goes to `ParsedToolCalls.errors`.

    Usage example:
    ```python
    from haystack_rl.chat.tool_parsers import ToolCallParser, get_parser

    parser: ToolCallParser = get_parser("hermes")
    parsed = parser.parse('<tool_call>{"name": "add", "arguments": {"a": 1}}</tool_call>')
    assert parser.name == "hermes" and parsed.tool_calls[0].tool_name == "add"
    ```
    """

    name: str = ""

    @abstractmethod
    def parse(self, text: str, id_prefix: str = "call", tools: ToolSchemas | None = None) -> ParsedToolCalls:
        """
        Split `text` into tool calls, the remaining text and format errors.

        :param text: The decoded completion, special tokens kept (the final stop token may be missing).
        :param id_prefix: Tool call ids are `f"{id_prefix}_{index}"`.
        :param tools: Schemas of the tools offered; used only by formats whose argument values are untyped text.
        :returns: The `ParsedToolCalls`.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _clip(text: str, limit: int = 200) -> str:
    text = text.strip()
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _load_json(body: str) -> Any:
    try:
        return json.loads(body)
    except json.JSONDecodeError as error:
        raise ValueError(f"invalid JSON ({error.msg} at char {error.pos}): {_clip(body)}") from error
    except RecursionError:  # hostile output: brackets nested thousands deep
        raise ValueError(f"JSON nested too deeply: {_clip(body)}") from None
    except ValueError as error:  # e.g. an integer longer than Python's digit limit
        raise ValueError(f"invalid JSON ({error}): {_clip(body)}") from None


def _raw_json(text: str, position: int) -> tuple[Any, int]:
    """Decode the JSON value that starts at `position`; return it and where it ends."""
    try:
        return json.JSONDecoder().raw_decode(text, position)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"invalid JSON ({error.msg} at char {error.pos - position}): {_clip(text[position:])}"
        ) from error
    except RecursionError:
        raise ValueError(f"JSON nested too deeply: {_clip(text[position:])}") from None
    except ValueError as error:
        raise ValueError(f"invalid JSON ({error}): {_clip(text[position:])}") from None


def _arguments(value: Any) -> dict[str, Any]:
    """A call's arguments: a JSON object, or a string holding one; missing means no arguments."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError as error:
            raise ValueError(f"'arguments' is a string but not JSON ({error.msg})") from error
        except RecursionError:
            raise ValueError("'arguments' is a string of JSON nested too deeply") from None
        except ValueError as error:
            raise ValueError(f"'arguments' is a string but not JSON ({error})") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"'arguments' must be a JSON object, got {type(value).__name__}")
    return value


def _call_from_object(payload: Any) -> tuple[str, dict[str, Any]]:
    """`{"name": ..., "arguments" | "parameters": {...}}` -> (name, arguments)."""
    if not isinstance(payload, dict):
        raise ValueError(f"expected a JSON object, got {type(payload).__name__}")
    name = payload.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("missing or non-string 'name'")
    return name, _arguments(payload.get("arguments", payload.get("parameters")))


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


class _Calls:
    """The calls and errors of one parse: ids in call order, errors numbered among all blocks seen."""

    def __init__(self, id_prefix: str) -> None:
        self.id_prefix = id_prefix
        self.calls: list[ToolCall] = []
        self.errors: list[str] = []

    def read(self, block: Callable[..., list[tuple[str, dict[str, Any]]]], *args: Any) -> bool:
        """Add the calls `block(*args)` reads, or its error; True when it read."""
        try:
            pairs = block(*args)
        except ValueError as error:
            self.errors.append(f"tool call {len(self.calls) + len(self.errors)}: {error}")
            return False
        for name, arguments in pairs:
            self.calls.append(ToolCall(tool_name=name, arguments=arguments, id=f"{self.id_prefix}_{len(self.calls)}"))
        return True

    def result(self, kept: list[str]) -> ParsedToolCalls:
        remaining = "".join(kept)
        return ParsedToolCalls(remaining.strip() if self.calls else remaining, self.calls, self.errors)


def _schema_types(schema: Any) -> set[str]:
    if not isinstance(schema, Mapping):
        return set()
    declared = schema.get("type")
    types = {declared} if isinstance(declared, str) else {t for t in declared or () if isinstance(t, str)}
    for union in ("anyOf", "oneOf"):
        for choice in schema.get(union) or ():
            types |= _schema_types(choice)
    return types


def _parameter_types(tools: ToolSchemas | None, tool_name: str) -> dict[str, set[str]]:
    """The declared JSON types of each parameter of `tool_name` (empty when the tool is not among `tools`)."""
    for tool in tools or ():
        spec = tool.get("function", tool) if isinstance(tool, Mapping) else None
        if isinstance(spec, Mapping) and spec.get("name") == tool_name:
            parameters = spec.get("parameters")
            properties = parameters.get("properties") if isinstance(parameters, Mapping) else None
            return {key: _schema_types(value) for key, value in (properties or {}).items()}
    return {}
