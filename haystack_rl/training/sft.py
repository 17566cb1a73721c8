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
from haystack_rl.training.distributed import is_main_process, wait_for_everyone
from haystack_rl.training.rewards import to_trl_messages

logger = logging.getLogger(__name__)


class DemonstrationSetupError(ValueError):
    """SFT has nothing (right) to learn from; the message names the fix."""


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


def check_row_lengths(tokenizer: Any, rows: list[dict[str, Any]], max_length: int, name: str, sample: int = 32) -> None:
    """
    Refuse SFT rows whose first trained token lies past `sft.max_length` (TRL cuts rows at the end, so such a
    row keeps nothing to learn; a tool environment's prompts hold the tool schemas, so they are long). Checked on a
    sample of rows, before any work.

    :raises DemonstrationSetupError: With the length needed.
    """
    prefixes = []
    for row in rows[:sample]:
        messages = row.get("messages") or row["prompt"] + row["completion"]
        first = next((i for i, m in enumerate(messages) if m["role"] == "assistant"), len(messages))
        tools = json.loads(row["tools"]) if "tools" in row else None
        text = str(tokenizer.apply_chat_template(messages[:first], tools=tools, add_generation_prompt=True,
                                                 tokenize=False))  # fmt: skip
        prefixes.append(len(tokenizer(text, add_special_tokens=False)["input_ids"]))
    if prefixes and min(prefixes) >= max_length:
        raise DemonstrationSetupError(f"{name}: SFT rows reach their first reply only after {min(prefixes)} tokens, "
                                      f"past sft.max_length={max_length}: nothing would be left to learn; raise "
                                      f"sft.max_length above {max(prefixes)}")  # fmt: skip


def check_lengths(dataset: Any, num_rows: int, max_length: int, name: str) -> None:
    """
    Refuse SFT rows that TRL truncated away, and warn about truncated ones: tokens past `sft.max_length` are
    cut from the end, which is the completion (a tool environment's prompt holds the tool schemas, so it is long).
    """
    lengths = [len(ids) for ids in dataset["input_ids"]] if len(dataset) else []
    if not lengths:
        raise DemonstrationSetupError(f"{name}: all {num_rows} SFT rows were truncated away at sft.max_length="
                                      f"{max_length} tokens (nothing left to learn); raise sft.max_length")  # fmt: skip
    cut = sum(length >= max_length for length in lengths) + num_rows - len(lengths)
    if cut:
        logger.warning("%s: %d of %d SFT rows reach sft.max_length=%d tokens and lose the end of their completion; "
                       "raise sft.max_length", name, cut, num_rows, max_length)  # fmt: skip


def reply_lengths(tokenizer: Any, transcripts: list[list[ChatMessage]], tools: Any = None) -> list[int]:
    """
    The length in tokens of each distinct demonstrated reply as the model would generate it (its rendering by
    the chat template, end-of-turn token included, trailing whitespace after it not).
    """
    specs = tool_specs(tools)
    opening = [{"role": "user", "content": "."}]
    prompt = str(tokenizer.apply_chat_template(opening, tools=specs, add_generation_prompt=True, tokenize=False))
    lengths: dict[str, int] = {}
    for messages in transcripts:
        for message in messages:
            if not message.is_from("assistant"):
                continue
            reply = to_trl_messages([message])
            key = json.dumps(reply, sort_keys=True)
            if key in lengths:
                continue
            text = str(tokenizer.apply_chat_template(opening + reply, tools=specs, tokenize=False))
            generated = text[len(prompt) :] if text.startswith(prompt) else str(message.text or "")
            lengths[key] = len(tokenizer(generated.rstrip(), add_special_tokens=False)["input_ids"])
    return list(lengths.values())


def check_reply_budget(lengths: list[int], config: TrainConfig, name: str) -> None:
    """
    Refuse demonstrations with replies longer than generation may be: the model would learn replies that
    `max_new_tokens` cuts (a cut tool call or tagged answer is malformed), so GRPO and evaluation would see only
    broken replies, and SFT would seem to learn nothing.

    :raises DemonstrationSetupError: With the numbers and the setting to raise.
    """
    if not lengths:
        return
    longest = max(lengths)
    budgets = {"eval.max_new_tokens": config.eval.max_new_tokens or config.grpo.max_new_tokens}
    if config.grpo.steps > 0:
        budgets["grpo.max_new_tokens"] = config.grpo.max_new_tokens
    short = {key: value for key, value in budgets.items() if value < longest}
    if short:
        cut = sum(length > min(short.values()) for length in lengths)
        raise DemonstrationSetupError(
            f"{name}: {cut} of {len(lengths)} distinct demonstrated replies are longer than "
            f"{' and '.join(f'{k}={v}' for k, v in short.items())} (the longest: {longest} tokens, end token "
            f"included), so generation would cut them; raise {' and '.join(short)} to at least {longest}"
        )


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
