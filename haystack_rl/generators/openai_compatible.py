"""OpenAICompatibleChatGenerator: a lean chat generator for many episodes at once on an OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import json
import weakref
from typing import Any

from haystack import component, default_from_dict, default_to_dict
from haystack.dataclasses import ChatMessage, ToolCall
from haystack.tools import ToolsType, flatten_tools_or_toolsets
from haystack.utils import Secret, deserialize_secrets_inplace


@component
class OpenAICompatibleChatGenerator:
    """
    A Haystack chat generator for OpenAI-compatible servers (vLLM, `transformers serve`, OpenAI), made for
    evaluation at high concurrency: one HTTP connection pool sized to the run (`max_connections`) per event loop,
    the openai SDK's retries (429 with Retry-After, 5xx, timeouts, dropped connections; `max_retries`) and errors
    (`RateLimitError`, `InternalServerError`, `BadRequestError`...), and the reply read straight from the JSON
    body (no response models built per request: that is most of the SDK's client-side CPU).

    Replies carry `meta` like Haystack's `OpenAIChatGenerator`: `model`, `index`, `finish_reason`, `usage`.
    Tool calls come back as `ToolCall`s; a call whose arguments are not JSON is listed in
    `meta["tool_call_errors"]` (a counted format error), never silently dropped.

    Usage example:
    ```python
    from haystack.dataclasses import ChatMessage
    from haystack_rl.generators import OpenAICompatibleChatGenerator
    from tools.testing import MockChatServer  # the repository's loopback server, standing in for vLLM here

    with MockChatServer("reverse_text") as server:
        generator = OpenAICompatibleChatGenerator(model="mock", api_base_url=server.base_url)
        reply = generator.run([ChatMessage.from_user("abc")])["replies"][0]
    assert reply.text == "<reversed_text>cba</reversed_text>" and reply.meta["finish_reason"] == "stop"
    ```

    :param model: The served model's name.
    :param api_base_url: The server's API root, e.g. "http://127.0.0.1:8000/v1".
    :param api_key: The API key (default: the `OPENAI_API_KEY` variable, or a placeholder for local servers).
    :param generation_kwargs: Defaults of each request: `max_tokens` (`max_new_tokens` is read as it),
        `temperature`, `top_p`, `seed`, any other field the server takes; a run's own override them key by key.
    :param timeout: Seconds per request.
    :param max_retries: Retries of a failed request (with the SDK's backoff, which honours Retry-After).
    :param max_connections: Size of the connection pool: the run's concurrency.
    """

    def __init__(
        self,
        model: str,
        api_base_url: str,
        api_key: Secret = Secret.from_env_var("OPENAI_API_KEY", strict=False),
        generation_kwargs: dict[str, Any] | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        max_connections: int = 64,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be >= 1")
        self.model = model
        self.api_base_url = api_base_url
        self.api_key = api_key
        self.generation_kwargs = dict(generation_kwargs or {})
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_connections = max_connections
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    def _client(self) -> Any:
        """The SDK client of the running event loop (an HTTP pool belongs to the loop that opened it)."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            import openai

            size = self.max_connections
            limits = _http().Limits(max_connections=size, max_keepalive_connections=size)
            client = openai.AsyncOpenAI(base_url=self.api_base_url, api_key=self.api_key.resolve_value() or "no-key",
                                        timeout=self.timeout, max_retries=self.max_retries,
                                        http_client=openai.DefaultAsyncHttpxClient(limits=limits))  # fmt: skip
            self._clients[loop] = client
        return client

    @component.output_types(replies=list[ChatMessage])
    def run(
        self,
        messages: list[ChatMessage],
        generation_kwargs: dict[str, Any] | None = None,
        tools: ToolsType | None = None,
    ) -> dict[str, Any]:
        """Blocking twin of `run_async`."""
        from haystack_rl.asyncio_utils import run_sync

        result: dict[str, Any] = run_sync(self.run_async(messages, generation_kwargs, tools))
        return result

    @component.output_types(replies=list[ChatMessage])
    async def run_async(
        self,
        messages: list[ChatMessage],
        generation_kwargs: dict[str, Any] | None = None,
        tools: ToolsType | None = None,
    ) -> dict[str, Any]:
        """One reply to `messages` (with `tools` offered to the model)."""
        body = {"model": self.model, "messages": [m.to_openai_dict_format() for m in messages],
                **_request_settings({**self.generation_kwargs, **(generation_kwargs or {})})}  # fmt: skip
        flat = flatten_tools_or_toolsets(tools)
        if flat:
            body["tools"] = [{"type": "function", "function": tool.tool_spec} for tool in flat]
        response = await self._client().post("/chat/completions", body=body, cast_to=_http().Response)
        return {"replies": [_reply(json.loads(response.content))]}

    async def close_async(self) -> None:
        """Close the running event loop's connection pool (a new one opens on the next request)."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.close()

    def to_dict(self) -> dict[str, Any]:
        """Serialize (the API key as a secret reference, never its value)."""
        return default_to_dict(self, model=self.model, api_base_url=self.api_base_url, api_key=self.api_key.to_dict(),
                               generation_kwargs=self.generation_kwargs, timeout=self.timeout,
                               max_retries=self.max_retries, max_connections=self.max_connections)  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OpenAICompatibleChatGenerator:
        """Deserialize."""
        deserialize_secrets_inplace(data["init_parameters"], keys=["api_key"])
        return default_from_dict(cls, data)


def _http() -> Any:
    """The HTTP library the openai SDK is built on (`httpx2` in SDK 3.x, `httpx` before)."""
    try:
        import httpx2

        return httpx2
    except ImportError:  # pragma: no cover - older SDKs
        import httpx

        return httpx


def _request_settings(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Generation settings as the chat-completions API names them (`max_new_tokens` -> `max_tokens`)."""
    settings = dict(kwargs)
    if "max_new_tokens" in settings:
        settings.setdefault("max_tokens", settings.pop("max_new_tokens"))
    return settings


def _reply(data: dict[str, Any]) -> ChatMessage:
    """The first choice of a chat-completions body as a Haystack reply."""
    choice = data["choices"][0]
    message = choice.get("message") or {}
    meta: dict[str, Any] = {"model": data.get("model"), "index": choice.get("index", 0),
                            "finish_reason": choice.get("finish_reason"), "usage": data.get("usage") or {}}  # fmt: skip
    calls, errors = [], []
    for index, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        try:
            arguments = json.loads(function.get("arguments") or "{}")
            if not isinstance(arguments, dict):
                raise ValueError(f"arguments are a {type(arguments).__name__}, not an object")
            calls.append(ToolCall(tool_name=function.get("name", ""), arguments=arguments, id=call.get("id")))
        except ValueError as error:
            errors.append(f"tool call {index}: {error}")
    if errors:
        meta["tool_call_errors"] = errors
    return ChatMessage.from_assistant(message.get("content"), tool_calls=calls or None, meta=meta)
