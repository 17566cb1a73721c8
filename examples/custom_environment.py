"""Write an environment in a few lines, score it with a rubric, and evaluate a policy on it.

Run: python examples/custom_environment.py
"""

from haystack_rl import RolloutRunner, Rubric, SingleTurnEnv, TagParser
from haystack_rl.generators import FunctionChatGenerator

parser = TagParser("answer")


def correct(rollout):
    """1 when the tagged answer equals the expected one."""
    return float(parser.parse(rollout.completion) == rollout.example["answer"])


def well_formed(rollout):
    """Strict format: exactly one <answer> block."""
    return parser.format_reward(rollout)


dataset = [{"prompt": f"What is {a} + {b}?", "answer": str(a + b)} for a in range(5) for b in range(5)]
env = SingleTurnEnv(
    dataset=dataset,
    system_prompt="Answer inside <answer></answer> tags.",
    rubric=Rubric.from_functions([correct, well_formed], weights=[1.0, 0.2]),
)


def sloppy_adder(messages, rng):
    """A scripted policy: right most of the time, forgets the tags sometimes."""
    a, b = (int(word.rstrip("?")) for word in messages[-1].text.split() if word.rstrip("?").isdigit())
    answer = a + b + (1 if rng.random() < 0.2 else 0)
    return f"<answer>{answer}</answer>" if rng.random() < 0.9 else str(answer)


if __name__ == "__main__":
    rollouts = RolloutRunner(env, FunctionChatGenerator(sloppy_adder), rollouts_per_example=4).run()["rollouts"]
    mean = sum(r.reward or 0.0 for r in rollouts) / len(rollouts)
    print(f"{len(rollouts)} rollouts, mean reward {mean:.3f}")
    print("best:", max(rollouts, key=lambda r: r.reward or 0.0).completion)
