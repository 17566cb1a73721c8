"""
Per-token log-probs of GRPO completions with each distinct prompt run once, not once per completion.

TRL's loss pass runs every row of a batch over its whole prompt plus completion. A group's rows share their
prompt, and in a tool environment that prompt (system prompt, tool schema, task) is most of the row: ~800 of
the calculator's ~1,000 tokens. Here the prompt goes through the model once per group, its KV cache is copied
to the group's rows, and only the completions run on top of it. Gradients flow back through the cache into
the prompt's single pass, so the loss and its gradient are the same as TRL's (up to float rounding).
"""

from __future__ import annotations

from typing import Any

import torch

from haystack_rl.engine.kv_cache import cache_argument, returned_cache, select_rows


def shared_prompt_logps(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    logits_to_keep: int,
    batch_size: int | None = None,
    compute_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """
    What TRL's `_get_per_token_logps_and_entropies` returns for a text-only batch, with shared prompts run once.

    `model` carries TRL's fused LM head (`add_fused_lm_head`), as every model `GRPOTrainer` scores with does.

    Usage example:
    ```python
    # inside a GRPOTrainer subclass, in place of a plain scoring pass:
    # logps, entropies = shared_prompt_logps(model, input_ids, attention_mask, logits_to_keep)
    ```

    :param input_ids: (rows, prompt + completion) token ids, prompts left-padded, completions right-padded.
    :param attention_mask: The same shape; 0 on padding.
    :param logits_to_keep: Completion length (the last `logits_to_keep` columns are scored).
    :param batch_size: Most rows per forward pass (None: a whole group at once).
    :param compute_entropy: Also return the per-token entropies.
    :returns: (log-probs, entropies or None), each (rows, logits_to_keep), 0 on padding; None where the model
        returns no KV cache (e.g. under gradient checkpointing), so the caller falls back to the plain pass.
    """
    prompt_ids, prompt_mask = input_ids[:, :-logits_to_keep], attention_mask[:, :-logits_to_keep]
    completion_ids, completion_mask = input_ids[:, -logits_to_keep:], attention_mask[:, -logits_to_keep:]
    groups: dict[tuple[int, ...], list[int]] = {}
    for row in range(input_ids.size(0)):
        groups.setdefault(tuple(prompt_ids[row][prompt_mask[row].bool()].tolist()), []).append(row)
    if any(len(prompt) < 2 for prompt in groups):
        return None
    logps, entropies, order = [], [], []
    for prompt, rows in groups.items():
        step = batch_size or len(rows)
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            scored = _score_on_prompt(model, prompt, completion_ids[chunk], completion_mask[chunk])
            if scored is None:
                return None
            logps.append(scored.log_probs)
            if compute_entropy:
                entropies.append(scored.entropy)
            order.extend(chunk)
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[torch.tensor(order)] = torch.arange(len(order))
    inverse = inverse.to(input_ids.device)
    return torch.cat(logps)[inverse], torch.cat(entropies)[inverse] if compute_entropy else None


def _score_on_prompt(model: Any, prompt: tuple[int, ...], completion_ids: torch.Tensor,
                     completion_mask: torch.Tensor) -> Any:  # fmt: skip
    """The fused head's output for completions of one prompt: the prompt but its last token runs once."""
    rows, device = completion_ids.size(0), completion_ids.device
    argument = cache_argument(model)
    prefix = torch.tensor([prompt[:-1]], device=device)
    cache = returned_cache(model(input_ids=prefix, use_cache=True, logits_to_keep=1))
    if cache is None or not select_rows(cache, [0] * rows):
        return None
    # the prompt's last token runs with each row: its output scores the first completion token
    ids = torch.cat([completion_ids.new_full((rows, 1), prompt[-1]), completion_ids], dim=1)
    mask = torch.cat([completion_mask.new_ones((rows, len(prompt))), completion_mask], dim=1)
    labels = ids.masked_fill(mask[:, -ids.size(1) :] == 0, -100)
    labels[:, 0] = -100
    return model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True, **{argument: cache})
