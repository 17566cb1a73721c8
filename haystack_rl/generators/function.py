"""FunctionChatGenerator: a plain Python function as a Haystack chat generator (scripted baselines)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from haystack import component, default_from_dict, default_to_dict
from haystack.dataclasses import ChatMessage
from haystack.utils import deserialize_callable, serialize_callable

PolicyFn = Callable[[list[ChatMessage], random.Random], "str | ChatMessage"]


@component
class FunctionChatGenerator:
    """
    Wraps `fn(messages, rng) -> reply text` as a chat generator, so scripted policies (an environment's
    baselines: oracle, random, minimax...) run anywhere a model does. `rng` is seeded from
    `generation_kwargs["seed"]` when given, so runs are reproducible. The function may also return an
    assistant `ChatMessage` (e.g. one with tool calls); its meta gets the baseline's `model` name.

    Usage example:
    ```python
    from haystack.dataclasses import ChatMessage
    from haystack_rl.generators import FunctionChatGenerator

    def shout(messages, rng):
        return messages[-1].text.upper()

    generator = FunctionChatGenerator(shout)
    assert generator.run([ChatMessage.from_user("hi")])["replies"][0].text == "HI"
    ```
    """

    def __init__(self, function: PolicyFn, name: str = "") -> None:
        self.function = function
        self.name = name or getattr(function, "__name__", "function")

    def episode_rng(self, generation_kwargs: dict[str, Any] | None) -> random.Random:
        """The random generator handed to the function: seeded from `generation_kwargs["seed"]` when given."""
        return random.Random((generation_kwargs or {}).get("seed"))

    @component.output_types(replies=list[ChatMessage])
    def run(
        self, messages: list[ChatMessage], generation_kwargs: dict[str, Any] | None = None, tools: Any = None
    ) -> dict[str, Any]:
        """Call the function on the conversation; returns one reply (`tools` is accepted and ignored)."""
        out = self.function(list(messages), self.episode_rng(generation_kwargs))
        meta = {"model": f"baseline:{self.name}"}
        if isinstance(out, ChatMessage):
            if not out.is_from("assistant"):
                raise TypeError(f"FunctionChatGenerator {self.name!r}: the function returned a {out.role.value} "
                                "message; return reply text or an assistant ChatMessage")  # fmt: skip
            reply = ChatMessage.from_assistant(out.text, meta={**meta, **out.meta}, tool_calls=out.tool_calls)
            return {"replies": [reply]}
        return {"replies": [ChatMessage.from_assistant(out, meta=meta)]}

    @component.output_types(replies=list[ChatMessage])
    async def run_async(
        self, messages: list[ChatMessage], generation_kwargs: dict[str, Any] | None = None, tools: Any = None
    ) -> dict[str, Any]:
        """Async twin of `run` (the function is cheap, so it runs inline)."""
        return self.run(messages, generation_kwargs, tools)

    def to_dict(self) -> dict[str, Any]:
        """Serialize (the function by import path)."""
        return default_to_dict(self, function=serialize_callable(self.function), name=self.name)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FunctionChatGenerator:
        """Deserialize (the function path goes through Haystack's allowlist)."""
        params = dict(data.get("init_parameters", {}))
        params["function"] = deserialize_callable(params["function"])
        return default_from_dict(cls, {**data, "init_parameters": params})
