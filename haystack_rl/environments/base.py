"""The environment contract: `EpisodeState`, `Environment` (reset/step) and everything an author may provide."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from haystack import component
from haystack.dataclasses import ChatMessage

from haystack_rl import serialization
from haystack_rl.rollout import Rollout
from haystack_rl.rubrics.rubric import Rubric

#: Demonstration quality that names the environment's best play (see `Environment.demonstrate`).
EXPERT = "expert"


@dataclass
class EpisodeState:
    """
    Everything an environment needs to continue an episode; rubrics read it through `Rollout.info`.

    :param example: The task (prompt, answer and any environment-specific fields).
    :param seed: The episode seed; every rollout of a group shares it (so they face the same environment).
    :param rollout_index: Which rollout of its group this episode is (0 for a lone episode).
    :param messages: The conversation so far, system prompt included.
    :param info: Environment data that rubrics and summaries read (board, winner, counters...). Must stay
        JSON-serializable: it is written to `results.jsonl`.
    :param objects: Per-episode Python objects (a game engine, a sandbox handle...). Never serialized.
    :param rng: Random generator seeded from `seed`, for the environment's own randomness.
    :param turn: Number of model replies so far.
    """

    example: dict[str, Any]
    seed: int
    rollout_index: int = 0
    messages: list[ChatMessage] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    objects: dict[str, Any] = field(default_factory=dict, repr=False)
    rng: random.Random = field(default_factory=random.Random, repr=False)
    turn: int = 0

    def __post_init__(self) -> None:
        self.rng.seed(self.seed)


class DemonstrationError(ValueError):
    """An environment cannot demonstrate the quality asked for (no such baseline, no `demonstrate`)."""


@component
class Environment:
    """
    Base class of all environments: a task dataset, a system prompt, a rubric, and `reset`/`step`.

    The authoring contract, in one place (Gymnasium's spirit: two calls and a few optional hooks):

    - data: `dataset` (training examples, dicts with a `prompt`) and `eval_dataset`, or build them in
      `__init__` from knobs; `examples(split)` serves them.
    - `setup_state(state)`: fill `state.info` (JSON) and `state.objects` (live Python objects) at reset; it
      may also write the opening `state.messages` (default: system prompt + the example's prompt).
    - `step(state, reply) -> (new_messages, done)`: the environment's answer to one model reply
      (`SingleTurnEnv` and `MultiTurnEnv.env_response` write it for you). `step_async` is its async twin.
    - `rubric`: weighted reward functions over the finished `Rollout` (`rollout.info` holds `state.info`).
    - `baselines()`: scripted policies by name, `(messages, rng) -> reply`; list the best one first (or name
      it in `expert_baseline`).
    - `demonstrate(example, seed, quality)`: a transcript for SFT warm start (default: the baseline named
      `quality` plays the episode; `"expert"` is the expert baseline).
    - `is_success(rollout)`: whether an episode solved the task (default: reward >= the rubric's maximum);
      pass@k, `episodes/success` and the eval tables count it.
    - `summary_breakdowns`: `state.info` keys that evaluation summaries split their figures by.

    Serialization is generic: an environment records its constructor arguments and `to_dict`/`from_dict`
    rebuild it from them (knobs that regenerate the data, or the data itself), so a subclass writes no
    serialization code. As a Haystack component, `run` performs `reset` or `step`, so an environment can sit
    in a pipeline loop next to a chat generator.

    Usage example:
    ```python
    from haystack.dataclasses import ChatMessage
    from haystack_rl import SingleTurnEnv, Rubric

    env = SingleTurnEnv(dataset=[{"id": "0", "prompt": "Say hi", "answer": "hi"}],
                        rubric=Rubric.from_functions([]), system_prompt="Be brief.")
    messages, state = env.reset(env.examples()[0], seed=0)
    new_messages, done = env.step(state, ChatMessage.from_assistant("hi"))
    assert done and state.messages[-1].text == "hi"
    assert SingleTurnEnv.from_dict(env.to_dict()).examples() == env.examples()
    ```
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Subclasses inherit the component metaclass; registering them here spares authors the
        # @component decorator (which would break their zero-argument super() calls).
        component.registry[f"{cls.__module__}.{cls.__name__}"] = cls

    def __new__(cls, *args: Any, **kwargs: Any) -> Environment:  # noqa: D102 - records the constructor arguments
        instance = object.__new__(cls)  # (not super(): the @component decorator makes a copy of this class)
        serialization.record_init_arguments(instance, args, kwargs)
        return instance

    #: Short name used in results and by the registry.
    name: str = "environment"
    #: One-line description shown by `haystack-rl envs`.
    description: str = ""
    #: Keys of `Rollout.info` that evaluation summaries split their figures by (e.g. who started).
    summary_breakdowns: tuple[str, ...] = ()
    #: The baseline that `demonstrate(quality="expert")` plays (default: the first of `baselines()`).
    expert_baseline: str | None = None

    def __init__(
        self,
        dataset: list[dict[str, Any]] | None = None,
        eval_dataset: list[dict[str, Any]] | None = None,
        system_prompt: str | None = None,
        rubric: Rubric | None = None,
        name: str | None = None,
    ) -> None:
        self.dataset = _with_ids(dataset or [])
        self.eval_dataset = _with_ids(eval_dataset) if eval_dataset is not None else None
        self.system_prompt = system_prompt
        self.rubric = rubric if rubric is not None else Rubric()
        if name:
            self.name = name

    # --- data --------------------------------------------------------------------------------
    def examples(self, split: str = "eval", n: int | None = None) -> list[dict[str, Any]]:
        """
        The examples of a split ("train" or "eval"; "eval" falls back to the training set if none).

        :param n: Keep the first `n` (all when None or negative).
        """
        if split not in ("train", "eval"):
            raise ValueError(f"{self.name}: unknown split {split!r}; use 'train' or 'eval'")
        data = self.dataset if split == "train" or self.eval_dataset is None else self.eval_dataset
        return data if n is None or n < 0 else data[:n]

    # --- contract ----------------------------------------------------------------------------
    def initial_messages(self, example: dict[str, Any]) -> list[ChatMessage]:
        """The opening conversation: the system prompt, then the example's prompt (text or messages)."""
        messages = [ChatMessage.from_system(self.system_prompt)] if self.system_prompt else []
        prompt = example.get("prompt")
        if isinstance(prompt, str):
            messages.append(ChatMessage.from_user(prompt))
        elif isinstance(prompt, list):
            messages += [m if isinstance(m, ChatMessage) else ChatMessage.from_dict(m) for m in prompt]
        else:
            raise ValueError(f"{self.name}: example {example.get('id')!r} has no 'prompt' (text or messages)")
        return messages

    def setup_state(self, state: EpisodeState) -> None:
        """Hook: fill `state.info` and `state.objects` at reset, or write the opening `state.messages`."""

    def reset(
        self, example: dict[str, Any], seed: int, rollout_index: int = 0
    ) -> tuple[list[ChatMessage], EpisodeState]:
        """Start an episode: returns the opening messages and the state to pass to `step`."""
        state = EpisodeState(example=example, seed=seed, rollout_index=rollout_index)
        self.setup_state(state)
        if not state.messages:
            state.messages = self.initial_messages(example)
        return list(state.messages), state

    def step(self, state: EpisodeState, reply: ChatMessage) -> tuple[list[ChatMessage], bool]:
        """Answer one model reply: returns the environment's new messages and whether the episode ended."""
        raise NotImplementedError(f"{type(self).__name__} must implement step()")

    async def step_async(self, state: EpisodeState, reply: ChatMessage) -> tuple[list[ChatMessage], bool]:
        """Async twin of `step` (default: `step`, inline; override it when stepping waits on I/O)."""
        return self.step(state, reply)

    def warm_up(self) -> None:
        """Load what the environment needs once (tools, models); called before the first episode."""

    def training_prompt(self, example: dict[str, Any], seed: int) -> list[ChatMessage]:
        """What stands for a task in TRL's training dataset (TRL hands rollouts only prompts): the opening."""
        return self.reset(example, seed)[0]

    # --- what an author may add ----------------------------------------------------------------
    def baselines(self) -> dict[str, Any]:
        """
        Scripted policies that play this environment, by name (used as `--model baseline:NAME`).

        Each value is a function `(messages, rng) -> reply text or assistant ChatMessage`; it sees only what a
        model sees. List the best one first, or name it in `expert_baseline`.
        """
        return {}

    def demonstrate(self, example: dict[str, Any], seed: int, quality: str = EXPERT) -> list[ChatMessage]:
        """
        A whole transcript for SFT warm start: the baseline named `quality` plays the episode (`"expert"`: the
        `expert_baseline`, else the first of `baselines()`). Override it for demonstrations no baseline gives.

        :raises DemonstrationError: When there is no such baseline.
        """
        baselines = self.baselines()
        name = (self.expert_baseline or next(iter(baselines), None)) if quality == EXPERT else quality
        if name is None or name not in baselines:
            known = ", ".join(sorted(baselines)) or "none"
            raise DemonstrationError(f"{self.name}: no demonstrations of quality {quality!r} (baselines: {known}); "
                                     "add a baseline, override demonstrate(), or give SFT demonstrations")  # fmt: skip
        return self.play_scripted(baselines[name], example, seed)

    def play_scripted(self, policy: Any, example: dict[str, Any], seed: int) -> list[ChatMessage]:
        """
        The transcript of a scripted policy `(messages, rng) -> reply` on `example`, played by the episode player
        (so it is what evaluation would play); its `rng` is seeded from `seed` and the example id.

        :raises ValueError: When the episode fails.
        """
        from haystack_rl.episode import play_scripted_episode

        rollout = play_scripted_episode(self, policy, example, seed)
        if rollout.error:
            raise ValueError(f"{self.name}: the scripted episode on example {example.get('id')!r} failed: "
                             f"{rollout.error}")  # fmt: skip
        return list(rollout.messages)

    def is_success(self, rollout: Rollout) -> bool:
        """Whether an episode solved its task (default: a reward at the rubric's maximum, `Rubric.max_reward`)."""
        return rollout.reward is not None and rollout.reward >= self.rubric.max_reward - 1e-9

    def score_group(self, rollouts: Sequence[Rollout]) -> list[Rollout]:
        """
        Score the rollouts of one example with the rubric and mark each one's `success` (a rollout that ended in
        an error stays unscored; see `Rubric.score_group_async`).
        """
        from haystack_rl.asyncio_utils import run_sync

        return run_sync(self.score_group_async(rollouts))

    async def score_group_async(self, rollouts: Sequence[Rollout]) -> list[Rollout]:
        """Async twin of `score_group` (reward functions run concurrently; see `Rubric.score_group_async`)."""
        scored = await self.rubric.score_group_async(rollouts)
        for rollout in scored:
            rollout.success = None if rollout.error else bool(self.is_success(rollout))
        return scored

    # --- Haystack component ------------------------------------------------------------------
    @component.output_types(
        messages=list[ChatMessage], new_messages=list[ChatMessage], state=EpisodeState, done=bool, rollout=Rollout
    )
    def run(
        self,
        example: dict[str, Any] | None = None,
        seed: int = 0,
        state: EpisodeState | None = None,
        replies: list[ChatMessage] | None = None,
        example_id: str | None = None,
    ) -> dict[str, Any]:
        """
        One call of the contract: `reset` when no state is given, else `step` with the first reply. So an
        environment can sit in a pipeline loop: environment -> `EpisodeRouter` -> chat generator -> environment,
        until the router hands the finished rollout to a rubric (see `pipelines/tic_tac_toe_loop.yml`).

        :param example_id: Instead of `example`: the id of an eval example.
        :returns: `messages` (the whole conversation, to feed a chat generator), `new_messages`, `state`, `done`
            and `rollout` (the episode so far as a `Rollout`: messages, token data of replies, info, stop reason).
        """
        from haystack_rl.episode import episode_rollout

        if state is None:
            if example is None and example_id is not None:
                example = next((e for e in self.examples("eval") if str(e["id"]) == example_id), None)
                if example is None:
                    raise ValueError(f"{self.name}: no eval example with id {example_id!r}")
            if example is None:
                raise ValueError(f"{self.name}: run() needs an example (or an example_id) to reset, or a state and "
                                 "replies to step")  # fmt: skip
            new_messages, state = self.reset(example, seed)
            done = False
        else:
            if not replies:
                raise ValueError(f"{self.name}: run() with a state needs the model's replies")
            new_messages, done = self.step(state, replies[0])
        rollout = episode_rollout(self, state, str(state.info.get("stop_reason", "done")) if done else "")
        return {"messages": list(state.messages), "new_messages": new_messages, "state": state, "done": done,
                "rollout": rollout}  # fmt: skip

    # --- serialization -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """
        Serialize from the constructor arguments (see `haystack_rl.serialization`); a `name` set after
        construction is kept too.
        """
        extra = {"name": self.name} if self.name != type(self).name else None
        return serialization.to_dict(self, extra)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Environment:
        """Rebuild from `to_dict` output (classes and functions go through Haystack's allowlist)."""
        import inspect

        params = serialization.init_parameters_from_dict(data)
        accepted = inspect.signature(cls.__init__).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
        name = params.pop("name", None) if "name" not in accepted and not takes_any else None
        environment = cls(**params)
        if name:
            environment.name = name
        return environment


def _with_ids(dataset: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give every example an `id` (its position) unless it has one; ids must be unique."""
    out = [example if "id" in example else {**example, "id": str(index)} for index, example in enumerate(dataset)]
    ids = [str(example["id"]) for example in out]
    if len(set(ids)) != len(ids):
        raise ValueError("dataset: example ids must be unique")
    return out
