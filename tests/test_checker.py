import random
import time
from typing import Any

import pytest
from haystack import component, default_from_dict, default_to_dict
from haystack.dataclasses import ChatMessage

from haystack_rl import (
    EnvironmentCheckError,
    EpisodeState,
    MultiTurnEnv,
    Rubric,
    SingleTurnEnv,
    available_environments,
    check_environment,
    load_environment,
)

SMALL = {"reverse_text": {"num_train_examples": 4, "num_eval_examples": 2},
         "tic_tac_toe": {"num_train_examples": 4, "num_eval_examples": 4}}  # fmt: skip


@pytest.mark.parametrize("name", sorted(available_environments()))
def test_every_shipped_environment_passes(name):
    env = load_environment(name, **SMALL.get(name, {}))
    check_environment(env, num_examples=4)
    for baseline in env.baselines().values():
        check_environment(env, policy=baseline, seeds=(0, 1, 2), num_examples=4)


def test_docstring_example():
    check_environment(load_environment("reverse_text", num_eval_examples=2))


# --- deliberately broken environments -------------------------------------------------------------------
class Guess(MultiTurnEnv):
    """Guess a number; subclasses break the contract in one way each."""

    name = "guess"

    def __init__(self, max_turns: int = 3) -> None:
        super().__init__(
            dataset=[{"prompt": "Guess a number 1-1000."}, {"prompt": "Guess again."}], max_turns=max_turns
        )

    def setup_state(self, state: EpisodeState) -> None:
        state.info["secret"] = state.rng.randint(1, 1000)

    def env_response(self, state: EpisodeState, reply: ChatMessage) -> tuple[list[ChatMessage], bool]:
        right = (reply.text or "").strip() == str(state.info["secret"])
        return [ChatMessage.from_user("right" if right else "wrong")], right

    def baselines(self) -> dict[str, Any]:
        return {"one": lambda messages, rng: "1"}

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, max_turns=self.max_turns)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Guess":
        return default_from_dict(cls, data)


class GlobalRandomGuess(Guess):
    def setup_state(self, state: EpisodeState) -> None:
        state.info["secret"] = random.randint(1, 10**9)  # not seeded: a different game every time


class UnserializableGuess(Guess):
    def setup_state(self, state: EpisodeState) -> None:
        super().setup_state(state)
        state.info["tried"] = {1, 2}


class ForgetfulGuess(Guess):
    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self)  # loses max_turns


class BadStep(Guess):
    def step(self, state: EpisodeState, reply: ChatMessage):  # type: ignore[override]
        super().step(state, reply)
        return "wrong", 1


class Endless(Guess):
    def env_response(self, state: EpisodeState, reply: ChatMessage) -> tuple[list[ChatMessage], bool]:
        state.turn = 0  # never reaches max_turns
        return [ChatMessage.from_user("again")], False


class BrokenRubric(Guess):
    def __init__(self, max_turns: int = 3) -> None:
        super().__init__(max_turns)
        self.rubric = Rubric.from_functions([lambda rollout: rollout.info["missing"]])


class MissingBreakdown(Guess):
    summary_breakdowns = ("level",)


def test_guess_passes():
    check_environment(Guess())


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            GlobalRandomGuess(),
            r"guess: example '0', seed 0: two episodes with the same example, seed and policy "
            r"differ .*derive all randomness from the seed",
        ),
        (UnserializableGuess(), r"state.info after reset\(\) is not JSON-serializable at \['tried'\] \(a set\)"),
        (
            ForgetfulGuess(max_turns=1),
            r"rebuilt by from_dict\(to_dict\(\)\) plays a different episode.*"
            r"a to_dict of your own must keep every argument",
        ),
        (BadStep(), r"step\(\) returned .*; return \(new_messages, done\) with done a bool"),
        (Endless(), r"did not end within 200 replies; end it \(done=True\) or set max_turns"),
        (BrokenRubric(), r"reward functions raised .*KeyError"),
        (MissingBreakdown(), r"summary_breakdowns names \['level'\]"),
    ],
    ids=["nondeterministic", "unserializable", "lossy-to_dict", "bad-step", "endless", "rubric", "breakdowns"],
)
def test_broken_environments_fail_clearly(env, message):
    with pytest.raises(EnvironmentCheckError, match=message):
        check_environment(env)


def test_not_an_environment():
    with pytest.raises(EnvironmentCheckError, match="is not an Environment"):
        check_environment(object())  # type: ignore[arg-type]


def test_time_based_env_fails():
    class Clock(SingleTurnEnv):
        name = "clock"

        def setup_state(self, state: EpisodeState) -> None:
            state.info["started"] = time.perf_counter_ns()

    with pytest.raises(EnvironmentCheckError, match=r"clock: .* differ in state.info \['started'\]"):
        check_environment(Clock(dataset=[{"prompt": "hi"}]))


# --- token data: the prefix property on a sample rollout -------------------------------------------------
def render(messages: list[ChatMessage], strip_history: bool) -> list[int]:
    """A toy chat template over bytes; with strip_history it drops earlier replies (like think stripping)."""
    text = "".join(
        f"<{m.role.value}>" + ("" if strip_history and m.is_from("assistant") else (m.text or "")) + "\n"
        for m in messages
    )
    return list((text + "<assistant>").encode())


@component
class ByteGenerator:
    """Plays the first baseline of tic_tac_toe and reports byte ids, like a token-returning generator."""

    def __init__(self, strip_history: bool = False) -> None:
        from haystack_rl_envs.tic_tac_toe import minimax_baseline

        self.policy = minimax_baseline
        self.strip_history = strip_history

    @component.output_types(replies=list[ChatMessage])
    def run(self, messages: list[ChatMessage], generation_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
        text = self.policy(messages, random.Random((generation_kwargs or {}).get("seed")))
        meta = {"prompt_ids": render(messages, self.strip_history), "completion_ids": list((text + "\n").encode()),
                "logprobs": [-0.5] * (len(text) + 1)}  # fmt: skip
        return {"replies": [ChatMessage.from_assistant(text, meta=meta)]}


def test_token_data_with_a_prefix_preserving_template_passes():
    check_environment(load_environment("tic_tac_toe", num_eval_examples=2), policy=ByteGenerator())


def test_token_data_with_a_history_rewriting_template_fails():
    with pytest.raises(EnvironmentCheckError, match=r"turn 1's prompt does not start with the previous turn's prompt"):
        check_environment(
            load_environment("tic_tac_toe", num_eval_examples=2), policy=ByteGenerator(strip_history=True)
        )
