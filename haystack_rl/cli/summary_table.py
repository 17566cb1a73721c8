"""`print_summary`: an evaluation summary as rich tables in the terminal."""

from __future__ import annotations

from typing import Any


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def print_summary(summary: dict[str, Any], console: Any = None, title: str = "evaluation summary") -> None:
    """Print a summary (from `summarize`) as rich tables: headline figures, then one table per breakdown."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows: list[tuple[str, Any]] = [
        ("environment", summary.get("environment")),
        ("rollouts", f"{summary['n']} ({summary['n_examples']} examples)"),
        ("reward mean ± std", f"{_fmt(summary['reward_mean'])} ± {_fmt(summary['reward_std'])}"),
        ("unscored (reward None)", summary["n_unscored"]),
    ]
    rows += [(f"reward: {name}", value) for name, value in summary["rewards"].items()]
    rows += [(f"metric: {name}", value) for name, value in summary["metrics"].items()]
    rows.append(("success", summary.get("success")))
    rows += list(summary["pass_at_k"].items())
    rows.append(("errors", summary["errors"]))
    rows += [(f"reward error: {name}", count) for name, count in summary["reward_errors"].items()]
    rows.append(("stop reasons", ", ".join(f"{k}={v}" for k, v in summary["stop_reasons"].items())))
    tokens = summary["tokens"]
    if tokens["completion_total"] is not None:
        rows.append(
            ("completion tokens total / mean", f"{tokens['completion_total']} / {_fmt(tokens['completion_mean'])}")
        )
    rows += [
        ("rollout time mean (s)", summary["rollout_time_mean_s"]),
        ("wall time (s)", summary["wall_time_s"]),
        ("rollouts / s", summary["rollouts_per_s"]),
    ]
    for name, value in rows:
        table.add_row(name, _fmt(value))
    console.print(table)
    for message in summary["error_examples"]:
        console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    for key, by_value in summary["breakdowns"].items():
        metric_names = sorted({m for row in by_value.values() for m in row["metrics"]})
        breakdown = Table(title=f"by {key}", header_style="bold")
        for column in (key, "n", "reward mean", *metric_names):
            breakdown.add_column(column, justify="left" if column == key else "right")
        for value, row in by_value.items():
            cells = [_fmt(row["metrics"].get(m)) for m in metric_names]
            breakdown.add_row(value, str(row["n"]), _fmt(row["reward_mean"]), *cells)
        console.print(breakdown)
