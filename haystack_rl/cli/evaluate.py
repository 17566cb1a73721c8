"""`haystack-rl eval`: evaluate a model on an environment (rollouts to results.jsonl, the summary to metadata.json)."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from haystack_rl.cli.app import CliError, app, command_line, console, err_console, quiet_libraries, user_errors
from haystack_rl.cli.eval_setup import (
    RUN_CONFIG_FILE,
    EvalSettings,
    build_environment,
    check_resume,
    model_slug,
    parse_env_args,
)


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
        None,
        "--api-key-env",
        help="Name of the environment variable holding the API key (never the key itself); "
        "without it a placeholder key is sent, as local servers expect.",
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
    metric: list[str] = typer.Option(
        [],
        "--metric",
        help="With --agent/--pipeline: a metric (weight 0: reported, not rewarded), named as --reward is (repeatable).",
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
        keys = ("agent", "pipeline", "generator", "inputs", "dataset", "reward", "metric")
        config["env_args"] = {key: value for key in keys if (value := getattr(settings, key))}
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
