import pytest

from haystack_rl import available_environments, load_environment
from haystack_rl_envs.reverse_text import ReverseTextEnv


def test_splits_are_disjoint_sized_and_within_bounds():
    env = ReverseTextEnv(num_train_examples=300, num_eval_examples=50, min_chars=10, max_chars=30)
    train, evaluation = env.examples("train"), env.examples("eval")
    assert len(train) == 300 and len(evaluation) == 50
    assert not {e["prompt"] for e in train} & {e["prompt"] for e in evaluation}
    assert all(10 <= len(e["prompt"]) <= 30 and e["answer"] == e["prompt"][::-1] for e in train + evaluation)


def test_difficulty_knob_and_determinism():
    long = ReverseTextEnv(num_train_examples=10, num_eval_examples=10, min_chars=60, max_chars=80)
    assert all(60 <= len(e["prompt"]) <= 80 for e in long.examples("eval"))
    assert ReverseTextEnv(data_seed=3).examples() == ReverseTextEnv(data_seed=3).examples()
    assert ReverseTextEnv(data_seed=3).examples() != ReverseTextEnv(data_seed=4).examples()


def test_bad_knobs():
    with pytest.raises(ValueError, match="min_chars"):
        ReverseTextEnv(min_chars=20, max_chars=10)


def test_registry_and_round_trip():
    assert "reverse_text" in available_environments()
    env = load_environment("reverse_text", num_eval_examples=5, format_weight=0.5)
    again = ReverseTextEnv.from_dict(env.to_dict())
    assert again.examples() == env.examples() and again.rubric.functions[1].weight == 0.5
    with pytest.raises(KeyError, match="unknown environment 'nope'"):
        load_environment("nope")
    with pytest.raises(TypeError, match="bad environment arguments"):
        load_environment("reverse_text", bogus=1)
