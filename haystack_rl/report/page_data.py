"""The data a report page shows: eval sections (summary, rollouts), learning curves, run comparisons."""

from __future__ import annotations

import re
import statistics
import time
from collections import Counter
from typing import Any

from haystack.dataclasses import ChatMessage

from haystack_rl.report.runs import EVAL_LABELS, EVALS_DIR, EvalRun, ReportError, TrainingRun, rollout_from_record
from haystack_rl.report.tokens import TokenDecoder, token_view
from haystack_rl.rollout import Rollout
from haystack_rl.summary import tool_use_stats

#: The last `<tag>...</tag>` of a reply is shown as its parsed answer.
ANSWER_TAG = re.compile(r"<([A-Za-z_][\w-]*)>(.*?)</\1>", re.DOTALL)
#: Learning-curve charts: (title, which logged keys it draws), per stage; other numeric keys go to "more".
CURVES: dict[str, list[tuple[str, Any]]] = {
    "sft": [
        ("SFT loss", lambda k: k == "loss"),
        ("SFT token accuracy", lambda k: k == "mean_token_accuracy"),
    ],
    "grpo": [
        ("reward", lambda k: k in ("reward", "eval_reward") or (k.startswith("rewards/") and k.endswith("/mean"))),
        ("loss", lambda k: k == "loss"),
        ("KL", lambda k: k == "kl"),
        ("entropy", lambda k: k == "entropy"),
        ("success", lambda k: k in ("episodes/success", "success")),
        ("tool use", lambda k: k.startswith("tools/")),
        ("completion length", lambda k: k.startswith("completions/") and k.endswith("_length")),
    ],
}
#: Keys of a logged step that are not curves.
NOT_CURVES = {"stage", "step", "time", "epoch", "label", "total_flos"}


def page_data(runs: list[EvalRun | TrainingRun], title: str | None = None) -> dict[str, Any]:
    """
    Everything a report page shows, as JSON-friendly data.

    One run: its evaluation (an eval run) or its curves and evaluations (a training run, with its first
    and last evaluations compared per example). Two runs: both evaluations and their per-example
    comparison (a training run stands for its last saved evaluation).

    :raises ReportError: when more than two runs are given, or a compared training run saved no evaluation.
    """
    if not 1 <= len(runs) <= 2:
        raise ReportError(f"a report shows one run or compares two, got {len(runs)}")
    data: dict[str, Any] = {
        "title": title or " vs ".join(run.path.name or str(run.path) for run in runs),
        "generated_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "sources": [str(run.path) for run in runs],
        "sections": [],
        "training": None,
        "comparisons": [],
    }
    if len(runs) == 2:
        a, b = (_comparable(run) for run in runs)
        data["sections"] = [eval_section(a, "A", f"A: {_run_name(a)}"), eval_section(b, "B", f"B: {_run_name(b)}")]
        data["comparisons"] = [comparison(a, b, "A", "B")]
        return data
    run = runs[0]
    if isinstance(run, EvalRun):
        data["sections"] = [eval_section(run, "run", run.label)]
        return data
    data["training"] = training_section(run)
    data["sections"] = [eval_section(e, label, EVAL_LABELS.get(label, label)) for label, e in run.evals.items()]
    if len(run.evals) >= 2:
        first, last = list(run.evals)[0], list(run.evals)[-1]
        data["comparisons"] = [comparison(run.evals[first], run.evals[last], first, last)]
    return data


def _run_name(run: EvalRun) -> str:
    """`calc` for an eval run; `runs/rt (after)` for a training run's saved evaluation."""
    if run.path.parent.name == EVALS_DIR:
        return f"{run.path.parent.parent.name} ({EVAL_LABELS.get(run.label, run.label)})"
    return run.path.name or run.label


def _comparable(run: EvalRun | TrainingRun) -> EvalRun:
    if isinstance(run, EvalRun):
        return run
    if not run.evals:
        raise ReportError(f"{run.path} is a training run without saved evaluation rollouts (evals/); "
                          "compare eval run directories, or train again to save them")  # fmt: skip
    return list(run.evals.values())[-1]


# --- an evaluation --------------------------------------------------------------------------------
def eval_section(run: EvalRun, section_id: str, label: str) -> dict[str, Any]:
    """
    One evaluation as the page shows it: the summary exactly as recorded, a few figures derived from the
    rollouts (labelled so), and every rollout with its transcript and token view.
    """
    source = run.path / "results.jsonl"
    rollouts = [rollout_from_record(record, source) for record in run.rollouts]
    items = [rollout_item(rollout, index) for index, rollout in enumerate(rollouts)]
    has_tokens = any(item["tokens"] for item in items)
    decoder = TokenDecoder.for_model(run.model) if has_tokens else TokenDecoder()
    ids = {i for item in items if item["tokens"] for i in (*item["tokens"]["prompt"], *item["tokens"]["ids"])}
    vocab = {str(k): v for k, v in decoder.pieces(sorted(ids)).items()}
    return {
        "id": section_id,
        "label": label,
        "path": str(run.path),
        "model": run.model,
        "environment": run.summary.get("environment"),
        "config": run.config,
        "summary": run.summary,
        "summary_source": run.summary_source,
        "derived": derived_figures(rollouts, run.summary),
        "reward_names": sorted({name for item in items for name in item["rewards"]}),
        "metric_names": sorted({name for item in items for name in item["metrics"]}),
        "rollouts": items,
        "vocab": vocab,
        "token_note": decoder.note,
    }


def derived_figures(rollouts: list[Rollout], summary: dict[str, Any]) -> dict[str, Any]:
    """
    Figures computed from the rollouts that the summary may lack: tool use (older runs), errors by kind, and
    success when the summary has none: the environment's verdicts, else the share reaching reward 1.0.
    """
    stats: dict[str, Any] = dict(tool_use_stats(rollouts))
    for key in summary.get("tool_use") or {}:
        stats.pop(key, None)
    if "success" in summary:
        stats.pop("success", None)
    elif "success" in stats:
        verdicts = any(r.success is not None for r in rollouts)
        stats["success_source"] = "the environment's verdicts" if verdicts else "share of rollouts with reward >= 1.0"
    stats["errors_by_kind"] = dict(Counter(error_kind(r.error) for r in rollouts if r.error).most_common())
    return stats


def error_kind(error: str) -> str:
    """The kind of a rollout error: `policy: RateLimitError: Error code: 429 ...` -> `policy: RateLimitError`."""
    return ":".join(error.split(":", 2)[:2]).strip()


def rollout_item(rollout: Rollout, index: int) -> dict[str, Any]:
    """One rollout as the page's table and transcript viewer read it (token data only when it exists)."""
    tokens = token_view(rollout)
    answer = parsed_answer(rollout.completion)
    expected = rollout.example.get("answer") if isinstance(rollout.example, dict) else None
    return {
        "i": index,
        "example_id": rollout.example_id,
        "rollout_index": rollout.rollout_index,
        "group_id": rollout.group_id,
        "seed": rollout.seed,
        "reward": rollout.reward,
        "rewards": rollout.rewards,
        "metrics": rollout.metrics,
        "reward_errors": rollout.reward_errors,
        "success": rollout.success,
        "stop_reason": rollout.stop_reason or "unknown",
        "error": rollout.error,
        "error_kind": error_kind(rollout.error) if rollout.error else None,
        "info": rollout.info,
        "timing": rollout.timing,
        "prompt": _first_user_text(rollout.messages),
        "answer": answer,
        "expected": None if expected is None else str(expected),
        "messages": [message_item(message) for message in rollout.messages],
        "tokens": tokens,
        "n_tokens": sum(tokens["mask"]) if tokens else None,
    }


def parsed_answer(text: str) -> dict[str, str] | None:
    """The last `<tag>...</tag>` in a reply, as `{"tag", "text"}` (None when the reply has no tag)."""
    matches = ANSWER_TAG.findall(text or "")
    return {"tag": matches[-1][0], "text": matches[-1][1].strip()} if matches else None


def message_item(message: ChatMessage) -> dict[str, Any]:
    """A chat message as the transcript shows it: role, text, reasoning, tool calls and a tool result."""
    result = message.tool_call_result
    return {
        "role": message.role.value,
        "name": message.name,
        "text": message.text,
        "reasoning": message.reasoning.reasoning_text if message.reasoning else None,
        "tool_calls": [{"name": c.tool_name, "arguments": c.arguments, "id": c.id} for c in message.tool_calls],
        "tool_result": None
        if result is None
        else {
            "name": result.origin.tool_name,
            "arguments": result.origin.arguments,
            "result": str(result.result),
            "error": bool(result.error),
        },
        # small scalar meta only (model, finish reason); token ids live in the token view
        "meta": {k: v for k, v in message.meta.items() if isinstance(v, str | int | float | bool)},
    }


def _first_user_text(messages: list[ChatMessage]) -> str:
    for message in messages:
        if message.role.value == "user":
            return message.text or ""
    return ""


# --- a training run -----------------------------------------------------------------------------
def training_section(run: TrainingRun) -> dict[str, Any]:
    """The training run's config, learning curves and evaluations side by side."""
    return {
        "path": str(run.path),
        "config": run.config,
        "curves": learning_curves(run.records),
        "steps_logged": {stage: len(step_rows(run.records, stage)) for stage in CURVES},
        "evals": evals_side_by_side(run),
        "wall_s": {k: v for k, v in run.summary.items() if k.endswith("_wall_s") and isinstance(v, int | float)},
    }


def step_rows(records: list[dict[str, Any]], stage: str) -> dict[int, dict[str, Any]]:
    """A stage's logged records merged by step (a step logged twice, e.g. its loss and the run's end, is one)."""
    rows: dict[int, dict[str, Any]] = {}
    for record in records:
        if record.get("stage") == stage and isinstance(record.get("step"), int):
            rows.setdefault(record["step"], {}).update(record)
    return dict(sorted(rows.items()))


def learning_curves(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """
    One chart per figure family and stage (see `CURVES`), one point per logged step, plus a "more" chart
    per stage holding every other logged number (the page picks which one to draw).

    :returns: Charts as `{"id", "title", "stage", "x": steps, "series": [{"name", "values"}], "pick"}`.
    """
    evals_with_step = step_rows(records, "eval")
    charts: list[dict[str, Any]] = []
    for stage, families in CURVES.items():
        rows = step_rows(records, stage)
        if stage == "grpo":
            for step, row in evals_with_step.items():  # evaluations during GRPO sit on its reward chart
                rows.setdefault(step, {})["eval_reward"] = row.get("eval_reward")
            rows = dict(sorted(rows.items()))
        keys = [k for k in dict.fromkeys(k for row in rows.values() for k in row) if _is_curve(k, rows)]
        used: set[str] = set()
        for title, wanted in families:
            names = sorted((k for k in keys if wanted(k)), key=lambda k: (k not in ("reward", "loss"), k))
            if names:
                charts.append(_chart(f"{stage}-{len(charts)}", title, stage, rows, names))
                used.update(names)
        rest = sorted(k for k in keys if k not in used)
        if rest:
            charts.append({**_chart(f"{stage}-more", f"{stage.upper()}: more", stage, rows, rest), "pick": True})
    return charts


def _is_curve(key: str, rows: dict[int, dict[str, Any]]) -> bool:
    if key in NOT_CURVES or key.startswith("train_"):
        return False
    return any(isinstance(row.get(key), int | float) and not isinstance(row.get(key), bool) for row in rows.values())


def _chart(chart_id: str, title: str, stage: str, rows: dict[int, dict[str, Any]], names: list[str]) -> dict[str, Any]:
    steps = [step for step, row in rows.items() if any(row.get(n) is not None for n in names)]
    series = [{"name": name, "values": [_number(rows[step].get(name)) for step in steps]} for name in names]
    return {"id": chart_id, "title": title, "stage": stage, "x": steps, "series": series, "pick": False}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def evals_side_by_side(run: TrainingRun) -> dict[str, Any]:
    """
    The before / after-SFT / after evaluations as one table: `{"columns": [labels], "rows": [[figure, v...]]}`.

    From the saved evaluations (`evals/*/metadata.json`) when there are, else from `summary.json`.
    """
    if run.evals:
        columns = [EVAL_LABELS.get(label, label) for label in run.evals]
        flats = [_flat_summary(e.summary) for e in run.evals.values()]
    else:
        present = [(label, run.summary[f"eval_{label}"]) for label in EVAL_LABELS
                   if isinstance(run.summary.get(f"eval_{label}"), dict)]  # fmt: skip
        columns = [EVAL_LABELS[label] for label, _ in present]
        flats = [{k: v for k, v in s.items() if k != "wall_s"} for _, s in present]
    names = list(dict.fromkeys(k for flat in flats for k in flat))
    return {"columns": columns, "rows": [[name, *(flat.get(name) for flat in flats)] for name in names]}


def _flat_summary(summary: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"reward": summary.get("reward_mean"), "reward_std": summary.get("reward_std")}
    out.update({f"reward: {k}": v for k, v in (summary.get("rewards") or {}).items()})
    out.update({f"metric: {k}": v for k, v in (summary.get("metrics") or {}).items()})
    out.update(summary.get("pass_at_k") or {})
    if "success" in summary:
        out["success"] = summary["success"]
    out.update(rollouts=summary.get("n"), errors=summary.get("errors"))
    return out


# --- two evaluations ----------------------------------------------------------------------------
def comparison(a: EvalRun, b: EvalRun, a_id: str, b_id: str) -> dict[str, Any]:
    """
    Per-example differences between two evaluations: each example's mean reward in A and in B and the
    delta (B - A); an example only one run has gets None on the other side.
    """
    groups_a, groups_b = _rewards_by_example(a.rollouts), _rewards_by_example(b.rollouts)
    prompts = {str(r.get("example_id")): _prompt_of(r) for r in (*b.rollouts, *a.rollouts)}
    rows = []
    for example_id in dict.fromkeys([*groups_a, *groups_b]):
        mean_a, mean_b = _mean(groups_a.get(example_id)), _mean(groups_b.get(example_id))
        rows.append({
            "example_id": example_id,
            "prompt": prompts.get(example_id, ""),
            "a": mean_a,
            "b": mean_b,
            "delta": None if mean_a is None or mean_b is None else mean_b - mean_a,
            "a_n": len(groups_a.get(example_id, [])),
            "b_n": len(groups_b.get(example_id, [])),
        })  # fmt: skip
    return {"a": a_id, "b": b_id, "a_label": a.label, "b_label": b.label, "rows": rows}


def _rewards_by_example(records: list[dict[str, Any]]) -> dict[str, list[float | None]]:
    out: dict[str, list[float | None]] = {}
    for record in records:
        reward = record.get("reward")
        out.setdefault(str(record.get("example_id")), []).append(_number(reward))
    return out


def _mean(values: list[float | None] | None) -> float | None:
    scored = [v for v in values or [] if v is not None]
    return statistics.fmean(scored) if scored else None


def _prompt_of(record: dict[str, Any]) -> str:
    example = record.get("example")
    if isinstance(example, dict) and isinstance(example.get("prompt"), str):
        return example["prompt"]
    return ""
