"""
Generation backends: prompt token ids and sampling settings in, completion ids + logprobs + finish reason out.

Implementations: the in-process engine (`haystack_rl.engine.Engine`, the default) and an OpenAI-compatible
server that returns token ids (`OpenAITokenBackend`, e.g. vLLM's, for exact-token evaluation over HTTP).
"""

from haystack_rl.backends.base import Completion, GenerationBackend, GenerationRequest, finish_reason
from haystack_rl.backends.batching import MicroBatcher
from haystack_rl.backends.openai_tokens import OpenAITokenBackend

__all__ = [
    "Completion",
    "GenerationBackend",
    "GenerationRequest",
    "MicroBatcher",
    "OpenAITokenBackend",
    "finish_reason",
]
