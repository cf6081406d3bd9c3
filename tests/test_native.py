"""Device-code (RFC 8628) and loopback (RFC 8252) logins against the development provider.

Device logins run in-process with an injected sleep that moves the provider's clock, so no test
waits. Loopback logins use a real socket on 127.0.0.1: the "browser" drives the provider's
login page in-process and then calls the loopback redirect over the network.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from _doubles import Clock
from oidc_asgi.client import OAuthClient
from oidc_asgi.errors import ConfigurationError, OAuthError, OIDCError
from oidc_asgi.native import DeviceLoginPrompt, device_login, loopback_login
from oidc_asgi.provider import Provider
from oidc_asgi.testing import DevProvider, DevProviderConfig
from oidc_asgi.tokens import TokenValidator


class Flaky(httpx.AsyncBaseTransport):
    """Fault injection: the first ``failures`` token polls answer 503."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.failures = 0
        self.polls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            self.polls += 1
            if self.failures:
                self.failures -= 1
                return httpx.Response(503)
        return await self.inner.handle_async_request(request)


@dataclass
class Device:
    provider: DevProvider
    http: httpx.AsyncClient
    transport: Flaky
    clock: Clock
    client: OAuthClient
    prompts: list[DeviceLoginPrompt] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    actions: dict[int, Callable[[], Awaitable[None]]] = field(default_factory=dict)
    frozen: set[int] = field(default_factory=set)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if len(self.sleeps) not in self.frozen:  # a frozen sleep returns too early
            self.clock.now += seconds
        action = self.actions.pop(len(self.sleeps), None)
        if action is not None:
            await action()

    def show(self, prompt: DeviceLoginPrompt) -> None:
        self.prompts.append(prompt)

    async def decide(self, action: str) -> None:
        data = {
            "user_code": self.prompts[0].user_code,
            "username": "alice",
            "password": "",
            "action": action,
        }
        response = await self.http.post("/device", data=data)
        assert response.status_code == 200, response.text

    async def approve(self) -> None:
        await self.decide("approve")

    async def deny(self) -> None:
        await self.decide("deny")

    async def login(self, **kwargs: Any) -> Any:
        return await device_login(
            self.client,
            scope="openid offline_access",
            on_code=self.show,
            sleep=self.sleep,
            **kwargs,
        )


@pytest.fixture
async def device() -> AsyncIterator[Device]:
    clock = Clock()
    config = dataclasses.replace(DevProviderConfig.default(), device_code_lifetime=60)
    provider = DevProvider(config, now=clock)
    transport = Flaky(httpx.ASGITransport(app=provider))
    async with httpx.AsyncClient(transport=transport, base_url=provider.issuer) as http:
        client = OAuthClient(
            client_id="cli",
            auth_method="none",
            token_endpoint=provider.endpoint("token"),
            device_authorization_endpoint=provider.endpoint("device_authorization"),
            issuer=provider.issuer,
            http_client=http,
            now=clock,
        )
        yield Device(provider, http, transport, clock, client)


async def test_rfc8628_pending_then_approved(device: Device) -> None:
    device.actions[2] = device.approve
    tokens = await device.login()
    assert tokens.refresh_token is not None
    assert device.provider.unverified_claims(tokens.id_token or "")["sub"] == "alice"
    assert device.sleeps == [5, 5]
    assert device.transport.polls == 2  # pending, then tokens
    prompt = device.prompts[0]
    assert prompt.verification_uri == device.provider.endpoint("device")
    assert prompt.verification_uri_complete is not None
    assert prompt.user_code in prompt.verification_uri_complete
    assert prompt.verification_host == "127.0.0.1"
    assert prompt.user_code in prompt.message
    assert "device_code" not in repr(prompt)


async def test_rfc8628_3_5_slow_down_adds_five_seconds(device: Device) -> None:
    device.frozen.add(2)  # the second wait ends early: the provider answers slow_down
    device.actions[4] = device.approve
    tokens = await device.login()
    assert tokens.access_token
    assert device.sleeps == [5, 5, 10, 10]


@pytest.mark.parametrize(
    ("scenario", "error"),
    [
        pytest.param("denied", "access_denied", id="access-denied"),
        pytest.param("server-expired", "expired_token", id="expired-token-from-server"),
        pytest.param("deadline", "expired_token", id="expires-in-deadline"),
    ],
)
async def test_rfc8628_3_5_polling_stops(device: Device, scenario: str, error: str) -> None:
    # Without ``now`` the client's clock decides the deadline (the "deadline" case fails on
    # the wall clock, which is far past the provider's T0).
    now: Callable[[], float] | None = None
    if scenario == "denied":
        device.actions[1] = device.deny
    elif scenario == "server-expired":
        now = lambda: device.clock() - 600  # noqa: E731 - a client clock running behind
    with pytest.raises(OAuthError) as caught:
        await device_login(
            device.client, scope="openid", on_code=device.show, sleep=device.sleep, now=now
        )
    assert caught.value.error == error
    if scenario == "deadline":
        assert caught.value.status_code is None  # decided locally, no poll after expiry
        assert device.clock.now <= device.prompts[0].expires_at
        assert device.transport.polls == len(device.sleeps) == 11
    else:
        assert caught.value.status_code == 400


async def test_transport_failures_back_off_exponentially(device: Device) -> None:
    device.transport.failures = 2
    device.actions[3] = device.approve
    tokens = await device.login()
    assert tokens.access_token
    assert device.sleeps == [5, 10, 20]  # 503, 503, then tokens


async def test_device_login_is_cancellable(device: Device) -> None:
    forever, sleeping = asyncio.Event(), asyncio.Event()

    async def blocking_sleep(seconds: float) -> None:
        sleeping.set()
        await forever.wait()

    task = asyncio.ensure_future(
        device_login(device.client, on_code=device.show, sleep=blocking_sleep)
    )
    await sleeping.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert device.transport.polls == 0


async def test_async_on_code_is_awaited(device: Device) -> None:
    shown: list[str] = []

    async def show(prompt: DeviceLoginPrompt) -> None:
        shown.append(prompt.user_code)
        device.prompts.append(prompt)

    device.actions[1] = device.approve
    tokens = await device_login(device.client, scope="openid", on_code=show, sleep=device.sleep)
    assert tokens.access_token
    assert shown == [device.prompts[0].user_code]


# --------------------------------------------------------------------------- loopback


@dataclass
class Browser:
    """Drives the provider's login page in-process, then the loopback redirect over a socket."""

    provider: DevProvider
    action: str = "login"
    side_trips: bool = True
    pages: list[httpx.Response] = field(default_factory=list)
    redirect_uri: str = ""

    async def __call__(self, url: str) -> bool:
        self.redirect_uri = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        async with self.provider.asgi_client() as op:
            page = await op.get(url)
            tx = re.search(r'name="tx" value="([^"]+)"', page.text)
            assert tx is not None, page.text
            data = {"tx": tx.group(1), "username": "alice", "password": "", "action": self.action}
            answer = await op.post("/login", data=data)
        assert answer.status_code == 303
        location = answer.headers["location"]
        assert location.startswith(self.redirect_uri + "?")
        async with httpx.AsyncClient(trust_env=False) as real:
            if self.side_trips:
                base = self.redirect_uri.rsplit("/", 1)[0]
                self.pages.append(await real.get(base + "/favicon.ico"))
                forged = re.sub(r"state=[^&]+", "state=forged", location)
                self.pages.append(await real.get(forged))
            self.pages.append(await real.get(location))
        return True


@pytest.fixture
async def op() -> AsyncIterator[tuple[DevProvider, httpx.AsyncClient]]:
    provider = DevProvider()
    async with provider.asgi_client() as http:
        yield provider, http


def native_client(provider: DevProvider, http: httpx.AsyncClient) -> OAuthClient:
    return OAuthClient(
        client_id="native",
        auth_method="none",
        token_endpoint=provider.endpoint("token"),
        issuer=provider.issuer,
        http_client=http,
    )


async def _refused(redirect_uri: str) -> bool:
    parts = urlsplit(redirect_uri)
    try:
        _, writer = await asyncio.open_connection(parts.hostname, parts.port)
    except OSError:
        return True
    writer.close()
    return False


async def test_rfc8252_loopback_login_end_to_end(
    op: tuple[DevProvider, httpx.AsyncClient],
) -> None:
    provider, http = op
    browser = Browser(provider)
    validator = TokenValidator(
        issuer=provider.issuer, keys=Provider(provider.issuer, http_client=http)
    )
    tokens = await loopback_login(
        native_client(provider, http),
        authorization_endpoint=provider.endpoint("authorize"),
        scope="openid profile",
        open_browser=browser,
        validator=validator,
        require_iss=True,
        timeout=30,
    )
    assert tokens.id_token is not None
    assert provider.unverified_claims(tokens.id_token)["sub"] == "alice"
    favicon, forged, final = browser.pages
    assert favicon.status_code == 404
    assert forged.status_code == 400  # wrong state: answered and ignored
    assert final.status_code == 200
    assert "Signed in" in final.text
    assert "code=" not in final.text
    assert tokens.access_token not in final.text
    assert final.headers["cache-control"] == "no-store"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/callback", browser.redirect_uri)
    assert await _refused(browser.redirect_uri)  # one callback, then the listener is closed


async def test_user_cancel_is_an_oauth_error(op: tuple[DevProvider, httpx.AsyncClient]) -> None:
    provider, http = op
    browser = Browser(provider, action="cancel", side_trips=False)
    with pytest.raises(OAuthError) as caught:
        await loopback_login(
            native_client(provider, http),
            authorization_endpoint=provider.endpoint("authorize"),
            open_browser=browser,
            timeout=30,
        )
    assert caught.value.error == "access_denied"
    assert "Sign-in failed" in browser.pages[0].text


async def test_rfc9207_iss_mismatch_is_rejected(op: tuple[DevProvider, httpx.AsyncClient]) -> None:
    provider, http = op
    with pytest.raises(OIDCError) as caught:
        await loopback_login(
            native_client(provider, http),
            authorization_endpoint=provider.endpoint("authorize"),
            open_browser=Browser(provider, side_trips=False),
            issuer="https://attacker.example",
            timeout=30,
        )
    assert caught.value.code == "authorization_response_iss_mismatch"


async def test_browser_failure_shows_the_url(op: tuple[DevProvider, httpx.AsyncClient]) -> None:
    provider, http = op
    browser = Browser(provider, side_trips=False)
    shown: list[str] = []

    def broken_browser(url: str) -> bool:
        return False  # what webbrowser.open returns without a usable browser

    async def show_url(url: str) -> None:
        shown.append(url)
        await browser(url)  # the user copies the URL into a browser

    tokens = await loopback_login(
        native_client(provider, http),
        authorization_endpoint=provider.endpoint("authorize"),
        open_browser=broken_browser,
        show_url=show_url,
        timeout=30,
    )
    assert tokens.access_token
    assert shown[0].startswith(provider.endpoint("authorize") + "?")
    assert "code_challenge_method=S256" in shown[0]


async def test_timeout_closes_the_listener(op: tuple[DevProvider, httpx.AsyncClient]) -> None:
    provider, http = op
    seen: list[str] = []

    async def idle_browser(url: str) -> bool:
        seen.append(parse_qs(urlsplit(url).query)["redirect_uri"][0])
        return True

    with pytest.raises(OIDCError) as caught:
        await loopback_login(
            native_client(provider, http),
            authorization_endpoint=provider.endpoint("authorize"),
            open_browser=idle_browser,
            timeout=0.01,
        )
    assert caught.value.code == "login_timeout"
    assert await _refused(seen[0])


@pytest.mark.parametrize(
    ("settings", "code"),
    [
        pytest.param({"redirect_host": "0.0.0.0"}, "invalid_redirect_host", id="non-loopback"),
        pytest.param({"path": "callback"}, "invalid_redirect_path", id="relative-path"),
        pytest.param({"timeout": 0}, "invalid_timeout", id="zero-timeout"),
        pytest.param({"require_iss": True}, "missing_issuer", id="require-iss-without-issuer"),
    ],
)
async def test_loopback_configuration_errors(settings: dict[str, Any], code: str) -> None:
    client = OAuthClient(
        client_id="native", auth_method="none", token_endpoint="http://127.0.0.1:9/token"
    )
    with pytest.raises(ConfigurationError) as caught:
        await loopback_login(
            client, authorization_endpoint="http://127.0.0.1:9/authorize", **settings
        )
    assert caught.value.code == code
