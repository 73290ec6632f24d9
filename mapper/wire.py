"""Private views of wire bytes, for reading without per-field Python work.

Two views of a ReportRequest, for ingesting:

``HeadView`` keeps the report's header and, per call, the caller (raw bytes), count and times;
``SigView`` keeps, per call, only the signature fields (service ... error_code). Parsing the same
bytes with both and dropping the other fields (``DiscardUnknownFields``, in C) splits every call
into its caller and its signature: the call without caller, count and times, serialised
deterministically (what is kept for a pod not known yet).
The field numbers are those of proto/clearance/v1/report.proto.

``ListView`` reads a ListIntentsResponse (proto/clearance/v1/intents.proto) for the CLI's table:
each intent's ``workload`` stays raw bytes (entries of one workload share them, so it is decoded
once per workload) and the fields a table does not show are skipped.
"""
from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_T = descriptor_pb2.FieldDescriptorProto


def _field(msg: descriptor_pb2.DescriptorProto, name: str, number: int, ftype: int, *,
           repeated: bool = False, type_name: str = "") -> None:
    f = msg.field.add(name=name, number=number, type=ftype,
                      label=_T.LABEL_REPEATED if repeated else _T.LABEL_OPTIONAL)
    if type_name:
        f.type_name = type_name


def _build() -> tuple[type, type, type]:
    fdp = descriptor_pb2.FileDescriptorProto(name="clearance/mapper/wire_views.proto",
                                             package="clearance.mapper.wire", syntax="proto3")
    head_call = fdp.message_type.add(name="HeadCall")
    _field(head_call, "caller", 1, _T.TYPE_BYTES)
    _field(head_call, "count", 11, _T.TYPE_UINT64)
    _field(head_call, "first_seen_unix_ms", 12, _T.TYPE_INT64)
    _field(head_call, "last_seen_unix_ms", 13, _T.TYPE_INT64)
    head = fdp.message_type.add(name="HeadView")
    _field(head, "agent_id", 1, _T.TYPE_STRING)
    _field(head, "node", 2, _T.TYPE_STRING)
    _field(head, "sequence", 3, _T.TYPE_UINT64)
    _field(head, "calls", 4, _T.TYPE_MESSAGE, repeated=True, type_name=".clearance.mapper.wire.HeadCall")
    _field(head, "lost_events", 5, _T.TYPE_UINT64)

    sig_call = fdp.message_type.add(name="SigCall")
    for name, number in (("service", 2), ("account", 3), ("host", 4), ("method", 5), ("path", 6)):
        _field(sig_call, name, number, _T.TYPE_STRING)
    for name, number, entry in (("query", 7, "QueryEntry"), ("headers", 8, "HeadersEntry")):
        e = sig_call.nested_type.add(name=entry)
        _field(e, "key", 1, _T.TYPE_STRING)
        _field(e, "value", 2, _T.TYPE_STRING)
        e.options.map_entry = True
        _field(sig_call, name, number, _T.TYPE_MESSAGE, repeated=True,
               type_name=f".clearance.mapper.wire.SigCall.{entry}")
    _field(sig_call, "status", 9, _T.TYPE_UINT32)
    _field(sig_call, "error_code", 10, _T.TYPE_STRING)
    sig = fdp.message_type.add(name="SigView")
    _field(sig, "calls", 4, _T.TYPE_MESSAGE, repeated=True, type_name=".clearance.mapper.wire.SigCall")

    intent = fdp.message_type.add(name="IntentView")
    _field(intent, "namespace", 1, _T.TYPE_STRING)
    _field(intent, "workload", 2, _T.TYPE_BYTES)
    _field(intent, "scope", 3, _T.TYPE_STRING)
    _field(intent, "actions", 4, _T.TYPE_STRING, repeated=True)
    _field(intent, "data_actions", 5, _T.TYPE_STRING, repeated=True)
    _field(intent, "status", 6, _T.TYPE_STRING)
    _field(intent, "last_seen_unix_ms", 9, _T.TYPE_INT64)
    listing = fdp.message_type.add(name="ListView")
    _field(listing, "intents", 1, _T.TYPE_MESSAGE, repeated=True, type_name=".clearance.mapper.wire.IntentView")
    _field(listing, "unknown", 2, _T.TYPE_BYTES, repeated=True)  # UnknownCall messages

    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return tuple(message_factory.GetMessageClass(pool.FindMessageTypeByName(f"clearance.mapper.wire.{name}"))
                 for name in ("HeadView", "SigView", "ListView"))  # type: ignore[return-value]


HeadView, SigView, ListView = _build()


def split(data: bytes) -> tuple[object, list[bytes]]:
    """(the HeadView of a serialised ReportRequest, the signature bytes of each call).
    Raises google.protobuf.message.DecodeError on bytes that are not a ReportRequest."""
    head = HeadView.FromString(data)
    head.DiscardUnknownFields()
    sig = SigView.FromString(data)
    sig.DiscardUnknownFields()
    # One serialisation of the whole view is the calls' deterministic serialisations, each as
    # field 4 (tag, length, bytes): cut it there rather than serialise each call on its own.
    blob = sig.SerializeToString(deterministic=True)
    sigs: list[bytes] = []
    add = sigs.append
    i = 0
    n = len(blob)
    while i < n:
        size = blob[i + 1]
        if size < 128:
            i += 2
        elif blob[i + 2] < 128:
            size = size & 127 | blob[i + 2] << 7
            i += 3
        else:
            size, i = _varint_at(blob, i + 1)
        add(blob[i:i + size])
        i += size
    return head, sigs


def _varint_at(data: bytes, i: int) -> tuple[int, int]:
    """(the varint at ``data[i]``, the index after it)."""
    value = shift = 0
    while True:
        b = data[i]
        value |= (b & 127) << shift
        i += 1
        if b < 128:
            return value, i
        shift += 7
