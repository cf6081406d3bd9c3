"""Tests of ``oidc_asgi.bearer``, mirroring its modules."""
