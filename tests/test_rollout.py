import math

import pytest
from haystack.dataclasses import ChatMessage

from haystack_rl import Rollout, Turn, read_rollouts, rollouts_to_dataset, write_rollouts
from haystack_rl.rollout import TokenMismatchError


def make_rollout(**kwargs):
    base = dict(
        example_id="e1",
        rollout_index=1,
        seed=42,
        messages=[ChatMessage.from_system("s"), ChatMessage.from_user("u"), ChatMessage.from_assistant("a")],
        example={"prompt": "u", "answer": "a"},
        turns=[Turn([1, 2, 3], [4, 5], [-0.1, -0.2]), Turn([1, 2, 3, 4, 5, 6, 7], [8], [-0.3])],
        reward=0.5,
        rewards={"f": 0.5},
        metrics={"m": 2.0},
        info={"board": [1, 2]},
        stop_reason="done",
        timing={"total_s": 0.1},
    )
    base.update(kwargs)
    return Rollout(**base)


def test_json_round_trip_keeps_everything():
    rollout = make_rollout()
    again = Rollout.from_json(rollout.to_json())
    assert again.to_dict() == rollout.to_dict()
    assert again.messages[2].text == "a" and again.group_id == "e1@42"


def test_completion_tokens_mask_env_tokens():
    ids, mask, logprobs = make_rollout().completion_tokens()
    assert ids == [4, 5, 6, 7, 8]
    assert mask == [1, 1, 0, 0, 1]
    assert logprobs == [-0.1, -0.2, 0.0, 0.0, -0.3]


def test_prefix_violation_is_detected():
    rollout = make_rollout(turns=[Turn([1, 2], [3]), Turn([1, 9, 3, 4], [5])])
    with pytest.raises(TokenMismatchError, match="turn 1"):
        rollout.completion_tokens()


def test_jsonl_skips_torn_tail_and_rejects_garbage(tmp_path):
    path = tmp_path / "r.jsonl"
    write_rollouts(path, [make_rollout(rollout_index=0), make_rollout(rollout_index=1)])
    with open(path, "a") as handle:
        handle.write('{"example_id": "e1", "rollout')  # a write cut short by a crash
    assert [r.rollout_index for r in read_rollouts(path)] == [0, 1]
    path.write_text("not json\n")
    with pytest.raises(ValueError, match="r.jsonl:1"):
        list(read_rollouts(path))


def test_dataset_view():
    dataset = rollouts_to_dataset([make_rollout(), make_rollout(rollout_index=2, reward=None, turns=[])])
    assert dataset.num_rows == 2
    assert dataset[0]["completion_ids"] == [4, 5, 6, 7, 8] and dataset[0]["env_mask"] == [1, 1, 0, 0, 1]
    assert dataset[0]["prompt"][-1] == {"role": "user", "content": "u"}
    assert dataset[0]["completion"] == [{"role": "assistant", "content": "a"}]
    assert math.isnan(dataset[1]["reward"]) and dataset[1]["prompt_ids"] == []
