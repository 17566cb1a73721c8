"""Bench: SFT warm start then GRPO on `tiny` for reverse_text; SFT-only vs SFT+GRPO eval reward and wall times.

Usage: python bench/train_reverse_text.py [--config configs/train_reverse_text.yml] [--sft-steps N] [--grpo-steps N]
Target (issue 5): mean eval reward >= 0.9 within 15 minutes of total training (SFT + GRPO) on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import time

from haystack_rl.training import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="configs/train_reverse_text.yml", help="the training config to measure")
    parser.add_argument("--sft-steps", type=int, help="override sft.steps")
    parser.add_argument("--grpo-steps", type=int, help="override grpo.steps")
    parser.add_argument("--eval-examples", type=int, default=100)
    parser.add_argument("--output", default="runs/bench_reverse_text")
    parser.add_argument("--set", action="append", default=[], help="extra config overrides key.sub=value")
    args = parser.parse_args()
    from haystack_rl.training.config import TrainConfig

    overrides = [f"output_dir={args.output}", "save_steps=100000", f"eval.num_examples={args.eval_examples}"]
    overrides += [f"sft.steps={args.sft_steps}"] if args.sft_steps is not None else []
    overrides += [f"grpo.steps={args.grpo_steps}"] if args.grpo_steps is not None else []
    config = TrainConfig.from_yaml(args.config, overrides=overrides + args.set).to_dict()
    start = time.perf_counter()
    result = Trainer(config).run()
    total = time.perf_counter() - start
    m = result["metrics"]
    sft_s, grpo_s = m.get("sft_wall_s", 0.0), m.get("grpo_wall_s", 0.0)
    rows = [
        ("base model", m["eval_before"]),
        ("SFT only", m.get("eval_sft", {})),
        ("SFT + GRPO", m["eval_after"]),
    ]
    print(f"\nreverse_text eval split ({args.eval_examples} examples, greedy)")
    print(f"{'model':<20} {'reward':>8} {'lcs':>8} {'format':>8}")
    for name, summary in rows:

        def fmt(key: str, s: dict = summary) -> str:
            value = s.get(key)
            return f"{value:8.3f}" if isinstance(value, float) else f"{'-':>8}"

        print(f"{name:<20} {fmt('reward')} {fmt('lcs_reward')} {fmt('format_reward')}")
    print(
        f"\nwall: SFT {sft_s:.0f} s ({config['sft']['steps']} steps), GRPO {grpo_s:.0f} s "
        f"({config['grpo']['steps']} steps), "
        f"training total {sft_s + grpo_s:.0f} s, run total incl. evals {total:.0f} s"
    )
    print(
        json.dumps(
            {
                "sft_only": m.get("eval_sft", {}).get("reward"),
                "sft_grpo": m["eval_after"]["reward"],
                "sft_s": sft_s,
                "grpo_s": grpo_s,
                "model_dir": result["model_dir"],
            }
        )
    )


if __name__ == "__main__":
    main()
