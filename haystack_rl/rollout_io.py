"""Rollouts on disk and as data: JSON-lines files (`write_rollouts`, `read_rollouts`...) and a `datasets` view."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from haystack.dataclasses import ChatMessage

from haystack_rl.rollout import Rollout


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
    from haystack_rl.rollout_io import RolloutWriter

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
