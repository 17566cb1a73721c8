"""TransformersChatGenerator: a local Hugging Face causal LM as a token-in, token-out Haystack chat generator."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import os
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from haystack import component, default_from_dict, default_to_dict, logging
from haystack.dataclasses import ChatMessage
from haystack.tools import ToolsType, flatten_tools_or_toolsets

from haystack_rl.generators.tool_calls import parse_tool_calls
from haystack_rl.models.tiny import resolve_model

logger = logging.getLogger(__name__)

HistoryMode = Literal["keep", "strict"]
_GENERATION_KEYS = ("max_new_tokens", "max_tokens", "temperature", "top_p", "seed")
_STUB_MARKER = "HAYSTACK_RL_HISTORY_STUB_7F3A"
_BATCH_WINDOW_S = 0.002
_MIN_SHARED_PREFIX = 16  # fewer common prompt tokens than this: prefill every row in full


class ChatTemplateError(ValueError):
    """The chat template renders the conversation's history differently from what the model saw."""


class ContextLengthError(ValueError):
    """The conversation no longer fits the model's context window (an episode's runner ends it there)."""


@dataclass
class _Request:
    prompt_ids: list[int]
    max_new_tokens: int
    temperature: float
    top_p: float
    seed: int | None


@dataclass
class _Result:
    completion_ids: list[int]
    logprobs: list[float]
    finish_reason: str


@component
class TransformersChatGenerator:
    """
    A local Hugging Face causal LM as a Haystack chat generator that returns exact token data.

    Each reply carries in `meta`: `prompt_ids` (the exact ids the model saw), `completion_ids` (the ids
    it sampled, EOS included when it stopped), `logprobs` (the log-prob of each sampled token under the
    sampling distribution actually used: after temperature and top-p; for greedy decoding, temperature 0,
    the model's unscaled log-prob), `finish_reason` ("stop" or "length"), `model` and `usage`.

    Token-in, token-out: when the conversation holds an earlier reply of this generator (its meta has
    `prompt_ids` and `completion_ids`), the new prompt is those ids followed by the ids of only the newly
    rendered text; the history is never re-tokenized, so every turn's prompt extends the previous prompt +
    completion. If the chat template rewrites history (e.g. Qwen3 templates strip earlier `<think>` blocks),
    `history="keep"` renders only the new messages (after a neutral stub conversation) and keeps the history
    as generated, while `history="strict"` raises `ChatTemplateError`.

    Concurrent `run_async` calls (e.g. from many rollouts) are gathered into one batched forward pass of up to
    `max_batch_size` requests (left padding, KV cache), run in a worker thread. The batch's common prompt
    prefix (a group's rollouts share their whole first prompt, all of them the system prompt and tool schema) is
    prefilled once, the KV cache is preallocated where the model supports it, and finished rows leave the batch.
    Each request's `seed` seeds its own random stream, so a seeded request is reproducible whatever else shares
    its batch (up to float noise from padding, which practically never changes a sampled token).

    With `tools`, `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` blocks in the completion become
    `ToolCall`s on the reply; a malformed block stays in the text and is listed in `meta["tool_call_errors"]`.

    Usage example:
    ```python
    from haystack.dataclasses import ChatMessage
    from haystack_rl.generators import TransformersChatGenerator

    generator = TransformersChatGenerator(model="tiny", max_new_tokens=16)
    generator.warm_up()
    reply = generator.run([ChatMessage.from_user("Hello!")], generation_kwargs={"seed": 0})["replies"][0]
    assert len(reply.meta["completion_ids"]) == len(reply.meta["logprobs"]) <= 16
    ```
    """

    def __init__(
        self,
        model: str = "tiny",
        max_new_tokens: int = 256,
        temperature: float = 1.0,
        top_p: float = 1.0,
        history: HistoryMode = "keep",
        max_batch_size: int = 32,
        device: str = "auto",
        chat_template: str | None = None,
    ) -> None:
        """
        Create the generator (the model loads in `warm_up`).

        :param model: "tiny" (the embedded model, built locally) or a local Hugging Face model directory.
        :param max_new_tokens: Default cap on generated tokens per reply.
        :param temperature: Default sampling temperature; 0 means greedy.
        :param top_p: Default nucleus-sampling threshold (1.0 = off).
        :param history: "keep" (keep the history as generated when the template rewrites it) or "strict"
            (raise `ChatTemplateError` instead).
        :param max_batch_size: Most concurrent `run_async` requests batched into one forward pass.
        :param device: Torch device, e.g. "cpu" or "cuda"; "auto": "cuda" when a GPU is visible, else "cpu".
        :param chat_template: A Jinja chat template (text, or path to a `.jinja` file) replacing the tokenizer's.
        """
        if history not in ("keep", "strict"):
            raise ValueError(f"history must be 'keep' or 'strict', not {history!r}")
        if max_batch_size < 1 or max_new_tokens < 1:
            raise ValueError("max_batch_size and max_new_tokens must be >= 1")
        self.model = model
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.history = history
        self.max_batch_size = max_batch_size
        self.device = device
        self.chat_template = chat_template
        self._model: Any = None
        self._tokenizer: Any = None
        self._template: str | None = None
        self._template_name = ""
        self._stop_ids: set[int] = set()
        self._pad_id = 0
        self._max_positions: int | None = None
        self._warm_lock = threading.Lock()
        self._generate_lock = threading.Lock()
        self._batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _MicroBatcher] = (
            weakref.WeakKeyDictionary()
        )
        self._batchers_lock = threading.Lock()

    # --- loading ------------------------------------------------------------------------------
    def warm_up(self) -> None:
        """Load the tokenizer and model (once; safe to call from several threads)."""
        with self._warm_lock:
            if self._model is not None:
                return
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            path = resolve_model(self.model)
            tokenizer = AutoTokenizer.from_pretrained(path)
            model: Any = AutoModelForCausalLM.from_pretrained(path)
            device = self.device
            if device == "auto":
                device = "cuda" if torch.cuda.is_available() else "cpu"
            self._use(model.to(torch.device(device)).eval(), tokenizer)

    def use_model(self, model: Any, tokenizer: Any) -> None:
        """
        Generate with an in-memory model (e.g. the one a trainer is updating) instead of loading `model`.

        The model is used as it is: its current weights, device and train/eval mode are not changed
        (sampling runs under `torch.inference_mode()`).
        """
        with self._warm_lock:
            self._use(model, tokenizer)

    def _use(self, model: Any, tokenizer: Any) -> None:
        """Take `model` and `tokenizer` as the ones to generate with (stop and pad ids from them)."""
        template, name = self._load_template(tokenizer)
        eos = model.generation_config.eos_token_id
        stop_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if tokenizer.eos_token_id is not None:
            stop_ids.add(tokenizer.eos_token_id)
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = model.generation_config.pad_token_id
        self._pad_id = int(pad if pad is not None else min(stop_ids, default=0))
        self._stop_ids = stop_ids
        self._max_positions = getattr(model.config, "max_position_embeddings", None)
        self._tokenizer, self._template, self._template_name = tokenizer, template, name
        self._model = model

    def _load_template(self, tokenizer: Any) -> tuple[str, str]:
        if self.chat_template is not None:
            candidate = Path(self.chat_template)
            if "{" not in self.chat_template and candidate.is_file():
                return candidate.read_text(encoding="utf-8"), str(candidate)
            return self.chat_template, "the chat_template given to TransformersChatGenerator"
        template = tokenizer.chat_template
        if not isinstance(template, str):
            raise ChatTemplateError(f"model {self.model!r} has no (single) chat template; pass chat_template=...")
        return template, f"the chat template of model {self.model!r}"

    @property
    def tokenizer(self) -> Any:
        """The loaded tokenizer (after `warm_up`)."""
        self._require_warm()
        return self._tokenizer

    def _require_warm(self) -> None:
        if self._model is None:
            raise RuntimeError("TransformersChatGenerator is not warmed up: call warm_up() first")

    # --- prompt building ----------------------------------------------------------------------
    def render(self, messages: list[ChatMessage], tools: ToolsType | None = None) -> str:
        """The chat template's text for `messages` plus the generation prompt."""
        self._require_warm()
        return self._render([to_hf_message(m) for m in messages], tool_specs(tools))

    def _render(self, conversation: list[dict[str, Any]], tool_specs: list[dict[str, Any]] | None) -> str:
        text = self._tokenizer.apply_chat_template(
            conversation, tools=tool_specs, chat_template=self._template, add_generation_prompt=True, tokenize=False
        )
        return str(text)

    def _encode(self, text: str) -> list[int]:
        return list(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def _decode(self, ids: list[int]) -> str:
        return str(self._tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False))

    def build_prompt(self, messages: list[ChatMessage], tools: ToolsType | None = None) -> list[int]:
        """
        The exact prompt ids for the next reply (token-in, token-out; see the class docstring).

        :raises ChatTemplateError: with `history="strict"`, when the template rewrites earlier turns.
        """
        self._require_warm()
        if not messages:
            raise ValueError("messages is empty")
        conversation = [to_hf_message(m) for m in messages]
        specs = tool_specs(tools)
        rendered = self._render(conversation, specs)
        anchor = _last_tokenized_reply(messages)
        if anchor is None:
            return self._encode(rendered)
        meta = messages[anchor].meta
        previous_completion = [int(i) for i in meta["completion_ids"]]
        seen_ids = [int(i) for i in meta["prompt_ids"]] + previous_completion
        seen = self._decode(seen_ids)
        if rendered.startswith(seen):
            return seen_ids + self._encode(rendered[len(seen) :])
        if self.history == "strict":
            at = next((i for i, (a, b) in enumerate(zip(seen, rendered)) if a != b), min(len(seen), len(rendered)))
            raise ChatTemplateError(
                f"{self._template_name} rewrites the conversation history: at character {at}, the model saw "
                f"{seen[max(0, at - 40) : at + 60]!r} but the template now renders "
                f"{rendered[max(0, at - 40) : at + 60]!r}. Use history='keep' to keep the history as generated."
            )
        return seen_ids + self._encode(self._suffix_after_stub(conversation, anchor, specs, previous_completion))

    def _suffix_after_stub(
        self,
        conversation: list[dict[str, Any]],
        anchor: int,
        tool_specs: list[dict[str, Any]] | None,
        previous_completion: list[int],
    ) -> str:
        """The text the template renders for the messages after `anchor`, when they follow a neutral stub turn."""
        stub: list[dict[str, Any]] = []
        if conversation[0]["role"] == "system" and anchor > 0:
            stub.append(conversation[0])
        stub += [{"role": "user", "content": "..."}, {"role": "assistant", "content": _STUB_MARKER}]
        rendered = self._render(stub + conversation[anchor + 1 :], tool_specs)
        at = rendered.find(_STUB_MARKER)
        if at < 0:
            raise ChatTemplateError(f"{self._template_name} dropped the content of an assistant turn")
        after = rendered[at + len(_STUB_MARKER) :]
        if previous_completion and previous_completion[-1] in self._stop_ids:
            stop_text = self._decode(previous_completion[-1:])
            if after.startswith(stop_text):  # the model already wrote the end of its turn
                after = after[len(stop_text) :]
        return after

    # --- running ------------------------------------------------------------------------------
    def _request(self, prompt_ids: list[int], generation_kwargs: dict[str, Any] | None) -> _Request:
        kwargs = dict(generation_kwargs or {})
        unknown = sorted(set(kwargs) - set(_GENERATION_KEYS))
        if unknown:
            raise ValueError(f"unsupported generation_kwargs {unknown}; supported: {list(_GENERATION_KEYS)}")
        max_new = int(kwargs.get("max_new_tokens", kwargs.get("max_tokens", self.max_new_tokens)))
        if self._max_positions is not None:
            if len(prompt_ids) >= self._max_positions:
                raise ContextLengthError(
                    f"prompt of {len(prompt_ids)} tokens does not fit the model's {self._max_positions}"
                )
            max_new = min(max_new, self._max_positions - len(prompt_ids))
        seed = kwargs.get("seed")
        return _Request(
            prompt_ids=prompt_ids,
            max_new_tokens=max(1, max_new),
            temperature=float(kwargs.get("temperature", self.temperature)),
            top_p=float(kwargs.get("top_p", self.top_p)),
            seed=None if seed is None else int(seed),
        )

    def _reply(self, request: _Request, result: _Result, tools: ToolsType | None) -> ChatMessage:
        ids = result.completion_ids
        body = ids[:-1] if result.finish_reason == "stop" else ids
        text = self._decode(body)
        meta: dict[str, Any] = {
            "model": self.model,
            "prompt_ids": request.prompt_ids,
            "completion_ids": ids,
            "logprobs": result.logprobs,
            "finish_reason": result.finish_reason,
            "usage": {
                "prompt_tokens": len(request.prompt_ids),
                "completion_tokens": len(ids),
                "total_tokens": len(request.prompt_ids) + len(ids),
            },
        }
        if tools:
            prefix = "call_" + hashlib.sha256(repr((request.prompt_ids, ids)).encode()).hexdigest()[:12]
            parsed = parse_tool_calls(text, id_prefix=prefix)
            if parsed.errors:
                meta["tool_call_errors"] = parsed.errors
            if parsed.tool_calls:
                return ChatMessage.from_assistant(parsed.text or None, tool_calls=parsed.tool_calls, meta=meta)
        return ChatMessage.from_assistant(text, meta=meta)

    @component.output_types(replies=list[ChatMessage])
    def run(
        self,
        messages: list[ChatMessage],
        generation_kwargs: dict[str, Any] | None = None,
        tools: ToolsType | None = None,
    ) -> dict[str, Any]:
        """
        Generate one reply.

        :param messages: The conversation (earlier replies of this generator keep their token data in meta).
        :param generation_kwargs: Per-call `max_new_tokens` (or `max_tokens`), `temperature`, `top_p`, `seed`.
        :param tools: Haystack tools (or toolsets) rendered into the prompt; enables tool-call parsing.
        :returns: `{"replies": [ChatMessage]}`, with token data in the reply's meta.
        """
        self.warm_up()
        request = self._request(self.build_prompt(messages, tools), generation_kwargs)
        (result,) = self._generate([request])
        return {"replies": [self._reply(request, result, tools)]}

    @component.output_types(replies=list[ChatMessage])
    async def run_async(
        self,
        messages: list[ChatMessage],
        generation_kwargs: dict[str, Any] | None = None,
        tools: ToolsType | None = None,
    ) -> dict[str, Any]:
        """Async twin of `run`: concurrent calls are batched into one forward pass (see the class docstring)."""
        if self._model is None:
            await asyncio.to_thread(self.warm_up)
        request = self._request(self.build_prompt(messages, tools), generation_kwargs)
        result = await self._batcher().submit(request)
        return {"replies": [self._reply(request, result, tools)]}

    def _batcher(self) -> _MicroBatcher:
        loop = asyncio.get_running_loop()
        with self._batchers_lock:
            batcher = self._batchers.get(loop)
            if batcher is None:
                batcher = _MicroBatcher(self._generate, self.max_batch_size)
                self._batchers[loop] = batcher
            return batcher

    def _generate(self, requests: list[_Request]) -> list[_Result]:
        """One batched sampling loop (left padding, KV cache) over `requests`; thread-safe."""
        import torch

        with self._generate_lock, torch.inference_mode():
            model = self._model
            device = model.device
            max_new_tokens = max(r.max_new_tokens for r in requests)
            cache_length = max(len(r.prompt_ids) for r in requests) + max_new_tokens
            cache_argument = _cache_argument(model)
            past, shared = _prefill_shared_prefix(model, [r.prompt_ids for r in requests], cache_length)
            suffixes = [r.prompt_ids[shared:] for r in requests]
            width = max(len(suffix) for suffix in suffixes)
            step_ids = torch.tensor(
                [[self._pad_id] * (width - len(suffix)) + suffix for suffix in suffixes], device=device
            )
            attention = torch.tensor(
                [[1] * shared + [0] * (width - len(suffix)) + [1] * len(suffix) for suffix in suffixes], device=device
            )
            positions = (attention.cumsum(-1) - 1).clamp(min=0)[:, shared:]
            rngs = [None if r.seed is None else torch.Generator().manual_seed(r.seed) for r in requests]
            results = [_Result([], [], "length") for _ in requests]
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
                past = _returned_cache(output)
                logits = output.logits[:, -1, :].float().cpu()
                next_ids = [self._pad_id] * len(rows)
                for index, row in enumerate(rows):
                    if not active[row]:
                        continue
                    request, result = requests[row], results[row]
                    token, logprob = _sample(logits[index], request.temperature, request.top_p, rngs[row])
                    result.completion_ids.append(token)
                    result.logprobs.append(logprob)
                    next_ids[index] = token
                    if token in self._stop_ids:
                        result.finish_reason, active[row] = "stop", False
                    elif len(result.completion_ids) >= request.max_new_tokens:
                        active[row] = False
                keep = [index for index, row in enumerate(rows) if active[row]]
                if not keep:
                    break
                if len(keep) <= 3 * len(rows) // 4 and _select_rows(past, keep):
                    # finished rows leave the batch once a quarter of it is done (each drop copies the cache)
                    rows = [rows[index] for index in keep]
                    next_ids = [next_ids[index] for index in keep]
                    attention, positions = attention[keep], positions[keep]
                step_ids = torch.tensor(next_ids, device=device).unsqueeze(1)
                attention = torch.cat([attention, attention.new_ones((len(rows), 1))], dim=1)
                positions = positions[:, -1:] + 1
            return results

    # --- serialization ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Serialize to a dict (init parameters only)."""
        return default_to_dict(
            self,
            model=self.model,
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            history=self.history,
            max_batch_size=self.max_batch_size,
            device=self.device,
            chat_template=self.chat_template,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TransformersChatGenerator:
        """Deserialize from `to_dict` output."""
        return default_from_dict(cls, data)


class _MicroBatcher:
    """Gathers concurrent requests on one event loop into batches run in a worker thread."""

    def __init__(self, generate: Any, max_batch_size: int) -> None:
        self._generate = generate
        self._max_batch_size = max_batch_size
        self._pending: list[tuple[_Request, asyncio.Future[_Result]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, request: _Request) -> _Result:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_Result] = loop.create_future()
        self._pending.append((request, future))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # let requests started in the same loop iteration join
        while self._pending:
            if len(self._pending) < self._max_batch_size:
                await asyncio.sleep(_BATCH_WINDOW_S)
            batch = [(r, f) for r, f in self._pending[: self._max_batch_size] if not f.done()]
            del self._pending[: self._max_batch_size]
            if not batch:
                continue
            try:
                results = await asyncio.to_thread(self._generate, [request for request, _ in batch])
            except Exception as error:  # noqa: BLE001 - handed to every waiting caller
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), result in zip(batch, results):
                if not future.done():
                    future.set_result(result)
            await asyncio.sleep(0)  # let the callers resume and queue their next turn


def _new_cache(model: Any, length: int) -> Any:
    """
    A preallocated KV cache of `length` tokens where the model supports one (None: the model's default).

    The default `DynamicCache` concatenates every layer's keys and values at each step, copying the whole cache
    (`bench/tool_rollouts.py` measures the difference: its "static cache" side).
    """
    if not getattr(model, "_can_compile_fullgraph", False):
        return None
    from transformers import StaticCache

    return StaticCache(config=model.config.get_text_config(decoder=True), max_cache_len=length)


def _prefill_shared_prefix(model: Any, prompts: list[list[int]], cache_length: int) -> tuple[Any, int]:
    """
    A KV cache for the batch holding the prompts' common prefix, run once and copied to every row.

    Rollouts of one group share their whole first prompt, and all of them the system prompt and tool schema
    (~800 of the calculator's ~830 tokens), so a batch's prefill mostly recomputes the same keys and values.
    Returns (cache, length of the prefix it holds); (a fresh cache, 0) when there is nothing worth sharing.
    """
    import torch

    cache = _new_cache(model, cache_length)
    shortest = min(len(prompt) for prompt in prompts)
    length = min(len(os.path.commonprefix(prompts)), shortest - 1)  # every row keeps a token of its own to run
    if len(prompts) < 2 or length < _MIN_SHARED_PREFIX:
        return cache, 0
    ids = torch.tensor([prompts[0][:length]], device=model.device)
    output = model(input_ids=ids, use_cache=True, logits_to_keep=1, **{_cache_argument(model): cache})
    cache = _returned_cache(output)
    if not _select_rows(cache, [0] * len(prompts)):
        return _new_cache(model, cache_length), 0
    return cache, length


def _cache_argument(model: Any) -> str:
    """
    The name of the model's KV-cache argument: `cache` (transformers >= 5.2x), `past_key_values` before. A peft
    model forwards `**kwargs` to the model it wraps, so that model's signature decides.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(type(base).forward).parameters else "past_key_values"


def _returned_cache(output: Any) -> Any:
    """The KV cache of a forward pass's output, under either name."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def _select_rows(cache: Any, rows: list[int]) -> bool:
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


def _sample(logits: Any, temperature: float, top_p: float, rng: Any) -> tuple[int, float]:
    """Sample one token from a row of logits; returns it and its log-prob under the distribution used."""
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


def _last_tokenized_reply(messages: list[ChatMessage]) -> int | None:
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.is_from("assistant") and "prompt_ids" in message.meta and "completion_ids" in message.meta:
            return index
    return None


def tool_specs(tools: ToolsType | None) -> list[dict[str, Any]] | None:
    """Tools as the JSON schemas chat templates render (`{"type": "function", "function": ...}`), None for none."""
    flat = flatten_tools_or_toolsets(tools)
    if not flat:
        return None
    return [{"type": "function", "function": dict(tool.tool_spec)} for tool in flat]


def to_hf_message(message: ChatMessage) -> dict[str, Any]:
    """A Haystack `ChatMessage` as the dict Hugging Face chat templates expect (tool calls and results included)."""
    role = message.role.value
    if role == "tool":
        result = message.tool_call_result
        if result is None:
            return {"role": "tool", "content": message.text or ""}
        content = result.result
        if not isinstance(content, str):
            content = "\n".join(getattr(part, "text", "") for part in content)
        return {"role": "tool", "content": content, "tool_call_id": result.origin.id, "name": result.origin.tool_name}
    data: dict[str, Any] = {"role": role, "content": "\n".join(message.texts)}
    if role == "assistant":
        if message.tool_calls:
            data["tool_calls"] = [
                {"type": "function", "id": call.id, "function": {"name": call.tool_name, "arguments": call.arguments}}
                for call in message.tool_calls
            ]
        if message.reasoning is not None:
            data["reasoning_content"] = message.reasoning.reasoning_text
    return data
