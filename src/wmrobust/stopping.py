"""Stopping a local Snakemake run of the workflow: Ctrl-C, or SIGTERM to snakemake, ends every
job within seconds, each training run with a checkpoint, and the same command resumes them.

Snakemake alone does neither: on SIGTERM it starts no more jobs but waits for the running ones
(training runs take hours), and on Ctrl-C it stops scheduling without recording the failure of
the jobs it abandons, so the next invocation refuses their files as incomplete until it is given
--rerun-incomplete. ``stop_jobs_on_signals`` (the workflow's onstart hook, local execution only)
makes the first SIGINT or SIGTERM: (1) Snakemake's own SIGTERM stop, which starts no further job
(with --keep-going too) and waits for the running ones; (2) SIGTERM to each running job's process,
which training takes as a request to checkpoint and exit 143, so every job fails within seconds
and Snakemake records it as failed (no incomplete files). A second Ctrl-C is Snakemake's own
immediate stop.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Callable

# Processes that only run a job's command: the signal goes to what they run.
SHELLS = {"sh", "bash", "dash", "zsh", "ksh"}


def is_snakemake(cmdline: list[str]) -> bool:
    """A snakemake process (a `run:` job's own `python -m snakemake --target-jobs ...`)."""
    return any(os.path.basename(arg) == "snakemake" for arg in cmdline[:3])


def job_processes(root=None) -> list:
    """The processes of the jobs running below ``root`` (default: this process): on each branch
    of its process tree, the first process that is neither a shell nor a snakemake. Their own
    children (e.g. compile workers) are theirs to stop."""
    import psutil

    found, todo = [], (root or psutil.Process()).children()
    while todo:
        proc = todo.pop()
        try:
            if proc.name() in SHELLS or is_snakemake(proc.cmdline()):
                todo.extend(proc.children())
            else:
                found.append(proc)
        except psutil.Error:  # it has ended meanwhile
            pass
    return found


def stop_jobs(graceful: Callable | None, say: Callable[[str], None]) -> None:
    """Snakemake's SIGTERM stop (``graceful``: no new jobs, wait for the running ones), then
    SIGTERM to every job's process."""
    import psutil

    if callable(graceful):
        graceful(signal.SIGTERM, None)
    procs = job_processes()
    for proc in procs:
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.Error:
            pass
    say(f"Stopping: {len(procs)} running job(s) asked to stop (SIGTERM), no new job starts. Training "
        f"runs save a checkpoint and exit within seconds; running the same command again resumes them. "
        f"Ctrl-C again to stop without waiting (then the next run needs --rerun-incomplete).")


def stop_jobs_on_signals(say: Callable[[str], None] | None = None) -> None:
    """Install the SIGINT and SIGTERM handlers of the module docstring in this (main) process.
    Call it after Snakemake has installed its own SIGTERM handler (an onstart hook)."""
    say = say or (lambda text: print(text, file=sys.stderr, flush=True))
    graceful = signal.getsignal(signal.SIGTERM)
    interrupt = signal.getsignal(signal.SIGINT)
    interrupted = []

    def handler(signum, frame):
        if signum == signal.SIGINT and interrupted:  # a second Ctrl-C: Snakemake's own stop
            signal.signal(signal.SIGINT, interrupt)
            if callable(interrupt):
                interrupt(signum, frame)
                return
            raise KeyboardInterrupt
        if signum == signal.SIGINT:
            interrupted.append(True)
        # Off the main thread: Snakemake's handler takes its scheduler's lock, which the main
        # thread (interrupted here) may hold. It is taken at once otherwise, seconds before
        # any job can have stopped, so the scheduler never starts a job after this.
        threading.Thread(target=stop_jobs, args=(graceful, say), daemon=True).start()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
