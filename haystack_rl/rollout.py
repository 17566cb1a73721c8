"""The trajectory record: `Turn` and `Rollout`, with a JSON-lines round trip and a `datasets` view."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
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


def write_rollouts(path: str | Path, rollouts: Iterable[Rollout], append: bool = True) -> None:
    """Write rollouts as JSON lines, one per line, flushed and fsynced so a crash loses no finished line."""
    with open(path, "a" if append else "w", encoding="utf-8") as handle:
        for rollout in rollouts:
            handle.write(rollout.to_json() + "\n")
        handle.flush()
        os.fsync(handle.fileno())


class RolloutWriter:
    """
    Appends rollouts to a JSON-lines file that stays open: each `write` is flushed to the operating system
    at once (a killed process loses no finished line), and fsynced at most every `fsync_interval_s` seconds
    and on `close` (so a power loss costs at most that much, while a run of thousands of small groups does
    not wait on the disk once per group, as calling `write_rollouts` per group would).

    Usage example:
    ```python
    import tempfile
    from pathlib import Path
    from haystack_rl import Rollout, read_rollouts
    from haystack_rl.rollout import RolloutWriter

    path = Path(tempfile.mkdtemp()) / "results.jsonl"
    with RolloutWriter(path) as writer:
        writer.write([Rollout(example_id="0", rollout_index=0, seed=7)])
    assert [r.key for r in read_rollouts(path)] == [("0", 0)]
    ```
    """

    def __init__(self, path: str | Path, fsync_interval_s: float = 1.0) -> None:
        self.path = Path(path)
        self.fsync_interval_s = fsync_interval_s
        self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self._last_fsync = time.monotonic()
        self._dirty = False

    def write(self, rollouts: Iterable[Rollout]) -> None:
        """Append rollouts, one JSON line each, in a single write; flushed now, fsynced within the interval."""
        self._handle.write("".join(rollout.to_json() + "\n" for rollout in rollouts))
        self._handle.flush()
        self._dirty = True
        if time.monotonic() - self._last_fsync >= self.fsync_interval_s:
            self.sync()

    def sync(self) -> None:
        """Fsync what was written so far."""
        if self._dirty:
            os.fsync(self._handle.fileno())
            self._dirty = False
        self._last_fsync = time.monotonic()

    def close(self) -> None:
        """Fsync and close (idempotent)."""
        if not self._handle.closed:
            self.sync()
            self._handle.close()

    def __enter__(self) -> RolloutWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_rollouts(path: str | Path) -> Iterator[Rollout]:
    """
    Read rollouts written by `write_rollouts`.

    A last line without its newline (a write cut short by a crash) is not data and is skipped;
    a malformed line anywhere else raises `ValueError` naming the file and line.
    """
    path = Path(path)
    if not path.exists():
        return
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.endswith("\n"):
                return  # truncated tail of an interrupted write
            if not line.strip():
                continue
            try:
                yield Rollout.from_json(line)
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise ValueError(f"{path}:{number}: not a rollout record ({error})") from error


def rollouts_to_dataset(rollouts: Iterable[Rollout]) -> Any:
    """
    A `datasets.Dataset` with one row per rollout, for SFT/DPO/analysis.

    Columns: ids, reward, rewards and metrics (JSON strings keep the schema stable across
    environments), `prompt` and `completion` in chat format, and the token view
    (`prompt_ids`, `completion_ids`, `env_mask`, `logprobs`; empty when the policy gave no token data).
    """
    import datasets

    rows: dict[str, list[Any]] = {
        key: []
        for key in (
            "example_id", "rollout_index", "group_id", "seed", "environment", "reward", "rewards", "metrics",
            "stop_reason", "error", "prompt", "completion", "prompt_ids", "completion_ids", "env_mask", "logprobs",
        )
    }  # fmt: skip
    for rollout in rollouts:
        first_reply = next((i for i, m in enumerate(rollout.messages) if m.is_from("assistant")), len(rollout.messages))
        ids, mask, logprobs = rollout.completion_tokens()
        row = {
            "example_id": rollout.example_id,
            "rollout_index": rollout.rollout_index,
            "group_id": rollout.group_id,
            "seed": rollout.seed,
            "environment": rollout.environment,
            "reward": math.nan if rollout.reward is None else rollout.reward,
            "rewards": json.dumps(rollout.rewards),
            "metrics": json.dumps(rollout.metrics),
            "stop_reason": rollout.stop_reason,
            "error": rollout.error or "",
            "prompt": [_chat_row(m) for m in rollout.messages[:first_reply]],
            "completion": [_chat_row(m) for m in rollout.messages[first_reply:]],
            "prompt_ids": rollout.prompt_ids,
            "completion_ids": ids,
            "env_mask": mask,
            "logprobs": logprobs,
        }
        for key, value in row.items():
            rows[key].append(value)
    return datasets.Dataset.from_dict(rows)


def _chat_row(message: ChatMessage) -> dict[str, str]:
    return {"role": message.role.value, "content": message.text or ""}
