"""GRPO episodes: a TRL `rollout_func` that plays the environment loop and scores with its rubric (every env kind)."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import Counter
from typing import Any

from haystack_rl.asyncio_utils import run_sync
from haystack_rl.environments.base import Environment
from haystack_rl.environments.pipeline_env import PipelineEnv
from haystack_rl.episode import derive_seed, play_episode
from haystack_rl.rollout import Rollout
from haystack_rl.summary import tool_use_stats
from haystack_rl.training.rewards import SCORES_FIELD, example_row, rollout_scores

logger = logging.getLogger(__name__)


def prompt_key(prompt: Any) -> str:
    """A lookup key for a rendered opening conversation (role and content of each message)."""
    if isinstance(prompt, str):
        return prompt
    return json.dumps([(m.get("role"), m.get("content")) for m in prompt])


class EnvRolloutFunc:
    """
    TRL `rollout_func` for every environment: GRPO plays the same episode loop as evaluation (`play_episode`:
    `reset`, the model's replies, `step`, stop reasons, `info`), so what is trained is what is evaluated and
    deployed, single-turn environments included.

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
    from haystack_rl.training.multiturn import EnvRolloutFunc
    from haystack_rl.training.rewards import scored_reward_funcs

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
        #: Rows of the last batch that hold several sequences (a pipeline's separate generator calls), by their
        #: token ids: where each later sequence starts in the completion (see `pack_sequences`).
        self.segment_starts: dict[tuple[int, ...], list[int]] = {}
        #: Reward-function failures over the whole run, by function name.
        self.reward_errors: Counter[str] = Counter()

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

        played = run_sync(play())
        for rollouts in played:
            self.environment.score_group(rollouts)
            self._unlogged.extend(rollouts)
        return played

    def _trl_output(self, rollouts: list[Rollout]) -> dict[str, list[Any]]:
        """TRL's columns for scored rollouts, one row each (an unusable rollout becomes one masked EOS token)."""
        out: dict[str, list[Any]] = {"prompt_ids": [], "completion_ids": [], "logprobs": [], "env_mask": []}
        out[SCORES_FIELD] = []
        eos = self.generator.tokenizer.eos_token_id
        self.segment_starts.clear()
        for rollout in rollouts:
            try:
                if not rollout.turns:
                    raise ValueError(rollout.error or "no model turn recorded")
                if isinstance(self.environment, PipelineEnv):  # several calls: one row of separate sequences
                    prompt_ids, ids, mask, logprobs, starts = pack_sequences(rollout.sequences())
                    if starts:
                        self.segment_starts[tuple(prompt_ids + ids)] = starts
                else:  # a conversation must keep the prefix property: a break is a template problem
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
            out[SCORES_FIELD].append(rollout_scores(rollout))
        return out

    def pop_metrics(self) -> dict[str, float | None]:
        """Success and tool-use figures of the episodes played since the last call (see the class docstring)."""
        stats = tool_use_stats(self._unlogged)
        failed = Counter(name for rollout in self._unlogged for name in rollout.reward_errors)
        self.reward_errors.update(failed)
        self._unlogged = []
        names = {"success": "episodes/success", "tool_calls_per_rollout": "tools/calls_per_rollout",
                 "tool_error_rate": "tools/error_rate", "no_tool_share": "tools/no_tool_share"}  # fmt: skip
        metrics: dict[str, float | None] = {names[key]: value for key, value in stats.items()}
        metrics.update({f"reward_errors/{name}": float(count) for name, count in failed.items()})
        if self.resample_flat_groups:
            metrics.update({"groups/resampled": float(self._groups_resampled), "groups/flat": float(self._groups_flat)})
        self._groups_resampled = self._groups_flat = 0
        return metrics


def pack_sequences(
    sequences: list[tuple[list[int], list[int], list[int], list[float]]],
) -> tuple[list[int], list[int], list[int], list[float], list[int]]:
    """
    Several training sequences of one episode (see `Rollout.sequences`) as one TRL row: the first sequence's
    prompt, then every completion, each later sequence's prompt in between with mask 0. Returns the row's
    `(prompt_ids, completion_ids, env_mask, logprobs)` and where each later sequence starts in the completion;
    the loss pass scores each sequence on its own prompt (`haystack_rl.training.segments`), so every call's
    tokens are trained as the model generated them, with the episode's advantage.

    Usage example:
    ```python
    from haystack_rl.training.multiturn import pack_sequences

    first = ([1, 2], [3, 4], [1, 1], [-0.1, -0.2])
    second = ([5, 6, 7], [8], [1], [-0.3])
    prompt, completion, mask, logprobs, starts = pack_sequences([first, second])
    assert (prompt, completion, mask, starts) == ([1, 2], [3, 4, 5, 6, 7, 8], [1, 1, 0, 0, 0, 1], [2])
    ```
    """
    prompt_ids, completion, mask = list(sequences[0][0]), list(sequences[0][1]), list(sequences[0][2])
    logprobs = list(sequences[0][3])
    starts: list[int] = []
    for later_prompt, later_completion, later_mask, later_logprobs in sequences[1:]:
        starts.append(len(completion))
        completion += list(later_prompt) + list(later_completion)
        mask += [0] * len(later_prompt) + list(later_mask)
        logprobs += [0.0] * len(later_prompt) + list(later_logprobs)
    return prompt_ids, completion, mask, logprobs, starts


def _flat(rollouts: list[Rollout]) -> bool:
    """True when every rollout of a group got the same reward (GRPO's advantages are then all 0)."""
    return len({rollout.reward for rollout in rollouts}) <= 1
