"""An HTTPS Azure Resource Manager + Entra ID server for tests, driven by the real Azure SDKs.

Start it with ``start_arm_server(pki)`` (or the ``arm_server`` pytest fixture); see ``ArmServer``.
"""
from .calls import Call
from .faults import Faults
from .server import ARM_SCOPE, ArmServer, start_arm_server
from .state import ArmState

__all__ = ["ARM_SCOPE", "ArmServer", "ArmState", "Call", "Faults", "start_arm_server"]
