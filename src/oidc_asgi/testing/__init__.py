"""Testing tools: a development OpenID Provider, token minting helpers and a pytest plugin.

Nothing in ``oidc_asgi`` imports this package; it is for demos, tests and local development.
"""
