import json
from pathlib import Path

import pytest
import yaml
from haystack import Pipeline
from haystack.core.errors import DeserializationError
from transformers import AutoTokenizer
from typer.testing import CliRunner

import haystack_rl  # noqa: F401 - allowlists our modules
from haystack_rl import RolloutRunner, Rubric, TagParser, read_rollouts
from haystack_rl.cli import app
from haystack_rl.generators import FunctionChatGenerator
from haystack_rl.results import ResultsWriter
from haystack_rl_envs.reverse_text import ReverseTextEnv, oracle_baseline
from haystack_rl_envs.reverse_text.env import format_reward, lcs_reward

# Haystack pipelines only: other YAML files there (e.g. training configs) have no `components`.
PIPELINES = [
    path
    for path in sorted((Path(__file__).parent.parent / "pipelines").glob("*.yml"))
    if "components" in (yaml.safe_load(path.read_text()) or {})
]


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.name)
def test_pipeline_loads_without_unsafe_and_round_trips(path):
    pipeline = Pipeline.loads(path.read_text())  # no unsafe=True, no extra allowed_modules
    first = pipeline.to_dict()
    again = Pipeline.loads(pipeline.dumps())

    def unordered(data: dict) -> dict:  # dumps sorts components by name, so connections may come in another order
        return {**data, "connections": sorted(data["connections"], key=lambda c: (c["sender"], c["receiver"]))}

    assert unordered(again.to_dict()) == unordered(first)
    assert Pipeline.loads(again.dumps()).dumps() == again.dumps()
    if path.name.endswith("_eval.yml"):
        names = dict(pipeline.walk())
        assert isinstance(names["runner"], RolloutRunner) and isinstance(names["writer"], ResultsWriter)
        assert first["connections"] == [{"sender": "runner.rollouts", "receiver": "writer.rollouts"}]


def test_there_are_eval_pipelines():
    assert {p.name for p in PIPELINES} >= {"reverse_text_eval.yml", "reverse_text_baseline_eval.yml"}


def component_round_trip(instance):
    data = instance.to_dict()
    rebuilt = type(instance).from_dict(json.loads(json.dumps(data)))
    assert rebuilt.to_dict() == data
    return rebuilt


def test_component_round_trips():
    rubric = component_round_trip(Rubric.from_functions([lcs_reward, format_reward], weights=[1.0, 0.0]))
    assert rubric.reward_names == ["lcs_reward"] and rubric.metric_names == ["format_reward"]
    parser = component_round_trip(TagParser("answer", allow_think=False))
    assert parser.parse("<answer>x</answer>") == "x"
    env = component_round_trip(ReverseTextEnv(num_eval_examples=3, max_chars=15))
    assert env.examples("eval") == ReverseTextEnv(num_eval_examples=3, max_chars=15).examples("eval")
    generator = component_round_trip(FunctionChatGenerator(oracle_baseline, name="oracle"))
    assert generator.function is oracle_baseline
    runner = component_round_trip(
        RolloutRunner(env, generator, rollouts_per_example=2, concurrency=3, num_examples=2, output_dir="x")
    )
    assert isinstance(runner.environment, ReverseTextEnv) and runner.policy.function is oracle_baseline
    component_round_trip(ResultsWriter("out", breakdowns=["side"]))


def yaml_with(path, **replacements):
    text = path.read_text()
    for old, new in replacements.items():
        assert old in text
        text = text.replace(old, new)
    return text


BASELINE = Path(__file__).parent.parent / "pipelines" / "reverse_text_baseline_eval.yml"


@pytest.mark.parametrize(
    ("old", "new", "module"),
    [
        ("haystack_rl.runner.RolloutRunner", "os.RolloutRunner", "os"),
        ("haystack_rl_envs.reverse_text.env.oracle_baseline", "subprocess.getoutput", "subprocess"),
    ],
)
def test_modules_outside_the_allowlist_are_refused(old, new, module):
    with pytest.raises(DeserializationError, match=f"'{module}"):
        Pipeline.loads(yaml_with(BASELINE, **{old: new}))


def test_run_command_on_the_baseline_pipeline_with_set(tmp_path):
    out = tmp_path / "p"
    result = CliRunner().invoke(app, [
        "run", str(BASELINE), "--set", f"runner.output_dir={out}", "--set", f"writer.output_dir={out}",
        "--set", "runner.num_examples=3", "--set", "runner.environment.max_chars=15",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len((out / "results.jsonl").read_text().splitlines()) == 6
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["summary"]["reward_mean"] == 1.0 and metadata["summary"]["n"] == 6
    assert metadata["run"]["overrides"][2] == "runner.num_examples=3"
    assert "reward mean" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "nope.x=1"], "no component 'nope'"),
        (["--set", "runner.environment.bogus=1"], "unexpected keyword argument 'bogus'"),
        (["--set", "runner"], "expected COMPONENT.PARAM"),
        (["--set", "runner.policy.function=os.system"], "not on the trusted-module allowlist"),
    ],
)
def test_run_command_errors(args, message):
    result = CliRunner().invoke(app, ["run", str(BASELINE), *args])
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code == 2 and message in " ".join(text.split()), text
    assert "Traceback" not in text


def test_run_command_broken_yaml(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("components: [\n")
    result = CliRunner().invoke(app, ["run", str(broken)])
    assert result.exit_code == 2 and "not valid YAML" in result.output + (result.stderr or "")
    unknown = tmp_path / "unknown.yml"
    unknown.write_text(yaml_with(BASELINE, **{"haystack_rl.results.ResultsWriter": "haystack_rl.results.NoSuchWriter"}))
    result = CliRunner().invoke(app, ["run", str(unknown)])
    assert result.exit_code == 2 and "NoSuchWriter" in result.output + (result.stderr or ""), result.output
    assert yaml.safe_load(BASELINE.read_text())["components"]["runner"]["type"] == "haystack_rl.runner.RolloutRunner"


def test_tic_tac_toe_pipeline_plays_full_games_with_the_tiny_model(tmp_path, tiny_model_path):
    out = tmp_path / "ttt"
    result = CliRunner().invoke(app, [
        "run", str(BASELINE.parent / "tic_tac_toe_eval.yml"),
        "--set", f"runner.output_dir={out}", "--set", f"writer.output_dir={out}",
        "--set", "runner.num_examples=2", "--set", "runner.policy.generation_kwargs.max_new_tokens=12",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    rollouts = list(read_rollouts(out / "results.jsonl"))
    assert len(rollouts) == 4 and all(r.error is None for r in rollouts)
    summary = json.loads((out / "metadata.json").read_text())["summary"]
    assert set(summary["breakdowns"]) == {"model_starts", "opponent"}
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    for rollout in rollouts:
        assert rollout.stop_reason in ("done", "max_turns") and len(rollout.turns) >= 1
        ids, mask, _ = rollout.completion_tokens()  # raises if a turn broke the prefix property
        assert sum(mask) == rollout.num_completion_tokens
        if len(rollout.turns) > 1:
            assert 0 in mask  # board updates and retries are environment tokens
        replies = [m.text for m in rollout.messages if m.is_from("assistant")]
        for turn, reply in zip(rollout.turns, replies, strict=True):
            ids = turn.completion_ids
            body = ids[:-1] if ids[-1] == tokenizer.eos_token_id else ids
            assert tokenizer.decode(body, skip_special_tokens=False) == reply


def test_pipelines_hold_only_pipelines_and_configs_only_valid_train_configs() -> None:
    from haystack_rl.training.config import TrainConfig

    root = Path(__file__).parent.parent
    assert all("components" in (yaml.safe_load(p.read_text()) or {}) for p in (root / "pipelines").glob("*.yml"))
    configs = sorted((root / "configs").glob("*.yml"))
    assert configs and all(TrainConfig.from_yaml(path) for path in configs)
