"""Tool-call parsers (haystack_rl/chat/tool_parsers.py) against the real chat templates TRL ships."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trl
from haystack.dataclasses import ToolCall
from haystack.tools import Tool
from transformers import AutoTokenizer
from trl.chat_template_utils import add_response_schema, qwen3_template, supports_tool_calling

from haystack_rl.chat.tool_parsers import (
    TOOL_PARSER_NAMES,
    UNSUPPORTED_TOOL_FORMATS,
    GptOssToolParser,
    HermesToolParser,
    Llama3JsonToolParser,
    MistralToolParser,
    Qwen3CoderToolParser,
    ResponseTemplateToolParser,
    ToolCallParser,
    detect_tool_format,
    get_parser,
    parser_for,
)
from haystack_rl.models.tiny import CHAT_TEMPLATE as TINY_TEMPLATE

TEMPLATE_DIR = Path(trl.__file__).parent / "chat_templates"
ALL_TEMPLATES = sorted(path.stem for path in TEMPLATE_DIR.glob("*.jinja"))
NATIVE = ("hermes", "qwen3_coder", "llama3_json", "gpt_oss")  # the formats TRL ships templates for
SINGLE_CALL = ("llama3_json", "gpt_oss")  # their templates render only one call per assistant message
END_OF_TURN = ("<|im_end|>", "<|eot_id|>")  # the EOS a generator stops on and drops

WEATHER_ARGS = {"city": "Paris", "days": 3, "zip": "75001", "metric": True, "opts": {"unit": "c", "hours": [6, 12]}}
TIME_ARGS = {"tz": "Europe/Paris"}
CALLS = [("get_weather", WEATHER_ARGS), ("get_time", TIME_ARGS)]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather forecast for a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "days": {"type": "integer"},
                    "zip": {"type": "string"},
                    "metric": {"type": "boolean"},
                    "opts": {"type": "object"},
                },
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "The time in a time zone.",
            "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]},
        },
    },
]


def template(name: str) -> str:
    return (TEMPLATE_DIR / f"{name}.jinja").read_text(encoding="utf-8")


def templates_of(*formats: str) -> list[str]:
    return [name for name in ALL_TEMPLATES if detect_tool_format(template(name)) in formats]


def pairs(parsed: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(call.tool_name, call.arguments) for call in parsed.tool_calls]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_path: Path) -> Any:
    return AutoTokenizer.from_pretrained(tiny_model_path)


def render_completion(tokenizer: Any, chat_template: str, calls: list[tuple[str, dict[str, Any]]]) -> str:
    """The assistant turn the template renders for `calls`, as a generator would decode it (no EOS)."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "What is the weather in Paris, and the time?"}]
    hf_calls = [
        {"type": "function", "id": f"call_{i}", "function": {"name": name, "arguments": arguments}}
        for i, (name, arguments) in enumerate(calls)
    ]
    kwargs: dict[str, Any] = {"chat_template": chat_template, "tools": TOOLS, "tokenize": False}
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, **kwargs)
    turn = {"role": "assistant", "content": "", "tool_calls": hf_calls}
    full = tokenizer.apply_chat_template([*messages, turn], **kwargs)
    start = 0  # templates that prefill (an open <think>) render it differently once the turn exists
    while start < min(len(prompt), len(full)) and prompt[start] == full[start]:
        start += 1
    completion = full[start:]
    for end in END_OF_TURN:
        if end in completion:
            completion = completion[: completion.index(end)]
    return completion


# --- choosing the parser -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [("qwen2_5", "hermes"), ("qwen3", "hermes"), ("qwen3_instruct_2507", "hermes"), ("qwen3_5_think", "qwen3_coder"),
     ("qwen3_8", "qwen3_coder"), ("nemotron_3_nano", "qwen3_coder"), ("llama3_1", "llama3_json"),
     ("llama3_2", "llama3_json"), ("gptoss", "gpt_oss"), ("gptoss_training", "gpt_oss"), ("llama3", None),
     ("phi3", None), ("gemma3", None), ("qwen2_5_vl", None), ("glm4moe", "glm4_moe"), ("gemma4", "gemma4"),
     ("lfm2_v2", "lfm2"), ("deepseekv3", "deepseek"), ("muse_glimmer", "unknown")],
)  # fmt: skip
def test_detect_tool_format_of_trl_templates(name: str, expected: str | None) -> None:
    assert detect_tool_format(template(name)) == expected


def test_parser_for_a_template_without_tool_calls_is_hermes_and_says_so() -> None:
    assert parser_for(template("llama3")).name == "hermes"
    assert detect_tool_format(template("llama3")) is None
    assert detect_tool_format(TINY_TEMPLATE) == "hermes"


@pytest.mark.parametrize("name", templates_of(*UNSUPPORTED_TOOL_FORMATS))
def test_parser_for_refuses_a_format_it_cannot_read(name: str) -> None:
    with pytest.raises(ValueError, match="response_template"):
        parser_for(template(name))


@pytest.mark.parametrize("name", ALL_TEMPLATES)
def test_a_template_that_renders_tool_calls_never_falls_back_silently(tokenizer: Any, name: str) -> None:
    """TRL's own check says whether a template renders calls; then the format must be recognised."""
    original, tokenizer.chat_template = tokenizer.chat_template, template(name)
    try:
        renders_calls = supports_tool_calling(tokenizer)
    finally:
        tokenizer.chat_template = original
    if renders_calls:
        assert detect_tool_format(template(name)) is not None


def test_parser_for_reads_a_tokenizer_and_its_named_templates(tokenizer: Any) -> None:
    assert parser_for(tokenizer).name == "hermes"  # the tiny model's own template
    named = SimpleNamespace(chat_template={"default": "{{ message.content }}", "tool_use": "[TOOL_CALLS]"})
    assert parser_for(named).name == "mistral"
    processor = SimpleNamespace(
        chat_template=template("qwen3"),
        tokenizer=SimpleNamespace(response_template=qwen3_template, eos_token="<|im_end|>"),
    )
    parser = parser_for(processor)
    assert isinstance(parser, ResponseTemplateToolParser) and parser.stop_texts == ["<|im_end|>"]


def test_an_invalid_response_template_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="invalid response_template"):
        ResponseTemplateToolParser({"fields": {"content": {"content": "text"}}})


def test_get_parser_by_name() -> None:
    for name in TOOL_PARSER_NAMES:
        kwargs = {"response_template": qwen3_template} if name == "response_template" else {}
        parser = get_parser(name, **kwargs)
        assert isinstance(parser, ToolCallParser) and parser.name == name
    with pytest.raises(ValueError, match="known: hermes"):
        get_parser("llama4")
    with pytest.raises(ValueError, match="response_template="):
        get_parser("response_template")


# --- round trips through the real templates -------------------------------------------------------------------


@pytest.mark.parametrize("name", templates_of(*NATIVE))
def test_round_trip_through_the_real_template(tokenizer: Any, name: str) -> None:
    parser = parser_for(template(name))
    calls = CALLS[:1] if parser.name in SINGLE_CALL else CALLS
    completion = render_completion(tokenizer, template(name), calls)
    parsed = parser.parse(completion, id_prefix="t", tools=TOOLS)
    assert parsed.errors == [], completion
    assert pairs(parsed) == calls, completion
    assert [call.id for call in parsed.tool_calls] == [f"t_{i}" for i in range(len(calls))]
    assert "get_" not in parsed.text and "{" not in parsed.text


def test_round_trip_through_the_tiny_models_own_template(tokenizer: Any) -> None:
    completion = render_completion(tokenizer, TINY_TEMPLATE, CALLS)
    parsed = parser_for(tokenizer).parse(completion)
    assert pairs(parsed) == CALLS and parsed.errors == [] and parsed.text == ""


def test_gpt_oss_call_without_its_call_token(tokenizer: Any) -> None:
    completion = render_completion(tokenizer, template("gptoss"), CALLS[:1])
    assert completion.endswith("<|call|>")
    parsed = GptOssToolParser().parse(completion.removesuffix("<|call|>"))
    assert pairs(parsed) == CALLS[:1] and parsed.errors == []


@pytest.mark.parametrize("name", ["qwen3", "qwen3_5_think", "nemotron_3_nano", "llama3_1", "gptoss", "glm4moe",
                                  "gemma4", "lfm2_v2", "lfm2_2_5"])  # fmt: skip
def test_round_trip_through_a_response_template(tiny_model_path: Path, name: str) -> None:
    """TRL's response templates reach the formats without a built-in parser (GLM, Gemma 4, LFM2) too."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    tokenizer.chat_template = template(name)
    add_response_schema(tokenizer)
    if name == "llama3_1":
        tokenizer.eos_token = "<|eot_id|>"  # what a Llama 3.1 tokenizer has; its template closes on it
    parser = parser_for(tokenizer)
    assert isinstance(parser, ResponseTemplateToolParser)
    calls = CALLS[:1] if name in ("llama3_1", "gptoss") else CALLS
    completion = render_completion(tokenizer, template(name), calls)
    parsed = parser.parse(completion, tools=TOOLS)
    assert parsed.errors == [], completion
    assert pairs(parsed) == calls


def test_without_tool_schemas_xml_values_are_read_leniently(tokenizer: Any) -> None:
    completion = render_completion(tokenizer, template("qwen3_5_nothink"), CALLS)
    parsed = Qwen3CoderToolParser().parse(completion)
    assert parsed.tool_calls[0].arguments == {**WEATHER_ARGS, "zip": 75001}  # the ambiguity tool schemas resolve
    spec = Tool(name="get_weather", description="w", parameters=TOOLS[0]["function"]["parameters"], function=print)
    assert Qwen3CoderToolParser().parse(completion, tools=[spec.tool_spec]).tool_calls[0].arguments == WEATHER_ARGS


# --- every format, the same calls -------------------------------------------------------------------------------

WEATHER_JSON = '{"city": "Paris", "days": 3, "zip": "75001", "metric": true, "opts": {"unit": "c", "hours": [6, 12]}}'
TIME_JSON = '{"tz": "Europe/Paris"}'
XML_WEATHER = (
    "<parameter=city>\nParis\n</parameter>\n<parameter=days>\n3\n</parameter>\n<parameter=zip>\n75001\n</parameter>\n"
    '<parameter=metric>\nTrue\n</parameter>\n<parameter=opts>\n{"unit": "c", "hours": [6, 12]}\n</parameter>\n'
)
SAME_CALLS = {
    "hermes": (HermesToolParser(),
               f'<tool_call>\n{{"name": "get_weather", "arguments": {WEATHER_JSON}}}\n</tool_call>\n'
               f'<tool_call>\n{{"name": "get_time", "arguments": {TIME_JSON}}}\n</tool_call>'),
    "qwen3_coder": (Qwen3CoderToolParser(),
                    f"<tool_call>\n<function=get_weather>\n{XML_WEATHER}</function>\n</tool_call>\n"
                    "<tool_call>\n<function=get_time>\n<parameter=tz>\nEurope/Paris\n</parameter>\n</function>\n"
                    "</tool_call>"),
    "llama3_json": (Llama3JsonToolParser(),
                    f'<|python_tag|>{{"name": "get_weather", "parameters": {WEATHER_JSON}}}; '
                    f'{{"name": "get_time", "parameters": {TIME_JSON}}}'),
    "mistral_v3": (MistralToolParser(),
                   f'[TOOL_CALLS] [{{"name": "get_weather", "arguments": {WEATHER_JSON}, "id": "abcdefghi"}}, '
                   f'{{"name": "get_time", "arguments": {TIME_JSON}, "id": "jklmnopqr"}}]'),
    "mistral_v11": (MistralToolParser(),
                    f"[TOOL_CALLS]get_weather[ARGS]{WEATHER_JSON}[TOOL_CALLS]get_time[ARGS]{TIME_JSON}"),
    "gpt_oss": (GptOssToolParser(),
                f" to=functions.get_weather<|channel|>commentary json<|message|>{WEATHER_JSON}<|call|>"
                "<|start|>assistant<|channel|>commentary to=functions.get_time <|constrain|>json<|message|>"
                f"{TIME_JSON}<|call|>"),
    "response_template": (ResponseTemplateToolParser(qwen3_template),
                          f'<tool_call>\n{{"name": "get_weather", "arguments": {WEATHER_JSON}}}\n</tool_call>\n'
                          f'<tool_call>\n{{"name": "get_time", "arguments": {TIME_JSON}}}\n</tool_call>'),
}  # fmt: skip


def test_every_format_parses_the_same_calls_to_the_same_tool_calls() -> None:
    expected = [ToolCall(tool_name=name, arguments=arguments, id=f"x_{i}") for i, (name, arguments) in enumerate(CALLS)]
    for label, (parser, text) in SAME_CALLS.items():
        parsed = parser.parse(text, id_prefix="x", tools=TOOLS)
        assert (label, parsed.tool_calls, parsed.errors, parsed.text) == (label, expected, [], "")


def test_text_around_calls_is_kept() -> None:
    hermes = HermesToolParser().parse('Let me look.\n<tool_call>{"name": "a", "arguments": {}}</tool_call>')
    mistral = MistralToolParser().parse("Let me look.[TOOL_CALLS]a[ARGS]{}")
    harmony = ("<|channel|>analysis<|message|>Need a.<|end|>"
               '<|start|>assistant to=functions.a<|channel|>commentary json<|message|>{}<|call|>')  # fmt: skip
    gpt_oss = GptOssToolParser().parse(harmony)
    assert hermes.text == mistral.text == "Let me look."
    assert gpt_oss.text == "<|channel|>analysis<|message|>Need a.<|end|>" and pairs(gpt_oss) == [("a", {})]
    qwen3 = ResponseTemplateToolParser(qwen3_template)
    reasoning = qwen3.parse('<think>hm</think>ok<tool_call>{"name": "a"}</tool_call>')
    assert (reasoning.reasoning, reasoning.text, pairs(reasoning)) == ("hm", "ok", [("a", {})])


# --- near-misses are counted, never answers ---------------------------------------------------------------------

NEAR_MISSES = [
    (HermesToolParser(), '<tool_call>{"name": "a", "arguments": {"x": 1}</tool_call>', "invalid JSON"),
    (HermesToolParser(), '<tool_call>{"name": "a", "arguments": {"x": 1}}', "unterminated"),
    (HermesToolParser(), '<tool_call>{"arguments": {"x": 1}}</tool_call>', "'name'"),
    (HermesToolParser(), '<tool_call>{"name": "a", "arguments": [1]}</tool_call>', "must be a JSON object"),
    (Qwen3CoderToolParser(), '<tool_call>\n{"name": "a", "arguments": {}}\n</tool_call>', "<function=NAME>"),
    (Qwen3CoderToolParser(), "<tool_call>\n<function=a>\n<parameter=x>\n1\n</parameter>\n</tool_call>", "</function>"),
    (Qwen3CoderToolParser(), "<tool_call>\n<function=a>\n<parameter=x>\n1\n</function>\n</tool_call>", "</parameter>"),
    (Qwen3CoderToolParser(), "<tool_call>\n<function=>\n</function>\n</tool_call>", "function name"),
    (Qwen3CoderToolParser(), "<tool_call>\n<function=a>\n<parameter=x>\n1\n", "unterminated"),
    (Llama3JsonToolParser(), '{"name": "a", "parameters": {"x": 1}', "invalid JSON"),
    (Llama3JsonToolParser(), '{"parameters": {"x": 1}}', "'name'"),
    (Llama3JsonToolParser(), '{"name": "a", "parameters": [1]}', "must be a JSON object"),
    (Llama3JsonToolParser(), '<|python_tag|>brave_search.call(query="paris")', "invalid JSON"),
    (Llama3JsonToolParser(), '{"name": "a", "parameters": {}} and then some', "after the tool call"),
    (Llama3JsonToolParser(), 'Sure: {"name": "a", "parameters": {"x": 1}}', "whole reply"),
    (MistralToolParser(), '[TOOL_CALLS][{"name": "a", "arguments": {"x": 1}}', "invalid JSON"),
    (MistralToolParser(), '[TOOL_CALLS]a[ARGS]{"x": }', "invalid JSON"),
    (MistralToolParser(), "[TOOL_CALLS][]", "non-empty JSON array"),
    (MistralToolParser(), '[TOOL_CALLS][{"arguments": {}}]', "'name'"),
    (MistralToolParser(), "[TOOL_CALLS]a[ARGS][1]", "must be a JSON object"),
    (MistralToolParser(), "[TOOL_CALLS]", "expected a JSON array or NAME"),
    (GptOssToolParser(), " to=functions.a<|channel|>commentary json<|message|>{'x': 1}<|call|>", "invalid JSON"),
    (GptOssToolParser(), ' to=functions.a<|channel|>commentary json<|message|>{"x": 1}<|end|>', "not <|call|>"),
    (GptOssToolParser(), " to=functions.a<|channel|>commentary json<|message|>[1]<|call|>", "must be a JSON object"),
    (GptOssToolParser(), ' to=functions.a<|channel|>commentary json {"x": 1}', "has no <|message|>"),
    (ResponseTemplateToolParser(qwen3_template), '<tool_call>{"name": "a", "arguments": {</tool_call>', "JSON"),
    (ResponseTemplateToolParser(qwen3_template), '<tool_call>{"arguments": {}}</tool_call>', "'name'"),
    (ResponseTemplateToolParser(qwen3_template), '<tool_call>{"name": "a", "arguments": 3}</tool_call>', "object"),
]


@pytest.mark.parametrize(("parser", "text", "fragment"), NEAR_MISSES, ids=lambda v: getattr(v, "name", None))
def test_a_near_miss_is_a_counted_error_and_stays_in_the_text(parser: ToolCallParser, text: str, fragment: str) -> None:
    completion = text if parser.name == "llama3_json" else f"Thinking. {text}"  # a Llama 3 call is the whole reply
    parsed = parser.parse(completion)
    assert parsed.tool_calls == []
    assert len(parsed.errors) == 1 and fragment in parsed.errors[0], parsed.errors
    assert parsed.text == completion


def test_a_good_call_before_a_near_miss_still_counts() -> None:
    for parser, text, bad in [
        (HermesToolParser(), '<tool_call>{"name": "a"}</tool_call>', '<tool_call>{"name": "b", </tool_call>'),
        (MistralToolParser(), "[TOOL_CALLS]a[ARGS]{}", '[TOOL_CALLS]b[ARGS]{"x":'),
        (GptOssToolParser(), " to=functions.a<|channel|>commentary json<|message|>{}<|call|>",
         "<|start|>assistant to=functions.b<|channel|>commentary json<|message|>{bad<|call|>"),
    ]:  # fmt: skip
        parsed = parser.parse(text + bad)
        assert pairs(parsed) == [("a", {})] and len(parsed.errors) == 1 and parsed.text == bad


@pytest.mark.parametrize(
    "parser", [get_parser(n) for n in TOOL_PARSER_NAMES if n != "response_template"], ids=lambda p: p.name
)
@pytest.mark.parametrize(
    "text", ["  Paris is sunny.\n", '{"answer": 42}', "[1, 2, 3]", "<|channel|>final<|message|>Sunny.", "a < b > c"]
)
def test_plain_answers_are_neither_calls_nor_errors(parser: ToolCallParser, text: str) -> None:
    parsed = parser.parse(text)
    assert (parsed.text, parsed.tool_calls, parsed.errors) == (text, [], [])


# --- hostile output ---------------------------------------------------------------------------------------------

MB = 1_000_000
HOSTILE = [
    "[" * MB,
    "{" * MB,
    "<tool_call>" + "[" * 200_000 + "</tool_call>",
    '<tool_call>{"name": "a", "arguments": ' + "[" * 200_000 + "}</tool_call>",
    "<tool_call>\n<function=a>\n<parameter=x>\n" + "[" * 200_000 + "\n</parameter>\n</function>\n</tool_call>",
    "<tool_call>" * 90_000,
    "<tool_call><function=a><parameter=" * 30_000,
    '{"name": "a", "parameters": ' + "[" * 200_000,
    "<|python_tag|>" + "{" * 200_000,
    '{"name": "' * 100_000,
    "[TOOL_CALLS]" + "[" * 200_000,
    "[TOOL_CALLS]a[ARGS]" + "{" * 200_000,
    "[TOOL_CALLS]" * 80_000,
    " to=functions.a<|channel|>commentary json<|message|>" + "[" * 200_000 + "<|call|>",
    "<|message|>" * 90_000,
    "to=functions.a" * 70_000,
    "x" * MB,
]


@pytest.mark.parametrize("parser", [get_parser(n, **({"response_template": qwen3_template}
                                                     if n == "response_template" else {}))
                                    for n in TOOL_PARSER_NAMES], ids=lambda p: p.name)  # fmt: skip
def test_hostile_output_finishes_fast_without_raising(parser: ToolCallParser) -> None:
    for text in HOSTILE:
        start = time.perf_counter()
        parsed = parser.parse(text)
        elapsed = time.perf_counter() - start
        assert elapsed < 2.0, (parser.name, text[:40], elapsed)
        assert isinstance(parsed.text, str) and all(isinstance(error, str) for error in parsed.errors)
        if parser.name == "qwen3_coder" and "<parameter=x>" in text:  # an XML value is text, brackets or not
            assert pairs(parsed) == [("a", {"x": "[" * 200_000})]
        else:
            assert parsed.tool_calls == []


def test_many_small_calls_are_linear() -> None:
    text = '<tool_call>{"name": "a", "arguments": {}}</tool_call>' * 20_000
    start = time.perf_counter()
    assert len(HermesToolParser().parse(text).tool_calls) == 20_000
    mistral = MistralToolParser().parse("[TOOL_CALLS]a[ARGS]{}" * 20_000)
    assert len(mistral.tool_calls) == 20_000
    assert time.perf_counter() - start < 5.0


def test_the_generator_reads_calls_in_its_template_s_format(tiny_model_path: Path, scripted: Any) -> None:
    """A Llama 3 model's calls are tool calls, not final answers (they were, when only Hermes was read)."""
    from haystack.dataclasses import ChatMessage
    from haystack.tools import create_tool_from_function

    from haystack_rl.generators import TokenChatGenerator

    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    llama = template("llama3_1")
    generator = TokenChatGenerator(model=str(tiny_model_path), chat_template=llama)
    generator.warm_up()
    assert generator.parser.name == "llama3_json"
    scripted(
        generator,
        [
            '{"name": "add", "parameters": {"a": 2, "b": 3}}<|im_end|>',
            '{"name": "add", "parameters": {"a": 2,}}<|im_end|>',
        ],
    )
    tools = [create_tool_from_function(add)]
    reply = generator.run([ChatMessage.from_user("2+3?")], tools=tools)["replies"][0]
    assert [(c.tool_name, c.arguments) for c in reply.tool_calls] == [("add", {"a": 2, "b": 3})]
    near_miss = generator.run([ChatMessage.from_user("2+3?")], tools=tools)["replies"][0]
    assert not near_miss.tool_calls and near_miss.meta["tool_call_errors"]  # counted, never a silent answer
    named = TokenChatGenerator(model=str(tiny_model_path), tool_parser="hermes")
    named.warm_up()
    assert named.parser.name == "hermes" and TokenChatGenerator.from_dict(named.to_dict()).tool_parser == "hermes"
