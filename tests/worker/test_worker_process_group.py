"""Whether a task's process group still works: a zombie (an exited orphan that no init
reaps, as in a container whose PID 1 is not one) is not taken for a process at work, so a
shell task whose trap finished is not waited for until its grace runs out."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from jupyter_orch.worker.process import _group_has_live


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    return stat[stat.rfind(b")") + 2 :].split()[0].decode()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads Linux's /proc")
def test_a_group_of_only_a_zombie_is_not_alive_but_a_running_one_is() -> None:
    running = subprocess.Popen(["sleep", "30"], start_new_session=True)
    done = subprocess.Popen(["true"], start_new_session=True)
    try:
        assert _group_has_live(running.pid)
        os.waitid(os.P_PID, done.pid, os.WEXITED | os.WNOWAIT)  # exited, left unreaped
        assert _state(done.pid) == "Z"
        os.killpg(done.pid, 0)  # the kernel still finds the group...
        assert not _group_has_live(done.pid)  # ...but nothing in it works
    finally:
        running.kill()
        running.wait()
        done.wait()
    assert not _group_has_live(running.pid)
