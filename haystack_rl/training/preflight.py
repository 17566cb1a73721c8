"""Checks run before any training work: demonstrations that fit the length and reply budgets of the config."""

from __future__ import annotations

import json
import logging
from typing import Any

from haystack.dataclasses import ChatMessage

from haystack_rl.chat import tool_specs
from haystack_rl.training.config import TrainConfig
from haystack_rl.training.rewards import to_trl_messages

logger = logging.getLogger(__name__)


class DemonstrationSetupError(ValueError):
    """SFT has nothing (right) to learn from; the message names the fix."""


def check_row_lengths(tokenizer: Any, rows: list[dict[str, Any]], max_length: int, name: str, sample: int = 32) -> None:
    """
    Refuse SFT rows whose first trained token lies past `sft.max_length` (TRL cuts rows at the end, so such a
    row keeps nothing to learn; a tool environment's prompts hold the tool schemas, so they are long). Checked on a
    sample of rows, before any work.

    :raises DemonstrationSetupError: With the length needed.
    """
    prefixes = []
    for row in rows[:sample]:
        messages = row.get("messages") or row["prompt"] + row["completion"]
        first = next((i for i, m in enumerate(messages) if m["role"] == "assistant"), len(messages))
        tools = json.loads(row["tools"]) if "tools" in row else None
        text = str(tokenizer.apply_chat_template(messages[:first], tools=tools, add_generation_prompt=True,
                                                 tokenize=False))  # fmt: skip
        prefixes.append(len(tokenizer(text, add_special_tokens=False)["input_ids"]))
    if prefixes and min(prefixes) >= max_length:
        raise DemonstrationSetupError(f"{name}: SFT rows reach their first reply only after {min(prefixes)} tokens, "
                                      f"past sft.max_length={max_length}: nothing would be left to learn; raise "
                                      f"sft.max_length above {max(prefixes)}")  # fmt: skip


def check_lengths(dataset: Any, num_rows: int, max_length: int, name: str) -> None:
    """
    Refuse SFT rows that TRL truncated away, and warn about truncated ones: tokens past `sft.max_length` are
    cut from the end, which is the completion (a tool environment's prompt holds the tool schemas, so it is long).
    """
    lengths = [len(ids) for ids in dataset["input_ids"]] if len(dataset) else []
    if not lengths:
        raise DemonstrationSetupError(f"{name}: all {num_rows} SFT rows were truncated away at sft.max_length="
                                      f"{max_length} tokens (nothing left to learn); raise sft.max_length")  # fmt: skip
    cut = sum(length >= max_length for length in lengths) + num_rows - len(lengths)
    if cut:
        logger.warning("%s: %d of %d SFT rows reach sft.max_length=%d tokens and lose the end of their completion; "
                       "raise sft.max_length", name, cut, num_rows, max_length)  # fmt: skip


def reply_lengths(tokenizer: Any, transcripts: list[list[ChatMessage]], tools: Any = None) -> list[int]:
    """
    The length in tokens of each distinct demonstrated reply as the model would generate it (its rendering by
    the chat template, end-of-turn token included, trailing whitespace after it not).
    """
    specs = tool_specs(tools)
    opening = [{"role": "user", "content": "."}]
    prompt = str(tokenizer.apply_chat_template(opening, tools=specs, add_generation_prompt=True, tokenize=False))
    lengths: dict[str, int] = {}
    for messages in transcripts:
        for message in messages:
            if not message.is_from("assistant"):
                continue
            reply = to_trl_messages([message])
            key = json.dumps(reply, sort_keys=True)
            if key in lengths:
                continue
            text = str(tokenizer.apply_chat_template(opening + reply, tools=specs, tokenize=False))
            generated = text[len(prompt) :] if text.startswith(prompt) else str(message.text or "")
            lengths[key] = len(tokenizer(generated.rstrip(), add_special_tokens=False)["input_ids"])
    return list(lengths.values())


def check_reply_budget(lengths: list[int], config: TrainConfig, name: str) -> None:
    """
    Refuse demonstrations with replies longer than generation may be: the model would learn replies that
    `max_new_tokens` cuts (a cut tool call or tagged answer is malformed), so GRPO and evaluation would see only
    broken replies, and SFT would seem to learn nothing.

    :raises DemonstrationSetupError: With the numbers and the setting to raise.
    """
    if not lengths:
        return
    longest = max(lengths)
    budgets = {"eval.max_new_tokens": config.eval.max_new_tokens or config.grpo.max_new_tokens}
    if config.grpo.steps > 0:
        budgets["grpo.max_new_tokens"] = config.grpo.max_new_tokens
    short = {key: value for key, value in budgets.items() if value < longest}
    if short:
        cut = sum(length > min(short.values()) for length in lengths)
        raise DemonstrationSetupError(
            f"{name}: {cut} of {len(lengths)} distinct demonstrated replies are longer than "
            f"{' and '.join(f'{k}={v}' for k, v in short.items())} (the longest: {longest} tokens, end token "
            f"included), so generation would cut them; raise {' and '.join(short)} to at least {longest}"
        )
