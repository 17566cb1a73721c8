"""Advantage baselines: GRPO's per-group mean (TRL as is) or the mean of the whole generation batch."""

from __future__ import annotations

from typing import Any

import torch
from trl import GRPOTrainer


class BatchBaselineGRPOTrainer(GRPOTrainer):  # type: ignore[misc]
    """
    `GRPOTrainer` whose advantages are `(reward - batch mean) / batch std` over the whole generation batch.

    GRPO subtracts each group's own mean, so a group whose rollouts all failed carries no gradient: on a
    problem the policy never solves, nothing pushes down what it keeps doing there. With the batch's mean
    as the baseline (REINFORCE with a batch baseline), every failure below the batch's average is pushed
    down, in its own context. Chosen with `grpo.advantage_baseline: batch`.

    Usage example:
    ```python
    from haystack_rl.training.advantages import BatchBaselineGRPOTrainer

    # BatchBaselineGRPOTrainer(model=..., reward_funcs=..., args=GRPOConfig(...)): GRPOTrainer's arguments
    ```
    """

    _rewards_per_func: torch.Tensor | None = None

    def _calculate_rewards(self, inputs: Any, prompts: Any, completions: Any, completion_ids_list: Any) -> Any:
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._rewards_per_func = rewards_per_func  # gathered over processes, as the advantages need
        return rewards_per_func

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        output: dict[str, Any] = super()._generate_and_score_completions(inputs)
        if self._rewards_per_func is not None:
            per_func = self._rewards_per_func
            advantages = batch_advantages(per_func, self.reward_weights.to(per_func.device))
            local = len(output["advantages"])
            start = self.accelerator.process_index * local
            output["advantages"] = advantages[start : start + local].to(output["advantages"].device)
            self._rewards_per_func = None
        return output


def batch_advantages(rewards_per_func: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """
    `(reward - mean) / (std + 1e-4)` over all rows; a row no reward function scored (all NaN) gets 0.

    :param rewards_per_func: (rows, reward functions).
    :param weights: (reward functions,), as TRL's `reward_weights`.
    """
    unscorable = torch.isnan(rewards_per_func).all(dim=1)
    rewards = (rewards_per_func * weights.unsqueeze(0)).nansum(dim=1)
    rewards[unscorable] = torch.nan
    scored = rewards[~unscorable]
    if scored.numel() < 2:
        return torch.zeros_like(rewards)
    advantages = (rewards - scored.mean()) / (scored.std() + 1e-4)
    return torch.nan_to_num(advantages, nan=0.0)
