"""Kill a real `haystack-rl eval` subprocess midway (SIGKILL), resume it, and check every rollout is there once."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from haystack_rl.rollout_io import read_rollouts

N_EXAMPLES, R = 12, 3
PLUGIN = '''
"""slow_reverse: reverse_text with a slow oracle (test-only plug-in, registered by entry point)."""
import time

from haystack_rl_envs.reverse_text import ReverseTextEnv, oracle_baseline


def slow_oracle(messages, rng):
    time.sleep(0.25)  # blocks the event loop: rollouts finish one by one
    return oracle_baseline(messages, rng)


class SlowReverseEnv(ReverseTextEnv):
    name = "slow_reverse"

    def baselines(self):
        return {"slow_oracle": slow_oracle}


def load_environment(**kwargs):
    return SlowReverseEnv(**kwargs)
'''


def command(*args):
    script = Path(sys.executable).parent / "haystack-rl"
    prefix = [str(script)] if script.exists() else [sys.executable, "-m", "haystack_rl.cli"]
    return [*prefix, *map(str, args)]


@pytest.fixture
def plugin_env(tmp_path):
    """A third-party environment on PYTHONPATH with its entry point (a *.dist-info folder)."""
    site = tmp_path / "site"
    (site / "slow_reverse_plugin-0.1.dist-info").mkdir(parents=True)
    (site / "slow_reverse.py").write_text(textwrap.dedent(PLUGIN))
    info = site / "slow_reverse_plugin-0.1.dist-info"
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: slow-reverse-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[haystack_rl.environments]\nslow_reverse = slow_reverse:load_environment\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH", "")]))
    env["COLUMNS"] = "120"
    return env


def count_lines(path):
    return path.read_bytes().count(b"\n") if path.exists() else 0


def kill_when(
    process: subprocess.Popen, ready: Callable[[], bool], timeout_s: float, what: str, output: Callable[[], str]
) -> None:
    """SIGKILL `process` as soon as `ready()`; fail with its output if it exits first, or with `what` on timeout."""
    try:
        deadline = time.monotonic() + timeout_s
        while not ready():
            assert process.poll() is None, output()
            assert time.monotonic() < deadline, what
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_killed_eval_resumes_without_duplicates(tmp_path, plugin_env):
    out = tmp_path / "run"
    results = out / "results.jsonl"
    args = ["eval", "slow_reverse", "--model", "baseline:slow_oracle", "-n", N_EXAMPLES, "-r", R, "-c", 4, "-o", out]
    process = subprocess.Popen(command(*args), env=plugin_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    # start-up alone can take long on a loaded 2-core machine
    kill_when(
        process,
        lambda: count_lines(results) >= 2 * R,
        120,
        "the eval wrote no results in 120 s",
        lambda: process.stdout.read().decode() if process.stdout else "",
    )
    done_before = count_lines(results)
    assert process.returncode == -signal.SIGKILL, (process.returncode, done_before)
    assert 2 * R <= done_before < N_EXAMPLES * R, f"the run was not interrupted midway ({done_before} lines)"
    assert not (out / "metadata.json").exists()

    # Make the crash worse: a stray rollout of an unfinished group, then a torn (half-written) last line.
    lines = results.read_text().splitlines()
    finished = {json.loads(line)["example_id"] for line in lines}
    pending = next(f"eval-{i}" for i in range(N_EXAMPLES) if f"eval-{i}" not in finished)
    stray = json.loads(lines[0]) | {"example_id": pending, "rollout_index": 0, "reward": 0.123, "group_id": "stray"}
    with open(results, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(stray) + "\n")
        handle.write(lines[-1][: len(lines[-1]) // 2].replace(json.loads(lines[-1])["example_id"], pending))

    resumed = subprocess.run(command(*args, "--resume"), env=plugin_env, capture_output=True, text=True, timeout=90)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming" in resumed.stdout, resumed.stdout

    raw = results.read_text()
    assert raw.endswith("\n")
    records = [json.loads(line) for line in raw.splitlines()]  # every line is whole JSON
    keys = [(r["example_id"], r["rollout_index"]) for r in records]
    assert len(keys) == len(set(keys)) == N_EXAMPLES * R
    assert set(keys) == {(f"eval-{i}", j) for i in range(N_EXAMPLES) for j in range(R)}
    assert all(r["reward"] == 1.0 and r["group_id"] != "stray" for r in records), [
        r for r in records if r["reward"] != 1
    ]
    assert len(list(read_rollouts(results))) == N_EXAMPLES * R

    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["summary"]["n"] == N_EXAMPLES * R and metadata["summary"]["reward_mean"] == 1.0
    assert metadata["run"]["resumed_rollouts"] >= 2 * R
    assert metadata["command"].startswith("haystack-rl eval slow_reverse --model baseline:slow_oracle")
    assert metadata["command"].endswith("--resume")


def test_the_plugin_is_listed_by_envs(plugin_env):
    listed = subprocess.run(command("envs"), env=plugin_env, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and "slow_reverse" in listed.stdout


# --- training --------------------------------------------------------------------------------------
TRAIN_STEPS, SAVE_STEPS, KILL_AFTER = 8, 2, 2


def train_config(tmp_path, model_dir):
    return {
        "model": str(model_dir),
        "env": "reverse_text",
        "env_args": {"num_train_examples": 16, "num_eval_examples": 1, "min_chars": 5, "max_chars": 8},
        "output_dir": str(tmp_path / "train"),
        "save_steps": SAVE_STEPS,
        "sft": {"enabled": False},
        "grpo": {"steps": TRAIN_STEPS, "batch": 4, "num_generations": 2, "max_new_tokens": 6, "lr": 1e-3},
        "eval": {"num_examples": 1, "max_new_tokens": 4},
    }


def complete_checkpoints(grpo_dir):
    """Steps of the checkpoints whose trainer_state.json (written last) is there."""
    return sorted(int(p.parent.name.split("-")[1]) for p in grpo_dir.glob("checkpoint-*/trainer_state.json"))


@pytest.mark.slow
@pytest.mark.timeout(900)  # two trainer start-ups; minutes on a loaded 2-core machine
def test_killed_training_resumes_from_its_last_checkpoint(tmp_path, tiny_model_path):
    from transformers import AutoModelForCausalLM

    from haystack_rl.training.callbacks import read_records

    config = train_config(tmp_path, tiny_model_path)
    path = tmp_path / "train.yml"
    path.write_text(json.dumps(config))  # JSON is YAML
    out = Path(config["output_dir"])
    env = {**os.environ, "COLUMNS": "120", "OMP_NUM_THREADS": "1"}
    log = tmp_path / "train.log"
    with open(log, "wb") as handle:  # a file, not a pipe: a full pipe would block the trainer
        process = subprocess.Popen(command("train", path), env=env, stdout=handle, stderr=subprocess.STDOUT)
    kill_when(
        process,
        lambda: bool(complete_checkpoints(out / "grpo")) and complete_checkpoints(out / "grpo")[-1] >= KILL_AFTER,
        400,
        "no GRPO checkpoint in 400 s",
        lambda: log.read_text()[-3000:],
    )
    assert process.returncode == -signal.SIGKILL
    assert not (out / "final").exists() and not (out / "summary.json").exists(), "the run finished before the kill"
    last = complete_checkpoints(out / "grpo")[-1]
    assert KILL_AFTER <= last < TRAIN_STEPS
    logged_before = len((out / "metrics.jsonl").read_text().splitlines())

    resumed = subprocess.run(command("train", path, "--resume"), env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["grpo_resumed_from"] == str(out / "grpo" / f"checkpoint-{last}")
    records = read_records(out / "metrics.jsonl")[logged_before:]
    steps = [r["step"] for r in records if r.get("stage") == "grpo" and "reward" in r]
    assert steps == list(range(last + 1, TRAIN_STEPS + 1)), steps  # continued from the checkpoint, not step 0
    model = AutoModelForCausalLM.from_pretrained(out / "final")
    assert sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.slow
def test_a_checkpoint_torn_by_a_kill_mid_save_is_skipped(tmp_path, tiny_model_path):
    """A kill during a save leaves checkpoint-N without trainer_state.json: resume from the one before."""
    import shutil

    from haystack_rl.training import Trainer

    config = train_config(tmp_path, tiny_model_path)
    config["grpo"]["steps"] = 2
    Trainer(config, evaluate_before_after=False).run()
    grpo_dir = Path(config["output_dir"]) / "grpo"
    assert complete_checkpoints(grpo_dir) == [2]
    torn = grpo_dir / "checkpoint-3"
    torn.mkdir()
    shutil.copy(grpo_dir / "checkpoint-2" / "config.json", torn / "config.json")  # saving stopped here
    config["grpo"]["steps"] = 4
    result = Trainer(config, evaluate_before_after=False).run(resume=True)
    assert str(result["metrics"]["grpo_resumed_from"]).endswith("checkpoint-2")
    assert complete_checkpoints(grpo_dir)[-1] == 4 and (Path(result["model_dir"]) / "config.json").exists()
