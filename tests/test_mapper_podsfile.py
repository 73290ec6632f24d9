"""The pods file as both the agent and the mapper read it (clearance.common.podsfile): the same
validation errors, upper-case uids found in lower case, changes seen even within one mtime tick."""
from __future__ import annotations

import os

import pytest

from clearance.common.podsfile import read_pods_file, stamp
from clearance.mapper.workloads import PodsFileResolver, WorkloadRef
from clearance.nodeagent.pods import PodsFile

UID = "3F2A0C4E-1111-2222-3333-444455556666"


def test_an_upper_case_uid_resolves_on_both_sides(tmp_path):
    path = tmp_path / "pods.yaml"
    path.write_text(f"pods:\n  - {{namespace: shop, name: web-7d4b9c6f5-abcde, uid: {UID},\n"
                    "     owner: {kind: ReplicaSet, name: web-7d4b9c6f5}}\n")
    mapper = PodsFileResolver(path)
    want = WorkloadRef("shop", "Deployment", "web")
    assert mapper.resolve_uid(UID.lower()) == want and mapper.resolve_uid(UID) == want
    assert mapper.resolve("shop", "other-name", UID.lower()) == want
    agent = PodsFile(path)
    assert agent.get(UID.lower()).uid == UID.lower()
    assert agent.get(UID).name == "web-7d4b9c6f5-abcde"


@pytest.mark.parametrize("text, error", [
    ("pods:\n  - {namespace: shop}\n", r"pods\[0\]: missing or empty name"),
    ("pods:\n  - {namespace: shop, name: a, uid: u}\n  - [1]\n", r"pods\[1\]: expected a mapping"),
    ("pods:\n  - {namespace: shop, name: a, uid: u, owner: [x]}\n", r"pods\[0\]\.owner: expected a mapping"),
    ("pods:\n  - {namespace: shop, name: 7, uid: u}\n", r"pods\[0\]\.name: expected a string, not int"),
    ("pods:\n  - {namespace: shop, name: a, uid: u, containers: [{name: c}]}\n", r"pods\[0\]\.containers\[0\]"),
    ("pods:\n  - {namespace: shop, name: a, uid: u, containers: x}\n", r"pods\[0\]\.containers: expected a list"),
    ("pods: {a: 1}\n", "a list under 'pods'"),
    ("pods: [\n", "not valid YAML"),
])
def test_both_sides_name_the_entry_and_field(tmp_path, text, error):
    path = tmp_path / "pods.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=error):
        PodsFileResolver(path)
    with pytest.raises(ValueError, match=error):
        PodsFile(path)


def test_a_uid_is_required_by_the_agent_only(tmp_path):
    path = tmp_path / "pods.yaml"
    path.write_text("pods:\n  - {namespace: shop, name: debug}\n")
    assert PodsFileResolver(path).resolve("shop", "debug", "") == WorkloadRef("shop", "Pod", "debug")
    with pytest.raises(ValueError, match=r"pods\[0\]: missing or empty uid"):
        PodsFile(path)
    assert [e.uid for e in read_pods_file(path, uid_required=False)] == [""]


def test_an_empty_file_has_no_pods_and_a_missing_one_is_an_error(tmp_path):
    (tmp_path / "empty.yaml").write_text("")
    assert read_pods_file(tmp_path / "empty.yaml") == []
    with pytest.raises(ValueError, match="cannot read"):
        read_pods_file(tmp_path / "missing.yaml")
    with pytest.raises(ValueError, match="cannot read"):
        PodsFileResolver(tmp_path / "missing.yaml")


def test_a_rewrite_within_the_same_mtime_is_seen(tmp_path):
    path = tmp_path / "pods.yaml"
    path.write_text("pods:\n  - {namespace: shop, name: a, uid: u1}\n")
    r = PodsFileResolver(path)
    before = stamp(path)
    st = os.stat(path)
    path.write_text("pods:\n  - {namespace: shop, name: a, uid: u1}\n  - {namespace: shop, name: bb, uid: u2}\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # the same mtime: only the size tells
    assert stamp(path) != before
    assert r.reload(force=True) is True
    assert r.resolve_uid("u2") == WorkloadRef("shop", "Pod", "bb")
    assert r.reload(force=True) is False  # unchanged since


def test_a_bad_rewrite_keeps_the_pods_and_is_reported_once(tmp_path):
    path = tmp_path / "pods.yaml"
    path.write_text("pods:\n  - {namespace: shop, name: a, uid: u1}\n")
    r = PodsFileResolver(path)
    path.write_text("pods: [\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        r.reload(force=True)
    assert r.reload(force=True) is False  # the same bad file: not reported again
    assert r.resolve_uid("u1") == WorkloadRef("shop", "Pod", "a")
