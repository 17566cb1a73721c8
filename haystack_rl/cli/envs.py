"""`haystack-rl envs`: the registered environments, with their descriptions."""

from __future__ import annotations

from rich.table import Table

from haystack_rl.cli.app import app, console


@app.command("envs")
def envs_command() -> None:
    """List the registered environments (`eval` also takes path/to/file.py:function), with their descriptions."""
    from haystack_rl.registry import available_environments

    table = Table(title="environments", header_style="bold")
    table.add_column("name")
    table.add_column("description")
    for name, description in available_environments().items():
        table.add_row(name, description)
    console.print(table)
    console.print("Your own, before packaging it: haystack-rl eval path/to/file.py:load_environment", highlight=False)
