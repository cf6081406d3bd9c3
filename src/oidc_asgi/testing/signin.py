"""``sign_in``: drive any relying party's browser login against a ``DevProvider``, in-process.

It behaves like a minimal browser: follows redirects, sending each request to the app or to the
provider depending on the URL, fills in the provider's login form, and submits the form_post page.
It knows nothing about the app except where its login starts.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

if TYPE_CHECKING:
    from oidc_asgi.testing.provider import DevProvider

__all__ = ["sign_in"]

# What a browser sends on a top-level navigation (Fetch Metadata, Accept), so an app that
# answers API clients with 401 and browsers with a redirect treats sign_in as a browser.
_NAVIGATION = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "document",
}


class _Form:
    def __init__(self, action: str, method: str, form_id: str) -> None:
        self.action = action
        self.method = method
        self.id = form_id
        self.fields: dict[str, str] = {}


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[_Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            method = values.get("method", "get").lower()
            self.forms.append(_Form(values.get("action", ""), method, values.get("id", "")))
        elif tag == "input" and self.forms and values.get("name"):
            self.forms[-1].fields[values["name"]] = values.get("value", "")


def _forms(response: httpx.Response) -> list[_Form]:
    if "text/html" not in response.headers.get("content-type", ""):
        return []
    parser = _FormParser()
    parser.feed(response.text)
    return parser.forms


def _is_provider(url: httpx.URL, provider: DevProvider) -> bool:
    issuer = urlsplit(provider.issuer)
    same_origin = (url.scheme, url.netloc.decode("ascii")) == (issuer.scheme, issuer.netloc)
    return same_origin and url.path.startswith(issuer.path.rstrip("/") + "/")


async def sign_in(
    app_client: httpx.AsyncClient,
    provider: DevProvider,
    *,
    start: str = "/login",
    username: str = "alice",
    password: str = "",
    provider_client: httpx.AsyncClient | None = None,
    max_steps: int = 20,
) -> httpx.Response:
    """Sign ``app_client`` into its app through ``provider``; returns the app's last response.

    ``app_client`` reaches the app (typically through ``httpx.ASGITransport``) and keeps the
    app's cookies. Requests for the provider's URLs go to ``provider_client`` (by default a fresh
    in-process client; pass your own to keep the provider session across sign-ins).

    Example::

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://127.0.0.1:8000") as client:
            response = await sign_in(client, provider, start="/login", username="alice")
            assert response.status_code == 200
    """
    own_client = provider_client is None
    op_client = provider_client or provider.asgi_client()
    try:
        response = await app_client.get(start, headers=_NAVIGATION)
        logged_in = False
        for _ in range(max_steps):
            step = await _step(response, app_client, op_client, provider, username, password)
            if step is None:
                return response
            response, submitted_login = step
            if submitted_login:
                if logged_in:  # the login form came back: the credentials were refused
                    return response
                logged_in = True
        raise RuntimeError("sign_in: too many steps (a redirect loop?)")
    finally:
        if own_client:
            await op_client.aclose()


async def _step(
    response: httpx.Response,
    app_client: httpx.AsyncClient,
    op_client: httpx.AsyncClient,
    provider: DevProvider,
    username: str,
    password: str,
) -> tuple[httpx.Response, bool] | None:
    from_provider = _is_provider(response.url, provider)
    if response.is_redirect:
        target = response.url.join(response.headers["location"])
        client = op_client if _is_provider(target, provider) else app_client
        return await client.get(target, headers=_NAVIGATION), False
    if not from_provider:
        return None
    for form in _forms(response):
        action = response.url.join(form.action) if form.action else response.url
        client = op_client if _is_provider(action, provider) else app_client
        if form.id == "form_post":
            return await client.post(action, data=form.fields, headers=_NAVIGATION), False
        if "tx" in form.fields:
            data = {**form.fields, "username": username, "password": password, "action": "login"}
            return await client.post(action, data=data, headers=_NAVIGATION), True
    return None
