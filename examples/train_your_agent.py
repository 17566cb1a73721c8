"""Train your own agent: plain Python tools -> Haystack Agent -> environment -> SFT + GRPO on tiny -> deploy.

Run: python examples/train_your_agent.py [--sft-steps 150] [--grpo-steps 4] [--output runs/your_agent]
Takes about 15 minutes on one CPU thread; prints success (20 held-out countries) before and after training, then
asks the deployed agent.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from haystack.components.agents import Agent
from haystack.dataclasses import ChatMessage, ToolCall
from haystack.tools import create_tool_from_function

from haystack_rl import ToolEnv
from haystack_rl.generators import TransformersChatGenerator
from haystack_rl.models.tiny import resolve_model
from haystack_rl.training import TrainConfig
from haystack_rl.training.evaluation import evaluate, make_policy
from haystack_rl.training.grpo import run_grpo
from haystack_rl.training.sft import run_sft


# 1. Your tools: plain Python functions with type hints and a docstring. The countries are invented (a model
# cannot know their capitals); the 20 named ones are held out of training, to evaluate on.
def invented_name(rng: random.Random) -> str:
    """A pronounceable made-up name such as "Dakomer", from random letters (so no two look alike)."""
    consonants, vowels = "bcdfghklmnprstvwz", "aeiou"
    syllables = [rng.choice(consonants) + rng.choice(vowels) + rng.choice(consonants) * rng.randint(0, 1)
                 for _ in range(rng.randint(2, 3))]  # fmt: skip
    return "".join(syllables).capitalize()


HELD_OUT = {
    "Arvenia": "Tolm", "Brask": "Oduna", "Cellory": "Vance", "Dunmark": "Pell", "Elsira": "Quorn",
    "Fenwald": "Ister", "Gorrin": "Maddox", "Halvania": "Sorrel", "Istra": "Kembo", "Jorvik": "Lusk",
    "Kaltor": "Brin", "Lenmora": "Ashby", "Morvane": "Tiller", "Norsk": "Galen", "Ostrava": "Finch",
    "Pellor": "Wexley", "Quenda": "Ravel", "Rosmark": "Dunbar", "Selvia": "Harrow", "Tarnis": "Coble",
}  # fmt: skip
_rng = random.Random(0)
_invented = ((invented_name(_rng), invented_name(_rng)) for _ in range(300))
TRAINING = {country: city for country, city in _invented if country not in HELD_OUT}
CAPITALS = TRAINING | HELD_OUT


def capital_of(country: str) -> str:
    """Look up the capital city of a country."""
    return CAPITALS.get(country.strip(), f"unknown country {country!r}")


# 2. Your agent: a chat generator, the tools and a system prompt (the object you deploy).
generator = TransformersChatGenerator(model="tiny", max_new_tokens=128)
agent = Agent(
    chat_generator=generator,
    tools=[create_tool_from_function(capital_of)],
    system_prompt="Use the tool, then answer inside <answer></answer>.",
    max_agent_steps=3,
)


# 3. Tasks with answers; an expert's script (optional) gives the SFT warm start its demonstrations.
def tasks(capitals: dict[str, str]) -> list[dict[str, str]]:
    """One question per country, with its answer."""
    return [{"prompt": f"What is the capital of {country}?", "answer": city} for country, city in capitals.items()]


def expert(messages: list[ChatMessage], rng: random.Random) -> str | ChatMessage:
    """Calls the tool with the country of the question, then answers with the tool's result."""
    if messages[-1].tool_call_result is not None:
        return f"<answer>{messages[-1].tool_call_result.result}</answer>"
    country = (messages[-1].text or "").removeprefix("What is the capital of ").rstrip("?")
    return ChatMessage.from_assistant(tool_calls=[ToolCall(tool_name="capital_of", arguments={"country": country})])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sft-steps", type=int, default=150)
    parser.add_argument("--grpo-steps", type=int, default=4)
    parser.add_argument("--output", default="runs/your_agent")
    args = parser.parse_args()
    out = Path(args.output)

    # 4. The environment comes from the agent itself: its tools, system prompt and step limit.
    # Training asks about a few hundred countries (with a handful, a model learns their names by heart instead of
    # copying the country from the question into the call); evaluation about the 20 held out.
    env = ToolEnv.from_agent(agent, tasks(TRAINING), eval_dataset=tasks(HELD_OUT), baselines={"oracle": expert})
    config = TrainConfig.from_dict({
        "output_dir": str(out),
        "sft": {"steps": args.sft_steps, "batch": 16, "lr": 3e-3, "max_length": 1024},
        "grpo": {"steps": args.grpo_steps, "batch": 8, "num_generations": 4, "max_new_tokens": 128, "lr": 1e-5},
    })  # fmt: skip

    def success(model_dir: str) -> float:
        summary = evaluate(env, make_policy(model_dir, 128, temperature=0.0), seed=config.seed)
        return summary["success"]

    base = str(resolve_model("tiny"))
    print(f"before training: success {success(base):.2f}")
    sft_dir, _ = run_sft(config, env, base, out / "sft")  # warm start on the expert's transcripts
    print(f"after SFT:       success {success(sft_dir):.2f}")
    final, _ = run_grpo(config, env, sft_dir, out / "grpo", out / "final")  # GRPO through the same tool loop
    print(f"after GRPO:      success {success(final):.2f}")

    # 5. Deploy: the same agent, only its generator's model path changed.
    generator.model = final
    generator.temperature = 0.0
    agent.warm_up()
    reply = agent.run(messages=[ChatMessage.from_user("What is the capital of Selvia?")])
    for message in reply["messages"][1:]:
        calls = ", ".join(f"{c.tool_name}({c.arguments})" for c in message.tool_calls)
        result = message.tool_call_result.result if message.tool_call_result else ""
        print(f"{message.role.value:>9}: {message.text or ''}{calls}{result}")


if __name__ == "__main__":
    main()
