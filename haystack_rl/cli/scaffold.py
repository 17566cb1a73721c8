"""`haystack-rl init NAME --kind single|multi|tool`: start a new environment package."""

from __future__ import annotations

from pathlib import Path

import typer

from haystack_rl.cli.app import CliError, app, console, user_errors


@app.command("init")
def init_command(
    name: str = typer.Argument(..., help="The environment's name, e.g. guess_number."),
    kind: str = typer.Option("single", "--kind", "-k", help="single (one reply) | multi (a game) | tool (tool calls)."),
    directory: Path = typer.Option(Path("."), "--dir", help="Where the package's directory goes."),
) -> None:
    """Write a new environment package: env, rubric, baselines, entry point, train config, eval YAML, tests."""
    from haystack_rl.scaffold import ScaffoldError, create_project

    with user_errors():
        try:
            root = create_project(name, kind, directory)
        except ScaffoldError as error:
            raise CliError(str(error)) from None
    package = root.name
    console.print(f"created {root} ({kind} environment {package!r}). Next:", highlight=False)
    steps = (f"cd {root}", "pip install -e .", "python -m pytest",
             f"haystack-rl eval {package} --model baseline:expert", "haystack-rl train configs/train.yml")  # fmt: skip
    for step in steps:
        console.print(f"  {step}", highlight=False)
