"""
Generation backends: prompt token ids and sampling settings in, completion ids + logprobs + finish reason out.

Implementations: the in-process engine (`haystack_rl.engine.Engine`, the default), TRL's vLLM in server or
colocate mode (`TRLVLLMBackend`, for training), and an OpenAI-compatible server that returns token ids
(`OpenAITokenBackend`, e.g. vLLM's, for exact-token evaluation over HTTP).
"""

from haystack_rl.backends.base import Completion, GenerationBackend, GenerationRequest, finish_reason
from haystack_rl.backends.batching import MicroBatcher
from haystack_rl.backends.openai_tokens import OpenAITokenBackend
from haystack_rl.backends.trl_vllm import TRLVLLMBackend, trainer_backend

__all__ = [
    "Completion",
    "GenerationBackend",
    "GenerationRequest",
    "MicroBatcher",
    "OpenAITokenBackend",
    "TRLVLLMBackend",
    "finish_reason",
    "trainer_backend",
]
