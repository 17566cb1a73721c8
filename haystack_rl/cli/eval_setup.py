"""
What an eval run is: its settings (`EvalSettings`), its environment (registered, or an agent or pipeline YAML with
a dataset), and the checks `--resume` makes.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from haystack_rl.cli.app import CliError
from haystack_rl.settings import Settings

RUN_CONFIG_FILE = "run.json"
#: run.json keys that must match for `--resume` (the others, e.g. -n or -c, may change between runs).
RESUME_KEYS = ("env", "env_args", "model", "base_url", "rollouts_per_example", "seed", "split",
               "max_tokens", "temperature")  # fmt: skip


class EvalSettings(Settings):
    """What an evaluation runs: every `eval` option, and what `--set KEY=VALUE` overrides (run.json records it)."""

    env: str | None = None
    """A registered environment or a code reference (`path/to/file.py:function`); None with `agent`/`pipeline`."""
    env_args: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments of the environment's `load_environment`."""
    model: str = "tiny"
    """tiny, a local model directory, baseline:NAME, or a served model name (with `base_url`)."""
    base_url: str | None = None
    """An OpenAI-compatible server."""
    api_key_env: str | None = None
    """The environment variable holding the server's API key."""
    num_examples: int = 10
    """Examples to evaluate (-1: all)."""
    rollouts_per_example: int = Field(1, ge=1)
    """Rollouts per example (a group)."""
    concurrency: int = Field(8, ge=1)
    """Episodes in flight at once."""
    max_tokens: int = Field(256, ge=1)
    """Most new tokens per model reply."""
    temperature: float = Field(1.0, ge=0)
    """Sampling temperature."""
    seed: int = 0
    """Run seed (each example's group seed derives from it)."""
    split: Literal["eval", "train"] = "eval"
    """Dataset split."""
    max_retries: int = Field(2, ge=0)
    """Retries per request to `base_url`."""
    timeout: float = Field(60.0, gt=0)
    """Seconds per request to `base_url`."""
    tokens: bool = False
    """With `base_url`: exact token ids over vLLM's completions API."""
    agent: str | None = None
    """An agent YAML whose tools, system prompt and step limit make the environment (with `dataset`)."""
    pipeline: str | None = None
    """A pipeline YAML whose `generator` component(s) the policy plays, one run per task of `dataset`."""
    generator: list[str] = Field(default_factory=list)
    """With `pipeline`: the chat generator components."""
    inputs: dict[str, str] = Field(default_factory=dict)
    """With `pipeline`: `component.socket` -> task column (default: inputs named as columns)."""
    dataset: str | None = None
    """With `agent` or `pipeline`: the tasks."""
    reward: list[str] = Field(default_factory=lambda: ["exact_match"])
    """With `agent` or `pipeline`: rewards by name or code reference."""
    metric: list[str] = Field(default_factory=list)
    """With `agent` or `pipeline`: metrics (weight 0: reported, not rewarded), named as rewards are."""
    allow_modules: list[str] = Field(default_factory=list)
    """Modules of yours that YAML loading may import."""


def model_slug(model: str) -> str:
    """A file-name-safe short name for a model spec (`baseline:oracle` -> `baseline-oracle`)."""
    name = model.rstrip("/\\")
    if os.sep in name or "/" in name:
        name = Path(name).name or name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "model"


def parse_env_args(text: str | None) -> dict[str, Any]:
    """Parse `-a` JSON into keyword arguments for `load_environment`."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise CliError(f"-a/--env-args is not valid JSON ({error.msg} at position {error.pos}): {text!r}") from None
    if not isinstance(value, dict):
        raise CliError(f"-a/--env-args must be a JSON object like '{{\"max_chars\": 20}}', got {text!r}")
    return value


def check_resume(output_dir: Path, config: dict[str, Any]) -> None:
    """Refuse to resume into a directory whose run.json was written for a different run."""
    path = output_dir / RUN_CONFIG_FILE
    if not path.exists():
        raise CliError(f"--resume: {path} not found; is {output_dir} the output directory of an earlier eval?")
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise CliError(f"--resume: {path} is not valid JSON ({error.msg})") from None
    differences = [
        f"{key}: {previous.get(key)!r} there, {config.get(key)!r} now"
        for key in RESUME_KEYS
        if previous.get(key) != config.get(key)
    ]
    if differences:
        raise CliError(f"--resume: {output_dir} holds a different run ({'; '.join(differences)})")


def build_environment(settings: EvalSettings) -> tuple[Any, Any]:
    """The environment, and the policy when it comes from the agent file (None otherwise)."""
    from haystack_rl.trust import add_working_directory, trust_modules

    add_working_directory()
    trust_modules(settings.allow_modules)
    choices = (("an environment", settings.env is not None or settings.env_args), ("--agent", settings.agent),
               ("--pipeline", settings.pipeline))  # fmt: skip
    routes = [name for name, given in choices if given]
    if len(routes) > 1:
        raise CliError(f"give one of an environment (with -a), --agent AGENT.yml or --pipeline PIPELINE.yml, not "
                       f"{' and '.join(routes)}")  # fmt: skip
    if settings.agent is not None or settings.pipeline is not None or settings.dataset is not None:
        return _definition_environment(settings)
    if settings.env is None:
        raise CliError("give an environment (a name from `haystack-rl envs`, or path/to/file.py:load_environment), "
                       "or --agent AGENT.yml --dataset FILE")  # fmt: skip
    from haystack_rl.registry import load_environment
    from haystack_rl.trust import UserCodeError

    try:
        return load_environment(settings.env, **settings.env_args), None
    except UserCodeError:
        raise
    except (TypeError, ValueError) as error:
        given = f" with {settings.env_args}" if settings.env_args else ""
        raise CliError(f"{settings.env}: cannot build the environment{given}: {error}") from None


def _definition_environment(settings: EvalSettings) -> tuple[Any, Any]:
    """The environment of an agent or pipeline YAML and a task dataset, and the YAML's own generator."""
    from haystack_rl.rubrics.named import definition_rubric
    from haystack_rl.tasks import load_tasks

    if not settings.dataset or (settings.agent is None and settings.pipeline is None):
        raise CliError("--agent AGENT.yml (or --pipeline PIPELINE.yml) and --dataset FILE go together")
    try:
        if settings.agent is not None:
            from haystack_rl.agents import load_agent
            from haystack_rl.environments.tool_env import ToolEnv

            rubric = definition_rubric(settings.reward, settings.metric, tools=True)
            environment: Any = ToolEnv.from_agent(settings.agent, settings.dataset, rubric=rubric)
            return environment, load_agent(settings.agent).chat_generator
        from haystack_rl.environments.pipeline_env import PipelineEnv

        if not settings.generator:
            raise CliError("--pipeline needs --generator NAME: the chat generator component the model plays")
        tasks = load_tasks(settings.dataset, required=())
        name = Path(settings.pipeline or "pipeline").stem
        environment = PipelineEnv(settings.pipeline or "", settings.generator, settings.inputs or None, dataset=tasks,
                                  rubric=definition_rubric(settings.reward, settings.metric), name=name)  # fmt: skip
        return environment, environment.own_generators
    except (OSError, ValueError, TypeError) as error:
        if isinstance(error, CliError):
            raise
        raise CliError(str(error)) from None
