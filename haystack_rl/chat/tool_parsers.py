"""Parse tool calls out of a model's completion, in the format that model's chat template renders them."""

# Each model family writes tool calls its own way (Hermes/Qwen `<tool_call>{json}</tool_call>`, Qwen 3.5
# `<function=...>` XML, Llama 3 bare JSON, Mistral `[TOOL_CALLS]`, GPT-OSS harmony messages). Training and
# deployment must read them with the same parser, or calls silently turn into final answers: `parser_for`
# picks the parser from the chat template (or the tokenizer's transformers `response_template`), `get_parser`
# picks one by name (for configs), and every parser reports text that looks like a call but does not parse
# in `errors` instead of dropping it.

from __future__ import annotations

import json
import re
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

#: Tool-call formats `detect_tool_format` recognises in a template but no built-in parser reads: give the
#: tokenizer a transformers `response_template` (e.g. `trl.chat_template_utils.add_response_schema`) instead.
UNSUPPORTED_TOOL_FORMATS: tuple[str, ...] = ("glm4_moe", "gemma4", "lfm2", "deepseek", "unknown")

HERMES_OPEN = "<tool_call>"
HERMES_CLOSE = "</tool_call>"
PYTHON_TAG = "<|python_tag|>"
MISTRAL_TOOL_CALLS = "[TOOL_CALLS]"
HARMONY_MESSAGE = "<|message|>"

_LLAMA_CALL_SIGNATURE = re.compile(r'\{\s*"name"\s*:\s*"[^"\\]*"\s*,\s*"(?:parameters|arguments)"\s*:')
_LLAMA_ARGUMENTS_KEY = re.compile(r'"(?:parameters|arguments)"\s*:')
_LLAMA_END_MARKERS = ("", "<|eot_id|>", "<|eom_id|>")
_MISTRAL_NAME = re.compile(r"\s*([^\s\[\]{}]+)\s*(?:\[ARGS\])?\s*")
_HARMONY_END = re.compile(r"<\|(?:end|call|return)\|>")
_HARMONY_RECIPIENT = re.compile(r"to=functions\.([^\s<]+)")
_PYTHON_LITERALS: dict[str, Any] = {"True": True, "False": False, "None": None}


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


# --- shared pieces --------------------------------------------------------------------------------------------


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


# --- <tool_call> blocks: Hermes JSON and Qwen 3.5 XML -----------------------------------------------------------


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


# --- Llama 3.x JSON ---------------------------------------------------------------------------------------------


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


# --- GPT-OSS harmony --------------------------------------------------------------------------------------------


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


# --- transformers response templates ----------------------------------------------------------------------------


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


# --- choosing a parser ------------------------------------------------------------------------------------------

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
