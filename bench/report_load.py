"""
How fast a large run's report loads and filters in headless Chromium.

Plays 10,000 reverse_text rollouts with a scripted policy (no model: noisy reversals, some crashes, byte-level
token ids and logprobs so the token view has data), writes the report, opens it in headless Chromium and
prints the time to a ready page, then the time to apply a filter and a text search.

    .venv/bin/python bench/report_load.py [--rollouts 10000] [--out runs/report-bench]

Target: the page is ready in under 3 s.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for `tools`, the repository's tooling

import argparse
import math
import random
import time

from haystack.dataclasses import ChatMessage

from haystack_rl import RolloutRunner, load_environment
from haystack_rl.generators import FunctionChatGenerator
from haystack_rl.report import write_report
from haystack_rl.results import ResultsWriter
from tools.testing.browser import ReportBrowser, browser_missing

GROUP = 5
TARGET_S = 3.0


def noisy_reverser(messages: list[ChatMessage], rng: random.Random) -> ChatMessage:
    """Reverse the passage, with a typo now and then; crash on 3% of calls; report byte ids as tokens."""
    if rng.random() < 0.03:
        raise RuntimeError("scripted crash")
    passage = (messages[-1].text or "").split("\n")[-1]
    answer = list(passage[::-1])
    for _ in range(rng.choice([0, 0, 1, 2, 4])):
        if answer:
            answer[rng.randrange(len(answer))] = rng.choice("abcdefghij")
    reply = f"<reversed_text>{''.join(answer)}</reversed_text>"
    prompt_ids = list("".join(m.text or "" for m in messages).encode())
    completion_ids = list(reply.encode())
    logprobs = [math.log(rng.uniform(0.3, 1.0)) for _ in completion_ids]
    meta = {"prompt_ids": prompt_ids, "completion_ids": completion_ids, "logprobs": logprobs}
    return ChatMessage.from_assistant(reply, meta=meta)


def make_run(out: Path, rollouts: int) -> float:
    environment = load_environment("reverse_text", num_eval_examples=math.ceil(rollouts / GROUP))
    runner = RolloutRunner(environment, FunctionChatGenerator(noisy_reverser, name="noisy"),
                           rollouts_per_example=GROUP, concurrency=64, output_dir=str(out))  # fmt: skip
    start = time.perf_counter()
    played = runner.run()["rollouts"]
    ResultsWriter(str(out)).run(played, run_info={"config": {"env": "reverse_text", "model": "baseline:noisy"}})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rollouts", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=Path("runs/report-bench"))
    args = parser.parse_args()
    reason = browser_missing()
    if reason:
        raise SystemExit(f"report_load: {reason}")
    out = args.out / f"run-{args.rollouts}"
    if not (out / "metadata.json").exists():
        print(f"playing {args.rollouts} scripted rollouts: {make_run(out, args.rollouts):.1f} s")
    start = time.perf_counter()
    page_file = write_report([out])
    written = time.perf_counter() - start
    print(f"report written in {written:.2f} s: {page_file} ({page_file.stat().st_size / 1e6:.1f} MB)")
    with ReportBrowser() as browser:
        page, load_s = browser.open(page_file)
        in_page_ms = page.evaluate("performance.now()")
        filtered_ms = page.evaluate("""() => { const t = window.report.tables.run, t0 = performance.now();
            t.apply({view: "rollouts", error: "any"}); return [performance.now() - t0, t.shown()]; }""")
        searched_ms = page.evaluate("""() => { const t = window.report.tables.run, t0 = performance.now();
            t.apply({error: "", text: "abc"}); return [performance.now() - t0, t.shown()]; }""")
        page.evaluate("window.report.tables.run.apply({text: ''})")
        start = time.perf_counter()
        page.select_option("select[aria-label='stop reason']", "error")
        page.wait_for_function("window.report.tables.run.filters.stop === 'error'")
        ui_filter_s = time.perf_counter() - start
        start = time.perf_counter()
        page.locator("table.rows tbody tr.row").first.click()
        page.locator(".detail .rollout .transcript").wait_for()
        open_s = time.perf_counter() - start
        errors = list(browser.errors)
    verdict = "meets" if load_s < TARGET_S else "MISSES"
    print(
        f"load: {load_s:.2f} s from navigation to a ready page ({in_page_ms / 1000:.2f} s in-page clock); "
        f"{verdict} the {TARGET_S:.0f} s target"
    )
    print(f"filter 'with an error' (rollouts view): {filtered_ms[0]:.0f} ms, {filtered_ms[1]} rows")
    print(f"text search 'abc': {searched_ms[0]:.0f} ms, {searched_ms[1]} rows")
    print(f"stop-reason filter through the page's select: {ui_filter_s * 1000:.0f} ms (round trip from Python)")
    print(f"open a rollout (transcript + token view): {open_s * 1000:.0f} ms (round trip from Python)")
    print(f"console errors: {errors or 'none'}")


if __name__ == "__main__":
    main()
