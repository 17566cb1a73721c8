"""
Every use of another library's private API, in one place: what we rely on and why (`tests/test_internals.py`
checks each contract, so a library upgrade that changes one fails loudly there instead of silently elsewhere).
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
