"""Test and benchmark helpers: a mock OpenAI-compatible chat server with fault injection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tools.testing.answers import ANSWERS, reverse_text_answer, tic_tac_toe_answer
    from tools.testing.mock_server import FAULTS, MockChatServer

__all__ = ["ANSWERS", "FAULTS", "MockChatServer", "reverse_text_answer", "tic_tac_toe_answer"]


def __getattr__(name: str) -> Any:
    # imported lazily, so `python -m tools.testing.mock_server` runs the module once, as __main__
    if name in __all__:
        from tools.testing import answers, mock_server

        return getattr(answers if hasattr(answers, name) else mock_server, name)
    raise AttributeError(f"module 'tools.testing' has no attribute {name!r}")
