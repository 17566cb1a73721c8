"""tic_tac_toe: play X against a minimax opponent with tunable randomness, answering <move>N</move> (multi-turn)."""

from haystack_rl_envs.tic_tac_toe.env import (
    TicTacToeEnv,
    load_environment,
    minimax_baseline,
    random_baseline,
)

__all__ = ["TicTacToeEnv", "load_environment", "minimax_baseline", "random_baseline"]
