"""Bench: calculator, format-only and expert warm starts, each followed by GRPO, on `tiny` (2 CPU cores).

Usage: python bench/train_calculator.py [--qualities format-only,expert] [--sft-steps 300] [--grpo-minutes 30]
Targets (issue 7): from a format-only warm start, GRPO raises success by >= 20 points within 30 minutes of
training with the tool-error rate falling; from an expert warm start plus GRPO, success >= 90%.
"""

from __future__ import annotations

from tool_bench import parse_args, run

if __name__ == "__main__":
    run("calculator", {"num_eval_examples": 100}, parse_args(__doc__ or "", "runs/bench_calculator"))
