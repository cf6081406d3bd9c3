"""The demos of oidc-asgi: one small app per OAuth 2.0 / OpenID Connect scenario.

``python -m demo_apps`` starts the development provider and the web demos; each demo also runs
alone as ``python -m demo_apps.<name>`` (``webapp``, ``api``, ``gateway``, ``spa``, ``native``,
``daemon``, ``device``). The demos import only the public API of ``oidc_asgi``, read the
settings described in ``demo_apps._settings`` and run against any OpenID Provider.
"""
