"""What training shows and where it logs: the progress bar's running means, `report_to` reaching TRL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from transformers import TrainerControl, TrainerState

from haystack_rl.training import ConfigError, TrainConfig
from haystack_rl.training.cli import RichProgressCallback, training_progress


class GRPOConfig:  # the callback tells the stage by the args' class name
    ...


def test_progress_bar_shows_the_mean_of_the_last_ten_logged_steps() -> None:
    progress = training_progress(Console(file=None, force_terminal=False, quiet=True))
    callback, control, args = RichProgressCallback(progress), TrainerControl(), GRPOConfig()
    state = TrainerState(max_steps=30)
    callback.on_train_begin(args, state, control)  # type: ignore[arg-type]
    rewards = [0.0] * 5 + [0.396] + [float(i) / 10 for i in range(14)]
    shown = []
    for step, reward in enumerate(rewards, start=1):
        state.global_step = step
        callback.on_step_end(args, state, control)  # type: ignore[arg-type]
        callback.on_log(args, state, control, logs={"reward": reward, "loss": 2.0 * reward})  # type: ignore[arg-type]
        shown.append(progress.tasks[0].fields["info"])
    assert shown[0] == "reward(avg1) 0.000  loss(avg1) 0.000"
    assert shown[5] == f"reward(avg6) {0.396 / 6:.3f}  loss(avg6) {0.792 / 6:.3f}"  # not the last step alone
    last10 = rewards[-10:]
    assert shown[-1] == f"reward(avg10) {sum(last10) / 10:.3f}  loss(avg10) {2 * sum(last10) / 10:.3f}"
    callback.on_log(args, state, control, logs={"reward": float("nan")})  # type: ignore[arg-type]
    assert progress.tasks[0].fields["info"] == shown[-1]  # a NaN step does not poison the mean


def test_report_to_defaults_to_local_files_and_reaches_both_trainers_args(tmp_path: Path) -> None:
    from haystack_rl.training.grpo import grpo_args

    assert TrainConfig().report_to == "none"
    assert grpo_args(TrainConfig(), tmp_path, [1.0]).report_to == []  # HF reads "none" as no tracker
    config = TrainConfig.from_dict({}, overrides=["report_to=[tensorboard, wandb]"])
    assert config.report_to == ["tensorboard", "wandb"]
    assert grpo_args(config, tmp_path, [1.0]).report_to == ["tensorboard", "wandb"]
    assert TrainConfig.from_dict({"report_to": "trackio"}).report_to == "trackio"
    with pytest.raises(ConfigError, match="report_to"):
        TrainConfig.from_dict({"report_to": 3})


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_training_run_logs_to_tensorboard_when_asked(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install tensorboard)")
    from transformers import TrainerCallback

    from haystack_rl.training import Trainer

    seen: list[tuple[str, Any]] = []

    class ArgsSpy(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            seen.append((type(args).__name__, list(args.report_to)))

    trainer = Trainer({"env": "reverse_text", "env_args": {"num_train_examples": 8, "num_eval_examples": 2},
                       "output_dir": str(tmp_path / "run"), "report_to": ["tensorboard"],
                       "sft": {"steps": 1, "batch": 2}, "grpo": {"steps": 1, "batch": 2, "num_generations": 2,
                                                                   "max_new_tokens": 64}},
                      evaluate_before_after=False)  # fmt: skip
    trainer.add_callback(ArgsSpy())
    trainer.run()
    assert seen == [("SFTConfig", ["tensorboard"]), ("GRPOConfig", ["tensorboard"])]
    assert list((tmp_path / "run").rglob("events.out.tfevents.*")), "no tensorboard event file was written"
