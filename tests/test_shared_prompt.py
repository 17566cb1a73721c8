"""Scoring completions on one pass over their shared prompt gives TRL's log-probs, entropies and gradients."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from haystack_rl.training.shared_prompt import shared_prompt_logps

PAD = 256


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    from haystack_rl.models.tiny import ensure_tiny_model

    model = AutoModelForCausalLM.from_pretrained(ensure_tiny_model(tmp_path_factory.mktemp("models") / "tiny"))
    add_fused_lm_head(model, temperature=0.7, outputs=("log_probs", "entropy"))  # as GRPOTrainer patches it
    return model


def batch() -> tuple[torch.Tensor, torch.Tensor, int]:
    """Two prompts (40 and 33 tokens, left-padded) in interleaved rows, completions of uneven lengths."""
    generator = torch.Generator().manual_seed(0)
    prompts = [torch.randint(0, PAD, (length,), generator=generator) for length in (40, 33)]
    lengths, width = [12, 5, 12, 9, 1], 12
    ids, masks = [], []
    for row, length in enumerate(lengths):
        prompt = prompts[row % 2]
        pad = 40 - len(prompt)
        completion = torch.randint(0, PAD, (width,), generator=generator)
        completion[length:] = PAD
        ids.append(torch.cat([torch.full((pad,), PAD), prompt, completion]))
        masks.append(torch.cat([torch.zeros(pad), torch.ones(len(prompt)), (torch.arange(width) < length).float()]))
    return torch.stack(ids), torch.stack(masks).long(), width


def plain_pass(model: Any, ids: torch.Tensor, mask: torch.Tensor, keep: int) -> tuple[torch.Tensor, torch.Tensor]:
    """TRL's scoring pass: every row over its whole prompt and completion."""
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, :-keep] = -100
    output = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True)
    return output.log_probs[:, -keep:], output.entropy[:, -keep:]


def gradient(model: Any, loss: torch.Tensor) -> torch.Tensor:
    model.zero_grad()
    loss.backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])


@pytest.mark.parametrize("batch_size", [None, 2])
def test_shared_prompt_pass_matches_the_plain_one(model: Any, batch_size: int | None) -> None:
    ids, mask, keep = batch()
    expected, expected_entropy = plain_pass(model, ids, mask, keep)
    result = shared_prompt_logps(model, ids, mask, keep, batch_size, compute_entropy=True)
    assert result is not None
    logps, entropy = result
    assert logps.shape == expected.shape == (5, keep) and entropy is not None
    assert torch.allclose(logps, expected, atol=1e-4) and torch.allclose(entropy, expected_entropy, atol=1e-4)
    assert logps[4, 1:].eq(0).all() and logps[4, 0] < 0  # padding scores 0, as in the plain pass
    weights = torch.linspace(-1, 1, keep)  # a loss that weighs every row and position differently
    want = gradient(model, (expected * weights).sum())
    got = gradient(model, (logps * weights).sum())
    assert torch.allclose(got, want, atol=1e-4 * want.abs().max().item())


def test_a_one_token_prompt_falls_back_to_the_plain_pass(model: Any) -> None:
    ids = torch.tensor([[5, 6, 7], [5, 8, 9]])
    assert shared_prompt_logps(model, ids, torch.ones_like(ids), logits_to_keep=2) is None
