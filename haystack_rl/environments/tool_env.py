"""ToolEnv: the model calls Haystack tools, run exactly as a deployed Haystack `Agent` runs them."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from haystack.components.agents.state import State as AgentState
from haystack.dataclasses import ChatMessage
from haystack.tools import Tool, ToolsType, flatten_tools_or_toolsets
from haystack.tools.utils import warm_up_tools

from haystack_rl.environments.base import EpisodeState
from haystack_rl.environments.multi_turn import MultiTurnEnv
from haystack_rl.environments.tool_execution import jsonable, state_keys, tool_use_info, with_timeout
from haystack_rl.internals import agent_exit_reason, run_tools_like_agent
from haystack_rl.rubrics.rubric import Rubric

if TYPE_CHECKING:
    from haystack.components.agents import Agent

    from haystack_rl.tasks import TaskSource

#: A scripted policy, as baselines are: `(messages so far, rng) -> reply text or ChatMessage`.
ScriptedPolicy = Callable[[list[ChatMessage], random.Random], "str | ChatMessage"]
#: Qualities of scripted tool-use demonstrations (the `quality` knob of `demonstrate`): the expert's
#: transcript; the expert with a novice move `NOISY_NOVICE_PROB` of the time; the novice alone, who calls the
#: tools in the right syntax but with unskilled arguments, or answers without using the result.
DEMO_QUALITIES = ("expert", "noisy", "format-only")
NOISY_NOVICE_PROB = 0.3
#: `state.objects` key of the episode's Haystack Agent `State` (what tools read and write).
AGENT_STATE = "agent_state"


class ToolEnv(MultiTurnEnv):
    """
    A multi-turn environment where the model calls Haystack tools (`Tool`, `Toolset`, `ComponentTool`,
    `PipelineTool`; functions become tools with `create_tool_from_function` or `@tool`).

    Tools run exactly as a deployed Haystack `Agent` runs them (its own tool-running code): one tool message
    per call; an unknown tool or a raising tool is answered with an error tool message and the episode goes
    on; `inputs_from_state`/`outputs_to_state`, `outputs_to_string` (one or several outputs), `raw_result`,
    async tools and `warm_up` behave as in the Agent. A reply without tool calls ends the episode as it ends an
    Agent run: a reply with text is the final answer (stop reason "done"; "length" when it was cut), and an
    empty reply asks the model again. **Tool-call text that does not parse is not a call**: the reply is a
    final answer, as in the deployed Agent, and the generator's `meta["tool_call_errors"]` counts it as a
    "malformed" tool error. A call of a tool in `exit_conditions` that succeeds ends the episode, as in the
    Agent. `max_turns` bounds the model replies ("max_turns").

    Each call is limited to `tool_timeout_s` seconds (a training safety the Agent does not have: its thread
    is abandoned and the call answered with an error). `state.info` counts `tool_calls` and `tool_errors` by
    kind (see `tool_execution.tool_use_info`, which the episode player also applies to an Agent's own tools).

    Tools read Agent-state keys from `state.info` (set them in `setup_state`, e.g. a per-rollout sandbox
    directory or document ids); what they write to the state (`outputs_to_state`) is copied back into
    `state.info` (as JSON; the live values stay in `state.objects["agent_state"]`).

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
    assert results[0].tool_call_result.error and not done
    assert env.step(state, ChatMessage.from_assistant("<answer>5</answer>"))[1] is True
    ```

    :param tools: The tools, as handed to the policy (kept in the `tools` attribute).
    :param dataset: Training examples (dicts with a `prompt`).
    :param eval_dataset: Evaluation examples (default: the training set).
    :param system_prompt: Optional system prompt.
    :param rubric: Scores finished rollouts.
    :param max_turns: Most model replies per episode.
    :param tool_timeout_s: Most seconds one tool call may take.
    :param baselines: Scripted policies by name (`--model baseline:NAME`; the first gives "expert" SFT
        demonstrations); module-level functions, so they serialize.
    :param exit_conditions: Tool names whose successful call ends the episode (the Agent's `exit_conditions`).
    :param state_schema: The Agent's `state_schema` (default: every key the tools read or write, any type).
    :param name: Name in results (default: "tool_env").
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
        exit_conditions: list[str] | None = None,
        state_schema: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(dataset=dataset, eval_dataset=eval_dataset, system_prompt=system_prompt, rubric=rubric,
                         max_turns=max_turns, name=name)  # fmt: skip
        if tool_timeout_s <= 0:
            raise ValueError(f"{self.name}: tool_timeout_s must be > 0, got {tool_timeout_s}")
        self.tools = tools
        self.tool_timeout_s = tool_timeout_s
        self.exit_conditions = list(exit_conditions or [])
        self.state_schema = dict(state_schema or {})
        self._baselines = dict(baselines or {})
        flat = flatten_tools_or_toolsets(tools)
        names = [tool.name for tool in flat]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: tool names must be unique, got {names}")
        for tool in flat:
            hidden = set((tool.inputs_from_state or {}).values()) & set(tool.parameters.get("properties", {}))
            if hidden:
                raise ValueError(
                    f"{self.name}: tool {tool.name!r} takes {sorted(hidden)} from state but also lists them in "
                    "its schema; remove them from `parameters` so the model cannot set them"
                )
        self._timed_tools: list[Tool] = [with_timeout(tool, tool_timeout_s) for tool in flat]
        self._warm = False

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
        The tool environment of a Haystack `Agent`: its own tools, system prompt, step limit
        (`max_agent_steps` -> `max_turns`), exit conditions and state schema, so there is no second definition
        to keep in sync.

        Usage example:
        ```python
        from haystack_rl import ToolEnv

        env = ToolEnv.from_agent("pipelines/search_agent.yml", [{"prompt": "Who founded X?", "answer": "Y"}])
        assert env.tools[0].name == "search" and env.max_turns == 6 and env.name == "search_agent"
        ```

        :param agent: An `Agent`, or the path of a YAML file holding one (a pipeline, or an eval pipeline
            whose policy is the Agent).
        :param dataset: Tasks with a `prompt` (and an `answer` for answer rewards): rows, a JSONL/JSON/CSV
            path, or a `datasets.Dataset` (see `haystack_rl.tasks.load_tasks`).
        :param rubric: A `Rubric`, or the name of an answer reward for `tool_use_rubric` (`exact_match`,
            `numeric_match`, `numeric_closeness`, `token_f1`: the final `<answer>` against the `answer` column).
        :param eval_dataset: Evaluation tasks (default: the training tasks).
        :param tool_timeout_s: Most seconds one tool call may take.
        :param baselines: Scripted policies (the first gives "expert" SFT demonstrations).
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
        return cls(
            tools=loaded.tools,
            dataset=load_tasks(dataset, required),
            eval_dataset=load_tasks(eval_dataset, required) if eval_dataset is not None else None,
            system_prompt=loaded.system_prompt,
            rubric=rubric if isinstance(rubric, Rubric) else tool_use_rubric(rubric),
            max_turns=loaded.max_agent_steps,
            tool_timeout_s=tool_timeout_s,
            baselines=baselines,
            exit_conditions=[c for c in loaded.exit_conditions if c != "text"],
            state_schema=loaded.state_schema,
            name=name or (Path(agent).stem if isinstance(agent, str | Path) else "agent"),
        )

    def baselines(self) -> dict[str, Any]:
        """The scripted policies given to the constructor."""
        return dict(self._baselines)

    def warm_up(self) -> None:
        """Warm up the tools once (as the Agent's `warm_up` does)."""
        if not self._warm:
            warm_up_tools(self._timed_tools)
            self._warm = True

    # --- episode -----------------------------------------------------------------------------------
    def step(self, state: EpisodeState, reply: ChatMessage) -> tuple[list[ChatMessage], bool]:
        """Run the reply's tool calls (see the class docstring); blocking twin of `step_async`."""
        from haystack_rl.asyncio_utils import run_sync

        return run_sync(self.step_async(state, reply))

    async def step_async(self, state: EpisodeState, reply: ChatMessage) -> tuple[list[ChatMessage], bool]:
        """Run the reply's tool calls as the Agent would; a reply without any call ends the episode."""
        state.messages.append(reply)
        state.turn += 1
        if not reply.tool_calls:
            state.info.update(tool_use_info(state.messages, self.tools))
            reason = agent_exit_reason(reply)
            if reason is None:  # an empty reply: the Agent asks the model again
                return self._after_response(state, [], False)
            if reason != "text":
                state.info["stop_reason"] = reason
            return self._after_response(state, [], True)
        self.warm_up()
        agent_state = self._agent_state(state)
        agent_state.data["messages"] = list(state.messages)
        results = await run_tools_like_agent(reply, self._timed_tools, agent_state)
        for key in self._output_keys():
            if agent_state.has(key):
                state.info[key] = jsonable(agent_state.get(key))
        state.info.update(tool_use_info([*state.messages, *results], self.tools))
        return self._after_response(state, results, self._exit_called(reply, results))

    def _agent_state(self, state: EpisodeState) -> AgentState:
        """The episode's Agent `State`, made on first use from the schema and `state.info`."""
        if AGENT_STATE not in state.objects:
            schema = {key: {"type": Any} for key in state_keys(self.tools) - {"messages"}}
            schema.update(self.state_schema)
            data = {key: state.info[key] for key in schema if key in state.info}
            state.objects[AGENT_STATE] = AgentState(schema=schema, data=data)
        agent_state: AgentState = state.objects[AGENT_STATE]
        return agent_state

    def _output_keys(self) -> list[str]:
        return [key for tool in flatten_tools_or_toolsets(self.tools) for key in (tool.outputs_to_state or {})]

    def _exit_called(self, reply: ChatMessage, results: list[ChatMessage]) -> bool:
        """Whether a tool of `exit_conditions` was called and did not fail (the Agent's rule)."""
        if not self.exit_conditions:
            return False
        failed = {
            m.tool_call_result.origin.tool_name for m in results if m.tool_call_result and m.tool_call_result.error
        }
        called = [call.tool_name for call in reply.tool_calls if call.tool_name in self.exit_conditions]
        return bool(called) and not (set(called) & failed)


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
