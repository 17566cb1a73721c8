"""Evaluation results: a summary of rollouts (rewards, pass@k, errors, tokens, breakdowns) and `metadata.json`."""

from __future__ import annotations

import json
import math
import shlex
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from haystack import component, default_from_dict, default_to_dict
from haystack.dataclasses import ChatRole

from haystack_rl.rollout import Rollout

METADATA_FILE = "metadata.json"
#: A rollout "passes" (for pass@k) when its total reward reaches 1.0 (up to this tolerance).
PASS_THRESHOLD = 1.0 - 1e-9
#: How many distinct error messages a summary keeps.
MAX_ERROR_EXAMPLES = 5
#: Distribution names whose versions `metadata.json` records.
VERSIONED_PACKAGES = ("haystack-rl", "haystack-ai", "transformers", "trl", "torch")


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _std(values: Sequence[float]) -> float | None:
    return statistics.pstdev(values) if values else None


def passes(rollout: Rollout) -> bool:
    """
    Whether a rollout solved its task (for pass@k and success rates): the environment's verdict
    (`rollout.success`, see `Environment.is_success`); for rollouts scored without one (older results), a
    reward >= 1.0 - 1e-9. Unscored rollouts fail.
    """
    if rollout.success is not None:
        return rollout.success
    return rollout.reward is not None and rollout.reward >= PASS_THRESHOLD


def tool_use_stats(rollouts: Sequence[Rollout]) -> dict[str, float | None]:
    """
    Task success and tool use of a batch of rollouts: `success` (share that `passes`), and, when the
    rollouts come from a tool environment (`info["tool_calls"]`), `tool_calls_per_rollout`,
    `tool_error_rate` (errored calls / calls; None without calls) and `no_tool_share` (share answering
    without any tool call). Empty for no rollouts.

    Usage example:
    ```python
    from haystack_rl import Rollout
    from haystack_rl.results import tool_use_stats

    used = Rollout(example_id="0", rollout_index=0, seed=0, reward=1.0,
                   info={"tool_calls": 2, "tool_errors": {"timeout": 1}})
    idle = Rollout(example_id="0", rollout_index=1, seed=0, reward=0.0, info={"tool_calls": 0})
    stats = tool_use_stats([used, idle])
    assert stats == {"success": 0.5, "tool_calls_per_rollout": 1.0, "tool_error_rate": 0.5, "no_tool_share": 0.5}
    ```
    """
    if not rollouts:
        return {}
    out: dict[str, float | None] = {"success": sum(passes(r) for r in rollouts) / len(rollouts)}
    tool_rollouts = [r for r in rollouts if "tool_calls" in r.info]
    if tool_rollouts:
        calls = [int(r.info["tool_calls"]) for r in tool_rollouts]
        errors = sum(sum((r.info.get("tool_errors") or {}).values()) for r in tool_rollouts)
        out["tool_calls_per_rollout"] = sum(calls) / len(calls)
        out["tool_error_rate"] = errors / sum(calls) if sum(calls) else None
        out["no_tool_share"] = sum(c == 0 for c in calls) / len(calls)
    return out


def pass_at_k(n: int, c: int, k: int) -> float:
    """
    Unbiased pass@k for one group: the chance that at least one of `k` samples drawn without replacement
    from `n` rollouts (of which `c` pass) passes, `1 - C(n-c, k) / C(n, k)` (Chen et al., 2021).

    Usage example:
    ```python
    from haystack_rl.results import pass_at_k

    assert pass_at_k(n=4, c=1, k=1) == 0.25
    assert pass_at_k(n=4, c=1, k=4) == 1.0
    ```
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass_at_k: need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def _pass_at_ks(rollouts: Sequence[Rollout]) -> dict[str, float]:
    """pass@k for k = 1, 2, 4, ... up to the smallest group size, averaged over groups (by `group_id`)."""
    groups: dict[str, list[Rollout]] = {}
    for rollout in rollouts:
        groups.setdefault(rollout.group_id, []).append(rollout)
    if not groups:
        return {}
    r = min(len(group) for group in groups.values())
    out: dict[str, float] = {}
    k = 1
    while k <= r:
        values = [pass_at_k(len(g), sum(passes(x) for x in g), k) for g in groups.values()]
        out[f"pass@{k}"] = statistics.fmean(values)
        k *= 2
    return out


def _means(dicts: Iterable[dict[str, float]]) -> dict[str, float]:
    """Mean of each key over the dicts that have it (so a failed function does not count as 0)."""
    values: dict[str, list[float]] = {}
    for d in dicts:
        for key, value in d.items():
            values.setdefault(key, []).append(float(value))
    return {key: statistics.fmean(v) for key, v in sorted(values.items())}


def completion_token_count(rollout: Rollout) -> int | None:
    """
    Tokens the model generated in a rollout: from its token ids when the generator returned them, else
    from the replies' `usage.completion_tokens` (OpenAI-compatible servers); None when unknown.
    """
    if rollout.turns:
        return rollout.num_completion_tokens
    counts = [
        m.meta["usage"].get("completion_tokens")
        for m in rollout.messages
        if m.role is ChatRole.ASSISTANT and isinstance(m.meta.get("usage"), dict)
    ]
    if not counts or any(not isinstance(c, int) for c in counts):
        return None
    return sum(counts)


def _breakdown(rollouts: Sequence[Rollout], key: str) -> dict[str, dict[str, Any]]:
    """Mean reward and metric means per value of `rollout.info[key]` (missing -> "none")."""
    by_value: dict[str, list[Rollout]] = {}
    for rollout in rollouts:
        by_value.setdefault(str(rollout.info.get(key, "none")), []).append(rollout)
    out: dict[str, dict[str, Any]] = {}
    for value, group in sorted(by_value.items()):
        rewards = [r.reward for r in group if r.reward is not None]
        out[value] = {"n": len(group), "reward_mean": _mean(rewards), "metrics": _means(r.metrics for r in group)}
    return out


def summarize(
    rollouts: Sequence[Rollout],
    breakdowns: Sequence[str] = (),
    wall_time_s: float | None = None,
    timed_rollouts: int | None = None,
) -> dict[str, Any]:
    """
    Summarize an evaluation: every figure a results table or `metadata.json` shows.

    Rollouts whose reward is None (a reward function failed, or the episode errored before scoring)
    are left out of the reward mean/std and counted in `n_unscored`. For pass@k, a rollout passes when
    its reward is >= 1.0 - 1e-9 (unscored rollouts fail), groups are rollouts sharing a `group_id`, and
    k runs over 1, 2, 4, ... up to the smallest group size.

    :param rollouts: The rollouts to summarize.
    :param breakdowns: Keys of `Rollout.info` to split the mean reward and metrics by (an environment's
        `summary_breakdowns`).
    :param wall_time_s: Wall-clock time of the run, for the throughput figure.
    :param timed_rollouts: How many rollouts that wall time produced (default: all; fewer on a resume).
    :returns: A JSON-friendly dict.

    Usage example:
    ```python
    from haystack_rl import Rollout
    from haystack_rl.results import summarize

    rollouts = [Rollout("a", 0, 1, reward=1.0), Rollout("a", 1, 1, reward=0.0)]
    summary = summarize(rollouts)
    assert summary["reward_mean"] == 0.5 and summary["pass_at_k"] == {"pass@1": 0.5, "pass@2": 1.0}
    ```
    """
    rewards = [r.reward for r in rollouts if r.reward is not None]
    errors = [r.error for r in rollouts if r.error]
    distinct_errors = list(dict.fromkeys(errors))[:MAX_ERROR_EXAMPLES]
    reward_errors = Counter(name for r in rollouts for name in r.reward_errors)
    token_counts = [n for n in map(completion_token_count, rollouts) if n is not None]
    completion_tokens = sum(token_counts)
    rollout_times = [r.timing["total_s"] for r in rollouts if "total_s" in r.timing]
    timed = len(rollouts) if timed_rollouts is None else timed_rollouts
    environments = sorted({r.environment for r in rollouts if r.environment})
    return {
        "environment": environments[0] if len(environments) == 1 else environments,
        "n": len(rollouts),
        "n_examples": len({r.example_id for r in rollouts}),
        "n_scored": len(rewards),
        "n_unscored": len(rollouts) - len(rewards),
        "reward_mean": _mean(rewards),
        "reward_std": _std(rewards),
        "rewards": _means(r.rewards for r in rollouts),
        "metrics": _means(r.metrics for r in rollouts),
        "success": sum(map(passes, rollouts)) / len(rollouts) if rollouts else None,
        "pass_at_k": _pass_at_ks(rollouts),
        "errors": len(errors),
        "error_examples": distinct_errors,
        "reward_errors": dict(sorted(reward_errors.items())),
        "stop_reasons": dict(sorted(Counter(r.stop_reason or "unknown" for r in rollouts).items())),
        "tokens": {
            "rollouts_with_tokens": len(token_counts),
            "completion_total": completion_tokens if token_counts else None,
            "completion_mean": completion_tokens / len(token_counts) if token_counts else None,
        },
        "rollout_time_mean_s": _mean(rollout_times),
        "wall_time_s": wall_time_s,
        "rollouts_per_s": timed / wall_time_s if wall_time_s and timed else None,
        "breakdowns": {key: _breakdown(rollouts, key) for key in breakdowns},
    }


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
