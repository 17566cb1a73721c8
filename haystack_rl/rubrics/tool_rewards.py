"""Rewards and metrics for tool-using rollouts: answer exact match / token F1, tool-call validity and counts."""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from haystack import default_from_dict, default_to_dict

from haystack_rl.rubrics.parsers import TagParser
from haystack_rl.rubrics.rubric import RewardFunction, Rubric

if TYPE_CHECKING:
    from haystack_rl.rollout import Rollout

ANSWER_PARSER = TagParser("answer")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD-style normalization: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in string.punctuation)
    return " ".join(_ARTICLES.sub(" ", text).split())


def final_answer(rollout: Rollout) -> str | None:
    """The `<answer>` of the rollout's last assistant reply, or None when it has none."""
    return ANSWER_PARSER.parse(rollout.completion)


def _references(rollout: Rollout) -> list[str]:
    answer: Any = rollout.example.get("answer")
    if answer is None:
        raise KeyError(f"example {rollout.example_id!r} has no 'answer' to compare with")
    aliases = answer if isinstance(answer, list) else [answer]
    return [str(a) for a in aliases] + [str(a) for a in rollout.example.get("aliases", [])]


def exact_match(rollout: Rollout) -> float:
    """
    1 when the final `<answer>` equals the example's `answer` (or one of its `aliases`) after
    `normalize_answer`, else 0 (also 0 without an answer).

    Usage example:
    ```python
    from haystack.dataclasses import ChatMessage
    from haystack_rl import Rollout
    from haystack_rl.rubrics.tool_rewards import exact_match, token_f1

    rollout = Rollout(example_id="0", rollout_index=0, seed=0, example={"answer": "The Red Fox"},
                      messages=[ChatMessage.from_assistant("<answer>red fox</answer>")])
    assert exact_match(rollout) == 1.0 and token_f1(rollout) == 1.0
    ```
    """
    answer = final_answer(rollout)
    if answer is None:
        return 0.0
    return float(any(normalize_answer(answer) == normalize_answer(ref) for ref in _references(rollout)))


def f1_score(prediction: str, reference: str) -> float:
    """Token F1 between two texts after `normalize_answer` (1 when both are empty)."""
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not predicted or not expected:
        return float(predicted == expected)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def token_f1(rollout: Rollout) -> float:
    """Best token F1 of the final `<answer>` against the answer and its aliases (0 without an answer)."""
    answer = final_answer(rollout)
    if answer is None:
        return 0.0
    return max(f1_score(answer, ref) for ref in _references(rollout))


def parse_number(text: Any) -> float | None:
    """
    A number written as people write them: `1000`, `1,000`, `1 000`, `1_000`, `-3.5`, `1e3` (None for anything
    else). Both sides of a numeric reward are read with it, so a reference "1,000" equals an answer "1000".
    """
    cleaned = re.sub(r"(?<=\d)[,_ ](?=\d{3}\b)", "", str(text).strip())
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _numeric_answer(rollout: Rollout) -> tuple[float, float] | None:
    """(the final `<answer>` as a number, the example's `answer` as a number), or None when either is no number."""
    answer = final_answer(rollout)
    given = parse_number(answer) if answer is not None else None
    expected = parse_number(rollout.example["answer"])
    return None if given is None or expected is None else (given, expected)


class NumericMatch:
    """
    A reward: 1 when the final `<answer>` is a number equal to the example's numeric `answer`, else 0. Both are
    read with `parse_number` (so "1,000" equals "1000" and "1e3"), and equal means within `tolerance`: an
    absolute difference by default, or a share of the reference's size with `relative=True`.

    Usage example:
    ```python
    from haystack.dataclasses import ChatMessage
    from haystack_rl import Rollout
    from haystack_rl.rubrics.tool_rewards import NumericMatch, numeric_match

    def reply(text: str, answer: str = "1,000") -> Rollout:
        return Rollout(example_id="0", rollout_index=0, seed=0, example={"answer": answer},
                       messages=[ChatMessage.from_assistant(text)])

    assert numeric_match(reply("<answer>1,000</answer>")) == numeric_match(reply("<answer>1000</answer>")) == 1.0
    assert numeric_match(reply("<answer>1000.01</answer>")) == 0.0
    assert NumericMatch(tolerance=0.01, relative=True)(reply("<answer>1005</answer>")) == 1.0
    ```

    :param tolerance: Largest difference still counted as equal (default 1e-6: exact up to float rounding).
    :param relative: Compare the difference with `tolerance * max(|reference|, 1)` instead of `tolerance`.
    """

    def __init__(self, tolerance: float = 1e-6, relative: bool = False) -> None:
        if tolerance < 0:
            raise ValueError(f"NumericMatch: tolerance must be >= 0, got {tolerance}")
        self.tolerance = tolerance
        self.relative = relative
        self.__name__ = "numeric_match"

    def __call__(self, rollout: Rollout) -> float:
        """1.0 or 0.0 (0 when the reply has no numeric `<answer>`)."""
        pair = _numeric_answer(rollout)
        if pair is None:
            return 0.0
        given, expected = pair
        limit = self.tolerance * max(abs(expected), 1.0) if self.relative else self.tolerance
        return float(abs(given - expected) <= limit)

    def to_dict(self) -> dict[str, Any]:
        """Serialize (with its rubric)."""
        return default_to_dict(self, tolerance=self.tolerance, relative=self.relative)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NumericMatch:
        """Deserialize."""
        return default_from_dict(cls, data)


#: `NumericMatch()` at its defaults: equal up to 1e-6, after reading both sides with `parse_number`.
numeric_match = NumericMatch()


def numeric_closeness(rollout: Rollout) -> float:
    """
    Partial credit for numeric answers, a denser training signal than `numeric_match`: 1 for the exact
    answer; else `0.5 * (1 - relative error)`, floored at 0 (the relative error is taken against
    `max(|answer|, 1)`), so a near miss earns up to 0.5 and never counts as a success (reward < 1).

    Usage example:
    ```python
    from haystack.dataclasses import ChatMessage
    from haystack_rl import Rollout
    from haystack_rl.rubrics.tool_rewards import numeric_closeness

    def reply(text: str) -> Rollout:
        return Rollout(example_id="0", rollout_index=0, seed=0, example={"answer": "200"},
                       messages=[ChatMessage.from_assistant(text)])

    assert numeric_closeness(reply("<answer>200</answer>")) == 1.0
    assert numeric_closeness(reply("<answer>150</answer>")) == 0.375
    assert numeric_closeness(reply("<answer>900</answer>")) == numeric_closeness(reply("no answer")) == 0.0
    ```
    """
    pair = _numeric_answer(rollout)
    if pair is None:
        return 0.0
    given, expected = pair
    if abs(given - expected) <= 1e-6:
        return 1.0
    return 0.5 * max(0.0, 1.0 - abs(given - expected) / max(abs(expected), 1.0))


def _tool_results(rollout: Rollout) -> list[bool]:
    """One entry per tool message of the rollout: whether it reports an error."""
    out = []
    for message in rollout.messages:
        result = message.tool_call_result if message.is_from("tool") else None
        if result is not None:
            out.append(bool(result.error))
    return out


def num_tool_calls(rollout: Rollout) -> float:
    """Number of tool calls the model attempted (one tool message each in `ToolEnv`, malformed ones included)."""
    return float(len(_tool_results(rollout)))


def num_tool_errors(rollout: Rollout) -> float:
    """Number of tool calls answered with an error message."""
    return float(sum(_tool_results(rollout)))


def tool_call_validity(rollout: Rollout) -> float:
    """
    Share of the attempted tool calls that ran without error (1 when the model made no call: no
    invalid call was made; pair it with a correctness reward so that not calling is not rewarded).
    """
    results = _tool_results(rollout)
    return 1.0 - sum(results) / len(results) if results else 1.0


def used_tool(rollout: Rollout) -> float:
    """1 when at least one tool call ran without error."""
    return float(any(not error for error in _tool_results(rollout)))


#: Answer rewards `tool_use_rubric` accepts by name (config files and the CLI's `--reward`).
ANSWER_REWARDS: dict[str, Callable[[Rollout], float]] = {
    "exact_match": exact_match,
    "numeric_match": numeric_match,
    "numeric_closeness": numeric_closeness,
    "token_f1": token_f1,
}


def tool_use_rubric(
    answer: str | Callable[[Rollout], float] = "exact_match", tool_error_penalty: float = 0.0
) -> Rubric:
    """
    The rubric of a tool-using task: the final `<answer>` scored against the example's `answer` (weight 1,
    named "correct"), plus tool-call validity, count and errors as metrics (weight 0). With `tool_error_penalty`
    each failed tool call costs that much (weight `-tool_error_penalty` on `num_tool_errors`): errors stop being
    free for GRPO; a correct answer without errors still scores 1 (after a failed call it scores less: no success).

    Usage example:
    ```python
    from haystack_rl.rubrics.tool_rewards import tool_use_rubric

    rubric = tool_use_rubric("numeric_match")
    assert [f.name for f in rubric.functions] == ["correct", "tool_call_validity", "num_tool_calls",
                                                  "num_tool_errors"]
    ```

    :param answer: A reward function `(rollout) -> float`, or the name of one of `ANSWER_REWARDS`.
    :param tool_error_penalty: Reward lost per tool call answered with an error (>= 0; 0 keeps errors a metric).
    """
    if tool_error_penalty < 0:
        raise ValueError(f"tool_error_penalty must be >= 0, got {tool_error_penalty}")
    if isinstance(answer, str):
        if answer not in ANSWER_REWARDS:
            raise ValueError(f"unknown answer reward {answer!r}; use one of {', '.join(ANSWER_REWARDS)}")
        answer = ANSWER_REWARDS[answer]
    return Rubric([
        RewardFunction(answer, 1.0, name="correct"),
        RewardFunction(tool_call_validity, 0.0),
        RewardFunction(num_tool_calls, 0.0),
        RewardFunction(num_tool_errors, -tool_error_penalty if tool_error_penalty else 0.0),
    ])  # fmt: skip
