"""`haystack-rl init`: the generated package installs, passes its own tests, evaluates, runs as YAML and trains."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from haystack_rl.cli import app
from haystack_rl.scaffold import KINDS


def run(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def test_init_refuses_bad_names_and_existing_directories(tmp_path: Path) -> None:
    for args, says in [(["1abc"], "not a usable name"), (["ok", "--kind", "chat"], "use one of single, multi, tool")]:
        result = CliRunner().invoke(app, ["init", *args, "--dir", str(tmp_path)])
        assert result.exit_code == 2 and says in " ".join(result.output.split()), result.output
    assert CliRunner().invoke(app, ["init", "twice", "--dir", str(tmp_path)]).exit_code == 0
    again = CliRunner().invoke(app, ["init", "twice", "--dir", str(tmp_path)])
    assert again.exit_code == 2 and "already exists" in again.output


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_generated_package_installs_passes_its_tests_and_trains(tmp_path: Path, kind: str,
                                                                   tiny_model_path: Path) -> None:  # fmt: skip
    name = f"my_{kind}_env"
    created = CliRunner().invoke(app, ["init", name, "--kind", kind, "--dir", str(tmp_path)])
    assert created.exit_code == 0, created.output
    root = tmp_path / name
    python = sys.executable
    installed = run(python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e", ".", cwd=root)
    assert installed.returncode == 0, installed.stderr
    try:
        tests = run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=root)
        assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
        listed = run(python, "-m", "haystack_rl.cli", "envs", cwd=root)
        assert name in listed.stdout, listed.stdout
        evaluated = run(python, "-m", "haystack_rl.cli", "eval", name, "--model", "baseline:expert", "-n", "4",
                        "-o", "out", cwd=root)  # fmt: skip
        assert evaluated.returncode == 0, evaluated.stderr
        assert json.loads((root / "out" / "metadata.json").read_text())["summary"]["success"] == 1.0
        piped = run(python, "-m", "haystack_rl.cli", "run", "pipelines/eval.yml", "--set", "runner.num_examples=3",
                    cwd=root)  # fmt: skip
        assert piped.returncode == 0, piped.stderr
        small = [f"model={tiny_model_path}", "sft.steps=2", "sft.batch=4", "grpo.steps=1", "grpo.batch=4",
                 "grpo.num_generations=2", "eval.num_examples=2", "env_args={num_train_examples: 8}"]  # fmt: skip
        overrides = [part for text in small for part in ("--set", text)]
        trained = run(python, "-m", "haystack_rl.cli", "train", "configs/train.yml", *overrides, cwd=root, timeout=600)
        assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
        assert (root / "runs" / name / "final" / "config.json").exists()
    finally:
        run(python, "-m", "pip", "uninstall", "-q", "-y", name.replace("_", "-"), cwd=tmp_path)
