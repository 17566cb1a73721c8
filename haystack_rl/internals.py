"""
Every use of another library's private API, in one place: what we rely on and why (`tests/test_internals.py`
checks each contract, so a library upgrade that changes one fails loudly there instead of silently elsewhere).

- Haystack: the Agent's tool runner and exit rule (below), so tool episodes behave as the deployed Agent; the
  per-call deserialization allowlist (below), so `check_environment` can round-trip an author's own objects.
- TRL: `AdvantageGRPOTrainer` (`training/advantages.py`) overrides the `GRPOTrainer` methods named in
  `TRL_GRPO_OVERRIDES`, with these parameters; its scoring passes call the fused LM head TRL puts on models
  (`model(..., labels=..., fused_lm_head=True)` -> `.log_probs`, `.entropy`, shifted by one position).
  `backends/trl_vllm.py` reads `trainer.vllm_generation` (`mode`, `vllm_client`, `llm`, `sync_weights`), which
  `GRPOTrainer._generate` syncs before calling a `rollout_func`.
- transformers: `engine/kv_cache.py` passes a KV cache by its argument name (`cache` or `past_key_values`),
  reorders caches in place (`Cache.reorder_cache`) and preallocates `StaticCache`.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any

from haystack.components.agents.state import State as AgentState
from haystack.dataclasses import ChatMessage
from haystack.tools import ToolsType


async def run_tools_like_agent(
    reply: ChatMessage, tools: ToolsType, agent_state: AgentState, raise_on_failure: bool = False, max_workers: int = 4
) -> list[ChatMessage]:
    """
    Run a reply's tool calls exactly as Haystack's `Agent` does (its own `_run_tool_async`): state inputs and
    outputs, string conversion, raw results, async tools, unknown tools and failures answered with error
    tool messages.

    :returns: One tool message per call, in the Agent's order.
    """
    from haystack.components.agents.tool_calling import _run_tool_async

    messages, _ = await _run_tool_async(messages=[reply], state=agent_state, tools=tools,
                                        raise_on_failure=raise_on_failure, max_workers=max_workers)  # fmt: skip
    return list(messages)


def agent_exit_reason(reply: ChatMessage) -> str | None:
    """
    Why Haystack's `Agent` would stop after this reply when it holds no tool call: "text", "length" or
    "content_filter"; None when the Agent would ask the model again (an empty reply) or the reply calls a tool.
    """
    from haystack.components.agents.agent import _get_model_exit_reason

    return _get_model_exit_reason(messages=[reply])


def agent_state_schema(agent: Any) -> dict[str, Any]:
    """The Agent's state schema as its tools see it (`messages` included)."""
    return dict(agent.resolved_state_schema)


def allowed_modules(modules: Iterable[str]) -> AbstractContextManager[None]:
    """Haystack's allowlist extended by `modules` for the `with` block only (what `Pipeline.loads` does per call)."""
    from haystack.core.serialization_security import _deserialization_context

    return _deserialization_context(allowed_modules=list(modules))


#: `GRPOTrainer` methods `AdvantageGRPOTrainer` overrides, with the parameters (after `self`) it relies on.
TRL_GRPO_OVERRIDES: dict[str, tuple[str, ...]] = {
    "_get_per_token_logps_and_entropies": ("model", "input_ids", "attention_mask", "logits_to_keep", "batch_size",
                                           "compute_entropy", "compute_aux_loss"),
    "_calculate_rewards": ("inputs", "prompts", "completions", "completion_ids_list"),
    "_generate_and_score_completions": ("inputs",),
}  # fmt: skip
