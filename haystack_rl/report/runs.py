"""Reading run directories for a report: an eval run (`results.jsonl`) or a training run (`metrics.jsonl`)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haystack_rl.results import METADATA_FILE
from haystack_rl.rollout import Rollout
from haystack_rl.runner import RESULTS_FILE
from haystack_rl.summary import summarize

RUN_FILE = "run.json"
TRAIN_CONFIG_FILE = "config.json"
TRAIN_METRICS_FILE = "metrics.jsonl"
TRAIN_SUMMARY_FILE = "summary.json"
#: Where a training run keeps the rollouts of its evaluations (`evals/before/results.jsonl`, ...).
EVALS_DIR = "evals"
#: A training run's evaluations, in the order they happen, with their display names.
EVAL_LABELS = {"before": "before", "sft": "after SFT", "after": "after"}


class ReportError(ValueError):
    """A run directory that cannot be reported on; the message says what to pass instead."""


@dataclass
class EvalRun:
    """
    The rollouts of one evaluation and their summary, as read from an eval run directory.

    :param path: The run directory.
    :param label: A short name for the run (its directory name, or `before`/`after` in a training run).
    :param rollouts: One `Rollout.to_dict()` per rollout, as written to `results.jsonl`.
    :param summary: `metadata.json`'s summary, or one computed from the rollouts when that file is missing.
    :param summary_source: `metadata.json`, or a note that the summary was computed here.
    :param config: The run's configuration (`run.json`, or `metadata.json`'s run info).

    Usage example:
    ```python
    import tempfile
    from haystack_rl.cli import app
    from haystack_rl.report import load_run
    from typer.testing import CliRunner

    out = tempfile.mkdtemp()
    CliRunner().invoke(app, ["eval", "reverse_text", "--model", "baseline:oracle", "-n", "2", "-o", out])
    run = load_run(out)
    assert run.model == "baseline:oracle" and len(run.rollouts) == 2 and run.summary["reward_mean"] == 1.0
    ```
    """

    path: Path
    label: str
    rollouts: list[dict[str, Any]]
    summary: dict[str, Any]
    summary_source: str
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> str | None:
        """The model the rollouts came from, as the run recorded it (a name, a directory or `baseline:NAME`)."""
        model = self.config.get("model")
        return str(model) if model else None


@dataclass
class TrainingRun:
    """
    A training run: its config, the step log and the saved evaluations.

    :param path: The run's `output_dir`.
    :param config: `config.json` (the `TrainConfig` as a dict).
    :param records: `metrics.jsonl`, one dict per logged step (`stage`: sft, grpo or eval).
    :param summary: `summary.json` (eval summaries `eval_before`/`eval_sft`/`eval_after`, wall times), if written.
    :param evals: The evaluations saved under `evals/`, by label (`before`, `sft`, `after`), in that order.

    Usage example:
    ```python
    import json, tempfile
    from pathlib import Path
    from haystack_rl.report import load_run

    out = Path(tempfile.mkdtemp())
    (out / "metrics.jsonl").write_text(json.dumps({"stage": "grpo", "step": 1, "reward": 0.25}) + chr(10))
    run = load_run(out)
    assert run.records[0]["reward"] == 0.25 and run.evals == {}
    ```
    """

    path: Path
    config: dict[str, Any]
    records: list[dict[str, Any]]
    summary: dict[str, Any]
    evals: dict[str, EvalRun]


def load_run(path: str | Path) -> EvalRun | TrainingRun:
    """
    Read a run directory: an eval run (`haystack-rl eval -o DIR`) or a training run (`haystack-rl train`).

    A path to a `results.jsonl` file reads the directory around it.

    :raises ReportError: when the path is missing, holds no run, or a file in it is malformed.
    """
    path = Path(path)
    if path.is_file() and path.name == RESULTS_FILE:
        path = path.parent
    if not path.exists():
        raise ReportError(f"{path}: no such directory; pass the output directory of `haystack-rl eval -o DIR` "
                          "or of `haystack-rl train`")  # fmt: skip
    if not path.is_dir():
        raise ReportError(f"{path} is a file; pass the run directory that holds results.jsonl or metrics.jsonl")
    if (path / TRAIN_METRICS_FILE).exists() or (path / TRAIN_SUMMARY_FILE).exists():
        return load_training_run(path)
    if (path / RESULTS_FILE).exists():
        return load_eval_run(path)
    raise ReportError(f"{path} holds no run: expected results.jsonl (from `haystack-rl eval -o DIR`) or "
                      "metrics.jsonl (from `haystack-rl train`)")  # fmt: skip


def load_eval_run(path: Path, label: str | None = None) -> EvalRun:
    """Read an eval run directory (`results.jsonl`, `metadata.json`, `run.json`)."""
    rollouts = read_rollout_dicts(path / RESULTS_FILE)
    if not rollouts:
        raise ReportError(f"{path / RESULTS_FILE} holds no rollouts; was the run interrupted before its first group "
                          "finished? Run it again, or finish it with `haystack-rl eval ... --resume`")  # fmt: skip
    metadata = _read_json(path / METADATA_FILE)
    run_info = metadata.get("run") or {}
    config = _read_json(path / RUN_FILE) or run_info.get("config") or run_info
    summary = metadata.get("summary")
    if isinstance(summary, dict):
        source = METADATA_FILE
    else:
        summary = summarize([rollout_from_record(r, path / RESULTS_FILE) for r in rollouts])
        source = f"computed from {RESULTS_FILE} ({METADATA_FILE} is missing: the run did not finish)"
    return EvalRun(path=path, label=label or path.name, rollouts=rollouts, summary=summary, summary_source=source,
                   config=config if isinstance(config, dict) else {})  # fmt: skip


def load_training_run(path: Path) -> TrainingRun:
    """Read a training run directory (`config.json`, `metrics.jsonl`, `summary.json`, `evals/*`)."""
    records = read_json_lines(path / TRAIN_METRICS_FILE)
    evals = {
        label: load_eval_run(path / EVALS_DIR / label, label=label)
        for label in EVAL_LABELS
        if (path / EVALS_DIR / label / RESULTS_FILE).exists()
    }
    return TrainingRun(path=path, config=_read_json(path / TRAIN_CONFIG_FILE), records=records,
                       summary=_read_json(path / TRAIN_SUMMARY_FILE), evals=evals)  # fmt: skip


def read_rollout_dicts(path: Path) -> list[dict[str, Any]]:
    """
    The rollout records of a `results.jsonl`, as dicts (unknown keys kept, missing ones left to the reader).

    A last line without its newline (a write cut short) is skipped, as `read_rollouts` does.

    :raises ReportError: on a line that is not a JSON object.
    """
    records = read_json_lines(path, skip_torn_tail=True)
    for number, record in enumerate(records, start=1):
        if "example_id" not in record:
            raise ReportError(f"{path}:{number}: not a rollout record (no example_id); is this a results.jsonl "
                              "written by `haystack-rl eval`?")  # fmt: skip
    return records


def read_json_lines(path: Path, skip_torn_tail: bool = True) -> list[dict[str, Any]]:
    """
    Every JSON object in a JSON-lines file ([] when the file is missing); blank lines are skipped.

    :raises ReportError: naming the file and line of a line that is not a JSON object.
    """
    if not path.exists():
        return []
    out: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if skip_torn_tail and not line.endswith("\n"):
                break  # the tail of an interrupted write, not data
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ReportError(f"{path}:{number}: not valid JSON ({error.msg} at column {error.colno}); "
                                  "fix or delete that line and run the report again") from None  # fmt: skip
            if not isinstance(record, dict):
                raise ReportError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}; "
                                  "fix or delete that line and run the report again")  # fmt: skip
            out.append(record)
    return out


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object file ({} when missing)."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ReportError(f"{path}: not valid JSON ({error.msg} at line {error.lineno}); "
                          "restore the file or delete it (the report then works without it)") from None  # fmt: skip
    if not isinstance(data, dict):
        raise ReportError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


_ROLLOUT_FIELDS = {f.name for f in dataclasses.fields(Rollout)}


def rollout_from_record(record: dict[str, Any], source: Path) -> Rollout:
    """A `Rollout` from a record, ignoring keys this version does not know (newer runs may add fields)."""
    try:
        return Rollout.from_dict({k: v for k, v in record.items() if k in _ROLLOUT_FIELDS})
    except (KeyError, TypeError, ValueError) as error:
        raise ReportError(f"{source}: rollout {record.get('example_id')!r} #{record.get('rollout_index')} cannot be "
                          f"read ({type(error).__name__}: {error})") from None  # fmt: skip
