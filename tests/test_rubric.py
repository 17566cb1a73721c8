import pytest

from haystack_rl import RewardFunction, Rollout, Rubric


def rollout(text="x"):
    from haystack.dataclasses import ChatMessage

    return Rollout(example_id="0", rollout_index=0, seed=0, messages=[ChatMessage.from_assistant(text)])


def one(r):
    return 1.0


def half(r):
    return 0.5


def length(r):
    return float(len(r.completion))


def boom(r):
    raise ZeroDivisionError("no")


def rank(rollouts):
    order = sorted(range(len(rollouts)), key=lambda i: len(rollouts[i].completion))
    return [float(order.index(i)) for i in range(len(rollouts))]


def test_weights_are_normalized_by_positive_weights():
    scored = Rubric([RewardFunction(one, 1.0), RewardFunction(half, 0.2)]).score(rollout())
    assert scored.reward == pytest.approx((1.0 + 0.1) / 1.2)
    assert scored.rewards == {"one": 1.0, "half": 0.5}


def test_unnormalized_sum_and_negative_weights():
    scored = Rubric([RewardFunction(one, 1.0), RewardFunction(half, -0.2)], normalize=False).score(rollout())
    assert scored.reward == pytest.approx(0.9)


def test_weight_zero_is_a_metric():
    scored = Rubric([RewardFunction(one, 1.0), RewardFunction(length, 0.0)]).score(rollout("abc"))
    assert scored.reward == 1.0 and scored.metrics == {"length": 3.0} and "length" not in scored.rewards


def test_raising_reward_is_recorded_not_zero():
    scored = Rubric([RewardFunction(one), RewardFunction(boom)]).score(rollout())
    assert scored.reward is None
    assert scored.reward_errors == {"boom": "ZeroDivisionError: no"}


def test_raising_metric_keeps_reward():
    scored = Rubric([RewardFunction(one), RewardFunction(boom, 0.0)]).score(rollout())
    assert scored.reward == 1.0 and "boom" in scored.reward_errors


def test_group_function_sees_the_group():
    group = [rollout("aaa"), rollout("a"), rollout("aa")]
    Rubric([RewardFunction(rank, 1.0, group=True)], normalize=False).score_group(group)
    assert [r.reward for r in group] == [2.0, 0.0, 1.0]


def test_duplicate_names_refused():
    with pytest.raises(ValueError, match="unique"):
        Rubric([RewardFunction(one), RewardFunction(one)])
    with pytest.raises(ValueError, match="already exists"):
        Rubric().add(one).add(one)


def test_to_dict_round_trip():
    from haystack_rl_envs.reverse_text.env import format_reward, lcs_reward

    rubric = Rubric([RewardFunction(lcs_reward, 1.0), RewardFunction(format_reward, 0.0, name="fmt")], normalize=False)
    again = Rubric.from_dict(rubric.to_dict())
    assert [(f.func, f.weight, f.name) for f in again.functions] == [
        (lcs_reward, 1.0, "lcs_reward"),
        (format_reward, 0.0, "fmt"),
    ]
    assert again.normalize is False


def test_functions_outside_the_allowlist_are_refused():
    from haystack.core.errors import DeserializationError

    data = Rubric([RewardFunction(one)]).to_dict()
    assert data["init_parameters"]["functions"][0]["function"].endswith("test_rubric.one")
    with pytest.raises(DeserializationError, match="allowlist"):
        Rubric.from_dict(data)


def test_a_failed_rollout_is_left_unscored_and_group_functions_see_the_others():
    seen = []

    def group_size(rollouts):
        seen.append(len(rollouts))
        return [1.0] * len(rollouts)

    rubric = Rubric([RewardFunction(group_size, 1.0, group=True)])
    ok = Rollout(example_id="0", rollout_index=0, seed=0)
    failed = Rollout(example_id="0", rollout_index=1, seed=0, error="policy: ConnectionError: down")
    rubric.score_group([ok, failed])
    assert seen == [1] and ok.reward == 1.0
    assert failed.reward is None and failed.rewards == {} and failed.reward_errors == {}
