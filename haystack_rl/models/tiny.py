"""
The embedded default model "tiny": a 2.4M-parameter causal LM with a byte-level tokenizer, built locally.

"tiny" carries weights shipped in this package (`weights/`), made by `tools.tiny_model.pretrain` from the
random initialization on synthetic reading skills (`tools.tiny_model.skills`). "tiny-init" is that random
initialization itself: a model that has learned nothing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

TINY_MODEL_NAME = "tiny"
TINY_INIT_MODEL_NAME = "tiny-init"
#: The model names built on demand, each with whether it carries the shipped (pretrained) weights.
BUILT_IN_MODELS = {TINY_MODEL_NAME: True, TINY_INIT_MODEL_NAME: False}
TINY_MODEL_VERSION = "tiny-v4"
#: The pretrained weights (fp16; the built model is fp32), produced by `python -m tools.tiny_model.pretrain`.
SHIPPED_WEIGHTS = Path(__file__).parent / "weights" / "tiny-v4.safetensors"
CACHE_ENV_VAR = "HAYSTACK_RL_CACHE"

#: Special tokens, in id order after the 256 byte tokens.
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
EOS_TOKEN = "<|im_end|>"
PAD_TOKEN = "<|endoftext|>"
VOCAB_SIZE = 320  # 256 bytes + 3 special tokens, padded to a multiple of 64

#: ChatML / Hermes (Qwen-style) chat template. Prefix-preserving: each message renders on its own (only the
#: system header depends on `messages[0]` and `tools`), an assistant turn ends with `<|im_end|>` (the EOS)
#: followed by a newline, and the generation prompt is exactly the start of an assistant turn.
CHAT_TEMPLATE = (
    "{%- if tools %}"
    "{{- '<|im_start|>system\\n' }}"
    "{%- if messages and messages[0].role == 'system' %}{{- messages[0].content + '\\n\\n' }}{%- endif %}"
    "{{- '# Tools\\n\\nYou may call one or more functions. Their signatures, within <tools></tools>:\\n<tools>' }}"
    "{%- for tool in tools %}{{- '\\n' }}{{- tool | tojson }}{%- endfor %}"
    "{{- '\\n</tools>\\n\\nFor each call, answer with a JSON object within <tool_call></tool_call> tags:\\n"
    '<tool_call>{"name": <function-name>, "arguments": <args-json-object>}</tool_call><|im_end|>\\n\' }}'
    "{%- elif messages and messages[0].role == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- set content = message.content if message.content is string else '' %}"
    "{%- if message.role == 'system' and loop.first %}"
    "{%- elif message.role == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}{%- generation %}{{- content }}"
    "{%- for tool_call in message.tool_calls or [] %}"
    "{%- set call = tool_call.function if tool_call.function is defined else tool_call %}"
    "{%- if call.arguments is string %}"
    "{{- '<tool_call>{\"name\": ' + (call.name | tojson) + ', \"arguments\": ' + call.arguments + '}</tool_call>' }}"
    "{%- else %}"
    "{{- '<tool_call>' + ({'name': call.name, 'arguments': call.arguments} | tojson) + '</tool_call>' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{{- '<|im_end|>' }}{%- endgeneration %}{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def default_cache_root() -> Path:
    """The cache root: `$HAYSTACK_RL_CACHE` if set, else `platformdirs.user_cache_dir("haystack_rl")`."""
    override = os.environ.get(CACHE_ENV_VAR)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("haystack_rl"))


def default_tiny_model_path(seed: int = 0, pretrained: bool = True) -> Path:
    """Where `ensure_tiny_model` caches the tiny model (pretrained, or initialized with `seed`)."""
    if pretrained:
        return default_cache_root() / "models" / TINY_MODEL_VERSION
    name = f"{TINY_MODEL_VERSION}-init" if seed == 0 else f"{TINY_MODEL_VERSION}-init-seed{seed}"
    return default_cache_root() / "models" / name


def ensure_tiny_model(path: str | Path | None = None, seed: int = 0, pretrained: bool = True) -> Path:
    """
    Build the tiny model once (or reuse the built one) and return its directory.

    The directory loads with `AutoModelForCausalLM.from_pretrained`, `AutoTokenizer.from_pretrained` and
    `transformers serve`. The build goes to a temporary sibling directory that is renamed into place, so a
    concurrent or interrupted build never leaves a half-written model behind.

    Usage example:
    ```python
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from haystack_rl.models import ensure_tiny_model

    path = ensure_tiny_model()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    ```

    :param path: Target directory; defaults to `<cache root>/models/tiny-v4` (see `default_cache_root`).
    :param seed: Seed of the random initialization (the build is deterministic given the seed); only with
        `pretrained=False`.
    :param pretrained: Load the shipped pretrained weights (the default) rather than a random initialization.
    :returns: The model directory.
    """
    if pretrained and seed != 0:
        raise ValueError("seed picks a random initialization: pass pretrained=False with it")
    target = Path(path) if path is not None else default_tiny_model_path(seed, pretrained)
    if _is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        build_tiny_model(tmp, seed=seed, pretrained=pretrained)
        try:
            os.rename(tmp, target)
        except OSError:
            if not _is_complete(target):  # not a lost race: a stale, incomplete directory is in the way
                shutil.rmtree(target, ignore_errors=True)
                os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _is_complete(path: Path) -> bool:
    return (
        (path / "config.json").is_file()
        and (path / "tokenizer.json").is_file()
        and ((path / "model.safetensors").is_file() or (path / "pytorch_model.bin").is_file())
    )


def build_tokenizer() -> object:
    """The byte-level `PreTrainedTokenizerFast`: one token per byte, plus the ChatML special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {char: index for index, char in enumerate(_bytes_to_unicode())}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(list(SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        bos_token=None,
        unk_token=None,
        chat_template=CHAT_TEMPLATE,
        model_max_length=2048,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )


def build_tiny_model(path: str | Path, seed: int = 0, pretrained: bool = True) -> Path:
    """Write the tiny model (tokenizer, config, shipped or seeded random weights, generation config) into `path`."""
    import torch
    from safetensors.torch import load_file
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    path = Path(path)
    tokenizer = build_tokenizer()
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}  # type: ignore[attr-defined]
    config = LlamaConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=192,
        intermediate_size=768,
        num_hidden_layers=4,
        num_attention_heads=6,
        num_key_value_heads=6,  # full multi-head: with GQA (2 kv heads) the copy circuit formed far slower
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=ids[EOS_TOKEN],
        pad_token_id=ids[PAD_TOKEN],
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    if pretrained:
        weights = {name: tensor.float() for name, tensor in load_file(str(SHIPPED_WEIGHTS)).items()}
        missing, unexpected = model.load_state_dict(weights, strict=False)
        if unexpected or set(missing) - {"lm_head.weight"}:  # lm_head is tied to the embeddings, not stored
            raise RuntimeError(f"{SHIPPED_WEIGHTS} does not fit tiny: missing {missing}, unexpected {unexpected}")
        model.tie_weights()
    model.generation_config = GenerationConfig(eos_token_id=ids[EOS_TOKEN], pad_token_id=ids[PAD_TOKEN], do_sample=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)  # type: ignore[attr-defined]
    return path


def resolve_model(name_or_path: str | Path) -> Path:
    """
    Turn a model name into a local directory: "tiny" and "tiny-init" are built on demand, a directory is itself.

    :raises ValueError: for anything else (there is no model hub on these machines).
    """
    if str(name_or_path) in BUILT_IN_MODELS:
        return ensure_tiny_model(pretrained=BUILT_IN_MODELS[str(name_or_path)])
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    raise ValueError(
        f"model {str(name_or_path)!r} is not a local directory, and there is no model hub on this machine: "
        "pass 'tiny', 'tiny-init' or a local HF model directory"
    )


def _bytes_to_unicode() -> list[str]:
    """GPT-2's byte -> printable character map, as a list indexed by byte value."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars: dict[int, str] = {}
    extra = 0
    for byte in range(256):
        if byte in printable:
            chars[byte] = chr(byte)
        else:
            chars[byte] = chr(256 + extra)
            extra += 1
    return [chars[byte] for byte in range(256)]
