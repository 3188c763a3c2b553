"""JobUtility: job ids."""

from __future__ import annotations

import secrets

JOB_ID_PREFIX = "job_"
JOB_ID_DIGITS = 8


class JobUtility:
    @staticmethod
    def generate_job_id() -> str:
        """`job_` plus 8 random digits; callers detect the rare collision and draw again."""
        return f"{JOB_ID_PREFIX}{secrets.randbelow(10**JOB_ID_DIGITS):0{JOB_ID_DIGITS}d}"
