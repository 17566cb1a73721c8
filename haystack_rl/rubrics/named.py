"""Rubrics named on a command line or in a config: answer rewards by name, or your own by code reference."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from haystack_rl.rubrics.rubric import RewardFunction, Rubric


def reward_function(name: str) -> Callable[..., Any]:
    """
    A reward function by name (`exact_match`, `numeric_match`, `numeric_closeness`, `token_f1`: the final
    `<answer>` against the task's `answer`) or by code reference (`path/to/file.py:function`, `module:function`,
    `(rollout) -> float`).
    """
    from haystack_rl.rubrics.tool_rewards import ANSWER_REWARDS
    from haystack_rl.trust import UserCodeError, is_code_reference, load_callable

    if name in ANSWER_REWARDS:
        return ANSWER_REWARDS[name]
    if is_code_reference(name):
        return load_callable(name)
    raise UserCodeError(f"unknown reward {name!r}; use one of {', '.join(ANSWER_REWARDS)}, or your own function as "
                        "path/to/file.py:function or package.module:function")  # fmt: skip


def named_rubric(rewards: Sequence[str], metrics: Sequence[str] = ()) -> Rubric:
    """
    A rubric of rewards (weight 1 each) and metrics (weight 0) named as `reward_function` reads them.

    Usage example:
    ```python
    from haystack_rl.rubrics.named import named_rubric

    rubric = named_rubric(["exact_match"], metrics=["token_f1"])
    assert [(f.name, f.weight) for f in rubric.functions] == [("exact_match", 1.0), ("token_f1", 0.0)]
    ```
    """
    functions = [RewardFunction(reward_function(name), 1.0) for name in rewards]
    functions += [RewardFunction(reward_function(name), 0.0) for name in metrics]
    return Rubric(functions)


def definition_rubric(rewards: Sequence[str], metrics: Sequence[str] = (), tools: bool = False) -> Rubric:
    """
    The rubric of an Agent or a pipeline evaluated on a task dataset: `rewards` (weight 1 each) and `metrics`
    (weight 0: reported, never trained on), named as `reward_function` reads them. For an Agent (`tools`), the
    first reward scores the answer inside `tool_use_rubric`, which adds the tool-call metrics.

    Usage example:
    ```python
    from haystack_rl.rubrics.named import definition_rubric

    rubric = definition_rubric(["exact_match"], metrics=["token_f1"])
    assert rubric.reward_names == ["exact_match"] and rubric.metric_names == ["token_f1"]
    agent = definition_rubric(["exact_match"], metrics=["token_f1"], tools=True)  # "correct": the answer's reward
    assert agent.reward_names == ["correct"] and {"num_tool_calls", "token_f1"} <= set(agent.metric_names)
    ```
    """
    if not tools:
        return named_rubric(rewards, metrics)
    from haystack_rl.rubrics.tool_rewards import tool_use_rubric

    rubric = tool_use_rubric(reward_function(rewards[0]))
    for extra in rewards[1:]:
        rubric.add(reward_function(extra))
    for metric in metrics:
        rubric.add(reward_function(metric), 0.0)
    return rubric
