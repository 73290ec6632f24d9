"""``clearance intents list | export | apply``."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import grpc

from clearance.v1 import intents_pb2, intents_pb2_grpc

from . import wire

PORT_FORWARD = "kubectl -n clearance-system port-forward svc/clearance-mapper 9090"
FIELD_MANAGER = "clearance"


class CommandError(Exception):
    """A failure to report in one line, exit status 1."""


# -- talking to the mapper ----------------------------------------------------------------------

def _call(address: str, method: str, request: Any, timeout: float = 60.0, *, raw: bool = False) -> Any:
    """The response of Intents/``method``; its serialised bytes when ``raw``."""
    options = [("grpc.max_receive_message_length", 512 * 1024 * 1024)]
    with grpc.insecure_channel(address, options=options) as channel:
        try:
            if raw:
                rpc = channel.unary_unary(f"/clearance.v1.Intents/{method}",
                                          request_serializer=type(request).SerializeToString,
                                          response_deserializer=None)
                return rpc(request, timeout=timeout, wait_for_ready=False)
            stub = intents_pb2_grpc.IntentsStub(channel)
            return getattr(stub, method)(request, timeout=timeout, wait_for_ready=False)
        except grpc.RpcError as exc:
            code = exc.code()
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise CommandError(
                    f"cannot reach the mapper at {address} ({exc.details()}). In a cluster, run "
                    f"'{PORT_FORWARD}' and use --mapper 127.0.0.1:9090") from None
            raise CommandError(f"the mapper at {address} refused the request: {code.name}: {exc.details()}") from None


def _filter(args: argparse.Namespace) -> intents_pb2.IntentFilter:
    return intents_pb2.IntentFilter(namespace=args.namespace or "", workload=args.workload or "")


def _run(fn: Any, args: argparse.Namespace) -> int:
    try:
        return fn(args)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


# -- list ---------------------------------------------------------------------------------------

def intents_list(args: argparse.Namespace) -> int:
    return _run(_list, args)


def _list(args: argparse.Namespace) -> int:
    data = _call(args.mapper, "ListIntents", intents_pb2.ListIntentsRequest(filter=_filter(args)), raw=True)
    out = sys.stdout
    if args.output == "table":
        write_table(data, out, now_ms=int(time.time() * 1000))
    else:
        doc = list_document(intents_pb2.ListIntentsResponse.FromString(data))
        if args.output == "json":
            json.dump(doc, out, indent=2)
            out.write("\n")
        else:
            import yaml  # not imported for the table: it costs start-up time

            yaml.safe_dump(doc, out, sort_keys=False)
    return 0


def _iso(ms: int) -> str:
    if not ms:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def list_document(resp: intents_pb2.ListIntentsResponse) -> dict[str, Any]:
    """The ``-o json|yaml`` shape."""
    return {
        "intents": [{
            "namespace": i.namespace, "workload": {"kind": i.workload.kind, "name": i.workload.name},
            "scope": i.scope, "actions": list(i.actions), "dataActions": list(i.data_actions), "status": i.status,
            "calls": i.calls, "firstSeen": _iso(i.first_seen_unix_ms), "lastSeen": _iso(i.last_seen_unix_ms),
        } for i in resp.intents],
        "unknown": [{
            "namespace": u.namespace, "workload": {"kind": u.workload.kind, "name": u.workload.name},
            "service": u.service, "account": u.account, "method": u.method, "path": u.path,
            "queryKeys": u.query_keys, "calls": u.calls, "lastSeen": _iso(u.last_seen_unix_ms),
        } for u in resp.unknown],
    }


def age(ms: int, now_ms: int) -> str:
    """kubectl-style age: 42s, 5m, 3h, 2d."""
    if not ms:
        return "<unknown>"
    s = max(0, (now_ms - ms) // 1000)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"


def _columns(rows: list[tuple[str, ...]], out: TextIO, chunk: int = 8192) -> None:
    """Left-aligned columns three spaces apart; widths from one C-level pass per column."""
    widths = [max(map(len, col)) for col in zip(*rows)]
    fmt = "   ".join(f"%-{w}s" for w in widths[:-1]) + "   %s\n"
    for i in range(0, len(rows), chunk):
        out.write("".join([fmt % r for r in rows[i:i + chunk]]))


def _workload_label(raw: bytes) -> str:
    """KIND/NAME of a serialised Workload; its usual layout (kind, then name, each shorter than
    128 bytes) is read directly, which is much cheaper than parsing a small message."""
    n = len(raw)
    if n >= 2 and raw[0] == 0x0A and raw[1] < 128:
        end = 2 + raw[1]
        if end + 2 <= n and raw[end] == 0x12 and raw[end + 1] < 128 and end + 2 + raw[end + 1] == n:
            try:
                return raw[2:end].decode() + "/" + raw[end + 2:].decode()
            except UnicodeDecodeError:
                pass
    w = intents_pb2.Workload.FromString(raw)
    return f"{w.kind}/{w.name}"


def write_table(data: bytes, out: TextIO, now_ms: int) -> None:
    """The kubectl-style table of a serialised ListIntentsResponse."""
    resp = wire.ListView.FromString(data)
    has_intents = len(resp.intents) > 0
    if not has_intents and not resp.unknown:
        out.write("No discovered intents.\n")
        return
    ages: dict[int, str] = {}  # many entries share a last-seen time
    if has_intents:
        rows = [("NAMESPACE", "WORKLOAD", "SCOPE", "PERMISSIONS", "STATUS", "LAST SEEN")]
        add = rows.append
        workloads: dict[bytes, str] = {}  # entries of one workload share its bytes
        for i in resp.intents:
            raw = i.workload
            wl = workloads.get(raw)
            if wl is None:
                wl = workloads[raw] = _workload_label(raw)
            last = i.last_seen_unix_ms
            a = ages.get(last)
            if a is None:
                a = ages[last] = age(last, now_ms)
            acts = i.actions
            datas = i.data_actions
            if len(acts) == 1 and len(datas) == 1:  # the common case; join() on a repeated field is slow
                perms = acts[0] + "," + datas[0]
            else:
                perms = ",".join([*acts, *datas])
            add((i.namespace or "-", wl, i.scope, perms, i.status, a))
        del resp.intents[:]  # let the parsed message go before the text is made
        _columns(rows, out)
        del rows
    if resp.unknown:
        if has_intents:
            out.write("\n")
        unknown = [intents_pb2.UnknownCall.FromString(u) for u in resp.unknown]
        rows = [("NAMESPACE", "WORKLOAD", "UNKNOWN CALL", "QUERY KEYS", "CALLS", "LAST SEEN")]
        rows += [(u.namespace or "-", f"{u.workload.kind}/{u.workload.name}",
                  f"{u.method} {u.service}:{u.account}{u.path}", u.query_keys or "-", str(u.calls),
                  age(u.last_seen_unix_ms, now_ms)) for u in unknown]
        _columns(rows, out)


# -- export -------------------------------------------------------------------------------------

def intents_export(args: argparse.Namespace) -> int:
    return _run(_export, args)


def _export(args: argparse.Namespace) -> int:
    resp = _call(args.mapper, "ExportIntents",
                 intents_pb2.ExportIntentsRequest(filter=_filter(args), format=args.format))
    docs = list(resp.documents)
    if not docs:
        print("no discovered intents match; nothing exported", file=sys.stderr)
        return 0
    target = args.output
    if target == "-":
        sys.stdout.write("---\n".join(d.yaml for d in docs))
        return 0
    path = Path(target)
    try:
        if path.is_dir() or target.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            for d in docs:
                (path / f"{d.namespace}.{d.workload.name}.yaml").write_text(d.yaml)
        else:
            path.write_text("---\n".join(d.yaml for d in docs))
    except OSError as exc:
        raise CommandError(f"cannot write {target}: {exc.strerror}") from None
    print(f"exported {len(docs)} ClientIntents to {target}", file=sys.stderr)
    return 0


# -- apply --------------------------------------------------------------------------------------

def intents_apply(args: argparse.Namespace) -> int:
    return _run(_apply, args)


def read_documents(source: str) -> list[dict[str, Any]]:
    """YAML documents from a file or '-' (stdin); empty documents are skipped."""
    import yaml

    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise CommandError(f"cannot read {source}: {exc.strerror}") from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise CommandError(f"{source} is not valid YAML: {exc}") from None
    if not docs:
        raise CommandError(f"{source} holds no documents")
    return docs


def _apply(args: argparse.Namespace) -> int:
    from clearance.operator.api import validate_document

    docs = read_documents(args.filename)
    problems = []
    for i, doc in enumerate(docs):
        errors = validate_document(doc)
        if errors:
            name = (doc.get("metadata") or {}).get("name") if isinstance(doc, dict) else None
            problems.append(f"document {i + 1}{f' ({name})' if name else ''}: {'; '.join(errors)}")
    if problems:
        raise CommandError("refusing to apply invalid ClientIntents, nothing was applied:\n  "
                           + "\n  ".join(problems))
    from .main import kube_api_client

    try:
        api_client = kube_api_client(args.kubeconfig)
    except Exception as exc:  # noqa: BLE001
        raise CommandError(f"cannot load the Kubernetes configuration: {exc}") from None
    if api_client is None:
        raise CommandError("no cluster configured: give --kubeconfig or set KUBECONFIG")
    for doc in docs:
        print(apply_document(api_client, doc, force=getattr(args, "force_conflicts", False)))
    return 0


def apply_document(api_client: Any, doc: dict[str, Any], *, force: bool = False) -> str:
    """Server-side apply one valid ClientIntents; returns kubectl's line (created/configured/unchanged)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from clearance.operator.api import PLURAL

    group, _, version = doc["apiVersion"].partition("/")
    meta = doc["metadata"]
    name, namespace = meta["name"], meta.get("namespace") or "default"
    body = dict(doc, metadata=dict(meta, namespace=namespace))
    api = client.CustomObjectsApi(api_client)
    try:
        before = api.get_namespaced_custom_object(group, version, namespace, PLURAL, name)
    except ApiException as exc:
        if exc.status != 404:
            raise CommandError(_api_error(exc, f"reading {PLURAL}.{group}/{name}")) from None
        before = None
    try:
        after = api.patch_namespaced_custom_object(
            group, version, namespace, PLURAL, name, body, field_manager=FIELD_MANAGER, force=force or None,
            _content_type="application/apply-patch+yaml")
    except ApiException as exc:
        raise CommandError(_api_error(exc, f"applying {PLURAL}.{group}/{name}")) from None
    if before is None:
        outcome = "created"
    elif _content(before) == _content(after):
        outcome = "unchanged"
    else:
        outcome = "configured"
    return f"{PLURAL}.{group}/{name} {outcome}"


def _content(obj: Any) -> Any:
    obj = obj or {}
    meta = obj.get("metadata") or {}
    return obj.get("spec"), meta.get("labels"), meta.get("annotations")


def _api_error(exc: Any, doing: str) -> str:
    detail = exc.reason
    try:
        detail = json.loads(exc.body).get("message") or detail
    except (TypeError, ValueError, AttributeError):
        pass
    hint = {404: " (is the ClientIntents CRD installed?)",
            409: " (another field manager owns these fields: review, then re-run with --force-conflicts)"
            }.get(exc.status, "")
    return f"{doing}: HTTP {exc.status}: {detail}{hint}"
