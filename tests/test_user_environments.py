"""A user's own environments, written as a new user would (a file in their directory, no serialization code, no
allowlist call), checked, evaluated, serialized to a YAML pipeline, run and trained through the public CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from haystack import Pipeline
from typer.testing import CliRunner

from haystack_rl import RolloutRunner, check_environment
from haystack_rl.cli import app
from haystack_rl.generators import FunctionChatGenerator
from haystack_rl.results import ResultsWriter
from haystack_rl.trust import load_callable

HIGHER_LOWER = '''
"""Higher or lower: guess a number from 1 to 50."""
import random
import re

from haystack.dataclasses import ChatMessage

from haystack_rl import MultiTurnEnv, Rubric, TagParser

GUESS = TagParser("guess")


def found(rollout):
    return float(rollout.info["found"])


def fewer_turns(rollout):
    return 1.0 - rollout.info["guesses"] / 10 if rollout.info["found"] else 0.0


def bisect(messages, rng):
    low, high = 1, 50
    for guess, hint in zip(messages, messages[1:]):
        if guess.is_from("assistant") and GUESS.parse(guess.text):
            value = int(GUESS.parse(guess.text))
            if "higher" in hint.text:
                low = value + 1
            elif "lower" in hint.text:
                high = value - 1
    return f"<guess>{(low + high) // 2}</guess>"


class HigherLower(MultiTurnEnv):
    name = "higher_lower"
    description = "guess a number, hints say higher or lower"

    def __init__(self, size=20, seed=0, max_turns=8):
        rng = random.Random(seed)
        rows = [{"prompt": "Guess my number (1-50).", "secret": rng.randint(1, 50)} for _ in range(size)]
        super().__init__(dataset=rows, rubric=Rubric.from_functions([found, fewer_turns]), max_turns=max_turns,
                         system_prompt="Answer <guess>N</guess>.")

    def setup_state(self, state):
        state.info.update(found=False, guesses=0)
        state.objects["history"] = []  # a live object: never serialized

    def env_response(self, state, reply):
        text = GUESS.parse(reply.text) or ""
        if not re.fullmatch(r"\\d+", text.strip()):
            return [ChatMessage.from_user("Answer <guess>N</guess>.")], False
        state.info["guesses"] += 1
        state.objects["history"].append(int(text))
        secret = state.example["secret"]
        state.info["found"] = int(text) == secret
        hint = "found" if int(text) == secret else "higher" if int(text) < secret else "lower"
        return [ChatMessage.from_user(hint)], int(text) == secret

    def is_success(self, rollout):
        return rollout.info["found"]

    def baselines(self):
        return {"bisect": bisect}


def hints():
    return ["higher", "lower"]


def load_environment(**kwargs):
    return HigherLower(**kwargs)
'''

UNIT_TOOL = '''
"""Grams to ounces with a tool."""
from haystack.dataclasses import ChatMessage, ToolCall
from haystack.tools import create_tool_from_function

from haystack_rl import ToolEnv
from haystack_rl.rubrics.tool_rewards import tool_use_rubric


def to_ounces(grams: float) -> str:
    """Convert grams to ounces."""
    return f"{grams / 28.35:.2f}"


def converter(messages, rng):
    if messages[-1].tool_call_result is not None:
        return f"<answer>{messages[-1].tool_call_result.result}</answer>"
    grams = float(messages[-1].text.split()[3])
    return ChatMessage.from_assistant(tool_calls=[ToolCall(tool_name="to_ounces", arguments={"grams": grams})])


def load_environment(count=6):
    rows = [{"prompt": f"How many ounces? {g} grams", "answer": to_ounces(g)} for g in range(100, 100 + 50 * count, 50)]
    return ToolEnv(tools=[create_tool_from_function(to_ounces)], dataset=rows, rubric=tool_use_rubric("numeric_match"),
                   baselines={"converter": converter}, name="ounces",
                   system_prompt="Use the tool, then answer inside <answer></answer>.")
'''


@pytest.fixture
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The user's working directory, holding their own environments (as modules named after their files)."""
    (tmp_path / "higher_lower.py").write_text(textwrap.dedent(HIGHER_LOWER))
    (tmp_path / "ounces.py").write_text(textwrap.dedent(UNIT_TOOL))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield tmp_path
    for name in ("higher_lower", "ounces", "broken", "expert"):  # each test's user has files of the same names
        sys.modules.pop(name, None)


def invoke(*args: Any) -> Any:
    result = CliRunner().invoke(app, [str(a) for a in args])
    result.text = " ".join((result.output + (result.stderr if result.stderr_bytes is not None else "")).split())
    return result


@pytest.mark.parametrize(("file", "baseline"), [("higher_lower.py", "bisect"), ("ounces.py", "converter")])
def test_a_user_environment_passes_the_checker_and_evaluates_from_its_file(user_dir: Path, file: str,
                                                                           baseline: str) -> None:  # fmt: skip
    env = load_callable(f"{file}:load_environment")()
    check_environment(env)
    out = user_dir / "eval"
    result = invoke("eval", f"{file}:load_environment", "--model", f"baseline:{baseline}", "-n", 4, "-r", 2, "-o", out)
    assert result.exit_code == 0, result.text
    summary = json.loads((out / "metadata.json").read_text())["summary"]
    assert summary["success"] == 1.0 and summary["pass_at_k"] == {"pass@1": 1.0, "pass@2": 1.0}
    assert summary["environment"] == env.name


def test_a_user_environment_runs_as_a_yaml_pipeline_with_allow_module(user_dir: Path) -> None:
    env = load_callable("higher_lower.py:load_environment")(size=4)
    baselines = env.baselines()
    pipeline = Pipeline()
    pipeline.add_component("runner", RolloutRunner(env, FunctionChatGenerator(baselines["bisect"], name="bisect"),
                                                   rollouts_per_example=2, output_dir="yaml-eval"))  # fmt: skip
    pipeline.add_component("writer", ResultsWriter("yaml-eval"))
    pipeline.connect("runner.rollouts", "writer.rollouts")
    (user_dir / "eval.yml").write_text(pipeline.dumps())

    def cli(*args: str) -> subprocess.CompletedProcess[str]:  # a fresh process: nothing of the user's is imported
        env_vars = {**os.environ, "COLUMNS": "200"}
        return subprocess.run([sys.executable, "-m", "haystack_rl.cli", *args], cwd=user_dir, env=env_vars,
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip

    refused = cli("run", "eval.yml")
    said = " ".join(refused.stderr.split())
    assert refused.returncode == 2 and "--allow-module higher_lower" in said and "Traceback" not in said, said
    done = cli("run", "eval.yml", "--allow-module", "higher_lower")
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((user_dir / "yaml-eval" / "metadata.json").read_text())["summary"]
    assert summary["n"] == 8 and summary["success"] == 1.0


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_user_environment_trains_with_sft_and_a_grpo_step(user_dir: Path, tiny_model_path: Path) -> None:
    config = {"model": str(tiny_model_path), "env": "higher_lower.py:load_environment", "env_args": {"size": 8},
              "output_dir": str(user_dir / "run"), "save_steps": 5,
              "sft": {"steps": 2, "batch": 4, "quality": "expert"},
              "grpo": {"steps": 1, "batch": 4, "num_generations": 2, "max_new_tokens": 24, "max_episode_tokens": 48},
              "eval": {"num_examples": 2}}  # fmt: skip
    (user_dir / "train.yml").write_text(json.dumps(config))
    result = invoke("train", "train.yml")
    assert result.exit_code == 0, result.text
    metrics = json.loads((user_dir / "run" / "summary.json").read_text())
    assert metrics["sft_examples"] > 0 and metrics["grpo_steps_done"] == 1
    assert (user_dir / "run" / "final" / "config.json").exists()


# --- every user error: one or two lines that say what to do ------------------------------------------------
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["nowhere.py:load_environment"], "file not found: nowhere.py"),
        (["no_such_module:load_environment"], "no module named 'no_such_module'; run from the directory"),
        (["higher_lower.py:make_env"], "has no function 'make_env' (it has: HigherLower, bisect"),
        (["higher_lower.py"], "to load a file, name its function: higher_lower.py:load_environment"),
        (["higher_lower.py:hints"], "returned list, not an Environment"),
        (["higher_lower.py:load_environment", "--model", "baseline:nope"], "or any scripted policy as baseline:"),
        (["higher_lower.py:load_environment", "--set", "concurrency"], "expected KEY[.SUB...]=VALUE"),
        (["higher_lower.py:load_environment", "--set", "speed=3"], "unknown key 'speed'; valid:"),
        (["higher_lower.py:load_environment", "--allow-module", "not a module"], "not a module name"),
    ],
)
def test_user_errors_in_eval_are_one_line(user_dir: Path, args: list[str], says: str) -> None:
    result = invoke("eval", *args, "-o", user_dir / "out")
    assert result.exit_code == 2 and says in result.text and "Traceback" not in result.text, result.text


def test_a_broken_user_module_is_one_line(user_dir: Path) -> None:
    (user_dir / "broken.py").write_text("import numpy_nope\n")
    result = invoke("eval", "broken.py:load_environment")
    assert result.exit_code == 2 and "broken.py failed while importing: ModuleNotFoundError" in result.text
    assert "Traceback" not in result.text


def test_debug_shows_the_traceback(user_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from haystack_rl.cli.app import DEBUG_ENV
    from haystack_rl.trust import UserCodeError

    monkeypatch.setenv(DEBUG_ENV, "0")  # restored after the test (--debug sets it)
    result = invoke("--debug", "eval", "nowhere.py:load_environment")
    assert result.exit_code != 0 and isinstance(result.exception, UserCodeError)


def test_an_unserializable_environment_says_what_to_change() -> None:
    from haystack_rl import EnvironmentCheckError, SingleTurnEnv

    env = SingleTurnEnv(dataset=[{"prompt": "x"}])
    env.baselines = lambda: {"echo": lambda messages, rng: "x"}  # type: ignore[method-assign]
    check_environment(env)  # nothing unserializable went to the constructor
    from haystack_rl.environments.tool_env import ToolEnv

    lambda_tools = ToolEnv(tools=[], dataset=[{"prompt": "x"}], baselines={"echo": lambda messages, rng: "x"})
    with pytest.raises(EnvironmentCheckError, match="lambda or a local function, which cannot be serialized"):
        check_environment(lambda_tools)


# --- an Agent YAML route names its demonstrations ------------------------------------------------------------
def test_an_agent_config_without_demonstrations_fails_before_any_work(user_dir: Path, tiny_model_path: Path) -> None:
    from haystack_rl.training.sft import demonstration_transcripts

    agent = Path(__file__).resolve().parent.parent / "pipelines" / "calculator_agent.yml"
    tasks = user_dir / "tasks.jsonl"
    tasks.write_text(
        "".join(json.dumps({"prompt": f"What is {a} * 3?", "answer": str(3 * a)}) + "\n" for a in range(4))
    )
    config = {"model": str(tiny_model_path), "agent": str(agent), "dataset": str(tasks), "reward": "numeric_match",
              "output_dir": str(user_dir / "run"), "sft": {"steps": 2, "batch": 2, "max_length": 1024},
              "grpo": {"steps": 0}, "eval": {"num_examples": 1, "max_new_tokens": 128}}  # fmt: skip
    (user_dir / "train.yml").write_text(json.dumps(config))
    refused = invoke("train", "train.yml")
    assert refused.exit_code == 2 and "set sft.demonstrations to a scripted policy" in refused.text, refused.text
    assert not (user_dir / "run" / "metrics.jsonl").exists()  # refused before the first evaluation

    from haystack_rl.training.config import TrainConfig

    (user_dir / "expert.py").write_text(
        textwrap.dedent("""
        from haystack.dataclasses import ChatMessage, ToolCall

        def expert(messages, rng):
            if messages[-1].tool_call_result is not None:
                return f"<answer>{messages[-1].tool_call_result.result}</answer>"
            a = messages[-1].text.split()[2]
            return ChatMessage.from_assistant(tool_calls=[ToolCall(tool_name="calculator",
                                                                   arguments={"expression": f"{a} * 3"})])
    """)
    )
    settings = TrainConfig.from_dict({**config, "sft": {"demonstrations": "expert.py:expert", "max_length": 1024}})
    environment = settings.build_environment()
    found = demonstration_transcripts(environment, source="expert.py:expert")
    assert len(found) == 4 and found[0][-1].text == "<answer>0</answer>"
    # transcripts in a JSONL file (e.g. a results.jsonl of an earlier eval) work too
    lines = [json.dumps({"messages": [m.to_dict() for m in messages]}) for messages in found]
    (user_dir / "demos.jsonl").write_text("\n".join(lines) + "\n")
    assert demonstration_transcripts(environment, source=str(user_dir / "demos.jsonl")) == found
    config["sft"]["demonstrations"] = "expert.py:expert"
    (user_dir / "train.yml").write_text(json.dumps(config))
    trained = invoke("train", "train.yml")
    assert trained.exit_code == 0, trained.text
    assert json.loads((user_dir / "run" / "summary.json").read_text())["sft_examples"] > 0
