"""`<tool_call>` blocks: Hermes/Qwen JSON and Qwen 3.5 `<function=...>` XML."""

from __future__ import annotations

import json
from abc import abstractmethod
from typing import Any

from haystack_rl.chat.tool_parsers.base import (
    ParsedToolCalls,
    ToolCallParser,
    ToolSchemas,
    _call_from_object,
    _Calls,
    _clip,
    _load_json,
    _parameter_types,
)

HERMES_OPEN = "<tool_call>"
HERMES_CLOSE = "</tool_call>"
_PYTHON_LITERALS: dict[str, Any] = {"True": True, "False": False, "None": None}


class _TaggedBlockParser(ToolCallParser):
    """Calls inside `<tool_call>...</tool_call>` blocks; subclasses read one block's body."""

    def parse(self, text: str, id_prefix: str = "call", tools: ToolSchemas | None = None) -> ParsedToolCalls:
        """
        Read every `<tool_call>...</tool_call>` block; a malformed one stays in the text and is an error.

        :param text: The decoded completion.
        :param id_prefix: Tool call ids are `f"{id_prefix}_{index}"`.
        :param tools: Tool schemas (used by formats with untyped argument values).
        :returns: The `ParsedToolCalls`.
        """
        calls = _Calls(id_prefix)
        kept: list[str] = []
        position = 0
        while (start := text.find(HERMES_OPEN, position)) >= 0:
            end = text.find(HERMES_CLOSE, start + len(HERMES_OPEN))
            if end < 0:
                calls.errors.append(f"unterminated {HERMES_OPEN} (no {HERMES_CLOSE})")
                break
            kept.append(text[position:start])
            body = text[start + len(HERMES_OPEN) : end]
            position = end + len(HERMES_CLOSE)
            if not calls.read(lambda b, t: [self._read(b, t)], body, tools):
                kept.append(text[start:position])
        kept.append(text[position:])
        return calls.result(kept)

    @abstractmethod
    def _read(self, body: str, tools: ToolSchemas | None) -> tuple[str, dict[str, Any]]:
        """One block's body -> (name, arguments); raises ValueError when malformed."""


class HermesToolParser(_TaggedBlockParser):
    """
    Hermes / Qwen 2.5 / Qwen 3 tool calls: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`.

    Text around the blocks is kept (stripped when there are calls). `arguments` may be an object or a string
    holding one; `parameters` is accepted for it. A block with bad JSON, no name or non-object arguments stays
    in the text and is an error, as is an unterminated `<tool_call>`.

    Usage example:
    ```python
    from haystack_rl.chat.tool_parsers import HermesToolParser

    parsed = HermesToolParser().parse('Sure.<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}</tool_call>')
    assert parsed.text == "Sure." and parsed.tool_calls[0].arguments == {"a": 1, "b": 2}
    assert HermesToolParser().parse('<tool_call>{"name": "add", "arguments": {"a": </tool_call>').errors
    ```
    """

    name = "hermes"

    def _read(self, body: str, tools: ToolSchemas | None) -> tuple[str, dict[str, Any]]:
        return _call_from_object(_load_json(body))


class Qwen3CoderToolParser(_TaggedBlockParser):
    """
    Qwen 3.5+ / Qwen3-Coder / Nemotron 3 XML tool calls.

    The template writes
    `<tool_call>\\n<function=NAME>\\n<parameter=KEY>\\nVALUE\\n</parameter>\\n</function>\\n</tool_call>`,
    with strings as raw text and objects/lists as JSON, so a value's type is ambiguous: given the tool schemas
    (`tools`), a `string` parameter keeps its text and others are read as JSON; without them, a value that reads
    as JSON (or as Python's `True`/`False`/`None`, which the template writes for booleans and null) is decoded
    and anything else stays a string.

    Usage example:
    ```python
    from haystack_rl.chat.tool_parsers import Qwen3CoderToolParser

    text = "<tool_call>\\n<function=add>\\n<parameter=a>\\n1\\n</parameter>\\n</function>\\n</tool_call>"
    assert Qwen3CoderToolParser().parse(text).tool_calls[0].arguments == {"a": 1}
    tools = [{"name": "add", "parameters": {"properties": {"a": {"type": "string"}}}}]
    assert Qwen3CoderToolParser().parse(text, tools=tools).tool_calls[0].arguments == {"a": "1"}
    ```
    """

    name = "qwen3_coder"

    def _read(self, body: str, tools: ToolSchemas | None) -> tuple[str, dict[str, Any]]:
        inner = body.strip()
        if not inner.startswith("<function="):
            raise ValueError(f"expected <function=NAME> inside {HERMES_OPEN}, got {_clip(inner, 80)}")
        header_end = inner.find(">")
        name = inner[len("<function=") : header_end].strip() if header_end > 0 else ""
        if not name or "\n" in name or "<" in name:
            raise ValueError(f"missing or malformed function name in {_clip(inner, 80)}")
        if not inner.endswith("</function>"):
            raise ValueError(f"function {name!r} has no closing </function>")
        types = _parameter_types(tools, name)
        parameters = inner[header_end + 1 : len(inner) - len("</function>")]
        arguments: dict[str, Any] = {}
        position = 0
        while (start := parameters.find("<parameter=", position)) >= 0:
            if parameters[position:start].strip():
                raise ValueError(f"unexpected text between parameters: {_clip(parameters[position:start], 80)}")
            key_end = parameters.find(">", start)
            key = parameters[start + len("<parameter=") : key_end].strip() if key_end > 0 else ""
            if not key or "\n" in key or "<" in key:
                raise ValueError(f"malformed <parameter=KEY> in function {name!r}")
            close = parameters.find("</parameter>", key_end)
            if close < 0:
                raise ValueError(f"parameter {key!r} of {name!r} has no closing </parameter>")
            if key in arguments:
                raise ValueError(f"parameter {key!r} of {name!r} given twice")
            raw = parameters[key_end + 1 : close]
            raw = raw[1:] if raw.startswith("\n") else raw
            arguments[key] = _xml_value(raw[:-1] if raw.endswith("\n") else raw, types.get(key))
            position = close + len("</parameter>")
        if parameters[position:].strip():
            raise ValueError(f"unexpected text in function {name!r}: {_clip(parameters[position:], 80)}")
        return name, arguments


def _reject_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def _xml_value(raw: str, types: set[str] | None) -> Any:
    """One untyped XML argument value, typed by the schema when known, else leniently."""
    if types and "string" in types:
        return raw
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        pass
    literal = raw.strip()
    if literal in _PYTHON_LITERALS and (not types or types & {"boolean", "null"}):
        return _PYTHON_LITERALS[literal]
    return raw
