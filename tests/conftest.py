"""Shared pytest fixtures."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# The tiny model builds once per test session into a throwaway cache (docstring examples use it too),
# unless HAYSTACK_RL_CACHE already points at a cache to reuse.
if not os.environ.get("HAYSTACK_RL_CACHE"):
    _cache = tempfile.mkdtemp(prefix="haystack_rl_test_cache-")
    os.environ["HAYSTACK_RL_CACHE"] = _cache
    atexit.register(shutil.rmtree, _cache, True)

TEMPLATES = Path(__file__).parent / "templates"


@pytest.fixture(scope="session")
def tiny_model_path() -> Path:
    """The tiny model directory (built once per session)."""
    from haystack_rl.models import ensure_tiny_model

    return ensure_tiny_model()


@pytest.fixture(scope="session")
def qwen3_think_template() -> Path:
    """A Qwen3-style template that strips earlier <think> blocks (written for these tests)."""
    return TEMPLATES / "qwen3_think.jinja"


@pytest.fixture
def make_generator(tiny_model_path: Path) -> Callable[..., Any]:
    """
    Factory for warmed-up `TokenChatGenerator`s on the tiny model (`max_new_tokens`, `temperature` and `top_p`
    may be given directly: they go into `generation_kwargs`; `max_new_tokens` defaults to 12).
    """
    from haystack_rl.generators import TokenChatGenerator

    def make(**kwargs: Any) -> TokenChatGenerator:
        generation_kwargs = {"max_new_tokens": 12, **kwargs.pop("generation_kwargs", {})}
        generation_kwargs.update({key: kwargs.pop(key) for key in ("max_new_tokens", "temperature", "top_p")
                                  if key in kwargs})  # fmt: skip
        generator = TokenChatGenerator(model=str(tiny_model_path), generation_kwargs=generation_kwargs, **kwargs)
        generator.warm_up()
        return generator

    return make


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Any, list[str]], None]]:
    """Make a generator's backend "sample" the given texts, in order (special tokens like <|im_end|> allowed)."""

    def script(generator: Any, completions: list[str]) -> None:
        from haystack_rl.backends import Completion, finish_reason

        queue = list(completions)

        def fake_generate(requests: list[Any]) -> list[Any]:
            results = []
            for _ in requests:
                ids = generator.chat.encode(queue.pop(0))
                results.append(Completion(ids, [-0.5] * len(ids), finish_reason(ids, generator.backend.stop_ids)))
            return results

        monkeypatch.setattr(generator.backend, "generate", fake_generate)

    yield script
