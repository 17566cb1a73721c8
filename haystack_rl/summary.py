"""Figures of a batch of rollouts: reward mean and spread, success, pass@k, tool use, errors, tokens, breakdowns."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from haystack.dataclasses import ChatRole

from haystack_rl.rollout import Rollout

#: A rollout "passes" (for pass@k) when its total reward reaches 1.0 (up to this tolerance).
PASS_THRESHOLD = 1.0 - 1e-9
#: How many distinct error messages a summary keeps.
MAX_ERROR_EXAMPLES = 5


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
    from haystack_rl.summary import tool_use_stats

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
    from haystack_rl.summary import pass_at_k

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
    are left out of the reward mean/std and counted in `n_unscored`. For `success` and pass@k, a rollout
    passes by the environment's verdict (`rollout.success`), else when its reward is >= 1.0 - 1e-9
    (see `passes`); groups are rollouts sharing a `group_id`, and k runs over 1, 2, 4, ... up to the
    smallest group size.

    :param rollouts: The rollouts to summarize.
    :param breakdowns: Keys of `Rollout.info` to split the mean reward and metrics by (an environment's
        `summary_breakdowns`).
    :param wall_time_s: Wall-clock time of the run, for the throughput figure.
    :param timed_rollouts: How many rollouts that wall time produced (default: all; fewer on a resume).
    :returns: A JSON-friendly dict.

    Usage example:
    ```python
    from haystack_rl import Rollout
    from haystack_rl.summary import summarize

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
        "tool_use": {k: v for k, v in tool_use_stats(rollouts).items() if k != "success"},
    }


def flatten(summary: dict[str, Any]) -> dict[str, Any]:
    """
    The flat view of a `summarize` result that training logs, evaluation tables and run comparisons use:
    `reward` (mean over scored rollouts), `reward_std` (0.0 without any), `rollouts`, `unscored`, `errors`,
    `success`, each reward function and metric by name, the tool-use figures, and for each breakdown key and
    value the metrics of those rollouts as `KEY=VALUE/METRIC` (e.g. `opponent=random/win`).

    Usage example:
    ```python
    from haystack_rl import Rollout
    from haystack_rl.summary import flatten, summarize

    rollouts = [Rollout("a", 0, 1, reward=1.0, metrics={"win": 1.0}, info={"opponent": "random"})]
    flat = flatten(summarize(rollouts, breakdowns=["opponent"]))
    assert flat["reward"] == 1.0 and flat["win"] == 1.0 and flat["opponent=random/win"] == 1.0
    ```
    """
    split = {
        f"{key}={value}/{metric}": mean
        for key, by_value in summary["breakdowns"].items()
        for value, row in by_value.items()
        for metric, mean in row["metrics"].items()
    }
    return {
        "reward": summary["reward_mean"],
        "reward_std": summary["reward_std"] if summary["reward_std"] is not None else 0.0,
        "rollouts": summary["n"],
        "unscored": summary["n_unscored"],
        "errors": summary["errors"],
        **summary["rewards"],
        **summary["metrics"],
        **({"success": summary["success"]} if summary["success"] is not None else {}),
        **summary.get("tool_use", {}),
        **split,
    }
