"""Haystack chat messages and tools as the dicts Hugging Face chat templates render."""

from __future__ import annotations

from typing import Any

from haystack.dataclasses import ChatMessage
from haystack.tools import ToolsType, flatten_tools_or_toolsets


def tool_specs(tools: ToolsType | None) -> list[dict[str, Any]] | None:
    """Tools as the JSON schemas chat templates render (`{"type": "function", "function": ...}`), None for none."""
    flat = flatten_tools_or_toolsets(tools)
    if not flat:
        return None
    return [{"type": "function", "function": dict(tool.tool_spec)} for tool in flat]


def to_hf_message(message: ChatMessage) -> dict[str, Any]:
    """A Haystack `ChatMessage` as the dict Hugging Face chat templates expect (tool calls and results included)."""
    role = message.role.value
    if role == "tool":
        result = message.tool_call_result
        if result is None:
            return {"role": "tool", "content": message.text or ""}
        content = result.result
        if not isinstance(content, str):
            content = "\n".join(getattr(part, "text", "") for part in content)
        return {"role": "tool", "content": content, "tool_call_id": result.origin.id, "name": result.origin.tool_name}
    data: dict[str, Any] = {"role": role, "content": "\n".join(message.texts)}
    if role == "assistant":
        if message.tool_calls:
            data["tool_calls"] = [
                {"type": "function", "id": call.id, "function": {"name": call.tool_name, "arguments": call.arguments}}
                for call in message.tool_calls
            ]
        if message.reasoning is not None:
            data["reasoning_content"] = message.reasoning.reasoning_text
    return data
