"""
The episode player: the one loop that plays an environment with a policy, for evaluation, both training paths,
SFT demonstrations and Agent policies alike, so a transcript is the same wherever it was played.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
import time
from typing import Any

from haystack.dataclasses import ChatMessage

from haystack_rl.asyncio_utils import run_sync
from haystack_rl.environments.base import Environment, EpisodeState
from haystack_rl.environments.pipeline_env import PipelineEnv
from haystack_rl.environments.tool_execution import tool_use_info
from haystack_rl.generators.function import FunctionChatGenerator, PolicyFn
from haystack_rl.rollout import Rollout, Turn

#: Agent `exit_reason` that means it ran out of steps (the episode's stop reason is then "max_turns").
AGENT_MAX_STEPS = "max_agent_steps"
_CONTEXT_OVERFLOW = re.compile(r"context.length|context window|maximum context|prompt is too long", re.IGNORECASE)


def derive_seed(*parts: object) -> int:
    """A stable 31-bit seed from any parts (same parts -> same seed, on every machine and run)."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def is_context_overflow(error: BaseException) -> bool:
    """
    Whether `error` says the conversation no longer fits the model's context window.

    That is a `ContextLengthError` (local models), or an OpenAI-compatible server's HTTP 400 that says so
    (OpenAI's `context_length_exceeded`, vLLM's "maximum context length is ... tokens").
    """
    from haystack_rl.generators import ContextLengthError

    if isinstance(error, ContextLengthError):
        return True
    if getattr(error, "status_code", None) != 400:
        return False
    return bool(_CONTEXT_OVERFLOW.search(f"{getattr(error, 'code', '') or ''} {error}"))


async def call_policy(
    policy: Any, messages: list[ChatMessage], generation_kwargs: dict[str, Any], tools: Any = None
) -> ChatMessage:
    """Ask any Haystack chat generator for one reply (its `run_async` when it has one)."""
    kwargs: dict[str, Any] = {"messages": messages, "generation_kwargs": generation_kwargs}
    if tools:
        kwargs["tools"] = tools
    if hasattr(policy, "run_async"):
        result = await policy.run_async(**kwargs)
    else:
        result = await asyncio.to_thread(policy.run, **kwargs)
    replies = result.get("replies") or []
    if not replies:
        raise RuntimeError(f"{type(policy).__name__} returned no reply")
    reply: ChatMessage = replies[0]
    return reply


async def play_episode(
    environment: Environment,
    policy: Any,
    example: dict[str, Any],
    seed: int,
    rollout_index: int = 0,
    generation_kwargs: dict[str, Any] | None = None,
    max_total_tokens: int | None = None,
) -> Rollout:
    """
    Play one episode and return its (unscored) `Rollout`. Failures are recorded, never raised.

    Each turn the policy answers the conversation and the environment steps on the answer, until it says
    the episode is done. The policy is any Haystack chat generator (given the environment's tools, if any),
    or a Haystack `Agent`: then each turn is one run of the deployed Agent itself (its chat generator, tools,
    system prompt, step limit and hooks), whose tool calls and results join the conversation and whose final
    reply the environment steps on. Token data in reply meta (`prompt_ids`, `completion_ids`, `logprobs`)
    becomes the rollout's `turns`; tool-use figures are read off the transcript (`tool_use_info`).

    The policy's sampling seed differs per rollout and turn (so a group explores), while the environment's
    seed is the group's (so every rollout of a group faces the same environment). Stop reasons: "done",
    "max_turns", "length", "token_budget" (`max_total_tokens` generated), "context_length" (the
    conversation outgrew the model after its first reply; scored as it stands) and "error".

    Usage example:
    ```python
    import asyncio
    from haystack_rl import load_environment
    from haystack_rl.episode import play_episode
    from haystack_rl.generators import FunctionChatGenerator

    env = load_environment("calculator", num_eval_examples=1)
    policy = FunctionChatGenerator(env.baselines()["oracle"])
    rollout = asyncio.run(play_episode(env, policy, env.examples()[0], seed=0))
    assert rollout.stop_reason == "done" and rollout.info["tool_calls"] == 1
    ```
    """
    rollout = Rollout(example_id=str(example["id"]), rollout_index=rollout_index, seed=seed,
                      environment=environment.name, example=example)  # fmt: skip
    start = time.perf_counter()
    timing = {"generation_s": 0.0, "env_s": 0.0}
    agent = policy if _is_agent(policy) else None
    tools = agent.tools if agent is not None else getattr(environment, "tools", None)
    state: EpisodeState | None = None
    try:
        environment.warm_up()
        _, state = environment.reset(example, seed, rollout_index=rollout_index)
        if agent is not None:
            agent.warm_up()
        timing["env_s"] += time.perf_counter() - start
        if isinstance(environment, PipelineEnv):
            await _play_pipeline(environment, policy, state, rollout, timing, generation_kwargs)
        else:
            await _play_turns(environment, policy, agent, state, rollout, timing, generation_kwargs, max_total_tokens)
    except Exception as error:  # noqa: BLE001 - reset failed
        rollout.error, rollout.stop_reason = f"environment: {type(error).__name__}: {error}", "error"
    if state is not None:
        rollout.messages = list(state.messages)
        rollout.info = dict(state.info)
    if tools:
        rollout.info.update(tool_use_info(rollout.messages, tools))
    rollout.timing.update(timing, total_s=time.perf_counter() - start)
    return rollout


async def _play_turns(
    environment: Environment,
    policy: Any,
    agent: Any,
    state: EpisodeState,
    rollout: Rollout,
    timing: dict[str, float],
    generation_kwargs: dict[str, Any] | None,
    max_total_tokens: int | None,
) -> None:
    """The turn loop of `play_episode`: policy turn, environment step, stop checks."""
    tools = getattr(environment, "tools", None)
    replied = False
    while True:
        kwargs = {**(generation_kwargs or {}), "seed": derive_seed(state.seed, state.rollout_index, state.turn)}
        t0 = time.perf_counter()
        try:
            if agent is not None:
                new_messages, exit_reason = await _agent_turn(agent, state, kwargs)
            else:
                new_messages, exit_reason = [await call_policy(policy, list(state.messages), kwargs, tools)], ""
        except Exception as error:  # noqa: BLE001 - recorded on the rollout
            if is_context_overflow(error) and replied:
                rollout.stop_reason = "context_length"  # the policy talked itself out of room: scored as is
            else:  # (when not even the first prompt fits, that is a setup problem, reported as one)
                rollout.error, rollout.stop_reason = f"policy: {type(error).__name__}: {error}", "error"
            return
        timing["generation_s"] += time.perf_counter() - t0
        replied = True
        for message in new_messages:
            meta = message.meta
            if message.is_from("assistant") and "completion_ids" in meta:
                rollout.turns.append(Turn(list(meta["prompt_ids"]), list(meta["completion_ids"]), meta.get("logprobs")))
        # Yield once per turn: a policy that never awaits (a scripted baseline) must not starve the other
        # tasks, e.g. the one that writes finished groups and advances the progress bar.
        await asyncio.sleep(0)
        final = new_messages[-1]
        for message in new_messages[:-1]:  # an Agent's tool calls and their results
            state.messages.append(message)
            state.turn += message.is_from("assistant")
        if agent is not None and not (final.is_from("assistant") and not final.tool_calls):  # stopped on a tool
            state.messages.append(final)
            state.turn += final.is_from("assistant")
            rollout.stop_reason = "max_turns" if exit_reason == AGENT_MAX_STEPS else "done"
            return
        t0 = time.perf_counter()
        try:
            _, done = await environment.step_async(state, final)
        except Exception as error:  # noqa: BLE001 - recorded on the rollout
            rollout.error, rollout.stop_reason = f"environment: {type(error).__name__}: {error}", "error"
            return
        timing["env_s"] += time.perf_counter() - t0
        if done:
            rollout.stop_reason = str(state.info.pop("stop_reason", "done"))
            return
        if max_total_tokens is not None and rollout.num_completion_tokens >= max_total_tokens:
            rollout.stop_reason = "token_budget"
            return


async def _play_pipeline(
    environment: PipelineEnv,
    policy: Any,
    state: EpisodeState,
    rollout: Rollout,
    timing: dict[str, float],
    generation_kwargs: dict[str, Any] | None,
) -> None:
    """A pipeline episode: one run of the pipeline, the policy answering each call of its generator."""
    if _is_agent(policy):
        raise TypeError(f"{environment.name}: a pipeline episode is played by a chat generator, not an Agent")
    if isinstance(policy, dict):  # the pipeline's own generators, one per component
        for generator in policy.values():
            if hasattr(generator, "warm_up"):
                await asyncio.to_thread(generator.warm_up)
    t0 = time.perf_counter()
    try:
        await environment.play(state, policy, generation_kwargs)
    except Exception as error:  # noqa: BLE001 - recorded on the rollout
        rollout.error, rollout.stop_reason = f"pipeline: {type(error).__name__}: {error}", "error"
    timing["generation_s"] += time.perf_counter() - t0
    for message in state.messages:
        meta = message.meta
        if message.is_from("assistant") and "completion_ids" in meta:
            rollout.turns.append(Turn(list(meta["prompt_ids"]), list(meta["completion_ids"]), meta.get("logprobs")))
    rollout.stop_reason = rollout.stop_reason or "done"


async def _agent_turn(
    agent: Any, state: EpisodeState, generation_kwargs: dict[str, Any]
) -> tuple[list[ChatMessage], str]:
    """
    One run of a Haystack `Agent` on the conversation: its new messages (tool calls, tool results, final reply)
    and its exit reason. An Agent with a system prompt replaces the environment's (kept at the top of the
    conversation, as the Agent sent it).
    """
    own_system = bool(agent.system_prompt)
    if own_system:
        system = [m for m in state.messages if m.is_from("system")]
        passed = [m for m in state.messages if not m.is_from("system")]
    else:
        system, passed = [], list(state.messages)
    result = await agent.run_async(messages=passed, generation_kwargs=generation_kwargs)
    out: list[ChatMessage] = list(result.get("messages") or [])
    offset = 1 if own_system and out and out[0].is_from("system") else 0
    if offset and system != out[:1]:  # the first turn: the Agent's system prompt takes the environment's place
        state.messages[:] = out[:1] + passed
    new_messages = out[offset + len(passed) :]
    if not new_messages:
        raise RuntimeError("the Agent returned no new message")
    return new_messages, str(result.get("exit_reason") or "")


def episode_rollout(environment: Environment, state: EpisodeState, stop_reason: str = "") -> Rollout:
    """
    An episode as a (not yet scored) `Rollout`: its messages, the token data of each reply that carries it, its
    `info`, and the stop reason; for episodes played step by step outside `play_episode` (a pipeline loop).
    """
    example = state.example
    turns = [Turn(list(m.meta["prompt_ids"]), list(m.meta["completion_ids"]), m.meta.get("logprobs"))
             for m in state.messages if m.is_from("assistant") and "completion_ids" in m.meta]  # fmt: skip
    info = {key: value for key, value in state.info.items() if key != "stop_reason"}
    return Rollout(example_id=str(example.get("id", "")), rollout_index=state.rollout_index, seed=state.seed,
                   messages=list(state.messages), environment=environment.name, example=example, turns=turns,
                   info=info, stop_reason=stop_reason)  # fmt: skip


def _is_agent(policy: Any) -> bool:
    from haystack.components.agents import Agent

    return isinstance(policy, Agent)


class _ScriptedPolicy(FunctionChatGenerator):
    """A scripted policy whose `rng` runs through the whole episode (seeded once), for demonstrations."""

    def __init__(self, function: PolicyFn, rng: random.Random) -> None:
        super().__init__(function, name=getattr(function, "__name__", "scripted"))
        self.rng = rng

    def episode_rng(self, generation_kwargs: dict[str, Any] | None) -> random.Random:
        """The episode's generator, whatever the per-turn seed."""
        return self.rng


def play_scripted_episode(
    environment: Environment, policy: PolicyFn, example: dict[str, Any], seed: int, rollout_index: int = 0
) -> Rollout:
    """
    Play a scripted policy `(messages, rng) -> reply` through `play_episode` (blocking), with one `rng` for the
    episode seeded from `seed` and the example id; e.g. for demonstrations.
    """
    rng = random.Random(f"{seed}/{example.get('id')}/scripted")
    return run_sync(play_episode(environment, _ScriptedPolicy(policy, rng), example, seed, rollout_index))
