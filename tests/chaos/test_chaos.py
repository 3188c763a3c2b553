"""The short chaos run: every kind of fault at least once, and the accounting holds exactly."""

from __future__ import annotations

from pathlib import Path

from chaos.faults import Fault
from chaos.run import Options, chaos_run, print_report

SHORT = Options(agents=3, jobs=40, seconds=45, seed=7, postgres=True, drain_seconds=120)


async def test_no_job_lost_or_run_twice_under_faults(tmp_path: Path) -> None:
    report = await chaos_run(Options(**{**SHORT.__dict__, "root": tmp_path}))
    print_report(report)
    assert set(report.faults) == set(Fault), "every kind of fault is injected at least once"
    acc = report.accounting
    assert acc.violations == []
    assert acc.submitted == SHORT.jobs
    assert acc.completed + sum(acc.failed_by_cause.values()) == SHORT.jobs
    assert acc.completed > SHORT.jobs // 2, "most jobs ride out the faults"
