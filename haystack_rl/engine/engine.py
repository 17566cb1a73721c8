"""The in-process engine: a Hugging Face causal LM sampling batches of token-id requests with a KV cache."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from haystack_rl.backends.base import Completion, GenerationRequest
from haystack_rl.backends.batching import MicroBatcher
from haystack_rl.chat.prompt import stop_token_ids
from haystack_rl.engine import kv_cache
from haystack_rl.engine.sampling import sample_token

NO_CACHE = (
    "the model returned no KV cache, so it cannot generate token by token: a model in training mode with gradient "
    "checkpointing drops it on transformers versions that do so even without gradients; upgrade transformers"
)


class Engine:
    """
    A local causal LM as a generation backend (CPU or one GPU): the default under `TokenChatGenerator`.

    `generate` runs a batch in one sampling loop: left padding, the batch's common prompt prefix prefilled once
    (a group's rollouts share their whole first prompt, all of them the system prompt and tool schema), a
    preallocated KV cache where the model supports one, and finished rows leaving the batch. Concurrent
    `generate_async` calls (e.g. from many rollouts) are gathered into batches of up to `max_batch_size`, run in
    a worker thread. Each request's `seed` seeds its own random stream, so a seeded request is reproducible
    whatever else shares its batch (up to float noise from padding, which practically never changes a token).

    On a model directory (`Engine.load`) or on a live in-memory model (`Engine(model, tokenizer)`, e.g. the one a
    trainer updates: used as it is, weights, device and train/eval mode untouched, under `torch.inference_mode()`).

    Usage example:
    ```python
    from haystack_rl.backends import GenerationRequest
    from haystack_rl.engine import Engine

    engine = Engine.load("tiny")
    (completion,) = engine.generate([GenerationRequest(prompt_ids=[1, 72, 105], max_new_tokens=5, seed=0)])
    assert len(completion.completion_ids) == len(completion.logprobs) <= 5
    ```
    """

    def __init__(self, model: Any, tokenizer: Any, max_batch_size: int = 32) -> None:
        """
        :param model: A Hugging Face causal LM (or a peft model wrapping one).
        :param tokenizer: Its tokenizer (for the EOS and padding ids).
        :param max_batch_size: Most concurrent `generate_async` requests per batch.
        """
        self.model = model
        self.stop_ids = stop_token_ids(tokenizer, model.generation_config)
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = model.generation_config.pad_token_id
        self.pad_id = int(pad if pad is not None else min(self.stop_ids, default=0))
        self.max_context_length: int | None = getattr(model.config, "max_position_embeddings", None)
        self._lock = threading.Lock()
        self._batcher: MicroBatcher[GenerationRequest, Completion] = MicroBatcher(
            lambda batch: self.generate(batch), max_batch_size
        )

    @classmethod
    def load(cls, model: str | Path = "tiny", device: str = "auto", tokenizer: Any = None,
             max_batch_size: int = 32) -> Engine:  # fmt: skip
        """
        Load "tiny" or a local model directory onto `device` ("auto": "cuda" when a GPU is visible, else "cpu").

        :param tokenizer: The model's tokenizer when already loaded (else it is loaded from the directory).
        """
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from haystack_rl.models.tiny import resolve_model

        path = resolve_model(model)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        loaded: Any = AutoModelForCausalLM.from_pretrained(path)
        loaded = loaded.to(torch.device(device)).eval()
        return cls(loaded, tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(path), max_batch_size)

    async def generate_async(self, request: GenerationRequest) -> Completion:
        """One completion, batched with the concurrent calls on this event loop."""
        return await self._batcher.submit(request)

    def generate(self, requests: list[GenerationRequest]) -> list[Completion]:
        """One batched sampling loop over `requests` (blocking, thread-safe); one completion per request."""
        import torch

        with self._lock, torch.inference_mode():
            model = self.model
            device = model.device
            max_new_tokens = max(r.max_new_tokens for r in requests)
            cache_length = max(len(r.prompt_ids) for r in requests) + max_new_tokens
            cache_argument = kv_cache.cache_argument(model)
            past, shared = kv_cache.prefill_shared_prefix(model, [r.prompt_ids for r in requests], cache_length)
            suffixes = [r.prompt_ids[shared:] for r in requests]
            width = max(len(suffix) for suffix in suffixes)
            step_ids = torch.tensor(
                [[self.pad_id] * (width - len(suffix)) + suffix for suffix in suffixes], device=device
            )
            attention = torch.tensor(
                [[1] * shared + [0] * (width - len(suffix)) + [1] * len(suffix) for suffix in suffixes], device=device
            )
            positions = (attention.cumsum(-1) - 1).clamp(min=0)[:, shared:]
            rngs = [None if r.seed is None else torch.Generator().manual_seed(r.seed) for r in requests]
            results = [Completion([], [], "length") for _ in requests]
            active = [True] * len(requests)
            rows = list(range(len(requests)))  # the request of each row still in the batch
            for _ in range(max_new_tokens):
                output = model(
                    input_ids=step_ids,
                    attention_mask=attention,
                    position_ids=positions,
                    use_cache=True,
                    logits_to_keep=1,
                    **{cache_argument: past},
                )
                past = kv_cache.returned_cache(output)
                if past is None:
                    raise RuntimeError(NO_CACHE)
                logits = output.logits[:, -1, :].float().cpu()
                next_ids = [self.pad_id] * len(rows)
                for index, row in enumerate(rows):
                    if not active[row]:
                        continue
                    request, result = requests[row], results[row]
                    token, logprob = sample_token(logits[index], request.temperature, request.top_p, rngs[row])
                    result.completion_ids.append(token)
                    result.logprobs.append(logprob)
                    next_ids[index] = token
                    if token in self.stop_ids:
                        result.finish_reason, active[row] = "stop", False
                    elif len(result.completion_ids) >= request.max_new_tokens:
                        active[row] = False
                keep = [index for index, row in enumerate(rows) if active[row]]
                if not keep:
                    break
                if len(keep) <= 3 * len(rows) // 4 and kv_cache.select_rows(past, keep):
                    # finished rows leave the batch once a quarter of it is done (each drop copies the cache)
                    rows = [rows[index] for index in keep]
                    next_ids = [next_ids[index] for index in keep]
                    attention, positions = attention[keep], positions[keep]
                step_ids = torch.tensor(next_ids, device=device).unsqueeze(1)
                attention = torch.cat([attention, attention.new_ones((len(rows), 1))], dim=1)
                positions = positions[:, -1:] + 1
            return results
