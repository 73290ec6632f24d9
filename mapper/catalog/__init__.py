"""The operation catalog: one observed Azure call -> its operation and least-privilege grants.

Data (``rows_storage``, ``rows_vault``: one line per wire signature) plus a small matcher
(``matcher``) scored like Azurite's dispatcher; ARM paths follow the generic rule in ``arm``.
See docs/catalog.md for the decisions behind the rows.
"""
from __future__ import annotations

from clearance.v1.report_pb2 import ObservedCall

from .matcher import CATALOG, classify_parts, explain_parts
from .model import Classification, Grant, Row

__all__ = ["CATALOG", "Classification", "Grant", "Row", "classify", "explain", "signature"]


def signature(call: ObservedCall) -> tuple:
    """The hashable inputs of ``classify`` for one call (what the cache keys on).

    Map items keep the message's order: another order of the same items only costs a cache miss.
    """
    query, headers = call.query, call.headers
    return (call.service, call.account, call.host, call.method, call.path,
            tuple(query.items()) if query else (), tuple(headers.items()) if headers else (),
            call.status, call.error_code)


def classify(call: ObservedCall) -> Classification:
    """Classify one observed call. Never raises on odd input; unknown calls say so."""
    return classify_parts(*signature(call))


def explain(call: ObservedCall) -> Row | None:
    """The catalog row that decides ``classify(call)`` (``None`` for ARM and unknown calls)."""
    return explain_parts(*signature(call)[:-1])
