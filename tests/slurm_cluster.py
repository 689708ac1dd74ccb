"""A throwaway single-node Slurm cluster on this machine, for tests.

`slurm_cluster()` starts a private munged, slurmctld and slurmd (Debian
packages `slurm-wlm` and `munge`, run as root) with every key, socket, port,
state and log file in one temporary directory, so that it neither reads nor
disturbs a Slurm or MUNGE already installed on the machine. Client commands
find the cluster through `SLURM_CONF`, which `cluster.env` sets. The node
advertises fake GPUs (gres backed by /dev/null-like devices), so that
`--gpus`/`--gres` requests are scheduled as on a GPU cluster; nothing on the
node can use them, and CPU-only code runs as usual.

On exit it cancels every job, stops the three daemons it started (by pid,
never by name) and removes its directory.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scancel", "scontrol", "srun")
# Character devices standing in for GPU device files (never opened by jobs).
FAKE_GPU_FILES = ("/dev/null", "/dev/zero")


def missing_tools() -> list[str]:
    """Names of the Slurm/MUNGE programs this module needs that are not on PATH."""
    return [name for name in DAEMONS + CLIENTS if shutil.which(name) is None]


@dataclass
class SlurmCluster:
    """A running cluster: where it lives and how to talk to it."""

    root: Path
    """Temporary directory holding the configuration, state and logs."""
    conf: Path
    """slurm.conf; clients need SLURM_CONF pointing here."""
    node: str
    """The only node's name (`hostname -s`)."""
    partition: str
    """The only partition, also the default one."""
    env: dict
    """os.environ plus SLURM_CONF (and PATH with an srun wrapper, see `_srun_shim`):
    pass it to every subprocess that talks to Slurm."""

    def run(self, *argv: str) -> str:
        """Runs a Slurm client command against this cluster; returns its stdout."""
        done = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def jobs(self) -> list[dict]:
        """Every job the controller knows (finished ones stay for MinJobAge)."""
        out = self.run("squeue", "--noheader", "--states=all", "--format=%i|%j|%T|%k")
        fields = ("id", "name", "state", "comment")
        return [dict(zip(fields, line.split("|", 3))) for line in out.splitlines() if line]

    def log_tail(self, lines: int = 30) -> str:
        """The end of each daemon's log, for error messages."""
        parts = []
        for log in sorted((self.root / "log").glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"== {log.name}\n" + "\n".join(text))
        return "\n".join(parts)


def _free_ports(n: int) -> list[int]:
    """n distinct TCP ports that are free now (all held open at once while picking)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def _node_hardware() -> str:
    """`slurmd -C`'s node line without UpTime: CPUs, sockets, cores, RealMemory."""
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("NodeName="))
    return " ".join(word for word in line.split() if not word.startswith("NodeName="))


def _write_config(root: Path, node: str, partition: str, gpus: int) -> Path:
    conf = root / "slurm.conf"
    ctld_port, slurmd_port = _free_ports(2)
    conf.write_text(
        f"""\
ClusterName=wmtest
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
# A private munged: the system one (if any) keeps its key and socket.
AuthInfo=socket={root}/munge/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
# No cgroups in containers: track job processes by parent pid, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# Cores and memory are consumable, so jobs share the node as on a real cluster.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
ReturnToService=2
# No slurmdbd: finished jobs are only visible to squeue, for MinJobAge seconds.
MinJobAge=3600
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
# Grace between SIGTERM and SIGKILL when a job is cancelled (a checkpoint is written in it).
KillWait=30
GresTypes=gpu
NodeName={node} NodeAddr=127.0.0.1 {_node_hardware()} Gres=gpu:{gpus} State=UNKNOWN
PartitionName={partition} Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""
    )
    (root / "gres.conf").write_text(
        "".join(f"NodeName={node} Name=gpu File={f}\n" for f in FAKE_GPU_FILES[:gpus])
    )
    return conf


def _srun_shim(root: Path, conf: Path) -> Path:
    """A bin/ directory whose `srun` finds this cluster's slurm.conf.

    Snakemake's slurm-jobstep executor runs each job as `srun ...` with every
    SLURM_* variable removed from its environment, SLURM_CONF included, and
    srun then looks for /etc/slurm/slurm.conf, which a real cluster has and
    this one must not write. Jobs inherit PATH (sbatch --export=ALL), so this
    wrapper puts SLURM_CONF back for srun only.
    """
    bin_dir = root / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "srun"
    shim.write_text(f'#!/bin/sh\nSLURM_CONF={conf} exec {shutil.which("srun")} "$@"\n')
    shim.chmod(0o755)
    return bin_dir


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def slurm_cluster(partition: str = "debug", gpus: int = 2, start_timeout: float = 60.0):
    """Yields a running `SlurmCluster`; tears it down (jobs, daemons, files) on exit."""
    if missing := missing_tools():
        raise RuntimeError(f"Slurm/MUNGE programs not found: {', '.join(missing)} "
                           "(apt-get install slurm-wlm munge)")
    if os.geteuid() != 0:
        raise RuntimeError("the test Slurm cluster runs its daemons as root (SlurmUser=root)")
    if not 1 <= gpus <= len(FAKE_GPU_FILES):
        raise ValueError(f"gpus={gpus}: the fake GPUs are {FAKE_GPU_FILES}")
    node = subprocess.run(["hostname", "-s"], capture_output=True, text=True, check=True).stdout.strip()
    # Short path under /tmp: the MUNGE socket path must fit in a sockaddr_un (108 bytes).
    root = Path(tempfile.mkdtemp(prefix="slurm-", dir="/tmp"))
    root.chmod(0o755)  # munged needs its socket directory reachable by everyone
    for sub in ("munge", "state", "spool", "log"):
        (root / sub).mkdir()
    procs: list[subprocess.Popen] = []
    cluster = None
    try:
        key = root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        conf = _write_config(root, node, partition, gpus)
        env = {**os.environ, "SLURM_CONF": str(conf), "PATH": f"{_srun_shim(root, conf)}:{os.environ['PATH']}"}
        daemons = {
            # --force: munged refuses to run as root otherwise.
            "munged": ["munged", "--foreground", "--force", f"--socket={root}/munge/munge.socket",
                       f"--key-file={key}", f"--pid-file={root}/munge/munged.pid",
                       f"--log-file={root}/log/munged.log", f"--seed-file={root}/munge/seed"],
            "slurmctld": ["slurmctld", "-D", "-f", str(conf)],
            "slurmd": ["slurmd", "-D", "-f", str(conf)],
        }
        for name, argv in daemons.items():
            out = open(root / "log" / f"{name}.stdout.log", "wb")
            procs.append(subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL))
            out.close()
            if name == "munged":
                _wait_for(lambda: (root / "munge" / "munge.socket").exists(), 10, "munged socket")
        cluster = SlurmCluster(root=root, conf=conf, node=node, partition=partition, env=env)

        def node_idle():
            for proc in procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.args[0]} exited ({proc.returncode}):\n{cluster.log_tail()}")
            done = subprocess.run(["sinfo", "--noheader", "--format=%T", "--nodes", node],
                                  env=env, capture_output=True, text=True)
            return done.returncode == 0 and done.stdout.strip() == "idle"

        _wait_for(node_idle, start_timeout, f"node {node} idle", cluster.log_tail)
        yield cluster
    finally:
        try:
            # Jobs first: a job still running when slurmd stops would outlive the cluster.
            if cluster is not None and all(proc.poll() is None for proc in procs):
                _cancel_all(cluster)
        finally:
            for proc in reversed(procs):  # slurmd, slurmctld, then munged
                _stop(proc)
            shutil.rmtree(root, ignore_errors=True)


def _cancel_all(cluster: SlurmCluster, timeout: float = 60.0) -> None:
    """Cancels every job and waits until none is left running on the node."""
    active = {"PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "REQUEUED"}
    ids = [job["id"] for job in cluster.jobs() if job["state"] in active]
    if ids:
        cluster.run("scancel", *ids)
        _wait_for(lambda: not any(j["state"] in active for j in cluster.jobs()), timeout,
                  "cancelled jobs to end", cluster.log_tail)


def _wait_for(ready, timeout: float, what: str, details=lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}\n{details()}")
        time.sleep(0.5)
