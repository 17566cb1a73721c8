"""Trainer: the training run (SFT warm start, GRPO, final model, logs, plot) as a Haystack component."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from haystack import component, default_from_dict, default_to_dict

from haystack_rl.deploy import training_card, write_training_card
from haystack_rl.models.tiny import resolve_model
from haystack_rl.report.runs import EVALS_DIR
from haystack_rl.training.callbacks import CURVE_FILE, METRICS_FILE, append_record, plot_learning_curve
from haystack_rl.training.config import TrainConfig
from haystack_rl.training.distributed import is_main_process, wait_for_everyone
from haystack_rl.training.evaluation import evaluate_model
from haystack_rl.training.grpo import run_grpo
from haystack_rl.training.model_setup import save_plain_model
from haystack_rl.training.sft import run_sft, sft_rows

logger = logging.getLogger(__name__)


@component
class Trainer:
    """
    Trains a model on an environment: optional SFT warm start on demonstrations, then GRPO through TRL,
    then a plain HF model directory at `output_dir/final` (tokenizer and chat template included).

    Writes `output_dir/metrics.jsonl` (one line per logged step: stage, reward mean/std, each reward
    function, completion length, step time; eval lines), `output_dir/learning_curve.png`,
    `output_dir/summary.json` and each evaluation's rollouts (`output_dir/evals/before|sft|after/`, as an
    eval run: `haystack-rl report output_dir` shows them). Checkpoints every `save_steps`; `run(resume=True)`
    continues from the last.

    Under several processes (`torchrun --nproc_per_node N`), every process trains (DDP) and only rank 0
    evaluates and writes the log, the plot, the summary and the final model; the others return no eval.

    Usage example:
    ```python
    from haystack_rl.training import Trainer

    trainer = Trainer({"model": "tiny", "env": "reverse_text", "output_dir": "runs/rt",
                       "sft": {"steps": 300}, "grpo": {"steps": 50}})
    result = trainer.run()
    print(result["model_dir"], result["metrics"]["eval_after"]["reward"])
    ```
    """

    def __init__(self, config: dict[str, Any], evaluate_before_after: bool = True) -> None:
        self.config = TrainConfig.from_dict(config).to_dict()
        self.evaluate_before_after = evaluate_before_after
        self.callbacks: list[Any] = []

    def add_callback(self, callback: Any) -> None:
        """Add a `transformers.TrainerCallback` to both stages (e.g. a progress display)."""
        self.callbacks.append(callback)

    @component.output_types(model_dir=str, metrics=dict)
    def run(self, resume: bool = False) -> dict[str, Any]:
        """
        Run the whole training.

        :param resume: Continue from the checkpoints in `output_dir` (a finished SFT stage is reused).
        :returns: `model_dir` (the final plain model directory) and `metrics` (train metrics, wall times,
            the `base_model` and, after SFT, `sft_model` directories, and eval summaries `eval_before`,
            `eval_sft`, `eval_after` when evaluation is on).
        """
        config = TrainConfig.from_dict(self.config)
        out = Path(config.output_dir)
        main = is_main_process()
        environment = config.build_environment()  # a user error surfaces before anything is written
        if main:
            if not resume and out.exists():
                for stale in (METRICS_FILE, CURVE_FILE, "summary.json"):
                    (out / stale).unlink(missing_ok=True)
                for stale_dir in ("sft", "grpo", "final", EVALS_DIR):
                    shutil.rmtree(out / stale_dir, ignore_errors=True)
            out.mkdir(parents=True, exist_ok=True)
            (out / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
            resolve_model(config.model)  # builds `tiny` once, before the other processes look for it
        wait_for_everyone()  # the output directory is clean and the tiny model built before anyone reads them
        model_dir = str(resolve_model(config.model))
        metrics: dict[str, Any] = {"base_model": model_dir}
        evaluate_here = self.evaluate_before_after and main
        sft_done = resume and (out / "sft" / "final" / "config.json").exists()
        # what SFT learns from is built and checked before any work (it fails fast, saying what to fix)
        rows = sft_rows(config, environment, model_dir) if config.sft.enabled and not sft_done else None

        if evaluate_here:
            metrics["eval_before"] = self._evaluate(config, environment, model_dir, "before")
        if config.sft.enabled:
            start = time.perf_counter()
            model_dir, sft_metrics = run_sft(config, environment, model_dir, out / "sft", resume, self.callbacks, rows)
            metrics.update(sft_metrics, sft_model=model_dir, sft_wall_s=time.perf_counter() - start)
            if evaluate_here and config.grpo.steps > 0:
                metrics["eval_sft"] = self._evaluate(config, environment, model_dir, "sft")
        final = out / "final"
        if config.grpo.steps > 0:
            start = time.perf_counter()
            model_dir, grpo_metrics = run_grpo(
                config, environment, model_dir, out / "grpo", final, resume, self.callbacks
            )
            metrics.update(grpo_metrics, grpo_wall_s=time.perf_counter() - start)
        else:
            if main:
                _copy_model(model_dir, final)
            wait_for_everyone()
            model_dir = str(final)
        if evaluate_here:
            metrics["eval_after"] = self._evaluate(config, environment, model_dir, "after")
        if main:
            max_new = config.eval.max_new_tokens or config.grpo.max_new_tokens
            write_training_card(model_dir, training_card(environment, model_dir, max_new, config.eval.temperature))
            title = f"{config.environment_label}: {config.model}"
            plot = plot_learning_curve(out / METRICS_FILE, out / CURVE_FILE, title=title)
            metrics["plot"] = str(plot) if plot else None
            (out / "summary.json").write_text(json.dumps(metrics, indent=2, default=str))
        wait_for_everyone()
        return {"model_dir": model_dir, "metrics": metrics}

    def _evaluate(self, config: TrainConfig, environment: Any, model_dir: str, label: str) -> dict[str, Any]:
        max_new = config.eval.max_new_tokens or config.grpo.max_new_tokens
        start = time.perf_counter()
        saved = Path(config.output_dir) / EVALS_DIR / label  # rollouts for `haystack-rl report`, as an eval run
        shutil.rmtree(saved, ignore_errors=True)  # always this evaluation's own rollouts, never an older run's
        summary = evaluate_model(environment, model_dir, max_new, config.eval.temperature, config.eval.num_examples,
                                 config.eval.rollouts_per_example, config.seed, output_dir=str(saved),
                                 breakdowns=config.eval.breakdowns)  # fmt: skip
        summary["wall_s"] = time.perf_counter() - start
        append_record(Path(config.output_dir) / METRICS_FILE, {"stage": "eval", "label": label, "time": time.time(),
                                                              "eval_reward": summary["reward"]})  # fmt: skip
        return summary

    def to_dict(self) -> dict[str, Any]:
        """Serialize (the config as a plain nested dict)."""
        return default_to_dict(self, config=self.config, evaluate_before_after=self.evaluate_before_after)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trainer:
        """Deserialize."""
        return default_from_dict(cls, data)


def _copy_model(model_dir: str, final: Path) -> Path:
    """Make `final` a plain copy of `model_dir` (used when GRPO is off)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if final.exists():
        shutil.rmtree(final)
    return save_plain_model(
        AutoModelForCausalLM.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir), final
    )
