"""`haystack-rl report RUN_DIR [RUN_DIR_B] [--open] [-o FILE]`: one HTML page of a run, or of two compared."""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from haystack_rl.cli.app import app, console, fail


@app.command("report")
def report_command(
    run_dir: Annotated[Path, typer.Argument(help="An eval run directory (eval -o DIR) or a training output_dir.")],
    run_dir_b: Annotated[
        Path | None, typer.Argument(help="A second run to compare with the first, example by example.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="The HTML file (default: RUN_DIR/report.html).")
    ] = None,
    open_page: Annotated[bool, typer.Option("--open", help="Open the report in the default browser.")] = False,
) -> None:
    """Write one self-contained HTML report of a run (summary, rollouts, curves), or of two runs compared."""
    from haystack_rl.report import ReportError, write_report

    runs = [run_dir] if run_dir_b is None else [run_dir, run_dir_b]
    try:
        page = write_report(runs, output)
    except ReportError as error:
        raise fail(str(error)) from None
    except OSError as error:  # e.g. the output file cannot be written
        raise fail(f"cannot write the report: {error.strerror or error}: {error.filename or output}") from None
    console.print(f"report: {page}", highlight=False, soft_wrap=True)
    if open_page:
        webbrowser.open(page.resolve().as_uri())
