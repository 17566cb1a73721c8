"""Shared bench for tool environments: a warm start of a given quality, then GRPO; success and tool use.

Used by bench/train_calculator.py and bench/train_search_qa.py (run those). For each warm-start quality it
trains `tiny` with `Trainer` (SFT on `demonstrate(quality=...)` transcripts, then GRPO through the
environment's tool loop) and prints success, tool-error rate, tool calls per rollout and the share of
rollouts answering without a tool: after SFT and after GRPO, on the eval split, greedy, and again sampled
at GRPO's temperature (`--sampled-rollouts` per example, the same `--sampled-seed` for both models): a greedy
warm start can make no tool errors at all while the policy GRPO samples from makes many, so the sampled rate is
the one that can fall.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from haystack_rl.training import Trainer
from haystack_rl.training.config import TrainConfig
from haystack_rl.training.evaluation import evaluate_model

FIGURES = ("success", "tool_error_rate", "tool_calls_per_rollout", "no_tool_share")


def parse_args(description: str, output: str) -> argparse.Namespace:
    """The bench's command line."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--qualities", default="format-only,expert", help="warm starts to run, comma-separated")
    parser.add_argument("--sft-steps", type=int, default=300)
    parser.add_argument("--grpo-steps", type=int, default=1000)
    parser.add_argument("--grpo-minutes", type=float, default=30.0, help="stop GRPO after this long (0: no limit)")
    parser.add_argument("--eval-examples", type=int, default=100)
    parser.add_argument(
        "--sampled-rollouts",
        type=int,
        default=8,
        help="rollouts per eval example at GRPO's temperature, warm start and final (0: skip)",
    )
    parser.add_argument(
        "--sampled-seed",
        type=int,
        default=0,
        help="sampling seed of both sampled evals (fixed, not the run's seed, so runs compare on the same draws)",
    )
    parser.add_argument("--output", default=output)
    parser.add_argument("--set", action="append", default=[], help="extra config overrides key.sub=value")
    return parser.parse_args()


def sampled_eval(config: TrainConfig, environment: Any, model_dir: str, rollouts: int, seed: int) -> dict[str, Any]:
    """Success and tool use of `model_dir` on the eval split, sampled at GRPO's temperature."""
    max_new = config.eval.max_new_tokens or config.grpo.max_new_tokens
    summary = evaluate_model(environment, model_dir, max_new, config.grpo.temperature, config.eval.num_examples,
                             rollouts, seed)  # fmt: skip
    return {k: summary.get(k) for k in FIGURES}


def run(env: str, env_args: dict[str, Any], args: argparse.Namespace, max_new_tokens: int = 128) -> None:
    """Train once per warm-start quality and print the table (plus one JSON line per quality)."""
    results = {}
    for quality in args.qualities.split(","):
        config = TrainConfig.from_dict({
            "model": "tiny",
            "env": env,
            "env_args": env_args,
            "output_dir": f"{args.output}/{quality}",
            "save_steps": 1000,
            "sft": {"steps": args.sft_steps, "batch": 16, "lr": 2e-3, "quality": quality, "max_length": 2048},
            "grpo": {"steps": args.grpo_steps, "batch": 16, "num_generations": 8, "lr": 1e-4,
                     "max_new_tokens": max_new_tokens, "temperature": 1.0, "loss_type": "dapo", "beta": 0.0,
                     "max_minutes": args.grpo_minutes or None},
            "eval": {"num_examples": args.eval_examples, "temperature": 0.0, "max_new_tokens": max_new_tokens},
        }, overrides=args.set).to_dict()  # fmt: skip
        start = time.perf_counter()
        trained = Trainer(config).run()
        metrics = trained["metrics"]
        grpo_ran = config["grpo"]["steps"] > 0
        # with `--set sft.enabled=false --set model=DIR` the warm start is DIR, evaluated as "before"; without
        # GRPO (`--grpo-steps 0`) the last evaluation is the warm start's
        warm = metrics.get("eval_sft") or (metrics["eval_before"] if grpo_ran else metrics["eval_after"])
        warm_dir = metrics.get("sft_model", metrics["base_model"])
        sample, seed = args.sampled_rollouts, args.sampled_seed
        parsed = TrainConfig.from_dict(config)
        environment = parsed.build_environment() if sample else None
        results[quality] = {
            "after_sft": {k: warm.get(k) for k in FIGURES},
            "after_grpo": {k: metrics["eval_after"].get(k) if grpo_ran else None for k in FIGURES},
            "sampled_after_sft": sampled_eval(parsed, environment, warm_dir, sample, seed) if sample else None,
            "sampled_after_grpo": (
                sampled_eval(parsed, environment, trained["model_dir"], sample, seed) if sample and grpo_ran else None
            ),
            "sft_s": metrics.get("sft_wall_s"),
            "grpo_s": metrics.get("grpo_wall_s"),
            "grpo_steps": metrics.get("grpo_steps_done"),
            "total_s": time.perf_counter() - start,
        }
    sft = f"SFT {args.sft_steps} steps" if config["sft"]["enabled"] else f"warm start {config['model']} (no SFT)"
    print(f"\n{env}: eval split ({args.eval_examples} examples, greedy; sampled_*: temperature "
          f"{config['grpo']['temperature']:g}, {args.sampled_rollouts} per example, seed {args.sampled_seed}); {sft}, "
          f"GRPO up to {args.grpo_steps} steps / {args.grpo_minutes:g} min")  # fmt: skip
    print(f"{'warm start':<12} {'stage':<19}" + "".join(f"{name:>24}" for name in FIGURES))
    for quality, result in results.items():
        for stage in ("after_sft", "after_grpo", "sampled_after_sft", "sampled_after_grpo"):
            if result[stage] is None:
                continue
            cells = "".join(
                f"{value:>24.3f}" if isinstance(value, float) else f"{'-':>24}" for value in result[stage].values()
            )
            print(f"{quality:<12} {stage:<19}{cells}")
        print(
            f"{'':<12} wall: SFT {result['sft_s'] or 0:.0f} s, GRPO {result['grpo_s'] or 0:.0f} s "
            f"({result['grpo_steps']} steps)"
        )
    print(json.dumps(results))
