"""The mapper's hand-copied protobuf field numbers (mapper/wire.py views, mapper/intents.py tags)
against the generated descriptors of proto/clearance/v1/*.proto: a renumbered field fails here."""
from __future__ import annotations

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from clearance.mapper import intents, wire
from clearance.v1 import intents_pb2, report_pb2

_WIRE_TYPE = {FieldDescriptor.TYPE_STRING: 2, FieldDescriptor.TYPE_BYTES: 2, FieldDescriptor.TYPE_MESSAGE: 2,
              FieldDescriptor.TYPE_UINT64: 0, FieldDescriptor.TYPE_INT64: 0, FieldDescriptor.TYPE_UINT32: 0,
              FieldDescriptor.TYPE_BOOL: 0, FieldDescriptor.TYPE_ENUM: 0}


def _repeated(f: FieldDescriptor) -> bool:
    return f.is_repeated


def _same_fields(view: Descriptor, real: Descriptor) -> list[str]:
    """Every field of ``view`` has the number, wire type and cardinality of ``real``'s field of
    that name (a view may read a sub-message as raw bytes: same wire type)."""
    problems = []
    for f in view.fields:
        r = real.fields_by_name.get(f.name)
        if r is None:
            problems.append(f"{view.name}.{f.name}: no such field in {real.full_name}")
            continue
        if (f.number, _WIRE_TYPE[f.type], _repeated(f)) != (r.number, _WIRE_TYPE[r.type], _repeated(r)):
            problems.append(f"{view.name}.{f.name}: {f.number} but {real.full_name}.{r.name} is {r.number}")
        if f.type == FieldDescriptor.TYPE_MESSAGE and r.type == FieldDescriptor.TYPE_MESSAGE:
            problems += _same_fields(f.message_type, r.message_type)
    return problems


@pytest.mark.parametrize("view, real", [
    (wire.HeadView, report_pb2.ReportRequest),
    (wire.SigView, report_pb2.ReportRequest),
    (wire.ListView, intents_pb2.ListIntentsResponse),
])
def test_wire_views_use_the_real_field_numbers(view, real):
    assert _same_fields(view.DESCRIPTOR, real.DESCRIPTOR) == []
    assert len(view.DESCRIPTOR.fields) > 0


def test_the_sig_view_keeps_every_call_field_but_caller_count_and_times():
    """The signature of a call is all of it but these: a field added to ObservedCall must be
    added to SigCall (or here, when it belongs to the head)."""
    call = report_pb2.ReportRequest.DESCRIPTOR.fields_by_name["calls"].message_type
    sig = wire.SigView.DESCRIPTOR.fields_by_name["calls"].message_type
    head = wire.HeadView.DESCRIPTOR.fields_by_name["calls"].message_type
    assert {f.name for f in sig.fields} | {f.name for f in head.fields} == {f.name for f in call.fields}
    assert not {f.name for f in sig.fields} & {f.name for f in head.fields}


def test_the_list_view_reads_the_workload_and_unknown_as_raw_messages():
    real = intents_pb2.DiscoveredIntent.DESCRIPTOR.fields_by_name["workload"]
    view = wire.ListView.DESCRIPTOR.fields_by_name["intents"].message_type.fields_by_name["workload"]
    assert (view.number, view.type, real.type) == (real.number, FieldDescriptor.TYPE_BYTES, FieldDescriptor.TYPE_MESSAGE)


@pytest.mark.parametrize("message, field", sorted(intents.TAGS))
def test_intents_tags_match_the_descriptor(message, field):
    desc = getattr(intents_pb2, message).DESCRIPTOR.fields_by_name[field]
    assert intents.TAGS[message, field] == bytes(((desc.number << 3) | _WIRE_TYPE[desc.type],))


def test_the_encoder_writes_every_field_of_discovered_intent_but_what_it_leaves_out_on_purpose():
    written = {f for m, f in intents.TAGS if m == "DiscoveredIntent"}
    assert {f.name for f in intents_pb2.DiscoveredIntent.DESCRIPTOR.fields} == written
    assert {f.name for f in intents_pb2.Workload.DESCRIPTOR.fields} == {f for m, f in intents.TAGS if m == "Workload"}
