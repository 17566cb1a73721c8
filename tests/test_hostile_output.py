"""Hostile model output: every parser gives a defined result on arbitrary text (hypothesis), never a crash or a hang."""

import json
import time

import pytest
from haystack.dataclasses import ChatMessage, ToolCall
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from haystack_rl import TagParser, load_environment
from haystack_rl.chat.tool_parsers import HERMES_CLOSE as TOOL_CALL_CLOSE
from haystack_rl.chat.tool_parsers import HERMES_OPEN as TOOL_CALL_OPEN
from haystack_rl.chat.tool_parsers import HermesToolParser
from haystack_rl.environments.tool_execution import ERROR_KINDS
from haystack_rl_envs.calculator import CalculatorError, calculator, evaluate
from haystack_rl_envs.tic_tac_toe import TicTacToeEnv, game

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: Fragments a model could emit around tags: the tags themselves, halves of them, unicode, controls.
FRAGMENTS = ["<a>", "</a>", "<a", "a>", "</", "<think>", "</think>", "<", ">", "/", "a", " ", "\n", "é", "🙂",
             "\x00", "\u202e", "١", "5", "<tool_call>", "</tool_call>", "{", "}", '"', "[", "]", ":", ","]  # fmt: skip
hostile_text = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)), max_size=60).map("".join),
)
#: Huge outputs of the shapes that make naive parsers quadratic or recursive.
HUGE = [
    "<a>" * 300_000,
    "</a>" * 300_000,
    "<a>x" * 200_000 + "</a>",
    "</a>" + "<a>" * 300_000,
    "<" * 1_000_000,
    "<a><" * 250_000,
    "🙂" * 500_000,
]


# --- TagParser ---------------------------------------------------------------------------------------------
def reference_parse(parser, text):
    """The documented rule, written the obvious (slow) way: last opening tag that a closing tag follows."""
    if not text:
        return None
    for start in range(len(text) - 1, -1, -1):
        if text.startswith(parser.open, start):
            end = text.find(parser.close, start + len(parser.open))
            if end != -1:
                return text[start + len(parser.open) : end]
    return None


@SETTINGS
@given(hostile_text)
def test_tag_parser_follows_its_rule_on_any_text(text):
    parser = TagParser("a")
    parsed = parser.parse(text)
    assert parsed == reference_parse(parser, text)
    if parsed is not None:
        assert parser.open + parsed + parser.close in text and parser.close not in parsed
    well_formed = parser.is_well_formed(text)
    assert isinstance(well_formed, bool)
    if well_formed:
        assert parsed is not None and parser.open not in parsed


@SETTINGS
@given(st.text(max_size=100).filter(lambda s: "<a>" not in s and "</a>" not in s), hostile_text)
def test_tag_parser_finds_the_answer_after_any_preamble(answer, preamble):
    parser = TagParser("a")
    assert parser.parse(f"{preamble}<a>{answer}</a>") == answer
    assert parser.is_well_formed(f"<a>{answer}</a>") is True


@pytest.mark.parametrize("text", HUGE, ids=range(len(HUGE)))
def test_tag_parser_is_linear_on_huge_output(text):
    parser = TagParser("a")
    start = time.perf_counter()
    parser.parse(text)
    parser.is_well_formed(text)
    assert time.perf_counter() - start < 1.0  # 300,000 unclosed tags took minutes with a quadratic scan


# --- tic-tac-toe moves -------------------------------------------------------------------------------------
boards = st.text(alphabet="XO.", min_size=9, max_size=9)
move_text = st.one_of(
    hostile_text,
    st.builds(lambda s: f"<move>{s}</move>", st.one_of(st.integers().map(str), st.text(max_size=12))),
    st.builds(lambda n: f"<move>{'9' * n}</move>", st.integers(min_value=1, max_value=6000)),
)


@SETTINGS
@given(boards, move_text)
@example(game.EMPTY_BOARD, "<move>" + "5" * 5000 + "</move>")  # int() refuses 4,300+ digits
@example(game.EMPTY_BOARD, "<move>\u0665</move>")  # an Arabic-Indic five is a digit too
def test_tic_tac_toe_move_reader_always_decides(board, text):
    cell, problem = TicTacToeEnv(num_eval_examples=1)._read_move(board, text)
    if problem is None:
        assert isinstance(cell, int) and 1 <= cell <= 9 and board[cell - 1] == game.EMPTY
    else:
        assert cell is None and isinstance(problem, str) and problem


@pytest.fixture(scope="module")
def ttt():
    return TicTacToeEnv(num_eval_examples=2, max_turns=3)


@SETTINGS
@given(st.lists(move_text, min_size=1, max_size=3), st.integers(0, 1))
def test_tic_tac_toe_game_survives_any_replies(ttt, replies, which):
    _, state = ttt.reset(ttt.examples("eval")[which], seed=0)
    for text in replies:
        messages, done = ttt.step(state, ChatMessage.from_assistant(text))
        assert messages and all(m.is_from("user") for m in messages)
        if done:
            break
    assert len(state.info["board"]) == 9 and state.info["invalid_moves"] <= len(replies)


@SETTINGS
@given(hostile_text)
def test_board_parser_gives_a_board_or_none(text):
    board = game.parse_board(text)
    assert board is None or (len(board) == 9 and set(board) <= {"X", "O", game.EMPTY})


# --- tool calls --------------------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)
calls = st.tuples(st.text(min_size=1, max_size=12), st.dictionaries(st.text(max_size=8), json_values, max_size=4))
junk = st.text(max_size=30).filter(lambda s: "<tool_call>" not in s)


@SETTINGS
@given(hostile_text)
def test_tool_call_parser_never_raises(text):
    parsed = HermesToolParser().parse(text)
    assert isinstance(parsed.text, str) and all(isinstance(e, str) for e in parsed.errors)
    for call in parsed.tool_calls:
        assert isinstance(call.tool_name, str) and call.tool_name and isinstance(call.arguments, dict)
    assert len(parsed.tool_calls) + len(parsed.errors) <= text.count(TOOL_CALL_OPEN) + 1


@SETTINGS
@given(st.lists(st.tuples(junk, calls), max_size=4), junk)
def test_tool_call_parser_reads_back_every_well_formed_call(pieces, tail):
    text = "".join(f"{j}{TOOL_CALL_OPEN}{json.dumps({'name': n, 'arguments': a})}{TOOL_CALL_CLOSE}"
                   for j, (n, a) in pieces) + tail  # fmt: skip
    parsed = HermesToolParser().parse(text)
    assert parsed.errors == []
    assert [(c.tool_name, c.arguments) for c in parsed.tool_calls] == [(n, a) for _, (n, a) in pieces]


@pytest.mark.parametrize(
    "body",
    ["[" * 100_000, '{"name": "x", "arguments": ' + "[" * 100_000,
     '{"name": "x", "arguments": "' + "[" * 100_000 + '"}', '{"name": "x", "arguments": {"n": ' + "9" * 10_000 + "}}",
     "x" * 1_000_000],
    ids=["deep", "deep_arguments", "deep_arguments_string", "huge_int", "huge"],
)  # fmt: skip
def test_tool_call_parser_reports_pathological_json(body):
    start = time.perf_counter()
    parsed = HermesToolParser().parse(f"{TOOL_CALL_OPEN}{body}{TOOL_CALL_CLOSE}")
    assert parsed.tool_calls == [] and len(parsed.errors) == 1
    assert time.perf_counter() - start < 2.0


@pytest.fixture(scope="module")
def calc():
    return load_environment("calculator", num_eval_examples=1)


def reply_from(text):
    """What TokenChatGenerator makes of a completion when tools are on."""
    parsed = HermesToolParser().parse(text)
    meta = {"tool_call_errors": parsed.errors} if parsed.errors else {}
    if parsed.tool_calls:
        return ChatMessage.from_assistant(parsed.text or None, tool_calls=parsed.tool_calls, meta=meta)
    return ChatMessage.from_assistant(text, meta=meta)


tool_replies = st.one_of(
    hostile_text.map(reply_from),
    st.lists(calls, min_size=1, max_size=3).map(
        lambda cs: ChatMessage.from_assistant(tool_calls=[ToolCall(tool_name=n, arguments=a) for n, a in cs])
    ),
    st.lists(st.one_of(json_values, hostile_text), min_size=1, max_size=3).map(
        lambda xs: ChatMessage.from_assistant(
            tool_calls=[ToolCall(tool_name="calculator", arguments={"expression": x}) for x in xs]
        )
    ),
)


@SETTINGS
@given(tool_replies)
def test_tool_env_turns_any_reply_into_tool_messages(calc, reply):
    _, state = calc.reset(calc.examples("eval")[0], seed=0)
    messages, done = calc.step(state, reply)
    malformed = len(reply.meta.get("tool_call_errors", []))
    errors = state.info["tool_errors"]
    assert set(errors) == set(ERROR_KINDS) and errors["malformed"] == malformed
    assert state.info["tool_calls"] == len(reply.tool_calls) + malformed
    if not reply.tool_calls:  # as in Haystack's Agent: text is the final answer, an empty reply is asked again
        assert messages == [] and done is bool(reply.text)
        return
    assert not done and len(messages) == len(reply.tool_calls) and all(m.is_from("tool") for m in messages)
    assert sum(errors.values()) - malformed == sum(bool(m.tool_call_result.error) for m in messages)
    assert errors["timeout"] == 0


# --- calculator --------------------------------------------------------------------------------------------
arithmetic_text = st.text(alphabet="0123456789.+-*/() e_x", max_size=200)
huge_products = st.lists(st.sampled_from(["1e308", "9" * 99]), min_size=1).map("*".join)


@SETTINGS
@given(st.one_of(hostile_text, arithmetic_text, huge_products))
def test_calculator_returns_a_number_or_a_calculator_error(expression):
    try:
        value = evaluate(expression)
    except CalculatorError:
        return
    text = calculator(expression)  # formatting never fails either
    assert isinstance(text, str) and text
    assert float(text) == pytest.approx(float(value), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("expression", ["*".join(["1e308"] * 33), "1e308*1e308*1e308/3", "1" + "\x00", "(" * 199])
def test_calculator_refuses_what_it_cannot_print(expression):
    with pytest.raises(CalculatorError):
        calculator(expression)
