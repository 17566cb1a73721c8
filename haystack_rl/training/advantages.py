"""
Advantage options: GRPO's per-group baseline (TRL as is) or the whole generation batch's, and how much
negative advantages count.
"""

from __future__ import annotations

from typing import Any

import torch
from trl import GRPOTrainer

from haystack_rl.training.config import ADVANTAGE_BASELINES
from haystack_rl.training.segments import row_starts, segmented_logps
from haystack_rl.training.shared_prompt import shared_prompt_logps


class AdvantageGRPOTrainer(GRPOTrainer):  # type: ignore[misc]
    """
    `GRPOTrainer` with a choice of advantage baseline and a scale for negative advantages (at the defaults,
    TRL's GRPO as is). `build_grpo_trainer` builds it from the `grpo` section of a config.

    - `advantage_baseline="batch"`: advantages are `(reward - batch mean) / batch std` over the whole
      generation batch. GRPO subtracts each group's own mean, so a group whose rollouts all failed carries
      no gradient: on a problem the policy never solves, nothing pushes down what it keeps doing there.
      With the batch's mean (REINFORCE with a batch baseline), every failure below the batch's average is
      pushed down, in its own context. `grpo.advantage_baseline: batch`.
    - `negative_advantage_scale`: negative advantages are multiplied by it (1: GRPO; 0: learn only from
      rollouts better than their baseline, like rejection-sampling fine-tuning). On a peaked policy the
      failed rollouts' rare tokens take most of a plain step. `grpo.negative_advantage_scale`.
    - `share_prompt`: score a group's completions on one pass over their shared prompt
      (`haystack_rl.training.shared_prompt`; the same log-probs, less compute). Text-only, one process;
      anything else takes TRL's pass. `grpo.share_prompt`.

    Usage example:
    ```python
    from haystack_rl.training.advantages import AdvantageGRPOTrainer

    # AdvantageGRPOTrainer(model=..., reward_funcs=..., args=GRPOConfig(...), advantage_baseline="batch",
    #                      negative_advantage_scale=0.5, share_prompt=True): GRPOTrainer's arguments, plus these
    ```
    """

    _rewards_per_func: torch.Tensor | None = None

    def __init__(self, *args: Any, advantage_baseline: str = "group", negative_advantage_scale: float = 1.0,
                 share_prompt: bool = False, **kwargs: Any) -> None:  # fmt: skip
        if advantage_baseline not in ADVANTAGE_BASELINES:
            raise ValueError(f"advantage_baseline must be 'group' or 'batch', got {advantage_baseline!r}")
        self.advantage_baseline = advantage_baseline
        self.negative_advantage_scale = negative_advantage_scale
        self.share_prompt = share_prompt
        super().__init__(*args, **kwargs)

    def _get_per_token_logps_and_entropies(self, model: Any, input_ids: torch.Tensor,
                                           attention_mask: torch.Tensor, logits_to_keep: int,
                                           batch_size: int | None = None, compute_entropy: bool = False,
                                           compute_aux_loss: bool = False, **extra: Any) -> Any:  # fmt: skip
        starts = row_starts(getattr(self.rollout_func, "segment_starts", {}), input_ids, attention_mask)
        if starts is not None:  # rows holding several sequences (a pipeline's calls): each on its own prompt
            with self.accelerator.autocast():
                return (*segmented_logps(model, input_ids, attention_mask, logits_to_keep, starts, compute_entropy),
                        None)  # fmt: skip
        plain = (not self.share_prompt or compute_aux_loss or self.accelerator.num_processes > 1
                 or any(value is not None for value in extra.values()))  # fmt: skip
        if not plain:
            with self.accelerator.autocast():
                shared = shared_prompt_logps(model, input_ids, attention_mask, logits_to_keep, batch_size,
                                             compute_entropy)  # fmt: skip
            if shared is not None:
                return (*shared, None)
        return super()._get_per_token_logps_and_entropies(
            model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy, compute_aux_loss, **extra
        )

    def _calculate_rewards(self, inputs: Any, prompts: Any, completions: Any, completion_ids_list: Any) -> Any:
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._rewards_per_func = rewards_per_func  # gathered over processes, as the advantages need
        return rewards_per_func

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        output: dict[str, Any] = super()._generate_and_score_completions(inputs)
        if self.advantage_baseline == "batch" and self._rewards_per_func is not None:
            per_func = self._rewards_per_func
            advantages = batch_advantages(per_func, self.reward_weights.to(per_func.device))
            local = len(output["advantages"])
            start = self.accelerator.process_index * local
            output["advantages"] = advantages[start : start + local].to(output["advantages"].device)
        self._rewards_per_func = None
        if self.negative_advantage_scale != 1.0:
            advantages = output["advantages"]
            output["advantages"] = torch.where(advantages < 0, advantages * self.negative_advantage_scale, advantages)
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
