"""The calculator environment: the safe parser, problems, oracle score, checker, and tiny-model tool rollouts."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from fractions import Fraction
from typing import Any

import pytest
from haystack.dataclasses import ChatMessage, ToolCall
from helpers import assert_tool_results_masked

from haystack_rl import Rollout, RolloutRunner, check_environment, load_environment
from haystack_rl.episode import play_episode
from haystack_rl.generators import FunctionChatGenerator
from haystack_rl_envs.calculator import CalculatorEnv, CalculatorError, calculator, evaluate
from haystack_rl_envs.calculator.env import expression_of


@pytest.mark.parametrize(
    ("expression", "value"),
    [("1 + 2 * 3", 7), ("(1 + 2) * 3", 9), ("7 / 2", Fraction(7, 2)), ("-3 + +2", -1), ("2.5 * 4", 10),
     ("((((1))))", 1), ("10 - 4 - 3", 3), ("12 / 4 / 3", 1)],
)  # fmt: skip
def test_evaluates_arithmetic_exactly(expression: str, value: Fraction) -> None:
    assert evaluate(expression) == value


def test_formats_results() -> None:
    assert calculator("6 * 7") == "42" and calculator("7 / 2") == "3.5" and calculator("1 / 3") == "0.333333"


@pytest.mark.parametrize(
    "expression",
    ["__import__('os').system('echo hi')", "2 ** 10", "x + 1", "abs(-1)", "1 if 1 else 2", "[1, 2]", "'a' * 3",
     "True + 1", "1 // 2", "7 % 2", "(1).real", "1; 2", "lambda: 1", "1 < 2", "", "1 +", "1e400 * 0", "()",
     "1" * 201],
)  # fmt: skip
def test_refuses_anything_but_arithmetic(expression: str) -> None:
    with pytest.raises(CalculatorError):
        evaluate(expression)


def test_division_by_zero_is_a_calculator_error() -> None:
    with pytest.raises(CalculatorError, match="division by zero"):
        evaluate("1 / (2 - 2)")


def test_problems_are_reproducible_with_integer_answers_and_recoverable_expressions() -> None:
    env = CalculatorEnv(num_train_examples=200, num_eval_examples=100)
    assert env.examples("eval") == CalculatorEnv(num_train_examples=200, num_eval_examples=100).examples("eval")
    templates = set()
    for example in env.examples("eval") + env.examples("train"):
        assert int(example["answer"]) >= 0 and str(int(example["answer"])) == example["answer"]
        assert expression_of(example["prompt"]) == example["expression"]
        templates.add(example["template"])
    assert len(templates) == 6
    assert expression_of("What is the meaning of life?") is None


def test_train_templates_limit_and_weight_the_training_kinds_and_leave_the_eval_split_alone() -> None:
    everything = CalculatorEnv(num_train_examples=60, num_eval_examples=30)
    limited = CalculatorEnv(num_train_examples=60, num_eval_examples=30, train_templates=[3, 0])
    assert limited.examples("eval") == everything.examples("eval")
    assert len(limited.examples("train")) == 60
    assert {example["template"] for example in limited.examples("train")} == {0, 3}
    restored = CalculatorEnv.from_dict(limited.to_dict())
    assert restored.examples("train") == limited.examples("train") and restored.train_templates == [0, 3]
    weighted = CalculatorEnv(num_train_examples=400, num_eval_examples=30, train_templates=[0, 0, 0, 2])
    counts = Counter(example["template"] for example in weighted.examples("train"))
    assert set(counts) == {0, 2} and 2.2 < counts[0] / counts[2] < 4.0
    assert CalculatorEnv.from_dict(weighted.to_dict()).examples("train") == weighted.examples("train")
    with pytest.raises(ValueError, match="train_templates"):
        CalculatorEnv(train_templates=[6])
    with pytest.raises(ValueError, match="train_templates"):
        CalculatorEnv(train_templates=[])


def test_oracle_scores_at_least_095_and_the_no_tool_floor_is_low() -> None:
    env = load_environment("calculator", num_eval_examples=50)
    scores = {}
    for name, baseline in env.baselines().items():
        rollouts = RolloutRunner(env, FunctionChatGenerator(baseline, name=name)).run()["rollouts"]
        assert all(r.error is None for r in rollouts)
        scores[name] = sum(r.reward or 0.0 for r in rollouts) / len(rollouts)
    assert scores["oracle"] >= 0.95 and scores["no_tool"] < 0.5
    oracle = RolloutRunner(env, FunctionChatGenerator(env.baselines()["oracle"]), num_examples=1).run()["rollouts"][0]
    assert oracle.metrics == {"tool_call_validity": 1.0, "num_tool_calls": 1.0, "num_tool_errors": 0.0}


def test_format_only_novice_joins_the_problems_numbers_with_every_operator_of_the_tool() -> None:
    env = CalculatorEnv(num_eval_examples=60)
    rollouts = RolloutRunner(env, FunctionChatGenerator(env.baselines()["format_only"])).run()["rollouts"]
    calls = {r.example_id: [c.arguments["expression"] for m in r.messages for c in m.tool_calls] for r in rollouts}
    assert all(len(expressions) == 1 for expressions in calls.values())
    assert all(r.metrics["num_tool_errors"] == 0 for r in rollouts)
    for rollout in rollouts:  # the problem's numbers, in their order: only the operators are left to chance
        assert re.findall(r"\d+", calls[rollout.example_id][0]) == re.findall(r"\d+", rollout.example["prompt"])
    assert set(re.findall(r"[-+*/]", " ".join(e for [e] in calls.values()))) == set("+-*/")


@pytest.mark.parametrize("shaped", ["numeric_closeness", "operator_credit"])
def test_shaped_rewards_give_misses_partial_credit_and_keep_success_exact(shaped: str) -> None:
    rewards = {}
    for answer_reward in ("numeric_match", shaped):
        env = CalculatorEnv(num_eval_examples=60, answer_reward=answer_reward)
        policy = FunctionChatGenerator(env.baselines()["format_only"])
        rewards[answer_reward] = [r.reward for r in RolloutRunner(env, policy).run()["rollouts"]]
    exact, partial_credit = rewards["numeric_match"], rewards[shaped]
    assert [r == 1.0 for r in partial_credit] == [r == 1.0 for r in exact]  # the same rollouts succeed
    partial = [r for r in partial_credit if r is not None and r < 1.0]
    assert all(0.0 <= r <= 0.5 for r in partial) and sum(0.0 < r for r in partial) >= 10
    assert CalculatorEnv.from_dict(env.to_dict()).rubric.functions[0].func.__name__ == shaped
    with pytest.raises(ValueError, match="answer_reward"):
        CalculatorEnv(answer_reward="exact_match")


def test_operator_credit_pays_each_right_operator_only_for_the_problems_own_expression() -> None:
    env = CalculatorEnv(num_eval_examples=30, answer_reward="operator_credit")
    example = next(e for e in env.examples("eval") if e["template"] == 5)  # a * b + c * d: three operators
    a, b, c, d = re.findall(r"\d+", example["expression"])

    def credit(expression: str, answer: str = "-1") -> float:
        call = ChatMessage.from_assistant(tool_calls=[ToolCall(tool_name="calculator",
                                                               arguments={"expression": expression})])  # fmt: skip
        rollout = Rollout(example_id="x", rollout_index=0, seed=0, example=example,
                          messages=[call, ChatMessage.from_assistant(f"<answer>{answer}</answer>")])  # fmt: skip
        return env.rubric.score(rollout).reward or 0.0

    assert credit(example["expression"], example["answer"]) == 1.0
    assert credit(example["expression"]) == 0.5  # the right call, the result not reported
    assert credit(f"{a} * {b} - {c} / {d}") == pytest.approx(0.5 / 3)  # one operator of three right
    assert credit(f"{a} - {b} / {c} - {d}") == 0.0
    assert credit(f"{b} * {a} + {c} * {d}") == 0.0  # another order of the numbers: no credit
    assert credit(f"({a} * {b}) + {c} * {d}") == 0.0  # other parentheses


def test_tool_error_penalty_costs_each_failed_call_and_keeps_a_clean_correct_answer_at_one() -> None:
    oracle = CalculatorEnv().baselines()["oracle"]

    def fumbles_first(messages: list[ChatMessage], rng: Any) -> str | ChatMessage:  # a broken call, then the oracle
        results = [m for m in messages if m.is_from("tool")]
        if not results:
            broken = ToolCall(tool_name="calculator", arguments={"expression": "3 +"})
            return ChatMessage.from_assistant(tool_calls=[broken])
        return oracle(messages[:-2] if len(results) == 1 else messages, rng)  # the call as if the first never was

    def rewards(policy: Any, penalty: float) -> list[float | None]:
        env = CalculatorEnv(num_eval_examples=4, tool_error_penalty=penalty)
        return [r.reward for r in RolloutRunner(env, FunctionChatGenerator(policy)).run()["rollouts"]]

    assert rewards(fumbles_first, 0.0) == [1.0] * 4  # errors are only a metric by default
    assert rewards(fumbles_first, 0.25) == [0.75] * 4
    assert rewards(oracle, 0.25) == [1.0] * 4
    env = CalculatorEnv(tool_error_penalty=0.25)
    assert CalculatorEnv.from_dict(env.to_dict()).rubric.functions[-1].weight == -0.25
    with pytest.raises(ValueError, match="tool_error_penalty"):
        CalculatorEnv(tool_error_penalty=-1.0)


def test_check_environment_and_round_trip() -> None:
    env = CalculatorEnv(num_train_examples=5, num_eval_examples=3, max_turns=4)
    check_environment(env)
    assert CalculatorEnv.from_dict(env.to_dict()).examples("eval") == env.examples("eval")


def test_tiny_model_scripted_tool_rollout_keeps_exact_tokens(make_generator: Any, scripted: Any) -> None:
    env = CalculatorEnv(num_train_examples=1, num_eval_examples=1)
    example = env.examples("eval")[0]
    generator = make_generator(max_new_tokens=64)
    scripted(generator, [
        '<tool_call>{"name": "calculator", "arguments": {"expression": "1 +"}}</tool_call><|im_end|>',
        '<tool_call>{"name": "calculator", "arguments": {"expr": "1"}}</tool_call><|im_end|>',
        '<tool_call>{"name": "calculator", "arguments": {"expression": "' + example["expression"] + '"}}</tool_call>'
        "<|im_end|>",
        f"<answer>{example['answer']}</answer><|im_end|>",
    ])  # fmt: skip
    rollout = asyncio.run(play_episode(env, generator, example, seed=0))
    env.rubric.score(rollout)
    assert rollout.error is None and rollout.stop_reason == "done" and len(rollout.turns) == 4
    assert rollout.reward == 1.0 and rollout.metrics["num_tool_errors"] == 2.0
    assert rollout.info["tool_errors"] == {"malformed": 0, "unknown_tool": 0, "invalid_arguments": 1,
                                           "tool_error": 1, "timeout": 0}  # fmt: skip
    assert_tool_results_masked(generator, rollout)


def test_tiny_model_runs_full_rollouts_without_crashing(make_generator: Any) -> None:
    env = CalculatorEnv(num_train_examples=1, num_eval_examples=1, max_turns=2)
    generator = make_generator(max_new_tokens=64)
    rollouts = RolloutRunner(env, generator, rollouts_per_example=2).run()["rollouts"]
    for rollout in rollouts:
        assert rollout.error is None and rollout.stop_reason in ("done", "max_turns", "length")
        assert rollout.reward is not None
        assert_tool_results_masked(generator, rollout)
