"""Your own multi-turn environment: a code-breaking game the model plays against hints, in ~60 lines.

No serialization code, no allowlist call: the environment rebuilds from its constructor arguments.
Run: python examples/multi_turn_environment.py
  or haystack-rl eval examples/multi_turn_environment.py:load_environment --model baseline:solver -n 20
"""

from __future__ import annotations

import itertools
import random
import re
from typing import Any

from haystack.dataclasses import ChatMessage

from haystack_rl import EpisodeState, MultiTurnEnv, Rollout, RolloutRunner, Rubric, TagParser, check_environment
from haystack_rl.generators import FunctionChatGenerator

PARSER = TagParser("code")
SYSTEM_PROMPT = (
    "Find the secret code: 3 different digits from 1 to 6. After each guess you learn how many digits "
    "are right and in the right place. Answer with your guess inside <code></code>, e.g. <code>123</code>."
)
CODES = ["".join(p) for p in itertools.permutations("123456", 3)]


def hits(guess: str, secret: str) -> int:
    """Digits of `guess` right and in the right place."""
    return sum(a == b for a, b in zip(guess, secret))


def cracked(rollout: Rollout) -> float:
    """1 when the code was found."""
    return float(rollout.info["cracked"])


def solver_baseline(messages: list[ChatMessage], rng: random.Random) -> str:
    """Guesses a code that agrees with every hint so far."""
    hints = [(PARSER.parse(m.text), re.search(r"(\d) right", n.text or "")) for m, n in zip(messages, messages[1:])]
    history = [(guess, int(hint.group(1))) for guess, hint in hints if hint]
    candidates = [c for c in CODES if all(hits(g, c) == h for g, h in history if g)]
    return f"<code>{rng.choice(candidates or CODES)}</code>"


class CodeBreakerEnv(MultiTurnEnv):
    """Crack a 3-digit code from 'N right' hints; `is_success` is cracking it, in however many guesses."""

    name = "code_breaker"
    description = "crack a 3-digit code from hints, answer <code>NNN</code> (multi-turn)"

    def __init__(self, num_examples: int = 100, max_turns: int = 10, seed: int = 0) -> None:
        rng = random.Random(seed)
        rows = [{"prompt": "New code. Your first guess?", "secret": rng.choice(CODES)} for _ in range(num_examples)]
        super().__init__(
            dataset=rows, system_prompt=SYSTEM_PROMPT, rubric=Rubric.from_functions([cracked]), max_turns=max_turns
        )

    def setup_state(self, state: EpisodeState) -> None:
        state.info["cracked"] = False

    def env_response(self, state: EpisodeState, reply: ChatMessage) -> tuple[list[ChatMessage], bool]:
        guess = (PARSER.parse(reply.text) or "").strip()
        if guess not in CODES:
            return [ChatMessage.from_user("Guess 3 different digits from 1 to 6 inside <code></code>.")], False
        right = hits(guess, state.example["secret"])
        state.info["cracked"] = right == 3
        return [ChatMessage.from_user("Cracked!" if right == 3 else f"{right} right. Next guess?")], right == 3

    def baselines(self) -> dict[str, Any]:
        return {"solver": solver_baseline}


def load_environment(**kwargs: Any) -> CodeBreakerEnv:
    return CodeBreakerEnv(**kwargs)


if __name__ == "__main__":
    env = load_environment(num_examples=20)
    check_environment(env)  # the contract, determinism, serialization and a real rollout
    rollouts = RolloutRunner(env, FunctionChatGenerator(solver_baseline)).run()["rollouts"]
    print(
        f"solver cracks {sum(r.success for r in rollouts)}/{len(rollouts)} codes, "
        f"{sum(len(r.messages) for r in rollouts) / len(rollouts) / 2 - 1:.1f} guesses on average"
    )
