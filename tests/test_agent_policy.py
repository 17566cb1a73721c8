"""The Haystack Agent as the policy: rollouts recorded from an Agent run, scored, with token data."""

from __future__ import annotations

from typing import Any

from haystack.components.agents import Agent

from haystack_rl import RolloutRunner, load_environment
from haystack_rl.generators import FunctionChatGenerator


def oracle_agent(env: Any) -> Agent:
    generator = FunctionChatGenerator(env.baselines()["oracle"])
    return Agent(chat_generator=generator, tools=env.tools, system_prompt=env.system_prompt, max_agent_steps=4)


def test_oracle_agents_score_like_the_oracle_baselines() -> None:
    for name, kwargs in (("search_qa", {}), ("calculator", {"num_eval_examples": 20})):
        env = load_environment(name, **kwargs)
        rollouts = RolloutRunner(env, oracle_agent(env), rollouts_per_example=1).run()["rollouts"]
        assert all(r.error is None and r.stop_reason == "done" for r in rollouts)
        assert sum(r.reward or 0.0 for r in rollouts) / len(rollouts) >= 0.95
        assert rollouts[0].metrics["num_tool_calls"] == 1.0 and rollouts[0].info["tool_calls"] == 1
        assert rollouts[0].messages[0].text == env.system_prompt


def test_a_failing_agent_is_recorded_not_raised() -> None:
    env = load_environment("search_qa")

    def broken(messages: list[Any], rng: Any) -> str:
        raise RuntimeError("no model")

    agent = Agent(chat_generator=FunctionChatGenerator(broken), tools=env.tools)
    rollout = RolloutRunner(env, agent, num_examples=1).run()["rollouts"][0]
    assert rollout.stop_reason == "error" and "no model" in (rollout.error or "")


def test_tiny_model_agent_records_exact_token_turns(make_generator: Any, scripted: Any) -> None:
    env = load_environment("search_qa")
    generator = make_generator(max_new_tokens=64)
    scripted(generator, [
        '<tool_call>{"name": "search", "arguments": {"query": "Brellick lighthouse"}}</tool_call><|im_end|>',
        "<answer>Oda Pell</answer><|im_end|>",  # the eval split's first question: who built it
    ])  # fmt: skip
    agent = Agent(chat_generator=generator, tools=env.tools, system_prompt=env.system_prompt, max_agent_steps=4)
    rollout = RolloutRunner(env, agent, num_examples=1).run()["rollouts"][0]
    assert rollout.error is None and rollout.reward == 1.0 and len(rollout.turns) == 2
    ids, mask, _ = rollout.completion_tokens()
    assert sum(mask) == rollout.num_completion_tokens
    tool_text = str(rollout.messages[3].tool_call_result.result)
    assert tool_text in generator.tokenizer.decode([i for i, m in zip(ids, mask) if m == 0])


def test_tiny_model_agent_runs_without_crashing(make_generator: Any) -> None:
    env = load_environment("calculator", num_eval_examples=1)
    generator = make_generator(max_new_tokens=64)
    agent = Agent(chat_generator=generator, tools=env.tools, system_prompt=env.system_prompt, max_agent_steps=3)
    rollout = RolloutRunner(env, agent).run()["rollouts"][0]
    assert rollout.error is None and rollout.reward is not None and rollout.turns
    rollout.completion_tokens()
