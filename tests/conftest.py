"""Shared fixtures. Service-backed tests use the ``service`` marker (see tests/_services.py)."""
