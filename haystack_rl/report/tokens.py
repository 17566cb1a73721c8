"""The token view of a rollout: ids, environment mask and logprobs, and the text of each token id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from haystack_rl.models.tiny import BUILT_IN_MODELS
from haystack_rl.rollout import Rollout, TokenMismatchError


def token_view(rollout: Rollout) -> dict[str, Any] | None:
    """
    A rollout's tokens as a report shows them, or None when the rollout has no token data.

    :returns: `prompt` (the first prompt's ids), `ids`, `mask` (1: the model wrote the token, 0: the
        environment did) and `logprobs` (None on environment tokens), as `Rollout.completion_tokens`
        computes them. When a turn's prompt does not extend the previous turn (the prefix property is
        broken), each turn's completion is shown alone and `error` says why.

    Usage example:
    ```python
    from haystack_rl import Rollout, Turn
    from haystack_rl.report.tokens import token_view

    turns = [Turn([1, 2], [3], [-0.5]), Turn([1, 2, 3, 4], [5], [-0.1])]
    view = token_view(Rollout(example_id="0", rollout_index=0, seed=0, turns=turns))
    assert view["ids"] == [3, 4, 5] and view["mask"] == [1, 0, 1] and view["logprobs"] == [-0.5, None, -0.1]
    ```
    """
    turns = rollout.turns
    if not turns:
        return None
    error = None
    try:
        ids, mask, logprobs = rollout.completion_tokens()
    except TokenMismatchError as mismatch:
        error = str(mismatch)
        ids = [i for turn in turns for i in turn.completion_ids]
        mask = [1] * len(ids)
        logprobs = [lp for turn in turns for lp in (turn.logprobs or [0.0] * len(turn.completion_ids))]
    known = [turn.logprobs is not None for turn in turns]
    shown = [lp if m and all(known) else None for lp, m in zip(logprobs, mask)]
    return {"prompt": rollout.prompt_ids, "ids": ids, "mask": mask, "logprobs": shown, "error": error}


class TokenDecoder:
    """
    Turns token ids into the text each one stands for, with the tokenizer of the model a run names.

    The tokenizer is found offline: `tiny`/`tiny-init` build theirs in memory, a model directory loads its
    own. Any other model (a served name, a scripted baseline) has none; the report then shows raw ids.

    Usage example:
    ```python
    from haystack_rl.report.tokens import TokenDecoder

    decoder = TokenDecoder.for_model("tiny")
    assert decoder.pieces([104, 105]) == {104: "h", 105: "i"}
    assert TokenDecoder.for_model("baseline:oracle").pieces([104]) == {}
    ```
    """

    def __init__(self, tokenizer: Any = None, note: str = "") -> None:
        self.tokenizer = tokenizer
        self.note = note
        self._cache: dict[int, str] = {}

    @classmethod
    def for_model(cls, model: str | None) -> TokenDecoder:
        """The decoder of a run's model; one without a tokenizer (and a `note` saying why) when none loads."""
        if not model:
            return cls(note="the run does not name its model")
        if model in BUILT_IN_MODELS:
            from haystack_rl.models.tiny import build_tokenizer

            return cls(build_tokenizer(), note=f"tokens decoded with the {model} tokenizer")
        if not Path(model).is_dir():
            return cls(note=f"no local tokenizer for {model!r}: token ids are shown")
        try:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(model)
        except Exception as error:  # noqa: BLE001 - any failure means: show ids instead
            return cls(note=f"cannot load the tokenizer of {model} ({type(error).__name__}): token ids are shown")
        return cls(tokenizer, note=f"tokens decoded with the tokenizer of {model}")

    @property
    def available(self) -> bool:
        """Whether ids can be turned into text."""
        return self.tokenizer is not None

    def pieces(self, ids: Any) -> dict[int, str]:
        """The text of each distinct id ({} without a tokenizer)."""
        if self.tokenizer is None:
            return {}
        out = {}
        for token_id in ids:
            if token_id not in self._cache:
                self._cache[token_id] = self.tokenizer.decode([token_id])
            out[token_id] = self._cache[token_id]
        return out
