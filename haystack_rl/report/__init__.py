"""Run reports: one self-contained HTML page per eval or training run (or two runs compared)."""

from haystack_rl.report.page_data import page_data
from haystack_rl.report.runs import EvalRun, ReportError, TrainingRun, load_run
from haystack_rl.report.writer import REPORT_FILE, write_report

__all__ = ["REPORT_FILE", "EvalRun", "ReportError", "TrainingRun", "load_run", "page_data", "write_report"]
