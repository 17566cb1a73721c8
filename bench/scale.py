"""Bench: 1,000 concurrent rollouts against the mock server complete with no error; peak memory per rollout.

`RolloutRunner` (with Haystack's `OpenAIChatGenerator`, as `haystack-rl eval --base-url` builds it) plays
`--rollouts` episodes with `concurrency` equal to that number, so all are in flight at once, against the
mock OpenAI-compatible server (`tools.testing`, in its own process), writing results.jsonl.
Checks: every rollout finished, none has an error, every reverse_text reward is 1.0 (the mock answers
correctly). Memory, measured in two separate runs after a warm-up run:

- peak RSS growth over the run (sampled every 20 ms from /proc/self/statm), divided by the rollouts
  (each environment runs in its own process, since RSS does not shrink back after a run);
- peak Python heap growth (tracemalloc; a slower run), divided by the rollouts.

Usage: python bench/scale.py [--rollouts 1000] [--envs reverse_text tic_tac_toe]
Target (issue 6): 1,000 concurrent rollouts, no error; report memory per in-flight rollout.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for `tools`, the repository's tooling

import argparse
import asyncio
import json
import logging
import os
import subprocess
import tempfile
import time
import tracemalloc
from typing import Any

from haystack_rl.policies import build_policy
from haystack_rl.registry import load_environment
from haystack_rl.rollout import Rollout
from haystack_rl.runner import RolloutRunner
from tools.testing import MockChatServer

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Resident set size of this process now."""
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * PAGE


async def play(env_name: str, base_url: str, examples: list[dict[str, Any]], peak: list[int] | None) -> list[Rollout]:
    """All examples at once through RolloutRunner; `peak[0]` tracks the highest RSS seen while it runs."""
    environment = load_environment(env_name, num_eval_examples=len(examples))
    policy, kwargs = build_policy("mock", environment, base_url, None, 64, 1.0)
    with tempfile.TemporaryDirectory() as tmp:
        runner = RolloutRunner(environment, policy, concurrency=len(examples), generation_kwargs=kwargs,
                               output_dir=tmp)  # fmt: skip
        task = asyncio.ensure_future(runner.generate(examples))
        while not task.done():
            if peak is not None:
                peak[0] = max(peak[0], rss_bytes())
            await asyncio.wait([task], timeout=0.02)
        rollouts = task.result()
    if hasattr(policy, "close_async"):
        await policy.close_async()
    return rollouts


def check(env_name: str, rollouts: list[Rollout], expected: int) -> list[str]:
    """What went wrong, as sentences (empty: all good)."""
    problems = []
    if len(rollouts) != expected:
        problems.append(f"{len(rollouts)} rollouts finished, {expected} expected")
    errors = [r.error for r in rollouts if r.error]
    if errors:
        problems.append(f"{len(errors)} rollouts failed, e.g. {errors[0]}")
    if env_name == "reverse_text":
        wrong = sum(r.reward != 1.0 for r in rollouts if not r.error)
        if wrong:
            problems.append(f"{wrong} reverse_text rollouts scored below 1.0 against the oracle server")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rollouts", type=int, default=1000, help="rollouts, all in flight at once")
    parser.add_argument("--envs", nargs="+", default=["reverse_text", "tic_tac_toe"])
    parser.add_argument("--no-tracemalloc", action="store_true", help="skip the (slower) Python-heap run")
    args = parser.parse_args()
    logging.getLogger("haystack").setLevel(logging.ERROR)

    if len(args.envs) > 1:  # one process per environment: RSS never shrinks back after a run
        failed = False
        for env_name in args.envs:
            command = [sys.executable, __file__, "--rollouts", str(args.rollouts), "--envs", env_name]
            failed = (
                subprocess.run(command + (["--no-tracemalloc"] if args.no_tracemalloc else [])).returncode != 0
                or failed
            )
        raise SystemExit(1 if failed else 0)

    rows: list[dict[str, Any]] = []
    failed = False
    for env_name in args.envs:
        examples = load_environment(env_name, num_eval_examples=args.rollouts).examples("eval", args.rollouts)
        with MockChatServer(env_name, subprocess=True) as server:
            asyncio.run(play(env_name, server.base_url, examples[:50], None))  # warm-up: imports, first connections
            baseline = rss_bytes()
            peak = [baseline]
            start = time.perf_counter()
            rollouts = asyncio.run(play(env_name, server.base_url, examples, peak))
            seconds = time.perf_counter() - start
            problems = check(env_name, rollouts, len(examples))
            heap = None
            if not args.no_tracemalloc:
                tracemalloc.start()
                problems += check(env_name, asyncio.run(play(env_name, server.base_url, examples, None)), len(examples))
                heap = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
        failed = failed or bool(problems)
        turns = sum(r.info.get("turns", 1) or 1 for r in rollouts) / max(1, len(rollouts))
        row = {"env": env_name, "rollouts": len(examples), "concurrency": len(examples), "seconds": seconds,
               "rollouts_per_s": len(examples) / seconds, "mean_turns": turns,
               "rss_peak_growth_mb": (peak[0] - baseline) / 2**20,
               "rss_kb_per_rollout": (peak[0] - baseline) / 1024 / len(examples),
               "heap_peak_mb": None if heap is None else heap / 2**20,
               "heap_kb_per_rollout": None if heap is None else heap / 1024 / len(examples),
               "problems": problems}  # fmt: skip
        rows.append(row)
        heap_text = "" if heap is None else f", Python heap peak {row['heap_kb_per_rollout']:.1f} KiB/rollout"
        print(f"{env_name:<12} {len(examples)} concurrent rollouts in {seconds:.1f} s: "
              f"{'OK, no error' if not problems else 'FAILED: ' + '; '.join(problems)}; "
              f"RSS growth {row['rss_peak_growth_mb']:.1f} MiB = {row['rss_kb_per_rollout']:.1f} KiB/rollout"
              f"{heap_text}", flush=True)  # fmt: skip
    print(json.dumps({"bench": "scale", "rows": rows}))
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
