"""GRPO through TRL's GRPOTrainer: episodes played by the environment loop (`rollout_func`), scored by its rubric."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from transformers import PrinterCallback, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from haystack_rl.environments.base import Environment
from haystack_rl.training.callbacks import JsonlMetricsCallback, TimeLimitCallback, append_record
from haystack_rl.training.checkpoints import last_complete_checkpoint
from haystack_rl.training.config import TrainConfig
from haystack_rl.training.evaluation import evaluate, make_policy
from haystack_rl.training.model_setup import cpu_friendly_args, lora_config, save_on_main
from haystack_rl.training.multiturn import EnvRolloutFunc
from haystack_rl.training.rewards import example_row, scored_reward_funcs

logger = logging.getLogger(__name__)


class PeriodicEvalCallback(TrainerCallback):
    """Evaluates the in-memory policy on the eval split every `every_n_steps` and logs `eval_reward`."""

    def __init__(self, config: TrainConfig, environment: Environment, metrics_path: str | Path) -> None:
        self.config = config
        self.environment = environment
        self.metrics_path = Path(metrics_path)

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        """Run the eval when the step is a multiple of `every_n_steps` (main process only)."""
        every = self.config.eval.every_n_steps
        if every <= 0 or state.global_step % every or not state.is_world_process_zero:
            return
        model, tokenizer = kwargs.get("model"), kwargs.get("processing_class")
        if model is None or tokenizer is None:
            return
        summary = evaluate_in_memory(self.config, self.environment, model, tokenizer)
        append_record(self.metrics_path, {"stage": "eval", "step": state.global_step, "eval_reward": summary["reward"],
                                          **{f"eval/{k}": v for k, v in summary.items() if k != "reward"}})  # fmt: skip


def evaluate_in_memory(config: TrainConfig, environment: Environment, model: Any, tokenizer: Any) -> dict[str, Any]:
    """Evaluate an in-memory model with the config's eval settings."""
    max_new = config.eval.max_new_tokens or config.grpo.max_new_tokens
    policy = make_policy(model, max_new, config.eval.temperature, tokenizer)
    return evaluate(environment, policy, config.eval.num_examples, config.eval.rollouts_per_example, config.seed)


def train_dataset(environment: Environment, seed: int) -> Any:
    """The GRPO dataset: conversational prompts plus `example_id`/`example_json`/`episode_seed` columns."""
    from datasets import Dataset

    return Dataset.from_list([example_row(environment, example, seed) for example in environment.examples("train")])


def grpo_args(config: TrainConfig, output_dir: str | Path, reward_weights: list[float]) -> Any:
    """`GRPOConfig` from the config's `grpo` section (`extra` passes any other field through)."""
    from trl import GRPOConfig

    grpo = config.grpo
    kwargs: dict[str, Any] = {
        "output_dir": str(output_dir),
        "max_steps": grpo.steps,
        "per_device_train_batch_size": grpo.batch,
        "num_generations": grpo.num_generations,
        "max_completion_length": grpo.max_new_tokens,
        "temperature": grpo.temperature,
        "learning_rate": grpo.lr,
        "loss_type": grpo.loss_type,
        "beta": grpo.beta,
        "reward_weights": reward_weights,
        "logging_steps": 1,
        "save_steps": config.save_steps,
        "save_total_limit": 2,
        "report_to": config.report_to,
        "seed": config.seed,
        "use_vllm": grpo.use_vllm,
        "vllm_mode": grpo.vllm_mode,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        **cpu_friendly_args(),
    }
    if grpo.vllm_server_base_url:
        kwargs["vllm_server_base_url"] = grpo.vllm_server_base_url
    kwargs.update(grpo.extra)
    return GRPOConfig(**kwargs)


def build_grpo_trainer(
    config: TrainConfig,
    environment: Environment,
    model_dir: str,
    output_dir: str | Path,
    callbacks: list[Any] | None = None,
) -> Any:
    """
    A ready `trl.GRPOTrainer` for `environment`, starting from `model_dir`, checkpointing under `output_dir`.

    Every environment trains through `EnvRolloutFunc` (TRL's `rollout_func`: the episode loop evaluation plays,
    `env_mask` on the tokens the environment wrote), with one TRL reward function per rubric function.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from haystack_rl.training.advantages import AdvantageGRPOTrainer

    output_dir = Path(output_dir)
    reward_funcs, weights = scored_reward_funcs(environment)
    rollout_func = EnvRolloutFunc(
        environment,
        model_dir,
        config.grpo.num_generations,
        config.seed,
        config.grpo.max_new_tokens,
        config.grpo.temperature,
        config.grpo.max_episode_tokens,
        config.grpo.resample_flat_groups,
    )
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    metrics_path = output_dir.parent / "metrics.jsonl"
    with warnings.catch_warnings():  # this package is what uses TRL's experimental rollout_func, not the user
        warnings.filterwarnings("ignore", message="You are using 'rollout_func'")
        trainer = AdvantageGRPOTrainer(
            model=model,
            reward_funcs=list(reward_funcs),
            args=grpo_args(config, output_dir, weights),
            train_dataset=train_dataset(environment, config.seed),
            processing_class=tokenizer,
            rollout_func=rollout_func,
            peft_config=lora_config(config) if config.lora.enabled else None,
            callbacks=[
                JsonlMetricsCallback(metrics_path, "grpo", extra=rollout_func.pop_metrics),
                PeriodicEvalCallback(config, environment, metrics_path),
                *([TimeLimitCallback(config.grpo.max_minutes)] if config.grpo.max_minutes else []),
                *(callbacks or []),
            ],
            advantage_baseline=config.grpo.advantage_baseline,
            negative_advantage_scale=config.grpo.negative_advantage_scale,
            share_prompt=config.grpo.share_prompt,
        )
    trainer.remove_callback(PrinterCallback)  # metrics go to metrics.jsonl and the progress display
    return trainer


def run_grpo(
    config: TrainConfig,
    environment: Environment,
    model_dir: str,
    output_dir: str | Path,
    final_dir: str | Path,
    resume: bool = False,
    callbacks: list[Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """
    GRPO from `model_dir` (see `build_grpo_trainer`); the plain final model goes to `final_dir`.

    :param resume: Continue from the last checkpoint under `output_dir`, if any.
    :returns: (final model directory, train metrics).
    """
    output_dir = Path(output_dir)
    trainer = build_grpo_trainer(config, environment, model_dir, output_dir, callbacks)
    checkpoint = last_complete_checkpoint(output_dir) if resume else None
    if checkpoint:
        logger.info("resuming GRPO from %s", checkpoint)
    result = trainer.train(resume_from_checkpoint=checkpoint)
    final = save_on_main(trainer.model, trainer.processing_class, final_dir, merge=config.lora.merge_on_save)
    metrics: dict[str, Any] = {f"grpo_{k}": v for k, v in result.metrics.items()}
    metrics["grpo_resumed_from"] = checkpoint
    metrics["grpo_steps_done"] = trainer.state.global_step
    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TimeLimitCallback) and callback.stopped_at_step is not None:
            metrics["grpo_time_limit_hit"] = True
    rollout_func = trainer.rollout_func
    if isinstance(rollout_func, EnvRolloutFunc) and rollout_func.reward_errors:
        metrics["reward_errors"] = dict(rollout_func.reward_errors)
    return str(final), metrics
