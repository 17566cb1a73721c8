"""Evaluation of a model (a directory or an in-memory model) on an environment, with `RolloutRunner`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from haystack_rl.environments.base import Environment
from haystack_rl.generators.token import TokenChatGenerator
from haystack_rl.results import ResultsWriter
from haystack_rl.runner import RolloutRunner
from haystack_rl.summary import flatten, summarize

logger = logging.getLogger(__name__)


def make_policy(model: str | Any, max_new_tokens: int, temperature: float, tokenizer: Any = None) -> Any:
    """The batched `TokenChatGenerator` on a model directory, or on an in-memory model + tokenizer."""
    generator = TokenChatGenerator(
        model=model if isinstance(model, str) else "in-memory",
        generation_kwargs={"max_new_tokens": max_new_tokens, "temperature": temperature},
    )
    if not isinstance(model, str):
        generator.use_model(model, tokenizer)
    return generator


def evaluate(
    environment: Environment,
    policy: Any,
    num_examples: int | None = None,
    rollouts_per_example: int = 1,
    seed: int = 0,
    generation_kwargs: dict[str, Any] | None = None,
    concurrency: int = 32,
    output_dir: str | None = None,
    run_info: dict[str, Any] | None = None,
    breakdowns: Sequence[str] = (),
) -> dict[str, Any]:
    """
    Play the eval split with `policy`; returns the flat summary (`haystack_rl.summary.flatten`).

    :param concurrency: Episodes in flight (the generator batches concurrent requests into one forward pass).
    :param output_dir: Save the rollouts there as an eval run does (`results.jsonl`, and `metadata.json`
        with `run_info`), so `haystack-rl report` can show them.
    :param breakdowns: `Rollout.info` keys to split the metrics by (`KEY=VALUE/METRIC`, see `flatten`).
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
        output_dir=output_dir,
    )
    rollouts = runner.run()["rollouts"]
    if output_dir is not None:
        ResultsWriter(output_dir, breakdowns=list(environment.summary_breakdowns)).run(rollouts, run_info)
    return flatten(summarize(rollouts, breakdowns))


def evaluate_model(
    environment: Environment,
    model: str,
    max_new_tokens: int,
    temperature: float,
    num_examples: int | None = None,
    rollouts_per_example: int = 1,
    seed: int = 0,
    output_dir: str | None = None,
    breakdowns: Sequence[str] = (),
) -> dict[str, Any]:
    """
    `evaluate` a model directory, sampled at `temperature` (0: greedy) with at most `max_new_tokens` per turn;
    with `output_dir`, the rollouts are saved there (see `evaluate`), recording this model directory.
    """
    policy = make_policy(model, max_new_tokens, temperature)
    generation_kwargs = {"max_new_tokens": max_new_tokens, "temperature": temperature}
    run_info = {"config": {"env": environment.name, "model": model, "num_examples": num_examples,
                           "rollouts_per_example": rollouts_per_example, "seed": seed, "split": "eval",
                           "max_tokens": max_new_tokens, "temperature": temperature}}  # fmt: skip
    return evaluate(environment, policy, num_examples, rollouts_per_example, seed, generation_kwargs,
                    output_dir=output_dir, run_info=run_info, breakdowns=breakdowns)  # fmt: skip
