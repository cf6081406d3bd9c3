"""pytest plugin for oidc-asgi (registered through the ``pytest11`` entry point).

Importing this module is cheap and harmless: fixtures import the development provider lazily.
"""
