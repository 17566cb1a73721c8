"""Bench: seconds of GRPO's scoring pass over one step's calculator rollouts, row by row vs on shared prompts.

Plays `--problems` training problems x `--group` rollouts (every turn, tool calls run) with the model, pads them
into the batch TRL scores (prompts left-padded, completions right-padded), adds TRL's fused LM head and times,
back to back: "plain" (TRL's pass: every row over its whole prompt and completion) and "shared"
(`haystack_rl.training.shared_prompt`: each distinct prompt once, the completions on its KV cache), each as the
loss's forward + backward and as the reference model's no-grad forward. Also prints the largest difference of
the two sides' log-probs.

Usage: python bench/loss_pass.py [--model DIR] [--problems 2] [--group 8] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import torch
from tool_rollouts import play_rollouts
from torch_threads import add_threads_argument, apply_threads

from haystack_rl import load_environment
from haystack_rl.generators.token import TokenChatGenerator
from haystack_rl.models.tiny import resolve_model
from haystack_rl.training.shared_prompt import shared_prompt_logps


def step_batch(generator: TokenChatGenerator, problems: int, group: int) -> tuple[Any, Any, int]:
    """(input ids, attention mask, completion width) of one GRPO step's calculator rollouts."""
    env = load_environment("calculator", num_train_examples=problems)
    rows = [(r.prompt_ids, r.completion_tokens()[0]) for r in play_rollouts(env, generator, problems, group)]
    pad = generator.tokenizer.pad_token_id
    left, right = max(len(p) for p, _ in rows), max(len(c) for _, c in rows)
    ids = [[pad] * (left - len(p)) + p + c + [pad] * (right - len(c)) for p, c in rows]
    mask = [[0] * (left - len(p)) + [1] * (len(p) + len(c)) + [0] * (right - len(c)) for p, c in rows]
    return torch.tensor(ids), torch.tensor(mask), right


def plain_logps(model: Any, ids: Any, mask: Any, keep: int) -> Any:
    """TRL's pass: every row over its whole prompt and completion."""
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, :-keep] = -100
    return model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True).log_probs[:, -keep:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="model directory (or `tiny`)")
    parser.add_argument("--problems", type=int, default=2)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    add_threads_argument(parser)
    args = parser.parse_args()
    apply_threads(args.threads)
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    generator = TokenChatGenerator(model=args.model, generation_kwargs={"max_new_tokens": 128}, max_batch_size=256)
    generator.warm_up()
    ids, mask, keep = step_batch(generator, args.problems, args.group)
    model = AutoModelForCausalLM.from_pretrained(resolve_model(args.model))
    add_fused_lm_head(model, outputs=("log_probs", "entropy"))
    sides = {
        "plain": lambda: plain_logps(model, ids, mask, keep),
        "shared": lambda: shared_prompt_logps(model, ids, mask, keep)[0],  # type: ignore[index]
    }
    parts = ("forward+backward", "no-grad forward")
    seconds: dict[str, dict[str, list[float]]] = {side: {part: [] for part in parts} for side in sides}
    logps: dict[str, Any] = {}
    for _ in range(args.repeats):
        for side, score in sides.items():
            model.zero_grad()
            start = time.perf_counter()
            logps[side] = score()
            logps[side].sum().backward()
            seconds[side]["forward+backward"].append(time.perf_counter() - start)
            with torch.no_grad():
                start = time.perf_counter()
                score()
                seconds[side]["no-grad forward"].append(time.perf_counter() - start)
    difference = (logps["plain"] - logps["shared"]).abs().max().item()
    print(f"calculator, {args.problems} problems x {args.group} rollouts: {ids.size(0)} rows of {ids.size(1)} tokens "
          f"({keep} completion), model {args.model}, torch threads {args.threads}; best of {args.repeats}")  # fmt: skip
    best = {side: {part: min(values) for part, values in parts.items()} for side, parts in seconds.items()}
    for part in parts:
        ratio = best["plain"][part] / best["shared"][part]
        print(f"{part:<17} plain {best['plain'][part]:6.2f} s   shared {best['shared'][part]:6.2f} s   {ratio:5.2f}x")
    print(f"largest log-prob difference: {difference:.2e}")
    print(json.dumps({"seconds": seconds, "best": best, "max_logp_difference": difference, "rows": ids.size(0),
                      "columns": ids.size(1), "completion": keep}))  # fmt: skip


if __name__ == "__main__":
    main()
