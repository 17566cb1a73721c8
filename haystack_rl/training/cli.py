"""What `haystack-rl train` shows while it trains: a rich progress bar per stage, and the evaluation table."""

from __future__ import annotations

from collections import deque
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments


class RichProgressCallback(TrainerCallback):
    """
    A rich progress bar per stage (SFT, GRPO) showing the step and the running mean of loss / reward over
    the last `window` logged steps (labelled so: `reward(avg10) 0.412`; one step's reward is mostly noise).
    """

    FIGURES = ("loss", "reward", "reward_std")

    def __init__(self, progress: Progress, window: int = 10) -> None:
        self.progress = progress
        self.window = window
        self.task: TaskID | None = None
        self.last: dict[str, deque[float]] = {}

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Open a bar for the stage (GRPO's args are a GRPOConfig, SFT's an SFTConfig)."""
        stage = "GRPO" if type(args).__name__.startswith("GRPO") else "SFT"
        self.last = {}  # a stage's bar shows its own figures, not the previous stage's
        self.task = self.progress.add_task(stage, total=state.max_steps, completed=state.global_step, info="")

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        """Advance the bar."""
        if self.task is not None:
            self.progress.update(self.task, completed=state.global_step, info=self._info())

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Add the logged loss / reward to the running means (HF logs after `on_step_end`, so refresh here too)."""
        for key, value in (logs or {}).items():
            if key in self.FIGURES and isinstance(value, int | float) and value == value:  # NaN is not a figure
                self.last.setdefault(key, deque(maxlen=self.window)).append(float(value))
        if self.task is not None:
            self.progress.update(self.task, info=self._info())

    def _info(self) -> str:
        return "  ".join(f"{k}(avg{len(v)}) {sum(v) / len(v):.3f}" for k, v in self.last.items() if v)


def training_progress(console: Console | None = None) -> Progress:
    """
    A rich `Progress` laid out for `RichProgressCallback`: stage, bar, steps, time, last loss / reward.

    Usage example:
    ```python
    with training_progress() as progress:
        run_sft(config, env, "tiny", "runs/x/sft", callbacks=[RichProgressCallback(progress)])
    ```
    """
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[info]}"))  # fmt: skip
    return Progress(*columns, console=console)


def eval_table(metrics: dict[str, Any]) -> Table:
    """Before / after-SFT / after eval summaries as a rich table (reward and each reward function)."""
    columns = [("before", metrics.get("eval_before")), ("after SFT", metrics.get("eval_sft")),
               ("after", metrics.get("eval_after"))]  # fmt: skip
    present = [(name, summary) for name, summary in columns if summary]
    table = Table(title="evaluation (eval split)")
    table.add_column("metric")
    for name, _ in present:
        table.add_column(name, justify="right")
    skip = {"rollouts", "unscored", "errors", "wall_s", "reward_std"}
    keys = ["reward"] + sorted({k for _, s in present for k in s} - skip - {"reward"})
    for key in keys + ["rollouts", "errors"]:
        cells = []
        for _, summary in present:
            value = summary.get(key)
            cells.append(f"{value:.3f}" if isinstance(value, float) else str(value if value is not None else "-"))
        table.add_row(key, *cells)
    return table
