"""The ClientIntents -> Azure roles reconciler and its kopf handlers (``handlers`` registers them)."""
