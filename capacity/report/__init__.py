"""Reporting: the HTML report and summary, run comparison and the nightly regression gate."""

from capacity.report.compare import EXIT_CODES, Comparison, compare_runs
from capacity.report.writer import write_report, write_run_report

__all__ = ["EXIT_CODES", "Comparison", "compare_runs", "write_report", "write_run_report"]
