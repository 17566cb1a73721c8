"""Pretraining `tiny` on synthetic reading skills: the data and the resumable loop."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer

from haystack_rl.models.tiny import build_tiny_model
from tools.tiny_model import pretrain as pretrain_module
from tools.tiny_model.pretrain import PretrainConfig, batch_for_step, encode, export_weights, pretrain
from tools.tiny_model.skills import SKILLS


def _answer(text: str) -> str:
    match = re.fullmatch(r"<(\w+)>(.*)</\1>", text, flags=re.S)
    return match.group(2) if match else text


@pytest.mark.parametrize("skill", sorted(SKILLS))
def test_every_answer_can_be_read_from_the_conversation(skill: str, tiny_model_path: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    rng = random.Random(0)
    for _ in range(50):
        messages, tools = SKILLS[skill][0](rng)
        ids, labels = encode(tokenizer, (messages, tools), 2048)
        assert any(label != -100 for label in labels)
        for index, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            context = json.dumps([m.get("content") for m in messages[:index]] + [tools], ensure_ascii=False)
            for call in message.get("tool_calls", []):
                assert call["function"]["name"] in context
                assert all(json.dumps(str(value))[1:-1] in context for value in call["function"]["arguments"].values())
            answer = _answer(message["content"])
            if answer:
                assert all(part in context for part in answer.split(", ")), (skill, answer, context)


def test_batches_pack_whole_conversations_and_depend_only_on_the_step(tiny_model_path: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    config = PretrainConfig(batch_size=3, max_length=1024)
    input_ids, labels, positions = batch_for_step(tokenizer, config, 7)
    again = batch_for_step(tokenizer, config, 7)
    assert torch.equal(input_ids, again[0]) and torch.equal(labels, again[1]) and torch.equal(positions, again[2])
    assert not torch.equal(input_ids, batch_for_step(tokenizer, config, 8)[0])
    assert input_ids.shape[1] <= 1024
    starts = positions == 0  # each conversation (and the padding) restarts the positions
    system = tokenizer("<|im_start|>system", add_special_tokens=False)["input_ids"]
    conversation_starts = [
        [int(i) for i in input_ids[row, col : col + len(system)]] == system for row, col in starts.nonzero().tolist()
    ]
    assert sum(conversation_starts) > 2 * config.batch_size  # rows are packed
    assert sum(conversation_starts) >= len(conversation_starts) - config.batch_size  # the rest: padding runs


def test_a_packed_conversation_sees_only_itself(tiny_model_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_path, use_cache=False)  # as `pretrain` trains it
    input_ids, _, positions = batch_for_step(tokenizer, PretrainConfig(batch_size=4, max_length=1024), 0)
    row = next(r for r in range(4) if int(positions[r].eq(0).sum()) >= 3)  # two conversations at least
    second, end = (positions[row].eq(0).nonzero().flatten().tolist() + [positions.shape[1]])[1:3]
    with torch.no_grad():
        packed = model(input_ids=input_ids[row : row + 1], position_ids=positions[row : row + 1]).logits[0]
        alone = model(input_ids=input_ids[row : row + 1, second:end]).logits[0]
    assert not torch.allclose(packed[second:end], model(input_ids=input_ids[row : row + 1]).logits[0, second:end])
    packed = packed[second:end]
    assert torch.allclose(packed, alone, atol=1e-4)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


def test_an_interrupted_pretraining_resumes_to_the_same_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    init = build_tiny_model(tmp_path / "init", pretrained=False)
    config = PretrainConfig(steps=4, batch_size=2, max_length=256, warmup_steps=1, save_every=2)
    straight = pretrain(init, tmp_path / "straight", config)

    real_batch = pretrain_module.batch_for_step

    def interrupted(tokenizer: Any, config: PretrainConfig, step: int) -> Any:
        if step == 3:
            raise KeyboardInterrupt
        return real_batch(tokenizer, config, step)

    monkeypatch.setattr(pretrain_module, "batch_for_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pretrain(init, tmp_path / "resumed", config)
    monkeypatch.setattr(pretrain_module, "batch_for_step", real_batch)
    resumed = pretrain(init, tmp_path / "resumed", config)

    steps = [json.loads(line)["step"] for line in (tmp_path / "resumed" / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 3, 4]  # step 3 ran after the checkpoint of step 2, then again on resume
    reference, result = _weights(straight), _weights(resumed)
    assert all(torch.allclose(reference[name], result[name], atol=1e-6) for name in reference)
    assert not all(torch.equal(reference[name], _weights(init)[name]) for name in reference)

    exported = load_file(str(export_weights(resumed, tmp_path / "tiny.safetensors")))
    assert "lm_head.weight" not in exported and all(t.dtype == torch.float16 for t in exported.values())
