"""An OpenAI-compatible server that takes and returns token ids (vLLM's `/v1/completions`) as a generation backend."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Iterable
from typing import Any

from haystack_rl.backends.base import Completion, GenerationRequest, finish_reason

#: A placeholder key for servers that check none (vLLM without `--api-key`); the openai SDK insists on one.
NO_API_KEY = "EMPTY"


class OpenAITokenBackend:
    """
    Token ids over HTTP: each request goes to the server's `/v1/completions` with the prompt as a list of ints,
    and the completion comes back as token ids with the log-prob of each sampled token.

    The request is vLLM's documented completions API: `prompt` a list of token ids, `logprobs: 0`,
    `return_token_ids: true` (vLLM >= 0.10.2: `choices[].token_ids`), `return_tokens_as_token_ids: true`
    (logprob tokens as `"token_id:<id>"`), `stop_token_ids`, `seed`. It is the API TRL's `VLLMClient.generate`
    uses against `trl vllm-serve` / `vllm serve`, so a training server serves exact-token evaluation too.
    Start the server with `--logprobs-mode processed_logprobs` for log-probs after temperature and top-p, as the
    in-process engine reports them. Errors are the openai SDK's (an HTTP 400 about the context length is one
    the episode runner recognises).

    Usage example:
    ```python
    from haystack_rl.backends import OpenAITokenBackend

    backend = OpenAITokenBackend("http://localhost:8000/v1", model="Qwen/Qwen3-0.6B", stop_ids=[151645])
    # completion = await backend.generate_async(GenerationRequest(prompt_ids=[...], max_new_tokens=64, seed=0))
    ```
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        stop_ids: Iterable[int],
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        max_context_length: int | None = None,
    ) -> None:
        """
        :param base_url: The server's OpenAI API root, e.g. "http://localhost:8000/v1".
        :param model: The served model's name.
        :param stop_ids: The tokens that end a completion (sent as `stop_token_ids`).
        :param api_key: The server's API key (None: a placeholder, for servers that check none).
        :param timeout: Seconds per request.
        :param max_retries: Retries of a failed request (the openai SDK's backoff).
        :param max_context_length: The model's context (None: asked from the server's `/v1/models`, see `connect`).
        """
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.stop_ids = frozenset(int(i) for i in stop_ids)
        self.max_context_length = max_context_length
        self._client_kwargs: dict[str, Any] = {"base_url": self.base_url, "api_key": api_key or NO_API_KEY,
                                               "timeout": timeout, "max_retries": max_retries}  # fmt: skip
        self._sync_client: Any = None
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def connect(self) -> None:
        """
        Ask the server for its models: check that `model` is served, and take its context length (vLLM reports
        `max_model_len`). An unreachable server is left to the requests (and their retries).

        :raises ValueError: when the server lists models and `model` is not one of them.
        """
        import openai

        try:
            served = list(self._client().models.list())
        except (openai.APIConnectionError, openai.APIStatusError):
            return
        names = [entry.id for entry in served]
        if names and self.model not in names:
            raise ValueError(f"the server at {self.base_url} serves {names}, not {self.model!r}: pass one of them as "
                             "model (and the local tokenizer directory as tokenizer)")  # fmt: skip
        for entry in served:
            length = getattr(entry, "max_model_len", None)
            if entry.id == self.model and isinstance(length, int) and self.max_context_length is None:
                self.max_context_length = length

    def generate(self, requests: list[GenerationRequest]) -> list[Completion]:
        """One completion per request, one HTTP request each, in turn (blocking)."""
        return [self._completion(self._client().completions.create(**self._body(r))) for r in requests]

    async def generate_async(self, request: GenerationRequest) -> Completion:
        """One completion; concurrent calls are concurrent HTTP requests (the server batches them)."""
        response = await self._async_client().completions.create(**self._body(request))
        return self._completion(response)

    def _body(self, request: GenerationRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": list(request.prompt_ids),
            "max_tokens": request.max_new_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "logprobs": 0,
            "extra_body": {
                "return_token_ids": True,
                "return_tokens_as_token_ids": True,
                "stop_token_ids": sorted(self.stop_ids),
            },
        }
        if request.seed is not None:
            body["seed"] = request.seed
        return body

    def _completion(self, response: Any) -> Completion:
        """The token ids and log-probs of a completions response's first choice."""
        if not response.choices:
            raise RuntimeError(f"the server at {self.base_url} returned no choice")
        choice = response.choices[0]
        logprobs = getattr(choice, "logprobs", None)
        tokens = list(getattr(logprobs, "tokens", None) or [])
        values = list(getattr(logprobs, "token_logprobs", None) or [])
        ids = getattr(choice, "token_ids", None)
        if ids is None and tokens and all(str(t).startswith("token_id:") for t in tokens):
            ids = [int(str(t).removeprefix("token_id:")) for t in tokens]
        if ids is None or len(values) != len(ids):
            raise RuntimeError(
                f"the server at {self.base_url} returned no token ids with log-probs: it needs vLLM's completions "
                "API (return_token_ids, return_tokens_as_token_ids, logprobs), e.g. vLLM >= 0.10.2"
            )
        ids = [int(i) for i in ids]
        reason = choice.finish_reason
        if reason not in ("stop", "length"):
            reason = finish_reason(ids, self.stop_ids)
        return Completion(ids, [float("-inf") if v is None else float(v) for v in values], reason)

    def _client(self) -> Any:
        with self._lock:
            if self._sync_client is None:
                from openai import OpenAI

                self._sync_client = OpenAI(**self._client_kwargs)
            return self._sync_client

    def _async_client(self) -> Any:
        """One client per event loop (its connection pool belongs to the loop)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._async_clients.get(loop)
            if client is None:
                from openai import AsyncOpenAI

                client = self._async_clients[loop] = AsyncOpenAI(**self._client_kwargs)
            return client
