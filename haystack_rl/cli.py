"""The `haystack-rl` command: list environments, evaluate a model on one, run a YAML pipeline."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shlex
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from haystack_rl.models.tiny import BUILT_IN_MODELS

app = typer.Typer(
    name="haystack-rl",
    help="RL environments for LLMs, built as Haystack components.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)

RUN_CONFIG_FILE = "run.json"
#: run.json keys that must match for `--resume` (the others, e.g. -n or -c, may change between runs).
RESUME_KEYS = ("env", "env_args", "model", "base_url", "rollouts_per_example", "seed", "split",
               "max_tokens", "temperature")  # fmt: skip
DUMMY_API_KEY = "no-key"  # sent to local servers when no --api-key-env is given


class CliError(Exception):
    """A user error: printed as one line, exit code 2."""


def fail(message: str) -> typer.Exit:
    """Print a one-line error to stderr and return the exit to raise (code 2)."""
    one_line = escape(" ".join(message.split()))
    err_console.print(f"[bold red]error:[/bold red] {one_line}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


@app.callback()
def quiet_libraries() -> None:
    """Keep the terminal for our own progress bars and tables: no library progress bars or info logs."""
    import warnings

    import datasets
    import transformers

    warnings.filterwarnings("ignore", category=FutureWarning)  # libraries' deprecation notices, not ours
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


# --- envs ---------------------------------------------------------------------------------------
@app.command("envs")
def envs_command() -> None:
    """List the environments `eval` can use, with a one-line description each."""
    from haystack_rl.registry import available_environments

    table = Table(title="environments", header_style="bold")
    table.add_column("name")
    table.add_column("description")
    for name, description in available_environments().items():
        table.add_row(name, description)
    console.print(table)


# --- eval ---------------------------------------------------------------------------------------
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


def build_policy(
    model: str,
    environment: Any,
    base_url: str | None,
    api_key_env: str | None,
    max_tokens: int,
    temperature: float,
    max_retries: int = 2,
    timeout: float = 60.0,
    tokens: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """
    The policy generator for a `--model` spec, and the generation kwargs to run it with.

    `baseline:NAME` -> the environment's scripted baseline; with `--base-url` -> `OpenAIChatGenerator`
    on that server (each request retried `max_retries` times on 429s, 5xx, timeouts and dropped connections,
    with the openai SDK's backoff, which honours Retry-After; `timeout` seconds per request), or with `tokens`
    `TokenChatGenerator` on it (exact token ids over vLLM's completions API; the chat template renders here,
    with the tokenizer of `--model`); `tiny`, `tiny-init` or an existing directory -> the in-process
    `TokenChatGenerator`.
    """
    if model.startswith("baseline:"):
        from haystack_rl.generators import FunctionChatGenerator

        name = model.split(":", 1)[1]
        baselines = environment.baselines()
        if name not in baselines:
            known = ", ".join(f"baseline:{b}" for b in sorted(baselines)) or "none"
            raise CliError(f"{environment.name} has no baseline {name!r}; available: {known}")
        return FunctionChatGenerator(baselines[name], name=name), {}
    if tokens and not base_url:
        raise CliError("--tokens needs --base-url (a server that returns token ids, e.g. vLLM's)")
    if base_url:
        from haystack.components.generators.chat import OpenAIChatGenerator
        from haystack.utils import Secret

        if api_key_env:
            if not os.environ.get(api_key_env):
                raise CliError(f"--api-key-env {api_key_env}: that environment variable is not set")
            api_key = Secret.from_env_var(api_key_env)
        else:
            api_key = Secret.from_token(DUMMY_API_KEY)
        if tokens:
            from haystack_rl.generators.token import TokenChatGenerator

            remote = TokenChatGenerator(
                model=model,
                base_url=base_url,
                api_key=api_key,
                timeout=timeout,
                max_retries=max_retries,
                generation_kwargs={"max_new_tokens": max_tokens, "temperature": temperature},
            )
            return remote, {}
        # one "completion truncated" warning per reply would scroll the progress bar away; the
        # finish reason is kept in each reply's meta in results.jsonl
        logging.getLogger("haystack.components.generators.chat.openai").setLevel(logging.ERROR)
        kwargs = {"max_tokens": max_tokens, "temperature": temperature}
        served = OpenAIChatGenerator(
            api_key=api_key, model=model, api_base_url=base_url, max_retries=max_retries, timeout=timeout
        )
        return served, kwargs
    if model in BUILT_IN_MODELS or Path(model).is_dir():
        from haystack_rl.generators.token import TokenChatGenerator

        generator = TokenChatGenerator(
            model=model, generation_kwargs={"max_new_tokens": max_tokens, "temperature": temperature}
        )
        return generator, {}
    raise CliError(
        f"model directory not found: {model!r}; use tiny, tiny-init, an existing model directory, baseline:NAME, "
        "or a served model name with --base-url URL"
    )


class AgentEval:
    """
    `eval --agent AGENT.yml --dataset FILE`: the environment is `ToolEnv.from_agent`, and the policy is the
    Agent's own chat generator (played in the environment's tool loop, the one training uses) unless
    `--model` was given.
    """

    def __init__(self, agent: Path | None, dataset: str | None, reward: str, model_given: bool) -> None:
        if agent is None or not dataset:
            raise CliError("--agent AGENT.yml and --dataset FILE go together")
        self.agent, self.dataset, self.reward, self.model_given = agent, dataset, reward, model_given

    def build(self) -> tuple[Any, Any]:
        """(the environment, the Agent's chat generator or None when --model was given)."""
        from haystack_rl.agents import load_agent
        from haystack_rl.environments.tool_env import ToolEnv

        try:
            environment = ToolEnv.from_agent(self.agent, self.dataset, rubric=self.reward)
            generator = None if self.model_given else load_agent(self.agent).chat_generator
        except (OSError, ValueError, TypeError) as error:
            raise CliError(str(error)) from None
        return environment, generator

    def as_env_args(self) -> dict[str, Any]:
        """What run.json records as the environment's arguments."""
        return {"agent": str(self.agent), "dataset": self.dataset, "reward": self.reward}

    def model_label(self, generator: Any) -> str:
        """The model name recorded for the Agent's own generator."""
        return str(getattr(generator, "model", None) or getattr(generator, "name", None) or type(generator).__name__)


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


def count_finished_groups(results: Path, example_ids: set[str], rollouts_per_example: int) -> int:
    """How many of these examples already have a complete group in results.jsonl (for the progress bar)."""
    from haystack_rl.rollout import read_rollouts

    seen: dict[str, set[int]] = {}
    for rollout in read_rollouts(results):
        seen.setdefault(rollout.example_id, set()).add(rollout.rollout_index)
    wanted = set(range(rollouts_per_example))
    return sum(1 for key, indices in seen.items() if key in example_ids and indices == wanted)


@app.command("eval")
def eval_command(
    ctx: typer.Context,
    env: str | None = typer.Argument(
        None, help="Environment name (see `haystack-rl envs`); leave out with --agent/--dataset."
    ),
    model: str = typer.Option(
        "tiny",
        "--model",
        "-m",
        help="tiny | tiny-init | a local model directory | baseline:NAME | a served model name (with --base-url).",
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
        help="With --base-url: exact token ids over vLLM's completions API (the chat template "
        "renders here, with the tokenizer of --model: a local model directory the server serves under that name).",
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
    dataset: str | None = typer.Option(
        None, "--dataset", help="With --agent: tasks (prompt, answer) as JSONL/JSON/CSV."
    ),
    reward: str = typer.Option(
        "exact_match",
        "--reward",
        help="With --agent: answer reward (exact_match, numeric_match, numeric_closeness, token_f1).",
    ),
) -> None:
    """Evaluate a model on an environment; rollouts stream to results.jsonl, the summary to metadata.json."""
    try:
        agent_setup = None
        if agent is not None or dataset is not None:
            model_given = getattr(ctx.get_parameter_source("model"), "name", "DEFAULT") != "DEFAULT"
            agent_setup = AgentEval(agent, dataset, reward, model_given)
        _eval(env, model, base_url, api_key_env, num_examples, rollouts_per_example, concurrency, env_args,
              max_tokens, temperature, seed, output, resume, split, max_retries, timeout, fail_on_error,
              agent_setup, tokens=tokens)  # fmt: skip
    except CliError as error:
        raise fail(str(error)) from None


def _eval(
    env_name: str | None,
    model: str,
    base_url: str | None,
    api_key_env: str | None,
    num_examples: int,
    rollouts_per_example: int,
    concurrency: int,
    env_args_text: str | None,
    max_tokens: int,
    temperature: float,
    seed: int,
    output: Path | None,
    resume: bool,
    split: str,
    max_retries: int = 2,
    timeout: float = 60.0,
    fail_on_error: bool = False,
    agent_setup: AgentEval | None = None,
    tokens: bool = False,
) -> None:
    from haystack_rl.registry import available_environments, load_environment
    from haystack_rl.results import ResultsWriter, print_summary
    from haystack_rl.runner import RESULTS_FILE, RolloutRunner

    env_args = parse_env_args(env_args_text)
    if split not in ("eval", "train"):
        raise CliError(f"--split must be eval or train, got {split!r}")
    policy: Any = None
    generation_kwargs: dict[str, Any] = {}
    if agent_setup is not None:
        if env_name is not None or env_args:
            raise CliError("give either an environment name (with -a) or --agent AGENT.yml --dataset FILE, not both")
        environment, policy = agent_setup.build()
        env_name, env_args = environment.name, agent_setup.as_env_args()
        if policy is not None:
            model = agent_setup.model_label(policy)
    else:
        if env_name is None:
            raise CliError("give an environment name (see `haystack-rl envs`), or --agent AGENT.yml --dataset FILE")
        if env_name not in available_environments():
            raise CliError(f"unknown environment {env_name!r}; available: {', '.join(available_environments())}")
        try:
            environment = load_environment(env_name, **env_args)
        except (TypeError, ValueError) as error:
            raise CliError(f"{env_name}: cannot build the environment with {env_args}: {error}") from None
    if policy is None:
        policy, generation_kwargs = build_policy(
            model, environment, base_url, api_key_env, max_tokens, temperature,
            max_retries=max_retries, timeout=timeout, tokens=tokens,
        )  # fmt: skip
    if hasattr(policy, "warm_up"):
        try:
            policy.warm_up()  # load a local model now, so a bad directory is a clear error, not a traceback
        except Exception as error:  # noqa: BLE001 - reported as a user error about --model
            raise CliError(f"cannot load model {model!r}: {type(error).__name__}: {error}") from None

    config = {
        "env": env_name,
        "env_args": env_args,
        "model": model,
        "base_url": base_url,
        "api_key_env": api_key_env,
        "num_examples": num_examples,
        "rollouts_per_example": rollouts_per_example,
        "concurrency": concurrency,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "seed": seed,
        "split": split,
        "max_retries": max_retries,
        "timeout": timeout,
        "tokens": tokens,
    }
    if resume:
        if output is None:
            raise CliError("--resume needs --output DIR (the directory of the interrupted run)")
        check_resume(output, config)
    else:
        if output is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            output = Path("outputs") / "evals" / f"{env_name}--{model_slug(model)}--{stamp}"
        if (output / RESULTS_FILE).exists() or (output / RUN_CONFIG_FILE).exists():
            raise CliError(f"{output} already holds a run; pass --resume to finish it, or choose another --output")
    output.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["haystack-rl", *sys.argv[1:]])
    (output / RUN_CONFIG_FILE).write_text(json.dumps({**config, "command": command}, indent=2) + "\n", encoding="utf-8")

    examples = environment.examples(split, None if num_examples < 0 else num_examples)
    runner = RolloutRunner(
        environment, policy, rollouts_per_example=rollouts_per_example, concurrency=concurrency,
        generation_kwargs=generation_kwargs, seed=seed, split=split, output_dir=str(output),
    )  # fmt: skip
    already = count_finished_groups(output / RESULTS_FILE, {str(e["id"]) for e in examples}, rollouts_per_example)
    resuming = f" (resuming: {already} groups done)" if already else ""
    console.print(
        f"[bold]{escape(env_name)}[/bold] · model [bold]{escape(model)}[/bold] · {len(examples)} examples"
        f" × {rollouts_per_example} rollouts → {escape(str(output))}{resuming}",
        highlight=False,
    )
    start = time.perf_counter()
    new_rollouts = 0
    with Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console, transient=False,
    ) as progress:  # fmt: skip
        task = progress.add_task("groups", total=len(examples), completed=already)

        def on_group(group: list[Any]) -> None:
            nonlocal new_rollouts
            new_rollouts += len(group)
            progress.advance(task)

        rollouts = asyncio.run(runner.generate(examples, on_group=on_group))
    wall_time = time.perf_counter() - start
    run_info = {
        "command": command,
        "config": config,
        "output_dir": str(output),
        "wall_time_s": wall_time,
        "timed_rollouts": new_rollouts,
        "resumed_rollouts": len(rollouts) - new_rollouts,
    }
    writer = ResultsWriter(str(output), breakdowns=list(environment.summary_breakdowns))
    summary = writer.run(rollouts, run_info=run_info)["summary"]
    print_summary(summary, console, title=f"{env_name} · {model}")
    console.print(f"results: {output / RESULTS_FILE} · metadata: {output / 'metadata.json'}", highlight=False)
    failed = summary["errors"] + sum(summary["reward_errors"].values())
    if failed:
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


# --- run ----------------------------------------------------------------------------------------
def parse_override(text: str) -> tuple[list[str], Any]:
    """`component.param.sub=value` -> (["component", "param", "sub"], value parsed as a YAML scalar)."""
    import yaml

    key, sep, raw = text.partition("=")
    path = [part for part in key.strip().split(".")]
    if not sep or len(path) < 2 or not all(path):
        raise CliError(f"--set {text!r}: expected COMPONENT.PARAM[.SUB...]=VALUE, e.g. runner.num_examples=4")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as error:
        raise CliError(f"--set {text!r}: the value is not a YAML scalar ({error})") from None
    return path, value


def apply_override(pipeline_dict: dict[str, Any], path: list[str], value: Any) -> None:
    """
    Set an init parameter in a pipeline dict. Nested components are entered through their
    `init_parameters` (`runner.policy.model`); plain dicts directly (`runner.generation_kwargs.seed`).
    """
    components = pipeline_dict.get("components") or {}
    name = path[0]
    if name not in components:
        raise CliError(f"--set {'.'.join(path)}: no component {name!r}; the pipeline has: {', '.join(components)}")
    node: dict[str, Any] = components[name].setdefault("init_parameters", {}) or {}
    components[name]["init_parameters"] = node
    for depth, part in enumerate(path[1:-1], start=1):
        child = node.get(part)
        if not isinstance(child, dict):
            where = ".".join(path[: depth + 1])
            raise CliError(f"--set {'.'.join(path)}: {where} is not a component or a mapping, cannot go inside it")
        if "type" in child and "init_parameters" in child:
            child = child["init_parameters"] if child["init_parameters"] is not None else {}
        node = child
    node[path[-1]] = value


def load_pipeline(path: Path, overrides: list[str]) -> Any:
    """Read a YAML pipeline, apply `--set` overrides, and build it with `Pipeline.loads` (never unsafe)."""
    import yaml
    from haystack import Pipeline

    import haystack_rl  # noqa: F401 - allowlists our modules for YAML loading

    if not path.is_file():
        raise CliError(f"pipeline file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise CliError(f"{path}: not valid YAML: {' '.join(str(error).split())}") from None
    if not isinstance(data, dict) or "components" not in data:
        raise CliError(f"{path}: not a Haystack pipeline (no 'components' mapping at the top)")
    for text in overrides:
        apply_override(data, *parse_override(text))
    try:
        return Pipeline.loads(yaml.safe_dump(data, sort_keys=False), allowed_modules=list(haystack_rl.TRUSTED_MODULES))
    except Exception as error:  # noqa: BLE001 - any loading failure is a user error about this file
        raise CliError(f"{path}: cannot load the pipeline: {_loading_problem(error)}") from None


def _loading_problem(error: Exception) -> str:
    """The useful part of a Haystack loading error (its messages embed the whole component data)."""
    message = " ".join(str(error).split())
    where = re.search(r"deserialize component '([^']+)'", message)
    if "Original error:" in message:
        message = message.split("Original error:", 1)[1].strip()
    message = message.split(" If you trust the source", 1)[0]
    return (f"component {where.group(1)!r}: " if where else "") + message


def agent_inputs(pipeline: Any, message: str) -> dict[str, dict[str, Any]]:
    """Pipeline inputs giving `message` (as a user message) to each Agent whose `messages` input is open."""
    from haystack.components.agents import Agent
    from haystack.dataclasses import ChatMessage

    open_inputs = pipeline.inputs()
    names = [name for name, instance in pipeline.walk()
             if isinstance(instance, Agent) and "messages" in open_inputs.get(name, {})]  # fmt: skip
    if not names:
        raise CliError("--message: the pipeline has no Agent component waiting for messages")
    return {name: {"messages": [ChatMessage.from_user(message)]} for name in names}


def print_conversation(messages: list[Any], title: str) -> None:
    """An Agent's conversation, one line per message: tool calls, tool results and the final reply."""
    console.print(f"[bold]{escape(title)}[/bold]", highlight=False)
    for message in messages:
        role = message.role.value
        if message.tool_call_result is not None:
            result = message.tool_call_result
            text = f"{'error: ' if result.error else ''}{result.result}"
        else:
            calls = [f"{c.tool_name}({json.dumps(c.arguments, ensure_ascii=False)})" for c in message.tool_calls]
            text = " ".join(filter(None, [message.text or "", *(f"→ {c}" for c in calls)]))
        console.print(f"[dim]{role:>9}[/dim] {escape(text)}", highlight=False, soft_wrap=True)


@app.command("run")
def run_command(
    pipeline: Path = typer.Argument(..., help="A Haystack pipeline YAML file."),
    overrides: list[str] = typer.Option(
        [], "--set", help="Override an init parameter: COMPONENT.PARAM[.SUB...]=VALUE (value read as YAML)."
    ),
    message: str | None = typer.Option(
        None, "--message", help="Ask the pipeline's Agent this question (a user message) and print the conversation."
    ),
) -> None:
    """Run a YAML pipeline (e.g. pipelines/reverse_text_eval.yml) and print its summary if it has one."""
    from haystack_rl.results import ResultsWriter, print_summary

    try:
        loaded = load_pipeline(pipeline, overrides)
        data: dict[str, dict[str, Any]] = agent_inputs(loaded, message) if message is not None else {}
    except CliError as error:
        raise fail(str(error)) from None
    command = shlex.join(["haystack-rl", *sys.argv[1:]])
    for name, instance in loaded.walk():
        if isinstance(instance, ResultsWriter):
            data[name] = {"run_info": {"command": command, "pipeline": str(pipeline), "overrides": list(overrides)}}
    console.print(f"running {pipeline}" + (f" with {', '.join(overrides)}" if overrides else ""), highlight=False)
    start = time.perf_counter()
    try:
        outputs = loaded.run(data)
    except Exception as error:  # noqa: BLE001 - report which component failed, in one line
        err_console.print(
            f"[bold red]error:[/bold red] {escape(f'{pipeline}: the pipeline failed: {error}')}", highlight=False
        )
        raise typer.Exit(code=1) from None
    elapsed = time.perf_counter() - start
    printed = False
    for name in data if message is not None else ():
        print_conversation(outputs.get(name, {}).get("messages") or [], f"{pipeline.name} · {name}")
        printed = True
    for name, result in outputs.items():
        if isinstance(result, dict) and isinstance(result.get("summary"), dict):
            summary = result["summary"]
            if summary.get("wall_time_s") is None:
                summary = {
                    **summary,
                    "wall_time_s": elapsed,
                    "rollouts_per_s": summary["n"] / elapsed if elapsed else None,
                }
            print_summary(summary, console, title=f"{pipeline.name} · {name}")
            printed = True
    if not printed:
        console.print(f"finished in {elapsed:.1f} s; outputs: {', '.join(outputs) or 'none'}", highlight=False)


# --- train --------------------------------------------------------------------------------------
def _register_train() -> None:
    from haystack_rl.training.cli import train

    app.command("train")(train)


_register_train()


def main() -> None:
    """Entry point for `python -m haystack_rl.cli`."""
    app()


if __name__ == "__main__":
    main()
