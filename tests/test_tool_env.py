"""ToolEnv: tool execution, every kind of bad call as a recorded, recoverable error, state arguments, rewards."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest
from haystack.dataclasses import ChatMessage, ToolCall
from haystack.tools import Tool, Toolset, create_tool_from_function

from haystack_rl import EpisodeState, Rollout, Rubric, ToolEnv, check_environment
from haystack_rl.episode import play_episode
from haystack_rl.generators import FunctionChatGenerator
from haystack_rl.rubrics.tool_rewards import (
    exact_match,
    num_tool_calls,
    num_tool_errors,
    token_f1,
    tool_call_validity,
)
from haystack_rl.trust import trust_modules


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def explode(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(f"boom: {reason}")


def nap(seconds: float) -> str:
    """Sleep for a while."""
    time.sleep(seconds)
    return "rested"


def lookup(key: str, notes: dict[str, str]) -> str:
    """Look a key up in this rollout's notes."""
    return notes.get(key, "not found")


class NotesEnv(ToolEnv):
    """A tool env whose `lookup` tool reads per-rollout notes from state.info."""

    def setup_state(self, state: EpisodeState) -> None:
        state.info["notes"] = {"color": f"blue-{state.seed}"}


def make_env(**kwargs: Any) -> ToolEnv:
    tools = [create_tool_from_function(add), create_tool_from_function(explode), create_tool_from_function(nap)]
    return ToolEnv(tools=tools, dataset=[{"prompt": "What is 2+3?", "answer": "5"}], **kwargs)


def call(name: str, **arguments: Any) -> ChatMessage:
    return ChatMessage.from_assistant(tool_calls=[ToolCall(tool_name=name, arguments=arguments, id=f"id_{name}")])


def started(env: ToolEnv) -> EpisodeState:
    return env.reset(env.examples()[0], seed=0)[1]


def test_a_good_call_returns_the_result_and_the_episode_goes_on() -> None:
    env = make_env()
    state = started(env)
    results, done = env.step(state, call("add", a=2, b=3))
    assert not done and len(results) == 1
    result = results[0].tool_call_result
    assert result.result == "5" and not result.error and result.origin.id == "id_add"
    assert state.info["tool_calls"] == 1 and sum(state.info["tool_errors"].values()) == 0
    results, done = env.step(state, ChatMessage.from_assistant("<answer>5</answer>"))
    assert done and results == [] and state.info["stop_reason"] == "done"


def test_several_calls_in_one_reply_get_one_message_each_in_order() -> None:
    env = make_env()
    state = started(env)
    reply = ChatMessage.from_assistant(
        tool_calls=[
            ToolCall(tool_name="add", arguments={"a": 1, "b": 1}, id="x"),
            ToolCall(tool_name="add", arguments={"a": 2, "b": 2}, id="y"),
        ]
    )
    results, _ = env.step(state, reply)
    assert [(m.tool_call_result.origin.id, m.tool_call_result.result) for m in results] == [("x", "2"), ("y", "4")]


@pytest.mark.parametrize(
    ("reply", "kind", "says"),
    [
        (call("mul", a=1, b=2), "unknown_tool", "Tool 'mul' not found. Available tools: add, explode, nap"),
        (call("add", a=1), "invalid_arguments", "missing 1 required positional argument: 'b'"),
        (call("add", a=1, b=2, c=3), "invalid_arguments", "unexpected keyword argument 'c'"),
        (call("add", a="one", b=2), "invalid_arguments", 'can only concatenate str (not "int") to str'),
        (call("explode", reason="test"), "tool_error", "Failed to invoke Tool `explode` with parameters"),
        (call("nap", seconds=3), "timeout", "did not finish within 0.3 s"),
    ],
    ids=["unknown_tool", "missing_argument", "extra_argument", "wrong_type", "raising_tool", "slow_tool"],
)
def test_bad_calls_are_answered_as_the_agent_answers_them(reply: ChatMessage, kind: str, says: str) -> None:
    env = make_env(tool_timeout_s=0.3)
    state = started(env)
    start = time.perf_counter()
    results, done = env.step(state, reply)
    assert time.perf_counter() - start < 2.0
    assert not done and len(results) == 1
    result = results[0].tool_call_result
    assert result.error and says in result.result
    assert state.info["tool_errors"][kind] == 1 and state.info["tool_calls"] == 1
    assert sum(state.info["tool_errors"].values()) == 1
    # the model can recover: a good call and an answer still work
    results, done = env.step(state, call("add", a=2, b=3))
    assert results[0].tool_call_result.result == "5" and not done
    assert env.step(state, ChatMessage.from_assistant("<answer>5</answer>"))[1] is True


def test_a_malformed_call_is_a_final_answer_counted_as_a_format_error() -> None:
    env = make_env()
    state = started(env)
    reply = ChatMessage.from_assistant('<tool_call>{"name": "add", "arguments": {"a": 1,}}</tool_call>',
                                       meta={"tool_call_errors": ["tool call 0: invalid JSON"]})  # fmt: skip
    results, done = env.step(state, reply)
    assert done and results == [] and state.info.get("stop_reason", "done") == "done"
    assert state.info["tool_calls"] == 1 and state.info["tool_errors"]["malformed"] == 1


def test_an_empty_reply_is_asked_again_and_a_cut_reply_ends_with_length() -> None:
    env = make_env()
    state = started(env)
    assert env.step(state, ChatMessage.from_assistant("")) == ([], False)
    cut = ChatMessage.from_assistant("<answer>", meta={"finish_reason": "length"})
    assert env.step(state, cut) == ([], True) and state.info["stop_reason"] == "length"


def test_every_bad_call_in_a_rollout_is_recorded_and_scored() -> None:
    script = [call("mul"), call("add", a=1), call("explode", reason="x"), call("add", a=2, b=3),
              ChatMessage.from_assistant("<answer>5</answer>")]  # fmt: skip

    def policy(messages: list[ChatMessage], rng: random.Random) -> ChatMessage:
        return script[sum(m.is_from("assistant") for m in messages)]

    rubric = Rubric.from_functions([exact_match, tool_call_validity, num_tool_calls, num_tool_errors],
                                   weights=[1, 0, 0, 0])  # fmt: skip
    env = make_env(rubric=rubric)
    rollout = asyncio.run(play_episode(env, FunctionChatGenerator(policy), env.examples()[0], seed=0))
    rubric.score(rollout)
    assert rollout.error is None and rollout.stop_reason == "done" and rollout.reward == 1.0
    assert rollout.metrics == {"tool_call_validity": 0.25, "num_tool_calls": 4.0, "num_tool_errors": 3.0}
    assert rollout.info["tool_errors"] == {"malformed": 0, "unknown_tool": 1, "invalid_arguments": 1,
                                           "tool_error": 1, "timeout": 0}  # fmt: skip
    assert Rollout.from_json(rollout.to_json()).info == rollout.info


def test_max_turns_ends_an_endless_caller() -> None:
    env = make_env(max_turns=3)
    state = started(env)
    done = [env.step(state, call("add", a=1, b=1))[1] for _ in range(3)]
    assert done == [False, False, True] and state.info["stop_reason"] == "max_turns"


def remember(note: str) -> dict[str, str]:
    """Keep a note for later."""
    return {"saved": note}


def test_agent_state_inputs_and_outputs_work_as_in_the_agent() -> None:
    reader = create_tool_from_function(lookup, inputs_from_state={"notes": "notes"})
    writer = create_tool_from_function(remember, outputs_to_state={"last_note": {"source": "saved"}})
    assert list(reader.parameters["properties"]) == ["key"]
    env = NotesEnv(tools=Toolset([reader, writer]), dataset=[{"prompt": "color?"}])
    state = env.reset(env.examples()[0], seed=7)[1]
    results, _ = env.step(state, call("lookup", key="color"))
    assert results[0].tool_call_result.result == "blue-7"
    results, _ = env.step(state, call("remember", note="buy milk"))
    assert state.info["last_note"] == "buy milk" and not results[0].tool_call_result.error
    # as in Haystack's Agent, an argument the model gives wins over the state's
    results, _ = env.step(state, call("lookup", key="color", notes={"color": "red"}))
    assert results[0].tool_call_result.result == "red"


def test_state_arguments_must_not_be_in_the_schema() -> None:
    tool = Tool(
        name="lookup",
        description="d",
        function=lookup,
        inputs_from_state={"notes": "notes"},
        parameters={"type": "object", "properties": {"key": {"type": "string"}, "notes": {"type": "object"}}},
    )
    with pytest.raises(ValueError, match="takes \\['notes'\\] from state but also lists them in its schema"):
        ToolEnv(tools=[tool], dataset=[{"prompt": "x"}])


def test_a_missing_state_key_is_a_tool_error_the_model_sees() -> None:
    env = ToolEnv(tools=[create_tool_from_function(lookup, inputs_from_state={"notes": "notes"})],
                  dataset=[{"prompt": "x"}])  # fmt: skip
    state = env.reset(env.examples()[0], seed=0)[1]
    results, done = env.step(state, call("lookup", key="a"))
    assert not done and results[0].tool_call_result.error and "notes" in results[0].tool_call_result.result


async def slow_double(x: int) -> int:
    """Double a number, slowly."""
    await asyncio.sleep(0.01)
    return 2 * x


def test_async_tools_and_exit_conditions() -> None:
    async_tool = Tool(name="double", description="Double x.", parameters={"type": "object", "properties": {
        "x": {"type": "integer"}}, "required": ["x"]}, async_function=slow_double)  # fmt: skip
    env = ToolEnv(tools=[async_tool, create_tool_from_function(add)], dataset=[{"prompt": "x"}],
                  exit_conditions=["add"])  # fmt: skip
    state = env.reset(env.examples()[0], seed=0)[1]
    results, done = env.step(state, call("double", x=4))
    assert results[0].tool_call_result.result == "8" and not done
    results, done = env.step(state, call("add", a=1, b=2))
    assert done and results[0].tool_call_result.result == "3"


def test_duplicate_tool_names_are_refused() -> None:
    with pytest.raises(ValueError, match="tool names must be unique"):
        ToolEnv(tools=[create_tool_from_function(add), create_tool_from_function(add)])


def oracle(messages: list[ChatMessage], rng: random.Random) -> str | ChatMessage:
    if messages[-1].is_from("tool"):
        return f"<answer>{messages[-1].tool_call_result.result}</answer>"
    return call("add", a=2, b=3)


def test_round_trip_and_checker_need_no_serialization_code_or_allowlist_call() -> None:
    env = make_env(rubric=Rubric.from_functions([exact_match, token_f1]), baselines={"oracle": oracle},
                   name="adder")  # fmt: skip
    check_environment(env)
    trust_modules([__name__])  # loading from YAML trusts only what the user names (the CLI's --allow-module)
    restored = ToolEnv.from_dict(env.to_dict())
    assert [t.name for t in restored.tools] == ["add", "explode", "nap"] and restored.tool_timeout_s == 10.0
    assert restored.name == "adder" and restored.baselines()["oracle"] is oracle


def test_function_generator_keeps_tool_calls_and_plain_text() -> None:
    generator = FunctionChatGenerator(lambda m, r: call("add", a=1, b=2), name="caller")
    reply = generator.run([ChatMessage.from_user("hi")], tools=[create_tool_from_function(add)])["replies"][0]
    assert reply.tool_calls[0].arguments == {"a": 1, "b": 2} and reply.meta["model"] == "baseline:caller"
    with pytest.raises(TypeError, match="returned a user message"):
        FunctionChatGenerator(lambda m, r: ChatMessage.from_user("x")).run([ChatMessage.from_user("hi")])
    assert FunctionChatGenerator(lambda m, r: "ok").run([ChatMessage.from_user("hi")])["replies"][0].text == "ok"


def test_answer_rewards() -> None:
    def rollout(text: str, answer: Any) -> Rollout:
        return Rollout(example_id="0", rollout_index=0, seed=0, example={"answer": answer},
                       messages=[ChatMessage.from_assistant(text)])  # fmt: skip

    assert exact_match(rollout("<answer>The Amber Room.</answer>", "the Amber Room")) == 1.0
    assert exact_match(rollout("<answer>Amber</answer>", ["the Amber Room", "Amber"])) == 1.0
    assert exact_match(rollout("Amber Room", "the Amber Room")) == 0.0
    assert token_f1(rollout("<answer>amber hall</answer>", "the Amber Room")) == pytest.approx(0.5)
    assert tool_call_validity(rollout("<answer>x</answer>", "x")) == 1.0
