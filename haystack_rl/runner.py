"""RolloutRunner: plays an environment with a policy, in groups, concurrently, and scores the rollouts."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from haystack import component, default_from_dict, default_to_dict
from haystack.dataclasses import ChatMessage

from haystack_rl.chat import ContextLengthError
from haystack_rl.environments.base import Environment, State
from haystack_rl.rollout import Rollout, RolloutWriter, Turn, read_rollouts, write_rollouts

RESULTS_FILE = "results.jsonl"


def derive_seed(*parts: object) -> int:
    """A stable 31-bit seed from any parts (same parts -> same seed, on every machine and run)."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


_CONTEXT_OVERFLOW = re.compile(r"context.length|context window|maximum context|prompt is too long", re.IGNORECASE)


def is_context_overflow(error: BaseException) -> bool:
    """
    Whether `error` says the conversation no longer fits the model's context window.

    That is a `ContextLengthError` (local models), or an OpenAI-compatible server's HTTP 400 that says so
    (OpenAI's `context_length_exceeded`, vLLM's "maximum context length is ... tokens").
    """
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
    if tools is not None:
        kwargs["tools"] = tools
    if hasattr(policy, "run_async"):
        result = await policy.run_async(**kwargs)
    else:
        result = await asyncio.to_thread(policy.run, **kwargs)
    replies = result.get("replies") or []
    if not replies:
        raise RuntimeError(f"{type(policy).__name__} returned no reply")
    return replies[0]


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

    The policy's sampling seed differs per rollout and turn (so a group explores), while the
    environment's seed is the group's (so every rollout of a group faces the same environment).
    A Haystack `Agent` as the policy plays the whole episode itself (see `play_agent_episode`).
    """
    if _is_agent(policy):
        from haystack_rl.agent_policy import play_agent_episode

        return await play_agent_episode(environment, policy, example, seed, rollout_index, generation_kwargs)
    rollout = Rollout(example_id=str(example["id"]), rollout_index=rollout_index, seed=seed,
                      environment=environment.name, example=example)  # fmt: skip
    start = time.perf_counter()
    generation_s = env_s = 0.0
    state: State | None = None
    tools = getattr(environment, "tools", None)
    try:
        _, state = environment.reset(example, seed)
        env_s += time.perf_counter() - start
        done = replied = False
        while not done:
            kwargs = {**(generation_kwargs or {}), "seed": derive_seed(seed, rollout_index, state.turn)}
            t0 = time.perf_counter()
            try:
                reply = await call_policy(policy, list(state.messages), kwargs, tools)
            except Exception as error:  # noqa: BLE001 - recorded on the rollout
                if is_context_overflow(error) and replied:
                    rollout.stop_reason = "context_length"  # the policy talked itself out of room: scored as is
                else:  # (when not even the first prompt fits, that is a setup problem, reported as one)
                    rollout.error, rollout.stop_reason = f"policy: {type(error).__name__}: {error}", "error"
                break
            generation_s += time.perf_counter() - t0
            replied = True
            if "completion_ids" in reply.meta:
                rollout.turns.append(
                    Turn(list(reply.meta["prompt_ids"]), list(reply.meta["completion_ids"]), reply.meta.get("logprobs"))
                )
            # Yield once per turn: a policy that never awaits (a scripted baseline) must not starve the
            # other tasks, e.g. the one that writes finished groups and advances the progress bar.
            await asyncio.sleep(0)
            t0 = time.perf_counter()
            try:
                if tools:  # tools run inside step and may be slow: off the event loop, so others go on
                    _, done = await asyncio.to_thread(environment.step, state, reply)
                else:
                    _, done = environment.step(state, reply)
            except Exception as error:  # noqa: BLE001 - recorded on the rollout
                rollout.error, rollout.stop_reason = f"environment: {type(error).__name__}: {error}", "error"
                break
            env_s += time.perf_counter() - t0
            if done:
                rollout.stop_reason = str(state.info.pop("stop_reason", "done"))
            elif max_total_tokens is not None and rollout.num_completion_tokens >= max_total_tokens:
                rollout.stop_reason, done = "token_budget", True
    except Exception as error:  # noqa: BLE001 - reset failed
        rollout.error, rollout.stop_reason = f"environment: {type(error).__name__}: {error}", "error"
    if state is not None:
        rollout.messages = list(state.messages)
        rollout.info = dict(state.info)
    rollout.timing.update(generation_s=generation_s, env_s=env_s, total_s=time.perf_counter() - start)
    return rollout


def _is_agent(policy: Any) -> bool:
    from haystack.components.agents import Agent

    return isinstance(policy, Agent)


@component
class RolloutRunner:
    """
    Plays `rollouts_per_example` episodes per example (a group, sharing the example's seed), with at most
    `concurrency` episodes in flight, and scores each finished group with the environment's rubric.

    With `output_dir`, every finished group is appended to `output_dir/results.jsonl` at once, and a
    later run on the same directory resumes: finished (example, rollout) pairs are kept and not redone.

    Usage example:
    ```python
    from haystack_rl import RolloutRunner, load_environment
    from haystack_rl.generators import FunctionChatGenerator

    env = load_environment("reverse_text", num_eval_examples=4)
    policy = FunctionChatGenerator(env.baselines()["oracle"])
    rollouts = RolloutRunner(env, policy, rollouts_per_example=2).run()["rollouts"]
    assert len(rollouts) == 8 and all(r.reward == 1.0 for r in rollouts)
    ```
    """

    def __init__(
        self,
        environment: Environment,
        policy: Any,
        rollouts_per_example: int = 1,
        concurrency: int = 8,
        generation_kwargs: dict[str, Any] | None = None,
        max_total_tokens: int | None = None,
        seed: int = 0,
        split: str = "eval",
        num_examples: int | None = None,
        output_dir: str | None = None,
    ) -> None:
        if rollouts_per_example < 1 or concurrency < 1:
            raise ValueError("RolloutRunner: rollouts_per_example and concurrency must be >= 1")
        self.environment = environment
        self.policy = policy
        self.rollouts_per_example = rollouts_per_example
        self.concurrency = concurrency
        self.generation_kwargs = generation_kwargs or {}
        self.max_total_tokens = max_total_tokens
        self.seed = seed
        self.split = split
        self.num_examples = num_examples
        self.output_dir = output_dir

    def warm_up(self) -> None:
        """Warm up the policy (loads a local model once)."""
        if hasattr(self.policy, "warm_up"):
            self.policy.warm_up()

    def example_seed(self, example: dict[str, Any]) -> int:
        """The seed every rollout of this example's group uses."""
        return derive_seed(self.seed, example["id"])

    async def generate(
        self,
        examples: list[dict[str, Any]] | None = None,
        on_group: Callable[[list[Rollout]], None] | None = None,
    ) -> list[Rollout]:
        """
        Play and score all groups; returns every rollout (resumed ones included), in example order.

        :param on_group: Called with each newly finished, scored group (e.g. to advance a progress bar).
        """
        self.warm_up()
        if examples is None:
            examples = self.environment.examples(self.split, self.num_examples)
        finished = self._load_finished()
        semaphore = asyncio.Semaphore(self.concurrency)
        writer = RolloutWriter(self._results_path()) if self.output_dir else None

        async def one(example: dict[str, Any], index: int) -> Rollout:
            async with semaphore:
                return await play_episode(self.environment, self.policy, example, self.example_seed(example),
                                          index, self.generation_kwargs, self.max_total_tokens)  # fmt: skip

        async def group(example: dict[str, Any]) -> list[Rollout]:
            key = str(example["id"])
            if key in finished:
                return finished[key]
            rollouts = await asyncio.gather(*(one(example, i) for i in range(self.rollouts_per_example)))
            scored = self.environment.rubric.score_group(list(rollouts))
            if writer is not None:
                writer.write(scored)
            if on_group is not None:
                on_group(scored)
            return scored

        try:
            groups = await asyncio.gather(*(group(example) for example in examples))
        finally:
            if writer is not None:
                writer.close()
        return [rollout for rollouts in groups for rollout in rollouts]

    def _results_path(self) -> Path:
        assert self.output_dir is not None
        return Path(self.output_dir) / RESULTS_FILE

    def _load_finished(self) -> dict[str, list[Rollout]]:
        """Complete groups already on disk; the file is rewritten without incomplete ones and torn lines."""
        if not self.output_dir:
            return {}
        path = self._results_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        by_example: dict[str, dict[int, Rollout]] = {}
        for rollout in read_rollouts(path):
            by_example.setdefault(rollout.example_id, {})[rollout.rollout_index] = rollout
        wanted = set(range(self.rollouts_per_example))
        complete = {key: [g[i] for i in sorted(g)] for key, g in by_example.items() if set(g) == wanted}
        if path.exists():
            tmp = path.with_suffix(".jsonl.tmp")
            tmp.unlink(missing_ok=True)
            write_rollouts(tmp, [r for g in complete.values() for r in g])
            os.replace(tmp, path)
        return complete

    @component.output_types(rollouts=list[Rollout])
    def run(self, examples: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Play and score; `examples` defaults to the environment's split (first `num_examples`)."""
        return {"rollouts": asyncio.run(self.generate(examples))}

    @component.output_types(rollouts=list[Rollout])
    async def run_async(self, examples: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Async twin of `run`."""
        return {"rollouts": await self.generate(examples)}

    def to_dict(self) -> dict[str, Any]:
        """Serialize (environment and policy nested as components)."""
        return default_to_dict(
            self,
            environment=self.environment,
            policy=self.policy,
            rollouts_per_example=self.rollouts_per_example,
            concurrency=self.concurrency,
            generation_kwargs=self.generation_kwargs,
            max_total_tokens=self.max_total_tokens,
            seed=self.seed,
            split=self.split,
            num_examples=self.num_examples,
            output_dir=self.output_dir,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RolloutRunner:
        """Deserialize."""
        return default_from_dict(cls, data)
