import functools
import math
import random
from collections import Counter, defaultdict
from fractions import Fraction

import pytest
from haystack.dataclasses import ChatMessage

from haystack_rl import Rollout, RolloutRunner, load_environment
from haystack_rl.episode import derive_seed
from haystack_rl.generators import FunctionChatGenerator
from haystack_rl_envs.tic_tac_toe import TicTacToeEnv, game, minimax_baseline, random_baseline
from haystack_rl_envs.tic_tac_toe.env import opponent_bucket

MINIMAX = {"min_random_move_prob": 0.0, "max_random_move_prob": 0.0}
RANDOM = {"min_random_move_prob": 1.0, "max_random_move_prob": 1.0}


def env_with(**kwargs) -> TicTacToeEnv:
    return TicTacToeEnv(num_train_examples=4, num_eval_examples=4, **kwargs)


def reply(text: str) -> ChatMessage:
    return ChatMessage.from_assistant(text)


# --- rules -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("line", game.LINES)
def test_every_line_wins(line):
    board = "".join("X" if i in line else "." for i in range(9))
    assert game.winner(board) == "X"
    assert game.winner(board.replace("X", "O")) == "O"


def test_draw_open_and_legal_moves():
    assert game.winner("XOXXOOOXX") == "draw"
    assert game.winner("XO.......") is None
    assert game.legal_moves("XO.X.....") == [3, 5, 6, 7, 8, 9]
    assert game.play(game.EMPTY_BOARD, 9, "O") == "........O"
    with pytest.raises(ValueError, match="cell 1 is not a free cell"):
        game.play("X........", 1, "O")


def test_render_and_parse_round_trip():
    rng = random.Random(0)
    for _ in range(200):
        board = "".join(rng.choice("XO.") for _ in range(9))
        text = f"Some words.\n\n{game.render(board)}\n\nYour move (X)."
        assert game.parse_board(text) == board
    assert game.render("X...O...X") == "X|2|3\n-+-+-\n4|O|6\n-+-+-\n7|8|X"
    assert game.parse_board("no board here") is None
    assert game.parse_board("1|2|3\n4|5|9\n7|8|9") is None  # a number in the wrong cell
    two = game.render("X........") + "\n\nthen\n\n" + game.render("X...O....")
    assert game.parse_board(two) == "X...O...."  # the last board counts


def test_minimax_takes_wins_blocks_and_prefers_fast_wins():
    assert game.best_moves("XX.OO....", "X") == [3]  # win now rather than block
    assert game.best_moves("XX.O.....", "O") == [3]  # block
    # X can win now at 3, or set up a fork; the immediate win is the only best move
    assert game.best_moves("XX..O.O..", "X") == [3]
    assert sorted(game.best_moves(game.EMPTY_BOARD, "X")) == list(range(1, 10))  # all draws
    assert game.best_moves(".........", "O") == game.best_moves(".........", "X")


def test_opponent_move_random_share():
    rng = random.Random(1)
    randoms = sum(game.opponent_move("X........", "O", 0.3, rng)[1] for _ in range(2000))
    assert abs(randoms / 2000 - 0.3) < 0.05
    assert not any(game.opponent_move("X........", "O", 0.0, rng)[1] for _ in range(100))


# --- data, reset -----------------------------------------------------------------------------------
def test_examples_alternate_starts_and_draw_random_move_prob():
    env = TicTacToeEnv(num_train_examples=10, num_eval_examples=6, min_random_move_prob=0.2, max_random_move_prob=0.4)
    evals = env.examples("eval")
    assert [e["id"] for e in evals] == [f"eval-{i}" for i in range(6)]
    assert [e["model_starts"] for e in evals] == [True, False] * 3
    assert all(0.2 <= e["random_move_prob"] <= 0.4 for e in evals + env.examples("train"))
    assert len(env.examples("train")) == 10
    assert (
        TicTacToeEnv(num_eval_examples=6, num_train_examples=10).examples()
        == TicTacToeEnv(num_eval_examples=6, num_train_examples=10).examples()
    )


def test_eval_split_can_hold_fixed_opponents_in_pairs_without_moving_the_train_split():
    knobs = {"num_train_examples": 10, "num_eval_examples": 8, "min_random_move_prob": 1.0}
    env = TicTacToeEnv(**knobs, eval_random_move_probs=[1.0, 0.0])
    evals = env.examples("eval")
    assert [e["random_move_prob"] for e in evals] == [1.0, 1.0, 0.0, 0.0] * 2
    assert [e["model_starts"] for e in evals] == [True, False] * 4  # each opponent: the model starts half
    assert [opponent_bucket(e["random_move_prob"]) for e in evals[:4]] == ["random", "random", "minimax", "minimax"]
    assert env.examples("train") == TicTacToeEnv(**knobs).examples("train")
    assert TicTacToeEnv.from_dict(env.to_dict()).examples("eval") == evals
    with pytest.raises(ValueError, match="eval_random_move_probs"):
        TicTacToeEnv(eval_random_move_probs=[1.5])


def test_compact_wording_is_shorter_and_still_readable_by_the_baselines():
    full, compact = TicTacToeEnv(num_eval_examples=2), TicTacToeEnv(num_eval_examples=2, compact=True)
    for example in compact.examples("eval"):
        short, long = compact.demonstrate(example, seed=4), full.demonstrate(example, seed=4)
        assert [m.text for m in short if m.is_from("assistant")] == [m.text for m in long if m.is_from("assistant")]
        assert sum(len(m.text or "") for m in short) < 0.7 * sum(len(m.text or "") for m in long)
        for index, message in enumerate(short):
            if message.is_from("assistant"):  # the baselines read the board off the compact text
                board = game.parse_board(short[index - 1].text)
                move = minimax_baseline(short[:index], random.Random(0))
                assert board is not None and int(
                    move.removeprefix("<move>").removesuffix("</move>")
                ) in game.legal_moves(board)
    _, state = compact.reset(compact.examples("eval")[1], seed=0)
    assert state.messages[1].text.startswith("New game. The opponent moved first: ")
    assert "-+-" not in state.messages[1].text and state.messages[1].text.endswith(".")
    assert TicTacToeEnv.from_dict(compact.to_dict()).system_prompt == compact.system_prompt


def test_reset_info_and_opening():
    env = env_with(**MINIMAX)
    messages, state = env.reset(env.examples()[0], seed=3)
    assert [m.role.value for m in messages] == ["system", "user"]
    assert state.info["board"] == game.EMPTY_BOARD and state.info["model_starts"] is True
    assert state.info["opponent"] == "minimax" and state.info["winner"] is None
    assert game.parse_board(messages[-1].text) == game.EMPTY_BOARD
    messages, state = env.reset(env.examples()[1], seed=3)
    assert state.info["board"].count("O") == 1 and state.info["model_starts"] is False
    assert "The opponent moved first" in messages[-1].text
    assert game.parse_board(messages[-1].text) == state.info["board"]


def test_opponent_bucket():
    assert [opponent_bucket(p) for p in (0.0, 0.1, 0.5, 0.9, 1.0)] == ["minimax", "strong", "medium", "weak", "random"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_random_move_prob": 0.5, "max_random_move_prob": 0.2},
        {"max_random_move_prob": 1.5},
        {"demo_quality": "bad"},
    ],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="tic_tac_toe"):
        TicTacToeEnv(**kwargs)


# --- moves: parsing, invalid moves ------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    ["<move>5</move>", "<think>center is strong</think>\n<move>5</move>", "<move> 5 </move>", "ok: <move>5</move>",
     "<move>1</move> no, <move>5</move>", "<move>05</move>"],
)  # fmt: skip
def test_valid_move_forms(text):
    env = env_with(**MINIMAX)
    _, state = env.reset(env.examples()[0], seed=0)
    _, done = env.step(state, reply(text))
    assert not done and state.info["board"][4] == "X" and state.info["invalid_moves"] == 0


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("5", "no <move>N</move> in your reply"),
        ("<move>5", "no <move>N</move> in your reply"),
        ("", "no <move>N</move> in your reply"),
        ("<move>10</move>", "cell 10 is out of range 1-9"),
        ("<move>0</move>", "cell 0 is out of range 1-9"),
        ("<move>-1</move>", "cell -1 is out of range 1-9"),
        ("<move>five</move>", "'five' is not a cell number 1-9"),
        ("<move>1.5</move>", "'1.5' is not a cell number 1-9"),
        ("<move></move>", "'' is not a cell number 1-9"),
    ],
)
def test_invalid_moves_are_explained_and_counted(text, problem):
    env = env_with(**MINIMAX)
    _, state = env.reset(env.examples()[0], seed=0)
    new, done = env.step(state, reply(text))
    assert not done and state.info["board"] == game.EMPTY_BOARD
    assert state.info["invalid_moves"] == 1 and state.info["turns"] == 1
    assert new[0].text.startswith(f"Invalid move: {problem}. Try again.")
    assert game.parse_board(new[0].text) == game.EMPTY_BOARD  # the board is shown again


def test_occupied_cell_and_retry():
    env = env_with(**MINIMAX)
    _, state = env.reset(env.examples()[1], seed=0)  # the opponent started
    taken = state.info["board"].index("O") + 1
    new, done = env.step(state, reply(f"<move>{taken}</move>"))
    assert not done and f"cell {taken} is already taken by O" in new[0].text
    free = game.legal_moves(state.info["board"])[0]
    env.step(state, reply(f"<move>{free}</move>"))
    assert state.info["board"][free - 1] == "X" and state.info["invalid_moves"] == 1 and state.info["turns"] == 2


def test_invalid_move_can_end_the_game():
    env = env_with(invalid_move_ends_game=True, **MINIMAX)
    _, state = env.reset(env.examples()[0], seed=0)
    new, done = env.step(state, reply("<move>10</move>"))
    assert done and state.info["winner"] == "opponent" and "Game over: you lose" in new[0].text


def test_max_turns_stops_an_endless_retry():
    env = env_with(max_turns=4, **MINIMAX)
    _, state = env.reset(env.examples()[0], seed=0)
    dones = [env.step(state, reply("pass"))[1] for _ in range(4)]
    assert dones == [False, False, False, True]
    assert state.info["stop_reason"] == "max_turns" and state.info["winner"] is None
    assert state.info["invalid_moves"] == 4


# --- seeding -----------------------------------------------------------------------------------------
def opponent_replies(rollout: Rollout) -> dict[str, int]:
    """Board before each opponent move -> the opponent's cell."""
    board, out = game.EMPTY_BOARD, {}
    for player, cell in rollout.info["moves"]:
        if player == "opponent":
            out[board] = cell
        board = game.play(board, cell, "X" if player == "model" else "O")
    return out


def test_same_seed_same_opponent_across_a_group():
    env = TicTacToeEnv(num_eval_examples=6, min_random_move_prob=0.5, max_random_move_prob=0.5)
    rollouts = RolloutRunner(env, FunctionChatGenerator(random_baseline), rollouts_per_example=8).run()["rollouts"]
    for example in env.examples():
        seen: dict[str, set[int]] = defaultdict(set)
        for rollout in (r for r in rollouts if r.example_id == example["id"]):
            for board, cell in opponent_replies(rollout).items():
                seen[board].add(cell)
        assert seen and all(len(cells) == 1 for cells in seen.values())
        if not example["model_starts"]:
            assert len(seen[game.EMPTY_BOARD]) == 1  # the same opening move for the whole group


def test_seed_changes_the_opponent_and_replays_exactly():
    env = env_with(**RANDOM)
    example = env.examples()[1]
    openings = {env.reset(example, seed)[1].info["board"] for seed in range(30)}
    assert len(openings) > 3
    first, second = env.demonstrate(example, seed=5), env.demonstrate(example, seed=5)
    assert [m.text for m in first] == [m.text for m in second]


# --- rubric -----------------------------------------------------------------------------------------
def play_scripted(env: TicTacToeEnv, example: dict, seed: int, texts: list[str]) -> Rollout:
    _, state = env.reset(example, seed)
    for text in texts:
        if env.step(state, reply(text))[1]:
            break
    rollout = Rollout(example_id=example["id"], rollout_index=0, seed=seed, messages=state.messages, info=state.info)
    return env.rubric.score(rollout)


def test_rubric_clean_win_draw_and_penalties():
    env = env_with(**RANDOM)
    example = env.examples()[0]
    # a seed where minimax beats the random opponent; replay its moves as scripted replies
    for seed in range(50):
        transcript = env.demonstrate(example, seed)
        if "you win" in transcript[-1].text:
            break
    moves = [m.text for m in transcript if m.is_from("assistant")]
    win = play_scripted(env, example, seed, moves)
    assert win.rewards == {"outcome_reward": 1.0, "format_reward": 1.0, "invalid_move_penalty": 0.0}
    assert win.metrics == {"win": 1.0, "draw": 0.0, "loss": 0.0, "unfinished": 0.0, "invalid_move_rate": 0.0}
    assert win.reward == pytest.approx(1.2)

    messy = play_scripted(env, example, seed, ["<move>42</move>", "sure: " + moves[0], *moves[1:]])
    assert messy.info["winner"] == "model"  # same opponent behaviour: same boards, same game
    replies = len(moves) + 1
    # "<move>42</move>" is well formed (format is not legality); "sure: <move>N</move>" is not
    assert messy.rewards["format_reward"] == pytest.approx((replies - 1) / replies)
    assert messy.rewards["invalid_move_penalty"] == -0.1
    assert messy.metrics["invalid_move_rate"] == pytest.approx(1 / replies)
    assert messy.reward == pytest.approx(1.0 + 0.2 * (replies - 1) / replies - 0.1)

    draw_env = env_with(**MINIMAX)
    draw_example = draw_env.examples()[0]
    draw_moves = [m.text for m in draw_env.demonstrate(draw_example, 0) if m.is_from("assistant")]
    drawn = play_scripted(draw_env, draw_example, 0, draw_moves)
    assert drawn.metrics["draw"] == 1.0 and drawn.reward == pytest.approx(0.7)


def test_rubric_loss_and_weights():
    env = TicTacToeEnv(num_eval_examples=2, outcome_weight=2.0, format_weight=0.0, invalid_move_weight=0.5,
                       invalid_move_ends_game=True, **MINIMAX)  # fmt: skip
    lost = play_scripted(env, env.examples()[0], 0, ["<move>5</move>", "<move>5</move>"])  # forfeits
    assert lost.info["winner"] == "opponent" and lost.info["turns"] == 2
    # a zero weight turns format_reward into a metric
    assert lost.metrics == {"format_reward": 1.0, "win": 0.0, "draw": 0.0, "loss": 1.0, "unfinished": 0.0,
                            "invalid_move_rate": 0.5}  # fmt: skip
    assert lost.reward == pytest.approx(2.0 * 0.0 + 0.0 * 1.0 + 0.5 * -0.1)
    weights = {f.name: f.weight for f in env.rubric.functions}
    assert weights == {"outcome_reward": 2.0, "format_reward": 0.0, "invalid_move_penalty": 0.5,
                       "win": 0.0, "draw": 0.0, "loss": 0.0, "unfinished": 0.0, "invalid_move_rate": 0.0}  # fmt: skip


def test_game_stopped_at_max_turns_is_unfinished_not_silently_lost():
    env = TicTacToeEnv(num_eval_examples=2, max_turns=3, **MINIMAX)
    stopped = play_scripted(env, env.examples()[0], 0, ["<move>0</move>"] * 3)  # three invalid moves
    assert stopped.info["winner"] is None and stopped.info["stop_reason"] == "max_turns"
    assert stopped.rewards["outcome_reward"] == 0.0  # scored like a loss
    assert stopped.metrics == {"win": 0.0, "draw": 0.0, "loss": 0.0, "unfinished": 1.0, "invalid_move_rate": 1.0}
    full = env_with(**RANDOM)
    finished = [play_scripted(full, ex, 0, [m.text for m in full.demonstrate(ex, 0) if m.is_from("assistant")])
                for ex in full.examples()]  # fmt: skip
    for rollout in (stopped, *finished):  # every game lands in exactly one outcome
        assert sum(rollout.metrics[k] for k in ("win", "draw", "loss", "unfinished")) == 1.0


# --- demonstrations, baselines, serialization --------------------------------------------------------
@pytest.mark.parametrize("quality", ["expert", "noisy", "random", "random-legal"])
def test_demonstrations(quality):
    env = env_with(**RANDOM)
    for example in env.examples():
        transcript = env.demonstrate(example, seed=1, quality=quality)
        assert transcript[:2] == env.reset(example, seed=1)[0]  # the same opening as the episode
        assert "Game over" in transcript[-1].text
        replies = [m.text for m in transcript if m.is_from("assistant")]
        assert replies and all(t.startswith("<move>") for t in replies)
    with pytest.raises(ValueError, match="unknown demonstration quality 'great'"):
        env.demonstrate(env.examples()[0], 0, quality="great")


def test_baselines_read_only_the_conversation():
    env = env_with(**MINIMAX)
    messages, _ = env.reset(env.examples()[1], seed=0)
    move = int(minimax_baseline(messages, random.Random(0))[6:-7])
    assert move in game.best_moves(game.parse_board(messages[-1].text), "X")
    assert set(env.baselines()) == {"random", "minimax"}
    with pytest.raises(ValueError, match="tic_tac_toe baseline: no board"):
        random_baseline([ChatMessage.from_user("hello")], random.Random(0))


def test_serialization_round_trip_and_registry():
    env = load_environment("tic_tac_toe", num_eval_examples=3, max_turns=7, invalid_move_ends_game=True)
    restored = TicTacToeEnv.from_dict(env.to_dict())
    assert restored.to_dict() == env.to_dict() and restored.examples() == env.examples()
    assert restored.max_turns == 7 and restored.invalid_move_ends_game
    assert TicTacToeEnv.summary_breakdowns == ("model_starts", "opponent")


def test_docstring_example():
    env = TicTacToeEnv(num_eval_examples=2, min_random_move_prob=0.0, max_random_move_prob=0.0)
    example = env.examples("eval")[0]
    messages, state = env.reset(example, seed=0)
    new_messages, done = env.step(state, ChatMessage.from_assistant("<move>5</move>"))
    assert not done and state.info["board"].count("X") == 1 and state.info["board"].count("O") == 1
    transcript = env.demonstrate(example, seed=0)
    assert "draw" in transcript[-1].text


# --- baselines against the theory (DESIGN.md; exact values by expectimax) ---------------------------------
def play_baseline(baseline: str, n: int, **probs) -> dict[bool, Counter]:
    env = TicTacToeEnv(num_eval_examples=n, **probs)
    policy = FunctionChatGenerator(env.baselines()[baseline])
    rollouts = RolloutRunner(env, policy, concurrency=64).run()["rollouts"]
    assert all(r.error is None and r.stop_reason == "done" for r in rollouts)
    out: dict[bool, Counter] = {True: Counter(), False: Counter()}
    for rollout in rollouts:
        out[rollout.info["model_starts"]][rollout.info["winner"]] += 1
    return out


def test_minimax_draws_against_pure_minimax():
    results = play_baseline("minimax", 50, **MINIMAX)
    assert results[True] + results[False] == Counter({"draw": 50})


def test_minimax_never_loses_to_a_random_opponent():
    results = play_baseline("minimax", 1000, **RANDOM)
    # theory: first mover 96.8% wins / 3.2% draws, second 77.7% / 22.3%, no losses
    for starts, expected_win in ((True, 0.968), (False, 0.777)):
        counts = results[starts]
        assert counts["opponent"] == 0
        n = sum(counts.values())
        assert abs(counts["model"] / n - expected_win) < 4 * math.sqrt(expected_win * (1 - expected_win) / n)


@pytest.mark.parametrize(
    ("model_starts", "expected"),
    # exact win/draw/loss of a uniformly random player against a uniformly random opponent
    [(True, {"model": 0.585, "draw": 0.127, "opponent": 0.288}),
     (False, {"model": 0.288, "draw": 0.127, "opponent": 0.585})],
)  # fmt: skip
def test_random_against_random_matches_theory(model_starts, expected, random_results):
    counts = random_results[model_starts]
    n = sum(counts.values())
    for outcome, p in expected.items():  # 4 binomial standard errors: about 6 points for n = 1000
        assert abs(counts[outcome] / n - p) < 4 * math.sqrt(p * (1 - p) / n), (outcome, counts)


@pytest.fixture(scope="module")
def random_results() -> dict[bool, Counter]:
    return play_baseline("random", 2000, **RANDOM)


def test_derive_seed_is_what_the_opponent_uses():
    env = env_with(**RANDOM)
    _, state = env.reset(env.examples()[1], seed=11)
    rng = random.Random(derive_seed(11, game.EMPTY_BOARD))
    cell, was_random = game.opponent_move(game.EMPTY_BOARD, "O", 1.0, rng)
    assert was_random and state.info["moves"] == [["opponent", cell]]


def test_theory_constants_by_expectimax():
    """The expected rates used above, computed exactly: (win, draw, loss) of X's policy vs a uniform opponent."""

    @functools.cache
    def expected(board: str, to_move: str, me: str, policy: str) -> tuple[float, float, float]:
        result = game.winner(board)
        if result is not None:
            return (0.0, 1.0, 0.0) if result == "draw" else (1.0, 0.0, 0.0) if result == me else (0.0, 0.0, 1.0)
        mine = to_move == me and policy != "random"
        moves = game.legal_moves(board) if not mine else game.best_moves(board, to_move)
        if mine and policy == "expert":
            moves = [game.expert_move(board, to_move)]
        outcomes = [expected(game.play(board, cell, to_move), game.other(to_move), me, policy) for cell in moves]
        return tuple(sum(o[i] for o in outcomes) / len(outcomes) for i in range(3))  # type: ignore[return-value]

    rounded = [round(x, 3) for x in expected(game.EMPTY_BOARD, "X", "X", "random")]
    assert rounded == [0.585, 0.127, 0.288]
    assert [round(x, 3) for x in expected(game.EMPTY_BOARD, "O", "X", "random")] == [0.288, 0.127, 0.585]
    assert [round(x, 3) for x in expected(game.EMPTY_BOARD, "X", "X", "minimax")] == [0.968, 0.032, 0.0]
    assert [round(x, 3) for x in expected(game.EMPTY_BOARD, "O", "X", "minimax")] == [0.777, 0.223, 0.0]
    # the demonstrations' expert: minimax-optimal (no losses), and the best of those moves against a random opponent
    assert [round(x, 3) for x in expected(game.EMPTY_BOARD, "X", "X", "expert")] == [0.995, 0.005, 0.0]
    assert [round(x, 3) for x in expected(game.EMPTY_BOARD, "O", "X", "expert")] == [0.916, 0.084, 0.0]


def test_no_policy_that_never_loses_wins_more_often_than_the_expert_against_a_random_opponent():
    """
    The ceiling of "beat the expert against a random opponent with no losses": among moves that never lose
    (minimax value >= 0), the most wins against uniformly random play is exactly the expert's 99.5% / 91.6%.
    Only risky play wins more (at best 93.2% when the opponent starts, with 0.7% losses).
    """

    @functools.cache
    def best_safe_win(board: str, to_move: str) -> Fraction:
        result = game.winner(board)
        if result is not None:
            return Fraction(int(result == "X"))
        if to_move == "O":  # the uniformly random opponent
            moves = game.legal_moves(board)
            return sum((best_safe_win(game.play(board, cell, "O"), "X") for cell in moves), Fraction(0)) / len(moves)
        safe = [cell for cell in game.legal_moves(board) if game._value(game.play(board, cell, "X"), "O") <= 0]
        return max(best_safe_win(game.play(board, cell, "X"), "O") for cell in safe)

    @functools.cache
    def expert_win(board: str, to_move: str) -> Fraction:
        result = game.winner(board)
        if result is not None:
            return Fraction(int(result == "X"))
        if to_move == "X":
            return expert_win(game.play(board, game.expert_move(board, "X"), "X"), "O")
        moves = game.legal_moves(board)
        return sum((expert_win(game.play(board, cell, "O"), "X") for cell in moves), Fraction(0)) / len(moves)

    for starts in ("X", "O"):
        assert best_safe_win(game.EMPTY_BOARD, starts) == expert_win(game.EMPTY_BOARD, starts)
    assert round(float(expert_win(game.EMPTY_BOARD, "O")), 3) == 0.916


def test_expert_demonstrations_follow_the_deterministic_expert():
    env = env_with(min_random_move_prob=0.0, max_random_move_prob=1.0)
    for example in env.examples():
        for seed in range(25):
            _, state = env.reset(example, seed)
            for message in env.demonstrate(example, seed, quality="expert")[2:]:
                if message.is_from("assistant"):
                    cell = int(message.text[6:-7])
                    assert cell == game.expert_move(state.info["board"], "X")
                    assert cell in game.best_moves(state.info["board"], "X")
                    env.step(state, message)
    assert game.expert_move(game.EMPTY_BOARD, "X") == 1  # corners score best against a random reply; lowest first
    assert game.expert_move("XX.OO....", "X") == 3 and game.expert_move("XX.O.....", "O") == 3
