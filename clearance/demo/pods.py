"""Kubelet-style cgroup v2 "pods" on one machine.

``LocalPods.start(...)`` creates, under the cgroup2 mount, the directories kubelet's systemd driver
with containerd creates::

    kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid_with_underscores>.slice/
        cri-containerd-<64 hex>.scope

and starts a process inside (it joins the cgroup before exec), so the kernel's cgroup id for it is
the inode of that scope directory, exactly as on a node. ``pods_file(path)`` writes the agent's
and mapper's ``--pods-file`` YAML. ``close()`` kills the processes and removes the directories.
"""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from clearance.nodeagent.pipeline.attribution import cgroup2_mount as _agent_cgroup2_mount

KUBEPODS = ("kubepods.slice", "kubepods-besteffort.slice")


def cgroup2_mount() -> Path:
    """The cgroup v2 mount point (``/sys/fs/cgroup``, or ``.../unified`` on hybrid hosts)."""
    root = _agent_cgroup2_mount()
    if root is None:
        raise RuntimeError("no cgroup2 mount in /proc/self/mountinfo: the node agent needs cgroup v2")
    return root


@dataclass
class LocalPod:
    """One started pod: its identity, its cgroup and its process."""

    namespace: str
    name: str
    uid: str
    service_account: str
    owner: tuple[str, str]
    container: str
    container_id: str
    cgroup_dir: Path
    cgroup_id: int
    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the process; returns its exit code."""
        return self.process.wait(timeout=timeout)

    def terminate(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit within 5 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def check(self, timeout: float = 120) -> str:
        """Wait for a clean exit and return stdout; raise with stderr otherwise."""
        code = self.wait(timeout)
        if code != 0:
            raise AssertionError(f"pod {self.namespace}/{self.name} exited {code}: {self.stderr()[-3000:]}")
        return self.stdout()

    def as_yaml(self) -> dict[str, object]:
        """This pod in the ``--pods-file`` format."""
        return {"namespace": self.namespace, "name": self.name, "uid": self.uid,
                "serviceAccount": self.service_account,
                "owner": {"kind": self.owner[0], "name": self.owner[1]},
                "containers": [{"name": self.container, "id": self.container_id}]}


@dataclass
class LocalPods:
    """Starts pods; remembers what it created so ``close()`` can undo it."""

    workdir: Path
    root: Path = field(default_factory=cgroup2_mount)
    pods: list[LocalPod] = field(default_factory=list)
    _created: list[Path] = field(default_factory=list)

    def _mkdir(self, d: Path) -> None:
        if not d.exists():
            d.mkdir()
            self._created.append(d)

    def start(self, namespace: str, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None,
              service_account: str = "default", owner: tuple[str, str] = ("Deployment", "client"),
              container: str = "app", cwd: str | Path | None = None, uid: str | None = None) -> LocalPod:
        """Create the pod's cgroup and run ``argv`` in it; ``env`` is added to this process's environment."""
        uid = uid or str(uuid.uuid4())
        container_id = secrets.token_hex(32)
        d = self.root
        for part in KUBEPODS:
            d = d / part
            self._mkdir(d)
        d = d / f"kubepods-besteffort-pod{uid.replace('-', '_')}.slice"
        self._mkdir(d)
        d = d / f"cri-containerd-{container_id}.scope"
        self._mkdir(d)
        procs = str(d / "cgroup.procs")

        def join_cgroup() -> None:
            with open(procs, "w") as f:
                f.write(str(os.getpid()))

        self.workdir.mkdir(parents=True, exist_ok=True)
        out = self.workdir / f"{namespace}-{name}.out"
        err = self.workdir / f"{namespace}-{name}.err"
        with out.open("wb") as o, err.open("wb") as e:
            proc = subprocess.Popen(list(argv), env=dict(os.environ, **(env or {})), stdout=o, stderr=e,
                                    stdin=subprocess.DEVNULL, preexec_fn=join_cgroup, cwd=cwd)
        pod = LocalPod(namespace, name, uid, service_account, owner, container, container_id, d,
                       d.stat().st_ino, proc, out, err)
        self.pods.append(pod)
        return pod

    def python(self, namespace: str, name: str, script: str | Path, *args: str, **kw: object) -> LocalPod:
        """Run a Python program with this interpreter in a new pod."""
        return self.start(namespace, name, [sys.executable, str(script), *args], **kw)  # type: ignore[arg-type]

    def pods_file(self, path: Path) -> Path:
        """Write the ``--pods-file`` YAML listing every pod started so far."""
        path.write_text(yaml.safe_dump({"pods": [p.as_yaml() for p in self.pods]}, sort_keys=False))
        return path

    def close(self) -> None:
        """Kill every process, then remove the directories this factory created (deepest first)."""
        for p in self.pods:
            if p.process.poll() is None:
                p.process.send_signal(signal.SIGKILL)
            p.process.wait(timeout=10)
        for d in reversed(self._created):
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    # Busy: a child is still exiting, or another user of the slice keeps it.
                    if d.name.startswith(KUBEPODS):
                        break
                    time.sleep(0.05)
