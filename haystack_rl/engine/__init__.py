"""
The in-process engine: batched sampling with a KV cache, shared-prefix prefill and micro-batching, on a local
Hugging Face causal LM (CPU or one GPU). `kv_cache` is its public KV-cache API, which the GRPO loss pass uses too.
"""

from haystack_rl.engine import kv_cache
from haystack_rl.engine.engine import Engine
from haystack_rl.engine.sampling import sample_token

__all__ = ["Engine", "kv_cache", "sample_token"]
