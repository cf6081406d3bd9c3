"""A scripted user agent for node-oidc-provider's development pages, driven by httpx.

It follows redirects by hand, fills devInteractions' login and consent forms, the device-flow
code and confirmation forms and the logout confirmation, and stops at the relying party's
redirect URI (query, or the auto-submitting ``form_post`` page), returning the parameters the
browser would have delivered there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx

_MAX_STEPS = 16


@dataclass
class _Form:
    id: str | None
    action: str
    fields: dict[str, str] = field(default_factory=dict)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[_Form] = []
        self.title = ""
        self._in_title = False
        self._open: _Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._open = _Form(id=attr.get("id"), action=attr.get("action", ""))
            self.forms.append(self._open)
        elif tag == "input" and self._open is not None and "name" in attr:
            self._open.fields[attr["name"]] = attr.get("value", "")
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


@dataclass(frozen=True)
class Outcome:
    """Where the walk ended: the callback's parameters, or the last page without a known form."""

    params: dict[str, str] | None
    url: str
    title: str
    method: str = "GET"


class Browser:
    """Walks the provider's pages for ``user`` (any login works with devInteractions).

    Example::

        outcome = await Browser(http, user="alice").run(authorize_url, until=redirect_uri)
        code = outcome.params["code"]
    """

    def __init__(self, http: httpx.AsyncClient, *, user: str, user_code: str = "") -> None:
        self.http = http
        self.user = user
        self.user_code = user_code
        self.pages: list[str] = []  # titles seen, for failure messages

    async def run(self, url: str, *, until: str | None = None) -> Outcome:
        method, data = "GET", None
        for _ in range(_MAX_STEPS):
            if until is not None and url.startswith(until) and method == "GET":
                return Outcome(params=dict(parse_qsl(urlsplit(url).query)), url=url, title="")
            response = await self.http.request(method, url, data=data, follow_redirects=False)
            if response.is_redirect:
                url, method, data = urljoin(url, response.headers["location"]), "GET", None
                continue
            parser = _Forms()
            parser.feed(response.text)
            self.pages.append(f"{response.status_code} {parser.title.strip()}")
            step = self._next(parser, url, until)
            if isinstance(step, Outcome):
                return step
            if step is None:
                return Outcome(params=None, url=url, title=parser.title.strip())
            url, method, data = step[0], "POST", step[1]
        raise AssertionError(f"no end after {_MAX_STEPS} steps: {self.pages}")

    def _next(
        self, parser: _Forms, url: str, until: str | None
    ) -> Outcome | tuple[str, dict[str, str]] | None:
        for form in parser.forms:
            action = urljoin(url, form.action)
            if until is not None and action.startswith(until):
                # form_post (OAuth 2.0 Form Post Response Mode): the page posts to the client.
                return Outcome(params=dict(form.fields), url=action, title="", method="POST")
            fields = dict(form.fields)
            prompt = fields.get("prompt")
            if prompt == "login":
                return action, {**fields, "login": self.user, "password": "any"}
            if prompt == "consent":
                return action, fields
            if form.id == "op.deviceInputForm":
                return action, {**fields, "user_code": self.user_code}
            if form.id == "op.deviceConfirmForm":
                return action, fields  # carries confirm=yes
            if form.id == "op.logoutForm":
                # The "Yes, sign me out" button sits outside the form (form="op.logoutForm").
                return action, {**fields, "logout": "yes"}
        return None
