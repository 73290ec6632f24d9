"""Subcommands ``operator`` and ``plan``."""
from __future__ import annotations

import argparse

from clearance.common.flags import add_flag


def azure_flags(p: argparse.ArgumentParser) -> None:
    """The Azure settings the operator and ``plan`` share."""
    add_flag(p, "--subscription-id", help="the subscription Clearance manages identities in")
    add_flag(p, "--resource-group", help="the resource group for workload identities")
    add_flag(p, "--cluster-name", help="the AKS cluster's name")
    add_flag(p, "--location", help="Azure region for identities (default: the resource group's)")
    add_flag(p, "--tenant-id", help="Entra tenant (default: the subscription's)")
    add_flag(p, "--oidc-issuer", help="the cluster's OIDC issuer URL (default: read from AKS)")
    add_flag(p, "--arm-endpoint", default="https://management.azure.com", help="Azure Resource Manager endpoint")
    add_flag(p, "--arm-ca", metavar="FILE",
             help="PEM CA bundle to trust for ARM (private/sovereign clouds; default: REQUESTS_CA_BUNDLE, then the system store)")
    add_flag(p, "--authority-host", metavar="URL",
             help="Entra authority for tokens (default: AZURE_AUTHORITY_HOST, then https://login.microsoftonline.com/)")
    add_flag(p, "--allowed-scope", action="append", default=[], help="subscription or resource group intents may target (repeatable)")
    add_flag(p, "--allow-wildcards", action="store_true", help="allow * in actions/dataActions")
    add_flag(p, "--otterize-compat", action="store_true", help="also honour Otterize's label and CRD")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "operator",
        help="run the operator (workload identities, role assignments)",
        description="A kopf operator: gives labelled pods' ServiceAccounts Azure workload identities and "
        "turns ClientIntents into Azure custom roles and role assignments.",
    )
    azure_flags(p)
    add_flag(p, "--kubeconfig", metavar="FILE", help="kubeconfig (default: in-cluster, then ~/.kube/config)")
    add_flag(p, "--health-port", type=int, default=8080, help="liveness/readiness port")
    add_flag(p, "--metrics-port", type=int, default=9465, help="Prometheus metrics port (0: off)")
    add_flag(p, "--webhook-port", type=int, default=9443, help="admission webhook port (0: off)")
    add_flag(p, "--webhook-cert", metavar="FILE", help="webhook TLS certificate")
    add_flag(p, "--webhook-key", metavar="FILE", help="webhook TLS key")
    add_flag(p, "--propagation-window", type=float, default=600.0, metavar="SECONDS",
             help="how long a target shows Propagating after Clearance changed its Azure grants (0: off)")
    p.set_defaults(func=run)

    plan = sub.add_parser("plan", help="the Azure role changes ClientIntents imply, without writing")
    plan.add_argument("-f", "--filename", required=True, metavar="FILE|-")
    plan.add_argument("--offline", action="store_true", help="assume nothing exists yet; no Azure credentials needed")
    azure_flags(plan)
    plan.set_defaults(func=run_plan)


def run(args: argparse.Namespace) -> int:
    from clearance.operator.main import run_operator

    return run_operator(args)


def run_plan(args: argparse.Namespace) -> int:
    from clearance.operator.plan import run_plan as _run

    return _run(args)
