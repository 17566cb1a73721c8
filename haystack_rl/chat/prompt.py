"""Token-in, token-out prompts: a conversation rendered through a chat template into the exact ids the model sees."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from haystack.dataclasses import ChatMessage
from haystack.tools import ToolsType

from haystack_rl.chat.errors import ChatTemplateError
from haystack_rl.chat.messages import to_hf_message, tool_specs

HistoryMode = Literal["keep", "strict"]
HISTORY_MODES = ("keep", "strict")
_STUB_MARKER = "HAYSTACK_RL_HISTORY_STUB_7F3A"


def load_tokenizer(name_or_dir: str | Path) -> Any:
    """The Hugging Face tokenizer of "tiny", a local model directory, or a hub name already in the local cache."""
    from transformers import AutoTokenizer

    from haystack_rl.models.tiny import resolve_model

    try:
        path: str | Path = resolve_model(name_or_dir)
    except ValueError:
        path = str(name_or_dir)  # a hub name: found only when it is in the local Hugging Face cache
    try:
        return AutoTokenizer.from_pretrained(path)
    except OSError as error:
        raise ValueError(f"no tokenizer for {str(name_or_dir)!r}: pass 'tiny' or a local model directory") from error


def stop_token_ids(tokenizer: Any, generation_config: Any = None) -> frozenset[int]:
    """The tokens that end a reply: the generation config's EOS ids and the tokenizer's EOS."""
    eos = getattr(generation_config, "eos_token_id", None)
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return frozenset(int(i) for i in ids)


class ChatFormat:
    """
    Renders Haystack chat messages through a chat template into the exact prompt ids of the next reply.

    Token-in, token-out: when the conversation holds an earlier reply with token data (its meta has
    `prompt_ids` and `completion_ids`), the new prompt is those ids followed by the ids of only the newly
    rendered text; the history is never re-tokenized, so every turn's prompt extends the previous prompt +
    completion. If the template rewrites history (e.g. Qwen3 templates strip earlier `<think>` blocks),
    `history="keep"` renders only the new messages (after a neutral stub conversation) and keeps the history
    as generated, while `history="strict"` raises `ChatTemplateError`.

    Usage example:
    ```python
    from haystack.dataclasses import ChatMessage
    from haystack_rl.chat import ChatFormat, load_tokenizer

    chat = ChatFormat(load_tokenizer("tiny"))
    messages = [ChatMessage.from_user("Hi")]
    assert chat.decode(chat.build_prompt(messages)) == chat.render(messages)
    ```
    """

    def __init__(
        self,
        tokenizer: Any,
        chat_template: str | None = None,
        history: HistoryMode = "keep",
        stop_ids: Iterable[int] = (),
        model_label: str = "the model",
    ) -> None:
        """
        Load the template (the tokenizer's unless `chat_template` is given).

        :param tokenizer: A Hugging Face tokenizer.
        :param chat_template: A Jinja chat template (text, or path to a `.jinja` file) replacing the tokenizer's.
        :param history: "keep" or "strict" (see the class docstring).
        :param stop_ids: The tokens that end a reply (`stop_token_ids`); the default: the tokenizer's EOS.
        :param model_label: How errors name the model, e.g. "'tiny'".
        """
        if history not in HISTORY_MODES:
            raise ValueError(f"history must be 'keep' or 'strict', not {history!r}")
        self.tokenizer = tokenizer
        self.history = history
        self.stop_ids = frozenset(stop_ids) or stop_token_ids(tokenizer)
        self.template, self.template_name = _load_template(tokenizer, chat_template, model_label)

    def render(self, messages: list[ChatMessage], tools: ToolsType | None = None) -> str:
        """The chat template's text for `messages` plus the generation prompt."""
        return self._render([to_hf_message(m) for m in messages], tool_specs(tools))

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, without special tokens added."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: list[int]) -> str:
        """Text of `ids`, special tokens kept, no clean-up."""
        return str(self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False))

    def reply_text(self, completion_ids: list[int], finish_reason: str) -> str:
        """The text of a completion without the stop token that ended it."""
        stopped = finish_reason == "stop" and bool(completion_ids) and completion_ids[-1] in self.stop_ids
        return self.decode(completion_ids[:-1] if stopped else completion_ids)

    def build_prompt(self, messages: list[ChatMessage], tools: ToolsType | None = None) -> list[int]:
        """
        The exact prompt ids for the next reply (token-in, token-out; see the class docstring).

        :raises ChatTemplateError: with `history="strict"`, when the template rewrites earlier turns.
        """
        if not messages:
            raise ValueError("messages is empty")
        conversation = [to_hf_message(m) for m in messages]
        specs = tool_specs(tools)
        rendered = self._render(conversation, specs)
        anchor = _last_tokenized_reply(messages)
        if anchor is None:
            return self.encode(rendered)
        meta = messages[anchor].meta
        previous_completion = [int(i) for i in meta["completion_ids"]]
        seen_ids = [int(i) for i in meta["prompt_ids"]] + previous_completion
        seen = self.decode(seen_ids)
        if rendered.startswith(seen):
            return seen_ids + self.encode(rendered[len(seen) :])
        if self.history == "strict":
            at = next((i for i, (a, b) in enumerate(zip(seen, rendered)) if a != b), min(len(seen), len(rendered)))
            raise ChatTemplateError(
                f"{self.template_name} rewrites the conversation history: at character {at}, the model saw "
                f"{seen[max(0, at - 40) : at + 60]!r} but the template now renders "
                f"{rendered[max(0, at - 40) : at + 60]!r}. Use history='keep' to keep the history as generated."
            )
        return seen_ids + self.encode(self._suffix_after_stub(conversation, anchor, specs, previous_completion))

    def _render(self, conversation: list[dict[str, Any]], specs: list[dict[str, Any]] | None) -> str:
        text = self.tokenizer.apply_chat_template(
            conversation, tools=specs, chat_template=self.template, add_generation_prompt=True, tokenize=False
        )
        return str(text)

    def _suffix_after_stub(
        self,
        conversation: list[dict[str, Any]],
        anchor: int,
        specs: list[dict[str, Any]] | None,
        previous_completion: list[int],
    ) -> str:
        """The text the template renders for the messages after `anchor`, when they follow a neutral stub turn."""
        stub: list[dict[str, Any]] = []
        if conversation[0]["role"] == "system" and anchor > 0:
            stub.append(conversation[0])
        stub += [{"role": "user", "content": "..."}, {"role": "assistant", "content": _STUB_MARKER}]
        rendered = self._render(stub + conversation[anchor + 1 :], specs)
        at = rendered.find(_STUB_MARKER)
        if at < 0:
            raise ChatTemplateError(f"{self.template_name} dropped the content of an assistant turn")
        after = rendered[at + len(_STUB_MARKER) :]
        if previous_completion and previous_completion[-1] in self.stop_ids:
            stop_text = self.decode(previous_completion[-1:])
            if after.startswith(stop_text):  # the model already wrote the end of its turn
                after = after[len(stop_text) :]
        return after


def _load_template(tokenizer: Any, chat_template: str | None, model_label: str) -> tuple[str, str]:
    """(template text, how errors name it): `chat_template` (text or a file path) or the tokenizer's own."""
    if chat_template is not None:
        candidate = Path(chat_template)
        if "{" not in chat_template and candidate.is_file():
            return candidate.read_text(encoding="utf-8"), str(candidate)
        return chat_template, "the chat_template given"
    template = tokenizer.chat_template
    if not isinstance(template, str):
        raise ChatTemplateError(f"{model_label} has no (single) chat template; pass chat_template=...")
    return template, f"the chat template of {model_label}"


def _last_tokenized_reply(messages: list[ChatMessage]) -> int | None:
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.is_from("assistant") and "prompt_ids" in message.meta and "completion_ids" in message.meta:
            return index
    return None
