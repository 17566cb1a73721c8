"""The environment contract: `State`, `Environment` (reset/step) and the examples it draws from."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from haystack import component
from haystack.dataclasses import ChatMessage

from haystack_rl.rubrics.rubric import Rubric


@dataclass
class State:
    """
    Everything an environment needs to continue an episode; rubrics read it through `Rollout.info`.

    :param example: The task (prompt, answer and any environment-specific fields).
    :param seed: The episode seed; every rollout of a group shares it.
    :param messages: The conversation so far, system prompt included.
    :param info: Environment data that rubrics and summaries read (board, winner, counters...).
        Must stay JSON-serializable: it is written to `results.jsonl`.
    :param rng: Random generator seeded from `seed`, for the environment's own randomness.
    :param turn: Number of model replies so far.
    """

    example: dict[str, Any]
    seed: int
    messages: list[ChatMessage] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)
    turn: int = 0

    def __post_init__(self) -> None:
        self.rng.seed(self.seed)


@component
class Environment:
    """
    Base class of all environments: a task dataset, a system prompt, a rubric, and `reset`/`step`.

    Subclasses implement `step` (or use `SingleTurnEnv`/`MultiTurnEnv`, which do). The contract,
    in Gymnasium's spirit:

    - `reset(example, seed) -> (messages, state)`: the opening conversation, deterministic given both;
    - `step(state, reply) -> (new_messages, done)`: the environment's answer to one model reply.

    As a Haystack component, `run` performs one of those two calls, so an environment can sit in a
    pipeline loop next to a chat generator.

    Usage example:
    ```python
    from haystack.dataclasses import ChatMessage
    from haystack_rl import SingleTurnEnv, Rubric

    env = SingleTurnEnv(dataset=[{"id": "0", "prompt": "Say hi", "answer": "hi"}],
                        rubric=Rubric.from_functions([]), system_prompt="Be brief.")
    messages, state = env.reset(env.examples()[0], seed=0)
    new_messages, done = env.step(state, ChatMessage.from_assistant("hi"))
    assert done and state.messages[-1].text == "hi"
    ```
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Subclasses inherit the component metaclass; registering them here spares authors the
        # @component decorator (which would break their zero-argument super() calls).
        component.registry[f"{cls.__module__}.{cls.__name__}"] = cls

    #: Short name used in results and by the registry.
    name: str = "environment"
    #: One-line description shown by `haystack-rl envs`.
    description: str = ""
    #: Keys of `Rollout.info` that evaluation summaries split their figures by (e.g. who started).
    summary_breakdowns: tuple[str, ...] = ()

    def __init__(
        self,
        dataset: list[dict[str, Any]] | None = None,
        eval_dataset: list[dict[str, Any]] | None = None,
        system_prompt: str | None = None,
        rubric: Rubric | None = None,
    ) -> None:
        self.dataset = _with_ids(dataset or [])
        self.eval_dataset = _with_ids(eval_dataset) if eval_dataset is not None else None
        self.system_prompt = system_prompt
        self.rubric = rubric if rubric is not None else Rubric()

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

    def setup_state(self, state: State) -> None:
        """Hook: fill `state.info` at reset (boards, counters...). Default: nothing."""

    def reset(self, example: dict[str, Any], seed: int) -> tuple[list[ChatMessage], State]:
        """Start an episode: returns the opening messages and the state to pass to `step`."""
        state = State(example=example, seed=seed)
        self.setup_state(state)
        state.messages = self.initial_messages(example) + list(state.info.pop("_extra_messages", []))
        return list(state.messages), state

    def step(self, state: State, reply: ChatMessage) -> tuple[list[ChatMessage], bool]:
        """Answer one model reply: returns the environment's new messages and whether the episode ended."""
        raise NotImplementedError(f"{type(self).__name__} must implement step()")

    def baselines(self) -> dict[str, Any]:
        """
        Scripted policies that play this environment, by name (used as `--model baseline:NAME`).

        Each value is a function `(messages, rng) -> reply text`; it sees only what a model sees.
        """
        return {}

    # --- Haystack component ------------------------------------------------------------------
    @component.output_types(messages=list[ChatMessage], new_messages=list[ChatMessage], state=State, done=bool)
    def run(
        self,
        example: dict[str, Any] | None = None,
        seed: int = 0,
        state: State | None = None,
        replies: list[ChatMessage] | None = None,
    ) -> dict[str, Any]:
        """
        One call of the contract: `reset` when no state is given, else `step` with the first reply.

        :returns: `messages` (the whole conversation, to feed a chat generator), `new_messages`,
            `state` and `done`.
        """
        if state is None:
            if example is None:
                raise ValueError(f"{self.name}: run() needs an example to reset, or a state and replies to step")
            new_messages, state = self.reset(example, seed)
            done = False
        else:
            if not replies:
                raise ValueError(f"{self.name}: run() with a state needs the model's replies")
            new_messages, done = self.step(state, replies[0])
        return {"messages": list(state.messages), "new_messages": new_messages, "state": state, "done": done}


def _with_ids(dataset: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give every example an `id` (its position) unless it has one; ids must be unique."""
    out = [example if "id" in example else {**example, "id": str(index)} for index, example in enumerate(dataset)]
    ids = [str(example["id"]) for example in out]
    if len(set(ids)) != len(ids):
        raise ValueError("dataset: example ids must be unique")
    return out
