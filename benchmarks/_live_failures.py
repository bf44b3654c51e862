"""A pytest plugin that appends each failure to $LIVE_FAILURES as it happens.

A run stopped by a time limit prints no summary; this keeps the failures seen so far.
Load it with ``-p _live_failures`` with ``benchmarks/`` on the path (``benchmarks/gpu_suite.sh`` does).
"""

from __future__ import annotations

import os


def pytest_runtest_logreport(report) -> None:
    """Write the test id, phase and the end of the traceback of a failed or erroring test."""
    target = os.environ.get("LIVE_FAILURES")
    if target and report.failed:
        with open(target, "a", encoding="utf-8") as out:
            out.write(f"=== {report.nodeid} ({report.when})\n{report.longreprtext[-2500:]}\n")
