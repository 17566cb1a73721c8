"""JudgeReward: an LLM judge as a reward, its failure record, and its serialization inside a Rubric."""

from __future__ import annotations

import random

import pytest
from haystack.core.serialization import allow_deserialization_module
from haystack.dataclasses import ChatMessage

from haystack_rl import Rollout, Rubric
from haystack_rl.generators import FunctionChatGenerator
from haystack_rl.rubrics import JudgeReward


def fair_judge(messages: list[ChatMessage], rng: random.Random) -> str:
    prompt = messages[-1].text or ""
    reference = prompt.split("Reference answer: ")[1].split("\n")[0]
    answer = prompt.split("Answer to grade: ")[1].split("\n")[0]
    return f"Looks {'right' if reference in answer else 'wrong'}. <score>{1 if reference in answer else 0}</score>"


def rollout(answer: str) -> Rollout:
    return Rollout(example_id="0", rollout_index=0, seed=0, example={"answer": "Lake Morrow"},
                   messages=[ChatMessage.from_user("Where does the Quillan flow?"),
                             ChatMessage.from_assistant(answer)])  # fmt: skip


def test_judge_scores_with_the_reference_in_the_prompt() -> None:
    rubric = Rubric().add(JudgeReward(FunctionChatGenerator(fair_judge)), name="judge")
    assert rubric.score(rollout("It flows into Lake Morrow.")).reward == 1.0
    assert rubric.score(rollout("The sea.")).reward == 0.0


@pytest.mark.parametrize(
    ("reply", "says"),
    [("I think it is right.", "no score matching"), ("<score>7</score>", "outside [0, 1]")],
)
def test_an_unparseable_judge_reply_is_recorded_not_zero(reply: str, says: str) -> None:
    rubric = Rubric().add(JudgeReward(FunctionChatGenerator(lambda m, r: reply)), name="judge")
    scored = rubric.score(rollout("Lake Morrow"))
    assert scored.reward is None and says in scored.reward_errors["judge"]


def test_prompt_and_pattern_are_configurable() -> None:
    judge = JudgeReward(FunctionChatGenerator(lambda m, r: "GRADE=0.5"), prompt="Grade: {transcript}",
                        score_pattern=r"GRADE=([\d.]+)")  # fmt: skip
    assert judge(rollout("x")) == 0.5
    assert judge.render(rollout("x")) == "Grade: user: Where does the Quillan flow?\nassistant: x"
    with pytest.raises(ValueError, match="needs a group"):
        JudgeReward(FunctionChatGenerator(fair_judge), score_pattern=r"\d")


def test_judge_serializes_with_the_rubric() -> None:
    allow_deserialization_module(__name__)  # fair_judge lives here
    rubric = Rubric().add(JudgeReward(FunctionChatGenerator(fair_judge), prompt=JudgeReward(None).prompt + " "),
                          name="judge")  # fmt: skip
    data = rubric.to_dict()
    assert data["init_parameters"]["functions"][0]["object"]["init_parameters"]["prompt"].endswith("</score>. ")
    restored = Rubric.from_dict(data)
    judge = restored.functions[0].func
    assert isinstance(judge, JudgeReward) and judge.prompt == rubric.functions[0].func.prompt
    assert restored.score(rollout("Lake Morrow")).reward == 1.0
