"""Bench: seconds of in-process generation for one GRPO step's calculator rollouts (every turn), on a given model.

Plays `--problems` training problems x `--group` rollouts concurrently through `TokenChatGenerator`, as
`EnvRolloutFunc` does in a GRPO step (tool calls run, then the next turn), and times it three ways, back to
back, same seeds: "plain" (each batch prefilled in full with the model's default cache, every row decoded
until the longest is done), "static cache" (a preallocated KV cache) and "ours" (static cache, the batch's
common prompt prefix prefilled once, finished rows leaving the batch). "plain" and "static cache" switch
the newer parts off inside this process only. It also counts the rollouts whose sampled tokens are the same
on every side (float noise from another batch shape can, rarely, flip a sampled token).

Usage: python bench/tool_rollouts.py [--model DIR] [--problems 2] [--group 16] [--repeats 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from torch_threads import add_threads_argument, apply_threads

from haystack_rl import load_environment
from haystack_rl.engine import kv_cache
from haystack_rl.episode import play_episode
from haystack_rl.generators.token import TokenChatGenerator

SIDES = ("plain", "static cache", "ours")
OURS = {name: getattr(kv_cache, name) for name in ("new_cache", "select_rows", "prefill_shared_prefix")}


def play_rollouts(env: Any, generator: TokenChatGenerator, problems: int, group: int) -> list[Any]:
    """`group` rollouts of each of the first `problems` training examples, played concurrently, seeded."""
    examples = env.examples("train")[:problems]

    async def all_rollouts() -> list[Any]:
        return await asyncio.gather(*(
            play_episode(env, generator, example, 0, rollout_index=i,
                         generation_kwargs={"max_new_tokens": 128, "temperature": 1.0, "seed": 1000 * p + i})
            for p, example in enumerate(examples) for i in range(group)
        ))  # fmt: skip

    return asyncio.run(all_rollouts())


def play(env: Any, generator: TokenChatGenerator, problems: int, group: int) -> tuple[float, list[Any]]:
    """`play_rollouts`, timed; returns (seconds, each rollout's token ids per turn)."""
    start = time.perf_counter()
    rollouts = play_rollouts(env, generator, problems, group)
    return time.perf_counter() - start, [[turn.completion_ids for turn in r.turns] for r in rollouts]


def switched(side: str) -> dict[str, Any]:
    """The engine's KV-cache helpers as they are for `side` (the newer parts replaced by plain ones)."""
    if side == "ours":
        return OURS
    new_cache = OURS["new_cache"] if side == "static cache" else (lambda model, length: None)
    return {
        "new_cache": new_cache,
        "select_rows": lambda cache, rows: False,  # finished rows stay in the batch
        "prefill_shared_prefix": lambda model, prompts, length: (new_cache(model, length), 0),  # full prefill
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="model directory (or `tiny`)")
    parser.add_argument("--problems", type=int, default=2)
    parser.add_argument("--group", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    add_threads_argument(parser)
    args = parser.parse_args()
    apply_threads(args.threads)
    env = load_environment("calculator", num_train_examples=max(args.problems, 1))
    generator = TokenChatGenerator(model=args.model, generation_kwargs={"max_new_tokens": 128}, max_batch_size=256)
    generator.warm_up()
    seconds: dict[str, list[float]] = {side: [] for side in SIDES}
    tokens: dict[str, list[Any]] = {}
    for _ in range(args.repeats):
        for side in SIDES:
            for name, helper in switched(side).items():
                setattr(kv_cache, name, helper)
            elapsed, tokens[side] = play(env, generator, args.problems, args.group)
            seconds[side].append(elapsed)
    for name, helper in OURS.items():
        setattr(kv_cache, name, helper)
    same = sum(a == b == c for a, b, c in zip(tokens["plain"], tokens["static cache"], tokens["ours"]))
    rollouts = args.problems * args.group
    turns = sum(len(t) for t in tokens["ours"])
    print(f"calculator, {args.problems} problems x {args.group} rollouts ({turns} model turns), model {args.model}, "
          f"torch threads {args.threads}; best of {args.repeats}")  # fmt: skip
    print(f"rollouts with the same tokens on every side: {same}/{rollouts}")
    best = {side: min(values) for side, values in seconds.items()}
    for side in SIDES:
        print(f"{side:<14} {best[side]:7.2f} s   {rollouts / best[side]:6.2f} rollouts/s   "
              f"{best['plain'] / best[side]:5.2f}x plain")  # fmt: skip
    print(json.dumps({"seconds": seconds, "best": best, "same_tokens": same, "rollouts": rollouts, "turns": turns}))


if __name__ == "__main__":
    main()
