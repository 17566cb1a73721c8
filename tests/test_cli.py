import json

import pytest
from typer.testing import CliRunner

from haystack_rl.cli import app
from haystack_rl.cli.eval_setup import model_slug
from haystack_rl.overrides import apply_to_pipeline as apply_override
from haystack_rl.overrides import parse_override
from haystack_rl.rollout_io import read_rollouts

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def output_of(result):
    return result.output + (result.stderr if result.stderr_bytes is not None else "")


def test_envs_lists_reverse_text():
    result = invoke("envs")
    assert result.exit_code == 0, result.output
    assert "reverse_text" in result.output and "reverse" in result.output.split("reverse_text", 1)[1]


def test_eval_oracle_scores_one_and_streams_every_rollout(tmp_path):
    out = tmp_path / "oracle"
    result = invoke("eval", "reverse_text", "--model", "baseline:oracle", "-n", 8, "-r", 2, "--output", out)
    assert result.exit_code == 0, output_of(result)
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 16
    rollouts = list(read_rollouts(out / "results.jsonl"))
    assert sorted(r.key for r in rollouts) == sorted((f"eval-{i}", j) for i in range(8) for j in range(2))
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["summary"]["reward_mean"] == 1.0 and metadata["summary"]["n"] == 16
    assert metadata["summary"]["pass_at_k"] == {"pass@1": 1.0, "pass@2": 1.0}
    assert metadata["run"]["config"]["model"] == "baseline:oracle"
    assert metadata["command"].startswith("haystack-rl ")  # sys.argv: pytest's here, exact in test_resume
    config = json.loads((out / "run.json").read_text())
    assert config["env"] == "reverse_text" and config["rollouts_per_example"] == 2
    assert "reward mean" in result.output and "1.0000" in result.output


def test_eval_copy_baseline_scores_below_one(tmp_path):
    out = tmp_path / "copy"
    result = invoke(
        "eval",
        "reverse_text",
        "--model",
        "baseline:copy",
        "-n",
        8,
        "-r",
        1,
        "-o",
        out,
        "-a",
        '{"min_chars": 12, "max_chars": 20}',
    )
    assert result.exit_code == 0, output_of(result)
    summary = json.loads((out / "metadata.json").read_text())["summary"]
    assert summary["reward_mean"] < 1.0 and summary["rewards"]["format_reward"] == 1.0
    assert json.loads((out / "run.json").read_text())["env_args"] == {"min_chars": 12, "max_chars": 20}


def test_default_output_dir_is_named_after_env_and_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("eval", "reverse_text", "--model", "baseline:oracle", "-n", 2)
    assert result.exit_code == 0, output_of(result)
    (run_dir,) = (tmp_path / "outputs" / "evals").iterdir()
    assert run_dir.name.startswith("reverse_text--baseline-oracle--")
    assert model_slug("/models/my-ckpt/") == "my-ckpt" and model_slug("org/Qwen3 0.6B") == "Qwen3-0.6B"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "unknown environment 'nope'"),
        (["reverse_text", "-a", "{bad"], "-a/--env-args is not valid JSON"),
        (["reverse_text", "-a", "[1, 2]"], "must be a JSON object"),
        (["reverse_text", "-a", '{"no_such_arg": 1}'], "no_such_arg"),
        (["reverse_text", "--model", "/no/such/model/dir"], "model directory not found"),
        (["reverse_text", "--model", "baseline:nope"], "available: baseline:copy, baseline:oracle"),
        (["reverse_text", "--model", "baseline:oracle", "--resume"], "--resume needs --output"),
        (
            ["reverse_text", "--model", "m", "--base-url", "http://127.0.0.1:9/v1", "--api-key-env", "HRL_UNSET_VAR_X"],
            "HRL_UNSET_VAR_X",
        ),
        (["reverse_text", "--model", "baseline:oracle", "--split", "test"], "split: input should be 'eval' or 'train'"),
    ],
)
def test_bad_inputs_give_one_line_errors(args, message):
    result = invoke("eval", *args)
    text = output_of(result)
    assert result.exit_code == 2, text
    assert message in " ".join(text.split())
    assert "Traceback" not in text


def test_resume_refuses_a_different_run(tmp_path):
    out = tmp_path / "run"
    assert invoke("eval", "reverse_text", "--model", "baseline:oracle", "-n", 2, "-r", 2, "-o", out).exit_code == 0
    again = invoke("eval", "reverse_text", "--model", "baseline:oracle", "-n", 2, "-r", 2, "-o", out)
    assert again.exit_code == 2 and "--resume" in output_of(again)
    for args, key in [
        (["--model", "baseline:copy", "-r", 2], "model"),
        (["--model", "baseline:oracle", "-r", 3], "rollouts_per_example"),
        (["--model", "baseline:oracle", "-r", 2, "-a", '{"max_chars": 20}'], "env_args"),
    ]:
        result = invoke("eval", "reverse_text", "-n", 2, "-o", out, "--resume", *args)
        assert result.exit_code == 2, output_of(result)
        assert "holds a different run" in output_of(result) and key in output_of(result)
    missing = invoke("eval", "reverse_text", "--model", "baseline:oracle", "-o", tmp_path / "none", "--resume")
    assert missing.exit_code == 2 and "run.json" in output_of(missing)
    # the same config resumes (and can extend to more examples)
    more = invoke("eval", "reverse_text", "--model", "baseline:oracle", "-n", 3, "-r", 2, "-o", out, "--resume")
    assert more.exit_code == 0, output_of(more)
    assert len((out / "results.jsonl").read_text().splitlines()) == 6


def test_set_override_paths():
    data = {
        "components": {
            "runner": {
                "type": "x",
                "init_parameters": {
                    "policy": {"type": "y", "init_parameters": {"model": "tiny"}},
                    "generation_kwargs": {},
                },
            }
        }
    }
    apply_override(data, *parse_override("runner.policy.model=/ckpt"))
    apply_override(data, *parse_override("runner.generation_kwargs.temperature=0.5"))
    apply_override(data, *parse_override("runner.num_examples=4"))
    params = data["components"]["runner"]["init_parameters"]
    assert params["policy"]["init_parameters"]["model"] == "/ckpt"
    assert params["generation_kwargs"] == {"temperature": 0.5} and params["num_examples"] == 4
    assert parse_override("a.b=null")[1] is None and parse_override("a.b=true")[1] is True


@pytest.mark.parametrize("model", ["tiny", "tiny-init"])
def test_eval_tiny_model_writes_token_exact_rollouts(tmp_path, tiny_model_path, model):
    from transformers import AutoTokenizer

    out = tmp_path / model
    result = invoke("eval", "reverse_text", "--model", model, "-n", "8", "-r", "4", "--max-tokens", "24",
                    "--output", str(out))  # fmt: skip
    assert result.exit_code == 0, output_of(result)
    assert json.loads((out / "metadata.json").read_text())["run"]["config"]["model"] == model
    rollouts = list(read_rollouts(out / "results.jsonl"))
    assert len(rollouts) == 32 and {r.key for r in rollouts} == {(f"eval-{i}", j) for i in range(8) for j in range(4)}
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    for rollout in rollouts:
        (turn,) = rollout.turns
        assert turn.prompt_ids == tokenizer.apply_chat_template(
            [{"role": m.role.value, "content": m.text} for m in rollout.messages[:-1]],
            add_generation_prompt=True, tokenize=True, return_dict=False,
        )  # fmt: skip
        ids = turn.completion_ids
        body = ids[:-1] if ids[-1] == tokenizer.eos_token_id else ids
        assert tokenizer.decode(body, skip_special_tokens=False) == rollout.completion
        assert len(turn.logprobs or []) == len(ids) and all(lp <= 0 for lp in turn.logprobs or [])
