"""The backend interface for episodes: prompt token ids and sampling settings in; completion ids and logprobs out."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class GenerationRequest:
    """
    One completion to sample.

    :param prompt_ids: The exact prompt token ids (token-in).
    :param max_new_tokens: Most tokens to generate.
    :param temperature: Sampling temperature; 0 means greedy.
    :param top_p: Nucleus-sampling threshold (1.0 = off).
    :param seed: Seeds this request's own random stream (None: unseeded).
    """

    prompt_ids: list[int]
    max_new_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None


@dataclass
class Completion:
    """
    What a backend sampled for one request.

    :param completion_ids: The sampled ids, the stop token included when the completion stopped on one.
    :param logprobs: The log-prob of each sampled id under the sampling distribution used (after temperature and
        top-p; for greedy decoding the model's unscaled log-prob).
    :param finish_reason: "stop" (a stop token ended it) or "length" (`max_new_tokens` reached).
    """

    completion_ids: list[int]
    logprobs: list[float]
    finish_reason: str = "length"


@runtime_checkable
class GenerationBackend(Protocol):
    """
    What generates replies for a token-returning chat generator: the in-process engine, TRL's vLLM, an
    OpenAI-compatible server that returns token ids. Chat formatting happens above it, once, for all of them.

    `stop_ids` are the tokens that end a completion; `max_context_length` is the model's context (None: unknown).
    `generate` runs a list of requests and blocks; `generate_async` runs one, batched with concurrent calls as
    the backend likes.
    """

    stop_ids: frozenset[int]
    max_context_length: int | None

    def generate(self, requests: list[GenerationRequest]) -> list[Completion]:
        """One completion per request, in order (blocking)."""
        ...

    async def generate_async(self, request: GenerationRequest) -> Completion:
        """One completion (concurrent calls may share a batch)."""
        ...


def finish_reason(completion_ids: list[int], stop_ids: Collection[int]) -> str:
    """The finish reason of a completion: "stop" when it ends with a stop token, else "length"."""
    return "stop" if completion_ids and completion_ids[-1] in stop_ids else "length"
