"""TokenChatGenerator on the in-process engine: token data, sampling, seeds, batching, tools, streaming, serializing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import torch
from haystack.components.generators.utils import print_streaming_chunk
from haystack.dataclasses import ChatMessage, StreamingChunk, ToolCall
from haystack.tools import Tool

from haystack_rl.chat.tool_parsers import HermesToolParser
from haystack_rl.generators import TokenChatGenerator

USER = [ChatMessage.from_system("Be brief."), ChatMessage.from_user("Say something.")]


def _check_reply(generator: TokenChatGenerator, messages: list[ChatMessage], reply: ChatMessage) -> None:
    meta = reply.meta
    prompt, completion, logprobs = meta["prompt_ids"], meta["completion_ids"], meta["logprobs"]
    assert generator.tokenizer.decode(prompt) == generator.render(messages)
    assert 1 <= len(completion) == len(logprobs)
    assert all(lp <= 1e-6 for lp in logprobs)
    stopped = completion[-1] == generator.tokenizer.eos_token_id
    assert meta["finish_reason"] == ("stop" if stopped else "length")
    body = completion[:-1] if stopped else completion
    assert generator.tokenizer.decode(body) == reply.text
    assert meta["usage"] == {"prompt_tokens": len(prompt), "completion_tokens": len(completion),
                             "total_tokens": len(prompt) + len(completion)}  # fmt: skip


def test_reply_ids_decode_to_text(make_generator: Any) -> None:
    generator = make_generator(max_new_tokens=20)
    reply = generator.run(USER, generation_kwargs={"seed": 3})["replies"][0]
    _check_reply(generator, USER, reply)
    assert reply.meta["model"] == generator.model
    assert len(reply.meta["completion_ids"]) <= 20
    assert generator.backend.model.device.type == ("cuda" if torch.cuda.is_available() else "cpu")  # device="auto"


def test_eos_is_generated_and_cut(make_generator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    generator = make_generator(max_new_tokens=50)
    eos = generator.tokenizer.eos_token_id
    original = generator.backend.model.forward

    def favour_eos_after_three(*args: Any, **kwargs: Any) -> Any:  # the 4th sampled token is always EOS
        output = original(*args, **kwargs)
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        if cache is not None and cache.get_seq_length() >= prompt_len + 3:
            output.logits[:, -1, eos] += 1000.0
        return output

    prompt_len = len(generator.build_prompt(USER))
    monkeypatch.setattr(generator.backend.model, "forward", favour_eos_after_three)
    reply = generator.run(USER, generation_kwargs={"seed": 0})["replies"][0]
    assert reply.meta["finish_reason"] == "stop"
    assert len(reply.meta["completion_ids"]) == 4 and reply.meta["completion_ids"][-1] == eos
    assert "<|im_end|>" not in (reply.text or "")
    _check_reply(generator, USER, reply)


def test_seed_reproducibility(make_generator: Any) -> None:
    generator = make_generator(max_new_tokens=24)

    def ids(**kwargs: Any) -> list[int]:
        return generator.run(USER, generation_kwargs=kwargs)["replies"][0].meta["completion_ids"]

    assert ids(seed=11) == ids(seed=11)
    assert ids(seed=11) != ids(seed=12)
    assert ids(temperature=0) == ids(temperature=0)  # greedy needs no seed


@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.7, 1.0), (1.3, 0.5), (0.0, 1.0)])
def test_logprobs_match_the_sampling_distribution(make_generator: Any, temperature: float, top_p: float) -> None:
    generator = make_generator(max_new_tokens=16)
    reply = generator.run(USER, {"seed": 5, "temperature": temperature, "top_p": top_p})["replies"][0]
    prompt, completion = reply.meta["prompt_ids"], reply.meta["completion_ids"]
    with torch.no_grad():
        logits = generator.backend.model(input_ids=torch.tensor([prompt + completion])).logits[0].float()
    rows = logits[len(prompt) - 1 : len(prompt) - 1 + len(completion)]
    full = torch.log_softmax(rows / (temperature or 1.0), dim=-1)
    expected = full[torch.arange(len(completion)), torch.tensor(completion)]
    got = torch.tensor(reply.meta["logprobs"])
    if top_p < 1.0:
        assert torch.all(got >= expected - 1e-4) and torch.any(got > expected + 1e-3)  # renormalized nucleus
        assert torch.all(got > float("-inf"))
    else:
        assert torch.allclose(got, expected, atol=1e-4)
    if temperature == 0:
        assert completion == rows.argmax(-1).tolist()


def test_batched_run_async_matches_single_runs(make_generator: Any) -> None:
    generator = make_generator(max_new_tokens=16)
    calls: list[int] = []
    original = generator.backend.generate

    def counting(requests: list[Any]) -> list[Any]:
        calls.append(len(requests))
        return original(requests)

    generator.backend.generate = counting  # type: ignore[method-assign]
    conversations = [[ChatMessage.from_user("x" * (i * 7 + 1))] for i in range(8)]  # different lengths: padding

    async def main() -> list[dict[str, Any]]:
        return await asyncio.gather(*(
            generator.run_async(conversation, generation_kwargs={"seed": i, "max_new_tokens": 4 + i})
            for i, conversation in enumerate(conversations)
        ))  # fmt: skip

    outputs = asyncio.run(main())
    assert calls == [8]
    generator.backend.generate = original  # type: ignore[method-assign]
    for i, (conversation, output) in enumerate(zip(conversations, outputs)):
        reply = output["replies"][0]
        _check_reply(generator, conversation, reply)
        assert len(reply.meta["completion_ids"]) <= 4 + i
        single = generator.run(conversation, generation_kwargs={"seed": i, "max_new_tokens": 4 + i})["replies"][0]
        assert single.meta["completion_ids"] == reply.meta["completion_ids"]
        assert single.meta["logprobs"] == pytest.approx(reply.meta["logprobs"], abs=1e-4)


def test_shared_prompt_prefix_runs_once_and_finished_rows_leave_the_batch(make_generator: Any) -> None:
    generator = make_generator(max_new_tokens=12)
    system = ChatMessage.from_system("You are a careful assistant. " * 4)  # a long prefix common to every prompt
    conversations = [[system, ChatMessage.from_user("q" * (i + 1))] for i in range(6)]
    budgets = [2, 12, 3, 12, 1, 7]  # rows finish at different steps
    prompts = [generator.build_prompt(conversation) for conversation in conversations]
    prefix = next(i for i in range(len(prompts[0])) if len({tuple(p[: i + 1]) for p in prompts}) > 1)
    batch_sizes: list[tuple[int, int]] = []
    original = generator.backend.model.forward

    def recording(*args: Any, **kwargs: Any) -> Any:
        batch_sizes.append(tuple(kwargs["input_ids"].shape))
        return original(*args, **kwargs)

    generator.backend.model.forward = recording

    async def main() -> list[dict[str, Any]]:
        return await asyncio.gather(*(
            generator.run_async(conversation, generation_kwargs={"seed": i, "max_new_tokens": budget})
            for i, (conversation, budget) in enumerate(zip(conversations, budgets))
        ))  # fmt: skip

    outputs = asyncio.run(main())
    generator.backend.model.forward = original
    shared_rows, shared_length = batch_sizes[0]
    assert prefix > 100 and (shared_rows, shared_length) == (1, prefix)  # the common prefix ran once, for one row
    assert batch_sizes[1] == (6, max(len(p) for p in prompts) - prefix)  # then each row's own tokens only
    assert [rows for rows, _ in batch_sizes[2:]] == sorted((rows for rows, _ in batch_sizes[2:]), reverse=True)
    assert batch_sizes[-1][0] < 6  # rows that were done left the batch
    for i, (conversation, output) in enumerate(zip(conversations, outputs)):
        reply = output["replies"][0]
        _check_reply(generator, conversation, reply)
        single = generator.run(conversation, generation_kwargs={"seed": i, "max_new_tokens": budgets[i]})["replies"][0]
        assert single.meta["completion_ids"] == reply.meta["completion_ids"]
        assert single.meta["logprobs"] == pytest.approx(reply.meta["logprobs"], abs=1e-4)


def test_max_batch_size_splits_batches(make_generator: Any) -> None:
    generator = make_generator(max_new_tokens=3, max_batch_size=3)
    calls: list[int] = []
    original = generator.backend.generate
    generator.backend.generate = lambda requests: calls.append(len(requests)) or original(requests)  # type: ignore

    async def main() -> list[dict[str, Any]]:
        return await asyncio.gather(*(generator.run_async(USER, {"seed": i}) for i in range(8)))

    outputs = asyncio.run(main())
    assert sorted(calls, reverse=True) == [3, 3, 2] and len(outputs) == 8
    asyncio.run(main())  # a second event loop gets its own batcher


def test_generation_errors_reach_every_caller(make_generator: Any) -> None:
    generator = make_generator()

    def broken(requests: list[Any]) -> list[Any]:
        raise RuntimeError("out of memory")

    generator.backend.generate = broken  # type: ignore[method-assign]

    async def main() -> list[Any]:
        return await asyncio.gather(*(generator.run_async(USER) for _ in range(3)), return_exceptions=True)

    assert [str(e) for e in asyncio.run(main())] == ["out of memory"] * 3


def test_bad_arguments(make_generator: Any) -> None:
    generator = make_generator()
    with pytest.raises(ValueError, match="unsupported generation_kwargs"):
        generator.run(USER, generation_kwargs={"temprature": 0.5})
    with pytest.raises(ValueError, match="history"):
        TokenChatGenerator(history="rewrite")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="warm_up"):
        TokenChatGenerator().build_prompt(USER)
    with pytest.raises(RuntimeError, match="gpu"):
        make_generator(device="gpu")


def test_serialization_round_trip(qwen3_think_template: Any) -> None:
    generator = TokenChatGenerator(
        model="tiny",
        generation_kwargs={"max_tokens": 8, "temperature": 0.5, "top_p": 0.9},
        streaming_callback=print_streaming_chunk,
        history="strict",
        max_batch_size=4,
        chat_template=str(qwen3_think_template),
    )
    data = generator.to_dict()
    assert data["type"] == "haystack_rl.generators.token.TokenChatGenerator"
    assert data["init_parameters"]["generation_kwargs"] == {"max_new_tokens": 8, "temperature": 0.5, "top_p": 0.9}
    assert data["init_parameters"]["streaming_callback"].endswith(".print_streaming_chunk")
    restored = TokenChatGenerator.from_dict(data)
    assert restored.to_dict() == data and restored.streaming_callback is print_streaming_chunk
    assert TokenChatGenerator.from_dict(TokenChatGenerator().to_dict()).model == "tiny"
    remote = TokenChatGenerator(model="served", base_url="http://127.0.0.1:1/v1", tokenizer="tiny", timeout=5.0)
    assert TokenChatGenerator.from_dict(remote.to_dict()).to_dict() == remote.to_dict()


def test_run_generation_kwargs_override_the_init_ones_key_by_key(make_generator: Any) -> None:
    generator = make_generator(generation_kwargs={"max_new_tokens": 3, "temperature": 0.0})
    greedy = generator.run(USER)["replies"][0].meta
    assert len(greedy["completion_ids"]) <= 3
    longer = generator.run(USER, generation_kwargs={"max_tokens": 9})["replies"][0].meta  # temperature stays 0
    assert longer["completion_ids"][: len(greedy["completion_ids"])] == greedy["completion_ids"]
    assert len(longer["completion_ids"]) > 3 or longer["finish_reason"] == "stop"
    with pytest.raises(ValueError, match="unsupported generation_kwargs"):
        TokenChatGenerator(generation_kwargs={"top_k": 5})


def test_streaming_callback_gets_the_reply(make_generator: Any, scripted: Any) -> None:
    chunks: list[StreamingChunk] = []
    generator = make_generator(streaming_callback=chunks.append)
    scripted(generator, ["Hello there<|im_end|>", 'Sure.<tool_call>{"name": "add", "arguments": {"a": 1}}</tool_call>'])
    reply = generator.run(USER)["replies"][0]
    assert [c.content for c in chunks] == ["Hello there"] and chunks[0].finish_reason == "stop"
    assert chunks[0].component_info is not None and chunks[0].component_info.type.endswith("TokenChatGenerator")
    chunks.clear()
    seen: list[StreamingChunk] = []

    async def on_chunk(chunk: StreamingChunk) -> None:
        seen.append(chunk)

    reply = asyncio.run(generator.run_async(USER, tools=[ADD], streaming_callback=on_chunk))["replies"][0]
    assert not chunks and [c.content for c in seen] == ["Sure.", ""]  # the run's callback wins
    assert seen[1].tool_calls[0].tool_name == "add" and json.loads(seen[1].tool_calls[0].arguments) == {"a": 1}
    assert seen[-1].finish_reason == "tool_calls" and reply.tool_calls[0].arguments == {"a": 1}


ADD = Tool(name="add", description="Add two numbers.", function=lambda a, b: a + b,
           parameters={"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}})  # fmt: skip


def test_tools_and_tool_messages_render_through_the_template(make_generator: Any) -> None:
    generator = make_generator()
    call = ToolCall(tool_name="add", arguments={"a": 1, "b": 2}, id="c0")
    messages = [ChatMessage.from_user("1+2?"), ChatMessage.from_assistant(tool_calls=[call]),
                ChatMessage.from_tool("3", origin=call)]  # fmt: skip
    text = generator.render(messages, tools=[ADD])
    assert '"name": "add", "description": "Add two numbers."' in text
    assert (
        '<|im_start|>assistant\n<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}</tool_call><|im_end|>' in text
    )
    assert text.endswith("<|im_start|>tool\n3<|im_end|>\n<|im_start|>assistant\n")
    reply = generator.run(messages, tools=[ADD])["replies"][0]
    assert generator.tokenizer.decode(reply.meta["prompt_ids"]) == text


def test_tool_calls_are_parsed_into_the_reply(make_generator: Any, scripted: Any) -> None:
    generator = make_generator()
    completion = (
        'Let me add.<tool_call>{"name": "add", "arguments": {"a": 1, "b": {"nested": [1, 2]}}}</tool_call>'
        '<tool_call>{"name": "add", "arguments": "{\\"a\\": 5, \\"b\\": 6}"}</tool_call><|im_end|>'
    )
    scripted(generator, [completion, completion, "<tool_call>{oops}</tool_call><|im_end|>"])
    reply = generator.run([ChatMessage.from_user("add")], tools=[ADD])["replies"][0]
    assert reply.text == "Let me add."
    assert [(c.tool_name, c.arguments) for c in reply.tool_calls] == [("add", {"a": 1, "b": {"nested": [1, 2]}}),
                                                                     ("add", {"a": 5, "b": 6})]  # fmt: skip
    assert len({c.id for c in reply.tool_calls}) == 2 and "tool_call_errors" not in reply.meta
    no_tools = generator.run([ChatMessage.from_user("add")])["replies"][0]  # without tools: plain text
    assert not no_tools.tool_calls and no_tools.text == completion.removesuffix("<|im_end|>")
    bad = generator.run([ChatMessage.from_user("add")], tools=[ADD])["replies"][0]
    assert not bad.tool_calls and bad.text == "<tool_call>{oops}</tool_call>"
    assert "invalid JSON" in bad.meta["tool_call_errors"][0]


# --- tool-call parsing (HermesToolParser) -------------------------------------------


def test_parse_several_calls_with_nested_arguments() -> None:
    args = {"query": {"filters": [{"field": "year", "op": ">", "value": 2020}], "text": 'a </b> "c"'}, "k": 3}
    text = ("Thinking...\n<tool_call>\n" + json.dumps({"name": "search", "arguments": args}) + "\n</tool_call>\n"
            '<tool_call>{"name": "clock", "arguments": {}}</tool_call>'
            '<tool_call>{"name": "noargs"}</tool_call>')  # fmt: skip
    parsed = HermesToolParser().parse(text, id_prefix="t")
    assert [c.tool_name for c in parsed.tool_calls] == ["search", "clock", "noargs"]
    assert parsed.tool_calls[0].arguments == args
    assert parsed.tool_calls[2].arguments == {}
    assert [c.id for c in parsed.tool_calls] == ["t_0", "t_1", "t_2"]
    assert parsed.text == "Thinking..." and parsed.errors == []


def test_parse_malformed_calls_stay_in_the_text() -> None:
    text = ('ok <tool_call>{"name": "a", "arguments": {"x": 1}}</tool_call>'
            '<tool_call>{"name": "b", "arguments": {"x": </tool_call>'
            '<tool_call>["not", "an", "object"]</tool_call>'
            '<tool_call>{"arguments": {}}</tool_call>'
            '<tool_call>{"name": "c", "arguments": [1]}</tool_call>'
            ' tail <tool_call>{"name": "d"')  # fmt: skip
    parsed = HermesToolParser().parse(text)
    assert [c.tool_name for c in parsed.tool_calls] == ["a"]
    assert len(parsed.errors) == 5
    assert "invalid JSON" in parsed.errors[0] and "JSON object" in parsed.errors[1]
    assert "name" in parsed.errors[2] and "'arguments' must be" in parsed.errors[3]
    assert "unterminated" in parsed.errors[4]
    assert parsed.text.startswith('ok <tool_call>{"name": "b", "arguments": {"x": </tool_call>')
    assert parsed.text.endswith(' tail <tool_call>{"name": "d"')


def test_parse_plain_text_is_untouched() -> None:
    parsed = HermesToolParser().parse("  just text\n")
    assert parsed.text == "  just text\n" and parsed.tool_calls == [] and parsed.errors == []


def test_an_episode_that_outgrows_the_context_ends_scored_not_errored(make_generator: Any) -> None:
    from haystack_rl import load_environment
    from haystack_rl.episode import play_episode

    env = load_environment("tic_tac_toe", num_eval_examples=1, invalid_move_ends_game=False)
    example = env.examples("eval")[0]
    generator = make_generator(max_new_tokens=16)
    generator.warm_up()
    first = len(generator.build_prompt(env.reset(example, 0)[0], None))
    generator.backend.max_context_length = first + 40  # the first turn fits; the second prompt (the board again) not
    rollout = asyncio.run(play_episode(env, generator, example, seed=0))
    assert rollout.error is None and rollout.stop_reason == "context_length" and len(rollout.turns) == 1
    env.rubric.score(rollout)
    assert rollout.metrics["unfinished"] == 1.0  # counted as an unfinished game, and trainable
    generator.backend.max_context_length = first  # not even the first prompt fits: a setup error, reported
    rollout = asyncio.run(play_episode(env, generator, example, seed=0))
    assert rollout.stop_reason == "error" and "ContextLengthError" in (rollout.error or "")


def test_a_model_that_returns_no_kv_cache_is_an_error_not_garbage(make_generator: Any, monkeypatch: Any) -> None:
    generator = make_generator()
    original = generator.backend.model.forward

    def without_cache(*args: Any, **kwargs: Any) -> Any:
        output = original(*args, **kwargs)
        for name in ("cache", "past_key_values"):
            if getattr(output, name, None) is not None:
                setattr(output, name, None)
        return output

    monkeypatch.setattr(generator.backend.model, "forward", without_cache)
    with pytest.raises(RuntimeError, match="no KV cache"):
        generator.run(USER)
