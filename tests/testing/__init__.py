"""Tests of ``oidc_asgi.testing``, mirroring its modules."""
