"""Evaluation of a model (a directory or an in-memory model) on an environment, with `RolloutRunner`."""

from __future__ import annotations

import logging
import statistics
from typing import Any

from haystack_rl.environments.base import Environment
from haystack_rl.generators.transformers import TransformersChatGenerator
from haystack_rl.rollout import Rollout
from haystack_rl.runner import RolloutRunner

logger = logging.getLogger(__name__)


def make_policy(model: str | Any, max_new_tokens: int, temperature: float, tokenizer: Any = None) -> Any:
    """The batched `TransformersChatGenerator` on a model directory, or on an in-memory model + tokenizer."""
    generator = TransformersChatGenerator(
        model=model if isinstance(model, str) else "in-memory", max_new_tokens=max_new_tokens, temperature=temperature
    )
    if not isinstance(model, str):
        generator.use_model(model, tokenizer)
    return generator


def summarize(rollouts: list[Rollout]) -> dict[str, Any]:
    """Mean reward (None-rewards excluded and counted), per-function means, metrics, errors."""
    rewards = [r.reward for r in rollouts if r.reward is not None]
    summary: dict[str, Any] = {
        "reward": statistics.fmean(rewards) if rewards else None,
        "reward_std": statistics.pstdev(rewards) if len(rewards) > 1 else 0.0,
        "rollouts": len(rollouts),
        "unscored": len(rollouts) - len(rewards),
        "errors": sum(1 for r in rollouts if r.error),
    }
    names = sorted({k for r in rollouts for k in (*r.rewards, *r.metrics)})
    for name in names:
        values = [r.rewards.get(name, r.metrics.get(name)) for r in rollouts]
        present = [v for v in values if v is not None]
        summary[name] = statistics.fmean(present) if present else None
    return summary


def evaluate(
    environment: Environment,
    policy: Any,
    num_examples: int | None = None,
    rollouts_per_example: int = 1,
    seed: int = 0,
    generation_kwargs: dict[str, Any] | None = None,
    concurrency: int = 32,
) -> dict[str, Any]:
    """
    Play the eval split with `policy` and summarize (see `summarize`).

    :param concurrency: Episodes in flight (the generator batches concurrent requests into one forward pass).
    """
    runner = RolloutRunner(
        environment,
        policy,
        rollouts_per_example=rollouts_per_example,
        concurrency=concurrency,
        generation_kwargs=generation_kwargs,
        seed=seed,
        split="eval",
        num_examples=num_examples,
    )
    return summarize(runner.run()["rollouts"])
