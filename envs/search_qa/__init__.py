"""search_qa: questions over a bundled corpus answered with a BM25 search tool, answer inside <answer> tags (tools)."""

from haystack_rl_envs.search_qa.env import SearchQAEnv, load_environment, no_search_baseline, oracle_baseline

__all__ = ["SearchQAEnv", "load_environment", "no_search_baseline", "oracle_baseline"]
