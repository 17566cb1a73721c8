"""The whole story on tic-tac-toe: evaluate `tiny`, train it (SFT warm start + GRPO), evaluate again, deploy.

Deploying means: the shipped YAML pipeline (pipelines/tic_tac_toe_eval.yml) runs unchanged but for the
model path, which now points at the tuned checkpoint. A few minutes on 2 cores with the defaults below.

Run: python examples/train_and_deploy.py [--sft-steps 200] [--grpo-steps 10] [--games 40] [--output DIR]
     [--set key.sub=value ...]   (any override of configs/train_tic_tac_toe.yml)
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml
from haystack import Pipeline
from rich.console import Console

import haystack_rl  # noqa: F401 - lets Haystack's YAML loader build this package's components
from haystack_rl.cli.summary_table import print_summary
from haystack_rl.training import TrainConfig, Trainer
from haystack_rl.training.cli import eval_table

ROOT = Path(__file__).resolve().parent.parent
CONFIGS, PIPELINES = ROOT / "configs", ROOT / "pipelines"


def train(sft_steps: int, grpo_steps: int, games: int, output: str, overrides: list[str]) -> dict[str, Any]:
    """Evaluate `tiny`, warm-start it on expert (minimax) games, run GRPO, evaluate again (all inside `Trainer`)."""
    config = TrainConfig.from_yaml(
        CONFIGS / "train_tic_tac_toe.yml",
        overrides=[
            f"sft.steps={sft_steps}",
            f"grpo.steps={grpo_steps}",
            f"eval.num_examples={games}",
            f"output_dir={output}/train",
            "save_steps=1000",
            *overrides,
        ],
    )
    return Trainer(config.to_dict()).run()


def deploy(model_dir: str, games: int, output: str) -> dict[str, Any]:
    """Run the shipped eval pipeline with the tuned model swapped in; returns the results writer's summary."""
    data = yaml.safe_load((PIPELINES / "tic_tac_toe_eval.yml").read_text())
    runner = data["components"]["runner"]["init_parameters"]
    runner["policy"]["init_parameters"]["model"] = model_dir  # the one change that matters
    # Run size and a fresh results directory (an existing one would be resumed, not re-evaluated).
    runner["num_examples"] = games
    runner["output_dir"] = data["components"]["writer"]["init_parameters"]["output_dir"] = f"{output}/deployed"
    pipeline = Pipeline.loads(yaml.safe_dump(data))
    run_info = {"pipeline": "pipelines/tic_tac_toe_eval.yml", "model": model_dir}  # lands in metadata.json
    return pipeline.run({"writer": {"run_info": run_info}})["writer"]["summary"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sft-steps", type=int, default=200)
    parser.add_argument("--grpo-steps", type=int, default=10)
    parser.add_argument("--games", type=int, default=40, help="games per evaluation")
    parser.add_argument("--output", default="runs/train_and_deploy")
    parser.add_argument("--set", action="append", default=[], help="any training config override: key.sub=value")
    args = parser.parse_args()
    console = Console()
    result = train(args.sft_steps, args.grpo_steps, args.games, args.output, args.set)
    console.print(eval_table(result["metrics"]))
    console.print(f"tuned model: {result['model_dir']}")
    summary = deploy(result["model_dir"], args.games, args.output)
    print_summary(summary, console, title="pipelines/tic_tac_toe_eval.yml with the tuned model")


if __name__ == "__main__":
    main()
