"""Workload identities for labelled pods: kopf handlers, the admission webhook, pod-spec injection."""
