"""Server-side apply and field ownership (``metadata.managedFields``, FieldsV1) for a single object."""
from __future__ import annotations

import copy
import datetime
import json
from typing import Any

from .patching import MERGE_KEYS, MERGE_SETS

Path = tuple[str, ...]
# (manager, operation, subresource) -> owned leaf field paths
Owners = dict[tuple[str, str, str], set[Path]]

_SERVER_META = frozenset({"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                          "managedFields", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink",
                          "generateName"})


def _item_key(field: str, item: Any) -> str | None:
    key = MERGE_KEYS.get(field)
    if key and isinstance(item, dict) and key in item:
        return "k:" + json.dumps({key: item[key]}, separators=(",", ":"), sort_keys=True)
    return None


def field_paths(obj: Any, prefix: Path = ()) -> set[Path]:
    """The leaf field paths of ``obj`` in FieldsV1 spelling (``f:spec``, ``k:{"name":"x"}``, ``v:"y"``)."""
    paths: set[Path] = set()
    if not isinstance(obj, dict):
        return paths
    for key, value in obj.items():
        if not prefix and key in ("apiVersion", "kind"):
            continue
        if prefix == ("f:metadata",) and key in _SERVER_META:
            continue
        path = prefix + (f"f:{key}",)
        if isinstance(value, dict) and value:
            paths |= field_paths(value, path)
        elif isinstance(value, list) and value and all(_item_key(key, item) for item in value):
            for item in value:
                item_path = path + (str(_item_key(key, item)),)
                paths |= field_paths(item, item_path) or {item_path}
        elif isinstance(value, list) and key in MERGE_SETS:
            paths |= {path + ("v:" + json.dumps(item),) for item in value} or {path}
        else:
            paths.add(path)
    return paths


_MISSING = object()


def value_at(obj: Any, path: Path) -> Any:
    """The value a field path points to in ``obj``, or a sentinel when absent."""
    node = obj
    for step in path:
        if step.startswith("f:") and isinstance(node, dict) and step[2:] in node:
            node = node[step[2:]]
        elif step.startswith("k:") and isinstance(node, list):
            wanted = json.loads(step[2:])
            node = next((i for i in node if isinstance(i, dict) and all(i.get(k) == v for k, v in wanted.items())),
                        _MISSING)
        elif step.startswith("v:") and isinstance(node, list):
            node = True if json.loads(step[2:]) in node else _MISSING
        else:
            return _MISSING
        if node is _MISSING:
            return _MISSING
    return node


def remove_at(obj: Any, path: Path) -> None:
    """Remove the field (or keyed list item, or set member) a path points to, if present."""
    parent = value_at(obj, path[:-1]) if len(path) > 1 else obj
    step = path[-1]
    if step.startswith("f:") and isinstance(parent, dict):
        parent.pop(step[2:], None)
    elif step.startswith("k:") and isinstance(parent, list):
        item = value_at(obj, path)
        if item is not _MISSING:
            parent.remove(item)
    elif step.startswith("v:") and isinstance(parent, list):
        value = json.loads(step[2:])
        if value in parent:
            parent.remove(value)


def _prune(obj: Any) -> Any:
    """Drop dicts emptied by removals (but keep the top-level document)."""
    if isinstance(obj, dict):
        for key in list(obj):
            obj[key] = _prune(obj[key])
            if obj[key] == {} and key not in ("metadata", "spec"):
                del obj[key]
    elif isinstance(obj, list):
        return [_prune(i) for i in obj]
    return obj


def apply_merge(target: Any, config: Any, field: str = "") -> Any:
    """Merge an applied configuration: maps merge, keyed lists merge by key, sets union, other lists replace."""
    if not isinstance(config, dict) or not isinstance(target, dict):
        if isinstance(config, list) and isinstance(target, list):
            if field in MERGE_SETS:
                return list(target) + [v for v in config if v not in target]
            if config and all(_item_key(field, i) for i in config) and all(_item_key(field, i) for i in target):
                key = MERGE_KEYS[field]
                result = [copy.deepcopy(i) for i in target]
                for item in config:
                    index = next((n for n, old in enumerate(result) if old.get(key) == item[key]), None)
                    if index is None:
                        result.append(copy.deepcopy(item))
                    else:
                        result[index] = apply_merge(result[index], item)
                return result
        return copy.deepcopy(config)
    result = dict(target)
    for key, value in config.items():
        result[key] = apply_merge(result.get(key), value, key) if value is not None else None
    return {k: v for k, v in result.items() if v is not None}


def read_owners(obj: dict[str, Any] | None) -> Owners:
    owners: Owners = {}
    for entry in ((obj or {}).get("metadata") or {}).get("managedFields") or []:
        if not isinstance(entry, dict) or not entry.get("manager"):
            continue
        key = (str(entry["manager"]), str(entry.get("operation", "Update")), str(entry.get("subresource", "")))
        owners[key] = _paths_from_fields(entry.get("fieldsV1") or {}, ())
    return owners


def _paths_from_fields(tree: dict[str, Any], prefix: Path) -> set[Path]:
    paths: set[Path] = set()
    for step, sub in tree.items():
        if step == ".":
            continue
        children = {k: v for k, v in (sub or {}).items() if k != "."}
        paths |= _paths_from_fields(children, prefix + (step,)) if children else {prefix + (step,)}
    return paths


def _fields_from_paths(paths: set[Path]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for step in path:
            node = node.setdefault(step, {})
    return tree


def write_owners(obj: dict[str, Any], owners: Owners, api_version: str) -> None:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    previous = {(e.get("manager"), e.get("operation"), e.get("subresource", "")): e
                for e in (obj.get("metadata") or {}).get("managedFields") or [] if isinstance(e, dict)}
    entries = []
    for (manager, operation, subresource), paths in owners.items():
        if not paths:
            continue
        old = previous.get((manager, operation, subresource))
        fields = _fields_from_paths(paths)
        entry = {"manager": manager, "operation": operation, "apiVersion": api_version,
                 "time": old["time"] if old and old.get("fieldsV1") == fields else now,
                 "fieldsType": "FieldsV1", "fieldsV1": fields}
        if subresource:
            entry["subresource"] = subresource
        entries.append(entry)
    obj.setdefault("metadata", {})["managedFields"] = entries
    if not entries:
        del obj["metadata"]["managedFields"]


def record_update(old: dict[str, Any] | None, new: dict[str, Any], manager: str, subresource: str,
                  api_version: str) -> None:
    """A non-apply write: fields it set or changed now belong to ``manager``; vanished fields to nobody."""
    owners = read_owners(old)
    new_paths = field_paths(new)
    changed = {p for p in new_paths if old is None or value_at(old, p) != value_at(new, p)}
    for key in owners:
        owners[key] = (owners[key] - changed) & new_paths
    mine = (manager, "Update", subresource)
    owners[mine] = (owners.get(mine, set()) | changed) & new_paths
    write_owners(new, owners, api_version)


class ApplyConflict(Exception):
    def __init__(self, conflicts: list[tuple[str, Path]]) -> None:
        self.conflicts = conflicts
        lines = [f'conflict with "{m}": .{".".join(s[2:] if s.startswith("f:") else s for s in p)}'
                 for m, p in conflicts]
        super().__init__(f"Apply failed with {len(conflicts)} conflict(s): " + "; ".join(lines))


def server_side_apply(current: dict[str, Any] | None, config: dict[str, Any], manager: str, force: bool,
                      subresource: str, api_version: str) -> dict[str, Any]:
    """The object after ``manager`` applies ``config``; raises :class:`ApplyConflict` unless ``force``."""
    owners = read_owners(current)
    base = copy.deepcopy(current) if current is not None else {}
    if subresource == "status":
        config = {"status": config.get("status") or {}}
    applied = field_paths(config)
    me = (manager, "Apply", subresource)
    conflicts = [(key[0], path) for key, paths in owners.items() if key != me
                 for path in sorted(applied & paths) if value_at(base, path) != value_at(config, path)]
    if conflicts and not force:
        raise ApplyConflict(conflicts)
    for key in owners:
        if key != me:
            owners[key] -= {p for _, p in conflicts}
    others = set().union(*(paths for key, paths in owners.items() if key != me)) if owners else set()
    for path in sorted(owners.get(me, set()) - applied - others, key=len, reverse=True):
        remove_at(base, path)
    result = _prune(apply_merge(base, config))
    owners[me] = applied
    write_owners(result, owners, api_version)
    return result
