"""Text that reaches a user from a library: colour codes removed, a failure reduced to its one-line cause.

Ultralytics colours its log lines and error messages with ANSI escapes and puts multi-line advice into its
exceptions; the task log and a task's ``error`` hold plain text, the error a single line.
"""

from __future__ import annotations

import re

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
ERROR_MAX_CHARS = 500


def plain(text: str) -> str:
    return ANSI.sub("", text)


def one_line_cause(error: BaseException) -> str:
    """``Type: first meaningful line`` of the error, without colour codes, at most ERROR_MAX_CHARS long."""
    lines = [line.strip() for line in plain(str(error)).splitlines() if line.strip()]
    cause = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return cause if len(cause) <= ERROR_MAX_CHARS else cause[: ERROR_MAX_CHARS - 1] + "…"
