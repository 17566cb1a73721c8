"""Bench: the RAG pipeline example (query rewrite -> BM25 -> answer, both LLM calls played by `tiny`) trained with a
short SFT warm start then GRPO; before / after-SFT / after figures on search_qa's 24 held-out questions.

Usage: python bench/train_rag.py [--sft-steps 300] [--grpo-steps 20] [--eval-examples 24] [--seed 0]
Target (issue 39): report what training does to the exact-answer reward and the retrieval hit rate (no threshold:
the table is the result). Also evaluates the scripted expert baseline through the same pipeline, as the ceiling.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))  # the example this bench runs

import argparse
import json
import time

from train_rag_pipeline import load_environment, train_config

from haystack_rl.policies import build_policy
from haystack_rl.training.evaluation import evaluate

FIGURES = ("reward", "exact_match", "retrieval_hit", "errors")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sft-steps", type=int, default=300)
    parser.add_argument("--grpo-steps", type=int, default=20)
    parser.add_argument("--eval-examples", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="runs/bench_rag")
    args = parser.parse_args()

    from haystack_rl.cli.app import quiet_libraries
    from haystack_rl.training import Trainer

    quiet_libraries()
    environment = load_environment()
    scripted, generation_kwargs = build_policy("baseline:expert", environment)
    expert = evaluate(environment, scripted, args.eval_examples, seed=args.seed, generation_kwargs=generation_kwargs)
    start = time.perf_counter()
    config = train_config(args.sft_steps, args.grpo_steps, args.eval_examples, args.seed, args.output)
    metrics = Trainer(config).run()["metrics"]
    wall = time.perf_counter() - start
    columns = {"before": metrics.get("eval_before"), "after SFT": metrics.get("eval_sft"),
               "after GRPO": metrics.get("eval_after"), "expert (ceiling)": expert}  # fmt: skip
    print(f"\nRAG pipeline on tiny: SFT {args.sft_steps} steps, GRPO {args.grpo_steps} steps, seed {args.seed}, "
          f"{wall:.0f} s of training and evaluation; eval: {args.eval_examples} held-out questions, "
          "greedy\n")  # fmt: skip
    print("| figure | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for figure in FIGURES:
        cells = [summary.get(figure) if summary else None for summary in columns.values()]
        print(f"| {figure} | " + " | ".join("-" if c is None else f"{c:.3f}" if isinstance(c, float) else str(c)
                                             for c in cells) + " |")  # fmt: skip
    table = {name: {f: (summary or {}).get(f) for f in FIGURES} for name, summary in columns.items()}
    print(json.dumps({"bench": "train_rag", "args": vars(args), "wall_s": wall, "columns": table}))


if __name__ == "__main__":
    main()
