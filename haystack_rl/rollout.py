"""The trajectory record: `Turn` and `Rollout`, and its JSON round trip (files: `haystack_rl.rollout_io`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from haystack.dataclasses import ChatMessage, ChatRole


class TokenMismatchError(ValueError):
    """A turn's prompt does not extend the previous turn's prompt + completion (the prefix property)."""


@dataclass
class Turn:
    """
    One model call: the exact token ids the model was given and the ids it produced.

    :param prompt_ids: Token ids of the prompt the model saw.
    :param completion_ids: Token ids the model generated.
    :param logprobs: Log-probability of each completion token under the sampling policy, if known.
    """

    prompt_ids: list[int]
    completion_ids: list[int]
    logprobs: list[float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Serialize to a JSON-friendly dict."""
        return {"prompt_ids": self.prompt_ids, "completion_ids": self.completion_ids, "logprobs": self.logprobs}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Turn:
        """Deserialize from `to_dict` output."""
        return cls(list(data["prompt_ids"]), list(data["completion_ids"]), data.get("logprobs"))


@dataclass
class Rollout:
    """
    One episode of a policy in an environment, from reset to the end, with its reward.

    Token data (`turns`) is present when the policy generator returns it (see
    `TokenChatGenerator`); evaluation through any other Haystack chat generator leaves it empty.
    `success` is the environment's verdict (`Environment.is_success`) once the rollout is scored, None before
    (and for failed episodes).

    Usage example:
    ```python
    from haystack.dataclasses import ChatMessage
    from haystack_rl import Rollout

    rollout = Rollout(example_id="0", rollout_index=0, seed=7,
                      messages=[ChatMessage.from_user("hi"), ChatMessage.from_assistant("hello")])
    line = rollout.to_json()
    assert Rollout.from_json(line).messages[1].text == "hello"
    ```
    """

    example_id: str
    rollout_index: int
    seed: int
    messages: list[ChatMessage] = field(default_factory=list)
    group_id: str = ""
    environment: str = ""
    example: dict[str, Any] = field(default_factory=dict)
    turns: list[Turn] = field(default_factory=list)
    reward: float | None = None
    rewards: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    reward_errors: dict[str, str] = field(default_factory=dict)
    success: bool | None = None
    info: dict[str, Any] = field(default_factory=dict)
    stop_reason: str = ""
    error: str | None = None
    timing: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.group_id:
            self.group_id = f"{self.example_id}@{self.seed}"

    @property
    def key(self) -> tuple[str, int]:
        """The (example id, rollout index) pair that identifies this rollout within a run."""
        return (self.example_id, self.rollout_index)

    @property
    def completion(self) -> str:
        """Text of the last assistant message ('' if the model never answered)."""
        for message in reversed(self.messages):
            if message.role is ChatRole.ASSISTANT:  # not is_from(): it parses the role name on every call
                return message.text or ""
        return ""

    # --- token view -------------------------------------------------------------------------
    @property
    def prompt_ids(self) -> list[int]:
        """Token ids of the first prompt (what the model saw before its first reply)."""
        return list(self.turns[0].prompt_ids) if self.turns else []

    def completion_tokens(self) -> tuple[list[int], list[int], list[float]]:
        """
        The trajectory after the first prompt, as TRL's `rollout_func` wants it.

        :returns: `(completion_ids, env_mask, logprobs)`: every token after the first prompt, a mask
            with 1 on tokens the model generated and 0 on tokens the environment wrote, and the
            sampling logprob of each token (0.0 for environment tokens or when unknown).
        :raises TokenMismatchError: if a turn's prompt does not extend the previous prompt + completion.
        """
        ids: list[int] = []
        mask: list[int] = []
        logprobs: list[float] = []
        if not self.turns:
            return ids, mask, logprobs
        context = list(self.turns[0].prompt_ids)
        for index, turn in enumerate(self.turns):
            if turn.prompt_ids[: len(context)] != context:
                raise TokenMismatchError(
                    f"rollout {self.key}: turn {index}'s prompt does not start with the previous turn's "
                    f"prompt + completion (first difference at token {_first_difference(context, turn.prompt_ids)})"
                )
            env_part = turn.prompt_ids[len(context) :]
            ids += env_part
            mask += [0] * len(env_part)
            logprobs += [0.0] * len(env_part)
            ids += turn.completion_ids
            mask += [1] * len(turn.completion_ids)
            logprobs += list(turn.logprobs) if turn.logprobs is not None else [0.0] * len(turn.completion_ids)
            context = list(turn.prompt_ids) + list(turn.completion_ids)
        return ids, mask, logprobs

    def sequences(self) -> list[tuple[list[int], list[int], list[int], list[float]]]:
        """
        The rollout's token data as training sequences: consecutive turns whose prompt extends the previous
        turn's prompt + completion merge into one sequence (a conversation: tokens the environment wrote get
        mask 0); a turn that does not (another call of a pipeline's generator, on another prompt) starts a new one.

        :returns: One `(prompt_ids, completion_ids, env_mask, logprobs)` per sequence (as `completion_tokens`).
        """
        out: list[tuple[list[int], list[int], list[int], list[float]]] = []
        start = 0
        for index in range(1, len(self.turns) + 1):
            if index < len(self.turns):
                previous, turn = self.turns[index - 1], self.turns[index]
                context = list(previous.prompt_ids) + list(previous.completion_ids)
                if turn.prompt_ids[: len(context)] == context:
                    continue
            part = Rollout(self.example_id, self.rollout_index, self.seed, turns=self.turns[start:index])
            out.append((part.prompt_ids, *part.completion_tokens()))
            start = index
        return out

    @property
    def num_completion_tokens(self) -> int:
        """Number of tokens the model generated over all turns."""
        return sum(len(turn.completion_ids) for turn in self.turns)

    # --- serialization ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Serialize to a JSON-friendly dict (messages in Haystack's `ChatMessage.to_dict` format)."""
        return {
            "example_id": self.example_id,
            "rollout_index": self.rollout_index,
            "seed": self.seed,
            "group_id": self.group_id,
            "environment": self.environment,
            "messages": [message.to_dict() for message in self.messages],
            "example": self.example,
            "turns": [turn.to_dict() for turn in self.turns],
            "reward": self.reward,
            "rewards": self.rewards,
            "metrics": self.metrics,
            "reward_errors": self.reward_errors,
            "success": self.success,
            "info": self.info,
            "stop_reason": self.stop_reason,
            "error": self.error,
            "timing": self.timing,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rollout:
        """Deserialize from `to_dict` output."""
        fields = dict(data)
        fields["messages"] = [ChatMessage.from_dict(message) for message in data.get("messages", [])]
        fields["turns"] = [Turn.from_dict(turn) for turn in data.get("turns", [])]
        return cls(**fields)

    def to_json(self) -> str:
        """One JSON line (no newline inside)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, default=_json_default)

    @classmethod
    def from_json(cls, line: str) -> Rollout:
        """Parse one line written by `to_json`."""
        return cls.from_dict(json.loads(line))


def _first_difference(a: list[int], b: list[int]) -> int:
    for index, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return index
    return min(len(a), len(b))


def _json_default(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)
