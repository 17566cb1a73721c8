"""Multi-turn GRPO: a TRL `rollout_func` that plays the environment loop and scores with its rubric."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import Counter
from typing import Any

from haystack_rl.environments.base import Environment
from haystack_rl.results import tool_use_stats
from haystack_rl.rollout import Rollout
from haystack_rl.rubrics.rubric import RewardFunction
from haystack_rl.runner import derive_seed, play_episode
from haystack_rl.training.rewards import example_row

logger = logging.getLogger(__name__)

#: Extra field the rollout function returns: per rollout, a JSON object of rubric values (None on error).
SCORES_FIELD = "rollout_scores"


def prompt_key(prompt: Any) -> str:
    """A lookup key for a rendered opening conversation (role and content of each message)."""
    if isinstance(prompt, str):
        return prompt
    return json.dumps([(m.get("role"), m.get("content")) for m in prompt])


class EnvRolloutFunc:
    """
    TRL `rollout_func` for multi-turn environments.

    TRL hands it the prompts already repeated `num_generations` times (and nothing else); it recovers each
    group's example and episode seed from the rendered opening conversation, plays every episode of the
    batch concurrently through the project's `TokenChatGenerator` on the trainer's backend (in-process on its
    live model, batching the concurrent requests of each turn; or TRL's vLLM with `use_vllm`, server or colocate
    mode, which TRL syncs the trainer's weights into before each step), scores each group with the
    environment's rubric, and returns one completion per prompt: the token ids after the first prompt, an
    `env_mask` (0 on tokens the environment wrote, so they carry no gradient), sampling logprobs, and the
    rubric's values for the reward functions of `scored_reward_funcs`.

    With `resample_flat_groups=N` (DAPO's dynamic sampling), a group whose rollouts all got the same reward
    (no spread, so no gradient) is played again on another training example drawn at random, up to N more
    times; the step then trains on groups that carry signal. Each try costs generation time, no loss pass.

    Tool environments train through the same `ToolEnv.step` as evaluation (tool calls parsed from the
    generated text, the same limits and error messages; tool results are environment tokens, mask 0).
    `pop_metrics()` gives the episodes played since its last call (replaced groups included) as
    `episodes/success` and, for tool environments, `tools/calls_per_rollout`, `tools/error_rate` and
    `tools/no_tool_share`, plus `groups/resampled` (groups played again) and `groups/flat` (groups left without
    spread); the trainer's metrics log adds them to each GRPO step.

    Usage example:
    ```python
    from haystack_rl import load_environment
    from haystack_rl.training.multiturn import EnvRolloutFunc, scored_reward_funcs

    env = load_environment("tic_tac_toe", num_train_examples=8)
    rollout_func = EnvRolloutFunc(env, "path/to/model", num_generations=4, seed=0, max_new_tokens=16)
    reward_funcs, weights = scored_reward_funcs(env)
    # GRPOTrainer(..., reward_funcs=reward_funcs, rollout_func=rollout_func, args=GRPOConfig(reward_weights=weights))
    ```
    """

    def __init__(
        self,
        environment: Environment,
        model_dir: str,
        num_generations: int,
        seed: int,
        max_new_tokens: int,
        temperature: float = 1.0,
        max_total_tokens: int | None = None,
        resample_flat_groups: int = 0,
    ) -> None:
        from haystack_rl.generators.token import TokenChatGenerator

        if resample_flat_groups < 0:
            raise ValueError(f"resample_flat_groups must be >= 0, got {resample_flat_groups}")
        self.environment = environment
        self.resample_flat_groups = resample_flat_groups
        self.num_generations = num_generations
        self.seed = seed
        self.max_total_tokens = max_total_tokens
        self.generation_kwargs = {"max_new_tokens": max_new_tokens, "temperature": temperature}
        self.generator = TokenChatGenerator(model=model_dir, generation_kwargs=self.generation_kwargs,
                                            max_batch_size=256)  # fmt: skip
        self._attached: tuple[int, int] | None = None
        self.lookup: dict[str, list[tuple[dict[str, Any], int]]] = {}
        for example in environment.examples("train"):
            row = example_row(environment, example, seed)
            self.lookup.setdefault(prompt_key(row["prompt"]), []).append((example, row["episode_seed"]))
        self.pool = [pair for pairs in self.lookup.values() for pair in pairs]
        self._next: Counter[str] = Counter()
        self.calls = 0
        self.last_rollouts: list[Rollout] = []
        self._unlogged: list[Rollout] = []
        self._groups_resampled = self._groups_flat = 0

    def _attach(self, trainer: Any) -> None:
        """Generate on the trainer's backend: its live model in-process, or TRL's vLLM when it uses one."""
        from haystack_rl.backends import trainer_backend

        key = (id(trainer), id(trainer.model))
        if self._attached != key:
            backend = trainer_backend(trainer, self.generator.max_batch_size)
            self.generator.use_backend(backend, trainer.processing_class)
            self._attached = key

    def _groups(self, prompts: list[Any]) -> list[tuple[list[int], dict[str, Any], int]]:
        """Consecutive runs of identical prompts, cut into groups of `num_generations`, each with (example, seed)."""
        groups: list[tuple[list[int], dict[str, Any], int]] = []
        index = 0
        while index < len(prompts):
            key = prompt_key(prompts[index])
            end = index
            while end < len(prompts) and end - index < self.num_generations and prompt_key(prompts[end]) == key:
                end += 1
            candidates = self.lookup.get(key)
            if not candidates:
                raise KeyError(f"{self.environment.name}: a training prompt matches no example of the train split")
            example, seed = candidates[self._next[key] % len(candidates)]
            self._next[key] += 1
            groups.append((list(range(index, end)), example, seed))
            index = end
        return groups

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, list[Any]]:
        """Play one episode per prompt; returns TRL's `prompt_ids`, `completion_ids`, `logprobs`, `env_mask`."""
        self._attach(trainer)
        groups = [(example, seed, len(indices)) for indices, example, seed in self._groups(prompts)]
        self.calls += 1
        played = self._play(groups, attempt=0)
        rng = random.Random(derive_seed(self.seed, self.calls, -1, -1))
        for attempt in range(1, self.resample_flat_groups + 1):
            flat = [g for g, rollouts in enumerate(played) if _flat(rollouts)]
            if not flat:
                break
            replayed = self._play([(*rng.choice(self.pool), len(played[g])) for g in flat], attempt)
            for g, rollouts in zip(flat, replayed):
                played[g] = rollouts
            self._groups_resampled += len(flat)
        self._groups_flat += sum(_flat(rollouts) for rollouts in played)
        self.last_rollouts = [rollout for rollouts in played for rollout in rollouts]
        return self._trl_output(self.last_rollouts)

    def _play(self, groups: list[tuple[dict[str, Any], int, int]], attempt: int) -> list[list[Rollout]]:
        """Play `size` episodes of each (example, seed, size) concurrently; each group scored by the rubric."""
        retry = (attempt,) if attempt else ()  # first tries keep the seeds they had before resampling existed

        async def play() -> list[list[Rollout]]:
            async def group(example: dict[str, Any], seed: int, size: int) -> list[Rollout]:
                return list(await asyncio.gather(*(
                    play_episode(self.environment, self.generator, example, seed, rollout_index=i,
                                 generation_kwargs={**self.generation_kwargs,
                                                    "seed": derive_seed(self.seed, self.calls, seed, i, *retry)},
                                 max_total_tokens=self.max_total_tokens)
                    for i in range(size)
                )))  # fmt: skip

            return list(await asyncio.gather(*(group(*g) for g in groups)))

        played = asyncio.run(play())
        for rollouts in played:
            self.environment.rubric.score_group(rollouts)
            self._unlogged.extend(rollouts)
        return played

    def _trl_output(self, rollouts: list[Rollout]) -> dict[str, list[Any]]:
        """TRL's columns for scored rollouts, one row each (an unusable rollout becomes one masked EOS token)."""
        out: dict[str, list[Any]] = {"prompt_ids": [], "completion_ids": [], "logprobs": [], "env_mask": []}
        out[SCORES_FIELD] = []
        eos = self.generator.tokenizer.eos_token_id
        for rollout in rollouts:
            try:
                if not rollout.turns:
                    raise ValueError(rollout.error or "no model turn recorded")
                ids, mask, logprobs = rollout.completion_tokens()
                prompt_ids = rollout.prompt_ids
            except ValueError as error:  # TokenMismatchError is a ValueError
                logger.warning("rollout %s unusable for training: %s", rollout.key, error)
                rollout.error = rollout.error or str(error)
                prompt_ids = rollout.prompt_ids or [eos]
                ids, mask, logprobs = [eos], [0], [0.0]
            out["prompt_ids"].append(prompt_ids)
            out["completion_ids"].append(ids)
            out["env_mask"].append(mask)
            out["logprobs"].append(logprobs)
            out[SCORES_FIELD].append(json.dumps(_scores(rollout)))
        return out

    def pop_metrics(self) -> dict[str, float | None]:
        """Success and tool-use figures of the episodes played since the last call (see the class docstring)."""
        stats = tool_use_stats(self._unlogged)
        self._unlogged = []
        names = {"success": "episodes/success", "tool_calls_per_rollout": "tools/calls_per_rollout",
                 "tool_error_rate": "tools/error_rate", "no_tool_share": "tools/no_tool_share"}  # fmt: skip
        metrics: dict[str, float | None] = {names[key]: value for key, value in stats.items()}
        if self.resample_flat_groups:
            metrics.update({"groups/resampled": float(self._groups_resampled), "groups/flat": float(self._groups_flat)})
        self._groups_resampled = self._groups_flat = 0
        return metrics


def _flat(rollouts: list[Rollout]) -> bool:
    """True when every rollout of a group got the same reward (GRPO's advantages are then all 0)."""
    return len({rollout.reward for rollout in rollouts}) <= 1


def _scores(rollout: Rollout) -> dict[str, float | None]:
    """Rubric values of a scored rollout; None for failed functions and for errored episodes."""
    if rollout.error:
        return {}
    values: dict[str, float | None] = {**rollout.rewards, **rollout.metrics}
    values.update({name: None for name in rollout.reward_errors})
    return values


class ScoredReward:
    """A TRL reward function reading one rubric function's value from the rollout function's scores."""

    def __init__(self, function: RewardFunction) -> None:
        self.function = function
        self.__name__ = function.name

    def __call__(self, prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float | None]:
        """One value per completion (None when the function failed or the episode errored)."""
        scores = kwargs.get(SCORES_FIELD) or [None] * len(prompts)
        return [json.loads(s).get(self.__name__) if s else None for s in scores]


def scored_reward_funcs(environment: Environment) -> tuple[list[ScoredReward], list[float]]:
    """Reward functions and weights for the rollout-function path (weights as in `rubric_reward_funcs`)."""
    rubric = environment.rubric
    weights = [f.weight for f in rubric.functions]
    scale = sum(w for w in weights if w > 0) if rubric.normalize else 0.0
    if scale > 0:
        weights = [w / scale for w in weights]
    return [ScoredReward(f) for f in rubric.functions], weights
