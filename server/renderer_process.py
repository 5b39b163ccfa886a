"""The first thing a helper process of the server runs (the PDF renderer's): a lower CPU priority, and
death with the server.

A module of its own, importing nothing of the server's: the process unpickles this function before
it runs it, and the server's modules take seconds of CPU to import on a busy box, which should be
spent at the lower priority, not before it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal

#: prctl's option (linux/prctl.h): the signal this process gets when its parent dies.
PR_SET_PDEATHSIG = 1


def start_helper_process(server_pid: int, niceness: int) -> None:
    """Lower this process's priority by ``niceness`` and have it killed when the server dies.

    The server stops its helpers when it stops; a server killed outright (``kill -9``, the OOM
    killer) stops nothing, and a helper waiting for work noticed nothing (tests left them running,
    their parent now 1). So the kernel is asked to kill it when its parent dies (Linux; strictly,
    when the parent's thread that started it ends: for the PDF renderer, the event loop's, since
    ``run_in_executor`` starts it).
    """
    os.nice(niceness)
    with contextlib.suppress(OSError, AttributeError):  # not Linux: only the server's own stop ends it
        _ask_for_death_with_parent()
    if os.getppid() != server_pid:  # the server died before that request: nothing would signal it now
        os._exit(0)


def _ask_for_death_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
