"""ToolEnv: the model calls Haystack tools; results come back as tool messages until it answers."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from haystack import default_from_dict, default_to_dict
from haystack.dataclasses import ChatMessage, ToolCall
from haystack.tools import Tool, ToolsType, flatten_tools_or_toolsets
from haystack.tools.serde_utils import deserialize_tools_or_toolset_inplace, serialize_tools_or_toolset

from haystack_rl.environments.base import State
from haystack_rl.environments.multi_turn import MultiTurnEnv
from haystack_rl.rubrics.rubric import Rubric

if TYPE_CHECKING:
    from haystack.components.agents import Agent

    from haystack_rl.tasks import TaskSource

#: Name of the stand-in `ToolCall` that malformed tool-call text is answered with.
MALFORMED_CALL_NAME = "invalid_tool_call"
#: Kinds of tool errors counted in `state.info["tool_errors"]`.
ERROR_KINDS = ("malformed", "unknown_tool", "invalid_arguments", "tool_error", "timeout")
#: A scripted policy, as baselines are: `(messages so far, rng) -> reply text or ChatMessage`.
ScriptedPolicy = Callable[[list[ChatMessage], random.Random], "str | ChatMessage"]
#: Qualities of scripted tool-use demonstrations (the `quality` knob of `demonstrate`): the expert's
#: transcript; the expert with a novice move `NOISY_NOVICE_PROB` of the time; the novice alone, who calls the
#: tools in the right syntax but with unskilled arguments, or answers without using the result.
DEMO_QUALITIES = ("expert", "noisy", "format-only")
NOISY_NOVICE_PROB = 0.3


class ToolEnv(MultiTurnEnv):
    """
    A multi-turn environment where the model calls Haystack tools (`Tool`, `Toolset`, `ComponentTool`,
    `PipelineTool`; functions become tools with `create_tool_from_function` or `@tool`).

    Each reply's tool calls are executed with `Tool.invoke` (in a thread, at most `tool_timeout_s`
    seconds each) and answered with one tool message per call. A reply without tool calls is the final
    answer and ends the episode (stop reason "done"); `max_turns` bounds the episode ("max_turns").

    Nothing the model emits crashes the episode. Each of these becomes a tool message with
    `error=True` and a text saying what to fix, and is counted in `state.info["tool_errors"][kind]`:
    malformed tool-call text (`reply.meta["tool_call_errors"]`, as `TokenChatGenerator` reports
    it; kind "malformed", answered with a stand-in call named `invalid_tool_call`, and the episode goes
    on even when the reply held no well-formed call), an unknown tool ("unknown_tool"), arguments that
    violate the tool's JSON schema, missing, extra or ill-typed ("invalid_arguments"), a raising tool
    ("tool_error") and a tool slower than `tool_timeout_s` ("timeout"; its thread is abandoned, not killed).
    `state.info["tool_calls"]` counts every attempted call, malformed ones included.

    Stateful tools use Haystack's own `inputs_from_state` (state key -> parameter name): those
    parameters must not be in the tool's schema (`create_tool_from_function` and `ComponentTool` leave
    them out), the model cannot set them, and ToolEnv injects `state.info[state_key]` (set it in
    `setup_state`, e.g. a per-rollout sandbox directory or document ids).

    Tool calls run inside `step`, which the rollout loop calls from its event loop: keep tools quick.

    Usage example:
    ```python
    from haystack.dataclasses import ChatMessage, ToolCall
    from haystack.tools import create_tool_from_function
    from haystack_rl import ToolEnv

    def add(a: int, b: int) -> int:
        \"\"\"Add two integers.\"\"\"
        return a + b

    env = ToolEnv(tools=[create_tool_from_function(add)], dataset=[{"prompt": "2+3?", "answer": "5"}])
    messages, state = env.reset(env.examples()[0], seed=0)
    call = ToolCall(tool_name="add", arguments={"a": 2, "b": 3}, id="c0")
    results, done = env.step(state, ChatMessage.from_assistant(tool_calls=[call]))
    assert results[0].tool_call_result.result == "5" and not done
    results, done = env.step(state, ChatMessage.from_assistant(tool_calls=[ToolCall(tool_name="mul", arguments={})]))
    assert results[0].tool_call_result.error and state.info["tool_errors"]["unknown_tool"] == 1
    assert env.step(state, ChatMessage.from_assistant("5"))[1] is True
    ```

    :param tools: The tools, as handed to the policy (kept in the `tools` attribute).
    :param dataset: Training examples (dicts with a `prompt`).
    :param eval_dataset: Evaluation examples (default: the training set).
    :param system_prompt: Optional system prompt.
    :param rubric: Scores finished rollouts.
    :param max_turns: Most model replies per episode.
    :param tool_timeout_s: Most seconds one tool call may take.
    :param baselines: Scripted policies by name (`--model baseline:NAME`; an `oracle` one gives SFT
        demonstrations). Not serialized.
    """

    name = "tool_env"

    def __init__(
        self,
        tools: ToolsType,
        dataset: list[dict[str, Any]] | None = None,
        eval_dataset: list[dict[str, Any]] | None = None,
        system_prompt: str | None = None,
        rubric: Rubric | None = None,
        max_turns: int = 10,
        tool_timeout_s: float = 10.0,
        baselines: Mapping[str, ScriptedPolicy] | None = None,
    ) -> None:
        super().__init__(dataset=dataset, eval_dataset=eval_dataset, system_prompt=system_prompt, rubric=rubric,
                         max_turns=max_turns)  # fmt: skip
        if tool_timeout_s <= 0:
            raise ValueError(f"{self.name}: tool_timeout_s must be > 0, got {tool_timeout_s}")
        self.tools = tools
        self.tool_timeout_s = tool_timeout_s
        self._baselines = dict(baselines or {})
        self._tools_by_name: dict[str, Tool] = {}
        for tool in flatten_tools_or_toolsets(tools):
            if tool.name in self._tools_by_name:
                raise ValueError(f"{self.name}: two tools are named {tool.name!r}; tool names must be unique")
            hidden = set((tool.inputs_from_state or {}).values()) & set(tool.parameters.get("properties", {}))
            if hidden:
                raise ValueError(
                    f"{self.name}: tool {tool.name!r} takes {sorted(hidden)} from state but also lists them in "
                    "its schema; remove them from `parameters` so the model cannot set them"
                )
            self._tools_by_name[tool.name] = tool

    @classmethod
    def from_agent(
        cls,
        agent: Agent | str | Path,
        dataset: TaskSource,
        rubric: Rubric | str = "exact_match",
        eval_dataset: TaskSource | None = None,
        tool_timeout_s: float = 10.0,
        baselines: Mapping[str, ScriptedPolicy] | None = None,
        name: str | None = None,
    ) -> ToolEnv:
        """
        The tool environment of a Haystack `Agent`: its own tools, system prompt and step limit
        (`max_agent_steps` -> `max_turns`), so there is no second definition to keep in sync.

        Usage example:
        ```python
        from haystack_rl import ToolEnv

        env = ToolEnv.from_agent("pipelines/search_agent.yml", [{"prompt": "Who founded X?", "answer": "Y"}])
        assert env.tools[0].name == "search" and env.max_turns == 6
        ```

        :param agent: An `Agent`, or the path of a YAML file holding one (a pipeline, or an eval pipeline
            whose policy is the Agent).
        :param dataset: Tasks with a `prompt` (and an `answer` for answer rewards): rows, a JSONL/JSON/CSV
            path, or a `datasets.Dataset` (see `haystack_rl.tasks.load_tasks`).
        :param rubric: A `Rubric`, or the name of an answer reward for `tool_use_rubric` (`exact_match`,
            `numeric_match`, `numeric_closeness`, `token_f1`: the final `<answer>` against the `answer` column).
        :param eval_dataset: Evaluation tasks (default: the training tasks).
        :param tool_timeout_s: Most seconds one tool call may take.
        :param baselines: Scripted policies (an `oracle` gives SFT demonstrations).
        :param name: Name in results (default: the YAML file's stem, or "agent").
        """
        from haystack_rl.agents import AgentDefinitionError, load_agent
        from haystack_rl.rubrics.tool_rewards import tool_use_rubric
        from haystack_rl.tasks import load_tasks

        loaded = load_agent(agent)
        where = str(agent) if isinstance(agent, str | Path) else "agent"
        if loaded.user_prompt:
            raise AgentDefinitionError(f"{where}: agents with a user_prompt template are not supported; put the "
                                       "whole question in the dataset's prompt column")  # fmt: skip
        if not loaded.tools:
            raise AgentDefinitionError(f"{where}: the Agent has no tools; a tool environment needs at least one")
        required = ("prompt",) if isinstance(rubric, Rubric) else ("prompt", "answer")
        env = cls(
            tools=loaded.tools,
            dataset=load_tasks(dataset, required),
            eval_dataset=load_tasks(eval_dataset, required) if eval_dataset is not None else None,
            system_prompt=loaded.system_prompt,
            rubric=rubric if isinstance(rubric, Rubric) else tool_use_rubric(rubric),
            max_turns=loaded.max_agent_steps,
            tool_timeout_s=tool_timeout_s,
            baselines=baselines,
        )
        env.name = name or (Path(agent).stem if isinstance(agent, str | Path) else "agent")
        return env

    def baselines(self) -> dict[str, Any]:
        """The scripted policies given to the constructor."""
        return dict(self._baselines)

    def play_scripted(self, policy: ScriptedPolicy, example: dict[str, Any], seed: int) -> list[ChatMessage]:
        """
        The whole transcript of a scripted policy (a baseline's shape) on `example`, e.g. for `demonstrate`;
        its `rng` is seeded from `seed` and the example id, apart from the environment's own.
        """
        _, state = self.reset(example, seed)
        rng = random.Random(f"{seed}/{example.get('id')}/scripted")
        done = False
        while not done:
            reply = policy(list(state.messages), rng)
            _, done = self.step(state, ChatMessage.from_assistant(reply) if isinstance(reply, str) else reply)
        state.info.pop("stop_reason", None)
        return list(state.messages)

    # --- episode -----------------------------------------------------------------------------------
    def reset(self, example: dict[str, Any], seed: int) -> tuple[list[ChatMessage], State]:
        """Start an episode; `state.info` gets zeroed `tool_calls` and `tool_errors` counters."""
        messages, state = super().reset(example, seed)
        state.info.setdefault("tool_calls", 0)
        state.info.setdefault("tool_errors", {kind: 0 for kind in ERROR_KINDS})
        return messages, state

    def env_response(self, state: State, reply: ChatMessage) -> tuple[list[ChatMessage], bool]:
        """Run the reply's tool calls (one tool message each); a reply without any call ends the episode."""
        malformed = list(reply.meta.get("tool_call_errors") or [])
        if not reply.tool_calls and not malformed:
            return [], True
        results: list[ChatMessage] = []
        for index, problem in enumerate(malformed):
            origin = ToolCall(tool_name=MALFORMED_CALL_NAME, arguments={}, id=f"malformed_{state.turn}_{index}")
            text = (f"Error: could not read a tool call: {problem}. Write each call as "
                    '<tool_call>{"name": "<tool name>", "arguments": {...}}</tool_call> with valid JSON.')  # fmt: skip
            results.append(self._error(state, "malformed", text, origin))
        for call in reply.tool_calls:
            results.append(self.call_tool(state, call))
        return results, False

    def call_tool(self, state: State, call: ToolCall) -> ChatMessage:
        """Execute one tool call and return its tool message (an error message on any failure)."""
        tool = self._tools_by_name.get(call.tool_name)
        if tool is None:
            known = ", ".join(sorted(self._tools_by_name)) or "none"
            return self._error(state, "unknown_tool", f"Error: unknown tool {call.tool_name!r}. Available tools: "
                               f"{known}.", call)  # fmt: skip
        problem = validate_arguments(tool, call.arguments)
        if problem:
            return self._error(state, "invalid_arguments", f"Error: invalid arguments for tool {tool.name!r}: "
                               f"{problem}. Expected: {_signature(tool)}.", call)  # fmt: skip
        arguments = dict(call.arguments)
        for state_key, parameter in (tool.inputs_from_state or {}).items():
            if state_key not in state.info:
                raise KeyError(f"{self.name}: tool {tool.name!r} reads state key {state_key!r}, which state.info "
                               "lacks; set it in setup_state")  # fmt: skip
            arguments[parameter] = state.info[state_key]
        outcome: dict[str, Any] = {}

        def invoke() -> None:
            try:
                outcome["result"] = tool.invoke(**arguments)
            except BaseException as error:  # noqa: BLE001 - handed to the episode as an error message
                outcome["error"] = error

        worker = threading.Thread(target=invoke, name=f"tool-{tool.name}", daemon=True)
        worker.start()
        worker.join(self.tool_timeout_s)
        if worker.is_alive():
            return self._error(state, "timeout", f"Error: tool {tool.name!r} did not finish within "
                               f"{self.tool_timeout_s:g} s. Try a simpler call.", call)  # fmt: skip
        if "error" in outcome:
            error = outcome["error"]
            cause = error.__cause__ or error
            return self._error(state, "tool_error", f"Error: tool {tool.name!r} failed: {type(cause).__name__}: "
                               f"{cause}. Check the arguments and try again.", call)  # fmt: skip
        state.info["tool_calls"] = state.info.get("tool_calls", 0) + 1
        return ChatMessage.from_tool(tool_result_text(tool, outcome.get("result")), origin=call)

    def _error(self, state: State, kind: str, text: str, origin: ToolCall) -> ChatMessage:
        state.info["tool_calls"] = state.info.get("tool_calls", 0) + 1
        errors = state.info.setdefault("tool_errors", {k: 0 for k in ERROR_KINDS})
        errors[kind] = errors.get(kind, 0) + 1
        return ChatMessage.from_tool(text, origin=origin, error=True)

    # --- serialization -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Serialize (tools through Haystack's tool serialization; function tools must be module-level)."""
        return default_to_dict(
            self,
            tools=serialize_tools_or_toolset(self.tools),
            dataset=self.dataset,
            eval_dataset=self.eval_dataset,
            system_prompt=self.system_prompt,
            rubric=self.rubric.to_dict(),
            max_turns=self.max_turns,
            tool_timeout_s=self.tool_timeout_s,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ToolEnv:
        """Deserialize."""
        params = dict(data.get("init_parameters", {}))
        deserialize_tools_or_toolset_inplace(params, key="tools")
        if isinstance(params.get("rubric"), dict):
            params["rubric"] = Rubric.from_dict(params["rubric"])
        return default_from_dict(cls, {**data, "init_parameters": params})


def demonstration_policy(
    quality: str, expert: ScriptedPolicy, novice: ScriptedPolicy, noise: float = NOISY_NOVICE_PROB
) -> ScriptedPolicy:
    """
    The scripted policy of a demonstration `quality` (see `DEMO_QUALITIES`): `expert`, `novice`
    ("format-only"), or each reply from the novice with probability `noise` and else the expert ("noisy").
    """
    if quality == "expert":
        return expert
    if quality == "format-only":
        return novice
    if quality != "noisy":
        raise ValueError(f"unknown demonstration quality {quality!r}; use one of {', '.join(DEMO_QUALITIES)}")

    def noisy(messages: list[ChatMessage], rng: random.Random) -> str | ChatMessage:
        return novice(messages, rng) if rng.random() < noise else expert(messages, rng)

    return noisy


def validate_arguments(tool: Tool, arguments: dict[str, Any]) -> str | None:
    """
    Check tool-call arguments against the tool's JSON schema; returns what is wrong, or None.

    Missing required and unexpected arguments are reported by name (an argument not in the schema's
    `properties` is unexpected even when the schema allows additional properties: the model must not
    reach hidden or state-injected parameters); types and other constraints go through `jsonschema`.
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
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - jsonschema ships with haystack-ai
        return None
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
    if error is None:
        return None
    where = ".".join(str(part) for part in error.absolute_path)
    return f"{where + ': ' if where else ''}{error.message}"


def tool_result_text(tool: Tool, result: Any) -> str:
    """
    A tool result as the text of a tool message: the tool's `outputs_to_string` (`source` and/or
    `handler`) when set, else strings as they are and anything else as JSON (`to_dict` where available).
    """
    config = tool.outputs_to_string or {}
    if "source" in config and isinstance(result, dict):
        result = result.get(config["source"])
    handler = config.get("handler")
    if callable(handler):
        result = handler(result)
    if isinstance(result, str):
        return result
    return json.dumps(result, ensure_ascii=False, default=_jsonable)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return str(value)


def _signature(tool: Tool) -> str:
    properties = tool.parameters.get("properties", {})
    required = set(tool.parameters.get("required", []))
    parts = [f"{name}: {spec.get('type', 'any')}{'' if name in required else ' (optional)'}"
             for name, spec in properties.items()]  # fmt: skip
    return f"{tool.name}({', '.join(parts)})"
