"""Subcommands ``mapper`` and ``intents list|export|apply``."""
from __future__ import annotations

import argparse

from clearance.common.flags import add_flag


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "mapper",
        help="run the mapper (receives agent reports, keeps discovered intents)",
        description="Receives the agents' reports over gRPC, classifies each call into the Azure "
        "permissions it needs, stores discovered intents and serves the query API and web page.",
    )
    add_flag(p, "--listen", default="0.0.0.0:9090", metavar="HOST:PORT",
             help="gRPC address of the query API (and of the agents' reports without --agent-listen)")
    add_flag(p, "--agent-listen", metavar="HOST:PORT",
             help="serve the agents' reports on their own port (TLS with --tls-cert/--tls-key)")
    add_flag(p, "--tls-cert", metavar="FILE", help="PEM certificate (chain) of the agents' port")
    add_flag(p, "--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
    add_flag(p, "--db", default="clearance.db", metavar="PATH", help="SQLite store")
    add_flag(p, "--pods-file", metavar="FILE", help="pods from YAML instead of the Kubernetes API")
    add_flag(p, "--agent-token-file", metavar="FILE", help="shared token agents must present (off-cluster)")
    add_flag(p, "--kubeconfig", metavar="FILE", help="kubeconfig (default: in-cluster, then ~/.kube/config)")
    add_flag(p, "--web-port", type=int, default=0, help="serve the access-graph page on this port (0: off)")
    add_flag(p, "--metrics-port", type=int, default=0, help="Prometheus metrics port (0: off)")
    add_flag(p, "--web-host", default="127.0.0.1", metavar="HOST", help="address of the JSON query API and page")
    add_flag(p, "--agent-service-account", action="append", default=[], metavar="USER",
             help="ServiceAccount user accepted by TokenReview (repeatable; default "
             "system:serviceaccount:clearance-system:clearance-agent)")
    add_flag(p, "--agent-audience", default="clearance-mapper", metavar="AUDIENCE",
             help="audience the agents' ServiceAccount token must carry (checked by TokenReview)")
    add_flag(p, "--max-calls-per-report", type=int, default=100_000, help="larger reports are refused")
    add_flag(p, "--max-message-bytes", type=int, default=16 * 1024 * 1024, help="largest gRPC message accepted")
    add_flag(p, "--insecure-no-agent-auth", action="store_true",
             help="accept agents without any token (local experiments only)")
    p.set_defaults(func=_lazy("clearance.mapper.main", "run_mapper"))

    intents = sub.add_parser("intents", help="list, export and apply discovered intents")
    isub = intents.add_subparsers(dest="intents_command", metavar="ACTION")
    isub.required = True

    lst = isub.add_parser("list", help="discovered intents, kubectl-style")
    _selection(lst)
    lst.add_argument("-o", "--output", default="table", choices=["table", "json", "yaml"])
    lst.set_defaults(func=_lazy("clearance.mapper.commands", "intents_list"))

    exp = isub.add_parser("export", help="complete ClientIntents per workload, ready for kubectl apply")
    _selection(exp)
    exp.add_argument("--format", default="clearance", choices=["clearance", "otterize"])
    exp.add_argument("-o", "--output", default="-", metavar="FILE|DIR", help="file, directory, or - for stdout")
    exp.set_defaults(func=_lazy("clearance.mapper.commands", "intents_export"))

    app = isub.add_parser("apply", help="server-side apply ClientIntents to the cluster")
    app.add_argument("-f", "--filename", default="-", metavar="FILE|-")
    add_flag(app, "--kubeconfig", metavar="FILE", help="kubeconfig (default: in-cluster, then ~/.kube/config)")
    app.add_argument("--force-conflicts", action="store_true", help="take over fields another manager owns")
    app.set_defaults(func=_lazy("clearance.mapper.commands", "intents_apply"))


def _selection(p: argparse.ArgumentParser) -> None:
    add_flag(p, "--mapper", default="127.0.0.1:9090", metavar="HOST:PORT", help="the mapper's gRPC address")
    group = p.add_mutually_exclusive_group()
    group.add_argument("-n", "--namespace", help="only this namespace")
    group.add_argument("-A", "--all-namespaces", action="store_true", help="all namespaces (the default)")
    p.add_argument("--workload", metavar="NAME", help="only this workload")


def _lazy(module: str, name: str):
    def call(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(module), name)(args)

    return call
