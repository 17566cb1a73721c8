"""Trainer callbacks: a JSONL log of step metrics, and the learning-curve plot drawn from it."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

METRICS_FILE = "metrics.jsonl"
CURVE_FILE = "learning_curve.png"


class JsonlMetricsCallback(TrainerCallback):
    """
    Appends one JSON line per logged step to `path`: the stage, the step, the step time and every
    scalar TRL logs (for GRPO: `reward`, `reward_std`, `rewards/NAME/mean`, `completions/mean_length`, ...),
    plus what `extra()` returns at that moment (e.g. the rollout function's tool-use figures).

    Usage example:
    ```python
    from haystack_rl.training.callbacks import JsonlMetricsCallback

    callback = JsonlMetricsCallback("runs/x/metrics.jsonl", stage="grpo")
    # GRPOTrainer(..., callbacks=[callback])
    ```
    """

    def __init__(
        self,
        path: str | Path,
        stage: str,
        on_record: Callable[[dict[str, Any]], None] | None = None,
        extra: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.path = Path(path)
        self.stage = stage
        self.on_record = on_record
        self.extra = extra
        self._step_start: float | None = None
        self._step_times: list[float] = []

    def on_step_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Start the step clock."""
        self._step_start = time.perf_counter()

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        """Stop the step clock."""
        if self._step_start is not None:
            self._step_times.append(time.perf_counter() - self._step_start)
            self._step_start = None

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Write the logged scalars (main process only)."""
        extra = self.extra() if self.extra is not None and logs else {}  # popped on every rank, written once
        if not state.is_world_process_zero or not logs:
            return
        record: dict[str, Any] = {"stage": self.stage, "step": state.global_step, "time": time.time()}
        if self._step_times:
            record["step_time_s"] = sum(self._step_times) / len(self._step_times)
            self._step_times = []
        for key, value in logs.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                record[key] = None if isinstance(value, float) and math.isnan(value) else value
        record.update(extra)
        append_record(self.path, record)
        if self.on_record is not None:
            self.on_record(record)


class TimeLimitCallback(TrainerCallback):
    """
    Stops training once it has run for `minutes` (counted from `on_train_begin`); the trainer then ends as
    after its last step, so the final model is saved as usual.

    Usage example:
    ```python
    from haystack_rl.training.callbacks import TimeLimitCallback

    callback = TimeLimitCallback(minutes=30)
    # GRPOTrainer(..., callbacks=[callback])
    ```
    """

    def __init__(self, minutes: float) -> None:
        if minutes <= 0:
            raise ValueError(f"max_minutes must be positive, got {minutes}")
        self.seconds = minutes * 60.0
        self._start: float | None = None
        self.stopped_at_step: int | None = None

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Start the clock."""
        self._start = time.perf_counter()

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        """Ask the trainer to stop once the budget is spent."""
        if self._start is not None and time.perf_counter() - self._start >= self.seconds:
            control.should_training_stop = True
            self.stopped_at_step = state.global_step


def append_record(path: str | Path, record: dict[str, Any]) -> None:
    """Append one JSON line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(json.dumps(record) + "\n")


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """All JSON lines of `path` ([] when missing; torn lines skipped)."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def plot_learning_curve(metrics_path: str | Path, png_path: str | Path, title: str = "") -> Path | None:
    """Draw SFT loss, GRPO reward (mean ± std, per function) and eval reward against steps; None if no data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_records(metrics_path)
    if not records:
        return None
    sft = [r for r in records if r.get("stage") == "sft" and r.get("loss") is not None]
    grpo = [r for r in records if r.get("stage") == "grpo" and r.get("reward") is not None]
    evals = [r for r in records if r.get("stage") == "eval" and r.get("eval_reward") is not None and "step" in r]
    panels = int(bool(sft)) + int(bool(grpo or evals))
    if not panels:
        return None
    figure, axes = plt.subplots(1, panels, figsize=(6 * panels, 4), squeeze=False)
    column = 0
    if sft:
        ax = axes[0][column]
        ax.plot([r["step"] for r in sft], [r["loss"] for r in sft], label="SFT loss")
        ax.set_xlabel("SFT step")
        ax.set_ylabel("loss")
        ax.legend()
        column += 1
    if grpo or evals:
        ax = axes[0][column]
        if grpo:
            steps = [r["step"] for r in grpo]
            mean = [r["reward"] for r in grpo]
            std = [r.get("reward_std") or 0.0 for r in grpo]
            ax.plot(steps, mean, label="train reward")
            ax.fill_between(steps, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)], alpha=0.2)
            names = sorted({k for r in grpo for k in r if k.startswith("rewards/") and k.endswith("/mean")})
            for name in names:
                ax.plot(steps, [r.get(name) for r in grpo], linestyle=":", label=name.split("/")[1])
        if evals:
            ax.plot([r["step"] for r in evals], [r["eval_reward"] for r in evals], "o-", label="eval reward")
        ax.set_xlabel("GRPO step")
        ax.set_ylabel("reward")
        ax.legend(fontsize="small")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    png_path = Path(png_path)
    figure.savefig(png_path, dpi=100)
    plt.close(figure)
    return png_path
