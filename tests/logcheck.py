"""Secrets absent from logs: check every record's message, args and structured fields.

``caplog.text`` uses pytest's format, which leaves out ``extra={"fields": ...}``, where most of our
values go; these helpers look at all of it, raw and as the JSON line the component would write.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from clearance.common.logs import JsonFormatter

_FORMAT = JsonFormatter()


def _strings(value: Any) -> Iterator[str]:
    """Every string in a (nested) value: keys, items and the str() of anything else."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, bytes):
        yield value.decode("utf-8", "replace")
    elif value is not None:
        yield str(value)


def record_texts(record: logging.LogRecord) -> Iterator[str]:
    """The message template, its args, the formatted message, the fields and the JSON line."""
    yield from _strings(record.msg)
    yield from _strings(record.args)
    yield from _strings(getattr(record, "fields", None))
    try:
        yield record.getMessage()
    except (TypeError, ValueError):
        pass  # args that do not fit the template: already checked one by one
    if record.exc_info or record.exc_text:
        yield logging.Formatter().formatException(record.exc_info) if record.exc_info else record.exc_text
    yield _FORMAT.format(record)


def logged(records: Iterable[logging.LogRecord]) -> str:
    """Every captured record as the component writes it (a JSON line with its fields)."""
    return "\n".join(_FORMAT.format(r) for r in records)


def leaks(records: Iterable[logging.LogRecord], *secrets: str | bytes) -> list[tuple[str, str]]:
    """(secret, where) for each secret found in any record's message, args or fields."""
    wanted = [s.decode() if isinstance(s, bytes) else s for s in secrets if s]
    found = []
    for record in records:
        for text in record_texts(record):
            found += [(s, f"{record.name}: {record.msg!r}") for s in wanted if s in text]
    return found


def assert_not_logged(records: Iterable[logging.LogRecord], *secrets: str | bytes) -> None:
    """Fail naming the record when a secret reached a log record anywhere."""
    found = leaks(list(records), *secrets)
    assert not found, f"secrets in logs: {found[:5]}"
