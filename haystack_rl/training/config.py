"""Training configuration: typed settings (pydantic) read from YAML, with `--set key.sub=value` overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator

from haystack_rl.settings import Settings, SettingsError


class ConfigError(SettingsError):
    """A training configuration that cannot be used (unknown key, bad value, bad override)."""


class _Section(Settings):
    error_class = ConfigError


class SFTSettings(_Section):
    """Supervised warm start on an environment's demonstrations."""

    enabled: bool = True
    """Run SFT before GRPO."""
    steps: int = Field(300, ge=0)
    """Optimizer steps (takes precedence over `epochs` when > 0)."""
    epochs: float = Field(1.0, gt=0)
    """Passes over the demonstrations when `steps` is 0."""
    lr: float = Field(1e-3, gt=0)
    """Learning rate."""
    batch: int = Field(32, ge=1)
    """Per-device batch size."""
    quality: str = "expert"
    """How good the demonstrations are: `expert` (the environment's best, see `Environment.demonstrate`), or a name
    the environment understands (`noisy`, `random-legal`, a baseline)."""
    demonstrations: str | None = None
    """Instead of the environment's own: a JSONL file of transcripts (`{"messages": [...]}` a line, e.g. a
    `results.jsonl`), or a scripted policy `path/to/file.py:function` or `module:function` played on each example."""
    num_examples: int | None = Field(None, ge=1)
    """Training examples to demonstrate (when None: `steps * batch`, or all when `steps` is 0)."""
    unique: bool = False
    """Keep one copy of each distinct demonstration, so a rare situation weighs as much as a common one."""
    max_length: int = Field(512, ge=1)
    """Longest tokenized transcript kept (longer ones are truncated at the end)."""
    extra: dict[str, Any] = Field(default_factory=dict)
    """Any other `trl.SFTConfig` field (e.g. `lr_scheduler_type`, `warmup_steps`), passed through as is."""


ADVANTAGE_BASELINES = ("group", "batch")
"""Values of `grpo.advantage_baseline` (see `haystack_rl.training.advantages`)."""


class GRPOSettings(_Section):
    """GRPO through TRL's `GRPOTrainer`."""

    steps: int = Field(50, ge=0)
    """Optimizer steps."""
    num_generations: int = Field(8, ge=2)
    """Group size (completions per prompt; GRPO compares completions within a group)."""
    batch: int = Field(16, ge=1)
    """Completions per device and step (a multiple of `num_generations`)."""
    lr: float = Field(5e-5, gt=0)
    """Learning rate."""
    max_new_tokens: int = Field(64, ge=1)
    """Longest model reply (each turn)."""
    temperature: float = Field(1.0, ge=0)
    """Sampling temperature."""
    loss_type: Literal["grpo", "dapo", "dr_grpo", "bnpo", "cispo", "sapo", "luspo", "vespo"] = "dapo"
    """TRL loss."""
    beta: float = Field(0.0, ge=0)
    """KL coefficient (0 = no reference model)."""
    use_vllm: bool = False
    """Generate every turn with TRL's vLLM (needs a GPU)."""
    vllm_mode: Literal["server", "colocate"] = "server"
    """`server` (a `trl vllm-serve` process) or `colocate` (vLLM in the training process)."""
    vllm_server_base_url: str | None = None
    """URL of a `trl vllm-serve` server."""
    max_episode_tokens: int | None = Field(None, ge=1)
    """Stop an episode once the model generated this many tokens (None: the environment's turn limit decides)."""
    max_minutes: float | None = Field(None, gt=0)
    """Stop GRPO after this many minutes of training in this process, saving as after the last step."""
    resample_flat_groups: int = Field(0, ge=0)
    """Play a group whose rollouts all got the same reward (no gradient) again on another example, up to this many
    times a step (DAPO's dynamic sampling; 0 = off)."""
    advantage_baseline: Literal["group", "batch"] = "group"
    """`group`: reward minus its group's mean (GRPO); `batch`: minus the whole generation batch's mean."""
    negative_advantage_scale: float = Field(1.0, ge=0, le=1)
    """Multiplies negative advantages (1: GRPO; 0: learn only from rollouts that beat their baseline)."""
    share_prompt: bool = True
    """Score a group's completions on one pass over the prompt they share (the same log-probs, less compute)."""
    extra: dict[str, Any] = Field(default_factory=dict)
    """Any other `trl.GRPOConfig` field, passed through as is."""


class LoRASettings(_Section):
    """Optional LoRA through peft."""

    enabled: bool = False
    """Train adapters instead of all weights."""
    r: int = Field(8, ge=1)
    """Rank."""
    alpha: int = Field(16, ge=1)
    """Scaling numerator."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Adapter dropout."""
    target_modules: list[str] | str = "all-linear"
    """Module names, or `all-linear`."""
    merge_on_save: bool = True
    """Merge adapters into the base weights in the final directory (a plain HF model)."""


class EvalSettings(_Section):
    """Evaluation on the environment's eval split, before and after training and every N GRPO steps."""

    every_n_steps: int = Field(0, ge=0)
    """Evaluate during GRPO every N steps (0 = only before and after)."""
    num_examples: int | None = 50
    """Eval examples (all when None)."""
    rollouts_per_example: int = Field(1, ge=1)
    """Rollouts per example."""
    temperature: float = Field(0.0, ge=0)
    """Sampling temperature (0 = greedy)."""
    max_new_tokens: int | None = Field(None, ge=1)
    """Longest reply (defaults to `grpo.max_new_tokens`)."""
    breakdowns: list[str] = Field(default_factory=list)
    """`Rollout.info` keys to split the before/after figures by, e.g. `[opponent]` for tic_tac_toe: each metric
    per value appears as `KEY=VALUE/METRIC` (`opponent=random/win`)."""


class TrainConfig(_Section):
    """
    Everything a training run needs; `TrainConfig.from_yaml(path, overrides=["grpo.steps=10"])`. The JSON Schema
    (`TrainConfig.model_json_schema()`, `haystack-rl train --schema`) documents every key.

    Usage example:
    ```python
    from haystack_rl.training.config import ConfigError, TrainConfig

    config = TrainConfig.from_dict({"env": "reverse_text", "grpo": {"steps": 5}}, overrides=["grpo.lr=1e-4"])
    assert config.grpo.steps == 5 and config.grpo.lr == 1e-4
    try:
        TrainConfig.from_dict({"grpo": {"advantage_baseline": "global"}})
    except ConfigError as error:
        assert "grpo.advantage_baseline: input should be 'group' or 'batch'" in str(error)
    ```
    """

    model: str = "tiny"
    """A local Hugging Face model directory, or `tiny` (the embedded default model, built locally)."""
    env: str = "reverse_text"
    """A registered environment (see `haystack-rl envs`) or `path/to/file.py:load_environment`."""
    env_args: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments of the environment's `load_environment`."""
    agent: str | None = None
    """Instead of `env`: an agent YAML file; the environment is `ToolEnv.from_agent(agent, dataset)`."""
    pipeline: str | None = None
    """Instead of `env`: a pipeline YAML whose `generator` component(s) the model plays, one run per task."""
    generator: list[str] | str = Field(default_factory=list)
    """With `pipeline`: the chat generator component(s) the model plays."""
    inputs: dict[str, str] = Field(default_factory=dict)
    """With `pipeline`: `component.socket` -> task column (default: the inputs named as columns)."""
    dataset: str | None = None
    """With `agent` or `pipeline`: the tasks, a JSONL, JSON or CSV file."""
    eval_dataset: str | None = None
    """With `agent` or `pipeline`: evaluation tasks (default: `dataset`)."""
    reward: list[str] | str = "exact_match"
    """With `agent` or `pipeline`: rewards by name (`exact_match`, `numeric_match`, `numeric_closeness`, `token_f1`)
    or your own `path/to/file.py:function`."""
    metric: list[str] | str = Field(default_factory=list)
    """With `agent` or `pipeline`: metrics (weight 0: reported in evaluations, not rewarded), named as rewards are."""
    output_dir: str = "runs/train"
    """Where checkpoints, logs, evaluations, the plot and `final/` go."""
    seed: int = 0
    """Seed of training and of every example's episode seed."""
    save_steps: int = Field(50, ge=1)
    """Checkpoint every N steps (SFT and GRPO)."""
    allow_modules: list[str] = Field(default_factory=list)
    """Modules of your own that an environment YAML, agent file or code reference may import when loaded."""
    report_to: list[str] | str = "none"
    """Trackers that also get the logs, passed to TRL's `report_to` (`tensorboard`, `wandb`, `trackio`, or `none`)."""
    sft: SFTSettings = Field(default_factory=SFTSettings)
    grpo: GRPOSettings = Field(default_factory=GRPOSettings)
    lora: LoRASettings = Field(default_factory=LoRASettings)
    eval: EvalSettings = Field(default_factory=EvalSettings)

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.grpo.batch % self.grpo.num_generations:
            raise ValueError(f"grpo.batch ({self.grpo.batch}) must be a multiple of grpo.num_generations "
                             f"({self.grpo.num_generations})")  # fmt: skip
        if self.agent is not None and self.pipeline is not None:
            raise ValueError("agent and pipeline: give one of them (a pipeline with an Agent inside: use `agent`)")
        definition = "agent" if self.agent is not None else "pipeline" if self.pipeline is not None else None
        if definition is not None:
            if not self.dataset:
                raise ValueError(f"{definition}: training needs `dataset` (a JSONL, JSON or CSV file of tasks)")
            if self.env_args:
                raise ValueError(f"{definition}: `env_args` apply to `env`; with `{definition}`, the environment "
                                 f"comes from the {definition} file and `dataset`")  # fmt: skip
            if definition == "pipeline" and not self.generator:
                raise ValueError("pipeline: name the chat generator component(s) to train in `generator`")
        elif self.dataset or self.eval_dataset:
            raise ValueError("dataset: a dataset file goes with `agent: AGENT.yml` or `pipeline: PIPELINE.yml`; "
                             "named environments bring their own")  # fmt: skip
        return self

    @property
    def environment_label(self) -> str:
        """What the run trains on, for titles: the environment name, or the agent or pipeline file."""
        return self.agent or self.pipeline or self.env

    def build_environment(self) -> Any:
        """
        The environment to train on: `env` (a registered name or a code reference) with `env_args`,
        `ToolEnv.from_agent(agent, dataset, ...)` or a `PipelineEnv`; `allow_modules` are trusted first.
        """
        from haystack_rl.trust import trust_modules

        trust_modules(self.allow_modules)
        if self.agent is None and self.pipeline is None:
            from haystack_rl.registry import load_environment
            from haystack_rl.trust import UserCodeError

            try:
                return load_environment(self.env, **self.env_args)
            except UserCodeError:
                raise
            except (TypeError, ValueError) as error:
                raise ConfigError(f"env: {self.env} cannot be built with env_args {self.env_args}: {error}") from None
        from haystack_rl.rubrics.named import definition_rubric
        from haystack_rl.tasks import load_tasks

        rewards = [self.reward] if isinstance(self.reward, str) else list(self.reward)
        metrics = [self.metric] if isinstance(self.metric, str) else list(self.metric)
        try:
            if self.agent is not None:
                from haystack_rl.environments.tool_env import ToolEnv

                rubric = definition_rubric(rewards, metrics, tools=True)
                return ToolEnv.from_agent(self.agent, self.dataset or "", rubric=rubric,
                                          eval_dataset=self.eval_dataset)  # fmt: skip
            from haystack_rl.environments.pipeline_env import PipelineEnv

            return PipelineEnv(self.pipeline or "", self.generator, self.inputs or None,
                               dataset=load_tasks(self.dataset or "", required=()),
                               rubric=definition_rubric(rewards, metrics),
                               eval_dataset=load_tasks(self.eval_dataset, required=()) if self.eval_dataset else None,
                               name=Path(self.pipeline or "pipeline").stem)  # fmt: skip
        except (OSError, ValueError, TypeError) as error:
            raise ConfigError(str(error)) from error

    # --- loading -----------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, overrides: list[str] | None = None) -> TrainConfig:
        """Build from a nested dict after `key.sub=value` overrides; a problem raises a one-line `ConfigError`."""
        return cls.load(data, overrides or [])

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
        """Load a YAML file (a mapping at the top level) and apply `key.sub=value` overrides."""
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except OSError as error:
            raise ConfigError(f"cannot read config {path}: {error.strerror or error}") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"config {path} is not valid YAML: {' '.join(str(error).split())}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config {path}: the top level must be a mapping, got {type(data).__name__}")
        return cls.from_dict(data, overrides)

    def to_yaml(self) -> str:
        """YAML text of `to_dict`."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)
