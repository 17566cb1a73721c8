"""Bare JSON tool calls: Llama 3.x (`<|python_tag|>` or a bare object) and Mistral (`[TOOL_CALLS]`)."""

from __future__ import annotations

import re
from typing import Any

from haystack_rl.chat.tool_parsers.base import (
    ParsedToolCalls,
    ToolCallParser,
    ToolSchemas,
    _arguments,
    _call_from_object,
    _Calls,
    _clip,
    _raw_json,
    _skip_space,
)

PYTHON_TAG = "<|python_tag|>"
MISTRAL_TOOL_CALLS = "[TOOL_CALLS]"
_LLAMA_CALL_SIGNATURE = re.compile(r'\{\s*"name"\s*:\s*"[^"\\]*"\s*,\s*"(?:parameters|arguments)"\s*:')
_LLAMA_ARGUMENTS_KEY = re.compile(r'"(?:parameters|arguments)"\s*:')
_LLAMA_END_MARKERS = ("", "<|eot_id|>", "<|eom_id|>")
_MISTRAL_NAME = re.compile(r"\s*([^\s\[\]{}]+)\s*(?:\[ARGS\])?\s*")


class Llama3JsonToolParser(ToolCallParser):
    """
    Llama 3.1 / 3.2 / 3.3 JSON tool calls: the whole reply is `{"name": ..., "parameters": {...}}`.

    An optional `<|python_tag|>` may come first, several calls may be separated by `;`, and `arguments` is
    accepted for `parameters`. A reply that starts with `<|python_tag|>`, or with `{` and has a `"parameters"`
    key, is an attempted call: if it does not parse, it stays text and is one error. A call-shaped JSON object
    after other text (or a `<|python_tag|>` mid-reply) is an error too, since the template never writes one.
    Built-in tool calls (`<|python_tag|>brave_search.call(...)`) are not JSON and count as errors.

    Usage example:
    ```python
    from haystack_rl.chat.tool_parsers import Llama3JsonToolParser

    parsed = Llama3JsonToolParser().parse('{"name": "add", "parameters": {"a": 1}}; {"name": "now", "parameters": {}}')
    assert [c.tool_name for c in parsed.tool_calls] == ["add", "now"] and parsed.text == ""
    assert Llama3JsonToolParser().parse('{"name": "add", "parameters": {"a": 1}').errors
    assert Llama3JsonToolParser().parse('The answer is {"x": 1}.').errors == []
    ```
    """

    name = "llama3_json"

    def parse(self, text: str, id_prefix: str = "call", tools: ToolSchemas | None = None) -> ParsedToolCalls:
        """
        Read the reply as one or more `;`-separated JSON calls, if it is one.

        :param text: The decoded completion.
        :param id_prefix: Tool call ids are `f"{id_prefix}_{index}"`.
        :param tools: Unused (JSON arguments carry their types).
        :returns: The `ParsedToolCalls`.
        """
        calls = _Calls(id_prefix)
        body = text.lstrip()
        tagged = body.startswith(PYTHON_TAG)
        if tagged:
            body = body[len(PYTHON_TAG) :].lstrip()
        if not (tagged or (body.startswith("{") and _LLAMA_ARGUMENTS_KEY.search(body))):
            if PYTHON_TAG in text or _LLAMA_CALL_SIGNATURE.search(text):
                calls.errors.append(
                    "tool call 0: a Llama 3 tool call must be the whole reply (after an optional <|python_tag|>), "
                    f"found one after other text: {_clip(text)}"
                )
            return calls.result([text])
        rest: list[str] = []
        if not calls.read(self._read, body, rest):
            return calls.result([text])
        return calls.result(rest)

    @staticmethod
    def _read(body: str, rest: list[str]) -> list[tuple[str, dict[str, Any]]]:
        pairs: list[tuple[str, dict[str, Any]]] = []
        position = 0
        while True:
            payload, position = _raw_json(body, position)
            pairs.append(_call_from_object(payload))
            position = _skip_space(body, position)
            if not body.startswith(";", position):
                break
            position = _skip_space(body, position + 1)
            if position == len(body):
                break
        tail = body[position:].strip()
        if tail not in _LLAMA_END_MARKERS:
            raise ValueError(f"unexpected text after the tool call: {_clip(tail, 80)}")
        rest.append(tail)
        return pairs


# --- Mistral [TOOL_CALLS] ---------------------------------------------------------------------------------------


class MistralToolParser(ToolCallParser):
    """
    Mistral tool calls: `[TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]` (tokenizer v3, Mistral 7B v0.3,
    Nemo, Large 2) and `[TOOL_CALLS]NAME[ARGS]{...}`, one marker per call (tokenizer v11+, Mistral Small 3.2,
    Magistral, Devstral).

    Text before the first `[TOOL_CALLS]` is kept. Each `[TOOL_CALLS]` segment is one block: when it does not parse
    (bad JSON, an empty array, a call without a name), it and everything after it stay in the text, with one
    error. Ids in the JSON form (`"id"`) are ignored: calls get `f"{id_prefix}_{index}"` like every parser.

    Usage example:
    ```python
    from haystack_rl.chat.tool_parsers import MistralToolParser

    old = MistralToolParser().parse('[TOOL_CALLS][{"name": "add", "arguments": {"a": 1}}]')
    new = MistralToolParser().parse('[TOOL_CALLS]add[ARGS]{"a": 1}')
    assert old.tool_calls == new.tool_calls and new.text == ""
    assert MistralToolParser().parse('[TOOL_CALLS]add[ARGS]{"a": ').errors
    ```
    """

    name = "mistral"

    def parse(self, text: str, id_prefix: str = "call", tools: ToolSchemas | None = None) -> ParsedToolCalls:
        """
        Read every `[TOOL_CALLS]` segment.

        :param text: The decoded completion.
        :param id_prefix: Tool call ids are `f"{id_prefix}_{index}"`.
        :param tools: Unused (JSON arguments carry their types).
        :returns: The `ParsedToolCalls`.
        """
        calls = _Calls(id_prefix)
        position = text.find(MISTRAL_TOOL_CALLS)
        if position < 0:
            return calls.result([text])
        kept = [text[:position]]
        while text.startswith(MISTRAL_TOOL_CALLS, position):
            ends: list[int] = []
            if not calls.read(self._segment, text, position + len(MISTRAL_TOOL_CALLS), ends):
                break
            position = _skip_space(text, ends[0])
        kept.append(text[position:])
        return calls.result(kept)

    @staticmethod
    def _segment(text: str, position: int, ends: list[int]) -> list[tuple[str, dict[str, Any]]]:
        start = _skip_space(text, position)
        if text.startswith("[", start):
            payload, end = _raw_json(text, start)
            if not isinstance(payload, list) or not payload:
                raise ValueError(f"expected a non-empty JSON array of calls after {MISTRAL_TOOL_CALLS}")
            pairs = [_call_from_object(item) for item in payload]
        else:
            match = _MISTRAL_NAME.match(text, position)
            if match is None:
                raise ValueError(f"expected a JSON array or NAME[ARGS]{{...}} after {MISTRAL_TOOL_CALLS}")
            arguments, end = _raw_json(text, match.end())
            pairs = [(match.group(1), _arguments(arguments))]
        ends.append(end)
        return pairs
