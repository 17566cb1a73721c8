"""Bench: GRPO step time of our training component vs TRL's GRPOTrainer used directly, same model and settings.

"ours": `haystack_rl.training.grpo.build_grpo_trainer` for reverse_text (what `Trainer` / `run_grpo` run:
the rubric's reward functions wrapped as TRL reward functions that rebuild `Rollout`s, the metrics log
and the eval callback). "direct": `trl.GRPOTrainer` built by hand from the same model directory (`tiny`),
the same prompts, the same GRPOConfig values, and two plain reward functions computing the same reward
(SequenceMatcher ratio of the answer in tags, and strict format).

Both run in this process, alternating, `--warmup` untimed steps then `--steps` timed steps each; a step's
time is the interval between TRL's `on_step_end` events (generation, rewards, loss, optimizer step).

Wall time on a shared machine swings with other load (a step can stall for a minute), so the script
also reports CPU time per step (this process, all threads): the overhead figure that load does not
distort. Torch runs on `--threads 1` by default: on 2 busy cores, intra-op threads spin-wait.

Usage: python bench/training_overhead.py [--steps 5] [--warmup 1] [--batch 16] [--num-generations 8]
       [--max-new-tokens 32] [--repeats 2] [--threads 1]
Target (issue 6): ours <= 1.1x the direct GRPOTrainer's step time.
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import re
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from torch_threads import add_threads_argument, apply_threads
from transformers import PrinterCallback, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from haystack_rl.models.tiny import resolve_model
from haystack_rl.registry import load_environment
from haystack_rl.training.config import TrainConfig
from haystack_rl.training.grpo import build_grpo_trainer

TARGET = 1.1
ENV = "reverse_text"
_TAGGED = re.compile(r"<reversed_text>(.*?)</reversed_text>", re.DOTALL)
_STRICT = re.compile(r"\A\s*(?:<think>.*?</think>\s*)?<reversed_text>.*?</reversed_text>\s*\Z", re.DOTALL)


class StepTimer(TrainerCallback):
    """Records the wall and CPU time of every optimizer step (between consecutive `on_step_end`s)."""

    def __init__(self) -> None:
        self.times: list[tuple[float, float]] = []
        self._last = (0.0, 0.0)

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: Any) -> None:  # fmt: skip
        self._last = (time.perf_counter(), time.process_time())

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    **kwargs: Any) -> None:  # fmt: skip
        now = (time.perf_counter(), time.process_time())
        self.times.append((now[0] - self._last[0], now[1] - self._last[1]))
        self._last = now


def settings(args: argparse.Namespace, output_dir: str) -> dict[str, Any]:
    """The one set of numbers both sides use."""
    return {
        "model": "tiny",
        "env": ENV,
        "output_dir": output_dir,
        "seed": 0,
        "save_steps": 10_000,
        "sft": {"enabled": False},
        "grpo": {
            "steps": args.warmup + args.steps,
            "batch": args.batch,
            "num_generations": args.num_generations,
            "lr": 1e-5,
            "max_new_tokens": args.max_new_tokens,
            "temperature": 1.0,
            "loss_type": "dapo",
            "beta": 0.0,
        },  # fmt: skip
    }


def ours(args: argparse.Namespace, output_dir: str) -> list[tuple[float, float]]:
    """Step (wall, CPU) times of our GRPO trainer (`build_grpo_trainer`, as `run_grpo` uses it)."""
    config = TrainConfig.from_dict(settings(args, output_dir))
    environment = load_environment(ENV)
    timer = StepTimer()
    trainer = build_grpo_trainer(config, environment, str(resolve_model("tiny")), Path(output_dir) / "grpo", [timer])
    trainer.train()
    return timer.times


def direct(args: argparse.Namespace, output_dir: str) -> list[tuple[float, float]]:
    """Step (wall, CPU) times of `trl.GRPOTrainer` used directly, with plain reward functions."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from haystack_rl.training.model_setup import cpu_friendly_args

    values = settings(args, output_dir)["grpo"]
    environment = load_environment(ENV)
    rows = []
    for example in environment.examples("train"):
        messages, _ = environment.reset(example, 0)
        prompt = [{"role": m.role.value, "content": m.text or ""} for m in messages]
        rows.append({"prompt": prompt, "answer": example["answer"]})

    def lcs(completions: list[Any], answer: list[str], **kwargs: Any) -> list[float | None]:
        found = [_TAGGED.search(c[-1]["content"]) for c in completions]
        return [difflib.SequenceMatcher(None, f.group(1), a).ratio() if f else 0.0 for f, a in zip(found, answer)]  # type: ignore[misc]

    def strict_format(completions: list[Any], **kwargs: Any) -> list[float | None]:
        return [float(bool(_STRICT.match(c[-1]["content"]))) for c in completions]

    model_dir = str(resolve_model("tiny"))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    grpo_config = GRPOConfig(
        output_dir=str(Path(output_dir) / "grpo"), max_steps=values["steps"],
        per_device_train_batch_size=values["batch"], num_generations=values["num_generations"],
        max_completion_length=values["max_new_tokens"], temperature=values["temperature"],
        learning_rate=values["lr"], loss_type=values["loss_type"], beta=values["beta"],
        reward_weights=[1 / 1.2, 0.2 / 1.2], logging_steps=1, save_steps=10_000, report_to="none", seed=0,
        disable_tqdm=True, dataloader_num_workers=0, **cpu_friendly_args(),
    )  # fmt: skip
    timer = StepTimer()
    trainer = GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_dir),
        reward_funcs=[lcs, strict_format],
        args=grpo_config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        callbacks=[timer],
    )
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    return timer.times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--num-generations", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="runs per side (alternating; all timed steps pooled)")
    add_threads_argument(parser)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("transformers").setLevel(logging.ERROR)

    apply_threads(args.threads)
    steps: dict[str, list[tuple[float, float]]] = {"direct": [], "ours": []}
    for _ in range(args.repeats):
        for name, side in (("direct", direct), ("ours", ours)):
            with tempfile.TemporaryDirectory() as tmp:
                steps[name] += side(args, tmp)[args.warmup :]
    wall = {name: statistics.median(t for t, _ in times) for name, times in steps.items()}
    cpu = {name: statistics.median(c for _, c in times) for name, times in steps.items()}
    ratio, cpu_ratio = wall["ours"] / wall["direct"], cpu["ours"] / cpu["direct"]
    print(f"GRPO on tiny / {ENV}: batch {args.batch}, {args.num_generations} generations, "
          f"max_new_tokens {args.max_new_tokens}; {len(steps['ours'])} timed steps per side")  # fmt: skip
    for name in ("direct", "ours"):
        print(f"  {name:<7} median step {wall[name]:6.2f} s wall, {cpu[name]:6.2f} s CPU  "
              f"(wall per step: {', '.join(f'{t:.2f}' for t, _ in steps[name])})")  # fmt: skip
    for label, value in (("wall", ratio), ("CPU", cpu_ratio)):
        verdict = "meets" if value <= TARGET else "misses"
        print(f"  ratio ours/direct ({label}): {value:.2f}x (target <= {TARGET}x: {verdict})")
    print(json.dumps({"bench": "training_overhead", "direct_step_s": wall["direct"], "ours_step_s": wall["ours"],
                      "ratio": ratio, "direct_step_cpu_s": cpu["direct"], "ours_step_cpu_s": cpu["ours"],
                      "cpu_ratio": cpu_ratio, "target": TARGET}))  # fmt: skip


if __name__ == "__main__":
    main()
