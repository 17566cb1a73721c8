"""`haystack-rl run`: load a YAML pipeline (never unsafe), apply `--set` overrides, run it, print what it returns."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from haystack_rl.cli.app import CliError, app, command_line, console, err_console, user_errors


def load_pipeline(path: Path, overrides: list[str], allow_modules: list[str] | None = None) -> Any:
    """
    Read a YAML pipeline, apply `--set` overrides, and build it with `Pipeline.loads`: only this package, Haystack
    and the modules the user named (`allow_modules`, registered environments) may be imported; never unsafe.
    """
    import yaml
    from haystack import Pipeline

    from haystack_rl.overrides import apply_to_pipeline, parse_override
    from haystack_rl.trust import BUILT_IN_MODULES, add_working_directory, trust_modules

    if not path.is_file():
        raise CliError(f"pipeline file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise CliError(f"{path}: not valid YAML: {' '.join(str(error).split())}") from None
    if not isinstance(data, dict) or "components" not in data:
        raise CliError(f"{path}: not a Haystack pipeline (no 'components' mapping at the top)")
    for text in overrides:
        apply_to_pipeline(data, *parse_override(text, "COMPONENT.PARAM[.SUB...]=VALUE, e.g. runner.num_examples=4"))
    from haystack_rl.registry import trust_registered_environments

    add_working_directory()
    trust_registered_environments()
    trust_modules(allow_modules or [])
    try:
        return Pipeline.loads(yaml.safe_dump(data, sort_keys=False), allowed_modules=list(BUILT_IN_MODULES))
    except Exception as error:  # noqa: BLE001 - any loading failure is a user error about this file
        raise CliError(f"{path}: cannot load the pipeline: {_loading_problem(error)}") from None


def _loading_problem(error: Exception) -> str:
    """The useful part of a Haystack loading error (its messages embed the whole component data)."""
    message = " ".join(str(error).split())
    where = re.search(r"deserialize component '([^']+)'", message)
    if "Original error:" in message:
        message = message.split("Original error:", 1)[1].strip()
    message = message.split(" If you trust the source", 1)[0]
    refused = re.search(r"Refusing to deserialize a class from module '([^']+)'", message)
    if refused:
        module = refused.group(1)
        message = (f"module {module!r} is not on the trusted-module allowlist; if it is your own code, pass "
                   f"--allow-module {module.split('.', 1)[0]}")  # fmt: skip
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


def text_inputs(pipeline: Any, texts: list[str]) -> dict[str, dict[str, str]]:
    """
    `--input [COMPONENT.]SOCKET=TEXT` values as pipeline run data (a bare SOCKET feeds every open input so named;
    a number or bool socket gets the text converted).
    """
    open_inputs = pipeline.inputs()
    data: dict[str, dict[str, str]] = {}
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--input {text!r}: expected [COMPONENT.]SOCKET=TEXT, e.g. question='Who built it?'")
        component_name, _, socket = key.strip().rpartition(".")
        targets = [(c, socket) for c, sockets in open_inputs.items() if socket in sockets
                   and component_name in ("", c)]  # fmt: skip
        if not targets:
            known = ", ".join(f"{c}.{s}" for c, sockets in open_inputs.items() for s in sockets)
            raise CliError(f"--input {key}: the pipeline has no open input {key!r}; open inputs: {known}")
        for target_component, target_socket in targets:
            data.setdefault(target_component, {})[target_socket] = _typed(
                value, open_inputs[target_component][target_socket]
            )
    return data


def _typed(text: str, socket: dict[str, Any]) -> Any:
    """An `--input` text as the socket's type when that is a number or a bool (else the text itself)."""
    import typing

    kinds = set(typing.get_args(socket["type"])) or {socket["type"]}
    for kind, convert in ((bool, lambda t: t.lower() in ("1", "true", "yes")), (int, int), (float, float)):
        if kind in kinds:
            try:
                return convert(text)
            except ValueError:
                raise CliError(f"--input: {text!r} is not a {kind.__name__}") from None
    return text


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
    allow_modules: list[str] = typer.Option(
        [], "--allow-module", help="Trust this module of yours for YAML loading (repeatable)."
    ),
    inputs: list[str] = typer.Option(
        [], "--input", help="Feed a pipeline input: [COMPONENT.]SOCKET=TEXT (without COMPONENT: every open SOCKET)."
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Also write every component's outputs as JSON here."
    ),
) -> None:
    """Run a YAML pipeline (e.g. pipelines/reverse_text_eval.yml) and print its summary if it has one."""
    from haystack_rl.cli.app import quiet_libraries
    from haystack_rl.cli.summary_table import print_summary
    from haystack_rl.results import ResultsWriter

    quiet_libraries()
    with user_errors():
        loaded = load_pipeline(pipeline, overrides, allow_modules)
        data: dict[str, dict[str, Any]] = agent_inputs(loaded, message) if message is not None else {}
        for name, values in text_inputs(loaded, inputs).items():
            data.setdefault(name, {}).update(values)
    command = command_line()
    for name, instance in loaded.walk():
        if isinstance(instance, ResultsWriter):
            data[name] = {"run_info": {"command": command, "pipeline": str(pipeline), "overrides": list(overrides)}}
    console.print(f"running {pipeline}" + (f" with {', '.join(overrides)}" if overrides else ""), highlight=False)
    start = time.perf_counter()
    everything = {name for name, _ in loaded.walk()} if output is not None else None
    try:
        outputs = loaded.run(data, include_outputs_from=everything)
    except Exception as error:  # noqa: BLE001 - report which component failed, in one line
        err_console.print(
            f"[bold red]error:[/bold red] {escape(f'{pipeline}: the pipeline failed: {error}')}", highlight=False
        )
        raise typer.Exit(code=1) from None
    elapsed = time.perf_counter() - start
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(outputs, indent=2, ensure_ascii=False, default=_jsonable) + "\n", encoding="utf-8")
    _print_outputs(outputs, data if message is not None else {}, pipeline, elapsed, print_summary)


def _print_outputs(
    outputs: dict[str, Any], asked: dict[str, Any], pipeline: Path, elapsed: float, print_summary: Any
) -> None:
    printed = False
    for name in asked:
        print_conversation(outputs.get(name, {}).get("messages") or [], f"{pipeline.name} · {name}")
        printed = True
    for name, result in outputs.items():
        if isinstance(result, dict) and isinstance(result.get("summary"), dict):
            summary = result["summary"]
            if summary.get("wall_time_s") is None:
                rate = summary["n"] / elapsed if elapsed else None
                summary = {**summary, "wall_time_s": elapsed, "rollouts_per_s": rate}
            print_summary(summary, console, title=f"{pipeline.name} · {name}")
            printed = True
    if not printed:
        console.print(f"finished in {elapsed:.1f} s; outputs: {', '.join(outputs) or 'none'}", highlight=False)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return str(value)
