"""
What you train is what you deploy: the same policy gives the same transcript, message by message, through
(a) `haystack-rl eval`, (b) the GRPO rollout function and (c) the deployed Agent YAML run by `haystack-rl run`;
and `haystack-rl check-deploy` says when a deployment differs from training.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from haystack_rl import load_environment
from haystack_rl.agents import read_agent_yaml
from haystack_rl.cli import app
from haystack_rl.environments.tool_env import ToolEnv
from haystack_rl.rollout_io import read_rollouts
from haystack_rl.training.multiturn import EnvRolloutFunc
from haystack_rl.training.rewards import example_row

PIPELINES = Path(__file__).resolve().parent.parent / "pipelines"

USER_AGENT_MODULE = '''
"""A user's notes agent: one tool writes the Agent state, another reads it."""
from haystack.dataclasses import ChatMessage, ToolCall
from haystack.tools import create_tool_from_function


def remember(note: str) -> dict:
    """Remember a note."""
    return {"saved": note.upper()}


def recall(last: str) -> str:
    """Recall the last note."""
    return f"you noted {last}"


REMEMBER = create_tool_from_function(remember, outputs_to_state={"last": {"source": "saved"}})
RECALL = create_tool_from_function(recall, inputs_from_state={"last": "last"})


def script(messages, rng):
    """remember(the question's word) -> recall() -> answer with what recall said."""
    replies = sum(m.is_from("assistant") for m in messages)
    if replies == 0:
        note = messages[-1].text.split()[-1]
        return ChatMessage.from_assistant(tool_calls=[ToolCall(tool_name="remember", arguments={"note": note})])
    if replies == 1:
        return ChatMessage.from_assistant(tool_calls=[ToolCall(tool_name="recall", arguments={})])
    return f"<answer>{messages[-1].tool_call_result.result}</answer>"


def malformed(messages, rng):
    """A tool call whose JSON does not parse, as a tool-call parser reports it."""
    return ChatMessage.from_assistant('<tool_call>{"name": "remember", "arguments": {note}}</tool_call>',
                                      meta={"tool_call_errors": ["tool call 0: invalid JSON"]})
'''


def normalized(messages: list[Any]) -> list[dict[str, Any]]:
    """What a transcript says (roles, texts, tool calls, tool results, errors), without ids and meta."""
    out = []
    for message in messages:
        data = message if isinstance(message, dict) else message.to_dict()
        entry: dict[str, Any] = {"role": data["role"], "text": None, "calls": [], "result": None}
        for part in data["content"]:
            if "text" in part:
                entry["text"] = part["text"] or None
            elif "tool_call" in part:
                entry["calls"].append((part["tool_call"]["tool_name"], part["tool_call"]["arguments"]))
            elif "tool_call_result" in part:
                result = part["tool_call_result"]
                origin = result["origin"]
                entry["result"] = (result["result"], result["error"], origin["tool_name"], origin["arguments"])
        out.append(entry)
    return out


def completion_texts(messages: list[Any]) -> list[str]:
    """What a Hermes-format model generates for each assistant reply of a transcript."""
    texts = []
    for message in messages:
        if not message.is_from("assistant"):
            continue
        calls = "".join(f'<tool_call>{json.dumps({"name": c.tool_name, "arguments": c.arguments})}</tool_call>'
                        for c in message.tool_calls)  # fmt: skip
        texts.append((message.text or "") + calls + "<|im_end|>")
    return texts


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it: a fresh process."""
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "haystack_rl.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=False)  # fmt: skip


def deployed_with(agent_yaml: Path, function: str, out: Path) -> Path:
    """The agent YAML with its chat generator replaced by a scripted policy (the deployed agent, scripted)."""
    data = read_agent_yaml(agent_yaml)
    agent = data["components"]["agent"] if "components" in data else data
    agent["init_parameters"]["chat_generator"] = {
        "type": "haystack_rl.generators.function.FunctionChatGenerator",
        "init_parameters": {"function": function, "name": "scripted"},
    }
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def three_transcripts(tmp_path: Path, agent_yaml: Path, task: dict[str, Any], function: str, tiny_dir: Path,
                      scripted: Any, allow: list[str]) -> list[list[dict[str, Any]]]:  # fmt: skip
    """(a) eval, (b) the GRPO rollout function, (c) the deployed Agent YAML, for one task and one policy."""
    allow_args = [arg for module in allow for arg in ("--allow-module", module)]
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps(task) + "\n")
    evaluated = cli(tmp_path, "eval", "--agent", str(agent_yaml), "--dataset", str(tasks), "--model",
                    f"baseline:{_reference(function)}", "-n", "1", "-o", "a", *allow_args)  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr
    (a,) = list(read_rollouts(tmp_path / "a" / "results.jsonl"))

    from haystack_rl.trust import trust_modules

    trust_modules(allow)
    env = ToolEnv.from_agent(agent_yaml, [task])
    from transformers import AutoModelForCausalLM, AutoTokenizer

    func = EnvRolloutFunc(env, str(tiny_dir), num_generations=1, seed=0, max_new_tokens=128)
    stub = type("Trainer", (), {"model": AutoModelForCausalLM.from_pretrained(tiny_dir),
                                "processing_class": AutoTokenizer.from_pretrained(tiny_dir)})()  # fmt: skip
    func._attach(stub)  # the trainer's backend, which the model's replies are scripted on
    scripted(func.generator, completion_texts(a.messages))  # the model writes what the scripted policy answered
    row = example_row(env, env.examples("train")[0], 0)
    func([row["prompt"]], stub)
    b = func.last_rollouts[0]
    assert b.info["tool_calls"] == a.info["tool_calls"] and b.info["tool_errors"] == a.info["tool_errors"]

    deployed = deployed_with(agent_yaml, function, tmp_path / "deployed.yml")
    ran = cli(tmp_path, "run", str(deployed), "--message", task["prompt"], "--output", "c.json", *allow_args)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    c = json.loads((tmp_path / "c.json").read_text())["agent"]["messages"]
    return [normalized(a.messages), normalized(b.messages), normalized(c)]


def _reference(function: str) -> str:
    """`package.module.function` -> `package.module:function`."""
    module, _, name = function.rpartition(".")
    return f"{module}:{name}"


CASES = {
    "calculator": (PIPELINES / "calculator_agent.yml", "haystack_rl_envs.calculator.env.oracle_baseline", []),
    "search_qa": (PIPELINES / "search_agent.yml", "haystack_rl_envs.search_qa.env.oracle_baseline", []),
}


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("case", ["calculator", "search_qa", "user_state_tools", "malformed_call"])
def test_eval_training_and_deployment_give_the_same_transcript(case: str, tmp_path: Path, tiny_model_path: Path,
                                                                scripted: Any) -> None:  # fmt: skip
    if case in CASES:
        agent_yaml, function, allow = CASES[case]
        env = load_environment(case, **({"num_eval_examples": 1} if case == "calculator" else {}))
        example = env.examples("eval")[0]
        task = {"prompt": example["prompt"], "answer": str(example["answer"])}
    else:
        (tmp_path / "notes_agent.py").write_text(textwrap.dedent(USER_AGENT_MODULE))
        sys.path.insert(0, str(tmp_path))
        try:
            import notes_agent  # noqa: F401 - the user's module, for building its agent YAML
            from haystack.components.agents import Agent

            from haystack_rl.generators import FunctionChatGenerator

            agent = Agent(chat_generator=FunctionChatGenerator(notes_agent.script), system_prompt="Take notes.",
                          tools=[notes_agent.REMEMBER, notes_agent.RECALL], max_agent_steps=5,
                          state_schema={"last": {"type": str}})  # fmt: skip
            agent_yaml = tmp_path / "notes_agent.yml"
            agent_yaml.write_text(yaml.safe_dump({"components": {"agent": agent.to_dict()}}, sort_keys=False))
        finally:
            sys.path.remove(str(tmp_path))
        function = "notes_agent.script" if case == "user_state_tools" else "notes_agent.malformed"
        allow = ["notes_agent"]
        task = {"prompt": "Please note milk", "answer": "you noted MILK"}
    a, b, c = three_transcripts(tmp_path, agent_yaml, task, function, tiny_model_path, scripted, allow)
    assert a == b == c, json.dumps({"eval": a, "training": b, "deployed": c}, indent=1, default=str)[:6000]
    if case == "user_state_tools":
        assert a[-1]["text"] == "<answer>you noted MILK</answer>"  # recall read what remember wrote to the state
    if case == "malformed_call":
        assert len(a) == 3 and a[-1]["calls"] == [] and "<tool_call>" in (a[-1]["text"] or "")


def test_check_deploy_passes_a_faithful_deploy_and_names_each_difference(tmp_path: Path,
                                                                         tiny_model_path: Path) -> None:  # fmt: skip
    from haystack_rl.deploy import training_card, write_training_card

    model = tmp_path / "model"
    import shutil

    shutil.copytree(tiny_model_path, model)
    env = ToolEnv.from_agent(PIPELINES / "calculator_agent.yml", [{"prompt": "1+1?", "answer": "2"}])
    write_training_card(model, training_card(env, model, max_new_tokens=128, temperature=1.0))
    data = read_agent_yaml(PIPELINES / "calculator_agent.yml")
    generator = data["components"]["agent"]["init_parameters"]["chat_generator"]["init_parameters"]
    generator["model"] = str(model)
    faithful = tmp_path / "faithful.yml"
    faithful.write_text(yaml.safe_dump(data, sort_keys=False))
    ok = CliRunner().invoke(app, ["check-deploy", str(faithful), "--model", str(model)])
    assert ok.exit_code == 0, ok.output
    changes = {
        "system prompt": ("system_prompt", "Answer in French."),
        "chat template": ("chat_template", "{{ messages[0]['content'] }}"),
        "tool 'calculator'": (
            "tools",
            [
                {
                    **data["components"]["agent"]["init_parameters"]["tools"][0],
                    "data": {
                        **data["components"]["agent"]["init_parameters"]["tools"][0]["data"],
                        "description": "Compute.",
                    },
                }
            ],
        ),  # fmt: skip
        "max steps": ("max_agent_steps", 2),
    }
    for says, (key, value) in changes.items():
        changed = json.loads(json.dumps(data))
        target = changed["components"]["agent"]["init_parameters"]
        if key == "chat_template":
            target["chat_generator"]["init_parameters"][key] = value
        else:
            target[key] = value
        path = tmp_path / f"changed_{key}.yml"
        path.write_text(yaml.safe_dump(changed, sort_keys=False))
        result = CliRunner().invoke(app, ["check-deploy", str(path), "--model", str(model)])
        said = " ".join(result.output.split())
        assert result.exit_code == 1 and says in said, (says, said)


def test_check_deploy_covers_a_pipeline_s_generators(tmp_path: Path, tiny_model_path: Path) -> None:
    import shutil

    from haystack_rl.deploy import training_card, write_training_card
    from haystack_rl.environments.pipeline_env import PipelineEnv

    model = tmp_path / "model"
    shutil.copytree(tiny_model_path, model)
    rag = PIPELINES / "rag_search_qa.yml"
    env = PipelineEnv(str(rag), ["rewriter", "answerer"], dataset=[{"question": "q", "answer": "a"}])
    write_training_card(model, training_card(env, model, max_new_tokens=64, temperature=0.0))
    data = yaml.safe_load(rag.read_text())
    for name in ("rewriter", "answerer"):
        data["components"][name]["init_parameters"]["model"] = str(model)
    deployed = tmp_path / "rag.yml"
    deployed.write_text(yaml.safe_dump(data, sort_keys=False))
    ok = CliRunner().invoke(app, ["check-deploy", str(deployed), "--model", str(model)])
    assert ok.exit_code == 0, ok.output
    data["components"]["answerer"]["init_parameters"]["generation_kwargs"]["max_new_tokens"] = 16
    deployed.write_text(yaml.safe_dump(data, sort_keys=False))
    short = CliRunner().invoke(app, ["check-deploy", str(deployed), "--model", str(model)])
    said = " ".join(short.output.split())
    assert short.exit_code == 1 and "answerer: max_new_tokens: the generator stops at 16 tokens" in said, said
