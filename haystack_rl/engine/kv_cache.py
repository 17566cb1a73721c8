"""
The KV cache of a Hugging Face causal LM, across transformers versions: its argument name, the cache a forward
pass returns, batch-row selection, preallocation and a shared-prefix prefill. The engine and the GRPO loss pass
(`training/shared_prompt.py`) both build on it.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

#: Fewer common prompt tokens than this: `prefill_shared_prefix` prefills every row in full.
MIN_SHARED_PREFIX = 16


def cache_argument(model: Any) -> str:
    """
    The name of the model's KV-cache argument: `cache` (transformers >= 5.2x), `past_key_values` before. A peft
    model forwards `**kwargs` to the model it wraps, so that model's signature decides.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(type(base).forward).parameters else "past_key_values"


def returned_cache(output: Any) -> Any:
    """The KV cache of a forward pass's output, under either name (None when it returned none)."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else getattr(output, "past_key_values", None)


def select_rows(cache: Any, rows: list[int]) -> bool:
    """Make the batch rows of a KV cache `rows` (a subset, or copies), in place; False if it cannot."""
    import torch

    reorder = getattr(cache, "reorder_cache", None)
    if reorder is None:
        return False
    try:
        reorder(torch.tensor(rows, dtype=torch.long))
    except NotImplementedError:
        return False
    return True


def new_cache(model: Any, length: int) -> Any:
    """
    A preallocated KV cache of `length` tokens where the model supports one (None: the model's default).

    The default `DynamicCache` concatenates every layer's keys and values at each step, copying the whole cache
    (`bench/tool_rollouts.py` measures the difference: its "static cache" side).
    """
    if not getattr(model, "_can_compile_fullgraph", False):
        return None
    from transformers import StaticCache

    return StaticCache(config=model.config.get_text_config(decoder=True), max_cache_len=length)


def prefill_shared_prefix(model: Any, prompts: list[list[int]], cache_length: int) -> tuple[Any, int]:
    """
    A KV cache for a batch holding the prompts' common prefix, run once and copied to every row.

    Rollouts of one group share their whole first prompt, and all of them the system prompt and tool schema
    (~800 of the calculator's ~830 tokens), so a batch's prefill mostly recomputes the same keys and values.
    Returns (cache, length of the prefix it holds); (a fresh cache, 0) when there is nothing worth sharing.
    """
    import torch

    cache = new_cache(model, cache_length)
    shortest = min(len(prompt) for prompt in prompts)
    length = min(len(os.path.commonprefix(prompts)), shortest - 1)  # every row keeps a token of its own to run
    if len(prompts) < 2 or length < MIN_SHARED_PREFIX:
        return cache, 0
    ids = torch.tensor([prompts[0][:length]], device=model.device)
    output = model(input_ids=ids, use_cache=True, logits_to_keep=1, **{cache_argument(model): cache})
    cache = returned_cache(output)
    if not select_rows(cache, [0] * len(prompts)):
        return new_cache(model, cache_length), 0
    return cache, length
