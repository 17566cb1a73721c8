"""Choosing a parser: by name (`get_parser`) or from a chat template or tokenizer (`parser_for`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from haystack_rl.chat.tool_parsers.base import (
    TOOL_PARSER_NAMES,
    ToolCallParser,
)
from haystack_rl.chat.tool_parsers.harmony import GptOssToolParser
from haystack_rl.chat.tool_parsers.json_calls import (
    MISTRAL_TOOL_CALLS,
    PYTHON_TAG,
    Llama3JsonToolParser,
    MistralToolParser,
)
from haystack_rl.chat.tool_parsers.response_template import ResponseTemplateToolParser
from haystack_rl.chat.tool_parsers.tagged import HERMES_OPEN, HermesToolParser, Qwen3CoderToolParser

#: Tool-call formats `detect_tool_format` recognises in a template but no built-in parser reads: give the
#: tokenizer a transformers `response_template` (e.g. `trl.chat_template_utils.add_response_schema`) instead.
UNSUPPORTED_TOOL_FORMATS: tuple[str, ...] = ("glm4_moe", "gemma4", "lfm2", "deepseek", "unknown")


_PARSERS: dict[str, type[ToolCallParser]] = {
    "hermes": HermesToolParser,
    "qwen3_coder": Qwen3CoderToolParser,
    "llama3_json": Llama3JsonToolParser,
    "mistral": MistralToolParser,
    "gpt_oss": GptOssToolParser,
}


def get_parser(name: str, **kwargs: Any) -> ToolCallParser:
    """
    The tool-call parser called `name` (one of `TOOL_PARSER_NAMES`), for configs that name it.

    Usage example:
    ```python
    from haystack_rl.chat.tool_parsers import TOOL_PARSER_NAMES, get_parser

    assert get_parser("mistral").name == "mistral"
    assert [get_parser(name).name for name in TOOL_PARSER_NAMES if name != "response_template"]
    ```

    :param name: The parser's name.
    :param kwargs: Constructor arguments: `response_template` (and `stop_texts`) for "response_template".
    :returns: A new parser.
    :raises ValueError: When no parser has that name, or "response_template" comes without a template.
    """
    if name == "response_template":
        if "response_template" not in kwargs:
            raise ValueError("get_parser('response_template') needs response_template=<the template dict>")
        return ResponseTemplateToolParser(**kwargs)
    if name not in _PARSERS:
        raise ValueError(f"unknown tool-call parser {name!r}; known: {', '.join(TOOL_PARSER_NAMES)}")
    return _PARSERS[name](**kwargs)


def _template_text(tokenizer_or_template: Any) -> str | None:
    if isinstance(tokenizer_or_template, str):
        return tokenizer_or_template
    template = getattr(tokenizer_or_template, "chat_template", None)
    if isinstance(template, Mapping):  # named templates: the tool one when there is one
        template = template.get("tool_use", template.get("default"))
    return template if isinstance(template, str) else None


def _inner(tokenizer_or_template: Any) -> list[Any]:
    """The object and, for a processor, its tokenizer (where transformers keeps `response_template`)."""
    if isinstance(tokenizer_or_template, str):
        return []
    inner = getattr(tokenizer_or_template, "tokenizer", None)
    return [tokenizer_or_template] + ([inner] if inner is not None else [])


def _response_template(tokenizer_or_template: Any) -> Mapping[str, Any] | None:
    for candidate in _inner(tokenizer_or_template):
        template = getattr(candidate, "response_template", None)
        if isinstance(template, Mapping):
            return template
    return None


def detect_tool_format(tokenizer_or_template: str | Any) -> str | None:
    """
    The tool-call format a chat template renders: a parser name, one of `UNSUPPORTED_TOOL_FORMATS`, or None
    when the template renders no tool calls at all.

    A tokenizer (or processor) with a transformers `response_template` gives "response_template". Otherwise
    the template text decides, by the markers it writes: `<|channel|>` with `<|call|>` -> "gpt_oss";
    `[TOOL_CALLS]` -> "mistral"; `<tool_call>` with `<function=` -> "qwen3_coder", with `<arg_key>` ->
    "glm4_moe", else "hermes"; `<|python_tag|>`, or a Llama 3 header with a `"parameters"` key -> "llama3_json";
    `<|tool_call>` -> "gemma4"; `<|tool_call_start|>` -> "lfm2"; DeepSeek's `tool▁calls▁begin` -> "deepseek";
    any other template that reads `tool_calls` -> "unknown".

    Usage example:
    ```python
    from haystack_rl.chat.tool_parsers import detect_tool_format

    assert detect_tool_format("{{ '<tool_call>' }}{{ message.tool_calls }}") == "hermes"
    assert detect_tool_format("{{ message.content }}") is None
    ```

    :param tokenizer_or_template: A chat template string, or a tokenizer/processor with `chat_template`.
    :returns: The format's name, or None.
    """
    if _response_template(tokenizer_or_template) is not None:
        return "response_template"
    template = _template_text(tokenizer_or_template) or ""
    if "<|channel|>" in template and "<|call|>" in template:
        return "gpt_oss"
    if MISTRAL_TOOL_CALLS in template:
        return "mistral"
    if HERMES_OPEN in template:
        if "<function=" in template:
            return "qwen3_coder"
        return "glm4_moe" if "<arg_key>" in template else "hermes"
    if PYTHON_TAG in template or ("<|start_header_id|>" in template and '"parameters"' in template):
        return "llama3_json"
    for marker, name in (("<|tool_call>", "gemma4"), ("<|tool_call_start|>", "lfm2"), ("tool▁calls▁begin", "deepseek")):
        if marker in template:
            return name
    return "unknown" if "tool_calls" in template else None


def parser_for(tokenizer_or_template: str | Any) -> ToolCallParser:
    """
    The parser for the tool calls a model writes, chosen from its chat template or tokenizer.

    A transformers `response_template` on the tokenizer wins (`ResponseTemplateToolParser`, with the EOS token
    as stop text). Otherwise `detect_tool_format` reads the template; a template that renders no tool calls
    gets the Hermes parser (the project's default; `detect_tool_format` returning None tells a caller that the
    model was never shown a tool-call format). A recognised format without a built-in parser raises, so it can
    never be read with the wrong one.

    Usage example:
    ```python
    from haystack_rl.chat.tool_parsers import parser_for

    assert parser_for("{%- if message.tool_calls %}[TOOL_CALLS]{% endif %}").name == "mistral"
    assert parser_for("{{ message.content }}").name == "hermes"
    ```

    :param tokenizer_or_template: A chat template string, or a tokenizer/processor with `chat_template`.
    :returns: A new parser.
    :raises ValueError: When the template renders tool calls in a format no built-in parser reads.
    """
    response_template = _response_template(tokenizer_or_template)
    if response_template is not None:
        stops = [getattr(candidate, "eos_token", None) for candidate in _inner(tokenizer_or_template)]
        return ResponseTemplateToolParser(response_template, [stop for stop in stops if isinstance(stop, str)])
    tool_format = detect_tool_format(tokenizer_or_template)
    if tool_format is None:
        return HermesToolParser()
    if tool_format in UNSUPPORTED_TOOL_FORMATS:
        raise ValueError(
            f"the chat template writes tool calls in the {tool_format!r} format, which no built-in parser reads; "
            "give the tokenizer a transformers response_template (for known templates "
            "trl.chat_template_utils.add_response_schema(tokenizer) sets one) and pass the tokenizer, "
            f"or name a parser with get_parser (one of {', '.join(TOOL_PARSER_NAMES)})"
        )
    return get_parser(tool_format)
