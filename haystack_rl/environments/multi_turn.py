"""MultiTurnEnv: the environment answers each reply (a user turn, an opponent's move) until it ends."""

from __future__ import annotations

from typing import Any

from haystack.dataclasses import ChatMessage

from haystack_rl.environments.base import Environment, EpisodeState
from haystack_rl.rubrics.rubric import Rubric


class MultiTurnEnv(Environment):
    """
    An environment that talks back: the author writes `env_response(state, reply) -> (messages, done)`.

    The episode ends when `env_response` says so (stop reason "done") or after `max_turns` model
    replies ("max_turns"); the episode player also stops on a token budget ("token_budget") and on errors.

    Usage example:
    ```python
    from haystack.dataclasses import ChatMessage
    from haystack_rl import MultiTurnEnv, Rubric

    class Echo(MultiTurnEnv):
        def env_response(self, state, reply):
            return [ChatMessage.from_user("again")], state.turn >= 2

    env = Echo(dataset=[{"prompt": "say x"}], max_turns=5)
    messages, state = env.reset(env.examples()[0], seed=0)
    assert env.step(state, ChatMessage.from_assistant("x"))[1] is False
    assert env.step(state, ChatMessage.from_assistant("x"))[1] is True
    assert Echo.from_dict(env.to_dict()).max_turns == 5
    ```
    """

    name = "multi_turn"

    def __init__(
        self,
        dataset: list[dict[str, Any]] | None = None,
        eval_dataset: list[dict[str, Any]] | None = None,
        system_prompt: str | None = None,
        rubric: Rubric | None = None,
        max_turns: int = 10,
        name: str | None = None,
    ) -> None:
        super().__init__(dataset=dataset, eval_dataset=eval_dataset, system_prompt=system_prompt, rubric=rubric,
                         name=name)  # fmt: skip
        if max_turns < 1:
            raise ValueError(f"{self.name}: max_turns must be >= 1, got {max_turns}")
        self.max_turns = max_turns

    def env_response(self, state: EpisodeState, reply: ChatMessage) -> tuple[list[ChatMessage], bool]:
        """The environment's answer to `reply` (already appended to `state.messages`) and whether it ended."""
        raise NotImplementedError(f"{type(self).__name__} must implement env_response()")

    def step(self, state: EpisodeState, reply: ChatMessage) -> tuple[list[ChatMessage], bool]:
        """Append the reply, ask `env_response`, enforce `max_turns`; sets `state.info['stop_reason']`."""
        state.messages.append(reply)
        state.turn += 1
        new_messages, done = self.env_response(state, reply)
        return self._after_response(state, list(new_messages), done)

    def _after_response(
        self, state: EpisodeState, new_messages: list[ChatMessage], done: bool
    ) -> tuple[list[ChatMessage], bool]:
        """Append the environment's messages and end the episode when it said so or at `max_turns`."""
        state.messages.extend(new_messages)
        if done:
            state.info.setdefault("stop_reason", "done")
            return new_messages, True
        if state.turn >= self.max_turns:
            state.info["stop_reason"] = "max_turns"
            return new_messages, True
        return new_messages, False
