"""The tic_tac_toe environment: data, reset, env_response, rubric, demonstrations, baselines, `load_environment`."""

from __future__ import annotations

import random
import re
from typing import Any

from haystack.dataclasses import ChatMessage

from haystack_rl import EpisodeState, MultiTurnEnv, Rollout, Rubric, TagParser
from haystack_rl.episode import derive_seed
from haystack_rl.rubrics import RewardFunction
from haystack_rl_envs.tic_tac_toe import game

PARSER = TagParser("move")
MODEL_MARK, OPPONENT_MARK = "X", "O"
SYSTEM_PROMPT = (
    "You play tic-tac-toe as X against an opponent playing O. Cells are numbered 1-9, row by row; "
    "free cells show their number. Answer with one free cell inside <move></move> tags, e.g. <move>5</move>."
)
#: The system prompt with `compact=True`: a third of the length.
COMPACT_SYSTEM_PROMPT = "Tic-tac-toe. You play X, the opponent O. Answer with one free cell: <move>N</move>."
QUALITIES = ("expert", "noisy", "random")
#: Share of random legal moves in "noisy" demonstrations.
NOISY_RANDOM_MOVE_PROB = 0.25
_MARK = re.compile(r"You play ([XO])\b")


# --- rubric: module-level so the rubric serializes by import path ---------------------------------
def outcome_reward(rollout: Rollout) -> float:
    """1 for a win, 0.5 for a draw, 0 for a loss or an unfinished game (see `unfinished`)."""
    return {"model": 1.0, "draw": 0.5}.get(str(rollout.info.get("winner")), 0.0)


def format_reward(rollout: Rollout) -> float:
    """Share of the model's replies that are exactly one <move> block (a <think> block before it is fine)."""
    return PARSER.format_reward(rollout)


def invalid_move_penalty(rollout: Rollout) -> float:
    """-0.1 when the model tried at least one invalid move, else 0."""
    return -0.1 if rollout.info.get("invalid_moves", 0) > 0 else 0.0


def win(rollout: Rollout) -> float:
    """Metric: 1 for a win."""
    return float(rollout.info.get("winner") == "model")


def draw(rollout: Rollout) -> float:
    """Metric: 1 for a draw."""
    return float(rollout.info.get("winner") == "draw")


def loss(rollout: Rollout) -> float:
    """Metric: 1 for a loss (a game ended by an invalid move is a loss)."""
    return float(rollout.info.get("winner") == "opponent")


def unfinished(rollout: Rollout) -> float:
    """Metric: 1 for a game stopped before its end (turn limit or token budget); it scores like a loss."""
    return float(rollout.info.get("winner") is None)


def invalid_move_rate(rollout: Rollout) -> float:
    """Metric: invalid moves per model reply."""
    return rollout.info.get("invalid_moves", 0) / max(1, rollout.info.get("turns", 0))


def opponent_bucket(random_move_prob: float) -> str:
    """The opponent's strength as a label for summaries: minimax, strong, medium, weak or random."""
    if random_move_prob <= 0:
        return "minimax"
    if random_move_prob >= 1:
        return "random"
    return "strong" if random_move_prob < 1 / 3 else "medium" if random_move_prob < 2 / 3 else "weak"


# --- baselines: they see only the conversation, like a model ---------------------------------------
def _position(messages: list[ChatMessage]) -> tuple[str, str]:
    """The board in the last user message and the mark the policy plays."""
    last = next((m.text or "" for m in reversed(messages) if m.is_from("user")), "")
    board = game.parse_board(last)
    if board is None:
        raise ValueError(f"tic_tac_toe baseline: no board in the last user message {last[:80]!r}")
    marks = [found for m in messages for found in _MARK.findall(m.text or "")]
    return board, marks[-1] if marks else MODEL_MARK


def random_baseline(messages: list[ChatMessage], rng: random.Random) -> str:
    """A uniformly random legal move on the board shown in the last user message."""
    board, _ = _position(messages)
    return f"<move>{rng.choice(game.legal_moves(board))}</move>"


def minimax_baseline(messages: list[ChatMessage], rng: random.Random) -> str:
    """A minimax move (random among equally good ones) on the board shown in the last user message."""
    board, mark = _position(messages)
    return f"<move>{game.minimax_move(board, mark, rng)}</move>"


class TicTacToeEnv(MultiTurnEnv):
    """
    Tic-tac-toe against a tunable opponent: minimax that plays a random legal move with probability
    `random_move_prob` (drawn per example from `[min_random_move_prob, max_random_move_prob]`; with
    `eval_random_move_probs`, the eval split plays each of those opponents in turn instead, e.g. `[1.0, 0.0]`:
    half the eval games against a uniformly random opponent, half against pure minimax, the model starting
    half of each; the summary's `opponent` breakdown then gives win/draw/loss per opponent).

    The model plays X and starts half of the games. Each turn shows the board as text and lists the free
    cells (so the legal moves need not be read off the board); the model answers
    `<move>N</move>`. An invalid move (unparsable, out of range, occupied) is explained and asked again,
    and counted; with `invalid_move_ends_game` it loses the game instead. The opponent's randomness is
    seeded from (episode seed, board), so every rollout of a group faces the same opponent behaviour.
    `compact=True` words every message shorter (no lines between the board's rows, a one-line system
    prompt): a game is ~30% fewer tokens, so training and evaluation cost less; a model trained on one
    wording should be evaluated and deployed with the same.

    Reward (not normalized): `outcome_weight` x (win 1 / draw 0.5 / loss 0) + `format_weight` x share of
    well-formed replies + `invalid_move_weight` x (-0.1 if any invalid move). A clean win scores 1.2.
    Metrics: win, draw, loss, unfinished (stopped by `max_turns` or a token budget, e.g. after many
    invalid moves; scored 0 like a loss but counted apart, so win + draw + loss + unfinished = 1),
    invalid_move_rate. `state.info` holds board, winner ("model", "opponent",
    "draw" or None), model_starts, random_move_prob, opponent (strength bucket), invalid_moves, turns, moves.

    Usage example:
    ```python
    from haystack.dataclasses import ChatMessage
    from haystack_rl_envs.tic_tac_toe import TicTacToeEnv

    env = TicTacToeEnv(num_eval_examples=2, min_random_move_prob=0.0, max_random_move_prob=0.0)
    example = env.examples("eval")[0]  # the model starts
    messages, state = env.reset(example, seed=0)
    new_messages, done = env.step(state, ChatMessage.from_assistant("<move>5</move>"))
    assert not done and state.info["board"].count("X") == 1 and state.info["board"].count("O") == 1
    transcript = env.demonstrate(example, seed=0)  # minimax against the same opponent: a draw
    assert "draw" in transcript[-1].text
    ```
    """

    name = "tic_tac_toe"
    description = "tic-tac-toe against a minimax opponent with tunable randomness; answer <move>N</move>"
    summary_breakdowns = ("model_starts", "opponent")

    def __init__(
        self,
        num_train_examples: int = 1000,
        num_eval_examples: int = 100,
        min_random_move_prob: float = 0.0,
        max_random_move_prob: float = 1.0,
        invalid_move_ends_game: bool = False,
        max_turns: int = 10,
        outcome_weight: float = 1.0,
        format_weight: float = 0.2,
        invalid_move_weight: float = 1.0,
        demo_quality: str = "expert",
        data_seed: int = 0,
        eval_random_move_probs: list[float] | None = None,
        compact: bool = False,
    ) -> None:
        if not 0.0 <= min_random_move_prob <= max_random_move_prob <= 1.0:
            raise ValueError(
                "tic_tac_toe: need 0 <= min_random_move_prob <= max_random_move_prob <= 1, "
                f"got {min_random_move_prob}, {max_random_move_prob}"
            )
        if eval_random_move_probs is not None and (
            not eval_random_move_probs or not all(0.0 <= p <= 1.0 for p in eval_random_move_probs)
        ):
            raise ValueError(
                "tic_tac_toe: eval_random_move_probs must be a non-empty list of values in [0, 1] (or None), "
                f"got {eval_random_move_probs!r}"
            )
        if demo_quality not in QUALITIES:
            raise ValueError(f"tic_tac_toe: demo_quality must be one of {QUALITIES}, got {demo_quality!r}")
        self.num_train_examples, self.num_eval_examples = num_train_examples, num_eval_examples
        self.min_random_move_prob, self.max_random_move_prob = min_random_move_prob, max_random_move_prob
        self.invalid_move_ends_game = invalid_move_ends_game
        self.outcome_weight, self.format_weight = outcome_weight, format_weight
        self.invalid_move_weight, self.demo_quality, self.data_seed = invalid_move_weight, demo_quality, data_seed
        self.eval_random_move_probs = list(eval_random_move_probs) if eval_random_move_probs is not None else None
        self.compact = compact
        rubric = Rubric(
            [
                RewardFunction(outcome_reward, outcome_weight),
                RewardFunction(format_reward, format_weight),
                RewardFunction(invalid_move_penalty, invalid_move_weight),
                *(RewardFunction(metric, 0.0) for metric in (win, draw, loss, unfinished, invalid_move_rate)),
            ],
            normalize=False,  # the penalty carries a positive weight; normalizing would shrink every reward
        )
        system_prompt = COMPACT_SYSTEM_PROMPT if compact else SYSTEM_PROMPT
        super().__init__(*self._make_splits(), system_prompt=system_prompt, rubric=rubric, max_turns=max_turns)

    # --- data ----------------------------------------------------------------------------------
    def _make_splits(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """
        Train and eval games: who starts alternates, the opponent's randomness is drawn per game (eval games
        cycle through `eval_random_move_probs` in pairs when it is set; the draws are made either way, so the
        train split does not depend on it).
        """
        rng = random.Random(self.data_seed)
        fixed = self.eval_random_move_probs
        splits: dict[str, list[dict[str, Any]]] = {}
        for split, size in (("eval", self.num_eval_examples), ("train", self.num_train_examples)):
            splits[split] = []
            for index in range(size):
                p = rng.uniform(self.min_random_move_prob, self.max_random_move_prob)
                if split == "eval" and fixed:
                    p = fixed[(index // 2) % len(fixed)]  # a pair of games (model starts, opponent starts) each
                splits[split].append({"id": f"{split}-{index}", "model_starts": index % 2 == 0, "random_move_prob": p})
        return splits["train"], splits["eval"]

    # --- episode -------------------------------------------------------------------------------
    def setup_state(self, state: EpisodeState) -> None:
        """A new game; when the opponent starts, its first move is already on the board."""
        example = state.example
        p = float(example["random_move_prob"])
        state.info.update(
            board=game.EMPTY_BOARD, winner=None, model_starts=bool(example["model_starts"]), random_move_prob=p,
            opponent=opponent_bucket(p), invalid_moves=0, turns=0, moves=[],
        )  # fmt: skip
        opening = "New game." if self.compact else "New game. You play X, the opponent plays O."
        if state.info["model_starts"]:
            opening += " You move first."
        else:
            opening += f" The opponent moved first: {self._opponent_plays(state)}."
        state.messages = [
            ChatMessage.from_system(self.system_prompt or ""),
            ChatMessage.from_user(self._ask(state, opening)),
        ]

    def is_success(self, rollout: Rollout) -> bool:
        """A win (the reward also counts format and invalid moves, so it cannot tell on its own)."""
        return rollout.info.get("winner") == "model"

    def env_response(self, state: EpisodeState, reply: ChatMessage) -> tuple[list[ChatMessage], bool]:
        """Play the model's move and the opponent's answer; explain and ask again after an invalid move."""
        info = state.info
        info["turns"] = state.turn
        cell, problem = self._read_move(info["board"], reply.text)
        if problem is not None:
            info["invalid_moves"] += 1
            if self.invalid_move_ends_game:
                info["winner"] = "opponent"
                return [ChatMessage.from_user(f"Invalid move: {problem}. Game over: you lose.")], True
            return [ChatMessage.from_user(self._ask(state, f"Invalid move: {problem}. Try again."))], False
        assert cell is not None
        info["board"] = game.play(info["board"], cell, MODEL_MARK)
        info["moves"].append(["model", cell])
        if self._game_over(state):
            return [ChatMessage.from_user(self._result(state, f"You played {cell}."))], True
        answer = self._opponent_plays(state)
        if self._game_over(state):
            return [ChatMessage.from_user(self._result(state, f"The opponent played {answer}."))], True
        return [ChatMessage.from_user(self._ask(state, f"The opponent played {answer}."))], False

    def _read_move(self, board: str, text: str | None) -> tuple[int | None, str | None]:
        """The cell the reply names, or why it is not a legal move."""
        answer = PARSER.parse(text)
        if answer is None:
            return None, "no <move>N</move> in your reply"
        answer = answer.strip()
        if not re.fullmatch(r"[+-]?\d+", answer) or len(answer) > 12:  # int() refuses 4,300+ digits
            return None, f"{answer[:20]!r} is not a cell number 1-9"
        cell = int(answer)
        if not 1 <= cell <= 9:
            return None, f"cell {cell} is out of range 1-9"
        if board[cell - 1] != game.EMPTY:
            return None, f"cell {cell} is already taken by {board[cell - 1]}"
        return cell, None

    def _opponent_plays(self, state: EpisodeState) -> int:
        """The opponent's move, seeded from (episode seed, board) so a whole group sees the same one."""
        board = state.info["board"]
        rng = random.Random(derive_seed(state.seed, board))
        cell, _ = game.opponent_move(board, OPPONENT_MARK, state.info["random_move_prob"], rng)
        state.info["board"] = game.play(board, cell, OPPONENT_MARK)
        state.info["moves"].append(["opponent", cell])
        return cell

    def _game_over(self, state: EpisodeState) -> bool:
        result = game.winner(state.info["board"])
        if result is not None:
            state.info["winner"] = {MODEL_MARK: "model", OPPONENT_MARK: "opponent"}.get(result, "draw")
        return result is not None

    def _ask(self, state: EpisodeState, prefix: str) -> str:
        board = state.info["board"]
        free = ", ".join(str(cell) for cell in game.legal_moves(board))
        if self.compact:
            return f"{prefix}\n{game.render(board, compact=True)}\nFree cells: {free}."
        return f"{prefix}\n\n{game.render(board)}\n\nFree cells: {free}. Your move (X)."

    def _result(self, state: EpisodeState, prefix: str) -> str:
        verdict = {"model": "you win", "opponent": "you lose", "draw": "it is a draw"}[state.info["winner"]]
        gap = "\n" if self.compact else "\n\n"
        return f"{prefix}{gap}{game.render(state.info['board'], self.compact)}{gap}Game over: {verdict}."

    # --- demonstrations and baselines --------------------------------------------------------------
    def demonstrate(self, example: dict[str, Any], seed: int, quality: str | None = None) -> list[ChatMessage]:
        """
        A whole game transcript for SFT warm start, played against the same seeded opponent as `reset`.

        :param quality: "expert" (`game.expert_move`: minimax, ties broken towards the best chances against a
            weak opponent, deterministic), "noisy" (a random legal move 25% of the time) or "random"
            ("random-legal" is accepted too); defaults to the `demo_quality` knob.
        """
        quality = {"random-legal": "random"}.get(quality or self.demo_quality, quality or self.demo_quality)
        if quality not in QUALITIES:
            raise ValueError(f"tic_tac_toe: unknown demonstration quality {quality!r}; use one of {QUALITIES}")
        noise = {"expert": 0.0, "noisy": NOISY_RANDOM_MOVE_PROB, "random": 1.0}[quality]
        _, state = self.reset(example, seed)
        done = False
        while not done:
            board = state.info["board"]
            rng = random.Random(derive_seed(seed, board, "demonstrate"))
            random_move = rng.random() < noise
            cell = rng.choice(game.legal_moves(board)) if random_move else game.expert_move(board, MODEL_MARK)
            _, done = self.step(state, ChatMessage.from_assistant(f"<move>{cell}</move>"))
        state.info.pop("stop_reason", None)
        return list(state.messages)

    def baselines(self) -> dict[str, Any]:
        """`random` (random legal moves) and `minimax` (the expert), both reading the board text."""
        return {"random": random_baseline, "minimax": minimax_baseline}


def load_environment(**kwargs: Any) -> TicTacToeEnv:
    """Build the environment; see `TicTacToeEnv` for the arguments."""
    return TicTacToeEnv(**kwargs)
