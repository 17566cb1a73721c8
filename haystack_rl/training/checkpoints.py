"""Checkpoints: the last one a run (perhaps killed mid-save) left whole, to resume from."""

from __future__ import annotations

import logging
import re
from pathlib import Path

logger = logging.getLogger(__name__)

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
#: Written last by `transformers.Trainer` when it saves a checkpoint: its presence marks a whole one.
TRAINER_STATE = "trainer_state.json"


def last_complete_checkpoint(output_dir: str | Path) -> str | None:
    """
    The newest `checkpoint-N` directory under `output_dir` that was saved to the end, or None.

    A process killed while saving leaves a `checkpoint-N` without its `trainer_state.json` (the
    Trainer writes it last); `transformers.trainer_utils.get_last_checkpoint` would pick that one
    and the resume would fail, so it is skipped here (with a warning).

    Usage example:
    ```python
    import tempfile
    from pathlib import Path
    from haystack_rl.training.checkpoints import last_complete_checkpoint

    out = Path(tempfile.mkdtemp())
    (out / "checkpoint-2").mkdir()
    (out / "checkpoint-2" / "trainer_state.json").write_text("{}")
    (out / "checkpoint-4").mkdir()  # killed mid-save
    assert last_complete_checkpoint(out) == str(out / "checkpoint-2")
    ```
    """
    folder = Path(output_dir)
    if not folder.is_dir():
        return None
    found = sorted(
        ((int(match.group(1)), path) for path in folder.iterdir() if (match := _CHECKPOINT.match(path.name))),
        reverse=True,
    )
    for _, path in found:
        if path.is_dir() and (path / TRAINER_STATE).is_file():
            return str(path)
        logger.warning("skipping %s: an incomplete checkpoint (no %s; the run stopped mid-save)", path, TRAINER_STATE)
    return None
