"""Rubrics: weighted reward functions, and parsers for tagged answers."""

from haystack_rl.rubrics.parsers import TagParser
from haystack_rl.rubrics.rubric import RewardFunction, Rubric

__all__ = ["RewardFunction", "Rubric", "TagParser"]
