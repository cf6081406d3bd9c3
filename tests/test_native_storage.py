"""CLI token storage (``FileTokenStorage``) and sessions (``CliSession``, ``cached_login``).

Sessions run against the development provider in-process with an injected clock; the login is
a real ``device_login`` whose injected sleep approves the code on the provider's device page.
Files live in ``tmp_path``; their modes are asserted, not assumed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import stat
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from cryptography.fernet import Fernet

from oidc_asgi.client import OAuthClient, TokenResponse
from oidc_asgi.errors import ConfigurationError, OAuthError, ProviderUnavailable
from oidc_asgi.native import (
    CliSession,
    DeviceLoginPrompt,
    FileTokenStorage,
    _insecure,
    cached_login,
    default_token_path,
    device_login,
)
from oidc_asgi.testing import DevProvider, DevProviderConfig

T0 = 1_700_000_000.0
KEY = "k"
API = "http://127.0.0.1:8001/api"


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


class Faults(httpx.AsyncBaseTransport):
    """Counts token requests; answers the next ones with canned responses when told to."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.token_requests = 0
        self.canned: list[httpx.Response] = []
        self.forms: list[dict[str, list[str]]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            self.token_requests += 1
            self.forms.append(parse_qs((await request.aread()).decode("ascii")))
            if self.canned:
                return self.canned.pop(0)
        return await self.inner.handle_async_request(request)


@dataclass
class Cli:
    provider: DevProvider
    http: httpx.AsyncClient
    faults: Faults
    clock: Clock
    client: OAuthClient
    storage: FileTokenStorage
    logins: int = 0
    prompts: list[DeviceLoginPrompt] = field(default_factory=list)
    resource: str | None = None  # the API the device login asks for (RFC 8707)

    async def login(self) -> TokenResponse:
        self.logins += 1
        approved = False

        async def approve_while_waiting(seconds: float) -> None:
            nonlocal approved
            self.clock.now += seconds
            if not approved:
                approved = True
                answer = await self.http.post("/device", data={
                    "user_code": self.prompts[-1].user_code, "username": "alice",
                    "password": "", "action": "approve",
                })  # fmt: skip
                assert answer.status_code == 200

        if self.resource is not None:
            return await device_login(
                self.client,
                scope="openid offline_access",
                on_code=self.prompts.append,
                sleep=approve_while_waiting,
                resource=self.resource,
            )
        return await device_login(
            self.client,
            scope="openid offline_access",
            on_code=self.prompts.append,
            sleep=approve_while_waiting,
        )

    def session(self, **settings: Any) -> CliSession:
        return CliSession(self.client, storage=self.storage, login=self.login, **settings)

    def stored(self, session: CliSession) -> TokenResponse:
        tokens = self.storage.load(session.key)
        assert tokens is not None
        return tokens


@pytest.fixture
async def cli(tmp_path: Path) -> AsyncIterator[Cli]:
    clock = Clock()
    provider = DevProvider(DevProviderConfig.default(), now=clock)
    faults = Faults(httpx.ASGITransport(app=provider))
    async with httpx.AsyncClient(transport=faults, base_url=provider.issuer) as http:
        client = OAuthClient(
            client_id="cli",
            auth_method="none",
            token_endpoint=provider.endpoint("token"),
            device_authorization_endpoint=provider.endpoint("device_authorization"),
            issuer=provider.issuer,
            http_client=http,
            now=clock,
        )
        storage = FileTokenStorage(tmp_path / "config" / "tool" / "tokens.json")
        yield Cli(provider, http, faults, clock, client, storage)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def sample(access_token: str = "at-1", **changes: Any) -> TokenResponse:
    tokens = TokenResponse(
        access_token=access_token,
        token_type="Bearer",
        expires_at=T0 + 3600,
        refresh_token="rt-1",
        scope="openid",
    )
    return dataclasses.replace(tokens, **changes)


@pytest.fixture
def umask_zero() -> Iterator[None]:
    # With no umask, a file's mode is exactly what the code asked for.
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


# --------------------------------------------------------------------------- sessions


async def test_first_run_logs_in_and_saves_a_private_file(
    cli: Cli, umask_zero: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    session = cli.session()
    tokens = await session.tokens()
    assert cli.logins == 1
    assert tokens.refresh_token is not None
    path = cli.storage.path
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == ["tokens.json"]  # no temp file left
    assert cli.stored(session) == tokens
    assert tokens.access_token not in caplog.text
    assert tokens.refresh_token not in caplog.text


async def test_next_run_reuses_stored_tokens_without_a_request(cli: Cli) -> None:
    first = await cli.session().tokens()
    requests = cli.faults.token_requests
    cli.clock.now += 600
    again = await cli.session().access_token()
    assert again == first.access_token
    assert cli.faults.token_requests == requests
    assert cli.logins == 1


@pytest.mark.parametrize(
    ("left", "refreshes"),
    [
        pytest.param(60, False, id="exactly-margin-left-reused"),
        pytest.param(59, True, id="inside-margin-refreshed"),
        pytest.param(-10, True, id="expired-refreshed"),
    ],
)
async def test_margin_decides_refresh(cli: Cli, left: float, refreshes: bool) -> None:
    first = await cli.session(margin=60).tokens()
    assert first.expires_at is not None
    cli.clock.now = first.expires_at - left
    second = await cli.session(margin=60).tokens()
    assert (second.access_token != first.access_token) is refreshes
    assert cli.logins == 1


async def test_rfc6749_6_refresh_stores_the_rotated_refresh_token(cli: Cli) -> None:
    session = cli.session()
    first = await session.tokens()
    assert first.expires_at is not None
    assert first.refresh_token is not None
    cli.clock.now = first.expires_at
    second = await session.tokens()
    assert cli.logins == 1
    assert second.refresh_token not in (None, first.refresh_token)
    assert cli.stored(session) == second
    assert second.expires_at == cli.clock.now + 3600  # judged on the client clock
    # The stored, rotated refresh token is the one that works next time.
    assert second.expires_at is not None
    cli.clock.now = second.expires_at
    third = await session.tokens()
    assert cli.logins == 1
    assert third.refresh_token not in (first.refresh_token, second.refresh_token)


async def test_concurrent_callers_share_one_refresh(cli: Cli) -> None:
    session = cli.session()
    first = await session.tokens()
    assert first.expires_at is not None
    cli.clock.now = first.expires_at
    before = cli.faults.token_requests
    results = await asyncio.gather(*(session.access_token() for _ in range(10)))
    assert cli.faults.token_requests == before + 1
    assert len(set(results)) == 1
    assert results[0] != first.access_token
    assert cli.logins == 1


@pytest.mark.parametrize(
    "how",
    [
        pytest.param("tampered", id="unknown-refresh-token"),
        pytest.param("refresh-expired", id="refresh-token-expired"),
        pytest.param("reused", id="rotated-away-refresh-token-replayed"),
    ],
)
async def test_invalid_grant_forgets_and_logs_in_again(cli: Cli, how: str) -> None:
    session = cli.session()
    first = await session.tokens()
    assert first.expires_at is not None
    assert first.refresh_token is not None
    if how == "tampered":
        cli.storage.save(session.key, dataclasses.replace(first, refresh_token="dev_rt_forged"))
        cli.clock.now = first.expires_at
    elif how == "refresh-expired":
        cli.clock.now += cli.provider.config.refresh_token_lifetime + 1
    else:
        cli.clock.now = first.expires_at
        await session.tokens()  # rotates
        cli.storage.save(session.key, first)  # an old copy of the file comes back
    before = cli.logins
    tokens = await session.tokens()
    assert cli.logins == before + 1
    assert cli.stored(session) == tokens
    assert tokens.refresh_token != first.refresh_token


@pytest.mark.parametrize(
    ("answer", "still_valid", "outcome"),
    [
        pytest.param(httpx.Response(503), True, "stored", id="provider-down-token-still-valid"),
        pytest.param(httpx.Response(503), False, "provider_http_error",
                     id="provider-down-token-expired"),
        pytest.param(httpx.Response(401, json={"error": "invalid_client"}), True,
                     "invalid_client", id="invalid-client-is-not-swallowed"),
        pytest.param(httpx.Response(400, json={"error": "invalid_scope"}), False,
                     "invalid_scope", id="other-oauth-error-propagates"),
    ],
)  # fmt: skip
async def test_refresh_failures_keep_the_stored_entry(
    cli: Cli,
    caplog: pytest.LogCaptureFixture,
    answer: httpx.Response,
    still_valid: bool,
    outcome: str,
) -> None:
    session = cli.session(margin=120)
    first = await session.tokens()
    assert first.expires_at is not None
    assert first.refresh_token is not None
    cli.clock.now = first.expires_at - (60 if still_valid else 0)
    cli.faults.canned.append(answer)
    if outcome == "stored":
        assert await session.tokens() == first
    else:
        with pytest.raises((ProviderUnavailable, OAuthError)) as caught:
            await session.tokens()
        assert caught.value.code == outcome
    assert cli.logins == 1
    assert cli.stored(session) == first
    assert first.refresh_token not in caplog.text


async def test_refresh_without_a_new_refresh_token_keeps_the_old_one(cli: Cli) -> None:
    session = cli.session()
    first = await session.tokens()
    assert first.expires_at is not None
    cli.clock.now = first.expires_at
    cli.faults.canned.append(
        httpx.Response(200, json={"access_token": "at-2", "token_type": "Bearer", "expires_in": 60})
    )
    second = await session.tokens()
    assert second.access_token == "at-2"
    assert second.refresh_token == first.refresh_token
    assert second.id_token == first.id_token
    assert cli.stored(session) == second


@pytest.mark.parametrize(
    ("refresh_token", "refreshed"),
    [
        pytest.param(None, False, id="unknown-life-no-refresh-token-reused"),
        pytest.param("keep", True, id="unknown-life-with-refresh-token-refreshed"),
    ],
)
async def test_unknown_lifetime(cli: Cli, refresh_token: str | None, refreshed: bool) -> None:
    session = cli.session()
    first = await session.tokens()
    unknown = dataclasses.replace(
        first,
        expires_at=None,
        refresh_token=first.refresh_token if refresh_token else None,
    )
    cli.storage.save(session.key, unknown)
    tokens = await session.tokens()
    assert (tokens != unknown) is refreshed
    assert cli.logins == 1


async def test_expired_without_refresh_token_logs_in_again(cli: Cli) -> None:
    session = cli.session()
    cli.storage.save(session.key, sample(refresh_token=None, expires_at=T0 - 1))
    tokens = await session.tokens()
    assert cli.logins == 1
    assert cli.stored(session) == tokens


async def test_profiles_do_not_share_entries_and_forget_deletes(cli: Cli) -> None:
    work = cli.session(profile="work")
    home = cli.session(profile="home")
    assert work.key != home.key
    assert "cli" in work.key
    assert cli.client.token_endpoint in work.key
    a = await work.tokens()
    b = await home.tokens()
    assert a.access_token != b.access_token
    assert cli.logins == 2
    await work.forget()
    assert cli.storage.load(work.key) is None
    assert cli.stored(home) == b
    await home.forget()
    assert not cli.storage.path.exists()


async def test_cached_login_is_one_call(cli: Cli) -> None:
    first = await cached_login(cli.client, storage=cli.storage, login=cli.login)
    second = await cached_login(cli.client, storage=cli.storage, login=cli.login)
    assert first == second
    assert cli.logins == 1


async def test_a_save_failure_still_returns_the_tokens(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def disk_full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    tokens = await cli.session().tokens()
    assert tokens.access_token
    assert "could not save tokens" in caplog.text
    assert not cli.storage.path.exists()
    assert list(cli.storage.path.parent.iterdir()) == []  # the temp file was removed


async def test_insecure_file_is_ignored_then_replaced_by_a_private_one(
    cli: Cli, caplog: pytest.LogCaptureFixture
) -> None:
    session = cli.session()
    await session.tokens()
    cli.storage.path.chmod(0o644)
    tokens = await session.tokens()
    assert cli.logins == 2
    assert "insecure_token_file" in caplog.text
    assert mode(cli.storage.path) == 0o600
    assert cli.stored(session) == tokens


async def test_corrupt_file_is_ignored_then_replaced(
    cli: Cli, caplog: pytest.LogCaptureFixture
) -> None:
    session = cli.session()
    await session.tokens()
    cli.storage.path.write_bytes(b'{"version": 1, "entr')
    tokens = await session.tokens()
    assert cli.logins == 2
    assert "corrupt_token_file" in caplog.text
    assert cli.stored(session) == tokens


@pytest.mark.parametrize(
    ("settings", "code"),
    [
        pytest.param({"profile": ""}, "invalid_profile", id="empty-profile"),
        pytest.param({"margin": -1}, "invalid_margin", id="negative-margin"),
        pytest.param({"margin": 86400}, "invalid_margin", id="margin-a-day"),
        pytest.param({"resource": ""}, "invalid_target", id="empty-resource"),
        pytest.param({"audience": ""}, "invalid_target", id="empty-audience"),
        pytest.param({"resource": 8001}, "invalid_target", id="resource-not-a-string"),
    ],
)
async def test_session_configuration_errors(cli: Cli, settings: dict[str, Any], code: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        cli.session(**settings)
    assert caught.value.code == code


@pytest.mark.parametrize(
    "names",
    [
        pytest.param(("resource",), id="resource"),
        pytest.param(("audience",), id="auth0-audience"),
        pytest.param(("resource", "audience"), id="both"),
    ],
)
async def test_refresh_names_the_api_of_the_login_again_rfc8707_2_2(
    cli: Cli, names: tuple[str, ...]
) -> None:
    cli.resource = API
    session = cli.session(**dict.fromkeys(names, API))
    first = await session.tokens()
    assert cli.provider.unverified_claims(first.access_token)["aud"] == API
    assert first.expires_at is not None
    cli.clock.now = first.expires_at  # forced refresh
    second = await session.tokens()
    assert cli.logins == 1
    assert cli.faults.forms[-1]["grant_type"] == ["refresh_token"]
    for name in names:
        assert cli.faults.forms[-1][name] == [API]
    claims = cli.provider.unverified_claims(second.access_token)
    assert (claims["aud"], claims["scope"]) == (API, "")
    assert cli.stored(session) == second


async def test_sessions_for_different_apis_keep_separate_entries(cli: Cli) -> None:
    plain, for_api = cli.session(), cli.session(resource=API)
    assert plain.key.split() == [cli.client.token_endpoint, "cli", "default"]  # unchanged
    assert for_api.key.split() == [cli.client.token_endpoint, "cli", "default", API]
    await plain.tokens()
    cli.resource = API
    await for_api.tokens()
    assert cli.logins == 2
    assert cli.stored(plain) != cli.stored(for_api)


async def test_cached_login_passes_the_api_on(cli: Cli) -> None:
    cli.resource = API
    first = await cached_login(cli.client, storage=cli.storage, login=cli.login, resource=API)
    assert first.expires_at is not None
    cli.clock.now = first.expires_at
    await cached_login(cli.client, storage=cli.storage, login=cli.login, resource=API)
    assert cli.faults.forms[-1]["resource"] == [API]
    assert cli.logins == 1


# --------------------------------------------------------------------------- the file


def test_round_trip_keeps_other_entries(tmp_path: Path) -> None:
    storage = FileTokenStorage(tmp_path / "tokens.json")
    storage.save("a", sample("at-a"))
    storage.save("b", sample("at-b", extras={"ext_expires_in": 7200}))
    assert storage.load("a") == sample("at-a")
    assert storage.load("b") == sample("at-b", extras={"ext_expires_in": 7200})
    assert storage.load("c") is None
    storage.delete("a")
    storage.delete("c")  # nothing to do
    assert storage.load("a") is None
    assert storage.load("b") is not None
    assert "at-b" not in repr(storage)


def test_missing_file_loads_as_nothing(tmp_path: Path) -> None:
    storage = FileTokenStorage(tmp_path / "absent" / "tokens.json")
    assert storage.load(KEY) is None
    storage.delete(KEY)
    assert not (tmp_path / "absent").exists()


def test_file_is_created_private_never_briefly_open(
    tmp_path: Path, umask_zero: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = FileTokenStorage(tmp_path / "tokens.json")
    storage.save(KEY, sample("old"))
    created: list[tuple[str, int, int]] = []
    modes_before_replace: list[int] = []
    real_open, real_replace = os.open, os.replace

    def spy_open(path: Any, flags: int, mode: int = 0o777, **kw: Any) -> int:
        if flags & os.O_CREAT:
            created.append((os.fspath(path), flags, mode))
        return real_open(path, flags, mode, **kw)

    def spy_replace(src: Any, dst: Any) -> None:
        modes_before_replace.append(stat.S_IMODE(os.stat(src).st_mode))
        assert storage.load(KEY) == sample("old")  # the old file is intact until the swap
        real_replace(src, dst)

    monkeypatch.setattr(os, "open", spy_open)
    monkeypatch.setattr(os, "replace", spy_replace)
    storage.save(KEY, sample("new"))
    [(temporary, flags, create_mode)] = created
    assert create_mode == 0o600
    assert flags & os.O_EXCL
    assert Path(temporary).parent == tmp_path
    assert modes_before_replace == [0o600]
    assert mode(storage.path) == 0o600
    assert storage.load(KEY) == sample("new")


def test_existing_directory_is_left_alone_new_one_is_0700(tmp_path: Path, umask_zero: None) -> None:
    FileTokenStorage(tmp_path / "new" / "tokens.json").save(KEY, sample())
    assert mode(tmp_path / "new") == 0o700


@pytest.mark.parametrize(
    "file_mode",
    [
        pytest.param(0o644, id="world-readable"),
        pytest.param(0o640, id="group-readable"),
        pytest.param(0o620, id="group-writable"),
        pytest.param(0o602, id="world-writable"),
        pytest.param(0o604, id="other-readable-only"),
        pytest.param(0o601, id="other-executable"),
    ],
)
def test_file_open_to_others_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, file_mode: int
) -> None:
    storage = FileTokenStorage(tmp_path / "tokens.json")
    storage.save(KEY, sample())
    storage.path.chmod(file_mode)
    assert storage.load(KEY) is None
    assert "insecure_token_file" in caplog.text
    assert f"{file_mode:04o}" in caplog.text


def test_symlinked_file_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    target = FileTokenStorage(tmp_path / "elsewhere.json")
    target.save(KEY, sample())
    link = tmp_path / "tokens.json"
    link.symlink_to(target.path)
    assert FileTokenStorage(link).load(KEY) is None
    assert "insecure_token_file" in caplog.text


@pytest.mark.parametrize("kind", [pytest.param("directory"), pytest.param("fifo")])
def test_not_a_regular_file_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    path = tmp_path / "tokens.json"
    if kind == "fifo":
        os.mkfifo(path, 0o600)  # without O_NONBLOCK, opening it would hang
    else:
        path.mkdir(mode=0o700)
    assert FileTokenStorage(path).load(KEY) is None
    assert "insecure_token_file" in caplog.text
    assert "not a regular file" in caplog.text


def _stat(mode: int, uid: int) -> os.stat_result:
    return os.stat_result((mode, 1, 1, 1, uid, 0, 10, 0, 0, 0))


@pytest.mark.parametrize(
    ("info", "problem"),
    [
        pytest.param(_stat(stat.S_IFREG | 0o600, os.getuid()), None, id="private-file"),
        pytest.param(_stat(stat.S_IFREG | 0o400, os.getuid()), None, id="read-only-private"),
        pytest.param(_stat(stat.S_IFREG | 0o600, os.getuid() + 1), "another user",
                     id="other-owner"),
        pytest.param(_stat(stat.S_IFREG | 0o660, os.getuid()), "0660", id="group-rw"),
        pytest.param(_stat(stat.S_IFIFO | 0o600, os.getuid()), "not a regular file", id="fifo"),
    ],
)  # fmt: skip
def test_insecure_decides_from_type_owner_and_mode(
    info: os.stat_result, problem: str | None
) -> None:
    found = _insecure(info)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def _entries(entry: Any) -> bytes:
    return json.dumps({"version": 1, "entries": {KEY: entry}}).encode()


GOOD = sample().to_dict()


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b"[]", id="not-an-object"),
        pytest.param(b'{"version": 2, "entries": {}}', id="unknown-version"),
        pytest.param(b'{"version": 1, "entries": []}', id="entries-not-object"),
        pytest.param(b'{"version": 1, "entries": {"k": {', id="truncated"),
        pytest.param(b"{" * 100_000, id="deeply-nested"),
        pytest.param(_entries("text"), id="entry-not-object"),
        pytest.param(_entries({**GOOD, "access_token": 5}), id="access-token-not-string"),
        pytest.param(_entries({**GOOD, "access_token": ""}), id="access-token-empty"),
        pytest.param(_entries({k: v for k, v in GOOD.items() if k != "token_type"}),
                     id="no-token-type"),
        pytest.param(_entries({**GOOD, "expires_at": "soon"}), id="expires-at-string"),
        pytest.param(_entries({**GOOD, "expires_at": True}), id="expires-at-bool"),
        pytest.param(_entries({**GOOD, "refresh_token": ["x"]}), id="refresh-token-list"),
        pytest.param(_entries({**GOOD, "extras": []}), id="extras-not-object"),
        pytest.param(b" " * (1 << 20) + b"{}", id="oversized"),
    ],
)  # fmt: skip
def test_corrupt_file_loads_as_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    storage = FileTokenStorage(tmp_path / "tokens.json")
    storage.save(KEY, sample())
    storage.path.write_bytes(content)
    assert storage.load(KEY) is None
    assert "corrupt_token_file" in caplog.text


def test_cipher_encrypts_the_whole_file(tmp_path: Path) -> None:
    key = Fernet.generate_key()
    storage = FileTokenStorage(tmp_path / "tokens.json", cipher=Fernet(key))
    storage.save(KEY, sample("secret-access-token"))
    raw = storage.path.read_bytes()
    assert b"secret-access-token" not in raw
    assert b"access_token" not in raw
    assert FileTokenStorage(storage.path, cipher=Fernet(key)).load(KEY) == sample(
        "secret-access-token"
    )
    assert "encrypted=True" in repr(storage)


@pytest.mark.parametrize(
    "reader",
    [
        pytest.param("wrong-key", id="wrong-key"),
        pytest.param("plaintext-file", id="plaintext-file-read-with-cipher"),
        pytest.param("no-cipher", id="encrypted-file-read-without-cipher"),
    ],
)
def test_undecryptable_file_loads_as_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, reader: str
) -> None:
    path = tmp_path / "tokens.json"
    right = Fernet(Fernet.generate_key())
    if reader == "plaintext-file":
        FileTokenStorage(path).save(KEY, sample())
        storage = FileTokenStorage(path, cipher=right)
    else:
        FileTokenStorage(path, cipher=right).save(KEY, sample())
        other = Fernet(Fernet.generate_key()) if reader == "wrong-key" else None
        storage = FileTokenStorage(path, cipher=other)
    assert storage.load(KEY) is None
    assert "corrupt_token_file" in caplog.text


# --------------------------------------------------------------------------- default path


@pytest.mark.parametrize(
    ("xdg", "expected"),
    [
        pytest.param("/xdg", "/xdg/tool/tokens.json", id="xdg-config-home"),
        pytest.param("relative/dir", "HOME/.config/tool/tokens.json", id="relative-xdg-ignored"),
        pytest.param("", "HOME/.config/tool/tokens.json", id="empty-xdg-ignored"),
        pytest.param(None, "HOME/.config/tool/tokens.json", id="xdg-unset"),
    ],
)
def test_default_token_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, xdg: str | None, expected: str
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    if xdg is None:
        monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_CONFIG_HOME", xdg)
    assert default_token_path("tool") == Path(expected.replace("HOME", str(tmp_path)))
    assert FileTokenStorage.for_app("tool").path == default_token_path("tool")


@pytest.mark.parametrize(
    "app",
    [
        pytest.param("", id="empty"),
        pytest.param("..", id="dot-dot"),
        pytest.param("a/b", id="slash"),
        pytest.param("/etc", id="absolute"),
        pytest.param("a\\b", id="backslash"),
        pytest.param("-rf", id="leading-dash"),
        pytest.param("x" * 200, id="too-long"),
    ],
)
def test_default_token_path_refuses_non_names(app: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        default_token_path(app)
    assert caught.value.code == "invalid_app_name"
