"""The node agent's user-space pipeline (Hubble-style stages over a stream of TLS events).

Public interface: ``Pipeline(endpoints, attributor, metrics=None)`` with ``feed(event)`` and
``drain()``; ``EndpointMatcher.from_flags(values)``; ``Attributor(pods, node)``.
"""
from clearance.nodeagent.pipeline.attribution import Attributor
from clearance.nodeagent.pipeline.core import Pipeline
from clearance.nodeagent.pipeline.endpoints import EndpointMatcher

__all__ = ["Attributor", "EndpointMatcher", "Pipeline"]
