"""Task datasets for environments: rows from a list of dicts, a JSONL or CSV file, or a `datasets.Dataset`."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

#: What `load_tasks` accepts: rows, a path to a `.jsonl`/`.json`/`.csv` file, or a `datasets.Dataset`.
TaskSource = str | Path | Iterable[dict[str, Any]]


def load_tasks(
    source: TaskSource, required: Sequence[str] = ("prompt",), name: str | None = None
) -> list[dict[str, Any]]:
    """
    The rows of a task dataset, each a plain dict, checked for the `required` columns.

    `source` is a list (or any iterable) of dicts, a `datasets.Dataset`, or the path of a JSONL file (one
    JSON object a line; `.json` holding a list works too) or a CSV file with a header row. Errors name the
    dataset, the row and the columns it has.

    Usage example:
    ```python
    from haystack_rl.tasks import load_tasks

    rows = load_tasks([{"prompt": "2+3?", "answer": "5"}], required=("prompt", "answer"))
    assert rows == [{"prompt": "2+3?", "answer": "5"}]
    ```

    :param source: The rows, or where to read them.
    :param required: Columns every row must have (e.g. `prompt`, and `answer` for answer rewards).
    :param name: How errors call the dataset (default: the path, or "dataset").
    """
    label = name or (str(source) if isinstance(source, str | Path) else "dataset")
    if isinstance(source, str | Path):
        rows = _read_file(Path(source), label)
    else:
        try:
            rows = [dict(row) for row in source]
        except (TypeError, ValueError) as error:
            raise TypeError(f"{label}: expected rows as dicts, a datasets.Dataset or a file path: {error}") from None
    if not rows:
        raise ValueError(f"{label}: the dataset has no rows")
    for index, row in enumerate(rows):
        missing = [column for column in required if row.get(column) in (None, "")]
        if missing:
            raise ValueError(
                f"{label}: row {index} lacks column(s) {', '.join(repr(c) for c in missing)}; it has "
                f"{', '.join(repr(c) for c in row) or 'none'}. Rename the columns, or fill them in every row"
            )
    return rows


def _read_file(path: Path, label: str) -> list[dict[str, Any]]:
    if not path.is_file():
        raise FileNotFoundError(f"{label}: dataset file not found")
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8")
    if suffix == ".csv":
        return [dict(row) for row in csv.DictReader(text.splitlines())]
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{label}: not valid JSON ({error.msg}, line {error.lineno})") from None
        if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
            raise ValueError(f"{label}: a .json dataset must hold a list of objects")
        return data
    if suffix not in (".jsonl", ".ndjson"):
        raise ValueError(f"{label}: unknown dataset format {suffix or '(none)'!r}; use .jsonl, .json or .csv")
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{label}: line {number} is not valid JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{label}: line {number} is not a JSON object")
        rows.append(row)
    return rows
