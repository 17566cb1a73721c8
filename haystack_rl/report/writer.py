"""Writing a report: read the run directories, build the page data, render it to one HTML file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from haystack_rl.report.html import render_html
from haystack_rl.report.page_data import page_data
from haystack_rl.report.runs import load_run

REPORT_FILE = "report.html"


def write_report(run_dirs: Sequence[str | Path], output: str | Path | None = None, title: str | None = None) -> Path:
    """
    Write the HTML report of a run, or of two runs compared, and return its path.

    :param run_dirs: One run directory (an eval run or a training run), or two to compare.
    :param output: The HTML file (default: `report.html` in the first run directory).
    :param title: The page title (default: the runs' directory names).
    :raises ReportError: when a directory holds no run or a file in it is malformed.

    Usage example:
    ```python
    import asyncio, tempfile
    from collections.abc import Sequence
    from pathlib import Path
    from haystack_rl import RolloutRunner, load_environment
    from haystack_rl.generators import FunctionChatGenerator
    from haystack_rl.report import write_report
    from haystack_rl.results import ResultsWriter

    out = tempfile.mkdtemp()
    env = load_environment("reverse_text", num_eval_examples=3)
    runner = RolloutRunner(env, FunctionChatGenerator(env.baselines()["oracle"]), output_dir=out)
    ResultsWriter(out).run(runner.run()["rollouts"])
    page = write_report([out])
    assert page == Path(out) / "report.html" and "reverse_text" in page.read_text()
    ```
    """
    runs = [load_run(path) for path in run_dirs]
    target = Path(output) if output is not None else runs[0].path / REPORT_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_html(page_data(runs, title)), encoding="utf-8")
    return target
