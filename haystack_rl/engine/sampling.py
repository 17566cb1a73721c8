"""Sampling one token from a row of logits, with the log-prob it had under the distribution used."""

from __future__ import annotations

from typing import Any


def sample_token(logits: Any, temperature: float, top_p: float, rng: Any = None) -> tuple[int, float]:
    """
    Sample one token from a 1-D tensor of logits; returns it and its log-prob under the distribution used.

    Temperature 0 is greedy (the log-prob is the model's unscaled one); top-p keeps the smallest set of tokens
    reaching `top_p` (at least one) and renormalizes. `rng` is a `torch.Generator` (None: torch's global one).

    Usage example:
    ```python
    import torch
    from haystack_rl.engine import sample_token

    token, logprob = sample_token(torch.tensor([0.0, 5.0, 0.0]), temperature=0, top_p=1.0)
    assert token == 1 and logprob < 0
    ```
    """
    import torch

    if temperature <= 0:
        logprobs = torch.log_softmax(logits, dim=-1)
        token = int(torch.argmax(logprobs))
        return token, float(logprobs[token])
    logprobs = torch.log_softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        sorted_logprobs, order = torch.sort(logprobs, descending=True)
        probs = sorted_logprobs.exp()
        outside = (probs.cumsum(-1) - probs) >= top_p  # the smallest set reaching top_p, at least one token
        logprobs = logprobs.clone()
        logprobs[order[outside]] = float("-inf")
        logprobs = logprobs - torch.logsumexp(logprobs, dim=-1)
    token = int(torch.multinomial(logprobs.exp(), 1, generator=rng))
    return token, float(logprobs[token])
