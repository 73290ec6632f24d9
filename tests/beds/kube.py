"""Test bed: kube (fixtures registered in tests/conftest.py)."""
