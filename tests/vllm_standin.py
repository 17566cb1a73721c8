"""
Stand-ins for vLLM, which cannot be installed where these tests run: they follow the real call signatures and
wire formats and answer from the tiny model (sampled by the in-process engine on their own copy of the weights).

- `StandInVLLMServer`: vLLM's OpenAI-compatible server as `vllm serve` / `trl vllm-serve` run it (dev mode on),
  on 127.0.0.1: `/health`, `/v1/models`, `/v1/completions` with token-id prompts, and the endpoints TRL's
  `VLLMClient` uses to sync weights. Mirrors `vllm/entrypoints/openai/completion/protocol.py`
  (`CompletionRequest`, `CompletionResponse`, `CompletionLogProbs`) for the fields used here.
- `StandInVLLMClient`: TRL's real `trl.generation.vllm_client.VLLMClient` with only its NCCL parts replaced
  (`init_communicator`, the broadcast in `update_named_params`): the tensors reach the server's weights directly.
- `StandInLLM`, `SamplingParams`, `RequestOutput`, `CompletionOutput`, `Logprob`: vLLM's offline `LLM` as TRL's
  colocate mode uses it (`LLM.generate(prompts, sampling_params, use_tqdm=...)`, `llm_engine.model_config`,
  `llm_engine.model_executor.driver_worker.model_runner.model.load_weights`, `reset_prefix_cache`), mirroring
  `vllm/entrypoints/llm.py`, `vllm/sampling_params.py`, `vllm/outputs.py` and `vllm/logprobs.py`.
- `StandInVLLMGeneration`: TRL's real `trl.generation.vllm_generation.VLLMGeneration` with only `_init_vllm`
  replaced (it would start vLLM); its `sync_weights` and `generate` are TRL's own and are counted.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from typing import Any

import torch
from trl.generation.vllm_generation import VLLMGeneration
from vllm_standin_server import StandInVLLMClient, StandInVLLMServer, cut_at_stop, load_named_weights, sampling_engine

from haystack_rl.backends import GenerationRequest

__all__ = ["StandInLLM", "StandInVLLMClient", "StandInVLLMGeneration", "StandInVLLMServer", "install"]


# --- vLLM's offline LLM (colocate mode) ------------------------------------------------------------
@dataclass
class SamplingParams:
    """`vllm.SamplingParams`, the fields TRL and haystack_rl set (same names and defaults)."""

    n: int = 1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: int | None = None
    stop_token_ids: list[int] | None = None
    max_tokens: int | None = 16
    logprobs: int | None = None


@dataclass
class Logprob:
    """`vllm.logprobs.Logprob`."""

    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class CompletionOutput:
    """`vllm.outputs.CompletionOutput`."""

    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None
    logprobs: list[dict[int, Logprob]] | None
    finish_reason: str | None = None
    stop_reason: int | str | None = None


@dataclass
class RequestOutput:
    """`vllm.outputs.RequestOutput`."""

    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    prompt_logprobs: Any
    outputs: list[CompletionOutput]
    finished: bool = True


class _Namespace(types.SimpleNamespace):
    pass


class StandInLLM:
    """vLLM's `LLM(model=...)`, as TRL's colocate mode builds and drives it."""

    def __init__(self, model: str, max_model_len: int | None = None, **engine_args: Any) -> None:
        self.engine = sampling_engine(model)
        self.engine_args = engine_args
        self.generate_calls: list[int] = []  # prompts per call
        self.prefix_cache_resets = 0
        loaded = self.engine.model
        model_runner = _Namespace(model=_Namespace(load_weights=lambda weights: load_named_weights(loaded, weights)))
        self.llm_engine = _Namespace(
            model_config=_Namespace(max_model_len=max_model_len or loaded.config.max_position_embeddings,
                                    runner_type="generate"),
            model_executor=_Namespace(driver_worker=_Namespace(model_runner=model_runner)),
        )  # fmt: skip

    def generate(self, prompts: Any, sampling_params: SamplingParams | list[SamplingParams] | None = None, *,
                 use_tqdm: bool = True, lora_request: Any = None, priority: list[int] | None = None,
                 ) -> list[RequestOutput]:  # fmt: skip
        """`LLM.generate`: a list of `{"prompt_token_ids": ids}` prompts, one `SamplingParams` or one per prompt."""
        if not isinstance(prompts, list):
            prompts = [prompts]
        single = sampling_params or SamplingParams()
        params = sampling_params if isinstance(sampling_params, list) else [single] * len(prompts)
        if len(params) != len(prompts):
            raise ValueError("The lengths of prompts and sampling_params must be the same.")
        self.generate_calls.append(len(prompts))
        requests = []
        for prompt, param in zip(prompts, params):
            if param.n != 1:
                raise NotImplementedError("this stand-in samples n=1")
            requests.append(GenerationRequest(list(prompt["prompt_token_ids"]), int(param.max_tokens or 16),
                                              param.temperature, param.top_p, param.seed))  # fmt: skip
        outputs = []
        for index, (prompt, param, completion) in enumerate(zip(prompts, params, self.engine.generate(requests))):
            stop_ids = set(param.stop_token_ids or []) | set(self.engine.stop_ids)
            ids = cut_at_stop(completion.completion_ids, stop_ids)
            logprobs = None
            if param.logprobs is not None:
                logprobs = [{token: Logprob(value, rank=1)} for token, value in zip(ids, completion.logprobs)]
            stopped = bool(ids) and ids[-1] in stop_ids
            sample = CompletionOutput(0, "", ids, sum(completion.logprobs[: len(ids)]), logprobs,
                                      "stop" if stopped else "length")  # fmt: skip
            outputs.append(RequestOutput(str(index), None, list(prompt["prompt_token_ids"]), None, [sample]))
        return outputs

    def reset_prefix_cache(self) -> bool:
        self.prefix_cache_resets += 1
        return True


def vllm_module() -> types.ModuleType:
    """A `vllm` module holding the stand-ins, for `sys.modules` (what `from vllm import SamplingParams` finds)."""
    module = types.ModuleType("vllm")
    module.__spec__ = ModuleSpec("vllm", None)
    module.LLM = StandInLLM  # type: ignore[attr-defined]
    module.SamplingParams = SamplingParams  # type: ignore[attr-defined]
    module.RequestOutput = RequestOutput  # type: ignore[attr-defined]
    module.CompletionOutput = CompletionOutput  # type: ignore[attr-defined]
    return module


# --- TRL's VLLMGeneration ------------------------------------------------------------------------
class StandInVLLMGeneration(VLLMGeneration):
    """TRL's `VLLMGeneration` on the stand-ins: only `_init_vllm` differs; `sync_weights` calls are recorded."""

    server: StandInVLLMServer | None = None  # the server for server mode (set by the test)
    instances: list[StandInVLLMGeneration] = []

    def _init_vllm(self) -> None:
        self.syncs: list[bool] = []  # per sync: whether vLLM's weights equal the trainer's afterwards
        self.synced_sums: list[float] = []  # per sync: the sum of vLLM's weights afterwards
        StandInVLLMGeneration.instances.append(self)
        if self.mode == "server":
            assert self.server is not None, "set StandInVLLMGeneration.server first"
            base_url = self.server_base_url or f"http://{self.server_host}:{self.server_port}"
            StandInVLLMClient.server = self.server
            self.vllm_client = StandInVLLMClient(base_url=base_url, group_port=self.group_port,
                                                 connection_timeout=self.server_timeout)  # fmt: skip
            self.vllm_client.init_communicator(device=self.accelerator.device)
        elif self.mode == "colocate":
            self.llm = StandInLLM(model=self.model.name_or_path, max_model_len=self.max_model_length,
                                  tensor_parallel_size=self.tensor_parallel_size,
                                  max_num_seqs=self.max_num_seqs, logprobs_mode="processed_logprobs")  # fmt: skip
        else:
            raise ValueError(f"vllm_mode must be either 'server' or 'colocate', got '{self.mode}'.")

    @property
    def served_model(self) -> Any:
        """The model the stand-in vLLM samples from."""
        return self.server.engine.model if self.mode == "server" else self.llm.engine.model  # type: ignore[union-attr]

    def sync_weights(self) -> None:
        super().sync_weights()
        trained = dict(self.model.named_parameters())
        served = dict(self.served_model.named_parameters())
        self.syncs.append(all(torch.equal(trained[name].detach(), param.detach()) for name, param in served.items()))
        self.synced_sums.append(float(sum(param.detach().double().sum() for param in served.values())))


def install(monkeypatch: Any, server: StandInVLLMServer | None = None) -> None:
    """Make TRL build `StandInVLLMGeneration` when `use_vllm=True`, and `import vllm` find the stand-ins."""
    import trl.generation.vllm_client as vllm_client
    import trl.trainer.grpo_trainer as grpo_trainer

    StandInVLLMGeneration.server = server
    StandInVLLMGeneration.instances = []
    monkeypatch.setattr(grpo_trainer, "VLLMGeneration", StandInVLLMGeneration)
    monkeypatch.setattr(vllm_client, "is_vllm_available", lambda *args, **kwargs: True)
    monkeypatch.setitem(sys.modules, "vllm", vllm_module())
