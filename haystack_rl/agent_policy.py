"""The Haystack `Agent` as the policy: one Agent run is one episode, recorded into a `Rollout`."""

from __future__ import annotations

import time
from typing import Any

from haystack.components.agents import Agent

from haystack_rl.environments.base import Environment
from haystack_rl.rollout import Rollout, Turn

#: Agent `exit_reason` -> rollout stop reason.
STOP_REASONS = {"text": "done", "max_agent_steps": "max_turns", "length": "length"}


async def play_agent_episode(
    environment: Environment,
    agent: Agent,
    example: dict[str, Any],
    seed: int,
    rollout_index: int = 0,
    generation_kwargs: dict[str, Any] | None = None,
) -> Rollout:
    """
    Play one episode with a Haystack `Agent` (chat generator + tools + system prompt): the same object a
    user deploys. The environment gives the opening conversation (`reset`) and the rubric; the Agent runs
    its own loop and executes its own tools (so the environment's `step`, its tool timeouts and state
    arguments are not used). Failures are recorded on the rollout, never raised.

    The rollout holds the Agent's messages (the Agent's system prompt replaces the environment's when it
    has one), one `Turn` per reply whose meta carries token data (`TokenChatGenerator` gives it;
    the Agent keeps reply meta), and `info` with `tool_calls`, `tool_errors` (error tool messages, kind
    "tool_error"), `agent_steps` and `agent_exit_reason`. `RolloutRunner` calls this when its policy is
    an `Agent`, so evaluation and scoring work unchanged.

    Usage example:
    ```python
    import asyncio
    from haystack.components.agents import Agent
    from haystack_rl import load_environment
    from haystack_rl.agent_policy import play_agent_episode
    from haystack_rl.generators import FunctionChatGenerator

    env = load_environment("search_qa")
    agent = Agent(chat_generator=FunctionChatGenerator(env.baselines()["oracle"]), tools=env.tools,
                  system_prompt=env.system_prompt)
    rollout = asyncio.run(play_agent_episode(env, agent, env.examples()[0], seed=0))
    assert env.rubric.score(rollout).reward == 1.0 and rollout.info["tool_calls"] == 1
    ```
    """
    from haystack_rl.runner import derive_seed

    rollout = Rollout(example_id=str(example["id"]), rollout_index=rollout_index, seed=seed,
                      environment=environment.name, example=example)  # fmt: skip
    start = time.perf_counter()
    try:
        messages, _ = environment.reset(example, seed)
        if agent.system_prompt:
            messages = [m for m in messages if not m.is_from("system")]
        kwargs = {**(generation_kwargs or {}), "seed": derive_seed(seed, rollout_index, 0)}
        agent.warm_up()
        result = await agent.run_async(messages=messages, generation_kwargs=kwargs)
    except Exception as error:  # noqa: BLE001 - recorded on the rollout
        rollout.error, rollout.stop_reason = f"agent: {type(error).__name__}: {error}", "error"
        rollout.timing["total_s"] = time.perf_counter() - start
        return rollout
    rollout.messages = list(result["messages"])
    for message in rollout.messages:
        if message.is_from("assistant") and "completion_ids" in message.meta:
            meta = message.meta
            rollout.turns.append(Turn(list(meta["prompt_ids"]), list(meta["completion_ids"]), meta.get("logprobs")))
    results = [m.tool_call_result for m in rollout.messages if m.is_from("tool") and m.tool_call_result is not None]
    exit_reason = str(result.get("exit_reason") or "")
    rollout.info = {
        "tool_calls": len(results),
        "tool_errors": {"tool_error": sum(bool(r.error) for r in results)},
        "agent_steps": int(result.get("step_count") or 0),
        "agent_exit_reason": exit_reason,
    }
    rollout.stop_reason = STOP_REASONS.get(exit_reason, exit_reason or "done")
    rollout.timing["total_s"] = time.perf_counter() - start
    return rollout
