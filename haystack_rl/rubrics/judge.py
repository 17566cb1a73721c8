"""JudgeReward: an LLM-as-judge reward that asks any Haystack chat generator to grade a rollout's answer."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any

from haystack import default_from_dict, default_to_dict
from haystack.core.serialization import component_from_dict, component_to_dict, import_class_by_name
from haystack.dataclasses import ChatMessage

if TYPE_CHECKING:
    from haystack_rl.rollout import Rollout

DEFAULT_PROMPT = (
    "You grade answers to questions.\n"
    "Question: {question}\n"
    "Reference answer: {reference}\n"
    "Answer to grade: {answer}\n"
    "Is the answer correct and consistent with the reference? Reply with a score between 0 and 1 "
    "inside <score></score> tags, e.g. <score>1</score>."
)
DEFAULT_SCORE_PATTERN = r"<score>\s*([-+]?\d*\.?\d+)\s*</score>"


class JudgeReward:
    """
    A reward function (`judge(rollout) -> float`) that asks a judge model to grade the rollout.

    The prompt is a `str.format` template with the fields `question` (the first user message),
    `reference` (the example's `answer`), `answer` (the final reply's text) and `transcript` (every
    message, one per line). The score is the first match of `score_pattern` (a regex with one group
    holding a number) in the judge's reply, and must lie in [0, 1]. A reply with no parseable score,
    or a failing judge, raises a `ValueError` naming the reply, so `Rubric` records it in
    `rollout.reward_errors` instead of silently scoring 0. Add it with `Rubric.add(judge, name="judge")`;
    it serializes with the rubric (prompt, pattern and generator in the rubric's config).

    Usage example:
    ```python
    from haystack.dataclasses import ChatMessage
    from haystack_rl import Rollout, Rubric
    from haystack_rl.generators import FunctionChatGenerator
    from haystack_rl.rubrics.judge import JudgeReward

    judge = JudgeReward(FunctionChatGenerator(lambda messages, rng: "<score>1</score>"))
    rubric = Rubric().add(judge, name="judge")
    rollout = Rollout(example_id="0", rollout_index=0, seed=0, example={"answer": "4"},
                      messages=[ChatMessage.from_user("2+2?"), ChatMessage.from_assistant("4")])
    assert rubric.score(rollout).reward == 1.0
    ```

    :param generator: Any Haystack chat generator (`run(messages) -> {"replies": [...]}`).
    :param prompt: The judge prompt template (see above).
    :param score_pattern: Regex whose first group is the score.
    :param generation_kwargs: Passed to the judge's `run` (e.g. `{"temperature": 0}`).
    """

    def __init__(
        self,
        generator: Any,
        prompt: str = DEFAULT_PROMPT,
        score_pattern: str = DEFAULT_SCORE_PATTERN,
        generation_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.generator = generator
        self.prompt = prompt
        self.score_pattern = score_pattern
        self.generation_kwargs = generation_kwargs
        self._pattern = re.compile(score_pattern)
        if self._pattern.groups < 1:
            raise ValueError(f"JudgeReward: score_pattern {score_pattern!r} needs a group that captures the score")
        self.__name__ = "judge"

    def render(self, rollout: Rollout) -> str:
        """The judge prompt for `rollout`."""
        question = next((m.text or "" for m in rollout.messages if m.is_from("user")), "")
        transcript = "\n".join(f"{m.role.value}: {m.text or ''}" for m in rollout.messages)
        return self.prompt.format(question=question, reference=rollout.example.get("answer", ""),
                                  answer=rollout.completion, transcript=transcript)  # fmt: skip

    def __call__(self, rollout: Rollout) -> float:
        """Ask the judge and parse its score; raises `ValueError` when the reply has no valid score."""
        from haystack_rl.asyncio_utils import run_sync

        return run_sync(self.score_async(rollout))

    async def score_async(self, rollout: Rollout) -> float:
        """
        Async twin of `__call__`: the judge's `run_async` when it has one, else its `run` in a thread, so a
        rubric scoring many rollouts waits on the judge for all of them at once.
        """
        if hasattr(self.generator, "warm_up"):
            await asyncio.to_thread(self.generator.warm_up)
        kwargs: dict[str, Any] = {"messages": [ChatMessage.from_user(self.render(rollout))]}
        if self.generation_kwargs is not None:
            kwargs["generation_kwargs"] = self.generation_kwargs
        if hasattr(self.generator, "run_async"):
            result = await self.generator.run_async(**kwargs)
        else:
            result = await asyncio.to_thread(self.generator.run, **kwargs)
        replies = result.get("replies") or []
        return self.parse_score((replies[0].text or "") if replies else "")

    def parse_score(self, text: str) -> float:
        """The score in a judge's reply; raises `ValueError` when there is none or it is outside [0, 1]."""
        match = self._pattern.search(text)
        if match is None:
            raise ValueError(
                f"JudgeReward: no score matching {self.score_pattern!r} in the judge's reply {text[:200]!r}; "
                "make the prompt ask for that format or change score_pattern"
            )
        score = float(match.group(1))
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"JudgeReward: the judge's score {score} is outside [0, 1] (reply {text[:200]!r})")
        return score

    def to_dict(self) -> dict[str, Any]:
        """Serialize (the generator as a Haystack component)."""
        return default_to_dict(self, generator=component_to_dict(self.generator, "generator"), prompt=self.prompt,
                               score_pattern=self.score_pattern, generation_kwargs=self.generation_kwargs)  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JudgeReward:
        """Deserialize (the generator's type goes through Haystack's deserialization allowlist)."""
        params = dict(data.get("init_parameters", {}))
        generator = params["generator"]
        params["generator"] = component_from_dict(import_class_by_name(generator["type"]), generator, "generator")
        return default_from_dict(cls, {**data, "init_parameters": params})
