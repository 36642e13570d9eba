"""How one attempt ended: the fields of a ``finished`` report, and the words for deaths.

Shared by the executor (which reports exceptions and shell exit codes) and the slot (which
reports what the executor cannot: its own death, timeouts and cancellations). Import-light:
the executor loads it at start-up.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_SIGNAL_HINTS = {
    "SIGSEGV": "segmentation fault",
    "SIGKILL": "often the out-of-memory killer; check the task's memory",
    "SIGABRT": "aborted, often a failed assertion in native code",
    "SIGBUS": "bus error",
    "SIGFPE": "floating-point exception",
    "SIGILL": "illegal instruction",
    "SIGTERM": "terminated",
    "SIGINT": "interrupted",
    "SIGPIPE": "broken pipe",
    "SIGHUP": "hang-up",
}


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def describe_signal(signum: int) -> str:
    """``"SIGSEGV (segmentation fault)"``."""
    name = signal_name(signum)
    hint = _SIGNAL_HINTS.get(name)
    return f"{name} ({hint})" if hint else name


@dataclass
class Outcome:
    """The result of one attempt, as the ``finished`` message carries it.

    ``exit_code`` is the shell command's exit status, or for a process that died the
    negated signal number (as :attr:`subprocess.Popen.returncode`); None for functions.
    """

    ok: bool
    exit_code: int | None = None
    error: str | None = None
    error_kind: str | None = None
    traceback: str | None = None
    result: bytes = b""
    stopped: bool = False  # the task saw should_preempt() turn true: its return is not its end

    def header(self) -> dict[str, Any]:
        out = {
            "ok": self.ok,
            "exit_code": self.exit_code,
            "error": self.error,
            "error_kind": self.error_kind,
            "traceback": self.traceback,
        }
        if self.stopped:
            out["stopped"] = True
        return out

    @classmethod
    def failure(cls, error_kind: str, error: str, *, exit_code: int | None = None) -> Outcome:
        return cls(ok=False, error_kind=error_kind, error=error, exit_code=exit_code)

    @classmethod
    def from_header(cls, header: Mapping[str, Any], result: bytes = b"") -> Outcome:
        return cls(
            ok=bool(header.get("ok")),
            exit_code=header.get("exit_code"),
            error=header.get("error"),
            error_kind=header.get("error_kind"),
            traceback=header.get("traceback"),
            result=result,
            stopped=bool(header.get("stopped")),
        )


def process_death(returncode: int) -> Outcome:
    """The outcome of an executor that died mid-task with ``returncode``."""
    if returncode < 0:
        return Outcome.failure(
            "signal", f"the task's process was killed by {describe_signal(-returncode)}", exit_code=returncode
        )
    return Outcome.failure(
        "executor_died",
        f"the task's process exited with code {returncode} before finishing",
        exit_code=returncode,
    )
