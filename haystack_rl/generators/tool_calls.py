"""Hermes/Qwen `<tool_call>{json}</tool_call>` parsing, kept here for imports (see `haystack_rl.chat.tool_parsers`)."""

from __future__ import annotations

from haystack_rl.chat.tool_parsers import HERMES_CLOSE, HERMES_OPEN, HermesToolParser, ParsedToolCalls

__all__ = ["TOOL_CALL_CLOSE", "TOOL_CALL_OPEN", "ParsedToolCalls", "parse_tool_calls"]

TOOL_CALL_OPEN = HERMES_OPEN
TOOL_CALL_CLOSE = HERMES_CLOSE


def parse_tool_calls(text: str, id_prefix: str = "call") -> ParsedToolCalls:
    """
    Extract every `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` block from `text` (`HermesToolParser`).

    `arguments` may be a JSON object or a string holding one; nested values are kept as parsed.
    A malformed block is left in the text and reported in `errors`, never raised. Other formats
    (Llama 3, Mistral, GPT-OSS, ...) have their parsers in `haystack_rl.chat.tool_parsers`.

    Usage example:
    ```python
    from haystack_rl.generators.tool_calls import parse_tool_calls

    parsed = parse_tool_calls('Sure.<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}</tool_call>')
    assert parsed.text == "Sure." and parsed.tool_calls[0].arguments == {"a": 1, "b": 2}
    ```

    :param text: The decoded completion (without the EOS token).
    :param id_prefix: Tool call ids are `f"{id_prefix}_{index}"`.
    """
    return HermesToolParser().parse(text, id_prefix=id_prefix)
