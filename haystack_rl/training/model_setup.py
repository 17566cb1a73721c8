"""Model set-up and saving shared by SFT and GRPO: CPU-friendly arguments, the LoRA config, plain model directories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from haystack_rl.training.config import TrainConfig
from haystack_rl.training.distributed import is_main_process, wait_for_everyone


def cpu_friendly_args() -> dict[str, Any]:
    """TrainingArguments for CPU runs: TRL defaults bf16 and gradient checkpointing on, both slow on CPU."""
    import torch

    on_cpu = not torch.cuda.is_available()
    return {"use_cpu": on_cpu, "bf16": not on_cpu, "gradient_checkpointing": not on_cpu}


def lora_config(config: TrainConfig) -> Any:
    """The peft `LoraConfig` from the config's `lora` section."""
    from peft import LoraConfig

    lora = config.lora
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
    )


def save_on_main(model: Any, tokenizer: Any, path: str | Path, merge: bool = True) -> Path:
    """`save_plain_model` on the main process; every process returns once the directory is written."""
    if is_main_process():
        save_plain_model(model, tokenizer, path, merge)
    wait_for_everyone()
    return Path(path)


def save_plain_model(model: Any, tokenizer: Any, path: str | Path, merge: bool = True) -> Path:
    """
    Save a plain HF model directory (weights, config, generation config, tokenizer, chat template).

    A peft model is merged into its base weights first when `merge`; otherwise its adapter is saved
    (a directory peft loads, not a plain model).
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    to_save = model
    if hasattr(model, "merge_and_unload") and merge:
        import copy

        to_save = copy.deepcopy(model).merge_and_unload()
    if getattr(to_save.config, "use_cache", None) is False:  # training turns the KV cache off; generation wants it
        to_save.config.use_cache = True
    to_save.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
