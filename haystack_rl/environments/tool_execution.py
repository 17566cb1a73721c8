"""
Tool calls in episodes: run as Haystack's `Agent` runs them, with a per-call timeout, and counted by error kind.

The same transcript whether an episode came from `haystack-rl eval`, a GRPO step or the deployed Agent: tools
execute through the Agent's own code path (`haystack_rl.internals.run_tools_like_agent`), and the tool-use
figures of a rollout (`tool_use_info`) are read off its transcript, whoever ran the tools.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from collections.abc import Sequence
from typing import Any

from haystack.dataclasses import ChatMessage
from haystack.tools import Tool, ToolsType, flatten_tools_or_toolsets

#: Kinds of tool errors counted in `info["tool_errors"]`: tool-call text that does not parse ("malformed", as
#: the generator reports it in `meta["tool_call_errors"]`), a call of a tool that does not exist, arguments
#: that break the tool's JSON schema, a raising tool, and a tool slower than the environment's timeout.
ERROR_KINDS = ("malformed", "unknown_tool", "invalid_arguments", "tool_error", "timeout")
_TIMEOUT_TEXT = "did not finish within"


class ToolTimeoutError(TimeoutError):
    """A tool call ran past its time limit (its thread is abandoned, not killed)."""


def with_timeout(tool: Tool, timeout_s: float) -> Tool:
    """
    A copy of `tool` whose calls fail with `ToolTimeoutError` after `timeout_s` seconds (sync calls run in a
    daemon thread that is left behind; async calls are cancelled). The schema, name and state mappings stay.
    """
    timed = copy.copy(tool)
    function, async_function = tool.function, tool.async_function
    message = f"tool {tool.name!r} {_TIMEOUT_TEXT} {timeout_s:g} s; try a simpler call"
    if function is not None:

        def call_with_timeout(**kwargs: Any) -> Any:
            outcome: dict[str, Any] = {}

            def target() -> None:
                try:
                    outcome["result"] = function(**kwargs)
                except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
                    outcome["error"] = error

            worker = threading.Thread(target=target, name=f"tool-{tool.name}", daemon=True)
            worker.start()
            worker.join(timeout_s)
            if worker.is_alive():
                raise ToolTimeoutError(message)
            if "error" in outcome:
                raise outcome["error"]
            return outcome.get("result")

        timed.function = call_with_timeout
    if async_function is not None:

        async def call_with_timeout_async(**kwargs: Any) -> Any:
            try:
                return await asyncio.wait_for(async_function(**kwargs), timeout_s)
            except TimeoutError:
                raise ToolTimeoutError(message) from None

        timed.async_function = call_with_timeout_async
    return timed


def state_keys(tools: ToolsType | None) -> set[str]:
    """The Agent-state keys tools read (`inputs_from_state`) or write (`outputs_to_state`)."""
    keys: set[str] = set()
    for tool in flatten_tools_or_toolsets(tools):
        keys |= set(tool.inputs_from_state or {}) | set(tool.outputs_to_state or {})
    return keys


def validate_arguments(tool: Tool, arguments: dict[str, Any]) -> str | None:
    """
    Check tool-call arguments against the tool's JSON schema; returns what is wrong, or None.

    Missing required and unexpected arguments are reported by name; types and other constraints go through
    `jsonschema`.
    """
    schema = tool.parameters or {}
    properties = schema.get("properties", {})
    missing = [name for name in schema.get("required", []) if name not in arguments]
    unexpected = [name for name in arguments if name not in properties]
    problems = []
    if missing:
        problems.append(f"missing required argument(s) {', '.join(repr(n) for n in missing)}")
    if unexpected:
        problems.append(f"unexpected argument(s) {', '.join(repr(n) for n in unexpected)}")
    if problems:
        return "; ".join(problems)
    import jsonschema

    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
    if error is None:
        return None
    where = ".".join(str(part) for part in error.absolute_path)
    return f"{where + ': ' if where else ''}{error.message}"


def tool_use_info(messages: Sequence[ChatMessage], tools: ToolsType | None) -> dict[str, Any]:
    """
    The tool-use figures of a transcript: `tool_calls` (every attempted call, malformed ones included) and
    `tool_errors` by kind (see `ERROR_KINDS`).

    Usage example:
    ```python
    from haystack.dataclasses import ChatMessage, ToolCall
    from haystack.tools import create_tool_from_function
    from haystack_rl.environments.tool_execution import tool_use_info

    def add(a: int, b: int) -> int:
        \"\"\"Add two integers.\"\"\"
        return a + b

    call = ToolCall(tool_name="mul", arguments={}, id="c0")
    messages = [ChatMessage.from_assistant(tool_calls=[call]),
                ChatMessage.from_tool("Tool 'mul' not found.", origin=call, error=True)]
    info = tool_use_info(messages, [create_tool_from_function(add)])
    assert info["tool_calls"] == 1 and info["tool_errors"]["unknown_tool"] == 1
    ```
    """
    by_name = {tool.name: tool for tool in flatten_tools_or_toolsets(tools)}
    errors = dict.fromkeys(ERROR_KINDS, 0)
    calls = 0
    for message in messages:
        if message.is_from("assistant"):
            malformed = len(message.meta.get("tool_call_errors") or [])
            calls += malformed
            errors["malformed"] += malformed
        result = message.tool_call_result if message.is_from("tool") else None
        if result is None:
            continue
        calls += 1
        if result.error:
            errors[_error_kind(result.origin.tool_name, result.origin.arguments, str(result.result), by_name)] += 1
    return {"tool_calls": calls, "tool_errors": errors}


def _error_kind(name: str, arguments: dict[str, Any], text: str, tools: dict[str, Tool]) -> str:
    tool = tools.get(name)
    if tool is None:
        return "unknown_tool"
    if _TIMEOUT_TEXT in text:
        return "timeout"
    if validate_arguments(tool, arguments):
        return "invalid_arguments"
    return "tool_error"


def jsonable(value: Any) -> Any:
    """`value` as JSON can hold it (objects through `to_dict`, anything else as text), for `state.info`."""
    return json.loads(json.dumps(value, ensure_ascii=False, default=_to_json))


def _to_json(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, set | tuple):
        return list(value)
    return str(value)
