"""A real one-node Slurm cluster on loopback, for tests: bring it up, use it, stop it.

Debian's ``munge slurm-client slurmctld slurmd`` packages (installed on demand, root only). Every
config, state, spool and log file lives in one temporary directory, removed on stop; the daemons
run in the foreground as children of this process and are stopped by PID. The node offers one
fake GPU (a character device that behaves like /dev/null) through ``gres.conf``, and two
partitions: ``cpu`` (default) and ``gpu``. There is no accounting database: clients must not rely
on ``sacct``.

The one file outside the directory is the symlink /etc/slurm/slurm.conf, there while the cluster
runs: the executor plugin strips ``SLURM_*`` variables (``SLURM_CONF`` too) before it calls
``srun`` inside a job, so the configuration must be where Slurm looks by default. Hence one
cluster at a time per machine (a lock file serialises them).

    with SlurmCluster.start() as cluster:
        subprocess.run(["sbatch", "--wrap", "true"], env=cluster.env)
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

PACKAGES = ["munge", "slurm-client", "slurmctld", "slurmd"]
PROGRAMS = ["munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol"]
# The node advertises a cluster-sized machine (slurmd's config_overrides), so that a workflow
# profile's real requests (cores, memory for ResNet-152 / StyleGAN2 jobs) are accepted unchanged.
NODE_CPUS = 64
NODE_MEMORY_MB = 512_000
# Finished jobs stay visible to squeue/scontrol this long: as long as the longest test run
# (test_slurm.DEMO_TIMEOUT_S), which reads the record of a job preempted at its start.
MIN_JOB_AGE_S = 900
STARTUP_TIMEOUT_S = 30.0
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
MACHINE_LOCK = Path("/tmp/lsmia-slurm-cluster.lock")
TEMP_PREFIX = "lsmia-slurm-"


def unavailable_reason() -> str | None:
    """Why this machine cannot run the cluster (not root, no apt and no Slurm), else None."""
    if os.geteuid() != 0:
        return "needs root (to run slurmd and munged and to install Debian packages)"
    if shutil.which("apt-get") is None and not all(shutil.which(p) for p in PROGRAMS):
        return "needs Debian's apt-get to install " + " ".join(PACKAGES)
    return None


def install_packages() -> None:
    """Install the Slurm and munge packages unless present; ``apt-get update`` only on failure."""
    if all(shutil.which(program) for program in PROGRAMS):
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=True)
        result = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"could not install {' '.join(PACKAGES)}:\n{result.stderr[-2000:]}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def slurm_conf(root: Path, host: str, munge_socket: Path) -> str:
    ctld_port, slurmd_port = free_port(), free_port()
    return f"""\
ClusterName=lsmiatest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket={munge_socket}
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge={MIN_JOB_AGE_S}
KillWait=5
GresTypes=gpu
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
NodeName={host} NodeAddr=127.0.0.1 CPUs={NODE_CPUS} RealMemory={NODE_MEMORY_MB} Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes={host} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes={host} MaxTime=INFINITE State=UP
"""


@dataclass
class SlurmCluster:
    """A running cluster; ``env`` is the environment its clients (sbatch, snakemake) need."""

    root: Path
    host: str
    env: dict[str, str]
    daemons: dict[str, subprocess.Popen] = field(default_factory=dict)
    bring_up_seconds: float = 0.0
    machine_lock: int | None = None
    remove_root: bool = False

    @classmethod
    def start(cls, root: Path | None = None) -> SlurmCluster:
        """Install if needed, write the configuration, start munged, slurmctld and slurmd.

        ``root`` (kept after stop) holds everything; by default a new temporary directory.
        """
        began = time.monotonic()
        install_packages()
        directory = Path(root or tempfile.mkdtemp(prefix=TEMP_PREFIX))
        directory.chmod(0o755)  # munged runs as user munge and must reach its own subdirectory
        host = socket.gethostname().split(".")[0]
        env = dict(os.environ, SLURM_CONF=str(directory / "slurm.conf"))
        cluster = cls(directory, host, env, remove_root=root is None)
        try:
            cluster._lock_machine()
            cluster._configure()
            cluster._start_munge()
            cluster._start_slurm()
        except BaseException:
            cluster.stop()
            raise
        cluster.bring_up_seconds = time.monotonic() - began
        return cluster

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def munge_dir(self) -> Path:
        return self.root / "munge"

    def _lock_machine(self) -> None:
        """Wait for any other test cluster on this machine to stop (it holds the lock)."""
        self.machine_lock = os.open(MACHINE_LOCK, os.O_RDONLY | os.O_CREAT, 0o644)
        deadline = time.monotonic() + 300
        while True:
            try:
                fcntl.flock(self.machine_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"another test cluster holds {MACHINE_LOCK} for 300 s")
                time.sleep(1)

    def _link_system_conf(self) -> None:
        """Point /etc/slurm/slurm.conf at this cluster's; replace only a stale link of ours."""
        if SYSTEM_CONF.is_symlink() and Path(os.readlink(SYSTEM_CONF)).parent.name.startswith(
            TEMP_PREFIX
        ):
            SYSTEM_CONF.unlink()  # left by a test run that was killed; we hold the machine lock
        if SYSTEM_CONF.exists() or SYSTEM_CONF.is_symlink():
            raise RuntimeError(
                f"{SYSTEM_CONF} exists: this machine has its own Slurm configuration, which the "
                "test cluster will not replace"
            )
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SYSTEM_CONF.symlink_to(self.root / "slurm.conf")

    def _configure(self) -> None:
        for name in ("state", "spool"):
            (self.root / name).mkdir(exist_ok=True)
        fake_gpu = self.root / "fake-gpu0"
        if not fake_gpu.exists():
            subprocess.run(["mknod", "-m", "666", str(fake_gpu), "c", "1", "3"], check=True)
        (self.root / "slurm.conf").write_text(
            slurm_conf(self.root, self.host, self.munge_dir / "munge.socket")
        )
        # Without File= slurmd drops the GPU and the node drains; AutoDetect would look for NVML.
        (self.root / "gres.conf").write_text(
            f"AutoDetect=off\nNodeName={self.host} Name=gpu File={fake_gpu}\n"
        )
        self._link_system_conf()

    def _start_munge(self) -> None:
        self.munge_dir.mkdir(exist_ok=True)
        self.munge_dir.chmod(0o755)  # clients must reach the socket; the key itself is 0400
        key = self.munge_dir / "munge.key"
        if not key.exists():
            subprocess.run(["mungekey", "--create", f"--keyfile={key}"], check=True)
        shutil.chown(self.munge_dir, "munge", "munge")
        shutil.chown(key, "munge", "munge")
        key.chmod(0o400)
        socket_path = self.munge_dir / "munge.socket"
        self._spawn(
            "munged",
            [
                "munged",
                "--foreground",
                f"--key-file={key}",
                f"--socket={socket_path}",
                f"--pid-file={self.munge_dir / 'munged.pid'}",
                f"--log-file={self.munge_dir / 'munged.log'}",
                f"--seed-file={self.munge_dir / 'munged.seed'}",
            ],
            user="munge",
        )
        self._wait("munged", lambda: self._ok(["munge", "-n", f"--socket={socket_path}"]))

    def _start_slurm(self) -> None:
        self._spawn("slurmctld", ["slurmctld", "-D", "-i"])
        self._wait("slurmctld", lambda: "is UP" in self._output(["scontrol", "ping"]))
        self._spawn("slurmd", ["slurmd", "-D", "-N", self.host])
        # One line per partition the node is in.
        self._wait(
            "slurmd",
            lambda: set(self._output(["sinfo", "-h", "-N", "-o", "%T"]).split()) == {"idle"},
        )

    def _spawn(self, name: str, command: list[str], user: str | None = None) -> None:
        with open(self.root / f"{name}.out", "ab") as log:  # the daemon keeps its own descriptor
            self.daemons[name] = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                user=user,
                start_new_session=True,
            )

    def _wait(self, name: str, ready) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not ready():
            daemon = self.daemons[name]
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{name} did not come up (exit code {daemon.returncode}); "
                    f"its log:\n{self.log_tail(name)}"
                )
            time.sleep(0.1)

    def log_tail(self, name: str, lines: int = 30) -> str:
        candidates = [
            self.root / f"{name}.out",
            self.root / f"{name}.log",
            self.munge_dir / f"{name}.log",
        ]
        text = "".join(p.read_text(errors="replace") for p in candidates if p.exists())
        return "\n".join(text.splitlines()[-lines:])

    def _ok(self, command: list[str]) -> bool:
        return (
            subprocess.run(command, env=self.env, capture_output=True, check=False).returncode == 0
        )

    def _output(self, command: list[str]) -> str:
        return subprocess.run(
            command, env=self.env, capture_output=True, text=True, check=False
        ).stdout

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a Slurm client command (``squeue``, ``scontrol`` ...) against this cluster."""
        return subprocess.run(command, env=self.env, capture_output=True, text=True, check=check)

    def job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job`` as a dict (works for MinJobAge after the job ended)."""
        fields = self.run("scontrol", "show", "job", "--oneliner", job_id).stdout.split()
        return dict(item.split("=", 1) for item in fields if "=" in item)

    def stop(self) -> None:
        """Cancel every job, stop slurmd, slurmctld and munged by their PIDs, remove the files."""
        if "slurmctld" in self.daemons and self.daemons["slurmctld"].poll() is None:
            active = self.run("squeue", "--noheader", "--format=%i", check=False).stdout.split()
            if active:
                self.run("scancel", *active, check=False)
                deadline = time.monotonic() + 15
                while self.run("squeue", "--noheader", "--format=%i", check=False).stdout.split():
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.2)
        for name in ("slurmd", "slurmctld", "munged"):
            daemon = self.daemons.pop(name, None)
            if daemon is None or daemon.poll() is not None:
                continue
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        if SYSTEM_CONF.is_symlink() and Path(os.readlink(SYSTEM_CONF)) == self.root / "slurm.conf":
            SYSTEM_CONF.unlink()
        if self.machine_lock is not None:
            os.close(self.machine_lock)  # releases the lock
            self.machine_lock = None
        if self.remove_root:
            shutil.rmtree(self.root, ignore_errors=True)
