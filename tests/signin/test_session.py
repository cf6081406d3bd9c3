"""Sessions through the middleware: app data, fixation, chunking, bad cookies, rotation, stores."""

from __future__ import annotations

import pytest

from oidc_asgi.sessions import MemoryStore, ValueSigner

from ._support import OLD_SECRET, SECRET, Harness, location, set_cookies


async def test_anonymous_app_data_survives_sign_in_and_the_id_changes(harness: Harness) -> None:
    app = harness.wrap()
    async with harness.client(app) as client:
        await client.get("/put?cart=sku-1")
        before = client.cookies["oidc_session"]
        await harness.sign_in(client)
        body = (await client.get("/me")).json()
        assert body["sub"] == "alice"
        assert body["session"] == {"cart": "sku-1"}
        assert client.cookies["oidc_session"] != before


async def test_another_user_signing_in_gets_a_clean_session(harness: Harness) -> None:
    app = harness.wrap()
    async with harness.client(app) as client:
        await harness.sign_in(client)
        await client.get("/put?secret=alice-only")
        await harness.sign_in(client, "/login?prompt=login", username="bob")
        body = (await client.get("/me")).json()
        assert body["sub"] == "bob"
        assert body["session"] == {}


async def test_fixation_with_a_server_store(harness: Harness) -> None:
    # An attacker plants its anonymous session id; after the victim signs in, that id is dead.
    store = MemoryStore(now=harness.clock)
    app = harness.wrap(session_store=store)
    async with harness.client(app) as victim, harness.client(app) as attacker:
        await attacker.get("/put?planted=1")
        planted = attacker.cookies["oidc_session"]
        victim.cookies.set("oidc_session", planted, domain="127.0.0.1")
        await harness.sign_in(victim)
        assert victim.cookies["oidc_session"] != planted
        assert (await victim.get("/me")).json()["sub"] == "alice"
        assert (await attacker.get("/me")).json()["sub"] is None


async def test_server_store_keeps_the_cookie_small(harness: Harness) -> None:
    app = harness.wrap(session_store=MemoryStore(now=harness.clock))
    async with harness.client(app) as client:
        await harness.sign_in(client)
        await client.get("/grow?size=20000")
        assert [name for name in client.cookies if name.startswith("oidc_session")] == [
            "oidc_session"
        ]
        assert len(client.cookies["oidc_session"]) < 100
        assert (await client.get("/me")).json()["sub"] == "alice"


async def test_session_grows_past_one_cookie_and_shrinks_again(harness: Harness) -> None:
    app = harness.wrap()
    async with harness.client(app) as client:
        await harness.sign_in(client)
        grown = await client.get("/grow?size=6000")
        names = sorted(name for name in set_cookies(grown) if name.startswith("oidc_session"))
        assert names == ["oidc_session", "oidc_session.1", "oidc_session.2"]
        assert (await client.get("/me")).json()["sub"] == "alice"
        shrunk = await client.get("/grow?size=1")
        cookies = set_cookies(shrunk)
        assert "Max-Age=0" in cookies["oidc_session.1"]
        assert "Max-Age=0" in cookies["oidc_session.2"]
        assert [name for name in client.cookies if name.startswith("oidc_session")] == [
            "oidc_session"
        ]
        assert (await client.get("/me")).json()["sub"] == "alice"


async def test_session_too_large_is_not_half_written(harness: Harness) -> None:
    app = harness.wrap()
    async with harness.client(app) as client:
        await harness.sign_in(client)
        before = dict(client.cookies)
        response = await client.get("/grow?size=40000")
        assert response.status_code == 200
        assert not [n for n in set_cookies(response) if n.startswith("oidc_session")]
        assert dict(client.cookies) == before
        assert (await client.get("/me")).json()["sub"] == "alice"


@pytest.mark.parametrize(
    "cookie",
    [
        pytest.param("garbage", id="garbage"),
        pytest.param("1~v1.AAAAAAAA.AAAA", id="foreign"),
        pytest.param("2~v1.", id="truncated-chunks"),
        pytest.param("1~" + "A" * 3000, id="oversized"),
        pytest.param("1~v1.%00%ff", id="control-bytes"),
    ],
)
async def test_bad_session_cookies_mean_anonymous_never_500(harness: Harness, cookie: str) -> None:
    app = harness.wrap()
    async with harness.client(app) as client:
        client.cookies.set("oidc_session", cookie)
        response = await client.get("/me")
        assert response.status_code == 200
        assert response.json()["sub"] is None


async def test_tampered_session_cookie(harness: Harness) -> None:
    app = harness.wrap()
    async with harness.client(app) as client:
        await harness.sign_in(client)
        value = client.cookies["oidc_session"]
        tampered = value[:-2] + ("AA" if value[-2:] != "AA" else "BB")
        client.cookies.set("oidc_session", tampered, domain="127.0.0.1")
        assert (await client.get("/me")).json()["sub"] is None


async def test_secret_rotation_keeps_users_signed_in(harness: Harness) -> None:
    old = harness.wrap(secrets=[OLD_SECRET])
    async with harness.client(old) as client:
        await harness.sign_in(client)
    rotated = harness.wrap(secrets=[SECRET, OLD_SECRET])
    async with harness.client(rotated) as client2:
        client2.cookies = client.cookies
        response = await client2.get("/me")
        assert response.json()["sub"] == "alice"
        assert "oidc_session" in set_cookies(response)  # re-issued under the new secret
    retired = harness.wrap(secrets=[SECRET])
    async with harness.client(retired) as client3:
        client3.cookies = client2.cookies
        assert (await client3.get("/me")).json()["sub"] == "alice"


async def test_login_transactions_are_bounded_and_expire(harness: Harness) -> None:
    app = harness.wrap(max_transactions=2)
    async with harness.client(app) as client:
        for _ in range(4):
            await client.get("/login")
        live = [name for name in client.cookies if name.startswith("oidc_tx.")]
        assert len(live) == 2


async def test_session_store_outage_is_503(harness: Harness) -> None:
    import socket

    from oidc_asgi.sessions.redis import RedisStore

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = RedisStore(url=f"redis://127.0.0.1:{port}/0")
    app = harness.wrap(session_store=store)
    async with harness.client(app) as client:
        signed = ValueSigner(secrets=[SECRET], purpose="session-id").sign("some-id")
        client.cookies.set("oidc_session", "1~" + signed)
        response = await client.get("/me", headers={"accept": "application/json"})
        assert response.status_code == 503
        assert response.json()["error"] == "session_store_unavailable"
    await store.aclose()


async def test_location_headers_are_absolute_to_base_url(harness: Harness) -> None:
    app = harness.wrap(base_url="http://127.0.0.1:8000/")
    async with harness.client(app) as client:
        start = await client.get("/login")
        done = await client.get("/callback", params=await harness.provider_login(location(start)))
        assert location(done) == "http://127.0.0.1:8000/"
