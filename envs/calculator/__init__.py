"""calculator: arithmetic word problems solved with a calculator tool, answer inside <answer> tags (tools)."""

from haystack_rl_envs.calculator.arithmetic import CalculatorError, calculator, evaluate
from haystack_rl_envs.calculator.env import CalculatorEnv, load_environment, no_tool_baseline, oracle_baseline

__all__ = [
    "CalculatorEnv",
    "CalculatorError",
    "calculator",
    "evaluate",
    "load_environment",
    "no_tool_baseline",
    "oracle_baseline",
]
