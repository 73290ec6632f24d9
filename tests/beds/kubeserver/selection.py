"""Label selectors (=, ==, !=, in, notin, exists, !exists) and field selectors (=, ==, !=)."""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

from .errors import bad_request

Matcher = Callable[[dict[str, Any]], bool]

_KEY = r"(?:[a-z0-9A-Z](?:[-a-z0-9A-Z_.]*[a-z0-9A-Z])?/)?[a-z0-9A-Z](?:[-a-z0-9A-Z_.]{0,61}[a-z0-9A-Z])?"
_VALUE = r"(?:[a-z0-9A-Z](?:[-a-z0-9A-Z_.]{0,61}[a-z0-9A-Z])?)?"
_SET_RE = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s*\(([^()]*)\)\s*$")
_CMP_RE = re.compile(rf"^\s*({_KEY})\s*(==|!=|=)\s*({_VALUE})\s*$")
_EXISTS_RE = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")
_VALUE_RE = re.compile(rf"^{_VALUE}$")


@dataclasses.dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: frozenset[str] = frozenset()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        match self.op:
            case "=" | "in":
                return present and value in self.values
            case "!=" | "notin":
                return not present or value not in self.values
            case "exists":
                return present
            case _:
                return not present


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def parse_label_selector(text: str) -> list[Requirement]:
    """Parse a label selector; an empty one selects everything. Raises 400 naming the bad requirement."""
    requirements: list[Requirement] = []
    if not text.strip():
        return requirements
    for part in _split_top_level(text):
        if m := _SET_RE.match(part):
            values = [v.strip() for v in m.group(3).split(",")]
            if not values or any(not _VALUE_RE.match(v) for v in values):
                raise bad_request(f"unable to parse requirement: invalid label value in {part.strip()!r}")
            requirements.append(Requirement(m.group(1), m.group(2), frozenset(values)))
        elif m := _CMP_RE.match(part):
            op = "!=" if m.group(2) == "!=" else "="
            requirements.append(Requirement(m.group(1), op, frozenset([m.group(3)])))
        elif m := _EXISTS_RE.match(part):
            requirements.append(Requirement(m.group(2), "!exists" if m.group(1) else "exists"))
        else:
            raise bad_request(f"unable to parse requirement: found {part.strip()!r}, expected a label requirement")
    return requirements


def label_matcher(text: str) -> Matcher:
    requirements = parse_label_selector(text)

    def matches(obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(r.matches(labels) for r in requirements)
    return matches


def field_value(obj: dict[str, Any], path: str) -> str:
    """The string value of a dotted field, "" when absent (as the API server compares it)."""
    value: Any = obj
    for step in path.split("."):
        if not isinstance(value, dict):
            return ""
        value = value.get(step)
    if value is None:
        return ""
    if isinstance(value, dict) and path in ("source",):
        return str(value.get("component", ""))
    return str(value)


def field_matcher(text: str, supported: tuple[str, ...], kind: str) -> Matcher:
    """Parse a field selector over ``metadata.name``, ``metadata.namespace`` and the kind's ``supported`` fields."""
    allowed = ("metadata.name", "metadata.namespace") + supported
    terms: list[tuple[str, bool, str]] = []
    for part in (p for p in text.split(",") if p.strip()):
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|!=|=)\s*(.*?)\s*$", part)
        if m is None:
            raise bad_request(f"invalid field selector: {part.strip()!r}: expected <field>=<value> or <field>!=<value>")
        field, op, value = m.groups()
        if field not in allowed:
            raise bad_request(f'field label not supported: "{field}" for {kind}')
        terms.append((field, op != "!=", value))

    def matches(obj: dict[str, Any]) -> bool:
        return all((field_value(obj, f) == v) == equal for f, equal, v in terms)
    return matches
