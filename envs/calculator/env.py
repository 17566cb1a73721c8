"""The calculator environment: word problems, a calculator tool, an `<answer>` reward and `load_environment`."""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Any

from haystack.dataclasses import ChatMessage, ToolCall
from haystack.tools import create_tool_from_function

from haystack_rl import ToolEnv
from haystack_rl.environments.tool_env import demonstration_policy
from haystack_rl.rollout import Rollout
from haystack_rl.rubrics.tool_rewards import numeric_closeness, numeric_match, tool_use_rubric
from haystack_rl_envs.calculator.arithmetic import calculator, evaluate, format_number

SYSTEM_PROMPT = (
    "Solve the arithmetic word problem. Use the calculator tool for the arithmetic, then give the final "
    "number inside <answer> </answer> tags."
)
TOOL_DESCRIPTION = 'Evaluate an arithmetic expression with numbers, + - * / and parentheses, e.g. "(12 - 4) * 3".'
NAMES = ("Mia", "Omar", "Lena", "Ravi", "Sofia", "Jonas", "Aiko", "Tomas")
ITEMS = ("apples", "pencils", "stickers", "marbles", "cookies", "stamps")

#: (problem text, expression) templates; numbers are {a} {b} {c} {d}, other fields are words.
TEMPLATES: tuple[tuple[str, str], ...] = (
    ("{name} has {a} boxes with {b} {item} in each box and gives away {c} {item}. How many {item} are left?",
     "{a} * {b} - {c}"),
    ("{name} buys {a} bags of {item} at {b} dollars each and pays with {c} dollars. How many dollars of change "
     "does {name} get?", "{c} - {a} * {b}"),
    ("{a} {item} are shared equally among {b} friends. How many {item} does each friend get?", "{a} / {b}"),
    ("{name} reads {a} pages a day for {b} days and then {c} more pages. How many pages does {name} read?",
     "{a} * {b} + {c}"),
    ("A shop has {a} {item}, sells {b} in the morning and {c} in the afternoon, and packs the rest equally into "
     "{d} crates. How many {item} go in each crate?", "({a} - {b} - {c}) / {d}"),
    ("{name} saves {a} dollars a week for {b} weeks and another {c} dollars a week for {d} weeks. How many dollars "
     "does {name} save?", "{a} * {b} + {c} * {d}"),
)  # fmt: skip


def make_problem(rng: random.Random) -> dict[str, Any]:
    """One word problem with a non-negative integer answer: `prompt`, `expression`, `answer`."""
    index = rng.randrange(len(TEMPLATES))
    text, expression = TEMPLATES[index]
    words = {"name": rng.choice(NAMES), "item": rng.choice(ITEMS)}
    n = {key: rng.randint(2, 30) for key in "abcd"}
    if index == 0:
        n["c"] = rng.randint(1, n["a"] * n["b"])
    elif index == 1:
        n["c"] = n["a"] * n["b"] + rng.randint(0, 50)
    elif index == 2:
        n["a"] = n["b"] * rng.randint(2, 20)
    elif index == 4:
        rest = n["d"] * rng.randint(1, 12)
        n["a"] = rest + n["b"] + n["c"]
    filled = expression.format(**n)
    return {"prompt": text.format(**words, **n), "expression": filled, "answer": format_number(evaluate(filled)),
            "template": index}  # fmt: skip


def _pattern(text: str) -> re.Pattern[str]:
    regex = re.escape(text)
    for key in "abcd":
        regex = regex.replace(re.escape("{" + key + "}"), rf"(?P<{key}>\d+)", 1).replace(
            re.escape("{" + key + "}"), rf"(?P={key})"
        )
    for key in ("name", "item"):
        regex = regex.replace(re.escape("{" + key + "}"), rf"(?P<{key}>\w+)", 1).replace(
            re.escape("{" + key + "}"), rf"(?P={key})"
        )
    return re.compile(regex)


_PATTERNS = [(_pattern(text), expression) for text, expression in TEMPLATES]


def expression_of(problem: str) -> str | None:
    """The expression behind a problem text written from `TEMPLATES` (None for any other text)."""
    for pattern, expression in _PATTERNS:
        match = pattern.fullmatch(problem.strip())
        if match:
            return expression.format(**{k: v for k, v in match.groupdict().items() if k in "abcd"})
    return None


def oracle_baseline(messages: list[ChatMessage], rng: random.Random) -> str | ChatMessage:
    """Calls the calculator with the problem's expression, then answers with the tool's result."""
    last = messages[-1]
    if last.is_from("tool") and last.tool_call_result is not None:
        return f"<answer>{last.tool_call_result.result}</answer>"
    problem = next((m.text or "" for m in reversed(messages) if m.is_from("user")), "")
    expression = expression_of(problem)
    if expression is None:
        return "<answer>0</answer>"
    return ChatMessage.from_assistant(tool_calls=[ToolCall(tool_name="calculator", arguments={"expression": expression},
                                                           id="call_0")])  # fmt: skip


def format_only_baseline(messages: list[ChatMessage], rng: random.Random) -> str | ChatMessage:
    """
    A novice with the format but not the skill: calls the calculator in the right syntax on the problem's
    numbers, in their order, joined by operators drawn at random from the tool's `+ - * /`, then answers with
    the result or, half the time, with a number of the problem (not using the result).
    """
    problem = next((m.text or "" for m in reversed(messages) if m.is_from("user")), "")
    numbers = re.findall(r"\d+", problem) or ["0"]
    last = messages[-1]
    if last.is_from("tool") and last.tool_call_result is not None:
        used = rng.random() < 0.5 and not last.tool_call_result.error
        return f"<answer>{last.tool_call_result.result if used else rng.choice(numbers)}</answer>"
    expression = numbers[0] + "".join(f" {rng.choice('+-*/')} {n}" for n in numbers[1:])
    return ChatMessage.from_assistant(tool_calls=[ToolCall(tool_name="calculator", arguments={"expression": expression},
                                                           id="call_0")])  # fmt: skip


_TOKEN = re.compile(r"\d+(?:\.\d+)?|[-+*/()]")


def operator_credit(rollout: Rollout) -> float:
    """
    Partial credit for the expression of the first calculator call, a denser signal than `numeric_match` for a
    model that copies the numbers but not yet the operators: 1 for the exact answer; otherwise, when the call
    writes the example's `expression` token for token except for operators, `0.5 * ` the share of its operators
    that match (so each right operator earns credit on its own; never 1, so success still means the exact
    answer); 0 for anything else (other numbers, another order, other parentheses, no call).

    Usage example:
    ```python
    from haystack.dataclasses import ChatMessage, ToolCall
    from haystack_rl import Rollout
    from haystack_rl_envs.calculator.env import operator_credit

    def called(expression: str, answer: str) -> Rollout:
        call = ToolCall(tool_name="calculator", arguments={"expression": expression})
        return Rollout(example_id="0", rollout_index=0, seed=0, example={"answer": "11", "expression": "3 * 4 - 1"},
                       messages=[ChatMessage.from_assistant(tool_calls=[call]),
                                 ChatMessage.from_assistant(f"<answer>{answer}</answer>")])

    assert operator_credit(called("3 * 4 - 1", "11")) == 1.0
    assert operator_credit(called("3 * 4 + 1", "13")) == 0.25 and operator_credit(called("3 / 4 + 1", "2")) == 0.0
    ```
    """
    if numeric_match(rollout):
        return 1.0
    call = next((m.tool_call for m in rollout.messages if m.tool_call and m.tool_call.tool_name == "calculator"), None)
    gold = _TOKEN.findall(str(rollout.example.get("expression", "")))
    written = _TOKEN.findall(str(call.arguments.get("expression", ""))) if call else []
    operators = [i for i, token in enumerate(gold) if token in "+-*/"]
    others = [i for i in range(len(gold)) if i not in operators]
    same_shape = len(written) == len(gold) and all(written[i] == gold[i] for i in others)
    if not operators or not same_shape or any(written[i] not in "+-*/" for i in operators):
        return 0.0
    return 0.5 * sum(written[i] == gold[i] for i in operators) / len(operators)


def no_tool_baseline(messages: list[ChatMessage], rng: random.Random) -> str:
    """Guesses a number without calling the tool (a floor to compare with)."""
    return f"<answer>{rng.randint(0, 100)}</answer>"


class CalculatorEnv(ToolEnv):
    """
    Arithmetic word problems with a `calculator` tool (a safe parser of numbers, + - * / and
    parentheses); reward = the final `<answer>` equals the exact result (`answer_reward="numeric_match"`), or
    that with partial credit (denser signals for GRPO from a weak start; success still means the exact result):
    for near misses (`"numeric_closeness"`) or for each operator of the call that matches the problem's
    expression (`"operator_credit"`, see `operator_credit`). Tool-call counts, errors and validity are reported
    as metrics; `tool_error_penalty` makes each failed call cost that much reward (then success needs an
    error-free rollout). `train_templates` (indices into `TEMPLATES`) limits the training problems to those kinds,
    e.g. to leave out a kind the model already solves, a kind named n times drawn n times as often as one named
    once (`[0, 0, 2]`: two `a*b-c` problems for each `a/b`); the eval split keeps every kind.

    Usage example:
    ```python
    from haystack_rl_envs.calculator import CalculatorEnv

    env = CalculatorEnv(num_eval_examples=2)
    messages, state = env.reset(env.examples("eval")[0], seed=0)
    assert env.tools[0].invoke(expression="6 * 7") == "42"
    ```
    """

    name = "calculator"
    description = "arithmetic word problems with a calculator tool, answer inside <answer> tags"

    def __init__(
        self,
        num_train_examples: int = 1000,
        num_eval_examples: int = 100,
        max_turns: int = 6,
        tool_timeout_s: float = 5.0,
        data_seed: int = 0,
        answer_reward: str = "numeric_match",
        tool_error_penalty: float = 0.0,
        train_templates: list[int] | None = None,
    ) -> None:
        self.num_train_examples, self.num_eval_examples = num_train_examples, num_eval_examples
        self.data_seed = data_seed
        rng = random.Random(data_seed)
        evaluation = [{"id": f"eval-{i}", **make_problem(rng)} for i in range(num_eval_examples)]
        kinds = sorted(range(len(TEMPLATES)) if train_templates is None else train_templates)
        if not kinds or not set(kinds) <= set(range(len(TEMPLATES))):
            raise ValueError(f"train_templates must name templates 0-{len(TEMPLATES) - 1}, got {train_templates}")
        self.train_templates = None if train_templates is None else kinds
        counts = Counter(kinds)
        share = {kind: count / max(counts.values()) for kind, count in counts.items()}
        accept = random.Random(data_seed + 1)  # own stream: the problems drawn stay the unweighted ones

        def keep(problem: dict[str, Any]) -> bool:
            chance = share.get(problem["template"], 0.0)
            return chance == 1.0 or (chance > 0.0 and accept.random() < chance)

        problems = filter(keep, iter(lambda: make_problem(rng), None))
        train = [{"id": f"train-{i}", **next(problems)} for i in range(num_train_examples)]
        rewards = {f.__name__: f for f in (numeric_match, numeric_closeness, operator_credit)}
        if answer_reward not in rewards:
            raise ValueError(f"answer_reward must be one of {', '.join(rewards)}, not {answer_reward!r}")
        self.answer_reward, self.tool_error_penalty = answer_reward, tool_error_penalty
        rubric = tool_use_rubric(rewards[answer_reward], tool_error_penalty)
        tool = create_tool_from_function(calculator, description=TOOL_DESCRIPTION)
        super().__init__(tools=[tool], dataset=train, eval_dataset=evaluation, system_prompt=SYSTEM_PROMPT,
                         rubric=rubric, max_turns=max_turns, tool_timeout_s=tool_timeout_s)  # fmt: skip

    def baselines(self) -> dict[str, Any]:
        """`oracle` (calls the calculator with the right expression), `format_only` and `no_tool` (guesses)."""
        return {"oracle": oracle_baseline, "format_only": format_only_baseline, "no_tool": no_tool_baseline}

    def demonstrate(self, example: dict[str, Any], seed: int, quality: str = "expert") -> list[ChatMessage]:
        """
        A transcript for SFT warm start: `expert` (the oracle's call and answer), `noisy` (a novice reply
        30% of the time) or `format-only` (the `format_only` baseline: right syntax, no skill).
        """
        return self.play_scripted(demonstration_policy(quality, oracle_baseline, format_only_baseline), example, seed)


def load_environment(**kwargs: Any) -> CalculatorEnv:
    """Build the environment; see `CalculatorEnv` for the arguments."""
    return CalculatorEnv(**kwargs)
