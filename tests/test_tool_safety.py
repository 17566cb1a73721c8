"""Tool safety: a raising or hanging tool cannot stall the other rollouts; no shipped code evaluates model text."""

import ast
import asyncio
import time
from pathlib import Path

from haystack.dataclasses import ChatMessage, ToolCall
from haystack.tools import create_tool_from_function

from haystack_rl import RolloutRunner, ToolEnv
from haystack_rl.generators import FunctionChatGenerator

TIMEOUT_S = 2.0
ROOT = Path(__file__).parent.parent


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def explode(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(f"boom: {reason}")


def hang(seconds: float) -> str:
    """Sleep far past the tool timeout."""
    time.sleep(seconds)
    return "woke up"


def policy(messages, rng):
    """Per prompt: call the named tool on the first turn, then add twice, then answer."""
    task = next(m.text for m in messages if m.is_from("user"))
    tool_turns = sum(1 for m in messages if m.is_from("tool"))
    if tool_turns == 0 and task.startswith("hang"):
        return ChatMessage.from_assistant(tool_calls=[ToolCall(tool_name="hang", arguments={"seconds": 60})])
    if tool_turns == 0 and task.startswith("raise"):
        return ChatMessage.from_assistant(tool_calls=[ToolCall(tool_name="explode", arguments={"reason": task})])
    if tool_turns < 3:
        return ChatMessage.from_assistant(tool_calls=[ToolCall(tool_name="add", arguments={"a": 2, "b": 3})])
    return "<answer>5</answer>"


def test_hanging_and_raising_tools_do_not_stall_other_rollouts():
    tasks = ["hang-0", "hang-1", "hang-2", "raise-0", "add-0", "add-1", "add-2", "add-3"]
    env = ToolEnv(
        tools=[create_tool_from_function(f) for f in (add, explode, hang)],
        dataset=[{"id": task, "prompt": task, "answer": "5"} for task in tasks],
        tool_timeout_s=TIMEOUT_S,
        max_turns=6,
    )
    runner = RolloutRunner(env, FunctionChatGenerator(policy, name="scripted"), concurrency=len(tasks))
    done_at = {}
    start = time.perf_counter()

    def on_group(group):
        done_at[group[0].example_id] = time.perf_counter() - start

    rollouts = {r.example_id: r for r in asyncio.run(runner.generate(env.examples("train"), on_group=on_group))}
    wall = time.perf_counter() - start
    assert all(r.error is None for r in rollouts.values()), [r.error for r in rollouts.values()]
    for task in tasks[:3]:  # each hang became a timeout message, and the episode went on
        assert rollouts[task].info["tool_errors"]["timeout"] == 1 and rollouts[task].stop_reason == "done"
    assert rollouts["raise-0"].info["tool_errors"]["tool_error"] == 1
    # the rollouts without a hanging tool finished long before the hangs timed out...
    fast = [done_at[task] for task in tasks[3:]]
    assert max(fast) < TIMEOUT_S / 2, (done_at, wall)
    # ...and the three hangs waited side by side, not one after another
    assert min(done_at[task] for task in tasks[:3]) >= TIMEOUT_S * 0.9 and wall < 2 * TIMEOUT_S, (done_at, wall)


# --- no shipped code evaluates text ----------------------------------------------------------------------
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}
FORBIDDEN_ATTRIBUTES = {("os", "system"), ("os", "popen"), ("subprocess", "run"), ("subprocess", "Popen"),
                        ("subprocess", "call"), ("subprocess", "check_output"), ("subprocess", "getoutput"),
                        ("pickle", "loads"), ("marshal", "loads"), ("importlib", "import_module")}  # fmt: skip


def dangerous_calls(source: str) -> list[str]:
    """Calls of eval/exec/compile/__import__, shells and unpicklers in `source`, as 'line: name'."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
            found.append(f"{node.lineno}: {func.id}")
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            if (func.value.id, func.attr) in FORBIDDEN_ATTRIBUTES or func.attr in {"eval", "exec"}:
                found.append(f"{node.lineno}: {func.value.id}.{func.attr}")
    return found


def test_the_scan_finds_what_it_looks_for():
    source = "import os\nx = eval(text)\nexec(code)\nos.system(cmd)\ncompile(s, 'f', 'exec')\nmath.sqrt(2)\n"
    assert dangerous_calls(source) == ["2: eval", "3: exec", "4: os.system", "5: compile"]


def test_no_shipped_environment_evaluates_code():
    files = sorted((ROOT / "envs").rglob("*.py"))
    assert len(files) >= 8
    offenders = {str(path.relative_to(ROOT)): dangerous_calls(path.read_text()) for path in files}
    assert {path: calls for path, calls in offenders.items() if calls} == {}
