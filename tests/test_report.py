"""`haystack-rl report`: run directories read, page data, CLI errors, and the pages opened in headless Chromium."""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path
from typing import Any

import pytest
from haystack.dataclasses import ChatMessage, ToolCall
from typer.testing import CliRunner

from haystack_rl import RolloutRunner, load_environment
from haystack_rl.cli import app
from haystack_rl.generators import FunctionChatGenerator
from haystack_rl.report import ReportError, load_run, page_data, write_report
from haystack_rl.report.html import render_html
from haystack_rl.results import ResultsWriter
from tools.testing.browser import ReportBrowser, browser_missing

ARTIFACTS = Path(__file__).parent / "artifacts" / "report"
SMALL_ENV = {"num_train_examples": 16, "num_eval_examples": 2, "min_chars": 5, "max_chars": 8}

pytestmark = pytest.mark.timeout(300)


def invoke(*args: Any) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args])


# --- runs made the way a user makes them -----------------------------------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Eval runs: reverse_text and calculator with their oracles, calculator on the tiny model, a messy run."""
    root = tmp_path_factory.mktemp("runs")
    commands = {
        "reverse": ["reverse_text", "--model", "baseline:oracle", "-n", 4, "-r", 2],
        "calculator": ["calculator", "--model", "baseline:oracle", "-n", 3, "-r", 2],
        "tiny": ["calculator", "--model", "tiny", "-n", 3, "--max-tokens", 16],
        "tic_tac_toe": ["tic_tac_toe", "--model", "baseline:minimax", "-n", 4, "-r", 2],
    }
    out = {}
    for name, args in commands.items():
        result = invoke("eval", *args, "-o", root / name)
        assert result.exit_code == 0, result.output
        out[name] = root / name
    out["messy"] = messy_run(root / "messy")
    return out


def messy_policy(messages: list[ChatMessage], rng: random.Random) -> str | ChatMessage:
    """Calculator answers that fail in every way a report must show: crashes, bad tool calls, wrong answers."""
    roll = rng.random()
    if roll < 0.25:
        raise RuntimeError("the server hung up </script><script>alert(1)</script>")
    if messages[-1].tool_call_result is None and roll < 0.6:
        return ChatMessage.from_assistant(tool_calls=[ToolCall(tool_name="abacus", arguments={"x": "1"})])
    return "<answer>42</answer>" if roll < 0.8 else "I give up"


def messy_run(out: Path) -> Path:
    env = load_environment("calculator")
    runner = RolloutRunner(env, FunctionChatGenerator(messy_policy, name="messy"), rollouts_per_example=3,
                           num_examples=8, output_dir=str(out))  # fmt: skip
    ResultsWriter(str(out)).run(runner.run()["rollouts"], run_info={"config": {"model": "baseline:messy"}})
    return out


@pytest.fixture(scope="module")
def training_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small training run on the tiny model: SFT (2 steps), GRPO (2 steps), evaluations before/after."""
    from haystack_rl.training import Trainer

    out = tmp_path_factory.mktemp("train") / "run"
    Trainer({"env": "reverse_text", "env_args": SMALL_ENV, "output_dir": str(out), "save_steps": 50,
             "sft": {"steps": 2, "batch": 4},
             "grpo": {"steps": 2, "batch": 4, "num_generations": 2, "max_new_tokens": 40},
             "eval": {"num_examples": 2, "max_new_tokens": 40}}).run()  # fmt: skip
    return out


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def metadata(run: Path) -> dict[str, Any]:
    return json.loads((run / "metadata.json").read_text())


# --- reading runs and building the page data ---------------------------------------------------------
def test_eval_page_data_keeps_the_summary_and_every_rollout(runs: dict[str, Path]) -> None:
    data = page_data([load_run(runs["calculator"])])
    (section,) = data["sections"]
    assert section["summary"] == metadata(runs["calculator"])["summary"]
    assert section["summary_source"] == "metadata.json"
    assert len(section["rollouts"]) == 6 and section["reward_names"] == ["correct"]
    first = section["rollouts"][0]
    assert [m["role"] for m in first["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    assert first["messages"][2]["tool_calls"][0]["name"] == "calculator"
    assert first["messages"][3]["tool_result"]["error"] is False
    assert first["answer"] == {"tag": "answer", "text": first["expected"]}  # the oracle's parsed answer is right
    assert first["tokens"] is None and section["vocab"] == {}  # a scripted baseline has no token data


def test_token_view_of_a_model_run_decodes_ids_with_the_models_tokenizer(runs: dict[str, Path]) -> None:
    section = page_data([load_run(runs["tiny"])])["sections"][0]
    lines = records(runs["tiny"] / "results.jsonl")
    for item, line in zip(section["rollouts"], lines):
        turn = line["turns"][0]
        assert item["tokens"]["prompt"] == turn["prompt_ids"] and item["tokens"]["ids"] == turn["completion_ids"]
        assert item["tokens"]["mask"] == [1] * len(turn["completion_ids"])
        assert item["tokens"]["logprobs"] == turn["logprobs"]
    decoded = "".join(section["vocab"][str(i)] for i in lines[0]["turns"][0]["completion_ids"])
    assert decoded.startswith(lines[0]["messages"][2]["content"][0]["text"])
    assert "tiny tokenizer" in section["token_note"]


def test_errors_are_counted_by_kind_and_tool_errors_marked(runs: dict[str, Path]) -> None:
    section = page_data([load_run(runs["messy"])])["sections"][0]
    lines = records(runs["messy"] / "results.jsonl")
    crashed = [line for line in lines if line["error"]]
    assert crashed and section["derived"]["errors_by_kind"] == {"policy: RuntimeError": len(crashed)}
    results = [m["tool_result"] for r in section["rollouts"] for m in r["messages"] if m["tool_result"]]
    assert results and all(result["error"] for result in results if result["name"] == "abacus")


def test_a_missing_metadata_file_gets_a_computed_summary_that_says_so(runs: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "unfinished"
    copy.mkdir()
    (copy / "results.jsonl").write_text((runs["reverse"] / "results.jsonl").read_text())
    run = load_run(copy)
    assert run.summary["reward_mean"] == metadata(runs["reverse"])["summary"]["reward_mean"]
    assert "metadata.json is missing" in run.summary_source


def test_a_rollout_record_from_a_newer_version_is_read(runs: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "newer"
    copy.mkdir()
    lines = records(runs["reverse"] / "results.jsonl")
    lines[0]["judge_notes"] = {"tone": "fine"}  # a field this version's Rollout does not have
    (copy / "results.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    section = page_data([load_run(copy)])["sections"][0]
    assert len(section["rollouts"]) == 8 and section["rollouts"][0]["reward"] == lines[0]["reward"]


def test_success_comes_from_the_summary_or_else_from_the_rollouts(runs: dict[str, Path], tmp_path: Path) -> None:
    section = page_data([load_run(runs["calculator"])])["sections"][0]
    assert section["summary"]["success"] == 1.0 and "success" not in section["derived"]
    old = tmp_path / "old"
    old.mkdir()
    lines = records(runs["messy"] / "results.jsonl")
    for line in lines:
        line.pop("success", None)  # results written before rollouts carried the environment's verdict
    (old / "results.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    older_metadata = metadata(runs["messy"])
    del older_metadata["summary"]["success"]
    (old / "metadata.json").write_text(json.dumps(older_metadata))
    derived = page_data([load_run(old)])["sections"][0]["derived"]
    assert derived["success"] == 0.0 and derived["success_source"] == "share of rollouts with reward >= 1.0"


def test_the_page_embeds_data_that_cannot_close_its_script_block(runs: dict[str, Path]) -> None:
    data = page_data([load_run(runs["messy"])])
    page = render_html(data)
    assert page.count("</script>") == 3  # the data block and the two scripts; none from the rollouts' text
    assert "alert(1)" in page and "<script>alert(1)" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing is fetched from anywhere


def test_comparison_rows_are_per_example_with_the_delta(runs: dict[str, Path]) -> None:
    data = page_data([load_run(runs["calculator"]), load_run(runs["tiny"])])
    (comparison,) = data["comparisons"]
    assert [s["label"] for s in data["sections"]] == ["A: calculator", "B: tiny"]
    assert [row["example_id"] for row in comparison["rows"]] == ["eval-0", "eval-1", "eval-2"]
    tiny = {line["example_id"]: line["reward"] for line in records(runs["tiny"] / "results.jsonl")}
    for row in comparison["rows"]:
        assert (row["a"], row["a_n"], row["b_n"]) == (1.0, 2, 1)
        assert row["b"] == tiny[row["example_id"]] and row["delta"] == pytest.approx(row["b"] - 1.0)


def test_training_run_saves_its_evaluations_and_logs_one_curve_point_per_step(training_run: Path) -> None:
    for label in ("before", "sft", "after"):
        saved = training_run / "evals" / label
        assert len(records(saved / "results.jsonl")) == 2, label
        assert metadata(saved)["summary"]["n"] == 2
    summary = json.loads((training_run / "summary.json").read_text())
    run = load_run(training_run)
    assert list(run.evals) == ["before", "sft", "after"]
    assert run.evals["after"].summary["reward_mean"] == summary["eval_after"]["reward"]
    data = page_data([run])
    grpo_steps = {r["step"] for r in records(training_run / "metrics.jsonl") if r["stage"] == "grpo" and "reward" in r}
    reward_chart = next(c for c in data["training"]["curves"] if c["stage"] == "grpo" and c["title"] == "reward")
    assert reward_chart["x"] == sorted(grpo_steps) and len(grpo_steps) == 2
    assert [s["name"] for s in reward_chart["series"]][0] == "reward"
    assert data["training"]["evals"]["columns"] == ["before", "after SFT", "after"]
    assert data["comparisons"][0]["a"] == "before" and data["comparisons"][0]["b"] == "after"


def test_a_training_run_compares_through_its_last_evaluation(training_run: Path, runs: dict[str, Path]) -> None:
    data = page_data([load_run(training_run), load_run(runs["reverse"])])
    assert [s["label"] for s in data["sections"]] == ["A: run (after)", "B: reverse"]
    assert data["sections"][0]["summary"] == metadata(training_run / "evals" / "after")["summary"]
    assert data["training"] is None and len(data["comparisons"][0]["rows"]) == 4  # the examples of both runs


# --- the command ------------------------------------------------------------------------------------
def test_report_command_writes_the_page_into_the_run(runs: dict[str, Path]) -> None:
    result = invoke("report", runs["reverse"])
    assert result.exit_code == 0, result.output
    page = runs["reverse"] / "report.html"
    assert str(page) in " ".join(result.output.split()) and page.stat().st_size > 50_000  # uPlot is inlined


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("missing", "no such directory; pass the output directory of `haystack-rl eval -o DIR`"),
        ("empty", "holds no run: expected results.jsonl"),
        ("no rollouts", "holds no rollouts; was the run interrupted"),
        ("malformed", "results.jsonl:2: not valid JSON"),
        ("not a rollout", "results.jsonl:1: not a rollout record"),
    ],
)
def test_report_command_errors_are_one_line_saying_what_to_do(tmp_path: Path, setup: str, expected: str) -> None:
    run = tmp_path / "run"
    if setup != "missing":
        run.mkdir()
    lines = {"no rollouts": "", "malformed": '{"example_id": "0"}\n{"example_id": oops\n',
             "not a rollout": '{"hello": 1}\n'}  # fmt: skip
    if setup in lines:
        (run / "results.jsonl").write_text(lines[setup])
    result = invoke("report", run)
    assert result.exit_code == 2
    assert expected in " ".join(result.output.split()) and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) <= 2


def test_comparing_a_training_run_without_saved_evaluations_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "metrics.jsonl").write_text('{"stage": "grpo", "step": 1, "reward": 0.5}\n')
    with pytest.raises(ReportError, match="without saved evaluation rollouts"):
        write_report([tmp_path / "old", tmp_path / "old"])
    assert write_report([tmp_path / "old"]).exists()  # alone, its curves still make a report


# --- in a real browser --------------------------------------------------------------------------------
@pytest.fixture
def browser() -> Any:
    """Headless Chromium; request it after the run fixtures (Playwright's loop would stop their asyncio.run)."""
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    with ReportBrowser() as opened:
        yield opened


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def leaves(value: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Every number (or null) in a summary, by its path."""
    if isinstance(value, dict):
        return {k: v for key, child in value.items() for k, v in leaves(child, (*path, key)).items()}
    return {path: value} if value is None or isinstance(value, int | float) else {}


def shown_figures(page: Any, section: str) -> dict[tuple[str, ...], tuple[Any, str]]:
    found = page.evaluate(
        """(section) => [...document.querySelectorAll(`.summary[data-section="${section}"] [data-figure]`)]
             .map((n) => [n.dataset.figure, n.dataset.value, (n.querySelector("td") || n).textContent])""",
        section,
    )
    return {tuple(json.loads(path)): (json.loads(value), text) for path, value, text in found}


def assert_summary_shown(page: Any, section: str, summary: dict[str, Any]) -> None:
    shown = shown_figures(page, section)
    expected = leaves(summary)
    assert expected and set(expected) <= set(shown), set(expected) - set(shown)
    for path, value in expected.items():
        recorded, text = shown[path]
        assert recorded == value, path  # the exact number from metadata.json
        if value is None:
            assert text == "–", path
        else:
            assert math.isclose(float(text), value, rel_tol=1e-3, abs_tol=5e-5), (path, text, value)


def open_rollout(page: Any, row: int = 0) -> Any:
    page.locator("table.rows tbody tr.row").nth(row).click()
    detail = page.locator(".detail .rollout").first
    detail.wait_for()
    return detail


@pytest.mark.slow
@pytest.mark.parametrize("name", ["reverse", "calculator", "tiny", "tic_tac_toe", "messy"])
def test_eval_report_in_chromium(runs: dict[str, Path], browser: ReportBrowser, name: str) -> None:
    run = runs[name]
    page, seconds = browser.open(write_report([run]))
    assert browser.errors == []
    assert_summary_shown(page, "run", metadata(run)["summary"])
    lines = records(run / "results.jsonl")
    rows = page.locator("table.rows tbody tr.row")
    groups = len({line["group_id"] for line in lines})
    assert rows.count() == (groups if groups < len(lines) else len(lines))
    detail = open_rollout(page)
    first = lines[0]  # the first row: the first rollout, or the first group (which opens its first rollout)
    assert detail.locator(".transcript .msg").count() == len(first["messages"])
    assert detail.locator(".reward-fn").count() == len(first["rewards"])
    if first["turns"]:
        ids = [int(i) for i in detail.locator(".completion-tokens .tok").evaluate_all("n => n.map(x => x.dataset.id)")]
        assert ids == first["turns"][0]["completion_ids"]
        assert detail.locator(".completion-tokens .tok-model").count() == len(ids)
        assert "logprob" in (detail.locator(".tok-model").first.get_attribute("title") or "")
    else:
        assert detail.locator(".no-tokens").count() == 1
    if name == "messy":
        page.select_option("select[aria-label=view]", "rollouts")
        page.select_option("select[aria-label=errors]", "any")
        assert rows.count() == sum(1 for line in lines if line["error"])
        assert "</script><script>alert(1)</script>" in page.locator(".summary").inner_text()  # text, never run
        assert "</script><script>alert(1)</script>" in open_rollout(page).locator(".error").inner_text()
        page.select_option("select[aria-label=errors]", "")
        page.fill("input[type=search]", "i give up")
        gave_up = sum("I give up" in json.dumps(line) for line in lines)
        page.wait_for_function(f"window.report.tables.run.shown() === {gave_up}")
        page.fill("input[type=search]", "")
        page.wait_for_function(f"window.report.tables.run.shown() === {len(lines)}")
        abacus = next(i for i, line in enumerate(lines) if '"abacus"' in json.dumps(line["messages"]))
        select = "(i) => { const t = window.report.tables.run.rollouts; t.select(t.rows.find(r => r.i === i)); }"
        page.evaluate(select, abacus)
        assert page.locator(".detail .tool-result.error").count() >= 1
    assert browser.errors == []
    screenshot(page, f"eval-{name}")
    page.close()


@pytest.mark.slow
def test_training_report_in_chromium(training_run: Path, browser: ReportBrowser) -> None:
    page, _ = browser.open(write_report([training_run]))
    assert browser.errors == []
    logged = records(training_run / "metrics.jsonl")
    charts = page.evaluate("""Object.fromEntries(Object.entries(window.report.charts).map(([id, c]) =>
        [c.stage + ':' + c.title, {x: c.x, drawn: c.plot.data[0].length, series: c.series}]))""")
    grpo_steps = sorted({r["step"] for r in logged if r["stage"] == "grpo" and "reward" in r})
    sft_steps = sorted({r["step"] for r in logged if r["stage"] == "sft" and "loss" in r})
    assert charts["grpo:reward"]["x"] == grpo_steps and charts["grpo:reward"]["drawn"] == len(grpo_steps)
    assert charts["sft:SFT loss"]["x"] == sft_steps and charts["sft:SFT loss"]["drawn"] == len(sft_steps)
    assert page.locator(".chart canvas").count() >= len(charts)
    assert page.locator(".evals thead th").all_inner_texts() == ["figure", "before", "after SFT", "after"]
    screenshot(page, "training")
    for label in ("before", "sft", "after"):
        page.locator(f"nav.tabs button[data-tab=eval-{label}]").click()
        assert_summary_shown(page, label, metadata(training_run / "evals" / label)["summary"])
        detail = open_rollout(page)
        assert detail.locator(".transcript .msg").count() >= 2
        assert detail.locator(".completion-tokens .tok-model").count() >= 1  # the tiny model's own tokens
    screenshot(page, "training-eval-after")
    page.locator("nav.tabs button[data-tab=compare-before-after]").click()
    assert page.locator(".comparison table.rows tbody tr.row").count() == 2
    assert browser.errors == []
    page.close()


@pytest.mark.slow
def test_comparison_report_in_chromium(runs: dict[str, Path], browser: ReportBrowser, tmp_path: Path) -> None:
    result = invoke("report", runs["calculator"], runs["tiny"], "-o", tmp_path / "compare.html")
    assert result.exit_code == 0, result.output
    page, _ = browser.open(tmp_path / "compare.html")
    rows = page.locator(".comparison table.rows tbody tr.row")
    assert rows.count() == 3
    deltas = [float(t) for t in rows.locator("td:nth-child(4)").all_inner_texts()]
    assert deltas == sorted(deltas, reverse=True)  # sorted by delta, largest first
    rows.first.click()
    assert page.locator(".comparison .detail .rollout").count() == 2  # A's and B's transcripts side by side
    assert browser.errors == []
    screenshot(page, "compare")
    page.close()
