"""Bench: rollouts/s of our RolloutRunner vs a minimal asyncio + openai.AsyncOpenAI loop, same mock server.

Both sides play the same task against the same mock OpenAI-compatible server (`tools.testing`,
in its own process so its CPU is not the client's) at the same concurrency, back to back in this
process, alternating, best of `--repeats` rounds each:

- "ours": what `haystack-rl eval ENV --base-url URL` runs: `build_policy` (our
  `OpenAICompatibleChatGenerator`, one pooled client per event loop), `RolloutRunner` with an output
  directory (results.jsonl written per group),
  then `ResultsWriter` (the summary and metadata.json);
- "minimal": a hand-written loop: plain message dicts, `AsyncOpenAI.chat.completions.create`, the game
  rules and the reward inline, one JSON line per rollout.

reverse_text is single-turn; tic_tac_toe is multi-turn (the server answers legal moves; the games are
against the environment's seeded opponent, ~3-5 model turns each). Besides rollouts per wall second,
the script reports rollouts per CPU second of the client process (the server has its own process):
on a shared machine the wall figure swings with other load, the CPU figure much less.

Usage: python bench/rollout_overhead.py [--envs reverse_text tic_tac_toe] [--concurrency 64 256]
       [--rollouts 2000] [--repeats 2] [--profile reverse_text:256]
Target (issues 6, 36): ours >= 1.0x the minimal loop's rollouts/s.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for `tools`, the repository's tooling

import argparse
import asyncio
import cProfile
import difflib
import json
import logging
import pstats
import random
import re
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import openai

from haystack_rl.episode import derive_seed
from haystack_rl.policies import build_policy
from haystack_rl.registry import load_environment
from haystack_rl.results import ResultsWriter
from haystack_rl.runner import RolloutRunner
from tools.testing import MockChatServer

TARGET = 1.0
MODEL = "mock"
MAX_TOKENS = 64
TEMPERATURE = 1.0
_MOVE = re.compile(r"<move>(.*?)</move>", re.DOTALL)
_REVERSED = re.compile(r"<reversed_text>(.*?)</reversed_text>", re.DOTALL)


# --- ours ------------------------------------------------------------------------------------------
async def ours(env_name: str, base_url: str, examples: list[dict[str, Any]], concurrency: int, out: Path) -> int:
    """`haystack-rl eval --base-url`: RolloutRunner + OpenAIChatGenerator, results.jsonl, summary; errors."""
    environment = load_environment(env_name, num_eval_examples=len(examples))
    policy, kwargs = build_policy(MODEL, environment, base_url, None, MAX_TOKENS, TEMPERATURE)
    runner = RolloutRunner(environment, policy, concurrency=concurrency, generation_kwargs=kwargs,
                           output_dir=str(out))  # fmt: skip
    rollouts = await runner.generate(examples)
    if hasattr(policy, "close_async"):
        await policy.close_async()  # its httpx client belongs to this event loop
    ResultsWriter(str(out), breakdowns=list(environment.summary_breakdowns)).run(rollouts)
    return sum(r.error is not None for r in rollouts)


# --- minimal ---------------------------------------------------------------------------------------
async def minimal(env_name: str, base_url: str, examples: list[dict[str, Any]], concurrency: int, out: Path) -> int:
    """A hand-written loop doing the same task: AsyncOpenAI, dict messages, inline rules and reward; errors."""
    from haystack_rl_envs.reverse_text.env import SYSTEM_PROMPT as REVERSE_PROMPT
    from haystack_rl_envs.tic_tac_toe import game
    from haystack_rl_envs.tic_tac_toe.env import SYSTEM_PROMPT as GAME_PROMPT

    client = openai.AsyncOpenAI(base_url=base_url, api_key="no-key", max_retries=1)
    semaphore = asyncio.Semaphore(concurrency)
    errors = 0

    async def ask(messages: list[dict[str, str]], seed: int) -> str:
        reply = await client.chat.completions.create(model=MODEL, messages=messages, max_tokens=MAX_TOKENS,  # type: ignore[arg-type]
                                                     temperature=TEMPERATURE, seed=seed)  # fmt: skip
        return reply.choices[0].message.content or ""

    async def reverse_text(example: dict[str, Any], seed: int) -> dict[str, Any]:
        messages = [{"role": "system", "content": REVERSE_PROMPT}, {"role": "user", "content": example["prompt"]}]
        text = await ask(messages, seed)
        messages.append({"role": "assistant", "content": text})
        found = _REVERSED.search(text)
        lcs = difflib.SequenceMatcher(None, found.group(1), example["answer"]).ratio() if found else 0.0
        return {"messages": messages, "reward": (lcs + 0.2 * bool(found)) / 1.2}

    async def tic_tac_toe(example: dict[str, Any], seed: int) -> dict[str, Any]:
        board, winner = game.EMPTY_BOARD, None
        p = float(example["random_move_prob"])

        def opponent(board: str) -> tuple[str, int]:
            cell, _ = game.opponent_move(board, "O", p, random.Random(derive_seed(seed, board)))
            return game.play(board, cell, "O"), cell

        opening = "New game. You play X, the opponent plays O. You move first."
        if not example["model_starts"]:
            board, cell = opponent(board)
            opening = f"New game. You play X, the opponent plays O. The opponent moved first: {cell}."
        messages = [{"role": "system", "content": GAME_PROMPT},
                    {"role": "user", "content": f"{opening}\n\n{game.render(board)}\n\nYour move (X)."}]  # fmt: skip
        for turn in range(10):
            text = await ask(messages, derive_seed(seed, 0, turn))
            messages.append({"role": "assistant", "content": text})
            found = _MOVE.search(text)
            cell = int(found.group(1)) if found and found.group(1).strip().isdigit() else 0
            if not 1 <= cell <= 9 or board[cell - 1] != game.EMPTY:
                messages.append({"role": "user", "content": f"Invalid move.\n\n{game.render(board)}\n\nYour move (X)."})
                continue
            board = game.play(board, cell, "X")
            if (winner := game.winner(board)) is None:
                board, answer = opponent(board)
                winner = game.winner(board)
            suffix = "Your move (X)." if winner is None else f"Game over: {winner}."
            messages.append({"role": "user", "content": f"You played {cell}.\n\n{game.render(board)}\n\n{suffix}"})
            if winner is not None:
                break
        reward = {"X": 1.0, "draw": 0.5}.get(str(winner), 0.0) + 0.2
        return {"messages": messages, "reward": reward, "board": board, "winner": winner}

    play: Callable[[dict[str, Any], int], Awaitable[dict[str, Any]]] = (
        reverse_text if env_name == "reverse_text" else tic_tac_toe
    )

    with open(out / "results.jsonl", "w", encoding="utf-8") as handle:

        async def one(example: dict[str, Any]) -> None:
            nonlocal errors
            seed = derive_seed(0, example["id"])
            async with semaphore:
                try:
                    record = await play(example, seed)
                except Exception as error:  # noqa: BLE001 - counted, like a recorded rollout error
                    errors += 1
                    record = {"error": str(error)}
            handle.write(json.dumps({"example_id": example["id"], "seed": seed, **record}) + "\n")

        await asyncio.gather(*(one(example) for example in examples))
    await client.close()
    return errors


# --- driver ----------------------------------------------------------------------------------------
Side = Callable[[str, str, list[dict[str, Any]], int, Path], Coroutine[Any, Any, int]]


def timed(side: Side, env_name: str, base_url: str, examples: list[dict[str, Any]], concurrency: int,
          profile: cProfile.Profile | None = None) -> tuple[float, float, int]:  # fmt: skip
    """
    Run one side once in a fresh event loop and output directory.

    :returns: (rollouts per wall second, rollouts per CPU second of this process, errors). The server has
        its own process, so the CPU figure is the client's cost alone, and other load on the machine
        barely moves it.
    """
    with tempfile.TemporaryDirectory() as tmp:
        start, cpu_start = time.perf_counter(), time.process_time()
        if profile is not None:
            profile.enable()
        errors = asyncio.run(side(env_name, base_url, examples, concurrency, Path(tmp)))
        if profile is not None:
            profile.disable()
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        return len(examples) / wall, len(examples) / cpu, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=["reverse_text", "tic_tac_toe"])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--rollouts", type=int, default=2000, help="rollouts per run (tic_tac_toe: a quarter)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per side (best is kept)")
    parser.add_argument("--profile", default=None, help="ENV:CONCURRENCY: cProfile our side once and print the top")
    args = parser.parse_args()
    logging.getLogger("haystack").setLevel(logging.ERROR)

    rows: list[dict[str, Any]] = []
    for env_name in args.envs:
        count = args.rollouts if env_name == "reverse_text" else max(1, args.rollouts // 4)
        examples = load_environment(env_name, num_eval_examples=count).examples("eval", count)
        with MockChatServer(env_name, subprocess=True) as server:
            timed(minimal, env_name, server.base_url, examples[:50], 16)  # warm-up: imports, connections
            timed(ours, env_name, server.base_url, examples[:50], 16)
            for concurrency in args.concurrency:
                if args.profile == f"{env_name}:{concurrency}":
                    profile = cProfile.Profile()
                    timed(ours, env_name, server.base_url, examples, concurrency, profile)
                    stats = pstats.Stats(profile).sort_stats("cumulative")
                    stats.print_stats(r"haystack_rl|haystack/|json", 40)
                best: dict[str, float] = {"ours": 0.0, "minimal": 0.0}
                best_cpu: dict[str, float] = {"ours": 0.0, "minimal": 0.0}
                errors: dict[str, int] = {"ours": 0, "minimal": 0}
                for _ in range(args.repeats):
                    for name, side in (("minimal", minimal), ("ours", ours)):
                        rate, cpu_rate, failed = timed(side, env_name, server.base_url, examples, concurrency)
                        best[name] = max(best[name], rate)
                        best_cpu[name] = max(best_cpu[name], cpu_rate)
                        errors[name] += failed
                ratio = best["ours"] / best["minimal"]
                cpu_ratio = best_cpu["ours"] / best_cpu["minimal"]
                rows.append({"env": env_name, "concurrency": concurrency, "rollouts": count,
                             "ours_per_s": best["ours"], "minimal_per_s": best["minimal"], "ratio": ratio,
                             "ours_per_cpu_s": best_cpu["ours"], "minimal_per_cpu_s": best_cpu["minimal"],
                             "cpu_ratio": cpu_ratio, "errors_ours": errors["ours"],
                             "errors_minimal": errors["minimal"]})  # fmt: skip
                print(f"{env_name:<12} c={concurrency:<4} rollouts/s ours {best['ours']:7.1f}  minimal "
                      f"{best['minimal']:7.1f}  ratio {ratio:.2f}x ({'meets' if ratio >= TARGET else 'misses'} "
                      f">= {TARGET}) | per client CPU-s ours {best_cpu['ours']:7.1f}  minimal "
                      f"{best_cpu['minimal']:7.1f}  ratio {cpu_ratio:.2f}x | errors {errors['ours']}/"
                      f"{errors['minimal']}", flush=True)  # fmt: skip
    print(json.dumps({"bench": "rollout_overhead", "target": TARGET, "rows": rows}))


if __name__ == "__main__":
    main()
