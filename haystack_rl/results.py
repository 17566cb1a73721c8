"""`ResultsWriter`: an evaluation's `metadata.json` (its summary, package versions, command and run configuration)."""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from haystack import component, default_from_dict, default_to_dict

from haystack_rl.rollout import Rollout
from haystack_rl.summary import summarize

METADATA_FILE = "metadata.json"
#: Distribution names whose versions `metadata.json` records.
VERSIONED_PACKAGES = ("haystack-rl", "haystack-ai", "transformers", "trl", "torch")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a result depends on ("not installed" when absent)."""
    out = {"python": sys.version.split()[0]}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _environment_breakdowns(rollouts: Sequence[Rollout]) -> list[str]:
    """The `summary_breakdowns` of the environment class named by the rollouts, if it is imported."""
    from haystack_rl.environments.base import Environment

    names = {r.environment for r in rollouts}
    for cls in list(component.registry.values()):
        if isinstance(cls, type) and issubclass(cls, Environment) and cls.name in names:
            return list(cls.summary_breakdowns)
    return []


@component
class ResultsWriter:
    """
    Summarizes rollouts and writes `output_dir/metadata.json`: the summary, package versions, the exact
    command and the run configuration. Sits after a `RolloutRunner` in an evaluation pipeline.

    Usage example:
    ```python
    import tempfile
    from haystack_rl import Rollout
    from haystack_rl.results import ResultsWriter

    with tempfile.TemporaryDirectory() as out:
        writer = ResultsWriter(output_dir=out)
        summary = writer.run([Rollout("a", 0, 1, reward=1.0)], run_info={"model": "baseline:oracle"})["summary"]
        assert summary["reward_mean"] == 1.0
    ```

    :param output_dir: Where `metadata.json` goes (created if missing).
    :param breakdowns: `Rollout.info` keys to split figures by; None uses the environment's
        `summary_breakdowns` (found from the rollouts' environment name).
    """

    def __init__(self, output_dir: str, breakdowns: list[str] | None = None) -> None:
        self.output_dir = output_dir
        self.breakdowns = breakdowns

    @component.output_types(summary=dict[str, Any])
    def run(self, rollouts: list[Rollout], run_info: dict[str, Any] | None = None) -> dict[str, Any]:
        """
        Summarize and write `metadata.json`.

        :param rollouts: The evaluated rollouts.
        :param run_info: Anything describing the run (model, config...). The keys `wall_time_s` and
            `timed_rollouts` feed the throughput figure; `command` overrides the recorded command line.
        :returns: `{"summary": dict}` (see `summarize`).
        """
        info = dict(run_info or {})
        breakdowns = self.breakdowns if self.breakdowns is not None else _environment_breakdowns(rollouts)
        summary = summarize(rollouts, breakdowns, info.pop("wall_time_s", None), info.pop("timed_rollouts", None))
        metadata = {
            "summary": summary,
            "versions": package_versions(),
            "command": info.pop("command", None) or shlex.join(sys.argv),
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "run": info,
        }
        path = Path(self.output_dir)
        path.mkdir(parents=True, exist_ok=True)
        tmp = path / (METADATA_FILE + ".tmp")
        tmp.write_text(json.dumps(metadata, indent=2, default=str) + "\n", encoding="utf-8")
        tmp.replace(path / METADATA_FILE)
        return {"summary": summary}

    def to_dict(self) -> dict[str, Any]:
        """Serialize."""
        return default_to_dict(self, output_dir=self.output_dir, breakdowns=self.breakdowns)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResultsWriter:
        """Deserialize."""
        return default_from_dict(cls, data)
