"""``clearance demo``: the tutorial end to end on one machine."""
