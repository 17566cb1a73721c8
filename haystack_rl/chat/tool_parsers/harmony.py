"""GPT-OSS harmony messages (`to=functions.NAME ... <|message|>{json}<|call|>`)."""

from __future__ import annotations

import re
from typing import Any

from haystack_rl.chat.tool_parsers.base import (
    ParsedToolCalls,
    ToolCallParser,
    ToolSchemas,
    _Calls,
    _clip,
    _load_json,
)

HARMONY_MESSAGE = "<|message|>"
_HARMONY_END = re.compile(r"<\|(?:end|call|return)\|>")
_HARMONY_RECIPIENT = re.compile(r"to=functions\.([^\s<]+)")


class GptOssToolParser(ToolCallParser):
    """
    GPT-OSS (harmony) tool calls: a message addressed `to=functions.NAME` on the commentary channel,
    `... to=functions.NAME<|channel|>commentary json<|message|>{...}<|call|>`.

    The recipient may sit before or after `<|channel|>`; the closing `<|call|>` may be missing (it is a stop
    token, so a generator may have dropped it). Call messages are removed from the text; other messages
    (analysis, final) stay as they are. A call whose body is not a JSON object, that ends with `<|end|>` or
    `<|return|>` instead of `<|call|>`, or whose header never reaches `<|message|>`, is an error.

    Usage example:
    ```python
    from haystack_rl.chat.tool_parsers import GptOssToolParser

    text = ' to=functions.add<|channel|>commentary json<|message|>{"a": 1}<|call|>'
    parsed = GptOssToolParser().parse(text)
    assert parsed.tool_calls[0].tool_name == "add" and parsed.tool_calls[0].arguments == {"a": 1}
    ```
    """

    name = "gpt_oss"

    def parse(self, text: str, id_prefix: str = "call", tools: ToolSchemas | None = None) -> ParsedToolCalls:
        """
        Read every harmony message addressed to a function.

        :param text: The decoded completion (after the generation prompt `<|start|>assistant`).
        :param id_prefix: Tool call ids are `f"{id_prefix}_{index}"`.
        :param tools: Unused (JSON arguments carry their types).
        :returns: The `ParsedToolCalls`.
        """
        calls = _Calls(id_prefix)
        kept: list[str] = []
        position = 0
        while (message := text.find(HARMONY_MESSAGE, position)) >= 0:
            end = _HARMONY_END.search(text, message + len(HARMONY_MESSAGE))
            after = end.end() if end else len(text)
            recipient = _HARMONY_RECIPIENT.search(text, position, message)
            if recipient is None:
                kept.append(text[position:after])
            else:
                body = text[message + len(HARMONY_MESSAGE) : end.start() if end else len(text)]
                terminator = end.group(0) if end else None
                if not calls.read(lambda *a: [self._read(*a)], recipient.group(1), body, terminator):
                    kept.append(text[position:after])
            position = after
        if _HARMONY_RECIPIENT.search(text, position):
            calls.errors.append(f"a call header (to=functions...) has no {HARMONY_MESSAGE}: {_clip(text[position:])}")
        kept.append(text[position:])
        return calls.result(kept)

    @staticmethod
    def _read(name: str, body: str, terminator: str | None) -> tuple[str, dict[str, Any]]:
        if terminator not in (None, "<|call|>"):
            raise ValueError(f"call to {name!r} ends with {terminator}, not <|call|>")
        payload = _load_json(body)
        if not isinstance(payload, dict):
            raise ValueError(f"arguments of {name!r} must be a JSON object, got {type(payload).__name__}")
        return name, payload
