"""
Generation on the engine a TRL `GRPOTrainer` holds: its vLLM (`trainer.vllm_generation`, server or colocate
mode) when `use_vllm`, else the in-process engine on its live model. TRL syncs the trainer's weights into vLLM
before it calls a `rollout_func` (`GRPOTrainer._generate`: `vllm_generation.sync_weights()` once per step).
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from haystack_rl.backends.base import Completion, GenerationBackend, GenerationRequest, finish_reason
from haystack_rl.backends.batching import MicroBatcher


def trainer_backend(trainer: Any, max_batch_size: int = 256) -> GenerationBackend:
    """
    The backend a rollout function generates on: TRL's vLLM when the trainer was configured with `use_vllm`
    (`grpo.use_vllm` / `grpo.vllm_mode`), else the in-process engine on the trainer's live (unwrapped) model.

    :param max_batch_size: Most concurrent requests per batch of the in-process engine.
    """
    if getattr(trainer, "use_vllm", False):
        return TRLVLLMBackend.from_trainer(trainer)
    from haystack_rl.engine import Engine

    return Engine(_unwrapped_model(trainer), trainer.processing_class, max_batch_size)


class TRLVLLMBackend:
    """
    TRL's own vLLM objects as a generation backend: every turn of a multi-turn or tool episode generates on the
    vLLM engine that `GRPOTrainer` drives and syncs weights into.

    - server mode: `VLLMGeneration.vllm_client` (TRL's `VLLMClient`, talking to `trl vllm-serve` / `vllm serve`),
      one `generate(prompts=[ids], n=1, ...)` call per request, concurrently (the server batches them); ranks
      other than the main one, which hold no client, open their own for generation only (no weight sync).
    - colocate mode: `VLLMGeneration.llm` (vLLM's `LLM` in the trainer's process): concurrent requests gathered
      into one `llm.generate(prompts, sampling_params=[one SamplingParams per request])` call.

    Each request carries its own temperature, top-p, max tokens, stop token ids and seed; `logprobs=0` returns the
    sampled token's log-prob (processed, after temperature and top-p: TRL starts vLLM with
    `logprobs_mode="processed_logprobs"`). Colocate mode with tensor parallelism or sleep mode is refused: both
    need every rank to generate in lockstep, which independent episodes do not.

    Usage example:
    ```python
    from haystack_rl.backends import TRLVLLMBackend

    # inside a rollout_func, with a GRPOTrainer built with GRPOConfig(use_vllm=True, vllm_mode="server"):
    # backend = TRLVLLMBackend.from_trainer(trainer)
    assert TRLVLLMBackend.__name__ == "TRLVLLMBackend"
    ```
    """

    def __init__(self, vllm_generation: Any, stop_ids: Any, max_context_length: int | None = None,
                 max_concurrency: int = 64) -> None:  # fmt: skip
        """
        :param vllm_generation: TRL's `VLLMGeneration` (`trainer.vllm_generation`).
        :param stop_ids: The tokens that end a completion (sent as `stop_token_ids`).
        :param max_context_length: The model's context (None: unknown).
        :param max_concurrency: Most requests in flight to a server (the size of TRL's client connection pool).
        """
        self.vllm_generation = vllm_generation
        self.mode = vllm_generation.mode
        if self.mode not in ("server", "colocate"):
            raise ValueError(f"vllm_mode must be 'server' or 'colocate', not {self.mode!r}")
        if self.mode == "colocate" and getattr(vllm_generation, "tensor_parallel_size", 1) > 1:
            raise ValueError("multi-turn rollouts on colocated vLLM need vllm_tensor_parallel_size=1; "
                             "use vllm_mode='server' for a tensor-parallel vLLM")  # fmt: skip
        if self.mode == "colocate" and getattr(vllm_generation, "enable_sleep_mode", False):
            raise ValueError("multi-turn rollouts on colocated vLLM do not support vllm_enable_sleep_mode; turn it off")
        self.stop_ids = frozenset(int(i) for i in stop_ids)
        self.max_context_length = max_context_length
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="vllm-request")
        self._client: Any = None
        self._llm_lock = threading.Lock()
        self._batcher: MicroBatcher[GenerationRequest, Completion] = MicroBatcher(self._generate_colocated, 1 << 16)

    @classmethod
    def from_trainer(cls, trainer: Any) -> TRLVLLMBackend:
        """The backend on `trainer.vllm_generation`, with the stop ids of its tokenizer and model."""
        from haystack_rl.chat.prompt import stop_token_ids

        vllm_generation = getattr(trainer, "vllm_generation", None)
        if vllm_generation is None:
            raise ValueError("the trainer holds no vLLM engine (trainer.vllm_generation): was it built with use_vllm?")
        model = _unwrapped_model(trainer)
        length = getattr(vllm_generation, "max_model_length", None) or getattr(
            model.config, "max_position_embeddings", None
        )
        return cls(vllm_generation, stop_token_ids(trainer.processing_class, model.generation_config), length)

    def generate(self, requests: list[GenerationRequest]) -> list[Completion]:
        """One completion per request (blocking)."""
        if self.mode == "server":
            return list(self._pool.map(self._generate_on_server, requests))
        return self._generate_colocated(requests)

    async def generate_async(self, request: GenerationRequest) -> Completion:
        """One completion: a concurrent server request, or a share of the next colocated batch."""
        if self.mode == "server":
            return await asyncio.get_running_loop().run_in_executor(self._pool, self._generate_on_server, request)
        return await self._batcher.submit(request)

    def _generate_on_server(self, request: GenerationRequest) -> Completion:
        """One request through TRL's `VLLMClient.generate` (vLLM's `/v1/completions` with token ids)."""
        extra: dict[str, Any] = {"stop_token_ids": sorted(self.stop_ids)}
        if request.seed is not None:
            extra["seed"] = request.seed
        output = self._server_client().generate(
            prompts=[list(request.prompt_ids)],
            n=1,
            temperature=request.temperature,
            top_p=request.top_p,
            max_tokens=request.max_new_tokens,
            logprobs=0,
            generation_kwargs=extra,
        )
        ids = [int(i) for i in output["completion_ids"][0]]
        if output.get("logprobs") is None:
            raise RuntimeError("the vLLM server returned no log-probs")
        # per position, the sampled token's log-prob among those returned (sorted by probability, TRL's format)
        tops = (output.get("logprob_token_ids") or [[[token] for token in ids]])[0]
        values = output["logprobs"][0]
        logprobs = [_float(row[top.index(token)] if token in top else row[0])
                    for token, row, top in zip(ids, values, tops)]  # fmt: skip
        return Completion(ids, logprobs, finish_reason(ids, self.stop_ids))

    def _generate_colocated(self, requests: list[GenerationRequest]) -> list[Completion]:
        """One `LLM.generate` call for a batch of requests, each with its own `SamplingParams`."""
        from vllm import SamplingParams

        params = [
            SamplingParams(n=1, temperature=r.temperature, top_p=r.top_p, max_tokens=r.max_new_tokens, logprobs=0,
                           seed=r.seed, stop_token_ids=sorted(self.stop_ids))
            for r in requests
        ]  # fmt: skip
        prompts = [{"prompt_token_ids": list(r.prompt_ids)} for r in requests]
        with self._llm_lock:  # one engine, not thread-safe
            outputs = self.vllm_generation.llm.generate(prompts, sampling_params=params, use_tqdm=False)
        completions = []
        for output in outputs:
            sample = output.outputs[0]
            ids = [int(i) for i in sample.token_ids]
            if sample.logprobs is None:
                raise RuntimeError("colocated vLLM returned no log-probs")
            logprobs = [float(position[token].logprob) for token, position in zip(ids, sample.logprobs)]
            reason = sample.finish_reason if sample.finish_reason in ("stop", "length") else None
            completions.append(Completion(ids, logprobs, reason or finish_reason(ids, self.stop_ids)))
        return completions

    def _server_client(self) -> Any:
        """TRL's client: the trainer's (main process), or one opened here for generation only (other ranks)."""
        client = getattr(self.vllm_generation, "vllm_client", None)
        if client is not None:
            return client
        with self._llm_lock:
            if self._client is None:
                from trl.generation.vllm_client import VLLMClient

                generation = self.vllm_generation
                base_url = generation.server_base_url or f"http://{generation.server_host}:{generation.server_port}"
                self._client = VLLMClient(base_url=base_url, group_port=generation.group_port,
                                          connection_timeout=generation.server_timeout)  # fmt: skip
            return self._client


def _float(value: Any) -> float:
    """A log-prob as a float (TRL turns vLLM's NaN into None)."""
    return float("nan") if value is None else float(value)


def _unwrapped_model(trainer: Any) -> Any:
    """The trainer's model without its accelerate wrappers."""
    accelerator = getattr(trainer, "accelerator", None)
    return accelerator.unwrap_model(trainer.model) if accelerator is not None else trainer.model
