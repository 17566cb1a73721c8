"""Smoke check of the in-process engine on a device (CUDA by default): generation, a GRPO step, the loss pass.

Three parts, each printing `SMOKE ...` lines with its tokens/s, all together in `--out`/smoke.json:
1. generation: `TokenChatGenerator` on `--device`, reverse_text prompts, `--concurrency` requests started at once
   (micro-batched) and 8 one at a time; completion tokens/s of each.
2. tic-tac-toe GRPO: `build_grpo_trainer` (the same trainer `haystack-rl train` builds; bf16 and gradient
   checkpointing on CUDA, as `cpu_friendly_args` sets them) for `--grpo-steps` steps of `--batch` rollouts;
   per step: wall seconds, seconds in the rollout function (generation + environment) and its model tokens/s.
3. loss pass: one step's calculator rollouts (every turn, tool calls run) scored as GRPO's loss does, TRL's
   plain pass vs `training.shared_prompt` (each shared prompt once), forward + backward; tokens/s of each.

Usage: python bench/gpu_smoke.py [--device auto|cuda|cpu] [--model tiny] [--out DIR] (see bench/gpu_smoke.sh)
Not a test: nothing asserts a speed; a part that fails is reported and the others still run.
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from pathlib import Path
from typing import Any

import torch
from generation_batching import prompts, run_batched, run_sequential
from loss_pass import plain_logps, step_batch

from haystack_rl.generators.token import TokenChatGenerator
from haystack_rl.models.tiny import resolve_model
from haystack_rl.training import TrainConfig
from haystack_rl.training.shared_prompt import shared_prompt_logps


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def generation(args: argparse.Namespace) -> dict[str, Any]:
    """Completion tokens/s of the engine, batched and one at a time."""
    generator = TokenChatGenerator(model=args.model, device=args.device, max_batch_size=args.concurrency,
                                   generation_kwargs={"max_new_tokens": args.max_new_tokens})  # fmt: skip
    generator.warm_up()
    conversations = prompts(args.concurrency)
    kwargs = [{"seed": index} for index in range(args.concurrency)]
    run_batched(generator, conversations[:4], kwargs[:4])  # warm-up: first kernels, allocator
    out: dict[str, Any] = {"device": str(generator.backend.model.device), "concurrency": args.concurrency}  # type: ignore[attr-defined]
    tokens, seconds = run_batched(generator, conversations, kwargs)
    out["batched_tok_s"] = tokens / seconds
    tokens, seconds = run_sequential(generator, conversations[:8], kwargs[:8])
    out["sequential_tok_s"] = tokens / seconds
    print(f"SMOKE generation on {out['device']}: batched {out['batched_tok_s']:.0f} tokens/s "
          f"({args.concurrency} concurrent), one at a time {out['sequential_tok_s']:.0f} tokens/s")  # fmt: skip
    return out


def grpo(args: argparse.Namespace, model_dir: str, output_dir: Path) -> dict[str, Any]:
    """Wall time and rollout tokens/s of tic-tac-toe GRPO steps."""
    from transformers import TrainerCallback

    from haystack_rl.training.grpo import build_grpo_trainer

    config = TrainConfig.from_dict({
        "model": model_dir, "env": "tic_tac_toe", "output_dir": str(output_dir), "save_steps": 10_000,
        "env_args": {"num_train_examples": 64, "num_eval_examples": 2},
        "sft": {"enabled": False},
        "grpo": {"steps": args.grpo_steps, "batch": args.batch, "num_generations": 8, "max_new_tokens": 16},
        "eval": {"num_examples": 1},
    })  # fmt: skip
    trainer = build_grpo_trainer(config, config.build_environment(), model_dir, output_dir / "grpo")
    rollout_func, steps = trainer.rollout_func, []

    def timed(prompts: list[Any], trainer: Any) -> dict[str, list[Any]]:
        synchronize(args.device)
        start = time.perf_counter()
        output = rollout_func(prompts, trainer)
        synchronize(args.device)
        tokens = sum(r.num_completion_tokens for r in rollout_func.last_rollouts)
        turns = sum(len(r.turns) for r in rollout_func.last_rollouts)
        steps.append({"rollout_s": time.perf_counter() - start, "model_tokens": tokens, "turns": turns})
        return output

    class StepClock(TrainerCallback):
        def on_step_begin(self, *unused: Any, **kwargs: Any) -> None:
            self.start = time.perf_counter()

        def on_step_end(self, *unused: Any, **kwargs: Any) -> None:
            synchronize(args.device)
            if steps:
                steps[-1]["step_s"] = time.perf_counter() - self.start

    trainer.rollout_func = timed
    trainer.add_callback(StepClock())
    trainer.train()
    for index, step in enumerate(steps):
        step["rollout_tok_s"] = step["model_tokens"] / step["rollout_s"]
        print(f"SMOKE grpo step {index}: {step.get('step_s', float('nan')):.2f} s, rollouts {step['rollout_s']:.2f} s "
              f"({step['turns']} model turns, {step['model_tokens']} model tokens, "
              f"{step['rollout_tok_s']:.0f} tokens/s)")  # fmt: skip
    return {"device": str(trainer.model.device), "batch": args.batch, "steps": steps}


def loss_pass(args: argparse.Namespace) -> dict[str, Any]:
    """Tokens/s of GRPO's scoring pass (forward + backward), plain and on shared prompts."""
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    generator = TokenChatGenerator(model=args.model, device=args.device, max_batch_size=256,
                                   generation_kwargs={"max_new_tokens": 128})  # fmt: skip
    generator.warm_up()
    ids, mask, keep = step_batch(generator, 2, 16)
    model = AutoModelForCausalLM.from_pretrained(resolve_model(args.model)).to(args.device)
    add_fused_lm_head(model, outputs=("log_probs", "entropy"))
    ids, mask = ids.to(model.device), mask.to(model.device)
    sides = {
        "plain": lambda: plain_logps(model, ids, mask, keep),
        "shared": lambda: shared_prompt_logps(model, ids, mask, keep)[0],  # type: ignore[index]
    }
    out: dict[str, Any] = {"rows": ids.size(0), "width": ids.size(1), "tokens": int(mask.sum())}
    for name, score in sides.items():
        score().sum().backward()  # warm-up
        best = float("inf")
        for _ in range(3):
            model.zero_grad()
            synchronize(args.device)
            start = time.perf_counter()
            score().sum().backward()
            synchronize(args.device)
            best = min(best, time.perf_counter() - start)
        out[f"{name}_s"], out[f"{name}_tok_s"] = best, out["tokens"] / best
    print(f"SMOKE loss pass ({out['rows']} rows x {out['width']} tokens, forward+backward): plain "
          f"{out['plain_tok_s']:.0f} tokens/s, shared prompts {out['shared_tok_s']:.0f} tokens/s "
          f"({out['plain_s'] / out['shared_s']:.2f}x)")  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto (cuda when a GPU is visible), cuda or cpu")
    parser.add_argument("--model", default="tiny", help="tiny or a local HF model directory")
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--grpo-steps", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64, help="GRPO rollouts per step (groups of 8)")
    parser.add_argument("--out", default="/tmp/gpu_smoke_out")
    args = parser.parse_args()
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model_dir = str(resolve_model(args.model))
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-"
    print(f"SMOKE device={args.device} gpu={name} torch={torch.__version__} model={model_dir}")
    results: dict[str, Any] = {"device": args.device, "gpu": name, "torch": torch.__version__}
    parts = {"generation": lambda: generation(args), "grpo": lambda: grpo(args, model_dir, out / "runs"),
             "loss_pass": lambda: loss_pass(args)}  # fmt: skip
    for part, run in parts.items():
        start = time.perf_counter()
        try:
            results[part] = run()
        except Exception as error:  # noqa: BLE001 - a smoke check reports and goes on
            traceback.print_exc()
            results[part] = {"error": f"{type(error).__name__}: {error}"}
            print(f"SMOKE {part} FAILED: {type(error).__name__}: {error}")
        results[part]["wall_s"] = time.perf_counter() - start
    if args.device.startswith("cuda"):
        results["cuda_max_memory_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
        print(f"SMOKE cuda max memory allocated {results['cuda_max_memory_allocated_mib']:.0f} MiB")
    (out / "smoke.json").write_text(json.dumps(results, indent=2) + "\n")
    print("SMOKE failed parts:", [p for p in parts if "error" in results[p]] or "none")


if __name__ == "__main__":
    main()
