"""Policy generators: Haystack chat generators, some of which return token ids and logprobs."""

from haystack_rl.generators.function import FunctionChatGenerator

__all__ = ["FunctionChatGenerator"]
