"""Scripted answers for the mock server: functions of a request's messages (OpenAI dicts) returning the reply text."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

Answer = Callable[[list[dict[str, Any]]], str]


def message_text(message: dict[str, Any]) -> str:
    """The text of an OpenAI-format message (a string or a list of content parts)."""
    content = message.get("content") or ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    return next((message_text(m) for m in reversed(messages) if m.get("role") == "user"), "")


def reverse_text_answer(messages: list[dict[str, Any]]) -> str:
    """
    The reverse_text oracle: the last user message reversed, in <reversed_text> tags.

    Usage example:
    ```python
    from tools.testing import reverse_text_answer

    assert reverse_text_answer([{"role": "user", "content": "abc"}]) == "<reversed_text>cba</reversed_text>"
    ```
    """
    return f"<reversed_text>{_last_user_text(messages)[::-1]}</reversed_text>"


def tic_tac_toe_answer(messages: list[dict[str, Any]]) -> str:
    """
    A legal tic-tac-toe move on the board drawn in the last user message (`<move>N</move>`).

    The move is a fixed function of the board (no minimax: it must be cheap). Without a board the
    answer is `<move>5</move>`.
    """
    from haystack_rl_envs.tic_tac_toe import game

    board = game.parse_board(_last_user_text(messages))
    moves = game.legal_moves(board) if board else []
    if not moves:
        return "<move>5</move>"
    return f"<move>{moves[zlib.crc32(board.encode()) % len(moves)]}</move>"  # type: ignore[union-attr]


#: Answer functions by name (for `--answer` and `MockChatServer(answer="...")`).
ANSWERS: dict[str, Answer] = {"reverse_text": reverse_text_answer, "tic_tac_toe": tic_tac_toe_answer}
