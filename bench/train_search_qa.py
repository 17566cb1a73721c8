"""Bench: search_qa, format-only and expert warm starts, each followed by GRPO, on `tiny` (2 CPU cores).

Usage: python bench/train_search_qa.py [--qualities format-only,expert] [--sft-steps 300] [--grpo-minutes 30]
Target (issue 7): success rises after GRPO over the warm start (the table says by how much). search_qa trains
on 82 questions (two or three about different facts of most of its 40 documents) and evaluates on 24 held-out
ones (reworded, or about facts no training question asks), so the table measures reading, not recall.
"""

from __future__ import annotations

from tool_bench import parse_args, run

if __name__ == "__main__":
    run("search_qa", {}, parse_args(__doc__ or "", "runs/bench_search_qa"))
