"""RolloutRunner: plays an environment with a policy, in groups, concurrently, and scores the rollouts."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from haystack import component, default_from_dict, default_to_dict

from haystack_rl.asyncio_utils import run_sync
from haystack_rl.environments.base import Environment
from haystack_rl.episode import derive_seed, play_episode
from haystack_rl.rollout import Rollout
from haystack_rl.rollout_io import RolloutWriter, read_rollouts, write_rollouts

RESULTS_FILE = "results.jsonl"


@component
class RolloutRunner:
    """
    Plays `rollouts_per_example` episodes per example (a group, sharing the example's seed), with at most
    `concurrency` episodes in flight, and scores each finished group with the environment's rubric.

    With `output_dir`, every finished group is appended to `output_dir/results.jsonl` at once, and a
    later run on the same directory resumes: finished groups are kept and not redone, and a group with a failed
    rollout (`Rollout.error`: a dead endpoint, a failing environment) is played again.

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
        """Warm up the environment and the policy (loads a local model once)."""
        self.environment.warm_up()
        if hasattr(self.policy, "warm_up"):
            self.policy.warm_up()

    def example_seed(self, example: dict[str, Any]) -> int:
        """The seed every rollout of this example's group uses."""
        return derive_seed(self.seed, example["id"])

    async def generate(
        self,
        examples: list[dict[str, Any]] | None = None,
        on_group: Callable[[list[Rollout]], None] | None = None,
        on_resume: Callable[[int], None] | None = None,
    ) -> list[Rollout]:
        """
        Play and score all groups; returns every rollout (resumed ones included), in example order.

        :param on_group: Called with each newly finished, scored group (e.g. to advance a progress bar).
        :param on_resume: Called once, before playing, with how many of the groups were already finished.
        """
        self.warm_up()
        if examples is None:
            examples = self.environment.examples(self.split, self.num_examples)
        finished = self._load_finished()
        if on_resume is not None:
            on_resume(sum(str(example["id"]) in finished for example in examples))
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
            scored = await self.environment.score_group_async(list(rollouts))
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
            close = getattr(self.policy, "close_async", None)  # a served policy's connections belong to this loop
            if callable(close):
                await close()
        return [rollout for rollouts in groups for rollout in rollouts]

    def _results_path(self) -> Path:
        assert self.output_dir is not None
        return Path(self.output_dir) / RESULTS_FILE

    def _load_finished(self) -> dict[str, list[Rollout]]:
        """
        Complete groups already on disk, none of whose rollouts failed; the file is rewritten without the others
        (and without torn lines), so their groups are played again.
        """
        if not self.output_dir:
            return {}
        path = self._results_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        by_example: dict[str, dict[int, Rollout]] = {}
        for rollout in read_rollouts(path):
            by_example.setdefault(rollout.example_id, {})[rollout.rollout_index] = rollout
        wanted = set(range(self.rollouts_per_example))
        complete = {key: [g[i] for i in sorted(g)] for key, g in by_example.items()
                    if set(g) == wanted and not any(r.error for r in g.values())}  # fmt: skip
        if path.exists():
            tmp = path.with_suffix(".jsonl.tmp")
            tmp.unlink(missing_ok=True)
            write_rollouts(tmp, [r for g in complete.values() for r in g])
            os.replace(tmp, path)
        return complete

    @component.output_types(rollouts=list[Rollout])
    def run(self, examples: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """
        Play and score; `examples` defaults to the environment's split (first `num_examples`). Works inside a
        running event loop too (e.g. a notebook).
        """
        return {"rollouts": run_sync(self.generate(examples))}

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
