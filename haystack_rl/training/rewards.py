"""TRL `reward_funcs` from an environment's Rubric (single-turn environments)."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from haystack.dataclasses import ChatMessage

from haystack_rl.chat import to_hf_message
from haystack_rl.environments.base import Environment
from haystack_rl.rollout import Rollout
from haystack_rl.rubrics.rubric import RewardFunction, Rubric
from haystack_rl.runner import derive_seed

logger = logging.getLogger(__name__)

#: Dataset columns the training dataset carries besides `prompt` (TRL passes them to reward functions).
EXAMPLE_ID_COLUMN = "example_id"
EXAMPLE_COLUMN = "example_json"
SEED_COLUMN = "episode_seed"


def to_chat_messages(messages: Sequence[dict[str, Any]]) -> list[ChatMessage]:
    """TRL's conversational dicts (`{"role", "content"}`) as Haystack `ChatMessage`s."""
    out: list[ChatMessage] = []
    for message in messages:
        role, content = message["role"], message.get("content") or ""
        if role == "system":
            out.append(ChatMessage.from_system(content))
        elif role == "user":
            out.append(ChatMessage.from_user(content))
        elif role == "assistant":
            out.append(ChatMessage.from_assistant(content))
        else:
            raise ValueError(f"unsupported role {role!r} in a training prompt")
    return out


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
    messages, _ = environment.reset(example, episode_seed)
    return {
        "prompt": to_trl_messages(messages),
        EXAMPLE_ID_COLUMN: str(example["id"]),
        EXAMPLE_COLUMN: json.dumps(example),
        SEED_COLUMN: episode_seed,
    }


class RubricReward:
    """
    One rubric function as a TRL reward function: rebuilds each `Rollout` from the prompt, the completion
    and the example columns, and calls the function. A raising function is logged and counted, and its
    reward is `None` (NaN in TRL: left out of means, never a silent 0).

    Usage example:
    ```python
    from haystack_rl import load_environment
    from haystack_rl.training.rewards import example_row, rubric_reward_funcs

    env = load_environment("reverse_text", num_eval_examples=2)
    funcs, weights = rubric_reward_funcs(env)
    row = example_row(env, env.examples("eval")[0], seed=0)
    answer = [{"role": "assistant", "content": f"<reversed_text>{env.examples('eval')[0]['answer']}</reversed_text>"}]
    columns = {k: [v] for k, v in row.items() if k != "prompt"}
    assert funcs[0](prompts=[row["prompt"]], completions=[answer], **columns) == [1.0]
    ```
    """

    def __init__(self, function: RewardFunction, environment_name: str = "") -> None:
        self.function = function
        self.environment_name = environment_name
        self.__name__ = function.name
        self.errors: Counter[str] = Counter()
        self.calls = 0

    def __call__(self, prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float | None]:
        """TRL's reward-function signature: one value per (prompt, completion)."""
        rollouts = build_rollouts(prompts, completions, kwargs, self.environment_name)
        self.calls += len(rollouts)
        values: list[float | None] = [None] * len(rollouts)
        if self.function.group:
            groups: dict[str, list[int]] = {}
            for index, rollout in enumerate(rollouts):
                groups.setdefault(rollout.group_id, []).append(index)
            for indices in groups.values():
                try:
                    scores = list(self.function.func([rollouts[i] for i in indices]))
                    if len(scores) != len(indices):
                        raise ValueError(f"returned {len(scores)} values for {len(indices)} rollouts")
                    for i, score in zip(indices, scores):
                        values[i] = float(score)
                except Exception as error:  # noqa: BLE001 - logged and counted, reward left None
                    self._record(error, rollouts[indices[0]], kwargs)
        else:
            for i, rollout in enumerate(rollouts):
                try:
                    values[i] = float(self.function.func(rollout))
                except Exception as error:  # noqa: BLE001 - logged and counted, reward left None
                    self._record(error, rollout, kwargs)
        return values

    def _record(self, error: Exception, rollout: Rollout, kwargs: dict[str, Any]) -> None:
        message = f"{type(error).__name__}: {error}"
        self.errors[message] += 1
        logger.warning("reward function %s failed on example %s: %s", self.__name__, rollout.example_id, message)
        log_metric = kwargs.get("log_metric")
        if callable(log_metric):
            log_metric(f"reward_errors/{self.__name__}", 1.0)


def build_rollouts(
    prompts: list[Any], completions: list[Any], columns: dict[str, Any], environment_name: str = ""
) -> list[Rollout]:
    """Rebuild single-turn `Rollout`s from what TRL passes to a reward function."""
    ids = columns.get(EXAMPLE_ID_COLUMN) or [str(i) for i in range(len(prompts))]
    examples = columns.get(EXAMPLE_COLUMN) or [None] * len(prompts)
    seeds = columns.get(SEED_COLUMN) or [0] * len(prompts)
    counters: Counter[str] = Counter()
    rollouts: list[Rollout] = []
    for prompt, completion, example_id, example_json, seed in zip(prompts, completions, ids, examples, seeds):
        prompt_messages = to_chat_messages(prompt) if isinstance(prompt, list) else [ChatMessage.from_user(prompt)]
        reply = (
            to_chat_messages(completion) if isinstance(completion, list) else [ChatMessage.from_assistant(completion)]
        )
        example = json.loads(example_json) if example_json else {"id": example_id}
        rollouts.append(
            Rollout(
                example_id=str(example_id),
                rollout_index=counters[str(example_id)],
                seed=int(seed),
                messages=prompt_messages + reply,
                environment=environment_name,
                example=example,
                stop_reason="done",
            )
        )
        counters[str(example_id)] += 1
    return rollouts


def rubric_reward_funcs(environment: Environment) -> tuple[list[RubricReward], list[float]]:
    """
    One TRL reward function per rubric function, and their weights for `GRPOConfig.reward_weights`.

    Weights follow the rubric: with `normalize`, each weight is divided by the sum of positive weights
    (so TRL's weighted sum equals `Rubric`'s total); weight-0 functions are kept as logged metrics.
    """
    rubric: Rubric = environment.rubric
    if not rubric.functions:
        raise ValueError(f"{environment.name}: its rubric has no reward functions to train on")
    weights = [f.weight for f in rubric.functions]
    scale = sum(w for w in weights if w > 0) if rubric.normalize else 0.0
    if scale > 0:
        weights = [w / scale for w in weights]
    return [RubricReward(f, environment.name) for f in rubric.functions], weights
