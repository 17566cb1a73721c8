"""Rubrics: weighted reward functions, an LLM judge, and parsers for tagged answers."""

from haystack_rl.rubrics.judge import JudgeReward
from haystack_rl.rubrics.parsers import TagParser
from haystack_rl.rubrics.rubric import RewardFunction, Rubric

__all__ = ["JudgeReward", "RewardFunction", "Rubric", "TagParser"]
