"""pipelines/search_agent.yml (the deployable Agent) and search_agent_eval.yml (the same Agent, evaluated)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from haystack import Pipeline
from haystack.components.agents import Agent
from haystack.dataclasses import ChatMessage

import haystack_rl  # noqa: F401 - allowlists our modules
from haystack_rl import RolloutRunner, read_rollouts

PIPELINES = Path(__file__).parent.parent / "pipelines"
ORACLE = {
    "type": "haystack_rl.generators.function.FunctionChatGenerator",
    "init_parameters": {"function": "haystack_rl_envs.search_qa.env.oracle_baseline", "name": "oracle"},
}


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((PIPELINES / name).read_text())


def test_both_pipelines_use_the_same_agent_definition() -> None:
    agent = load("search_agent.yml")["components"]["agent"]
    assert load("search_agent_eval.yml")["components"]["runner"]["init_parameters"]["policy"] == agent


def test_the_agent_yaml_loads_without_unsafe_and_answers_a_question() -> None:
    pipeline = Pipeline.loads((PIPELINES / "search_agent.yml").read_text())
    assert isinstance(pipeline.get_component("agent"), Agent)
    question = [ChatMessage.from_user("Who founded the Harrowgate chess club?")]
    messages = pipeline.run({"agent": {"messages": question}})["agent"]["messages"]
    assert messages[0].is_from("system") and messages[-1].is_from("assistant")  # the tiny model's reply
    data = load("search_agent.yml")
    data["components"]["agent"]["init_parameters"]["chat_generator"] = ORACLE
    oracle = Pipeline.from_dict(data)
    messages = oracle.run({"agent": {"messages": question}})["agent"]["messages"]
    assert "Harrowgate chess club" in str(messages[-2].tool_call_result.result)
    assert messages[-1].text == "<answer>Ilse Mardon</answer>"


def _eval(tmp_path: Path, generator: dict[str, Any] | None = None) -> list[Any]:
    data = load("search_agent_eval.yml")
    runner = data["components"]["runner"]["init_parameters"]
    runner.update(num_examples=2, rollouts_per_example=1, output_dir=str(tmp_path))
    data["components"]["writer"]["init_parameters"]["output_dir"] = str(tmp_path)
    if generator is not None:
        runner["policy"]["init_parameters"]["chat_generator"] = generator
    pipeline = Pipeline.loads(yaml.safe_dump(data))
    assert isinstance(pipeline.get_component("runner"), RolloutRunner)
    pipeline.run({})
    assert json.loads((tmp_path / "metadata.json").read_text())
    return list(read_rollouts(tmp_path / "results.jsonl"))


def test_the_eval_yaml_scores_the_agent(tmp_path: Path) -> None:
    rollouts = _eval(tmp_path / "tiny")
    assert len(rollouts) == 2 and all(r.error is None and r.reward is not None and r.turns for r in rollouts)
    rollouts = _eval(tmp_path / "oracle", ORACLE)
    assert [r.reward for r in rollouts] == [1.0, 1.0]
