import asyncio
from typing import Any

from haystack.dataclasses import ChatMessage

from haystack_rl import RolloutRunner, SingleTurnEnv, load_environment
from haystack_rl.episode import play_episode
from haystack_rl.generators import FunctionChatGenerator


def guess(messages, rng):
    return str(rng.randint(0, 10**9))


class Broken(SingleTurnEnv):
    name = "broken"

    def step(self, state, reply):
        raise RuntimeError("env exploded")


class FailingPolicy:
    def run(self, messages, generation_kwargs=None):
        raise ConnectionError("endpoint down")


def test_oracle_scores_one_and_groups_share_seed():
    env = load_environment("reverse_text", num_eval_examples=4)
    rollouts = RolloutRunner(env, FunctionChatGenerator(env.baselines()["oracle"]), rollouts_per_example=3).run()[
        "rollouts"
    ]
    assert len(rollouts) == 12 and all(r.reward == 1.0 for r in rollouts)
    for example_id in {r.example_id for r in rollouts}:
        group = [r for r in rollouts if r.example_id == example_id]
        assert sorted(r.rollout_index for r in group) == [0, 1, 2]
        assert len({r.seed for r in group}) == 1 and len({r.group_id for r in group}) == 1


def test_same_seed_same_transcript_and_rollouts_differ_within_group():
    env = load_environment("reverse_text", num_eval_examples=3)
    policy = FunctionChatGenerator(guess)

    def texts(seed):
        rollouts = RolloutRunner(env, policy, rollouts_per_example=2, seed=seed).run()["rollouts"]
        return [r.completion for r in rollouts]

    first = texts(1)
    assert first == texts(1)
    assert first != texts(2)
    assert first[0] != first[1]  # a group explores: sampling seeds differ per rollout


def test_failures_are_recorded_not_raised():
    env = load_environment("reverse_text", num_eval_examples=2)
    rollouts = RolloutRunner(env, FailingPolicy(), rollouts_per_example=2).run()["rollouts"]
    assert len(rollouts) == 4
    assert all(r.stop_reason == "error" and "endpoint down" in (r.error or "") for r in rollouts)
    broken = Broken(dataset=[{"prompt": "p"}])
    rollout = asyncio.run(play_episode(broken, FunctionChatGenerator(guess), broken.examples()[0], seed=0))
    assert rollout.error == "environment: RuntimeError: env exploded"
    assert rollout.timing["total_s"] >= 0


def test_resume_skips_finished_groups(tmp_path):
    env = load_environment("reverse_text", num_eval_examples=4)
    calls = []

    def counting(messages, rng):
        calls.append(messages[-1].text)
        return "<reversed_text>x</reversed_text>"

    policy = FunctionChatGenerator(counting)
    runner = RolloutRunner(env, policy, rollouts_per_example=2, output_dir=str(tmp_path))
    asyncio.run(runner.generate(env.examples("eval", 2)))
    assert len(calls) == 4
    with open(tmp_path / "results.jsonl", "a") as handle:
        handle.write('{"torn')
    rollouts = runner.run()["rollouts"]
    assert len(calls) == 8  # only the two unfinished examples were played
    assert sorted(r.key for r in rollouts) == sorted((e["id"], i) for e in env.examples("eval") for i in range(2))
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert len(lines) == 8 and all(line.endswith("}") for line in lines)


def test_environment_run_as_component():
    env = load_environment("reverse_text", num_eval_examples=1)
    out = env.run(example=env.examples()[0], seed=0)
    assert out["done"] is False and out["messages"][-1].is_from("user")
    out = env.run(state=out["state"], replies=[ChatMessage.from_assistant("<reversed_text>x</reversed_text>")])
    assert out["done"] is True and out["messages"][-1].text == "<reversed_text>x</reversed_text>"


def test_groups_stream_out_while_a_blocking_policy_plays():
    env = load_environment("reverse_text", num_eval_examples=6)
    calls = []

    def blocking(messages, rng):  # never awaits, like a scripted baseline
        calls.append(1)
        return "<reversed_text>x</reversed_text>"

    seen_at = []
    runner = RolloutRunner(env, FunctionChatGenerator(blocking), rollouts_per_example=2, concurrency=2)
    asyncio.run(runner.generate(on_group=lambda group: seen_at.append(len(calls))))
    assert len(seen_at) == 6 and seen_at[0] < len(calls) == 12  # the first group came out before the last play


def test_run_works_inside_a_running_event_loop() -> None:
    import asyncio

    env = load_environment("reverse_text", num_eval_examples=2)

    async def notebook_cell() -> list[Any]:
        return RolloutRunner(env, FunctionChatGenerator(env.baselines()["oracle"])).run()["rollouts"]

    rollouts = asyncio.run(notebook_cell())
    assert len(rollouts) == 2 and all(r.success for r in rollouts)


def test_a_slow_judge_scores_concurrent_rollouts_at_once() -> None:
    import time

    from haystack.dataclasses import ChatMessage

    from haystack_rl import Rubric, SingleTurnEnv
    from haystack_rl.rubrics.judge import JudgeReward

    class SlowJudge:
        """A remote judge: each call waits half a second (async, as Haystack's OpenAI generator is)."""

        async def run_async(self, messages: list[ChatMessage], generation_kwargs: Any = None) -> dict[str, Any]:
            import asyncio

            await asyncio.sleep(0.5)
            return {"replies": [ChatMessage.from_assistant("<score>1</score>")]}

        def run(self, messages: list[ChatMessage], generation_kwargs: Any = None) -> dict[str, Any]:
            time.sleep(0.5)
            return {"replies": [ChatMessage.from_assistant("<score>1</score>")]}

    env = SingleTurnEnv(dataset=[{"prompt": f"q{i}", "answer": "a"} for i in range(8)],
                        rubric=Rubric().add(JudgeReward(SlowJudge()), name="judge"))  # fmt: skip
    start = time.perf_counter()
    rollouts = RolloutRunner(env, FunctionChatGenerator(lambda m, r: "a"), concurrency=8).run()["rollouts"]
    elapsed = time.perf_counter() - start
    assert [r.reward for r in rollouts] == [1.0] * 8
    assert elapsed < 2.0, f"8 judged rollouts took {elapsed:.2f} s; a serialized judge takes 4 s"
