"""PipelineEnv: an episode is one run of a Haystack pipeline with an LLM inside; the policy plays that LLM."""

from __future__ import annotations

import contextvars
import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haystack import Pipeline, component
from haystack.dataclasses import ChatMessage

from haystack_rl.environments.base import Environment, EpisodeState
from haystack_rl.environments.tool_execution import jsonable
from haystack_rl.rubrics.rubric import Rubric

#: `state.info` key holding every component's outputs (JSON), for reward functions to read.
OUTPUTS = "outputs"
#: `state.info` key counting the calls of the trained generator.
CALLS = "generator_calls"
#: Meta key on the first message of each generator call in a transcript (its call number).
CALL_MARK = "pipeline_call"


@dataclass
class _EpisodeCalls:
    """The policy and the episode that the `PolicySlot` of a running pipeline answers for."""

    policy: Any
    state: EpisodeState
    generation_kwargs: dict[str, Any] = field(default_factory=dict)

    async def call(
        self, slot: str, messages: list[ChatMessage], generation_kwargs: dict[str, Any] | None, tools: Any
    ) -> Any:
        from haystack_rl.episode import call_policy, derive_seed

        state = self.state
        kwargs = {**self.generation_kwargs, **(generation_kwargs or {}),
                  "seed": derive_seed(state.seed, state.rollout_index, state.turn)}  # fmt: skip
        policy = self.policy[slot] if isinstance(self.policy, dict) else self.policy
        reply = await call_policy(policy, list(messages), kwargs, tools)
        marked = [_marked(messages[0], state.turn), *messages[1:]] if messages else []
        state.messages.extend([*marked, reply])
        state.turn += 1
        state.info[CALLS] = state.turn
        return reply


def _marked(message: ChatMessage, call: int) -> ChatMessage:
    """A copy of a call's first message whose meta says where the call starts (see `split_calls`)."""
    data = message.to_dict()
    data["meta"] = {**data.get("meta", {}), CALL_MARK: call}
    return ChatMessage.from_dict(data)


def split_calls(messages: list[ChatMessage]) -> list[list[ChatMessage]]:
    """
    A pipeline episode's transcript as its generator calls (each call's messages and reply); any other
    transcript as one part.
    """
    parts: list[list[ChatMessage]] = []
    for message in messages:
        if CALL_MARK in message.meta or not parts:
            parts.append([])
        parts[-1].append(message)
    return parts


_EPISODE: contextvars.ContextVar[_EpisodeCalls | None] = contextvars.ContextVar("haystack_rl_episode", default=None)


@component
class PolicySlot:
    """
    Stands in a pipeline for the chat generator being trained: each call goes to the policy of the episode that
    runs the pipeline (many episodes may run the same pipeline at once), and is recorded in that episode.

    Usage example:
    ```python
    from haystack_rl.environments.pipeline_env import PolicySlot

    slot = PolicySlot("answerer")  # PipelineEnv puts it in place of the generator component it trains
    assert "messages" in slot.__haystack_input__._sockets_dict
    ```

    :param name: The name of the component it stands in for.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    @component.output_types(replies=list[ChatMessage])
    def run(
        self, messages: list[ChatMessage], generation_kwargs: dict[str, Any] | None = None, tools: Any = None
    ) -> dict[str, Any]:
        """Blocking twin of `run_async`."""
        from haystack_rl.asyncio_utils import run_sync

        result: dict[str, Any] = run_sync(self.run_async(messages, generation_kwargs, tools))
        return result

    @component.output_types(replies=list[ChatMessage])
    async def run_async(
        self, messages: list[ChatMessage], generation_kwargs: dict[str, Any] | None = None, tools: Any = None
    ) -> dict[str, Any]:
        """Ask the running episode's policy for one reply to `messages`."""
        episode = _EPISODE.get()
        if episode is None:
            raise RuntimeError("PolicySlot answers only inside a PipelineEnv episode (played by the episode player)")
        return {"replies": [await episode.call(self.name, messages, generation_kwargs, tools)]}


class PipelineEnv(Environment):
    """
    A Haystack pipeline with an LLM inside (e.g. query rewrite -> BM25 retrieval -> answer) as an environment:
    one episode is one run of the pipeline on a task, with the chat generator named `generator` played by the
    policy. Every call of that generator is recorded (its messages, its reply and, from a token-returning
    generator, its token ids), so a model can be evaluated and trained inside the very pipeline it is
    deployed in; every component's outputs land in `rollout.info["outputs"]` (as JSON), so a reward can read
    what the retriever found or which branch a router took.

    `inputs` maps each pipeline input `"component.socket"` to the task column that feeds it (a column name, or
    a constant with `{"value": ...}`); by default each open input takes the task column of its own name.
    Deploying is the same pipeline YAML with the generator's model path changed. `rollout.completion` is the
    last reply of the generator. To evaluate the pipeline as it is (its own generators), pass `own_generators`
    as the policy.

    Usage example:
    ```python
    from haystack import Pipeline
    from haystack.components.builders import ChatPromptBuilder
    from haystack.dataclasses import ChatMessage
    from haystack_rl import RolloutRunner, Rubric
    from haystack_rl.environments.pipeline_env import PipelineEnv
    from haystack_rl.generators import FunctionChatGenerator

    pipeline = Pipeline()
    pipeline.add_component("prompt", ChatPromptBuilder(template=[ChatMessage.from_user("Shout: {{ word }}")],
                                                       required_variables=["word"]))
    pipeline.add_component("llm", FunctionChatGenerator(lambda messages, rng: "HI"))
    pipeline.connect("prompt.prompt", "llm.messages")

    def shouted(rollout):
        return float(rollout.completion == rollout.example["word"].upper())

    env = PipelineEnv(pipeline, generator="llm", inputs={"prompt.word": "word"}, dataset=[{"word": "hi"}],
                      rubric=Rubric.from_functions([shouted]))
    policy = FunctionChatGenerator(lambda messages, rng: messages[-1].text.split(": ")[1].upper())
    rollout = RolloutRunner(env, policy).run()["rollouts"][0]
    assert rollout.reward == 1.0 and rollout.info["outputs"]["prompt"]["prompt"][0]["role"] == "user"
    ```

    :param pipeline: The pipeline: a `Pipeline` (adopted: its generator components become `PolicySlot`s), its
        dict, or a YAML file (loaded as `haystack-rl run` loads it).
    :param generator: The name of the chat generator component the policy plays (or several names: e.g. a
        query rewriter and an answerer served by the same model).
    :param inputs: Pipeline input `"component.socket"` -> the task column feeding it (or `{"value": constant}`);
        default: every open input whose name is a task column.
    :param dataset: Training tasks (dicts with the columns `inputs` names, and what the rubric reads).
    :param eval_dataset: Evaluation tasks (default: the training tasks).
    :param rubric: Scores finished rollouts (`rollout.info["outputs"]` holds every component's outputs).
    :param baselines: Scripted policies by name, `(messages, rng) -> reply` for each call of the generator (the
        first gives "expert" SFT demonstrations); module-level functions, so they serialize.
    :param name: Name in results (default: "pipeline").
    """

    name = "pipeline"

    def __init__(
        self,
        pipeline: Pipeline | str | dict[str, Any],
        generator: str | list[str],
        inputs: Mapping[str, str | dict[str, Any]] | None = None,
        dataset: list[dict[str, Any]] | None = None,
        eval_dataset: list[dict[str, Any]] | None = None,
        rubric: Rubric | None = None,
        baselines: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(dataset=dataset, eval_dataset=eval_dataset, rubric=rubric, name=name)
        self._baselines = dict(baselines or {})
        self.generator = generator
        self.pipeline = _load(pipeline)
        #: The pipeline's own generators, by name, as they were before the policy took their place.
        self.own_generators = {name_: _put_policy_slot(self.pipeline, name_)
                               for name_ in ([generator] if isinstance(generator, str) else generator)}  # fmt: skip
        self.component_names = [name for name, _ in self.pipeline.walk()]
        open_inputs = self.pipeline.inputs()
        known = {f"{c}.{socket}" for c, sockets in open_inputs.items() for socket in sockets}
        if inputs is None:  # each open input takes the task column of its name
            columns = {column for row in (self.dataset + (self.eval_dataset or []))[:1] for column in row}
            inputs = {target: target.split(".", 1)[1] for target in sorted(known) if target.split(".", 1)[1] in columns}
        self.inputs = dict(inputs)
        unknown = sorted(set(self.inputs) - known)
        if unknown:
            raise ValueError(f"{self.name}: inputs name {unknown}, which the pipeline does not take; its open inputs "
                             f"are {', '.join(sorted(known)) or 'none'}")  # fmt: skip

    def baselines(self) -> dict[str, Any]:
        """The scripted policies given to the constructor."""
        return dict(self._baselines)

    def pipeline_inputs(self, example: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The pipeline's run data for a task (see `inputs`)."""
        data: dict[str, dict[str, Any]] = {}
        for target, source in self.inputs.items():
            component_name, socket = target.split(".", 1)
            if isinstance(source, dict):
                value = source.get("value")
            elif source in example:
                value = example[source]
            else:
                raise KeyError(f"{self.name}: task {example.get('id')!r} has no column {source!r} (for {target})")
            data.setdefault(component_name, {})[socket] = value
        return data

    def reset(
        self, example: dict[str, Any], seed: int, rollout_index: int = 0
    ) -> tuple[list[ChatMessage], EpisodeState]:
        """A new episode: no conversation yet (the pipeline's generator calls write it), `outputs` empty."""
        state = EpisodeState(example=example, seed=seed, rollout_index=rollout_index)
        state.info.update({OUTPUTS: {}, CALLS: 0})
        self.setup_state(state)
        return list(state.messages), state

    def step(self, state: EpisodeState, reply: ChatMessage) -> tuple[list[ChatMessage], bool]:
        """Not used: the pipeline calls the policy itself (see `play`)."""
        raise NotImplementedError(f"{self.name}: a pipeline episode is played by the episode player, not stepped")

    async def play(self, state: EpisodeState, policy: Any, generation_kwargs: dict[str, Any] | None = None) -> None:
        """
        Run the pipeline once on the episode's task, the policy answering for the generator(s): one chat
        generator for all of them, or a dict of one per component name (`own_generators`: the pipeline as is).
        """
        episode = _EpisodeCalls(policy, state, dict(generation_kwargs or {}))
        token = _EPISODE.set(episode)
        try:
            outputs = await self.pipeline.run_async(self.pipeline_inputs(state.example),
                                                    include_outputs_from=set(self.component_names))  # fmt: skip
        finally:
            _EPISODE.reset(token)
        state.info[OUTPUTS] = jsonable(outputs)

    def training_prompt(self, example: dict[str, Any], seed: int) -> list[ChatMessage]:
        """What stands for a task in TRL's dataset: its pipeline inputs (an episode has no opening conversation)."""
        return [ChatMessage.from_user(json.dumps(self.pipeline_inputs(example), sort_keys=True, default=str))]


def _load(pipeline: Pipeline | str | dict[str, Any]) -> Pipeline:
    if isinstance(pipeline, Pipeline):
        return pipeline  # adopted as is: its generator becomes a PolicySlot (a dict or a YAML path is rebuilt)
    if isinstance(pipeline, dict):
        return Pipeline.from_dict(copy.deepcopy(pipeline))
    from haystack_rl.cli.pipeline import load_pipeline

    return load_pipeline(Path(pipeline), [])


def _put_policy_slot(pipeline: Pipeline, generator: str) -> Any:
    """Replace the pipeline's `generator` component with a `PolicySlot` wired the same way; returns the original."""
    names = [name for name, _ in pipeline.walk()]
    if generator not in names:
        raise ValueError(f"pipeline: no component {generator!r} to train; it has {', '.join(names)}")
    original = pipeline.get_component(generator)
    sockets = set(original.__haystack_input__._sockets_dict)  # type: ignore[attr-defined]
    if "messages" not in sockets or "replies" not in original.__haystack_output__._sockets_dict:  # type: ignore[attr-defined]
        raise ValueError(f"pipeline: {generator!r} is not a chat generator (messages in, replies out); only a chat "
                         "generator can be trained")  # fmt: skip
    edges = [(sender, receiver, data) for sender, receiver, data in pipeline.graph.edges(data=True)
             if generator in (sender, receiver)]  # fmt: skip
    pipeline.remove_component(generator)
    pipeline.add_component(generator, PolicySlot(generator))
    for sender, receiver, data in edges:
        pipeline.connect(f"{sender}.{data['from_socket'].name}", f"{receiver}.{data['to_socket'].name}")
    return original
