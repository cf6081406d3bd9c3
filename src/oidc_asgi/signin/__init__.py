"""Web sign-in: the pieces of the login, callback and logout steps.

``normalize_return_to`` is the single check every return address passes, when a login starts
and again at its callback, so an open redirect cannot slip in at either end.

Example::

    from oidc_asgi.signin import normalize_return_to

    target = normalize_return_to(request.query_params.get("returnTo"), default="/")
"""

from oidc_asgi.signin._return_to import normalize_return_to

__all__ = ["normalize_return_to"]
