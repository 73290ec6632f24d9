"""eBPF bed smoke: a uprobe on the system libssl's SSL_write_ex sees the request line the real
azure-storage-blob SDK sends to Azurite over HTTPS, from a process in a kubelet-style pod cgroup,
tagged with that cgroup's id. With CI=true this fails (never skips) when eBPF cannot run.
"""
from __future__ import annotations

import ctypes
import os
import re
import sys
from pathlib import Path

import pytest

from beds.azurite import Azurite
from beds.pods import FakePods
from beds.require import need

pytestmark = pytest.mark.ebpf

LIBSSL = "/lib/x86_64-linux-gnu/libssl.so.3"
CLIENT = Path(__file__).parent / "clients" / "storage_calls.py"

PROGRAM = r"""
#include <uapi/linux/ptrace.h>
struct ev { u64 cgroup_id; u32 pid; u32 len; char data[200]; };
BPF_PERF_OUTPUT(events);
BPF_PERCPU_ARRAY(scratch, struct ev, 1);
int on_write_ex(struct pt_regs *ctx) {
    int zero = 0;
    struct ev *e = scratch.lookup(&zero);
    if (!e) return 0;
    e->cgroup_id = bpf_get_current_cgroup_id();
    e->pid = bpf_get_current_pid_tgid() >> 32;
    e->len = (u32)PT_REGS_PARM3(ctx);
    if (bpf_probe_read_user(e->data, sizeof(e->data), (void *)PT_REGS_PARM2(ctx)) != 0) return 0;
    events.perf_submit(ctx, e, sizeof(*e));
    return 0;
}
"""


class Ev(ctypes.Structure):
    _fields_ = [("cgroup_id", ctypes.c_uint64), ("pid", ctypes.c_uint32), ("len", ctypes.c_uint32),
                ("data", ctypes.c_char * 200)]


def load_bpf():  # noqa: ANN201
    need(os.geteuid() == 0, "eBPF needs root")
    try:
        from bcc import BPF
    except ImportError as e:
        need(False, f"bcc is not importable ({e}); run scripts/install")
    need(Path(LIBSSL).exists(), f"{LIBSSL} missing")
    try:
        b = BPF(text=PROGRAM)
        b.attach_uprobe(name=LIBSSL, sym="SSL_write_ex", fn_name="on_write_ex")
        # bcc's own detach also edits tracefs uprobe_events, absent here: own the perf fds instead.
        b.owned_fds = [b.uprobe_fds.pop(k) for k in list(b.uprobe_fds)]
    except Exception as e:  # noqa: BLE001 - any failure here means the bed is broken
        need(False, f"cannot compile/attach a uprobe: {e}")
    return b


def test_uprobe_sees_sdk_request_from_pod(azurite: Azurite, fake_pods: FakePods, tmp_path: Path) -> None:
    b = load_bpf()
    seen: list[Ev] = []
    b["events"].open_perf_buffer(lambda cpu, data, size: seen.append(Ev.from_buffer_copy(
        ctypes.string_at(data, ctypes.sizeof(Ev)))))
    try:
        pod = fake_pods.start("shop", "orders-1", [sys.executable, str(CLIENT), "--service", "blob",
                                                    "--url", azurite.blob_url(), "--ca", str(azurite.ca_cert)])
        out = pod.check(timeout=120)
        assert '"op": "create_container", "ok": true' in out, out
        for _ in range(20):
            b.perf_buffer_poll(timeout=100)
        mine = [e for e in seen if e.pid == pod.pid]
        assert mine, f"no SSL_write_ex from pid {pod.pid} among {len(seen)} events"
        assert all(e.cgroup_id == pod.cgroup_id for e in mine), {e.cgroup_id for e in mine}
        lines = [bytes(e.data).split(b"\r\n", 1)[0] for e in mine]
        assert any(re.fullmatch(rb"PUT /devstoreaccount1/orders[0-9a-f]{8}\?restype=container HTTP/1\.1", ln)
                   for ln in lines), lines
    finally:
        from bcc import lib

        for fd in b.owned_fds:
            lib.bpf_close_perf_event_fd(fd)
        b.cleanup()


def test_cgroup_id_is_scope_inode(fake_pods: FakePods) -> None:
    """The pod bed places the process exactly in its kubelet-style scope."""
    pod = fake_pods.start("shop", "sleeper", ["sleep", "30"])
    rel = Path(f"/proc/{pod.pid}/cgroup").read_text().splitlines()[-1].split("::", 1)[1]
    assert rel.endswith(f"kubepods-besteffort-pod{pod.uid.replace('-', '_')}.slice/cri-containerd-{pod.container_id}.scope")
    assert (fake_pods.root / rel.lstrip("/")).stat().st_ino == pod.cgroup_id
