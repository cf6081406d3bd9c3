"""Property: whatever a browser sends to the callback, the answer is a redirect or a 4xx."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oidc_asgi.signin._transactions import state_hash
from oidc_asgi.testing import DevProvider, KeyRing

from ._support import Clock, Harness, location, provider_config

_KEYS = KeyRing()
TEXT = st.text(st.characters(codec="utf-8"), max_size=80)
COOKIE_TEXT = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=';,"\\'),
    max_size=200,
)
PARAMS = st.dictionaries(
    st.sampled_from(["state", "code", "iss", "error", "error_description", "session_state", "x"]),
    TEXT,
    max_size=6,
)


async def _run(params: dict[str, str], cookies: dict[str, str], keep: set[str]) -> list[int]:
    clock = Clock()
    provider = DevProvider(provider_config(), now=clock, keys=_KEYS)
    statuses = []
    async with provider.asgi_client() as op_http:
        harness = Harness(provider=provider, op_http=op_http, clock=clock)
        app = harness.wrap()
        async with harness.client(app) as client:
            # A real login in flight, so some inputs reach the token endpoint.
            start = await harness.authorize(client)
            real = await harness.provider_login(location(start))
            mixed = {**{k: v for k, v in real.items() if k in keep}, **params}
            for name, value in cookies.items():
                client.cookies.set(name, value, domain="127.0.0.1")
            for method in ("GET", "POST"):
                if method == "GET":
                    response = await client.get("/callback", params=mixed)
                else:
                    response = await client.post("/callback", data=mixed)
                statuses.append(response.status_code)
    return statuses


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    params=PARAMS,
    session=st.none() | COOKIE_TEXT,
    tx=st.none() | COOKIE_TEXT,
    keep=st.sets(st.sampled_from(["state", "code", "iss"])),
)
def test_callback_never_answers_5xx(
    params: dict[str, str], session: str | None, tx: str | None, keep: set[str]
) -> None:
    cookies: dict[str, Any] = {}
    if session is not None:
        cookies["oidc_session"] = session
    if tx is not None and "state" in params:
        cookies[f"oidc_tx.{state_hash(params['state'])}"] = tx
    statuses = asyncio.run(_run(params, cookies, keep))
    for status in statuses:
        assert status in (303, 400, 413), status
