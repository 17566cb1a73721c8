"""YAML safety: bad pipelines are refused with an error naming the problem; secret values never reach disk or logs."""

import logging
from pathlib import Path

import pytest
from haystack import Pipeline
from haystack.components.generators.chat import OpenAIChatGenerator
from haystack.core.errors import DeserializationError, PipelineError
from haystack.utils import Secret
from typer.testing import CliRunner

import haystack_rl  # noqa: F401 - allowlists our modules
from haystack_rl import RolloutRunner
from haystack_rl.cli import app
from haystack_rl.results import ResultsWriter
from haystack_rl.rollout_io import read_rollouts
from haystack_rl_envs.reverse_text import ReverseTextEnv
from tools.testing import MockChatServer

BASELINE = Path(__file__).parent.parent / "pipelines" / "reverse_text_baseline_eval.yml"
KEY_VAR = "HAYSTACK_RL_TEST_API_KEY"
SECRET = "sk-test-7f3a9c2e-do-not-leak-5b1d"


def edited(old, new):
    text = BASELINE.read_text()
    assert old in text
    return text.replace(old, new, 1)


# (yaml text, error type when loaded by Pipeline.loads, words the error must name)
BAD_PIPELINES = {
    "module_outside_allowlist": (
        edited("haystack_rl_envs.reverse_text.env.oracle_baseline", "os.system"),
        DeserializationError, ["'os.system'", "allowlist"],
    ),
    "missing_component_class": (
        edited("haystack_rl.results.ResultsWriter", "haystack_rl.results.NoSuchWriter"),
        PipelineError, ["haystack_rl.results.NoSuchWriter", "'writer'"],
    ),
    "missing_type": (
        edited("    type: haystack_rl.results.ResultsWriter\n", ""), PipelineError, ["'type'", "'writer'"],
    ),
    "connection_to_missing_component": (
        edited("receiver: writer.rollouts", "receiver: ghost.rollouts"), ValueError, ["ghost"],
    ),
    "bad_init_parameter": (
        edited("      breakdowns: null", "      breakdowns: null\n      bogus_knob: 3"),
        DeserializationError, ["'writer'", "bogus_knob"],
    ),
    "bad_nested_parameter": (
        edited("          data_seed: 0", "          data_seed: 0\n          colour: red"),
        DeserializationError, ["ReverseTextEnv", "colour"],
    ),
    "broken_yaml": (edited("components:", "components: ["), DeserializationError, ["line"]),
}  # fmt: skip


def error_text(error):
    """An error and its causes, as one line (Haystack keeps the YAML parser's position in the cause)."""
    parts = []
    while error is not None:
        parts.append(str(error))
        error = error.__cause__
    return " ".join(" ".join(parts).split())


@pytest.mark.parametrize("case", BAD_PIPELINES)
def test_bad_pipelines_are_refused_by_the_library(case):
    text, error_type, names = BAD_PIPELINES[case]
    with pytest.raises(error_type) as caught:
        Pipeline.loads(text)  # after `import haystack_rl`, without unsafe=True
    message = error_text(caught.value)
    assert all(name in message for name in names), message


@pytest.mark.parametrize("case", BAD_PIPELINES)
def test_bad_pipelines_are_refused_by_the_cli(case, tmp_path):
    text, _, names = BAD_PIPELINES[case]
    path = tmp_path / "bad.yml"
    path.write_text(text)
    result = CliRunner().invoke(app, ["run", str(path)])
    output = " ".join((result.output + (result.stderr if result.stderr_bytes is not None else "")).split())
    assert result.exit_code == 2 and "Traceback" not in output, output
    assert str(path) in output and "error:" in output
    if case == "broken_yaml":
        names = ["not valid YAML", "line 9"]
    assert all(name in output for name in names), output
    assert not (tmp_path / "outputs").exists()


# --- secrets -----------------------------------------------------------------------------------------------
def files_containing(root, needle):
    return [str(p) for p in Path(root).rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def served_pipeline(base_url, out):
    """RolloutRunner with an OpenAI policy whose key comes from an env var -> ResultsWriter."""
    policy = OpenAIChatGenerator(api_key=Secret.from_env_var(KEY_VAR), model="mock", api_base_url=base_url,
                                 max_retries=0)  # fmt: skip
    pipeline = Pipeline()
    runner = RolloutRunner(ReverseTextEnv(num_eval_examples=3), policy, num_examples=3, output_dir=str(out))
    pipeline.add_component("runner", runner)
    pipeline.add_component("writer", ResultsWriter(str(out)))
    pipeline.connect("runner.rollouts", "writer.rollouts")
    return pipeline


def test_no_secret_in_yaml_results_metadata_or_logs_of_a_run(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(KEY_VAR, SECRET)
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "out"
    with MockChatServer("reverse_text") as server:
        text = served_pipeline(server.base_url, out).dumps()
        assert SECRET not in text and KEY_VAR in text  # the env var's name, never its value
        path = tmp_path / "served.yml"
        path.write_text(text)
        result = CliRunner().invoke(app, ["run", str(path)])
        assert server.last_headers()["authorization"] == f"Bearer {SECRET}"  # the key was really used
    assert result.exit_code == 0, result.output
    rollouts = list(read_rollouts(out / "results.jsonl"))
    assert len(rollouts) == 3 and all(r.error is None and r.reward == 1.0 for r in rollouts)
    assert (out / "metadata.json").exists()
    assert files_containing(tmp_path, SECRET) == []
    assert SECRET not in result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert caplog.records and SECRET not in caplog.text


def test_no_secret_in_eval_outputs_or_logs(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(KEY_VAR, SECRET)
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "eval"
    with MockChatServer("reverse_text") as server:
        result = CliRunner().invoke(app, ["eval", "reverse_text", "--model", "mock", "--base-url", server.base_url,
                                          "--api-key-env", KEY_VAR, "-n", "3", "-o", str(out)])  # fmt: skip
        assert server.last_headers()["authorization"] == f"Bearer {SECRET}"
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} >= {"results.jsonl", "metadata.json", "run.json"}
    assert KEY_VAR in (out / "run.json").read_text()
    assert files_containing(tmp_path, SECRET) == []
    assert SECRET not in result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert caplog.records and SECRET not in caplog.text


def test_a_token_secret_is_never_serialized():
    policy = OpenAIChatGenerator(api_key=Secret.from_token(SECRET), model="mock", api_base_url="http://127.0.0.1:9/v1")
    pipeline = Pipeline()
    pipeline.add_component("runner", RolloutRunner(ReverseTextEnv(num_eval_examples=1), policy))
    with pytest.raises(ValueError, match="token") as caught:
        pipeline.dumps()
    assert SECRET not in str(caught.value)
