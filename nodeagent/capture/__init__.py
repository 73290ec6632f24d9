"""TLS plaintext capture with eBPF uprobes (the only place bcc and BPF C appear)."""
from .loader import Capture, CaptureError

__all__ = ["Capture", "CaptureError"]
