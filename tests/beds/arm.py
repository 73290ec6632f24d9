"""Test bed: arm (fixtures registered in tests/conftest.py)."""
