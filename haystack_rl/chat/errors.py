"""The errors chat formatting and prompt building raise."""

from __future__ import annotations


class ChatTemplateError(ValueError):
    """The chat template renders the conversation's history differently from what the model saw."""


class ContextLengthError(ValueError):
    """The conversation no longer fits the model's context window (an episode's runner ends it there)."""
