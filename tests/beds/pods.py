"""Test bed: pods (fixtures registered in tests/conftest.py)."""
