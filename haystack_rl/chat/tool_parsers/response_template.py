"""Tool calls read by transformers' response parsing, driven by a `response_template` dict."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from haystack_rl.chat.tool_parsers.base import (
    ParsedToolCalls,
    ToolCallParser,
    ToolSchemas,
    _call_from_object,
    _Calls,
)


class ResponseTemplateToolParser(ToolCallParser):
    """
    Tool calls read by transformers' response parsing (`tokenizer.parse_response`), driven by a
    `response_template` dict: the one a tokenizer ships, or one TRL's `add_response_schema` sets.

    The completion is parsed without the prompt (`prefix=""`): a template that prefills part of the assistant
    turn (an opening `<think>`) leaves that part in the text. When parsing fails and the completion lacks its
    stop token (generators drop it, and some templates close the last field on it), it is retried with each of
    `stop_texts` appended. transformers reads the whole message at once, so it cannot say which call was
    malformed: a failed parse, or any call without a name or with non-object arguments, makes the whole
    completion one error with no calls and the text unchanged. `text` is the parsed `content`; the reasoning
    field (`reasoning_content` or `thinking`) goes to `reasoning`. Needs transformers >= 5.15 (imported on use).

    Usage example:
    ```python
    from haystack_rl.chat.tool_parsers import ResponseTemplateToolParser

    template = {
        "start_anchor": "<assistant>",
        "fields": {
            "tool_calls": {"open": "<call>", "close": "</call>", "repeats": True, "content": "json",
                           "transform": {"type": "function", "function": "{content}"}},
            "content": {"close_pattern": r"<end>|$", "content": "text"},
        }
    }
    parsed = ResponseTemplateToolParser(template).parse('Hi.<call>{"name": "add", "arguments": {"a": 1}}</call>')
    assert parsed.text == "Hi." and parsed.tool_calls[0].arguments == {"a": 1}
    ```
    """

    name = "response_template"

    def __init__(self, response_template: Mapping[str, Any], stop_texts: Sequence[str] = ()) -> None:
        """
        Create the parser.

        :param response_template: A transformers `response_template` dict.
        :param stop_texts: Stop tokens to append when parsing the completion as is fails (e.g. the EOS token).
        :raises ValueError: When transformers rejects the template (a configuration error, not a format error).
        """
        from transformers.utils.chat_parsing.response_templates import load_response_template

        self.response_template = dict(response_template)
        self.stop_texts = [stop for stop in stop_texts if stop]
        try:
            self._compiled = load_response_template(self.response_template)
        except (ValueError, TypeError, KeyError) as error:
            raise ValueError(f"ResponseTemplateToolParser: invalid response_template ({error})") from error

    def __repr__(self) -> str:
        return f"{type(self).__name__}(stop_texts={self.stop_texts!r})"

    def parse(self, text: str, id_prefix: str = "call", tools: ToolSchemas | None = None) -> ParsedToolCalls:
        """
        Parse the completion with the response template.

        :param text: The decoded completion.
        :param id_prefix: Tool call ids are `f"{id_prefix}_{index}"`.
        :param tools: Tool schemas; transformers casts untyped argument values with them.
        :returns: The `ParsedToolCalls`.
        """
        from transformers.utils.chat_parsing import parse_response

        attempts = [text] + [text + stop for stop in self.stop_texts if not text.endswith(stop)]
        schemas: list[dict[Any, Any] | Callable[..., Any]] | None = [dict(tool) for tool in tools or ()] or None
        failure: Exception | None = None
        for attempt in attempts:
            try:  # third-party parsing of model output: any exception is a format error, never a crash
                message = parse_response(attempt, self._compiled, prefix="", tools=schemas)
            except Exception as error:
                failure = failure or error
                continue
            return self._from_message(text, message, id_prefix)
        detail = str(failure).replace("\n", " ")[:300] if failure is not None else "no result"
        return ParsedToolCalls(text=text, errors=[f"tool call 0: response template could not parse it ({detail})"])

    @staticmethod
    def _from_message(text: str, message: Any, id_prefix: str) -> ParsedToolCalls:
        calls = _Calls(id_prefix)
        raw_calls = message.get("tool_calls") if isinstance(message, dict) else None
        for raw in raw_calls or []:
            function = raw.get("function") if isinstance(raw, dict) else None
            if not calls.read(lambda f: [_call_from_object(f)], function):
                return ParsedToolCalls(text=text, errors=calls.errors)
        content = message.get("content") if isinstance(message, dict) else None
        reasoning = message.get("reasoning_content", message.get("thinking")) if isinstance(message, dict) else None
        parsed = calls.result([content if isinstance(content, str) else ""])
        parsed.reasoning = reasoning if isinstance(reasoning, str) else None
        return parsed
