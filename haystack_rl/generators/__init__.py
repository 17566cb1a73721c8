"""Policy generators: Haystack chat generators, some of which return token ids and logprobs."""

from haystack_rl.generators.function import FunctionChatGenerator
from haystack_rl.generators.transformers import ChatTemplateError, ContextLengthError, TransformersChatGenerator

__all__ = ["ChatTemplateError", "ContextLengthError", "FunctionChatGenerator", "TransformersChatGenerator"]
