"""
Chat formatting: chat templates, Haystack messages as template dicts, token-in/token-out prompt building, and
tool-call parsing per model family (`tool_parsers`).

Shared by every token-returning backend (the in-process engine, vLLM, an OpenAI-compatible token server):
the prompt ids are built here, once, the same way whatever generates the reply. Needs no torch.
"""

from haystack_rl.chat.errors import ChatTemplateError, ContextLengthError
from haystack_rl.chat.messages import to_hf_message, tool_specs
from haystack_rl.chat.prompt import HISTORY_MODES, ChatFormat, HistoryMode, load_tokenizer, stop_token_ids

__all__ = [
    "HISTORY_MODES",
    "ChatFormat",
    "ChatTemplateError",
    "ContextLengthError",
    "HistoryMode",
    "load_tokenizer",
    "stop_token_ids",
    "to_hf_message",
    "tool_specs",
]
