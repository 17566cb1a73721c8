"""The embedded tiny model: deterministic local build, Auto* loading, byte-level tokenizer, chat template."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from haystack_rl.models import ensure_tiny_model, resolve_model
from haystack_rl.models import tiny as tiny_module
from tools.tiny_model.pretrain import skill_accuracy


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


def test_build_is_deterministic_given_seed(tmp_path: Path) -> None:
    first = ensure_tiny_model(tmp_path / "first", seed=0, pretrained=False)
    again = ensure_tiny_model(tmp_path / "again", seed=0, pretrained=False)
    other = ensure_tiny_model(tmp_path / "other", seed=1, pretrained=False)
    reference, same, different = _weights(first), _weights(again), _weights(other)
    assert reference.keys() == same.keys() == different.keys()
    assert all(torch.equal(reference[name], same[name]) for name in reference)
    assert not all(torch.equal(reference[name], different[name]) for name in reference)
    assert (again / "tokenizer.json").read_bytes() == (first / "tokenizer.json").read_bytes()


def test_tiny_carries_the_shipped_weights(tiny_model_path: Path) -> None:
    shipped = load_file(str(tiny_module.SHIPPED_WEIGHTS))
    built = _weights(tiny_model_path)
    assert all(built[name].dtype == torch.float32 for name in built)
    assert all(torch.equal(built[name], shipped[name].float()) for name in shipped)
    with pytest.raises(ValueError, match="pretrained=False"):
        ensure_tiny_model(seed=1)


def test_tiny_can_read_and_tiny_init_cannot(tiny_model_path: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    trained = skill_accuracy(AutoModelForCausalLM.from_pretrained(tiny_model_path), tokenizer, per_skill=8)
    untrained = skill_accuracy(AutoModelForCausalLM.from_pretrained(resolve_model("tiny-init")), tokenizer, per_skill=8)
    assert min(trained.values()) >= 0.85, trained
    assert max(untrained.values()) < 0.1, untrained


def test_loads_with_auto_classes(tiny_model_path: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    assert tokenizer.eos_token == "<|im_end|>"
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    assert tokenizer.pad_token_id is not None and tokenizer.pad_token_id != tokenizer.eos_token_id
    assert 1_000_000 < sum(p.numel() for p in model.parameters()) < 4_000_000
    assert model.config.max_position_embeddings >= 2048
    ids = tokenizer("hello", return_tensors="pt")["input_ids"]
    assert model(input_ids=ids).logits.shape == (1, 5, model.config.vocab_size)


def test_tokenizer_is_byte_level_and_lossless(tiny_model_path: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    text = "héllo  wörld\n\t e\u0301 🙂 <x>"  # includes a decomposed é: no normalization may touch it
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert ids == list(text.encode("utf-8"))
    assert tokenizer.decode(ids) == text
    specials = tokenizer("<|im_start|>user\nhi<|im_end|>", add_special_tokens=False)["input_ids"]
    assert specials[0] == tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert specials[-1] == tokenizer.eos_token_id
    assert len(specials) == 1 + len("user\nhi") + 1


def test_cached_build_is_reused(tiny_model_path: Path) -> None:
    stamp = (tiny_model_path / "model.safetensors").stat().st_mtime_ns
    assert ensure_tiny_model() == tiny_model_path
    assert resolve_model("tiny") == tiny_model_path
    assert (tiny_model_path / "model.safetensors").stat().st_mtime_ns == stamp


def test_cache_root_honours_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HAYSTACK_RL_CACHE", str(tmp_path))
    assert tiny_module.default_tiny_model_path() == tmp_path / "models" / "tiny-v4"
    assert tiny_module.default_tiny_model_path(seed=3, pretrained=False) == tmp_path / "models" / "tiny-v4-init-seed3"


def test_resolve_model(tmp_path: Path) -> None:
    assert resolve_model(tmp_path) == tmp_path
    assert resolve_model(str(tmp_path)) == tmp_path
    with pytest.raises(ValueError, match="no model hub on this machine"):
        resolve_model("Qwen/Qwen3-0.6B")


def test_interrupted_build_leaves_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def broken(path: Path, seed: int = 0, pretrained: bool = True) -> Path:
        (Path(path) / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(tiny_module, "build_tiny_model", broken)
    with pytest.raises(KeyboardInterrupt):
        ensure_tiny_model(tmp_path / "model")
    assert list(tmp_path.iterdir()) == []


def test_stale_partial_directory_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "config.json").write_text("{}")  # a half-written directory from some other tool
    assert ensure_tiny_model(target) == target
    assert (target / "model.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_concurrent_builds_are_safe(tmp_path: Path) -> None:
    target = tmp_path / "model"
    results: list[Path] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            results.append(ensure_tiny_model(target))
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and results == [target, target]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    AutoModelForCausalLM.from_pretrained(target)


MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "add 1 and 2"},
    {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "id": "c0", "function": {"name": "add", "arguments": {"a": 1, "b": {"c": [2]}}}},
        {"type": "function", "id": "c1", "function": {"name": "noop", "arguments": "{\"x\": 1}"}},
    ]},
    {"role": "tool", "content": "3", "tool_call_id": "c0", "name": "add"},
    {"role": "tool", "content": "ok", "tool_call_id": "c1", "name": "noop"},
    {"role": "assistant", "content": "It is 3."},
    {"role": "user", "content": "thanks"},
    {"role": "assistant", "content": "You're welcome."},
]  # fmt: skip
TOOLS = [{"type": "function", "function": {"name": "add", "description": "Add.", "parameters": {"type": "object"}}}]


@pytest.mark.parametrize("tools", [None, TOOLS])
def test_chat_template_is_prefix_preserving(tiny_model_path: Path, tools: list | None) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)

    def render(messages: list[dict], generation_prompt: bool) -> str:
        return tokenizer.apply_chat_template(
            messages, tools=tools, tokenize=False, add_generation_prompt=generation_prompt
        )

    for k in range(1, len(MESSAGES)):
        longer = render(MESSAGES[: k + 1], False)
        assert longer.startswith(render(MESSAGES[:k], False))
        if MESSAGES[k]["role"] == "assistant":
            prompt = render(MESSAGES[:k], True)
            assert longer.startswith(prompt) and prompt.endswith("<|im_start|>assistant\n")
            assert longer[len(prompt) :].endswith("<|im_end|>\n")


def test_chat_template_renders_tools_and_tool_calls(tiny_model_path: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    text = tokenizer.apply_chat_template(MESSAGES, tools=TOOLS, tokenize=False)
    assert text.startswith("<|im_start|>system\nYou are terse.\n\n# Tools")
    assert '{"type": "function", "function": {"name": "add", "description": "Add."' in text
    assert '<tool_call>{"name": "add", "arguments": {"a": 1, "b": {"c": [2]}}}</tool_call>' in text
    assert '<tool_call>{"name": "noop", "arguments": {"x": 1}}</tool_call><|im_end|>' in text
    assert "<|im_start|>tool\n3<|im_end|>\n<|im_start|>tool\nok<|im_end|>\n" in text


def test_chat_template_marks_exactly_the_assistant_replies(tiny_model_path: Path) -> None:
    """`{% generation %}` markers: TRL's `assistant_only_loss` trains a whole conversation in one row."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    out = tokenizer.apply_chat_template(
        MESSAGES, tools=TOOLS, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    marked = "".join(tokenizer.decode([t]) for t, m in zip(out["input_ids"], out["assistant_masks"]) if m)
    assert marked == (
        '<tool_call>{"name": "add", "arguments": {"a": 1, "b": {"c": [2]}}}</tool_call>'
        '<tool_call>{"name": "noop", "arguments": {"x": 1}}</tool_call><|im_end|>'
        "It is 3.<|im_end|>You're welcome.<|im_end|>"
    )
