"""reverse_text: reverse a short passage, answering inside <reversed_text> tags (single-turn)."""

from haystack_rl_envs.reverse_text.env import ReverseTextEnv, copy_baseline, load_environment, oracle_baseline

__all__ = ["ReverseTextEnv", "copy_baseline", "load_environment", "oracle_baseline"]
