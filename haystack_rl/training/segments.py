"""
Per-token log-probs of GRPO rows that hold several sequences (a pipeline's separate generator calls): each
sequence is scored on its own prompt, as the model generated it, not on the tokens packed before it in the row.
"""

from __future__ import annotations

from typing import Any

import torch


def segmented_logps(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    logits_to_keep: int,
    starts: list[list[int]],
    compute_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """
    What TRL's `_get_per_token_logps_and_entropies` returns, for rows packed by `pack_sequences`: the first
    sequence on the row's prompt, each later one (its prompt and completion, from `starts[row]` on) as a sequence
    of its own. The first token of a later sequence has no context in its sequence and gets log-prob 0 (it is a
    prompt token, masked out of the loss, as every prompt token in the completion is).

    `model` carries TRL's fused LM head (`add_fused_lm_head`), as every model `GRPOTrainer` scores with does.

    Usage example:
    ```python
    # inside a GRPOTrainer subclass, for a batch whose rows hold several sequences:
    # logps, entropies = segmented_logps(model, input_ids, attention_mask, logits_to_keep, starts)
    ```

    :param starts: Per row, where each later sequence starts in the completion (empty for a plain row).
    :returns: (log-probs, entropies or None), each (rows, logits_to_keep), 0 on padding.
    """
    width = input_ids.size(1)
    prompt_width = width - logits_to_keep
    rows_logps, rows_entropies = [], []
    for row, row_starts in enumerate(starts):
        prompt = input_ids[row, :prompt_width][attention_mask[row, :prompt_width].bool()]
        length = int(attention_mask[row, prompt_width:].sum())
        completion = input_ids[row, prompt_width : prompt_width + length]
        logps = input_ids.new_zeros(logits_to_keep, dtype=torch.float32)
        entropies = input_ids.new_zeros(logits_to_keep, dtype=torch.float32)
        bounds = [0, *row_starts, length]
        for index, (begin, end) in enumerate(zip(bounds, bounds[1:])):
            context = prompt if index == 0 else completion[begin:begin]  # a later sequence: no earlier context
            ids = torch.cat([context, completion[begin:end]]).unsqueeze(0)
            labels = ids.clone()
            labels[:, : len(context) + (0 if index == 0 else 1)] = -100
            output = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels, fused_lm_head=True)
            first = len(context) + (0 if index == 0 else 1)  # the first scored token's position in `ids`
            scored = slice(first - 1, ids.size(1) - 1)  # the head's outputs are shifted: [t] scores token t + 1
            target = slice(begin + (0 if index == 0 else 1), end)
            logps = logps.index_put((torch.arange(target.start, target.stop, device=logps.device),),
                                    output.log_probs[0, scored].float())  # fmt: skip
            if compute_entropy:
                entropies = entropies.index_put((torch.arange(target.start, target.stop, device=logps.device),),
                                                output.entropy[0, scored].float())  # fmt: skip
        rows_logps.append(logps)
        rows_entropies.append(entropies)
    out = torch.stack(rows_logps)
    return out, torch.stack(rows_entropies) if compute_entropy else None


def row_starts(segment_starts: dict[tuple[int, ...], list[int]], input_ids: torch.Tensor,
               attention_mask: torch.Tensor) -> list[list[int]] | None:  # fmt: skip
    """The packed-sequence starts of each row of a batch (found by its tokens), or None when no row has any."""
    if not segment_starts:
        return None
    found = [segment_starts.get(tuple(ids[mask.bool()].tolist()), []) for ids, mask in zip(input_ids, attention_mask)]
    return found if any(found) else None
