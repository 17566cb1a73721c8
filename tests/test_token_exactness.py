"""Token-in, token-out: each turn's prompt extends the previous prompt + completion, whatever the template does."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from haystack.dataclasses import ChatMessage
from haystack.tools import Tool

from haystack_rl.environments.multi_turn import MultiTurnEnv
from haystack_rl.episode import play_episode
from haystack_rl.generators import ChatTemplateError, TokenChatGenerator
from haystack_rl.rollout import Rollout, Turn


def _play(generator: TokenChatGenerator, turns: int = 4, tools: Any = None) -> tuple[list[ChatMessage], Rollout]:
    """A conversation where an 'environment' answers every reply with a user message."""
    messages = [ChatMessage.from_system("Play along."), ChatMessage.from_user("Turn 0: go")]
    record: list[Turn] = []
    for turn in range(turns):
        reply = generator.run(messages, generation_kwargs={"seed": turn}, tools=tools)["replies"][0]
        record.append(Turn(reply.meta["prompt_ids"], reply.meta["completion_ids"], reply.meta["logprobs"]))
        messages += [reply, ChatMessage.from_user(f"Env answer {turn}: ok, continue.")]
    return messages, Rollout(example_id="0", rollout_index=0, seed=0, messages=messages, turns=record)


def _check_rollout(generator: TokenChatGenerator, rollout: Rollout) -> list[str]:
    """Prefix property + masks; returns the decoded environment parts (the tokens between completions)."""
    ids, mask, logprobs = rollout.completion_tokens()  # raises TokenMismatchError if the prefix property fails
    last = rollout.turns[-1]
    assert rollout.prompt_ids + ids == last.prompt_ids + last.completion_ids
    assert sum(mask) == rollout.num_completion_tokens and len(mask) == len(ids) == len(logprobs)
    env_parts: list[str] = []
    context = list(rollout.turns[0].prompt_ids)
    for turn in rollout.turns:
        assert turn.prompt_ids[: len(context)] == context
        env_parts.append(generator.tokenizer.decode(turn.prompt_ids[len(context) :]))
        context = turn.prompt_ids + turn.completion_ids
    position = 0
    for turn, env_part in zip(rollout.turns, env_parts):  # masks: 0 on env tokens, 1 on completion tokens
        env_len = len(generator.tokenizer(env_part, add_special_tokens=False)["input_ids"]) if env_part else 0
        assert mask[position : position + env_len] == [0] * env_len
        position += env_len
        assert mask[position : position + len(turn.completion_ids)] == [1] * len(turn.completion_ids)
        assert logprobs[position : position + len(turn.completion_ids)] == pytest.approx(turn.logprobs)
        position += len(turn.completion_ids)
    return env_parts


@pytest.mark.parametrize("history", ["keep", "strict"])
def test_multi_turn_prefix_property_with_the_tiny_template(make_generator: Any, history: str) -> None:
    generator = make_generator(history=history)
    messages, rollout = _play(generator)
    env_parts = _check_rollout(generator, rollout)
    assert env_parts[0] == ""
    for turn, part in enumerate(env_parts[1:]):
        assert part.endswith(f"<|im_start|>user\nEnv answer {turn}: ok, continue.<|im_end|>\n<|im_start|>assistant\n")
    # With a prefix-preserving template the exact ids also equal a fresh tokenization of the rendered text.
    final = rollout.turns[-1]
    assert generator.render(messages).startswith(generator.tokenizer.decode(final.prompt_ids + final.completion_ids))


def test_multi_turn_prefix_property_with_a_think_stripping_template(
    make_generator: Any, qwen3_think_template: Path
) -> None:
    generator = make_generator(chat_template=str(qwen3_think_template))
    messages, rollout = _play(generator)
    env_parts = _check_rollout(generator, rollout)
    for turn, part in enumerate(env_parts[1:]):
        assert part.endswith(f"<|im_start|>user\nEnv answer {turn}: ok, continue.<|im_end|>\n"
                             "<|im_start|>assistant\n<think>\n")  # fmt: skip
    # The template does rewrite history: re-rendering is NOT what the model saw (so re-tokenizing would drift).
    first = rollout.turns[0]
    assert not generator.render(messages[:4]).startswith(
        generator.tokenizer.decode(first.prompt_ids + first.completion_ids)
    )


def test_strict_history_raises_with_a_think_stripping_template(make_generator: Any, qwen3_think_template: Path) -> None:
    generator = make_generator(chat_template=str(qwen3_think_template), history="strict")
    messages = [ChatMessage.from_user("Turn 0: go")]
    reply = generator.run(messages, generation_kwargs={"seed": 0})["replies"][0]
    with pytest.raises(ChatTemplateError, match="qwen3_think.jinja.*rewrites the conversation history") as error:
        generator.run(messages + [reply, ChatMessage.from_user("next")])
    assert "history='keep'" in str(error.value)


def test_reasoning_is_kept_as_generated(make_generator: Any, scripted: Any, qwen3_think_template: Path) -> None:
    generator = make_generator(chat_template=str(qwen3_think_template))
    scripted(generator, ["2+2 is 4.\n</think>\n\nThe answer is 4.<|im_end|>", "Sure.<|im_end|>"])
    messages = [ChatMessage.from_user("2+2?")]
    first = generator.run(messages)["replies"][0]
    assert first.text == "2+2 is 4.\n</think>\n\nThe answer is 4."
    messages += [first, ChatMessage.from_user("Thanks!")]
    assert "2+2 is 4." not in generator.render(messages)  # the template strips the earlier reasoning
    second = generator.run(messages)["replies"][0]
    seen = first.meta["prompt_ids"] + first.meta["completion_ids"]
    assert second.meta["prompt_ids"][: len(seen)] == seen
    suffix = generator.tokenizer.decode(second.meta["prompt_ids"][len(seen) :])
    assert suffix == "\n<|im_start|>user\nThanks!<|im_end|>\n<|im_start|>assistant\n<think>\n"


ADD = Tool(name="add", description="Add two numbers.", function=lambda a, b: a + b,
           parameters={"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}})  # fmt: skip


def _tool_round(generator: TokenChatGenerator, completion: str, scripted: Any) -> tuple[ChatMessage, list[int]]:
    """One tool-calling reply, its tool result, and the next prompt."""
    scripted(generator, [completion, "Done.<|im_end|>"])
    messages = [ChatMessage.from_system("Use tools."), ChatMessage.from_user("What is 1+2?")]
    reply = generator.run(messages, tools=[ADD])["replies"][0]
    assert reply.tool_calls and reply.tool_calls[0].arguments == {"a": 1, "b": 2}
    results = [ChatMessage.from_tool("3", origin=call) for call in reply.tool_calls]
    after = generator.run(messages + [reply, *results], tools=[ADD])["replies"][0]
    seen = reply.meta["prompt_ids"] + reply.meta["completion_ids"]
    assert after.meta["prompt_ids"][: len(seen)] == seen
    return reply, after.meta["prompt_ids"][len(seen) :]


def test_tool_turn_in_the_template_format_is_exact_even_when_strict(make_generator: Any, scripted: Any) -> None:
    generator = make_generator(history="strict")
    completion = '<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}</tool_call><|im_end|>'
    _, suffix = _tool_round(generator, completion, scripted)
    assert generator.tokenizer.decode(suffix) == "\n<|im_start|>tool\n3<|im_end|>\n<|im_start|>assistant\n"


def test_tool_turn_in_another_format_keeps_what_the_model_wrote(make_generator: Any, scripted: Any) -> None:
    completion = 'Adding.\n<tool_call>{"name":"add","arguments":{"a":1,"b":2}}</tool_call>'  # compact JSON, no EOS
    strict = make_generator(history="strict")
    with pytest.raises(ChatTemplateError):
        _tool_round(strict, completion, scripted)
    keep = make_generator()
    reply, suffix = _tool_round(keep, completion, scripted)
    assert keep.tokenizer.decode(reply.meta["completion_ids"]) == completion
    assert keep.tokenizer.decode(suffix) == "<|im_end|>\n<|im_start|>tool\n3<|im_end|>\n<|im_start|>assistant\n"


def test_tool_turn_with_a_think_stripping_template(
    make_generator: Any, scripted: Any, qwen3_think_template: Path
) -> None:
    generator = make_generator(chat_template=str(qwen3_think_template))
    completion = (
        'I need add.</think>\n\n<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call><|im_end|>'
    )
    _, suffix = _tool_round(generator, completion, scripted)
    assert generator.tokenizer.decode(suffix) == (
        "\n<|im_start|>user\n<tool_response>\n3\n</tool_response><|im_end|>\n<|im_start|>assistant\n<think>\n"
    )


class _Chatter(MultiTurnEnv):
    name = "chatter"

    def env_response(self, state: Any, reply: ChatMessage) -> tuple[list[ChatMessage], bool]:
        return [ChatMessage.from_user(f"Reply {state.turn} received; again.")], False


@pytest.mark.parametrize("template", [None, "qwen3_think"])
def test_play_episode_records_exact_turns(
    make_generator: Any, qwen3_think_template: Path, template: str | None
) -> None:
    generator = make_generator(chat_template=str(qwen3_think_template) if template else None, max_new_tokens=8)
    env = _Chatter(dataset=[{"prompt": "Chat with me."}], max_turns=3)
    rollout = asyncio.run(play_episode(env, generator, env.examples()[0], seed=1))
    assert rollout.error is None and rollout.stop_reason == "max_turns" and len(rollout.turns) == 3
    _check_rollout(generator, rollout)


def test_history_without_token_data_is_rendered_fresh(make_generator: Any) -> None:
    generator = make_generator()
    messages = [ChatMessage.from_user("hi"), ChatMessage.from_assistant("hello (from another model)"),
                ChatMessage.from_user("and now?")]  # fmt: skip
    reply = generator.run(messages)["replies"][0]
    assert generator.tokenizer.decode(reply.meta["prompt_ids"]) == generator.render(messages)
