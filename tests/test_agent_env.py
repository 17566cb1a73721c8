"""ToolEnv.from_agent: the environment of an agent YAML plus a task file; `eval --agent`, `run --message`, deploy."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from haystack_rl import RolloutRunner, ToolEnv, load_environment
from haystack_rl.agents import AgentDefinitionError, find_agent, load_agent, read_agent_yaml, with_model
from haystack_rl.cli import app
from haystack_rl.generators import FunctionChatGenerator
from haystack_rl.rollout_io import read_rollouts
from haystack_rl.tasks import load_tasks
from haystack_rl.training.sft import demonstrations

PIPELINES = Path(__file__).parent.parent / "pipelines"
CALCULATOR_AGENT = PIPELINES / "calculator_agent.yml"
ORACLE = {
    "type": "haystack_rl.generators.function.FunctionChatGenerator",
    "init_parameters": {"function": "haystack_rl_envs.calculator.env.oracle_baseline", "name": "oracle"},
}


def calculator_tasks(n: int = 6) -> list[dict[str, Any]]:
    env = load_environment("calculator", num_train_examples=0, num_eval_examples=n)
    return [{"prompt": e["prompt"], "answer": e["answer"]} for e in env.examples("eval")]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def oracle_agent_yaml(tmp_path: Path) -> Path:
    data = read_agent_yaml(CALCULATOR_AGENT)
    data["components"]["agent"]["init_parameters"]["chat_generator"] = ORACLE
    path = tmp_path / "oracle_agent.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_calculator_agent_and_its_eval_yaml_hold_the_same_agent() -> None:
    agent = read_agent_yaml(CALCULATOR_AGENT)["components"]["agent"]
    evaluation = read_agent_yaml(PIPELINES / "calculator_agent_eval.yml")
    assert evaluation["components"]["runner"]["init_parameters"]["policy"] == agent == find_agent(evaluation)


def test_from_agent_takes_the_agents_tools_prompt_and_limit(tmp_path: Path) -> None:
    env = ToolEnv.from_agent(CALCULATOR_AGENT, calculator_tasks(), rubric="numeric_match")
    shipped = load_environment("calculator")
    assert [t.name for t in env.tools] == ["calculator"] and env.tools[0].parameters == shipped.tools[0].parameters
    assert env.system_prompt == shipped.system_prompt and env.max_turns == 6 and env.name == "calculator_agent"
    messages, state = env.reset(env.examples()[0], seed=0)
    assert messages[0].text == shipped.system_prompt and messages[1].text == env.examples()[0]["prompt"]
    oracle = FunctionChatGenerator(shipped.baselines()["oracle"])
    rollouts = RolloutRunner(env, oracle).run()["rollouts"]
    assert [r.reward for r in rollouts] == [1.0] * 6 and all(r.info["tool_calls"] == 1 for r in rollouts)
    guesser = FunctionChatGenerator(shipped.baselines()["no_tool"])
    assert sum(r.reward for r in RolloutRunner(env, guesser).run()["rollouts"]) < 6  # the rubric can fail
    nested = ToolEnv.from_agent(PIPELINES / "calculator_agent_eval.yml", calculator_tasks(2))  # the eval YAML too
    assert nested.tools[0].name == "calculator"


def test_tasks_load_from_jsonl_csv_and_datasets(tmp_path: Path) -> None:
    from datasets import Dataset

    rows = calculator_tasks(3)
    with (tmp_path / "tasks.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["prompt", "answer"])
        writer.writeheader()
        writer.writerows(rows)
    for source in (write_jsonl(tmp_path / "tasks.jsonl", rows), tmp_path / "tasks.csv", Dataset.from_list(rows)):
        env = ToolEnv.from_agent(CALCULATOR_AGENT, source, rubric="numeric_match")
        assert [(e["prompt"], str(e["answer"])) for e in env.examples()] == [(r["prompt"], r["answer"]) for r in rows]


@pytest.mark.parametrize(
    ("rows", "says"),
    [
        ([{"question": "2+2?", "answer": "4"}], "row 0 lacks column(s) 'prompt'; it has 'question', 'answer'"),
        ([{"prompt": "2+2?"}], "lacks column(s) 'answer'"),
        ([], "has no rows"),
    ],
)
def test_bad_tasks_are_clear_errors(rows: list[dict[str, Any]], says: str) -> None:
    with pytest.raises(ValueError, match=rf"^dataset: .*{_escaped(says)}"):
        ToolEnv.from_agent(CALCULATOR_AGENT, rows)


def _escaped(text: str) -> str:
    import re

    return re.escape(text)


def test_bad_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="dataset file not found"):
        load_tasks(tmp_path / "missing.jsonl")
    (tmp_path / "torn.jsonl").write_text('{"prompt": "a", "answer": "1"}\n{"prompt": \n')
    with pytest.raises(ValueError, match="torn.jsonl: line 2 is not valid JSON"):
        load_tasks(tmp_path / "torn.jsonl")
    (tmp_path / "tasks.txt").write_text("x")
    with pytest.raises(ValueError, match="unknown dataset format '.txt'"):
        load_tasks(tmp_path / "tasks.txt")
    with pytest.raises(AgentDefinitionError, match="no component of type .*Agent"):
        ToolEnv.from_agent(PIPELINES / "tic_tac_toe_eval.yml", calculator_tasks(1))
    (tmp_path / "broken.yml").write_text("components: [")
    with pytest.raises(AgentDefinitionError, match="broken.yml: not valid YAML"):
        load_agent(tmp_path / "broken.yml")
    data = read_agent_yaml(CALCULATOR_AGENT)
    data["components"]["agent"]["init_parameters"]["tools"][0]["data"]["function"] = "os.system"
    (tmp_path / "unsafe.yml").write_text(yaml.safe_dump(data))
    with pytest.raises(AgentDefinitionError, match="unsafe.yml: cannot load the Agent"):  # outside the allowlist
        load_agent(tmp_path / "unsafe.yml")
    data = read_agent_yaml(CALCULATOR_AGENT)
    data["components"]["agent"]["init_parameters"]["user_prompt"] = "{{ question }}"
    (tmp_path / "templated.yml").write_text(yaml.safe_dump(data))
    with pytest.raises(AgentDefinitionError, match="user_prompt template"):
        ToolEnv.from_agent(tmp_path / "templated.yml", calculator_tasks(1))
    with pytest.raises(ValueError, match="unknown answer reward 'close_enough'"):
        ToolEnv.from_agent(CALCULATOR_AGENT, calculator_tasks(1), rubric="close_enough")


def test_deploying_changes_only_the_model_path() -> None:
    original = read_agent_yaml(CALCULATOR_AGENT)
    deployed = with_model(original, "runs/calculator/final")
    generator = find_agent(deployed)["init_parameters"]["chat_generator"]
    assert generator["init_parameters"]["model"] == "runs/calculator/final"
    generator["init_parameters"]["model"] = "tiny"
    assert deployed == original  # nothing else changed
    assert load_agent(with_model(original, "elsewhere")).chat_generator.model == "elsewhere"


@pytest.mark.parametrize("name", ["calculator", "search_qa"])
def test_demonstration_qualities(name: str) -> None:
    env = load_environment(name, **({"num_train_examples": 30} if name == "calculator" else {}))
    examples = env.examples("train")[:30]
    scores = {}
    for quality in ("expert", "noisy", "format-only"):
        rollouts = []
        for example in examples:
            transcript = env.demonstrate(example, seed=3, quality=quality)
            assert transcript == env.demonstrate(example, seed=3, quality=quality)  # deterministic
            calls = [c for m in transcript if m.is_from("assistant") for c in m.tool_calls]
            assert calls and all(c.tool_name == env.tools[0].name for c in calls)  # the right syntax, always
            assert not any(m.tool_call_result.error for m in transcript if m.is_from("tool"))
            from haystack_rl import Rollout

            rollout = Rollout(example_id=str(example["id"]), rollout_index=0, seed=3, example=example,
                              messages=transcript)  # fmt: skip
            rollouts.append(env.rubric.score(rollout).reward or 0.0)
        scores[quality] = sum(rollouts) / len(rollouts)
    assert scores["expert"] == 1.0 and scores["format-only"] <= 0.1 and 0.3 <= scores["noisy"] < 1.0, scores
    rows = demonstrations(env, "format-only", num_examples=2)
    assert len(rows) == 4 and rows[0]["completion"][0]["tool_calls"]  # a call, then an answer, per example
    assert rows[1]["prompt"][-1]["role"] == "tool" and rows[1]["prompt"][-1]["content"]  # the result, as generated
    assert [spec["function"]["name"] for spec in json.loads(rows[0]["tools"])] == [env.tools[0].name]
    with pytest.raises(ValueError, match="unknown demonstration quality 'sloppy'"):
        env.demonstrate(examples[0], seed=0, quality="sloppy")


runner = CliRunner()


def invoke(*args: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def test_cli_eval_with_an_agent_and_a_dataset(tmp_path: Path) -> None:
    tasks = write_jsonl(tmp_path / "tasks.jsonl", calculator_tasks(3))
    out = tmp_path / "oracle"
    agent = oracle_agent_yaml(tmp_path)
    result = invoke("eval", "--agent", agent, "--dataset", tasks, "--reward", "numeric_match", "-o", out)
    assert result.exit_code == 0, result.output
    rollouts = list(read_rollouts(out / "results.jsonl"))
    assert [r.reward for r in rollouts] == [1.0] * 3 and all(r.info["tool_calls"] == 1 for r in rollouts)
    config = json.loads((out / "run.json").read_text())
    assert config["env"] == "oracle_agent" and config["model"] == "oracle"
    assert config["env_args"] == {"agent": str(agent), "dataset": str(tasks), "reward": ["numeric_match"]}
    result = invoke("eval", "--agent", agent, "--dataset", tasks, "--model", "tiny", "--max-tokens", 2, "-n", 1,
                    "-o", tmp_path / "tiny")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "tiny" / "run.json").read_text())["model"] == "tiny"  # --model replaces it
    for args, says in [
        (("--agent", agent), "--agent AGENT.yml (or --pipeline PIPELINE.yml) and --dataset FILE go together"),
        (("calculator", "--agent", agent, "--dataset", tasks), "not an environment and --agent"),
        ((), "give an environment"),
        (("--agent", agent, "--dataset", tmp_path / "none.jsonl"), "dataset file not found"),
    ]:
        result = invoke("eval", *args, "-o", tmp_path / "bad")
        assert result.exit_code == 2 and says in " ".join(result.output.split()), result.output


def test_cli_run_asks_the_agent_a_question(tmp_path: Path) -> None:
    agent = oracle_agent_yaml(tmp_path)
    question = "Mia reads 3 pages a day for 4 days and then 2 more pages. How many pages does Mia read?"
    result = invoke("run", agent, "--message", question)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert 'calculator({"expression": "3 * 4 + 2"})' in text and "<answer>14</answer>" in text
    result = invoke("run", PIPELINES / "tic_tac_toe_eval.yml", "--message", "hi")
    assert result.exit_code == 2 and "no Agent component waiting for messages" in result.output


def test_sft_refuses_rows_truncated_away(caplog: pytest.LogCaptureFixture) -> None:
    from datasets import Dataset

    from haystack_rl.training.preflight import check_lengths

    with pytest.raises(ValueError, match=r"calculator: all 3 SFT rows were truncated away at sft.max_length=512"):
        check_lengths(Dataset.from_dict({"input_ids": []}), 3, 512, "calculator")
    check_lengths(Dataset.from_dict({"input_ids": [[1] * 512, [1] * 20]}), 3, 512, "calculator")
    assert "2 of 3 SFT rows reach sft.max_length=512" in caplog.text


def test_sft_refuses_rows_whose_prompt_outgrows_max_length_before_any_work(tiny_model_path: Path) -> None:
    from transformers import AutoTokenizer

    from haystack_rl.training.preflight import DemonstrationSetupError, check_row_lengths
    from haystack_rl.training.sft import demonstrations

    env = load_environment("calculator", num_train_examples=2, num_eval_examples=1)
    rows = demonstrations(env)  # the prompt holds the tool schema: ~800 tokens before the first reply
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    with pytest.raises(DemonstrationSetupError, match=r"first reply only after \d+ tokens, past sft.max_length=512"):
        check_row_lengths(tokenizer, rows, 512, "calculator")
    check_row_lengths(tokenizer, rows, 1024, "calculator")
