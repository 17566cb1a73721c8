"""`haystack-rl eval`: evaluate a model on an environment (rollouts to results.jsonl, the summary to metadata.json)."""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import typer
from pydantic import Field
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from haystack_rl.cli.app import CliError, app, command_line, console, err_console, quiet_libraries, user_errors
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
    from haystack_rl.rubrics.named import named_rubric, reward_function
    from haystack_rl.tasks import load_tasks

    if not settings.dataset or (settings.agent is None and settings.pipeline is None):
        raise CliError("--agent AGENT.yml (or --pipeline PIPELINE.yml) and --dataset FILE go together")
    try:
        if settings.agent is not None:
            from haystack_rl.agents import load_agent
            from haystack_rl.environments.tool_env import ToolEnv
            from haystack_rl.rubrics.tool_rewards import tool_use_rubric

            rubric = tool_use_rubric(reward_function(settings.reward[0]))
            for extra in settings.reward[1:]:
                rubric.add(reward_function(extra))
            environment: Any = ToolEnv.from_agent(settings.agent, settings.dataset, rubric=rubric)
            return environment, load_agent(settings.agent).chat_generator
        from haystack_rl.environments.pipeline_env import PipelineEnv

        if not settings.generator:
            raise CliError("--pipeline needs --generator NAME: the chat generator component the model plays")
        tasks = load_tasks(settings.dataset, required=())
        name = Path(settings.pipeline or "pipeline").stem
        environment = PipelineEnv(settings.pipeline or "", settings.generator, settings.inputs or None, dataset=tasks,
                                  rubric=named_rubric(settings.reward), name=name)  # fmt: skip
        return environment, environment.own_generators
    except (OSError, ValueError, TypeError) as error:
        if isinstance(error, CliError):
            raise
        raise CliError(str(error)) from None


@app.command("eval")
def eval_command(
    ctx: typer.Context,
    env: str | None = typer.Argument(
        None, help="Environment: a name (see `haystack-rl envs`), path/to/file.py:function or package.module:function."
    ),
    model: str = typer.Option(
        "tiny",
        "--model",
        "-m",
        help="tiny | tiny-init | a local model directory | baseline:NAME | baseline:path/to/file.py:function "
        "| a served model name (with --base-url).",
    ),
    base_url: str | None = typer.Option(
        None, "--base-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1."
    ),
    api_key_env: str | None = typer.Option(
        None, "--api-key-env", help="Name of the environment variable holding the API key (never the key itself)."
    ),
    num_examples: int = typer.Option(10, "--num-examples", "-n", help="Examples to evaluate (-1: all)."),
    rollouts_per_example: int = typer.Option(1, "--rollouts-per-example", "-r", min=1, help="Rollouts per example."),
    concurrency: int = typer.Option(8, "--concurrency", "-c", min=1, help="Episodes in flight at once."),
    env_args: str | None = typer.Option(None, "--env-args", "-a", help="JSON object of load_environment arguments."),
    max_tokens: int = typer.Option(256, "--max-tokens", min=1, help="Max new tokens per model reply."),
    temperature: float = typer.Option(1.0, "--temperature", min=0.0, help="Sampling temperature."),
    seed: int = typer.Option(0, "--seed", help="Run seed (each example's group seed derives from it)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Output directory (default: outputs/evals/...)."),
    resume: bool = typer.Option(False, "--resume", help="Finish an interrupted run in --output."),
    split: str = typer.Option("eval", "--split", help="Dataset split: eval or train."),
    max_retries: int = typer.Option(
        2, "--max-retries", min=0, help="Retries per request to --base-url on 429/5xx/timeouts (with backoff)."
    ),
    timeout: float = typer.Option(60.0, "--timeout", min=0.001, help="Seconds per request to --base-url."),
    tokens: bool = typer.Option(
        False,
        "--tokens",
        help="With --base-url: exact token ids over vLLM's completions API (the chat template renders here, with "
        "the tokenizer of --model: a local model directory the server serves under that name).",
    ),
    fail_on_error: bool = typer.Option(
        False, "--fail-on-error", help="Exit with code 1 when any rollout failed (errors are always recorded)."
    ),
    agent: Path | None = typer.Option(
        None,
        "--agent",
        help="Instead of ENV: an agent YAML; its tools, system prompt and step limit make the "
        "environment, and its chat generator is the policy unless --model is given.",
    ),
    pipeline: Path | None = typer.Option(
        None, "--pipeline", help="Instead of ENV: a pipeline YAML; one run per task, --generator played by the model."
    ),
    generator: list[str] = typer.Option(
        [], "--generator", help="With --pipeline: the chat generator component to evaluate/train (repeatable)."
    ),
    inputs: list[str] = typer.Option(
        [], "--input-column", help="With --pipeline: COMPONENT.SOCKET=COLUMN, the task column feeding an input."
    ),
    dataset: str | None = typer.Option(None, "--dataset", help="With --agent/--pipeline: tasks as JSONL/JSON/CSV."),
    reward: list[str] = typer.Option(
        ["exact_match"],
        "--reward",
        help="With --agent/--pipeline: exact_match, numeric_match, numeric_closeness, token_f1, or your own "
        "path/to/file.py:function (repeatable).",
    ),
    allow_modules: list[str] = typer.Option(
        [], "--allow-module", help="Trust this module of yours for YAML loading (repeatable)."
    ),
    overrides: list[str] = typer.Option([], "--set", help="Override a setting: KEY[.SUB]=VALUE (value read as YAML)."),
) -> None:
    """Evaluate a model on an environment; rollouts stream to results.jsonl, the summary to metadata.json."""
    with user_errors():
        data = {name: value for name, value in ctx.params.items() if name in EvalSettings.model_fields}
        data.update(env_args=parse_env_args(env_args), agent=str(agent) if agent else None,
                    pipeline=str(pipeline) if pipeline else None, inputs=_parse_inputs(inputs),
                    allow_modules=list(allow_modules))  # fmt: skip
        settings = EvalSettings.load(data, overrides)
        model_given = getattr(ctx.get_parameter_source("model"), "name", "DEFAULT") != "DEFAULT"
        run_eval(
            settings, output, resume, fail_on_error, model_given or "model" in {o.split("=")[0] for o in overrides}
        )


def _parse_inputs(texts: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for text in texts:
        target, sep, column = text.partition("=")
        if not sep or "." not in target or not column:
            raise CliError(f"--input-column {text!r}: expected COMPONENT.SOCKET=COLUMN, e.g. rewrite_prompt.question=q")
        out[target.strip()] = column.strip()
    return out


def run_eval(settings: EvalSettings, output: Path | None, resume: bool, fail_on_error: bool, model_given: bool) -> None:
    """The body of `eval`: build, check resume, play with a progress bar, summarize."""
    from haystack_rl.cli.summary_table import print_summary
    from haystack_rl.policies import build_policy
    from haystack_rl.results import ResultsWriter
    from haystack_rl.runner import RESULTS_FILE, RolloutRunner

    environment, agent_generator = build_environment(settings)
    policy: Any = agent_generator if agent_generator is not None and not model_given else None
    generation_kwargs: dict[str, Any] = {}
    if policy is not None:
        own = next(iter(policy.values())) if isinstance(policy, dict) else policy
        settings.model = str(getattr(own, "model", None) or getattr(own, "name", None) or type(own).__name__)
    else:
        policy, generation_kwargs = build_policy(settings.model, environment, settings.base_url, settings.api_key_env,
                                                 settings.max_tokens, settings.temperature, settings.max_retries,
                                                 settings.timeout, settings.tokens, settings.concurrency)  # fmt: skip
    if hasattr(policy, "warm_up"):
        quiet_libraries()
        try:
            policy.warm_up()  # load a local model now, so a bad directory is a clear error, not a traceback
        except Exception as error:  # noqa: BLE001 - reported as a user error about --model
            raise CliError(f"cannot load model {settings.model!r}: {type(error).__name__}: {error}") from None
    env_label = settings.env or environment.name
    config = {**settings.to_dict(), "env": env_label}
    if settings.agent is not None or settings.pipeline is not None:
        config["env_args"] = {key: value for key in ("agent", "pipeline", "generator", "inputs", "dataset", "reward")
                              if (value := getattr(settings, key))}  # fmt: skip
    if resume:
        if output is None:
            raise CliError("--resume needs --output DIR (the directory of the interrupted run)")
        check_resume(output, config)
    else:
        if output is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            output = Path("outputs") / "evals" / f"{model_slug(env_label)}--{model_slug(settings.model)}--{stamp}"
        if (output / RESULTS_FILE).exists() or (output / RUN_CONFIG_FILE).exists():
            raise CliError(f"{output} already holds a run; pass --resume to finish it, or choose another --output")
    output.mkdir(parents=True, exist_ok=True)
    command = command_line()
    (output / RUN_CONFIG_FILE).write_text(json.dumps({**config, "command": command}, indent=2) + "\n", encoding="utf-8")

    examples = environment.examples(settings.split, None if settings.num_examples < 0 else settings.num_examples)
    runner = RolloutRunner(
        environment, policy, rollouts_per_example=settings.rollouts_per_example, concurrency=settings.concurrency,
        generation_kwargs=generation_kwargs, seed=settings.seed, split=settings.split, output_dir=str(output),
    )  # fmt: skip
    console.print(
        f"[bold]{escape(env_label)}[/bold] · model [bold]{escape(settings.model)}[/bold] · {len(examples)} examples"
        f" × {settings.rollouts_per_example} rollouts → {escape(str(output))}",
        highlight=False,
    )
    start = time.perf_counter()
    new_rollouts = 0
    with Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console, transient=False,
    ) as progress:  # fmt: skip
        task = progress.add_task("groups", total=len(examples))

        def on_resume(done: int) -> None:
            if done:
                progress.update(task, completed=done, description=f"groups (resuming: {done} done)")

        def on_group(group: list[Any]) -> None:
            nonlocal new_rollouts
            new_rollouts += len(group)
            progress.advance(task)

        from haystack_rl.asyncio_utils import run_sync

        rollouts = run_sync(runner.generate(examples, on_group=on_group, on_resume=on_resume))
    wall_time = time.perf_counter() - start
    run_info = {"command": command, "config": config, "output_dir": str(output), "wall_time_s": wall_time,
                "timed_rollouts": new_rollouts, "resumed_rollouts": len(rollouts) - new_rollouts}  # fmt: skip
    writer = ResultsWriter(str(output), breakdowns=list(environment.summary_breakdowns))
    summary = writer.run(rollouts, run_info=run_info)["summary"]
    print_summary(summary, console, title=f"{env_label} · {settings.model}")
    console.print(f"results: {output / RESULTS_FILE} · metadata: {output / 'metadata.json'}", highlight=False)
    _warn_failures(summary, rollouts, fail_on_error)


def _warn_failures(summary: dict[str, Any], rollouts: list[Any], fail_on_error: bool) -> None:
    failed = summary["errors"] + sum(summary["reward_errors"].values())
    if not failed:
        return
    # "policy: RateLimitError: Error code: 429 ..." -> counted as "policy: RateLimitError"
    kinds = Counter(":".join(r.error.split(":", 2)[:2]) for r in rollouts if r.error)
    by_kind = ", ".join(f"{count} {kind}" for kind, count in kinds.most_common())
    hint = "" if fail_on_error else " (pass --fail-on-error to exit non-zero)"
    err_console.print(
        f"[yellow]warning:[/yellow] {summary['errors']} of {summary['n']} rollouts failed"
        f"{f' ({by_kind})' if by_kind else ''}, {sum(summary['reward_errors'].values())} reward errors; "
        f"see results.jsonl{hint}",
        highlight=False,
    )
    if fail_on_error:
        raise typer.Exit(code=1)
