"""Train your own agent: plain Python tools -> Haystack Agent -> environment -> SFT + GRPO on tiny -> deploy.

Run: python examples/train_your_agent.py [--sft-steps 80] [--grpo-steps 4] [--output runs/your_agent]
Prints success on 20 held-out items before training, after SFT and after GRPO, then asks the deployed agent
(about 10 minutes on one CPU thread).
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from haystack.components.agents import Agent
from haystack.dataclasses import ChatMessage, ToolCall
from haystack.tools import create_tool_from_function

from haystack_rl import ToolEnv
from haystack_rl.generators import TokenChatGenerator
from haystack_rl.models.tiny import resolve_model
from haystack_rl.training import TrainConfig
from haystack_rl.training.cli import RichProgressCallback, training_progress
from haystack_rl.training.evaluation import evaluate, make_policy
from haystack_rl.training.grpo import run_grpo
from haystack_rl.training.sft import run_sft

# 1. Your tools: plain Python functions with type hints and a docstring. The prices are random (a model cannot
# know them), so only the tool can answer; the 20 items of HELD_OUT are never asked about in training.
_rng = random.Random(0)
PRICES = {item: f"{_rng.randint(100, 9999) / 100:.2f}" for item in range(100, 1000)}
HELD_OUT = sorted(_rng.sample(sorted(PRICES), 20))
TRAINING = [item for item in PRICES if item not in HELD_OUT]


def price_of(item: int) -> str:
    """Look up the price of a catalogue item by its number."""
    price = PRICES.get(int(item))
    if price is None:
        raise ValueError(f"no item number {item} in the catalogue (items are 100-999)")
    return price


# 2. Your agent: a chat generator, the tools and a system prompt (the object you deploy).
generator = TokenChatGenerator(model="tiny", generation_kwargs={"max_new_tokens": 128})
agent = Agent(
    chat_generator=generator,
    tools=[create_tool_from_function(price_of)],
    system_prompt="Use the tool, then answer inside <answer></answer>.",
    max_agent_steps=3,
)


# 3. Tasks with answers; an expert's script (optional) gives the SFT warm start its demonstrations.
def tasks(items: list[int]) -> list[dict[str, str]]:
    """One question per item, with its answer."""
    return [{"prompt": f"What does item {item} cost?", "answer": PRICES[item]} for item in items]


def expert(messages: list[ChatMessage], rng: random.Random) -> str | ChatMessage:
    """Calls the tool with the item of the question, then answers with the tool's result."""
    if messages[-1].tool_call_result is not None:
        return f"<answer>{messages[-1].tool_call_result.result}</answer>"
    item = int("".join(ch for ch in messages[-1].text or "" if ch.isdigit()))
    return ChatMessage.from_assistant(tool_calls=[ToolCall(tool_name="price_of", arguments={"item": item})])


def load_environment() -> ToolEnv:
    """The environment comes from the agent itself: its tools, system prompt and step limit."""
    # Training asks about 880 items, evaluation about the 20 held out: the model has to copy the item number from
    # the question into the call and the price from the result into its answer, not learn prices by heart.
    return ToolEnv.from_agent(agent, tasks(TRAINING), eval_dataset=tasks(HELD_OUT), baselines={"oracle": expert})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sft-steps", type=int, default=80)
    parser.add_argument("--grpo-steps", type=int, default=4)
    parser.add_argument("--output", default="runs/your_agent")
    args = parser.parse_args()
    out = Path(args.output)

    env = load_environment()  # 4. the environment of the agent
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
    with training_progress() as progress:  # a progress bar per training stage
        bars = [RichProgressCallback(progress)]
        sft_dir, _ = run_sft(config, env, base, out / "sft", callbacks=bars)  # warm start on the expert's transcripts
        print(f"after SFT:       success {success(sft_dir):.2f}")  # printed above the bars
        final, _ = run_grpo(config, env, sft_dir, out / "grpo", out / "final", callbacks=bars)  # the same tool loop
    print(f"after GRPO:      success {success(final):.2f}")

    # 5. Deploy: the same agent, only its generator's model path changed.
    generator.model = final
    generator.generation_kwargs["temperature"] = 0.0
    agent.warm_up()
    reply = agent.run(messages=[ChatMessage.from_user(f"What does item {HELD_OUT[0]} cost?")])
    for message in reply["messages"][1:]:
        calls = ", ".join(f"{c.tool_name}({c.arguments})" for c in message.tool_calls)
        result = message.tool_call_result.result if message.tool_call_result else ""
        print(f"{message.role.value:>9}: {message.text or ''}{calls}{result}")


if __name__ == "__main__":
    main()
