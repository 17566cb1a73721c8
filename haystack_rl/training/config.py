"""Training configuration: nested dataclasses loaded from YAML, with `--set key.sub=value` overrides."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A training configuration that cannot be used (unknown key, bad value, bad override)."""


@dataclass
class SFTSettings:
    """
    Supervised warm start on an environment's demonstrations.

    :param enabled: Run SFT before GRPO.
    :param steps: Optimizer steps (takes precedence over `epochs` when > 0).
    :param epochs: Passes over the demonstrations when `steps` is 0.
    :param lr: Learning rate.
    :param batch: Per-device batch size.
    :param quality: How good the demonstrations are: `expert` (the environment's best, see
        `Environment.demonstrate`), or a name the environment understands (`noisy`, `random-legal`, a baseline).
    :param demonstrations: Instead of the environment's own: a JSONL file of transcripts (`{"messages": [...]}`
        a line, e.g. a `results.jsonl`), or a scripted policy `path/to/file.py:function` or `module:function`
        (`(messages, rng) -> reply`) played on each training example.
    :param num_examples: Training examples to demonstrate (when None: `steps * batch`, or all when `steps` is 0).
    :param unique: Keep one copy of each distinct demonstration, so a rare situation weighs as much as a common
        one (a deterministic expert replays the same few games over and over; raise `num_examples` to reach
        the rare ones).
    :param max_length: Longest tokenized transcript kept (longer ones are truncated).
    :param extra: Any other `trl.SFTConfig` field (e.g. `lr_scheduler_type`, `warmup_steps`), passed through as is.
    """

    enabled: bool = True
    steps: int = 300
    epochs: float = 1.0
    lr: float = 1e-3
    batch: int = 32
    quality: str = "expert"
    demonstrations: str | None = None
    num_examples: int | None = None
    unique: bool = False
    max_length: int = 512
    extra: dict[str, Any] = field(default_factory=dict)


ADVANTAGE_BASELINES = ("group", "batch")
"""Values of `grpo.advantage_baseline` (see `haystack_rl.training.advantages`)."""


@dataclass
class GRPOSettings:
    """
    GRPO through TRL's `GRPOTrainer`.

    :param steps: Optimizer steps.
    :param num_generations: Group size (completions per prompt).
    :param batch: Completions per device and step (a multiple of `num_generations`).
    :param lr: Learning rate.
    :param max_new_tokens: Longest completion (TRL's `max_completion_length`).
    :param temperature: Sampling temperature.
    :param loss_type: TRL loss (`dapo`, `grpo`, `dr_grpo`, `bnpo`, ...).
    :param beta: KL coefficient (0 = no reference model).
    :param use_vllm: Generate with vLLM (needs a GPU; passthrough to TRL).
    :param vllm_mode: `server` or `colocate` (passthrough).
    :param vllm_server_base_url: URL of a `trl vllm-serve` server (passthrough).
    :param max_episode_tokens: Multi-turn: stop an episode once the model generated this many tokens
        (None: the environment's own turn limit decides).
    :param max_minutes: Stop GRPO after this many minutes of training in this process, saving the model as
        after the last step (None: run all `steps`). A resumed run gets the full budget again.
    :param resample_flat_groups: Multi-turn and tool environments: play a group whose rollouts all got the
        same reward (no gradient) again on another training example, up to this many times a step (DAPO's
        dynamic sampling; 0 = off). Costs generation time; pays when most groups are flat (rare successes).
    :param advantage_baseline: `group`: GRPO's advantages (reward minus its group's mean); `batch`: reward
        minus the mean of the whole generation batch, so groups whose rollouts all failed still push down
        what they did (see `haystack_rl.training.advantages`).
    :param negative_advantage_scale: Multiplies negative advantages (1: GRPO; 0: learn only from rollouts
        that beat their baseline; between: failures push down less than successes pull up).
    :param share_prompt: Score a group's completions on one pass over the prompt they share, not one per
        completion (the same log-probs and gradient; tool prompts are most of a row, so much less compute).
    :param extra: Any other `GRPOConfig` field, passed through as is.
    """

    steps: int = 50
    num_generations: int = 8
    batch: int = 16
    lr: float = 5e-5
    max_new_tokens: int = 64
    temperature: float = 1.0
    loss_type: str = "dapo"
    beta: float = 0.0
    use_vllm: bool = False
    vllm_mode: str = "server"
    vllm_server_base_url: str | None = None
    max_episode_tokens: int | None = None
    max_minutes: float | None = None
    resample_flat_groups: int = 0
    advantage_baseline: str = "group"
    negative_advantage_scale: float = 1.0
    share_prompt: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoRASettings:
    """
    Optional LoRA through peft.

    :param enabled: Train adapters instead of all weights.
    :param r: Rank.
    :param alpha: Scaling numerator.
    :param dropout: Adapter dropout.
    :param target_modules: Module names, or `all-linear`.
    :param merge_on_save: Merge adapters into the base weights in the final directory (a plain HF model).
    """

    enabled: bool = False
    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: list[str] | str = "all-linear"
    merge_on_save: bool = True


@dataclass
class EvalSettings:
    """
    Evaluation on the environment's eval split, before and after training and every N GRPO steps.

    :param every_n_steps: Evaluate during GRPO every N steps (0 = only before and after).
    :param num_examples: Eval examples (all when None).
    :param rollouts_per_example: Rollouts per example.
    :param temperature: Sampling temperature (0 = greedy).
    :param max_new_tokens: Longest reply (defaults to `grpo.max_new_tokens`).
    """

    every_n_steps: int = 0
    num_examples: int | None = 50
    rollouts_per_example: int = 1
    temperature: float = 0.0
    max_new_tokens: int | None = None


@dataclass
class TrainConfig:
    """
    Everything a training run needs; `TrainConfig.from_yaml(path, overrides=["grpo.steps=10"])`.

    :param model: A local HF model directory, or `tiny` (the embedded default model, built locally).
    :param env: Environment name (see `haystack-rl envs`); ignored when `agent` is set.
    :param env_args: Keyword arguments of the environment's `load_environment`.
    :param agent: Instead of `env`: an agent YAML file; the environment is `ToolEnv.from_agent(agent, dataset)`
        (the Agent's own tools, system prompt and step limit).
    :param dataset: With `agent`: the tasks (`prompt`, `answer`), a JSONL, JSON or CSV file.
    :param eval_dataset: With `agent` or `pipeline`: evaluation tasks (default: `dataset`).
    :param pipeline: Instead of `env`: a pipeline YAML whose `generator` component(s) the model plays, one run per
        task of `dataset` (`inputs`: `component.socket` -> task column; default: the inputs named as columns).
    :param reward: With `agent`: the answer reward of `tool_use_rubric` (`exact_match`, `numeric_match`,
        `numeric_closeness`, `token_f1`).
    :param output_dir: Where checkpoints, logs, the plot and `final/` go.
    :param seed: Seed of training and of every example's episode seed.
    :param save_steps: Checkpoint every N steps (SFT and GRPO).
    :param allow_modules: Modules (of your own) that the environment's YAML, an agent file or a code reference
        may import when loaded (Haystack's deserialization allowlist; `haystack_rl` and Haystack are trusted).
    :param report_to: Trackers that also get the SFT and GRPO logs, passed to TRL's `report_to` (`tensorboard`,
        `wandb`, `trackio`, a list of them, or `none`: local files only, `metrics.jsonl` and the plot).

    Usage example:
    ```python
    from haystack_rl.training.config import TrainConfig

    config = TrainConfig.from_dict({"env": "reverse_text", "grpo": {"steps": 5}}, overrides=["grpo.lr=1e-4"])
    assert config.grpo.steps == 5 and config.grpo.lr == 1e-4
    ```
    """

    model: str = "tiny"
    env: str = "reverse_text"
    env_args: dict[str, Any] = field(default_factory=dict)
    agent: str | None = None
    pipeline: str | None = None
    generator: list[str] | str = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)
    dataset: str | None = None
    eval_dataset: str | None = None
    reward: list[str] | str = "exact_match"
    output_dir: str = "runs/train"
    seed: int = 0
    save_steps: int = 50
    allow_modules: list[str] = field(default_factory=list)
    report_to: list[str] | str = "none"
    sft: SFTSettings = field(default_factory=SFTSettings)
    grpo: GRPOSettings = field(default_factory=GRPOSettings)
    lora: LoRASettings = field(default_factory=LoRASettings)
    eval: EvalSettings = field(default_factory=EvalSettings)

    def __post_init__(self) -> None:
        if self.grpo.num_generations < 2:
            raise ConfigError("grpo.num_generations must be >= 2 (GRPO compares completions within a group)")
        if self.grpo.batch % self.grpo.num_generations:
            raise ConfigError(
                f"grpo.batch ({self.grpo.batch}) must be a multiple of "
                f"grpo.num_generations ({self.grpo.num_generations})"
            )
        if self.grpo.resample_flat_groups < 0:
            raise ConfigError("grpo.resample_flat_groups must be >= 0")
        if self.grpo.advantage_baseline not in ADVANTAGE_BASELINES:
            raise ConfigError(f"grpo.advantage_baseline must be 'group' or 'batch', "
                              f"got {self.grpo.advantage_baseline!r}")  # fmt: skip
        if not 0.0 <= self.grpo.negative_advantage_scale <= 1.0:
            raise ConfigError(f"grpo.negative_advantage_scale must be in [0, 1], "
                              f"got {self.grpo.negative_advantage_scale}")  # fmt: skip
        if self.save_steps < 1:
            raise ConfigError("save_steps must be >= 1")
        if self.agent is not None and self.pipeline is not None:
            raise ConfigError("agent and pipeline: give one of them (a pipeline with an Agent inside: use `agent`)")
        definition = "agent" if self.agent is not None else "pipeline" if self.pipeline is not None else None
        if definition is not None:
            if not self.dataset:
                raise ConfigError(f"{definition}: training needs `dataset` (a JSONL, JSON or CSV file of tasks)")
            if self.env_args:
                raise ConfigError(f"{definition}: `env_args` apply to `env`; with `{definition}`, the environment "
                                  f"comes from the {definition} file and `dataset`")  # fmt: skip
            if definition == "pipeline" and not self.generator:
                raise ConfigError("pipeline: name the chat generator component(s) to train in `generator`")
        elif self.dataset or self.eval_dataset:
            raise ConfigError("dataset: a dataset file goes with `agent: AGENT.yml` or `pipeline: PIPELINE.yml`; "
                              "named environments bring their own")  # fmt: skip

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
        from haystack_rl.rubrics.named import named_rubric, reward_function
        from haystack_rl.tasks import load_tasks

        rewards = [self.reward] if isinstance(self.reward, str) else list(self.reward)
        try:
            if self.agent is not None:
                from haystack_rl.environments.tool_env import ToolEnv
                from haystack_rl.rubrics.tool_rewards import tool_use_rubric

                rubric = tool_use_rubric(reward_function(rewards[0]))
                for extra in rewards[1:]:
                    rubric.add(reward_function(extra))
                return ToolEnv.from_agent(self.agent, self.dataset or "", rubric=rubric,
                                          eval_dataset=self.eval_dataset)  # fmt: skip
            from haystack_rl.environments.pipeline_env import PipelineEnv

            return PipelineEnv(self.pipeline or "", self.generator, self.inputs or None,
                               dataset=load_tasks(self.dataset or "", required=()), rubric=named_rubric(rewards),
                               eval_dataset=load_tasks(self.eval_dataset, required=()) if self.eval_dataset else None,
                               name=Path(self.pipeline or "pipeline").stem)  # fmt: skip
        except (OSError, ValueError, TypeError) as error:
            raise ConfigError(str(error)) from error

    # --- loading -----------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, overrides: list[str] | None = None) -> TrainConfig:
        """Build from a nested dict; unknown keys and bad types raise `ConfigError` naming the key."""
        data = _deep_copy(data or {})
        for override in overrides or []:
            _apply_override(data, override)
        return _build(cls, data, "")

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
        """Load a YAML file (a mapping at the top level) and apply `key.sub=value` overrides."""
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ConfigError(f"cannot read config {path}: {error}") from error
        if not isinstance(data, dict):
            raise ConfigError(f"config {path}: the top level must be a mapping, got {type(data).__name__}")
        return cls.from_dict(data, overrides)

    def to_dict(self) -> dict[str, Any]:
        """A plain nested dict (YAML/JSON friendly) that `from_dict` reads back."""
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        """YAML text of `to_dict`."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _deep_copy(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in data.items()}


def _apply_override(data: dict[str, Any], override: str) -> None:
    """Apply `a.b=value` (value parsed as YAML, so `3`, `1e-4`, `true`, `[q, v]` have their types)."""
    if "=" not in override:
        raise ConfigError(f"bad override {override!r}: expected key.sub=value")
    key, raw = override.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"bad override {override!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as error:
        raise ConfigError(f"bad override {override!r}: {error}") from error
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"bad override {override!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def _build(cls: type[Any], data: dict[str, Any], prefix: str) -> Any:
    """Instantiate dataclass `cls` from `data`, checking keys and simple types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {', '.join(prefix + k for k in unknown)}; valid: {', '.join(sorted(fields))}"
        )
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(typing.cast(type, hint), value if value is not None else {}, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(value, hint, f"{prefix}{name}")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: {error}") from error


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check `value` against a simple type hint (int/float/str/bool/list/dict, optionally None)."""
    origin = typing.get_origin(hint)
    options = typing.get_args(hint) if origin in (typing.Union, types.UnionType) else (hint,)
    if value is None:
        if type(None) in options:
            return None
        raise ConfigError(f"{key}: may not be null")
    for option in options:
        base = typing.get_origin(option) or option
        if base is bool and isinstance(value, bool):
            return value
        if base is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if base is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if base is str and isinstance(value, str):
            return value
        if base is list and isinstance(value, list):
            return list(value)
        if base is dict and isinstance(value, dict):
            return dict(value)
    # YAML reads 1e-4 as a string; accept numeric strings for numeric fields.
    if isinstance(value, str) and any(o in (int, float) for o in options):
        try:
            return int(value) if int in options and value.strip().lstrip("-").isdigit() else float(value)
        except ValueError:
            pass
    names = " | ".join(getattr(o, "__name__", str(o)) for o in options)
    raise ConfigError(f"{key}: expected {names}, got {value!r}")
