"""SFT warm start: demonstrations from an environment (`demonstrate` or a baseline) through TRL's SFTTrainer."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from pathlib import Path
from typing import Any

from haystack.dataclasses import ChatMessage
from transformers import PrinterCallback

from haystack_rl.chat import tool_specs
from haystack_rl.environments.base import Environment
from haystack_rl.generators.function import FunctionChatGenerator
from haystack_rl.rollout import Rollout
from haystack_rl.runner import derive_seed, play_episode
from haystack_rl.training.callbacks import JsonlMetricsCallback
from haystack_rl.training.checkpoints import last_complete_checkpoint
from haystack_rl.training.config import TrainConfig
from haystack_rl.training.distributed import is_main_process, wait_for_everyone
from haystack_rl.training.rewards import to_trl_messages

logger = logging.getLogger(__name__)

#: Baseline names tried, in order, for `quality: expert` when the environment has no `demonstrate`.
EXPERT_BASELINES = ("oracle", "expert", "minimax")


def demonstrations(
    environment: Environment,
    quality: str = "expert",
    num_examples: int | None = None,
    seed: int = 0,
    per_turn: bool = True,
    unique: bool = False,
) -> list[dict[str, Any]]:
    """
    SFT rows from the environment's training split.

    Uses `environment.demonstrate(example, seed)` when it exists (passing `quality=` when it takes it),
    else plays a baseline: `expert` picks `oracle`/`expert`/`minimax`, any other quality names a baseline.
    Each assistant turn becomes a `{"prompt", "completion"}` row (loss on that reply only); with
    `per_turn=False` a multi-turn transcript stays one `{"messages"}` row (see `_rows`). Tool calls and tool
    results stay in the messages, and a tool environment's rows get a `tools` column (JSON schemas), so SFT
    sees the same rendered prompt as generation. With `unique`, repeated rows are dropped (the first
    of each kept, in order).
    """
    examples = environment.examples("train", num_examples)
    transcripts: list[list[ChatMessage]]
    demonstrate = getattr(environment, "demonstrate", None)
    if callable(demonstrate):
        takes_quality = "quality" in inspect.signature(demonstrate).parameters
        if not takes_quality and quality != "expert":
            raise ValueError(f"{environment.name}: demonstrate() has no quality knob; only 'expert' is possible")
        transcripts = []
        for example in examples:
            episode_seed = derive_seed(seed, example["id"])
            kwargs = {"quality": quality} if takes_quality else {}
            transcripts.append(_as_messages(demonstrate(example, episode_seed, **kwargs)))
    else:
        baselines = environment.baselines()
        name = next((n for n in EXPERT_BASELINES if n in baselines), None) if quality == "expert" else quality
        if name is None or name not in baselines:
            raise ValueError(
                f"{environment.name}: no demonstrations for quality {quality!r}: it has no demonstrate() and "
                f"its baselines are {sorted(baselines) or 'none'}"
            )
        policy = FunctionChatGenerator(baselines[name], name=name)

        async def play_all() -> list[Rollout]:
            return list(
                await asyncio.gather(
                    *(play_episode(environment, policy, ex, derive_seed(seed, ex["id"])) for ex in examples)
                )
            )

        rollouts = asyncio.run(play_all())
        failed = [r for r in rollouts if r.error]
        if failed:
            logger.warning("%d of %d demonstrations failed (first: %s)", len(failed), len(rollouts), failed[0].error)
        transcripts = [r.messages for r in rollouts if not r.error]
    rows = [row for messages in transcripts for row in _rows(messages, per_turn)]
    if unique:
        rows = list({json.dumps(row, sort_keys=True): row for row in rows}.values())  # identical rows: one kept
    specs = tool_specs(getattr(environment, "tools", None))
    if specs:  # rendered into the prompt as in generation (the template's tool preamble), by TRL's SFT
        tools_text = json.dumps(specs)
        rows = [{**row, "tools": tools_text} for row in rows]
    return rows


def _as_conversation(row: dict[str, Any]) -> dict[str, Any]:
    """A prompt/completion row as one `messages` row (other columns, e.g. `tools`, kept)."""
    rest = {key: value for key, value in row.items() if key not in ("prompt", "completion")}
    return {**rest, "messages": row["prompt"] + row["completion"]}


def _as_messages(transcript: Any) -> list[ChatMessage]:
    """A demonstration as messages: a list of ChatMessage/dicts, a `Rollout`, or a dict with `messages`."""
    if isinstance(transcript, Rollout):
        return list(transcript.messages)
    if isinstance(transcript, dict) and "messages" in transcript:
        transcript = transcript["messages"]
    if isinstance(transcript, list):
        return [m if isinstance(m, ChatMessage) else ChatMessage.from_dict(m) for m in transcript]
    raise TypeError(f"demonstrate() returned {type(transcript).__name__}; expected messages or a Rollout")


def _rows(messages: list[ChatMessage], per_turn: bool = True) -> list[dict[str, Any]]:
    """
    SFT rows of one transcript: `{"prompt", "completion"}` per assistant turn (loss on that turn only; any
    chat template works), or one `{"messages"}` row when `per_turn` is False (for templates with
    `{% generation %}` markers, where TRL masks the non-assistant tokens itself).
    """
    turns = [i for i, m in enumerate(messages) if m.is_from("assistant")]
    if len(turns) > 1 and not per_turn:
        return [{"messages": to_trl_messages(messages)}]
    return [
        {"prompt": to_trl_messages(messages[:i]), "completion": to_trl_messages(messages[i : i + 1])} for i in turns
    ]


def run_sft(
    config: TrainConfig,
    environment: Environment,
    model_dir: str,
    output_dir: str | Path,
    resume: bool = False,
    callbacks: list[Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """
    Warm-start `model_dir` on demonstrations; saves to `output_dir/final` and returns (that dir, metrics).

    With `resume`, a finished SFT stage (`output_dir/final` exists) is reused, and an interrupted one
    continues from its last checkpoint.
    """
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer
    from trl.chat_template_utils import has_generation_markers

    output_dir = Path(output_dir)
    final = output_dir / "final"
    if resume and (final / "config.json").exists():
        logger.info("SFT already finished in %s; reusing it", final)
        return str(final), {"sft_reused": True}
    settings = config.sft
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    markers = has_generation_markers(tokenizer.chat_template or "")
    # no more examples demonstrated than the steps can consume (each gives at least one row)
    wanted = settings.num_examples or (settings.steps * settings.batch if settings.steps > 0 else None)
    rows = demonstrations(
        environment, settings.quality, wanted, config.seed, per_turn=not markers, unique=settings.unique
    )
    if not rows:
        raise ValueError(f"{environment.name}: no demonstrations to train on")
    if settings.unique:
        logger.info("SFT on %d distinct demonstrations (of %s training examples)", len(rows), wanted or "all")
    conversational_multi = any("messages" in row for row in rows)
    if conversational_multi:
        rows = [row if "messages" in row else _as_conversation(row) for row in rows]
    kwargs: dict[str, Any] = {
        "output_dir": str(output_dir),
        "max_steps": settings.steps if settings.steps > 0 else -1,
        "num_train_epochs": settings.epochs,
        "learning_rate": settings.lr,
        "per_device_train_batch_size": settings.batch,
        "lr_scheduler_type": "cosine",
        "warmup_steps": min(20, max(1, settings.steps // 10)),
        "logging_steps": max(1, min(10, settings.steps // 20 or 1)),
        "save_steps": config.save_steps,
        "save_total_limit": 2,
        "report_to": "none",
        **cpu_friendly_args(),
        "seed": config.seed,
        "max_length": settings.max_length,
        "assistant_only_loss": conversational_multi,
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
    }
    kwargs.update(settings.extra)
    args = SFTConfig(**kwargs)
    peft_config = lora_config(config) if config.lora.enabled else None
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[JsonlMetricsCallback(output_dir.parent / "metrics.jsonl", "sft"), *(callbacks or [])],
    )
    trainer.remove_callback(PrinterCallback)  # metrics go to metrics.jsonl and the progress display
    check_lengths(trainer.train_dataset, len(rows), settings.max_length, environment.name)
    check_reply_budget(trainer.train_dataset, config, environment.name)
    checkpoint = last_complete_checkpoint(output_dir) if resume else None
    result = trainer.train(resume_from_checkpoint=checkpoint)
    save_on_main(trainer.model, tokenizer, final, merge=True)
    metrics = {f"sft_{k}": v for k, v in result.metrics.items()}
    metrics["sft_examples"] = len(rows)
    return str(final), metrics


def check_lengths(dataset: Any, num_rows: int, max_length: int, name: str) -> None:
    """
    Refuse SFT rows that TRL truncated away, and warn about truncated ones: tokens past `sft.max_length` are
    cut from the end, which is the completion (a tool environment's prompt holds the tool schemas, so it is long).
    """
    lengths = [len(ids) for ids in dataset["input_ids"]] if len(dataset) else []
    if not lengths:
        raise ValueError(f"{name}: all {num_rows} SFT rows were truncated away at sft.max_length={max_length} "
                         "tokens (nothing left to learn); raise sft.max_length")  # fmt: skip
    cut = sum(length >= max_length for length in lengths) + num_rows - len(lengths)
    if cut:
        logger.warning("%s: %d of %d SFT rows reach sft.max_length=%d tokens and lose the end of their completion; "
                       "raise sft.max_length", name, cut, num_rows, max_length)  # fmt: skip


def longest_reply(dataset: Any) -> int:
    """The longest run of trained tokens (one model reply, end token included) in a tokenized SFT dataset."""
    column = next((c for c in ("assistant_masks", "completion_mask") if c in dataset.column_names), None)
    longest = 0
    for mask in dataset[column] if column else []:
        run = 0
        for bit in mask:
            run = run + 1 if bit else 0
            longest = max(longest, run)
    return longest


def check_reply_budget(dataset: Any, config: TrainConfig, name: str) -> None:
    """
    Warn when a demonstrated reply is longer than generation may be: a tool call cut by `max_new_tokens`
    is malformed, so GRPO and evaluation would see only broken replies (and no reward to learn from).
    """
    longest = longest_reply(dataset)
    budgets = {"eval.max_new_tokens": config.eval.max_new_tokens or config.grpo.max_new_tokens}
    if config.grpo.steps > 0:
        budgets["grpo.max_new_tokens"] = config.grpo.max_new_tokens
    short = {key: value for key, value in budgets.items() if value < longest}
    if short:
        logger.warning("%s: demonstrated replies reach %d tokens, but %s: longer generated replies are cut "
                       "(a cut tool call is malformed); raise them", name, longest,
                       ", ".join(f"{k}={v}" for k, v in short.items()))  # fmt: skip


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
