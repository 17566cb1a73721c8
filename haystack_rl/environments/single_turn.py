"""SingleTurnEnv: one prompt, one reply, then the rubric scores it."""

from __future__ import annotations

from haystack.dataclasses import ChatMessage

from haystack_rl.environments.base import Environment, EpisodeState


class SingleTurnEnv(Environment):
    """
    An environment that ends after the model's first reply (question answering, transformations...).

    Usage example:
    ```python
    from haystack.dataclasses import ChatMessage
    from haystack_rl import Rubric, SingleTurnEnv

    def exact(rollout):
        return float(rollout.completion.strip() == rollout.example["answer"])

    env = SingleTurnEnv(dataset=[{"prompt": "2+2?", "answer": "4"}], rubric=Rubric.from_functions([exact]))
    messages, state = env.reset(env.examples()[0], seed=0)
    assert env.step(state, ChatMessage.from_assistant("4")) == ([], True)
    ```
    """

    name = "single_turn"

    def step(self, state: EpisodeState, reply: ChatMessage) -> tuple[list[ChatMessage], bool]:
        """Record the reply; the episode is over."""
        state.messages.append(reply)
        state.turn += 1
        return [], True
