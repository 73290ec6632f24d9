"""Reading YAML manifests (files, stdin or text) with errors that name the file and document.

``load_documents(source)`` reads a path (``-`` for stdin); ``load_documents(name, text=...)``
parses text already in memory, ``name`` only labelling errors. Empty documents are skipped;
every other document must be a mapping.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, TextIO

import yaml

MAX_BYTES = 32 * 1024 * 1024  # a manifest file larger than this is refused, not read


class DocumentError(ValueError):
    """A manifest that cannot be read or parsed; the message names the file (and document)."""


@dataclass(frozen=True)
class YamlDocument:
    """One non-empty document: ``number`` counts from 1 over every document in the source."""

    source: str
    number: int
    body: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.source} document {self.number}"


def load_documents(source: str | os.PathLike[str], *, text: str | None = None, stdin: TextIO | None = None,
                   max_bytes: int = MAX_BYTES) -> list[YamlDocument]:
    """The non-empty documents of ``source`` (a path, ``-`` for stdin, or a name when ``text`` is given).

    Raises DocumentError naming the source, and the document when one is bad.
    """
    name = "stdin" if str(source) == "-" and text is None else os.fspath(source)
    if text is None:
        text = _read(source, name, stdin or sys.stdin, max_bytes)
    elif len(text) > max_bytes:
        raise DocumentError(f"{name} is larger than {max_bytes} bytes")
    out: list[YamlDocument] = []
    number = 0
    try:
        for number, doc in enumerate(yaml.safe_load_all(text), start=1):
            if doc is None:
                continue
            if not isinstance(doc, dict):
                raise DocumentError(f"{name} document {number}: expected a mapping, got {type(doc).__name__}")
            out.append(YamlDocument(name, number, doc))
    except yaml.YAMLError as exc:
        raise DocumentError(f"{name} document {number + 1} is not valid YAML: {_yaml_problem(exc)}") from None
    return out


def _read(source: str | os.PathLike[str], name: str, stdin: TextIO, max_bytes: int) -> str:
    try:
        if name == "stdin":
            text = stdin.read(max_bytes + 1)
        else:
            with open(source, encoding="utf-8") as f:
                text = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise DocumentError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise DocumentError(f"{name} is a directory, not a file") from None
    except UnicodeDecodeError:
        raise DocumentError(f"{name} is not UTF-8 text") from None
    except OSError as exc:
        raise DocumentError(f"cannot read {name}: {exc.strerror or exc}") from None
    if len(text) > max_bytes:
        raise DocumentError(f"{name} is larger than {max_bytes} bytes")
    return text


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """The parser's complaint and where, without echoing the document's text."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return f"{exc.problem or exc.context or 'parse error'}{where}"
    return type(exc).__name__
