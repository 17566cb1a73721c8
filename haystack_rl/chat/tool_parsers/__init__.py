"""Parse tool calls out of a model's completion, in the format that model's chat template renders them."""

# Each model family writes tool calls its own way (Hermes/Qwen `<tool_call>{json}</tool_call>`, Qwen 3.5
# `<function=...>` XML, Llama 3 bare JSON, Mistral `[TOOL_CALLS]`, GPT-OSS harmony messages). Training and
# deployment must read them with the same parser, or calls silently turn into final answers: `parser_for`
# picks the parser from the chat template (or the tokenizer's transformers `response_template`), `get_parser`
# picks one by name (for configs), and every parser reports text that looks like a call but does not parse
# in `errors` instead of dropping it.

from haystack_rl.chat.tool_parsers.base import TOOL_PARSER_NAMES, ParsedToolCalls, ToolCallParser, ToolSchemas
from haystack_rl.chat.tool_parsers.harmony import HARMONY_MESSAGE, GptOssToolParser
from haystack_rl.chat.tool_parsers.json_calls import (
    MISTRAL_TOOL_CALLS,
    PYTHON_TAG,
    Llama3JsonToolParser,
    MistralToolParser,
)
from haystack_rl.chat.tool_parsers.response_template import ResponseTemplateToolParser
from haystack_rl.chat.tool_parsers.selection import UNSUPPORTED_TOOL_FORMATS, detect_tool_format, get_parser, parser_for
from haystack_rl.chat.tool_parsers.tagged import HERMES_CLOSE, HERMES_OPEN, HermesToolParser, Qwen3CoderToolParser

__all__ = [
    "HARMONY_MESSAGE",
    "HERMES_CLOSE",
    "HERMES_OPEN",
    "MISTRAL_TOOL_CALLS",
    "PYTHON_TAG",
    "TOOL_PARSER_NAMES",
    "UNSUPPORTED_TOOL_FORMATS",
    "GptOssToolParser",
    "HermesToolParser",
    "Llama3JsonToolParser",
    "MistralToolParser",
    "ParsedToolCalls",
    "Qwen3CoderToolParser",
    "ResponseTemplateToolParser",
    "ToolCallParser",
    "ToolSchemas",
    "detect_tool_format",
    "get_parser",
    "parser_for",
]
