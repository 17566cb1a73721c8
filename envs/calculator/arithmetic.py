"""A safe arithmetic evaluator: numbers, + - * / and parentheses, walked from Python's `ast` (never `eval`)."""

from __future__ import annotations

import ast
import math
from fractions import Fraction

MAX_EXPRESSION_CHARS = 200
#: Largest magnitude of any intermediate result (beyond it a result no longer prints as a float or an int).
MAX_MAGNITUDE = 10**300
_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


class CalculatorError(ValueError):
    """The expression is not plain arithmetic, or cannot be evaluated (division by zero)."""


def evaluate(expression: str) -> Fraction:
    """
    Evaluate `expression` exactly (as a `Fraction`); only numbers, `+ - * /`, unary signs and parentheses.

    Usage example:
    ```python
    from haystack_rl_envs.calculator.arithmetic import evaluate

    assert evaluate("(12 - 4) * 3 / 2") == 12
    ```

    :raises CalculatorError: On anything else (names, calls, `**`, attribute access...), on division by
        zero, on results larger than 1e300, and on expressions longer than 200 characters.
    """
    if not isinstance(expression, str):
        raise CalculatorError(f"expected an expression string, got {type(expression).__name__}")
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as error:
        raise CalculatorError(f"not an arithmetic expression: {expression!r} ({error.msg})") from None
    return _walk(tree.body)


def _walk(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        if not math.isfinite(node.value):
            raise CalculatorError(f"the number {node.value} is too large")
        return Fraction(repr(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        value = _walk(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _walk(node.left), _walk(node.right)
        if isinstance(node.op, ast.Add):
            result = left + right
        elif isinstance(node.op, ast.Sub):
            result = left - right
        elif isinstance(node.op, ast.Mult):
            result = left * right
        elif right == 0:
            raise CalculatorError("division by zero")
        else:
            result = left / right
        if abs(result) > MAX_MAGNITUDE:
            raise CalculatorError(f"the result is too large (more than {MAX_MAGNITUDE:.0e})")
        return result
    raise CalculatorError(f"only numbers, + - * / and parentheses are allowed, not {_describe(node)}")


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.BinOp):
        return f"the operator {type(node.op).__name__}"
    if isinstance(node, ast.Constant):
        return f"the constant {node.value!r}"
    return f"a {type(node).__name__} expression"


def format_number(value: Fraction) -> str:
    """An integer as digits; anything else as a decimal with up to 6 places (trailing zeros cut)."""
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.6f}".rstrip("0").rstrip(".")


def calculator(expression: str) -> str:
    """
    Evaluate an arithmetic expression with numbers, + - * / and parentheses, e.g. "(12 - 4) * 3".

    :param expression: The arithmetic expression to evaluate.
    """
    return format_number(evaluate(expression))
