"""Policy generators: Haystack chat generators, some of which return token ids and logprobs."""

from haystack_rl.chat import ChatTemplateError, ContextLengthError
from haystack_rl.generators.function import FunctionChatGenerator
from haystack_rl.generators.openai_compatible import OpenAICompatibleChatGenerator
from haystack_rl.generators.token import TokenChatGenerator

__all__ = ["ChatTemplateError", "ContextLengthError", "FunctionChatGenerator", "OpenAICompatibleChatGenerator",
           "TokenChatGenerator"]  # fmt: skip
