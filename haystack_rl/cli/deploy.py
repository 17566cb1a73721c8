"""`haystack-rl check-deploy AGENT.yml --model DIR`: whether the deployed Agent uses the model as training did."""

from __future__ import annotations

from pathlib import Path

import typer

from haystack_rl.cli.app import app, console, err_console, user_errors


@app.command("check-deploy")
def check_deploy_command(
    agent: Path = typer.Argument(..., help="The Agent YAML you deploy (a pipeline or a single Agent component)."),
    model: Path = typer.Option(..., "--model", help="The trained model directory (it holds the training card)."),
    config: Path | None = typer.Option(
        None, "--config", help="Compare with this training config instead of the model's training card."
    ),
    allow_modules: list[str] = typer.Option([], "--allow-module", help="Trust this module of yours (repeatable)."),
) -> None:
    """
    Compare the deployment with training: chat template, tool-call format, tools and schemas, system prompt, step
    limit, generation settings. One line per difference; exit code 1 on any.
    """
    from haystack_rl.deploy import DeploymentMismatchError, check_deploy
    from haystack_rl.registry import trust_registered_environments
    from haystack_rl.trust import add_working_directory, trust_modules

    add_working_directory()
    trust_registered_environments()
    with user_errors():
        trust_modules(allow_modules)
        try:
            differences = check_deploy(agent, model, config)
        except DeploymentMismatchError as error:
            from haystack_rl.cli.app import CliError

            raise CliError(str(error)) from None
    if not differences:
        console.print(f"{agent} uses {model} as training did", highlight=False)
        return
    for line in differences:
        err_console.print(f"[yellow]difference:[/yellow] {line}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=1)
