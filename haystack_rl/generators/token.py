"""TokenChatGenerator: a Haystack chat generator that returns exact token data, on any token-returning backend."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from typing import Any

from haystack import component, default_from_dict, default_to_dict, logging
from haystack.dataclasses import ChatMessage, ComponentInfo, FinishReason, StreamingChunk, ToolCallDelta
from haystack.dataclasses.streaming_chunk import StreamingCallbackT, select_streaming_callback
from haystack.tools import ToolsType, flatten_tools_or_toolsets
from haystack.utils import Secret, deserialize_callable, deserialize_secrets_inplace, serialize_callable

from haystack_rl.backends.base import Completion, GenerationBackend, GenerationRequest
from haystack_rl.chat import HISTORY_MODES, ChatFormat, ContextLengthError, HistoryMode, load_tokenizer, stop_token_ids
from haystack_rl.chat.tool_parsers import ToolCallParser, get_parser, parser_for

logger = logging.getLogger(__name__)

GENERATION_KEYS = ("max_new_tokens", "max_tokens", "temperature", "top_p", "seed")
DEFAULT_GENERATION_KWARGS: dict[str, Any] = {"max_new_tokens": 256, "temperature": 1.0, "top_p": 1.0}


@component
class TokenChatGenerator:
    """
    A chat generator that returns exact token data: token-in, token-out, on a local model or a token server.

    Each reply carries in `meta`: `prompt_ids` (the exact ids the model saw), `completion_ids` (the ids it
    sampled, the stop token included when it stopped), `logprobs` (each sampled token's log-prob under the
    sampling distribution used: after temperature and top-p; for greedy decoding, temperature 0, the model's
    unscaled log-prob), `finish_reason` ("stop" or "length"), `model` and `usage`.

    The chat template renders locally (`haystack_rl.chat.ChatFormat`): an earlier reply's ids are never
    re-tokenized, so each turn's prompt extends the previous prompt + completion; `history` says what happens
    when the template rewrites history ("keep" the history as generated, or "strict": raise `ChatTemplateError`).
    Generation runs on a backend (`haystack_rl.backends`): by default the in-process engine on `model` (a batched
    sampler: concurrent `run_async` calls share forward passes, up to `max_batch_size`); with `base_url`, an
    OpenAI-compatible server that takes and returns token ids (vLLM's), with the tokenizer of `tokenizer` (or of
    `model`, when it is a local directory); in training, the trainer's backend (`use_backend`).

    With `tools`, `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` blocks in the completion become
    `ToolCall`s on the reply, read in the format of the model's chat template (`tool_parser`); a block that
    looks like a call but does not parse stays in the text and is listed in `meta["tool_call_errors"]`.
    `streaming_callback` gets the reply as `StreamingChunk`s once it is complete (its text, then each tool call).

    Usage example:
    ```python
    from haystack.dataclasses import ChatMessage
    from haystack_rl.generators import TokenChatGenerator

    generator = TokenChatGenerator(model="tiny", generation_kwargs={"max_new_tokens": 16})
    generator.warm_up()
    reply = generator.run([ChatMessage.from_user("Hello!")], generation_kwargs={"seed": 0})["replies"][0]
    assert len(reply.meta["completion_ids"]) == len(reply.meta["logprobs"]) <= 16
    ```
    """

    def __init__(
        self,
        model: str = "tiny",
        generation_kwargs: dict[str, Any] | None = None,
        streaming_callback: StreamingCallbackT | None = None,
        history: HistoryMode = "keep",
        chat_template: str | None = None,
        device: str = "auto",
        max_batch_size: int = 32,
        base_url: str | None = None,
        tokenizer: str | None = None,
        api_key: Secret = Secret.from_env_var("OPENAI_API_KEY", strict=False),
        timeout: float = 60.0,
        max_retries: int = 2,
        tool_parser: str | None = None,
    ) -> None:
        """
        Create the generator (the tokenizer and model load in `warm_up`).

        :param model: "tiny" (the embedded model, built locally) or a local Hugging Face model directory; with
            `base_url`, the served model's name.
        :param generation_kwargs: Defaults for each reply: `max_new_tokens` (or `max_tokens`; 256), `temperature`
            (1.0; 0 means greedy), `top_p` (1.0), `seed`. A run's `generation_kwargs` override them key by key.
        :param streaming_callback: Called with the reply's `StreamingChunk`s (see the class docstring).
        :param history: "keep" or "strict" (see the class docstring).
        :param chat_template: A Jinja chat template (text, or path to a `.jinja` file) replacing the tokenizer's.
        :param device: Torch device of the in-process engine ("auto": "cuda" when a GPU is visible, else "cpu").
        :param max_batch_size: Most concurrent requests per forward pass of the in-process engine.
        :param base_url: An OpenAI-compatible server's API root that returns token ids (e.g. vLLM's
            "http://localhost:8000/v1"); None: the in-process engine.
        :param tokenizer: With `base_url`: the local model directory whose tokenizer and chat template to use
            (default: `model`).
        :param api_key: With `base_url`: the server's API key.
        :param timeout: With `base_url`: seconds per request.
        :param max_retries: With `base_url`: retries of a failed request.
        :param tool_parser: How tool calls are read from a completion: a name of
            `haystack_rl.chat.tool_parsers.TOOL_PARSER_NAMES`, or None to pick the format the chat template
            renders (`parser_for`: Hermes/Qwen, Qwen 3.5 XML, Llama 3 JSON, Mistral, GPT-OSS, or the tokenizer's
            response template).
        """
        if history not in HISTORY_MODES:
            raise ValueError(f"history must be 'keep' or 'strict', not {history!r}")
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")
        self.generation_kwargs = _normalized(generation_kwargs, "TokenChatGenerator(generation_kwargs=...)")
        if int(self.generation_kwargs.get("max_new_tokens", 1)) < 1:
            raise ValueError("max_new_tokens must be >= 1")
        self.model = model
        self.streaming_callback = streaming_callback
        self.history = history
        self.chat_template = chat_template
        self.device = device
        self.max_batch_size = max_batch_size
        self.base_url = base_url
        self.tokenizer_source = tokenizer
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.tool_parser = tool_parser
        self._parser: ToolCallParser | None = None
        self._backend: GenerationBackend | None = None
        self._chat: ChatFormat | None = None
        self._lock = threading.Lock()

    # --- loading ------------------------------------------------------------------------------
    def warm_up(self) -> None:
        """Load the tokenizer and the backend (once; safe to call from several threads)."""
        with self._lock:
            if self._backend is not None:
                return
            if self.base_url is None:
                from haystack_rl.engine import Engine

                tokenizer = load_tokenizer(self.model)
                backend: GenerationBackend = Engine.load(self.model, self.device, tokenizer, self.max_batch_size)
            else:
                from haystack_rl.backends.openai_tokens import OpenAITokenBackend

                tokenizer = load_tokenizer(self.tokenizer_source or self.model)
                remote = OpenAITokenBackend(self.base_url, self.model, _stop_ids_of(tokenizer),
                                            self.api_key.resolve_value(), self.timeout, self.max_retries)  # fmt: skip
                remote.connect()
                backend = remote
            self._use(backend, tokenizer)

    def use_model(self, model: Any, tokenizer: Any) -> None:
        """Generate in-process with an in-memory model (e.g. the one a trainer updates), used as it is."""
        from haystack_rl.engine import Engine

        self.use_backend(Engine(model, tokenizer, self.max_batch_size), tokenizer)

    def use_backend(self, backend: GenerationBackend, tokenizer: Any) -> None:
        """Generate on `backend` (e.g. a trainer's, `backends.trainer_backend`), rendering with `tokenizer`."""
        with self._lock:
            self._use(backend, tokenizer)

    def _use(self, backend: GenerationBackend, tokenizer: Any) -> None:
        self._chat = ChatFormat(tokenizer, self.chat_template, self.history, backend.stop_ids, repr(self.model))
        self._backend = backend
        self._parser = None

    @property
    def parser(self) -> ToolCallParser:
        """The tool-call parser (after `warm_up`): the one named in `tool_parser`, or the chat template's format."""
        if self._parser is None:
            if self.tool_parser is not None:
                self._parser = get_parser(self.tool_parser)
            elif self.chat_template is None and getattr(self.chat.tokenizer, "response_template", None):
                self._parser = parser_for(self.chat.tokenizer)
            else:
                self._parser = parser_for(self.chat.template)
        return self._parser

    @property
    def backend(self) -> GenerationBackend:
        """The backend replies are generated on (after `warm_up`)."""
        self._require_warm()
        assert self._backend is not None
        return self._backend

    @property
    def chat(self) -> ChatFormat:
        """The chat formatting: template, token-in/token-out prompt building (after `warm_up`)."""
        self._require_warm()
        assert self._chat is not None
        return self._chat

    @property
    def tokenizer(self) -> Any:
        """The loaded tokenizer (after `warm_up`)."""
        return self.chat.tokenizer

    def _require_warm(self) -> None:
        if self._backend is None:
            raise RuntimeError("TokenChatGenerator is not warmed up: call warm_up() first")

    # --- prompts ------------------------------------------------------------------------------
    def render(self, messages: list[ChatMessage], tools: ToolsType | None = None) -> str:
        """The chat template's text for `messages` plus the generation prompt."""
        return self.chat.render(messages, tools)

    def build_prompt(self, messages: list[ChatMessage], tools: ToolsType | None = None) -> list[int]:
        """The exact prompt ids of the next reply (see `haystack_rl.chat.ChatFormat.build_prompt`)."""
        return self.chat.build_prompt(messages, tools)

    # --- running ------------------------------------------------------------------------------
    @component.output_types(replies=list[ChatMessage])
    def run(
        self,
        messages: list[ChatMessage],
        generation_kwargs: dict[str, Any] | None = None,
        tools: ToolsType | None = None,
        streaming_callback: StreamingCallbackT | None = None,
    ) -> dict[str, Any]:
        """
        Generate one reply.

        :param messages: The conversation (earlier replies of this generator keep their token data in meta).
        :param generation_kwargs: Overrides of the init `generation_kwargs`, key by key.
        :param tools: Haystack tools (or toolsets) rendered into the prompt; enables tool-call parsing.
        :param streaming_callback: Overrides the init `streaming_callback`.
        :returns: `{"replies": [ChatMessage]}`, with token data in the reply's meta.
        """
        callback = select_streaming_callback(self.streaming_callback, streaming_callback, requires_async=False)
        self.warm_up()
        request = self._request(self.build_prompt(messages, tools), generation_kwargs)
        (completion,) = self.backend.generate([request])
        reply = self._reply(request, completion, tools)
        for chunk in self._chunks(reply) if callback else []:
            callback(chunk)  # type: ignore[misc]
        return {"replies": [reply]}

    @component.output_types(replies=list[ChatMessage])
    async def run_async(
        self,
        messages: list[ChatMessage],
        generation_kwargs: dict[str, Any] | None = None,
        tools: ToolsType | None = None,
        streaming_callback: StreamingCallbackT | None = None,
    ) -> dict[str, Any]:
        """Async twin of `run`: concurrent calls are batched by the backend."""
        import asyncio

        callback = select_streaming_callback(self.streaming_callback, streaming_callback, requires_async=True)
        if self._backend is None:
            await asyncio.to_thread(self.warm_up)
        request = self._request(self.build_prompt(messages, tools), generation_kwargs)
        completion = await self.backend.generate_async(request)
        reply = self._reply(request, completion, tools)
        for chunk in self._chunks(reply) if callback else []:
            result = callback(chunk)  # type: ignore[misc]
            if asyncio.iscoroutine(result):
                await result
        return {"replies": [reply]}

    def _request(self, prompt_ids: list[int], generation_kwargs: dict[str, Any] | None) -> GenerationRequest:
        kwargs = {**DEFAULT_GENERATION_KWARGS, **self.generation_kwargs,
                  **_normalized(generation_kwargs, "generation_kwargs")}  # fmt: skip
        max_new = int(kwargs["max_new_tokens"])
        context = self.backend.max_context_length
        if context is not None:
            if len(prompt_ids) >= context:
                raise ContextLengthError(f"prompt of {len(prompt_ids)} tokens does not fit the model's {context}")
            max_new = min(max_new, context - len(prompt_ids))
        seed = kwargs.get("seed")
        return GenerationRequest(prompt_ids=prompt_ids, max_new_tokens=max(1, max_new),
                                 temperature=float(kwargs["temperature"]), top_p=float(kwargs["top_p"]),
                                 seed=None if seed is None else int(seed))  # fmt: skip

    def _reply(self, request: GenerationRequest, completion: Completion, tools: ToolsType | None) -> ChatMessage:
        ids = [int(i) for i in completion.completion_ids]
        text = self.chat.reply_text(ids, completion.finish_reason)
        meta: dict[str, Any] = {
            "model": self.model,
            "prompt_ids": request.prompt_ids,
            "completion_ids": ids,
            "logprobs": list(completion.logprobs),
            "finish_reason": completion.finish_reason,
            "usage": {
                "prompt_tokens": len(request.prompt_ids),
                "completion_tokens": len(ids),
                "total_tokens": len(request.prompt_ids) + len(ids),
            },
        }
        if tools:
            prefix = "call_" + hashlib.sha256(repr((request.prompt_ids, ids)).encode()).hexdigest()[:12]
            specs = [tool.tool_spec for tool in flatten_tools_or_toolsets(tools)]
            parsed = self.parser.parse(text, id_prefix=prefix, tools=specs)
            if parsed.errors:
                meta["tool_call_errors"] = parsed.errors
            if parsed.tool_calls:
                return ChatMessage.from_assistant(parsed.text or None, tool_calls=parsed.tool_calls, meta=meta)
        return ChatMessage.from_assistant(text, meta=meta)

    def _chunks(self, reply: ChatMessage) -> list[StreamingChunk]:
        """The reply as streaming chunks: its text, then one per tool call; the last carries the finish reason."""
        info = ComponentInfo.from_component(self)
        meta = {"model": self.model}
        chunks = []
        if reply.text or not reply.tool_calls:
            chunks.append(StreamingChunk(content=reply.text or "", meta=meta, component_info=info, index=0, start=True))
        for index, call in enumerate(reply.tool_calls, start=len(chunks)):
            arguments = json.dumps(call.arguments)
            delta = ToolCallDelta(index=index, tool_name=call.tool_name, arguments=arguments, id=call.id)
            chunks.append(StreamingChunk(content="", meta=meta, component_info=info, index=index, start=True,
                                         tool_calls=[delta]))  # fmt: skip
        reason: FinishReason = "tool_calls" if reply.tool_calls else reply.meta["finish_reason"]
        return [*chunks[:-1], dataclasses.replace(chunks[-1], finish_reason=reason)]

    # --- serialization ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Serialize to a dict (init parameters only)."""
        return default_to_dict(
            self,
            model=self.model,
            generation_kwargs=self.generation_kwargs,
            streaming_callback=serialize_callable(self.streaming_callback) if self.streaming_callback else None,
            history=self.history,
            chat_template=self.chat_template,
            device=self.device,
            max_batch_size=self.max_batch_size,
            base_url=self.base_url,
            tokenizer=self.tokenizer_source,
            api_key=self.api_key.to_dict(),
            timeout=self.timeout,
            max_retries=self.max_retries,
            tool_parser=self.tool_parser,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenChatGenerator:
        """Deserialize from `to_dict` output."""
        init = dict(data.get("init_parameters") or {})
        deserialize_secrets_inplace(init, keys=["api_key"])
        if init.get("streaming_callback"):
            init["streaming_callback"] = deserialize_callable(init["streaming_callback"])
        return default_from_dict(cls, {**data, "init_parameters": init})


def _normalized(kwargs: dict[str, Any] | None, where: str) -> dict[str, Any]:
    """Generation kwargs checked against the supported keys, `max_tokens` spelled `max_new_tokens`."""
    kwargs = dict(kwargs or {})
    unknown = sorted(set(kwargs) - set(GENERATION_KEYS))
    if unknown:
        raise ValueError(f"{where}: unsupported generation_kwargs {unknown}; supported: {list(GENERATION_KEYS)}")
    if "max_tokens" in kwargs:  # OpenAI's name; `max_new_tokens` wins when both are given
        max_tokens = kwargs.pop("max_tokens")
        kwargs.setdefault("max_new_tokens", max_tokens)
    return kwargs


def _stop_ids_of(tokenizer: Any) -> frozenset[int]:
    """The stop ids of a tokenizer and of the generation config next to it (when it has one on disk)."""
    from transformers import GenerationConfig

    try:
        config = GenerationConfig.from_pretrained(tokenizer.name_or_path)
    except (OSError, ValueError):
        config = None
    return stop_token_ids(tokenizer, config)
