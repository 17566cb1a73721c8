"""Teach the randomly initialized `tiny` to read (see `skills`): a plain, resumable next-token training loop."""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tools.tiny_model.skills import SKILLS, Conversation, sample_conversation


@dataclass
class PretrainConfig:
    """Settings of `pretrain` (the defaults made the shipped weights)."""

    steps: int = 1000
    batch_size: int = 8
    lr: float = 2e-3
    warmup_steps: int = 50
    min_lr_ratio: float = 0.3  # the cosine ends here: copying forms late, and needs a learning rate then
    weight_decay: float = 0.01
    max_length: int = 1024
    seed: int = 0
    save_every: int = 250


def encode(tokenizer: Any, conversation: Conversation, max_length: int) -> tuple[list[int], list[int]]:
    """Token ids and labels of a conversation: the assistant replies are trained, the rest is -100."""
    messages, tools = conversation
    out = tokenizer.apply_chat_template(
        messages, tools=tools, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = list(out["input_ids"])[:max_length], list(out["assistant_masks"])[:max_length]
    return ids, [token if keep else -100 for token, keep in zip(ids, mask)]


def batch_for_step(tokenizer: Any, config: PretrainConfig, step: int) -> tuple[Any, Any, Any]:
    """
    The batch of `step`: input ids, labels and position ids of `batch_size` rows of up to `max_length` tokens.

    Each row is packed with whole conversations, and the position ids restart at 0 for each (and for the
    padding at the end). Passed without an attention mask, they make transformers attend within each
    conversation only (block-diagonal causal masks), as at inference, where a conversation starts alone at 0.
    The batch depends only on the seed and the step, so a resumed run sees the same data.
    """
    import torch

    rng = random.Random(config.seed * 1_000_003 + step)
    rows: list[tuple[list[int], list[int], list[int]]] = []
    for _ in range(config.batch_size):
        ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        misses = 0
        while misses < 4:  # a conversation that does not fit is dropped; four in a row end the row
            more_ids, more_labels = encode(tokenizer, sample_conversation(rng)[1], config.max_length)
            if ids and len(ids) + len(more_ids) > config.max_length:
                misses += 1
                continue
            ids, labels, positions = ids + more_ids, labels + more_labels, positions + list(range(len(more_ids)))
        rows.append((ids, labels, positions))
    width = max(len(ids) for ids, _, _ in rows)
    input_ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    labels_tensor = torch.full((len(rows), width), -100, dtype=torch.long)
    position_ids = torch.zeros((len(rows), width), dtype=torch.long)
    for row, (ids, targets, positions) in enumerate(rows):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels_tensor[row, : len(ids)] = torch.tensor(targets)
        position_ids[row] = torch.tensor(positions + list(range(width - len(ids))))
    return input_ids, labels_tensor, position_ids


def skill_accuracy(model: Any, tokenizer: Any, per_skill: int = 32, seed: int = 10_000) -> dict[str, float]:
    """
    Per skill, the share of reply tokens the model predicts (top-1, teacher-forced) on held-out conversations.

    Replies that pick "any one" option (`choose_option`) have one token no model can predict.
    """
    import torch

    scores: dict[str, float] = {}
    model.eval()
    with torch.no_grad():
        for name, (generate, _) in SKILLS.items():
            rng = random.Random(seed)
            right = total = 0
            for _ in range(per_skill):
                ids, labels = encode(tokenizer, generate(rng), 2048)
                logits = model(input_ids=torch.tensor([ids])).logits[0, :-1]
                targets = torch.tensor(labels[1:])
                trained = targets != -100
                right += int((logits.argmax(-1)[trained] == targets[trained]).sum())
                total += int(trained.sum())
            scores[name] = right / total
    model.train()
    return scores


def pretrain(init_dir: str | Path, output_dir: str | Path, config: PretrainConfig | None = None) -> Path:
    """
    Train the model in `init_dir` on the skill mixture and save it (model, tokenizer) to `output_dir/final`.

    Checkpoints go to `output_dir/checkpoint` every `save_every` steps; calling again with the same
    `output_dir` resumes from there. A JSONL log of loss and learning rate is written to `output_dir/log.jsonl`.

    Usage example:
    ```python
    from tools.tiny_model.pretrain import PretrainConfig, pretrain
    from haystack_rl.models.tiny import build_tiny_model

    build_tiny_model("init", pretrained=False)
    pretrain("init", "pretrained", PretrainConfig(steps=2, batch_size=2, max_length=256))
    ```
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = config or PretrainConfig()
    output = Path(output_dir)
    checkpoint = output / "checkpoint"
    source = checkpoint if (checkpoint / "state.pt").is_file() else Path(init_dir)
    tokenizer = AutoTokenizer.from_pretrained(init_dir)
    model = AutoModelForCausalLM.from_pretrained(source)
    model.config.use_cache = False
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    start = 0
    if source == checkpoint:
        state = torch.load(checkpoint / "state.pt", weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        start = int(state["step"])

    def lr_at(step: int) -> float:
        if step < config.warmup_steps:
            return config.lr * (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        floor = config.min_lr_ratio
        return config.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))

    output.mkdir(parents=True, exist_ok=True)
    model.train()
    bar = tqdm(range(start, config.steps), initial=start, total=config.steps, desc="pretrain tiny")
    with open(output / "log.jsonl", "a") as log:
        for step in bar:
            started = time.perf_counter()
            input_ids, labels, position_ids = batch_for_step(tokenizer, config, step)
            lr = lr_at(step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = model(input_ids=input_ids, position_ids=position_ids, labels=labels, use_cache=False).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            seconds = time.perf_counter() - started
            record = {"step": step + 1, "loss": loss.item(), "lr": lr, "seconds": seconds}
            log.write(json.dumps(record) + "\n")
            log.flush()
            if (step + 1) % config.save_every == 0 and step + 1 < config.steps:
                _save_checkpoint(model, optimizer, step + 1, checkpoint)
    final = output / "final"
    model.config.use_cache = True
    model.save_pretrained(final)
    tokenizer.save_pretrained(final)
    (final / "pretrain_config.json").write_text(json.dumps(asdict(config), indent=1))
    return final


def _save_checkpoint(model: Any, optimizer: Any, step: int, checkpoint: Path) -> None:
    """Write the checkpoint beside `checkpoint` and swap it in, so an interruption never leaves a torn one."""
    import shutil

    import torch

    staging = checkpoint.with_name(checkpoint.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    torch.save({"optimizer": optimizer.state_dict(), "step": step}, staging / "state.pt")
    old = checkpoint.with_name(checkpoint.name + ".old")
    if checkpoint.exists():
        checkpoint.rename(old)
    staging.rename(checkpoint)
    shutil.rmtree(old, ignore_errors=True)


def export_weights(model_dir: str | Path, target: str | Path) -> Path:
    """Save a trained tiny's weights as the fp16 safetensors file `build_tiny_model` ships (tied head left out)."""
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    state = {name: t.half().contiguous() for name, t in model.state_dict().items() if name != "lm_head.weight"}
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(target))
    return Path(target)


def main(argv: list[str] | None = None) -> None:
    """`python -m tools.tiny_model.pretrain OUTPUT_DIR`: remake the shipped weights (about 35 min on 2 cores)."""
    import argparse

    import torch

    from haystack_rl.models.tiny import build_tiny_model

    defaults = PretrainConfig()
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    init = args.output_dir / "init"
    if not (init / "config.json").is_file():
        build_tiny_model(init, seed=args.seed, pretrained=False)
    final = pretrain(init, args.output_dir, PretrainConfig(steps=args.steps, seed=args.seed))
    weights = export_weights(final, args.output_dir / "tiny-v4.safetensors")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    scores = skill_accuracy(AutoModelForCausalLM.from_pretrained(final), AutoTokenizer.from_pretrained(final))
    print(json.dumps(scores, indent=1))
    print(f"weights: {weights} (copy to haystack_rl/models/weights/ to ship them)")


if __name__ == "__main__":
    main()
