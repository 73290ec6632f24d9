"""An HTTPS Azure Resource Manager + Entra ID server for tests, driven by the real Azure SDKs.

Start it with ``start_arm_server(pki)`` (call ``.stop()``) or use the ``arm_server`` pytest fixture.
``ArmServer`` gives ``url`` (ARM base_url and Entra authority), ``ca_cert``, ``tenant_id``,
``subscription_id``, ``resource_group``, ``cluster_name``, ``location``, ``oidc_issuer``,
``credential()``, ``client_kwargs()``, ``service_account_token()``, seeding helpers (``add_*``),
``calls(method=, path_contains=, status=, error_code=)``, ``state`` and ``faults``:

- ``faults.principal_not_found_seconds`` (0 = off), ``faults.principal_type_skips_lookup``
- ``faults.fic_write_hold_ms`` (30): concurrent FIC writes under one identity get 409
- ``faults.throttle(burst=200, refill_per_s=10, enabled=True)``: 429 + Retry-After on writes/deletes
- ``faults.fail_next(n, status=500, method=None, path=".*", code=None, retry_after=None)``
- ``faults.latency_ms``, ``faults.unreachable``, ``faults.page_size`` (100), ``faults.clear()``
"""
from .calls import Call
from .faults import Faults
from .server import ARM_SCOPE, ArmServer, start_arm_server
from .state import ArmState

__all__ = ["ARM_SCOPE", "ArmServer", "ArmState", "Call", "Faults", "start_arm_server"]
