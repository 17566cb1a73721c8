"""The example scripts run end to end (with tiny settings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_train_and_deploy(tmp_path: Path) -> None:
    """Evaluate, train (SFT + GRPO), evaluate, then the eval pipeline with the tuned model swapped in."""
    command = [sys.executable, str(EXAMPLES / "train_and_deploy.py"), "--sft-steps", "2", "--grpo-steps", "1",
               "--games", "2", "--output", str(tmp_path), "--set", "env_args={num_train_examples: 4}",
               "--set", "sft.batch=4", "--set", "grpo.batch=4", "--set", "grpo.num_generations=2",
               "--set", "grpo.max_episode_tokens=32"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=580, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    final = tmp_path / "train" / "final"
    assert f"tuned model: {final}" in done.stdout.replace("\n", "")
    assert "evaluation (eval split)" in done.stdout and "with the tuned model" in done.stdout
    results = tmp_path / "deployed" / "results.jsonl"
    assert len(results.read_text().splitlines()) == 2 * 2  # 2 games x 2 rollouts each, as the pipeline asks
    metadata = json.loads((tmp_path / "deployed" / "metadata.json").read_text())
    assert metadata["run"]["model"] == str(final) and metadata["summary"]["n"] == 4


def _environments_of(path: Path) -> list[Any]:
    """The environments an example defines: its `load_environment()`, else its module-level environments."""
    from haystack_rl import Environment
    from haystack_rl.trust import import_file

    module = import_file(path)
    loader = getattr(module, "load_environment", None)
    if callable(loader):
        return [loader()]
    return [value for value in vars(module).values() if isinstance(value, Environment)]


DEFINING = [
    "custom_environment.py",
    "multi_turn_environment.py",
    "tool_environment.py",
    "train_rag_pipeline.py",
    "train_your_agent.py",
]


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_every_example_environment_passes_the_checker(name: str) -> None:
    from haystack_rl import check_environment

    environments = _environments_of(EXAMPLES / name)
    assert bool(environments) is (name in DEFINING), f"{name}: {environments}"
    for environment in environments:
        check_environment(environment)


@pytest.mark.parametrize("name", ["multi_turn_environment.py", "tool_environment.py"])
def test_user_environment_examples_run(name: str) -> None:
    done = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, timeout=300,
                          check=False)  # fmt: skip
    assert done.returncode == 0 and ("10/10" in done.stdout or "20/20" in done.stdout), done.stdout + done.stderr
