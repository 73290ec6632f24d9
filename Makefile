# The two commands of the README. Both set everything up first (idempotent, pinned).
#   make demo   the main job: the tutorial end to end on this machine (root, eBPF)
#   make test   the whole test suite
.PHONY: setup demo test
setup:
	scripts/install

demo: setup
	.venv/bin/clearance demo

test: setup
	scripts/gen-proto --check
	.venv/bin/pytest -q
