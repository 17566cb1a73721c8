"""Bench: tokens/s of TokenChatGenerator (in-process engine) on `tiny`, batched rollouts vs one at a time.

Both sides generate the same requests (reverse_text prompts, the same per-request seeds, the same
`max_new_tokens`) in the same process, back to back: "sequential" calls `run` once per request;
"batched" starts all requests at once with `run_async`, which micro-batches concurrent calls into one
forward pass per step (up to `max_batch_size`). Prints tokens/s of each and the ratio.
Torch runs on `--threads 1` by default: on 2 busy cores, intra-op threads spin-wait and make the
one-at-a-time side look ~3x slower than it is (which would flatter the ratio).

Usage: python bench/generation_batching.py [--concurrency 32] [--max-new-tokens 48] [--repeats 2] [--threads 1]
Target (issue 6): batched >= 4x the one-at-a-time tokens/s at 32 concurrent rollouts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import torch
from haystack.dataclasses import ChatMessage
from torch_threads import add_threads_argument, apply_threads

from haystack_rl import load_environment
from haystack_rl.generators.token import TokenChatGenerator

TARGET = 4.0


def prompts(count: int) -> list[list[ChatMessage]]:
    """`count` reverse_text opening conversations (system prompt + passage)."""
    env = load_environment("reverse_text", num_eval_examples=count)
    return [env.reset(example, seed=index)[0] for index, example in enumerate(env.examples("eval", count))]


def run_sequential(generator: TokenChatGenerator, conversations: list[list[ChatMessage]],
                   kwargs: list[dict[str, Any]]) -> tuple[int, float]:  # fmt: skip
    """Generate one request at a time; returns (completion tokens, seconds)."""
    start = time.perf_counter()
    tokens = 0
    for messages, generation_kwargs in zip(conversations, kwargs):
        reply = generator.run(messages, generation_kwargs=generation_kwargs)["replies"][0]
        tokens += len(reply.meta["completion_ids"])
    return tokens, time.perf_counter() - start


def run_batched(generator: TokenChatGenerator, conversations: list[list[ChatMessage]],
                kwargs: list[dict[str, Any]]) -> tuple[int, float]:  # fmt: skip
    """Generate all requests concurrently through `run_async`; returns (completion tokens, seconds)."""

    async def all_at_once() -> list[dict[str, Any]]:
        return await asyncio.gather(
            *(generator.run_async(m, generation_kwargs=k) for m, k in zip(conversations, kwargs))
        )

    start = time.perf_counter()
    results = asyncio.run(all_at_once())
    elapsed = time.perf_counter() - start
    return sum(len(r["replies"][0].meta["completion_ids"]) for r in results), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="tiny or a local HF model directory")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent rollouts (requests per side)")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=2, help="timed rounds per side (best is kept)")
    add_threads_argument(parser)
    args = parser.parse_args()
    apply_threads(args.threads)

    generator = TokenChatGenerator(model=args.model, max_batch_size=args.concurrency,
                                   generation_kwargs={"max_new_tokens": args.max_new_tokens,
                                                      "temperature": args.temperature})  # fmt: skip
    generator.warm_up()
    conversations = prompts(args.concurrency)
    kwargs = [{"seed": index} for index in range(args.concurrency)]
    run_sequential(generator, conversations[:2], kwargs[:2])  # warm-up (first forward passes, allocator)
    run_batched(generator, conversations[:4], kwargs[:4])

    best: dict[str, float] = {"sequential": 0.0, "batched": 0.0}
    tokens: dict[str, int] = {}
    for _ in range(args.repeats):  # interleaved, so machine load hits both sides alike
        for name, side in (("sequential", run_sequential), ("batched", run_batched)):
            count, seconds = side(generator, conversations, kwargs)
            tokens[name] = count
            best[name] = max(best[name], count / seconds)
    ratio = best["batched"] / best["sequential"]
    print(f"TokenChatGenerator on {args.model!r}: {args.concurrency} requests, "
          f"max_new_tokens={args.max_new_tokens}, temperature={args.temperature}, "
          f"torch threads={torch.get_num_threads()}")  # fmt: skip
    for name in ("sequential", "batched"):
        print(f"  {name:<10} {best[name]:9.1f} tokens/s  ({tokens[name]} tokens per round)")
    verdict = "meets" if ratio >= TARGET else "misses"
    print(f"  ratio batched/sequential: {ratio:.2f}x (target >= {TARGET:.1f}x: {verdict})")
    print(json.dumps({"bench": "generation_batching", "concurrency": args.concurrency, "sequential_tok_s": best[
        "sequential"], "batched_tok_s": best["batched"], "ratio": ratio, "target": TARGET}))  # fmt: skip


if __name__ == "__main__":
    main()
