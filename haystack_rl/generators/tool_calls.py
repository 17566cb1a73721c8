"""Parse Hermes/Qwen-style `<tool_call>{json}</tool_call>` blocks out of a completion into Haystack `ToolCall`s."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from haystack.dataclasses import ToolCall

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
_BLOCK = re.compile(re.escape(TOOL_CALL_OPEN) + r"(.*?)" + re.escape(TOOL_CALL_CLOSE), re.DOTALL)


@dataclass
class ParsedToolCalls:
    """
    The result of `parse_tool_calls`.

    :param text: The completion without its well-formed tool-call blocks (malformed ones stay in the text).
    :param tool_calls: One `ToolCall` per well-formed block, in order.
    :param errors: One message per malformed block (bad JSON, missing name, unterminated tag).
    """

    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def parse_tool_calls(text: str, id_prefix: str = "call") -> ParsedToolCalls:
    """
    Extract every `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` block from `text`.

    `arguments` may be a JSON object or a string holding one; nested values are kept as parsed.
    A malformed block is left in the text and reported in `errors`, never raised.

    Usage example:
    ```python
    from haystack_rl.generators.tool_calls import parse_tool_calls

    parsed = parse_tool_calls('Sure.<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}</tool_call>')
    assert parsed.text == "Sure." and parsed.tool_calls[0].arguments == {"a": 1, "b": 2}
    ```

    :param text: The decoded completion (without the EOS token).
    :param id_prefix: Tool call ids are `f"{id_prefix}_{index}"`.
    """
    calls: list[ToolCall] = []
    errors: list[str] = []
    kept: list[str] = []
    position = 0
    for match in _BLOCK.finditer(text):
        kept.append(text[position : match.start()])
        position = match.end()
        try:
            call = _to_tool_call(match.group(1), f"{id_prefix}_{len(calls)}")
        except ValueError as error:
            errors.append(f"tool call {len(calls) + len(errors)}: {error}")
            kept.append(match.group(0))
            continue
        calls.append(call)
    rest = text[position:]
    if TOOL_CALL_OPEN in rest:
        errors.append(f"unterminated {TOOL_CALL_OPEN} (no {TOOL_CALL_CLOSE})")
    kept.append(rest)
    remaining = "".join(kept)
    return ParsedToolCalls(text=remaining.strip() if calls else remaining, tool_calls=calls, errors=errors)


def _to_tool_call(body: str, call_id: str) -> ToolCall:
    try:
        payload: Any = json.loads(body)
    except json.JSONDecodeError as error:
        raise ValueError(f"invalid JSON ({error.msg} at char {error.pos}): {body.strip()[:200]!r}") from error
    except RecursionError:  # hostile output: brackets nested thousands deep
        raise ValueError(f"JSON nested too deeply: {body.strip()[:200]!r}") from None
    if not isinstance(payload, dict):
        raise ValueError(f"expected a JSON object, got {type(payload).__name__}")
    name = payload.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("missing or non-string 'name'")
    arguments = payload.get("arguments", payload.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as error:
            raise ValueError(f"'arguments' is a string but not JSON ({error.msg})") from error
        except RecursionError:
            raise ValueError("'arguments' is a string of JSON nested too deeply") from None
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise ValueError(f"'arguments' must be a JSON object, got {type(arguments).__name__}")
    return ToolCall(tool_name=name, arguments=arguments, id=call_id)
