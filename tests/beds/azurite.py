"""Test bed: azurite (fixtures registered in tests/conftest.py)."""
