from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Workload(_message.Message):
    __slots__ = ("kind", "name")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    kind: str
    name: str
    def __init__(self, kind: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class IntentFilter(_message.Message):
    __slots__ = ("namespace", "workload", "status")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    workload: str
    status: str
    def __init__(self, namespace: _Optional[str] = ..., workload: _Optional[str] = ..., status: _Optional[str] = ...) -> None: ...

class DiscoveredIntent(_message.Message):
    __slots__ = ("namespace", "workload", "scope", "actions", "data_actions", "status", "calls", "first_seen_unix_ms", "last_seen_unix_ms")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    DATA_ACTIONS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEEN_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    workload: Workload
    scope: str
    actions: _containers.RepeatedScalarFieldContainer[str]
    data_actions: _containers.RepeatedScalarFieldContainer[str]
    status: str
    calls: int
    first_seen_unix_ms: int
    last_seen_unix_ms: int
    def __init__(self, namespace: _Optional[str] = ..., workload: _Optional[_Union[Workload, _Mapping]] = ..., scope: _Optional[str] = ..., actions: _Optional[_Iterable[str]] = ..., data_actions: _Optional[_Iterable[str]] = ..., status: _Optional[str] = ..., calls: _Optional[int] = ..., first_seen_unix_ms: _Optional[int] = ..., last_seen_unix_ms: _Optional[int] = ...) -> None: ...

class UnknownCall(_message.Message):
    __slots__ = ("namespace", "workload", "service", "account", "method", "path", "query_keys", "calls", "last_seen_unix_ms")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    QUERY_KEYS_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    workload: Workload
    service: str
    account: str
    method: str
    path: str
    query_keys: str
    calls: int
    last_seen_unix_ms: int
    def __init__(self, namespace: _Optional[str] = ..., workload: _Optional[_Union[Workload, _Mapping]] = ..., service: _Optional[str] = ..., account: _Optional[str] = ..., method: _Optional[str] = ..., path: _Optional[str] = ..., query_keys: _Optional[str] = ..., calls: _Optional[int] = ..., last_seen_unix_ms: _Optional[int] = ...) -> None: ...

class ListIntentsRequest(_message.Message):
    __slots__ = ("filter",)
    FILTER_FIELD_NUMBER: _ClassVar[int]
    filter: IntentFilter
    def __init__(self, filter: _Optional[_Union[IntentFilter, _Mapping]] = ...) -> None: ...

class ListIntentsResponse(_message.Message):
    __slots__ = ("intents", "unknown")
    INTENTS_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_FIELD_NUMBER: _ClassVar[int]
    intents: _containers.RepeatedCompositeFieldContainer[DiscoveredIntent]
    unknown: _containers.RepeatedCompositeFieldContainer[UnknownCall]
    def __init__(self, intents: _Optional[_Iterable[_Union[DiscoveredIntent, _Mapping]]] = ..., unknown: _Optional[_Iterable[_Union[UnknownCall, _Mapping]]] = ...) -> None: ...

class ExportIntentsRequest(_message.Message):
    __slots__ = ("filter", "format")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    filter: IntentFilter
    format: str
    def __init__(self, filter: _Optional[_Union[IntentFilter, _Mapping]] = ..., format: _Optional[str] = ...) -> None: ...

class ExportedDocument(_message.Message):
    __slots__ = ("namespace", "workload", "yaml")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    YAML_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    workload: Workload
    yaml: str
    def __init__(self, namespace: _Optional[str] = ..., workload: _Optional[_Union[Workload, _Mapping]] = ..., yaml: _Optional[str] = ...) -> None: ...

class ExportIntentsResponse(_message.Message):
    __slots__ = ("documents",)
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    documents: _containers.RepeatedCompositeFieldContainer[ExportedDocument]
    def __init__(self, documents: _Optional[_Iterable[_Union[ExportedDocument, _Mapping]]] = ...) -> None: ...
