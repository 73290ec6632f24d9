"""The pods file both the agent and the mapper read (when there is no Kubernetes API):

    pods:
      - {namespace: shop, name: web-7d4b9c6f5-abcde, uid: 3f2a..., serviceAccount: web,
         owner: {kind: ReplicaSet, name: web-7d4b9c6f5},
         containers: [{name: app, id: "containerd://abc..."}]}

Parsing and validation only (errors name the entry and the field), and change detection by
(mtime_ns, size, inode). Uids are lower-cased: the Kubernetes API writes them in lower case.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .filestamp import FileStamp, stamp

__all__ = ["PodEntry", "FileStamp", "parse_pods", "read_pods_file", "stamp", "strip_runtime"]


@dataclass(frozen=True, slots=True)
class PodEntry:
    """One entry of the file, validated."""

    namespace: str
    name: str
    uid: str = ""  # lower case; "" when the entry has none (allowed only when not required)
    service_account: str = ""
    owner_kind: str = ""
    owner_name: str = ""
    containers: dict[str, str] = field(default_factory=dict)  # container id (runtime prefix stripped) -> name


def strip_runtime(container_id: str) -> str:
    """``containerd://abc`` -> ``abc``."""
    return container_id.rsplit("://", 1)[-1].strip()


def _text(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{where}.{key}: expected a string, not {type(value).__name__}")
    return value.strip()


def _entry(item: Any, where: str, uid_required: bool) -> PodEntry:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: expected a mapping with namespace, name, uid")
    required = ("namespace", "name", "uid") if uid_required else ("namespace", "name")
    missing = [k for k in required if not _text(item, k, where)]
    if missing:
        raise ValueError(f"{where}: missing or empty {', '.join(missing)}")
    owner = item.get("owner") or {}
    if not isinstance(owner, dict):
        raise ValueError(f"{where}.owner: expected a mapping {{kind, name}}")
    containers: dict[str, str] = {}
    listed = item.get("containers") or []
    if not isinstance(listed, list):
        raise ValueError(f"{where}.containers: expected a list of {{name, id}}")
    for j, c in enumerate(listed):
        if not isinstance(c, dict) or not c.get("id") or not c.get("name"):
            raise ValueError(f"{where}.containers[{j}]: expected {{name, id}}")
        containers[strip_runtime(str(c["id"]))] = str(c["name"])
    return PodEntry(namespace=_text(item, "namespace", where), name=_text(item, "name", where),
                    uid=_text(item, "uid", where).lower(), service_account=_text(item, "serviceAccount", where),
                    owner_kind=_text(owner, "kind", f"{where}.owner"), owner_name=_text(owner, "name", f"{where}.owner"),
                    containers=containers)


def parse_pods(doc: Any, where: str = "pods file", *, uid_required: bool = True) -> list[PodEntry]:
    """The entries of a parsed document; ``ValueError`` names the first bad entry and field."""
    if doc is None:
        return []
    if not isinstance(doc, dict) or not isinstance(doc.get("pods") or [], list):
        raise ValueError(f"{where}: expected a mapping with a list under 'pods'")
    return [_entry(item, f"{where}: pods[{i}]", uid_required) for i, item in enumerate(doc.get("pods") or [])]


def read_pods_file(path: str | os.PathLike[str], *, uid_required: bool = True) -> list[PodEntry]:
    """Read and parse a pods file; ``ValueError`` says what was wrong (unreadable, not YAML, which entry)."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ValueError(f"pods file {path}: cannot read: {exc.strerror or exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValueError(f"pods file {path}: not valid YAML: {exc}") from None
    return parse_pods(doc, f"pods file {path}", uid_required=uid_required)
