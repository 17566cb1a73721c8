"""SFT warm start on demonstrations (`demonstrate`, a scripted policy or a JSONL), through TRL's SFTTrainer."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from haystack.dataclasses import ChatMessage
from transformers import PrinterCallback

from haystack_rl.chat import tool_specs
from haystack_rl.environments.base import DemonstrationError, Environment
from haystack_rl.episode import derive_seed
from haystack_rl.rollout import Rollout
from haystack_rl.training.callbacks import JsonlMetricsCallback
from haystack_rl.training.checkpoints import last_complete_checkpoint
from haystack_rl.training.config import TrainConfig
from haystack_rl.training.model_setup import cpu_friendly_args, lora_config, save_on_main
from haystack_rl.training.preflight import (
    DemonstrationSetupError,
    check_lengths,
    check_reply_budget,
    check_row_lengths,
    reply_lengths,
)
from haystack_rl.training.rewards import to_trl_messages

logger = logging.getLogger(__name__)


def demonstrations(
    environment: Environment,
    quality: str = "expert",
    num_examples: int | None = None,
    seed: int = 0,
    per_turn: bool = True,
    unique: bool = False,
    source: str | None = None,
) -> list[dict[str, Any]]:
    """
    SFT rows from demonstrations on the environment's training split.

    Transcripts come from `source` when given (a JSONL file of transcripts, `{"messages": [...]}` a line, or a
    scripted policy `path/to/file.py:function` / `module:function` played on each training example), else
    from `environment.demonstrate(example, seed, quality)`. Each assistant turn becomes a `{"prompt",
    "completion"}` row (loss on that reply only); with `per_turn=False` a multi-turn transcript stays one
    `{"messages"}` row (see `_rows`). Tool calls and tool results stay in the messages, and a tool
    environment's rows get a `tools` column (JSON schemas), so SFT sees the same rendered prompt as
    generation. With `unique`, repeated rows are dropped (the first of each kept, in order).

    :raises DemonstrationSetupError: When there is nothing to demonstrate, saying how to fix it.
    """
    found = demonstration_transcripts(environment, quality, num_examples, seed, source)
    return demonstration_rows(environment, found, per_turn, unique)


def demonstration_rows(
    environment: Environment, transcripts: list[list[ChatMessage]], per_turn: bool = True, unique: bool = False
) -> list[dict[str, Any]]:
    """
    The SFT rows of demonstration transcripts (see `demonstrations`); a pipeline episode's generator calls each
    give their own rows (a call's prompt is its own messages, not the calls before it).
    """
    from haystack_rl.environments.pipeline_env import split_calls

    rows = [row for messages in transcripts for call in split_calls(messages) for row in _rows(call, per_turn)]
    if unique:
        rows = list({json.dumps(row, sort_keys=True): row for row in rows}.values())  # identical rows: one kept
    specs = tool_specs(getattr(environment, "tools", None))
    if specs:  # rendered into the prompt as in generation (the template's tool preamble), by TRL's SFT
        tools_text = json.dumps(specs)
        rows = [{**row, "tools": tools_text} for row in rows]
    return rows


def demonstration_transcripts(
    environment: Environment,
    quality: str = "expert",
    num_examples: int | None = None,
    seed: int = 0,
    source: str | None = None,
) -> list[list[ChatMessage]]:
    """The transcripts behind `demonstrations` (see there)."""
    if source and Path(source).suffix in (".jsonl", ".json"):
        return read_transcripts(Path(source), num_examples)
    examples = environment.examples("train", num_examples)
    if source:
        from haystack_rl.trust import load_callable

        policy = load_callable(source)
        return [environment.play_scripted(policy, example, derive_seed(seed, example["id"])) for example in examples]
    out: list[list[ChatMessage]] = []
    for example in examples:
        try:
            out.append(_as_messages(environment.demonstrate(example, derive_seed(seed, example["id"]), quality)))
        except DemonstrationError as error:
            raise DemonstrationSetupError(f"{error}; set sft.demonstrations to a scripted policy (module:function) "
                                          "or a JSONL of transcripts, or sft.enabled: false") from None  # fmt: skip
    return out


def read_transcripts(path: Path, limit: int | None = None) -> list[list[ChatMessage]]:
    """
    Transcripts from a JSONL file: one `{"messages": [...]}` object a line, messages as Haystack writes them
    (`ChatMessage.to_dict`, e.g. a `results.jsonl`) or as `{"role", "content"}` dicts.
    """
    if not path.is_file():
        raise DemonstrationSetupError(f"sft.demonstrations: file not found: {path}")
    out: list[list[ChatMessage]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            out.append([_message(m) for m in record["messages"]])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise DemonstrationSetupError(
                f"{path}:{number}: not a transcript ({type(error).__name__}: {error}); write one "
                '{"messages": [{"role": ..., "content": ...}, ...]} a line'
            ) from None
        if limit is not None and len(out) >= limit > 0:
            break
    if not out:
        raise DemonstrationSetupError(f"{path}: no transcripts in the file")
    return out


def _message(data: dict[str, Any]) -> ChatMessage:
    if "role" in data and "content" in data and isinstance(data["content"], str) and len(data) <= 3:
        role, text = data["role"], data["content"]
        builders = {"system": ChatMessage.from_system, "user": ChatMessage.from_user,
                    "assistant": ChatMessage.from_assistant}  # fmt: skip
        if role not in builders:
            raise ValueError(f"role {role!r}: only system, user and assistant messages are read as role/content")
        return builders[role](text)
    return ChatMessage.from_dict(data)


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


def sft_rows(config: TrainConfig, environment: Environment, model_dir: str) -> list[dict[str, Any]]:
    """
    The SFT rows of a run (see `demonstrations`), checked before any work starts: there are some, and no
    demonstrated reply is longer than generation may be (`check_reply_budget`).

    :raises DemonstrationSetupError: Saying what to fix.
    """
    from transformers import AutoTokenizer
    from trl.chat_template_utils import has_generation_markers

    settings = config.sft
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    # no more examples demonstrated than the steps can consume (each gives at least one row)
    wanted = settings.num_examples or (settings.steps * settings.batch if settings.steps > 0 else None)
    found = demonstration_transcripts(environment, settings.quality, wanted, config.seed, settings.demonstrations)
    if not any(m.is_from("assistant") for messages in found for m in messages):
        raise DemonstrationSetupError(f"{environment.name}: the demonstrations hold no assistant reply to learn from")
    tools = getattr(environment, "tools", None)
    check_reply_budget(reply_lengths(tokenizer, found, tools), config, environment.name)
    markers = has_generation_markers(tokenizer.chat_template or "")
    rows = demonstration_rows(environment, found, per_turn=not markers, unique=settings.unique)
    check_row_lengths(tokenizer, rows, settings.max_length, environment.name)
    if settings.unique:
        logger.info("SFT on %d distinct demonstrations (of %s training examples)", len(rows), wanted or "all")
    return rows


def run_sft(
    config: TrainConfig,
    environment: Environment,
    model_dir: str,
    output_dir: str | Path,
    resume: bool = False,
    callbacks: list[Any] | None = None,
    rows: list[dict[str, Any]] | None = None,
) -> tuple[str, dict[str, Any]]:
    """
    Warm-start `model_dir` on demonstrations; saves to `output_dir/final` and returns (that dir, metrics).

    :param rows: The SFT rows (default: `sft_rows`).
    With `resume`, a finished SFT stage (`output_dir/final` exists) is reused, and an interrupted one
    continues from its last checkpoint.
    """
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    output_dir = Path(output_dir)
    final = output_dir / "final"
    if resume and (final / "config.json").exists():
        logger.info("SFT already finished in %s; reusing it", final)
        return str(final), {"sft_reused": True}
    settings = config.sft
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = rows if rows is not None else sft_rows(config, environment, model_dir)
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
        "report_to": config.report_to,
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
    checkpoint = last_complete_checkpoint(output_dir) if resume else None
    result = trainer.train(resume_from_checkpoint=checkpoint)
    save_on_main(trainer.model, tokenizer, final, merge=True)
    metrics = {f"sft_{k}": v for k, v in result.metrics.items()}
    metrics["sft_examples"] = len(rows)
    return str(final), metrics
