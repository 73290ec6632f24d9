"""Patch formats: JSON merge patch (RFC 7386), strategic merge patch (the parts used here), JSON patch (RFC 6902)."""
from __future__ import annotations

import copy
from typing import Any

# Lists that strategic merge patch merges by a key instead of replacing (field name -> merge key).
MERGE_KEYS: dict[str, str] = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name", "env": "name",
    "volumes": "name", "volumeMounts": "mountPath", "ports": "containerPort", "imagePullSecrets": "name",
    "conditions": "type", "ownerReferences": "uid", "hostAliases": "ip", "secrets": "name",
}
# Lists of scalars that strategic merge patch unions.
MERGE_SETS = frozenset({"finalizers"})


class PatchError(ValueError):
    """A patch that cannot be applied; the message says which operation and path failed."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any, field: str = "") -> Any:
    """Merge patch plus Kubernetes' list strategies: merge-by-key lists, unioned sets, ``$patch`` directives."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            result[name] = [v for v in result.get(name) or [] if v not in (value or [])]
        elif key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        elif value is None:
            result.pop(key, None)
        elif isinstance(value, list) and key in MERGE_KEYS and isinstance(result.get(key), list):
            result[key] = _merge_keyed_list(result[key], value, MERGE_KEYS[key])
        elif isinstance(value, list) and key in MERGE_SETS and isinstance(result.get(key), list):
            result[key] = list(result[key]) + [v for v in value if v not in result[key]]
        else:
            merged = strategic_merge_patch(result.get(key), value, key)
            if merged is None and isinstance(value, dict) and value.get("$patch") == "delete":
                result.pop(key, None)
            else:
                result[key] = merged
    return result


def _merge_keyed_list(current: list[Any], patch: list[Any], key: str) -> list[Any]:
    result = [copy.deepcopy(item) for item in current]
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise PatchError(f"strategic merge patch: list item {item!r} lacks the merge key {key!r}")
        index = next((i for i, old in enumerate(result) if isinstance(old, dict) and old.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append({k: v for k, v in item.items() if k != "$patch"})
        else:
            result[index] = strategic_merge_patch(result[index], item)
    return result


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise PatchError(f"json patch: invalid path {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]] if path else []


def _walk(doc: Any, steps: list[str], op: str, path: str) -> Any:
    for step in steps:
        if isinstance(doc, dict) and step in doc:
            doc = doc[step]
        elif isinstance(doc, list) and step.isdigit() and int(step) < len(doc):
            doc = doc[int(step)]
        else:
            raise PatchError(f"json patch {op}: path {path!r} does not exist")
    return doc


def _get(doc: Any, path: str, op: str) -> Any:
    return _walk(doc, _pointer(path), op, path)


def _remove(doc: Any, path: str, op: str) -> Any:
    steps = _pointer(path)
    if not steps:
        raise PatchError(f"json patch {op}: cannot remove the whole document")
    parent, last = _walk(doc, steps[:-1], op, path), steps[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    raise PatchError(f"json patch {op}: path {path!r} does not exist")


def _add(doc: Any, path: str, value: Any, op: str, replace: bool = False) -> Any:
    steps = _pointer(path)
    if not steps:
        return copy.deepcopy(value)
    parent, last = _walk(doc, steps[:-1], op, path), steps[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError(f"json patch {op}: path {path!r} does not exist")
        parent[last] = copy.deepcopy(value)
    elif isinstance(parent, list):
        if last == "-" and not replace:
            parent.append(copy.deepcopy(value))
        elif last.isdigit() and int(last) <= len(parent) - (1 if replace else 0):
            if replace:
                parent[int(last)] = copy.deepcopy(value)
            else:
                parent.insert(int(last), copy.deepcopy(value))
        else:
            raise PatchError(f"json patch {op}: index {last!r} out of range at {path!r}")
    else:
        raise PatchError(f"json patch {op}: parent of {path!r} is not an object or a list")
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 add/remove/replace/move/copy/test; a failed ``test`` or a bad path raises :class:`PatchError`."""
    if not isinstance(operations, list):
        raise PatchError("json patch: the body must be a list of operations")
    doc = copy.deepcopy(target)
    for number, operation in enumerate(operations):
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise PatchError(f"json patch: operation #{number} needs 'op' and 'path'")
        op, path = operation["op"], operation["path"]
        if op in ("add", "replace", "test") and "value" not in operation:
            raise PatchError(f"json patch {op}: operation #{number} needs 'value'")
        match op:
            case "add":
                doc = _add(doc, path, operation["value"], op)
            case "replace":
                doc = _add(doc, path, operation["value"], op, replace=True)
            case "remove":
                _remove(doc, path, op)
            case "move":
                value = _remove(doc, operation.get("from"), op)
                doc = _add(doc, path, value, op)
            case "copy":
                doc = _add(doc, path, _get(doc, operation.get("from"), op), op)
            case "test":
                if _get(doc, path, op) != operation["value"]:
                    raise PatchError(f"json patch test operation failed: {path!r} is not {operation['value']!r}")
            case _:
                raise PatchError(f"json patch: unknown operation {op!r} in #{number}")
    return doc
