"""The mapper's gRPC services: AgentReports (agents in) and Intents (queries out), and the
``Mapper`` object that holds the store, resolver, applied intents and the query functions that
both gRPC and the JSON API use.
"""
from __future__ import annotations

import ctypes
import logging
import threading
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc

from clearance.v1 import intents_pb2, intents_pb2_grpc, report_pb2, report_pb2_grpc

from . import export as export_mod
from .applied import AppliedIntents
from .auth import Authenticator, Refusal
from .ingest import Ingestor, InvalidReport
from .metrics import CALLS, REPORTS
from .intents import STATUSES, Intent, ListCache, build_intents, encode_list
from .store import StoreError, UnknownRow

log = logging.getLogger("clearance.mapper.service")

DEFAULT_MAX_MESSAGE = 16 * 1024 * 1024


@dataclass
class Mapper:
    """The mapper's state and its queries."""

    ingestor: Ingestor
    applied: AppliedIntents = field(default_factory=AppliedIntents)
    authenticator: Authenticator | None = None
    _list_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _list_cache: ListCache = field(default_factory=ListCache, init=False, repr=False)

    @property
    def store(self):  # noqa: ANN201
        return self.ingestor.store

    def intents(self, namespace: str = "", workload: str = "", status: str = "") -> list[Intent]:
        _check_status(status)
        with self.store.view() as view:
            return build_intents(view, self.applied.index, namespace, workload, status)

    def list_bytes(self, namespace: str = "", workload: str = "", status: str = "") -> bytes:
        """The serialised ListIntentsResponse. The unfiltered one is kept (see ListCache)."""
        _check_status(status)
        index = self.applied.index
        if namespace or workload or status:
            with self.store.view() as view:
                return encode_list(view, index, namespace, workload, status, self._unknown_bytes(namespace, workload))
        with self._list_lock, self.store.view() as view:  # one at a time: each holds a large response
            return self._list_cache.get(view, index, self._unknown_bytes)

    def _unknown_bytes(self, namespace: str = "", workload: str = "") -> bytes:
        """The unknown calls as the ``unknown`` field of a ListIntentsResponse."""
        return intents_pb2.ListIntentsResponse(
            unknown=[unknown_to_proto(u) for u in self.unknown(namespace, workload)]).SerializeToString()

    def unknown(self, namespace: str = "", workload: str = "") -> list[UnknownRow]:
        return self.store.unknown(namespace, workload)

    def export(self, namespace: str = "", workload: str = "", status: str = "",
               format: str = "clearance") -> list[export_mod.Exported]:
        if format not in ("clearance", "otterize"):
            raise ValueError(f"format {format!r} is not one of clearance, otterize")
        return export_mod.export(self.intents(namespace, workload, status), self.applied.index, format)


def _check_status(status: str) -> None:
    if status and status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")


class AgentReportsService(report_pb2_grpc.AgentReportsServicer):
    def __init__(self, mapper: Mapper) -> None:
        self.mapper = mapper

    def Report(self, request: bytes, context: grpc.ServicerContext) -> report_pb2.ReportResponse:
        """``request`` is the serialised ReportRequest: the ingestor parses it (see ``wire``)."""
        auth = self.mapper.authenticator
        if auth is not None:
            try:
                auth.check(context.invocation_metadata())
            except Refusal as r:
                log.warning("agent refused", extra={"fields": {"peer": context.peer(), "reason": r.message}})
                code = grpc.StatusCode.UNAUTHENTICATED if r.unauthenticated else grpc.StatusCode.PERMISSION_DENIED
                REPORTS.labels("refused").inc()
                context.abort(code, r.message)
        try:
            accepted = self.mapper.ingestor.report_bytes(request)
        except InvalidReport as exc:
            REPORTS.labels("invalid").inc()
            log.warning("report refused", extra={"fields": {"peer": context.peer(), "reason": str(exc)}})
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except StoreError as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        REPORTS.labels("accepted").inc()
        CALLS.inc(accepted)
        return report_pb2.ReportResponse(accepted=accepted)


class IntentsService(intents_pb2_grpc.IntentsServicer):
    def __init__(self, mapper: Mapper) -> None:
        self.mapper = mapper

    def ListIntents(self, request: intents_pb2.ListIntentsRequest, context: grpc.ServicerContext) -> bytes:
        """Answers the serialised ListIntentsResponse (registered without a response serializer)."""
        f = request.filter
        try:
            return self.mapper.list_bytes(f.namespace, f.workload, f.status)
        except ValueError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))

    def ExportIntents(self, request: intents_pb2.ExportIntentsRequest,
                      context: grpc.ServicerContext) -> intents_pb2.ExportIntentsResponse:
        f = request.filter
        try:
            docs = self.mapper.export(f.namespace, f.workload, f.status, request.format or "clearance")
        except ValueError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return intents_pb2.ExportIntentsResponse(documents=[
            intents_pb2.ExportedDocument(namespace=d.namespace, workload=intents_pb2.Workload(kind=d.kind, name=d.name),
                                         yaml=d.yaml()) for d in docs])


def to_proto(e: Intent) -> intents_pb2.DiscoveredIntent:
    return intents_pb2.DiscoveredIntent(
        namespace=e.namespace, workload=intents_pb2.Workload(kind=e.kind, name=e.name), scope=e.scope,
        actions=e.actions, data_actions=e.data_actions, status=e.status, calls=e.calls,
        first_seen_unix_ms=e.first_seen, last_seen_unix_ms=e.last_seen)


def unknown_to_proto(u: UnknownRow) -> intents_pb2.UnknownCall:
    return intents_pb2.UnknownCall(
        namespace=u.namespace, workload=intents_pb2.Workload(kind=u.kind, name=u.name), service=u.service,
        account=u.account, method=u.method, path=u.path, query_keys=u.query_keys, calls=u.calls,
        last_seen_unix_ms=u.last_seen)


def fixed_mmap_threshold(size: int = 128 * 1024) -> bool:
    """Have glibc serve allocations of ``size`` or more from mmap, always.

    By default glibc raises that threshold after a large block is freed, so the next large
    responses (tens of MB for a big list) come from the heap of whichever gRPC thread built them
    and stay in the process after they are sent. With a fixed threshold they go back to the system.
    False where there is no glibc mallopt (e.g. musl).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(-3, size))  # -3: M_MMAP_THRESHOLD


def agent_reports_handler(mapper: Mapper) -> grpc.GenericRpcHandler:
    """The AgentReports service's handler (also served alone on the agents port: see transport)."""
    reports = AgentReportsService(mapper)
    return grpc.method_handlers_generic_handler("clearance.v1.AgentReports", {
        "Report": grpc.unary_unary_rpc_method_handler(
            reports.Report, request_deserializer=None,  # raw bytes: the ingestor's fast path
            response_serializer=report_pb2.ReportResponse.SerializeToString)})


def serve(mapper: Mapper, listen: str, *, max_message: int = DEFAULT_MAX_MESSAGE, workers: int = 8,
          agents: bool = True) -> tuple[grpc.Server, int]:
    """Start the services on ``listen`` (HOST:PORT; port 0 picks a free one); returns (server, port).

    ``agents=False`` leaves AgentReports out (it is then served on its own port, see transport)."""
    fixed_mmap_threshold()
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", max_message),
        ("grpc.max_send_message_length", 256 * 1024 * 1024),
    ]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"), options=options)
    if agents:
        server.add_generic_rpc_handlers((agent_reports_handler(mapper),))
    intents = IntentsService(mapper)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("clearance.v1.Intents", {
        "ListIntents": grpc.unary_unary_rpc_method_handler(
            intents.ListIntents, request_deserializer=intents_pb2.ListIntentsRequest.FromString,
            response_serializer=None),  # already bytes: see encode_list
        "ExportIntents": grpc.unary_unary_rpc_method_handler(
            intents.ExportIntents, request_deserializer=intents_pb2.ExportIntentsRequest.FromString,
            response_serializer=intents_pb2.ExportIntentsResponse.SerializeToString)}),))
    port = server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    server.start()
    # Encode the full list now, in the background, so that the first `intents list` after a
    # start is answered like the next ones (see ListCache).
    threading.Thread(target=_warm_list, args=(mapper,), name="warm-list", daemon=True).start()
    return server, port


def _warm_list(mapper: Mapper) -> None:
    try:
        mapper.list_bytes()
    except Exception:  # noqa: BLE001 - only an optimisation; the query will report its own error
        log.exception("could not prepare the intents list")
