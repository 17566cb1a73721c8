"""Your own tool environment: questions a model answers with a lookup tool, in ~50 lines.

Tools are plain Python functions; they run exactly as a deployed Haystack Agent runs them.
Run: python examples/tool_environment.py
  or haystack-rl eval examples/tool_environment.py:load_environment --model baseline:lookup -n 10
"""

from __future__ import annotations

import random
from typing import Any

from haystack.dataclasses import ChatMessage, ToolCall
from haystack.tools import create_tool_from_function

from haystack_rl import RolloutRunner, ToolEnv, check_environment
from haystack_rl.generators import FunctionChatGenerator
from haystack_rl.rubrics.tool_rewards import tool_use_rubric

POPULATION = {"Aldoria": "12,400", "Brevik": "8,350", "Castamar": "103,000", "Dunmore": "2,745", "Elswick": "56,120"}


def population(town: str) -> str:
    """The population of a town."""
    if town not in POPULATION:
        raise ValueError(f"unknown town {town!r}; towns: {', '.join(POPULATION)}")
    return POPULATION[town]


def lookup_baseline(messages: list[ChatMessage], rng: random.Random) -> str | ChatMessage:
    """Looks the town up, then answers with the tool's result."""
    if messages[-1].tool_call_result is not None:
        return f"<answer>{messages[-1].tool_call_result.result}</answer>"
    town = next(t for t in POPULATION if t in (messages[-1].text or ""))
    return ChatMessage.from_assistant(tool_calls=[ToolCall(tool_name="population", arguments={"town": town})])


class TownsEnv(ToolEnv):
    """How many people live in a (fictional) town: only the tool knows; answers are numbers like 12,400."""

    name = "towns"
    description = "population questions answered with a lookup tool, answer inside <answer> tags (tool use)"

    def __init__(self, num_examples: int = 50, seed: int = 0) -> None:
        rng = random.Random(seed)
        towns = [rng.choice(sorted(POPULATION)) for _ in range(num_examples)]
        rows = [{"prompt": f"How many people live in {town}?", "answer": POPULATION[town]} for town in towns]
        super().__init__(
            tools=[create_tool_from_function(population)],
            dataset=rows,
            max_turns=3,
            system_prompt="Use the population tool, then answer inside <answer></answer> tags.",
            rubric=tool_use_rubric("numeric_match"),
            baselines={"lookup": lookup_baseline},
        )


def load_environment(**kwargs: Any) -> TownsEnv:
    return TownsEnv(**kwargs)


if __name__ == "__main__":
    env = load_environment(num_examples=10)
    check_environment(env)
    rollouts = RolloutRunner(env, FunctionChatGenerator(lookup_baseline)).run()["rollouts"]
    print(
        f"lookup baseline: {sum(r.success for r in rollouts)}/{len(rollouts)} right, "
        f"{sum(r.info['tool_calls'] for r in rollouts)} tool calls"
    )
