"""TRL `reward_funcs` that read each rollout's rubric scores, and the GRPO dataset's rows."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from haystack.dataclasses import ChatMessage

from haystack_rl.chat import to_hf_message
from haystack_rl.environments.base import Environment
from haystack_rl.episode import derive_seed
from haystack_rl.rollout import Rollout
from haystack_rl.rubrics.rubric import RewardFunction

#: Dataset columns the training dataset carries besides `prompt`.
EXAMPLE_ID_COLUMN = "example_id"
EXAMPLE_COLUMN = "example_json"
SEED_COLUMN = "episode_seed"
#: Extra field the rollout function returns: per rollout, a JSON object of rubric values (None on error).
SCORES_FIELD = "rollout_scores"


def to_trl_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """
    Haystack `ChatMessage`s as TRL's conversational dicts, tool calls and tool results included (as chat
    templates expect them); tool-call arguments are JSON text, so rows of any tool store in one Arrow table.
    """
    out = []
    for message in messages:
        data = to_hf_message(message)
        for call in data.get("tool_calls", []):
            call["function"]["arguments"] = json.dumps(call["function"]["arguments"], ensure_ascii=False)
        data.pop("reasoning_content", None)
        out.append(data)
    return out


def example_row(environment: Environment, example: dict[str, Any], seed: int) -> dict[str, Any]:
    """One training-dataset row: the rendered opening conversation plus the example and its episode seed."""
    episode_seed = derive_seed(seed, example["id"])
    messages = environment.training_prompt(example, episode_seed)
    return {
        "prompt": to_trl_messages(messages),
        EXAMPLE_ID_COLUMN: str(example["id"]),
        EXAMPLE_COLUMN: json.dumps(example),
        SEED_COLUMN: episode_seed,
    }


def rollout_scores(rollout: Rollout) -> str:
    """A scored rollout's rubric values as the JSON of `SCORES_FIELD`; None for failed functions, {} on error."""
    if rollout.error:
        return "{}"
    values: dict[str, float | None] = {**rollout.rewards, **rollout.metrics}
    values.update({name: None for name in rollout.reward_errors})
    return json.dumps(values)


class ScoredReward:
    """
    One rubric function as a TRL reward function: it reads the value the rollout function's rubric gave each
    episode (`SCORES_FIELD`), so TRL logs and weighs every function as the rubric does. A failed function or
    an errored episode gives None (NaN in TRL: left out of means, never a silent 0).
    """

    def __init__(self, function: RewardFunction) -> None:
        self.function = function
        self.__name__ = function.name

    def __call__(self, prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float | None]:
        """One value per completion (None when the function failed or the episode errored)."""
        scores = kwargs.get(SCORES_FIELD) or [None] * len(prompts)
        return [json.loads(s).get(self.__name__) if s else None for s in scores]


def scored_reward_funcs(environment: Environment) -> tuple[list[ScoredReward], list[float]]:
    """
    One TRL reward function per rubric function, and their weights for `GRPOConfig.reward_weights` (the
    rubric's `weights`: TRL's weighted sum is the rubric's total; weight-0 functions are logged metrics).
    """
    rubric = environment.rubric
    if not rubric.functions:
        raise ValueError(f"{environment.name}: its rubric has no reward functions to train on")
    return [ScoredReward(f) for f in rubric.functions], rubric.weights
