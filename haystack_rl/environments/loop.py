"""EpisodeRouter: closes a Haystack pipeline loop of an environment and a chat generator, one episode per run."""

from __future__ import annotations

from typing import Any

from haystack import component
from haystack.dataclasses import ChatMessage

from haystack_rl.environments.base import EpisodeState
from haystack_rl.rollout import Rollout


@component
class EpisodeRouter:
    """
    The router of an episode played as a pipeline graph: environment -> router -> chat generator -> environment.
    While the episode goes on, the conversation goes to the generator and the state back to the environment;
    once it is done, the finished rollout goes on (to a `Rubric`, then a `ResultsWriter`), ending the loop.

    Usage example:
    ```python
    from haystack_rl import load_environment
    from haystack_rl.environments.loop import EpisodeRouter

    env = load_environment("reverse_text", num_eval_examples=1)
    started = env.run(example=env.examples()[0], seed=0)
    routed = EpisodeRouter().run(**{k: started[k] for k in ("done", "messages", "state", "rollout")})
    assert set(routed) == {"messages", "state"}  # not done: back to the generator and the environment
    ```
    """

    @component.output_types(messages=list[ChatMessage], state=EpisodeState, rollouts=list[Rollout])
    def run(self, done: bool, messages: list[ChatMessage], state: EpisodeState, rollout: Rollout) -> dict[str, Any]:
        """`messages` and `state` while the episode goes on; `rollouts` (the finished one, in a list) once done."""
        if done:
            return {"rollouts": [rollout]}
        return {"messages": messages, "state": state}
