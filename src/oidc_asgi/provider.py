"""One identity provider: its discovery document and its signing keys, cached safely.

``Provider`` fetches the OpenID Provider metadata (OpenID Connect Discovery 1.0 section 4, with a
fallback to RFC 8414's ``oauth-authorization-server`` document) and the JSON Web Key Set it
names, and keeps both in a cache built to survive real providers and hostile tokens:

* freshness from ``Cache-Control: max-age`` (RFC 9111), clamped to ``[min_ttl, max_ttl]``, with
  ``jwks_ttl`` (10 minutes) when the provider says nothing; ``ETag`` revalidation when offered;
* one fetch in flight per document, shared by every waiting caller; a caller that is cancelled
  leaves the fetch running for the others; a sequence number stops an older answer from
  overwriting a newer one;
* a refresh started in the background once 80 % of the lifetime has passed, so requests rarely
  wait for the network;
* an unknown ``kid`` refetches the key set at most once per ``cooldown`` (30 s) and is then
  remembered as unknown for ``unknown_kid_ttl`` (bounded memory), so a flood of random kids
  costs at most one fetch per cooldown and nothing at all within it; an algorithm we cannot
  verify, or a kid longer than any key could have, costs nothing ever;
* when a refresh fails, the last good data keeps being served for up to ``max_stale`` (24 h)
  after it was fetched, with a WARNING log per failed attempt, and a new attempt is made at most
  every ``failure_backoff`` seconds; with nothing usable cached, ``ProviderUnavailable`` (with
  ``retry_after``) is raised, which the pillars turn into 503.

Every request goes through ``oidc_asgi._http.fetch_json`` (https only, 5 s deadline, no
cross-origin redirect, size cap, strict JSON).

Error codes raised here, besides those of ``fetch_json``: ``ConfigurationError`` with
``insecure_issuer``, ``invalid_issuer``, ``invalid_setting``, ``issuer_mismatch``,
``invalid_metadata``, ``insecure_url``, ``discovery_not_found``, ``no_jwks_uri``,
``missing_endpoint``; ``ProviderUnavailable`` with ``provider_bad_response`` for a JWKS
without a ``keys`` array.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import httpx

from oidc_asgi._http import (
    DEFAULT_MAX_BYTES,
    DEFAULT_TIMEOUT,
    JsonResponse,
    ProviderStatusError,
    fetch_json,
    require_https,
    safe_url,
    warn_insecure_http,
)
from oidc_asgi._jwks import _MAX_KID, ALGORITHM_KEYS, VerificationKey, parse_jwks, select_keys
from oidc_asgi.errors import ConfigurationError, ProviderUnavailable

__all__ = ["Provider", "ProviderMetadata", "ProviderStats"]

log = logging.getLogger("oidc_asgi.provider")

T = TypeVar("T")

_OIDC_WELL_KNOWN = "/.well-known/openid-configuration"
_OAUTH_WELL_KNOWN = "/.well-known/oauth-authorization-server"

_ENDPOINTS = (
    "authorization_endpoint",
    "token_endpoint",
    "jwks_uri",
    "userinfo_endpoint",
    "end_session_endpoint",
    "introspection_endpoint",
    "revocation_endpoint",
    "device_authorization_endpoint",
    "pushed_authorization_request_endpoint",
    "registration_endpoint",
)
_LISTS = (
    "scopes_supported",
    "response_types_supported",
    "response_modes_supported",
    "grant_types_supported",
    "subject_types_supported",
    "acr_values_supported",
    "claims_supported",
    "id_token_signing_alg_values_supported",
    "userinfo_signing_alg_values_supported",
    "token_endpoint_auth_methods_supported",
    "token_endpoint_auth_signing_alg_values_supported",
    "code_challenge_methods_supported",
    "dpop_signing_alg_values_supported",
)
_FLAGS = (
    "authorization_response_iss_parameter_supported",
    "backchannel_logout_supported",
    "backchannel_logout_session_supported",
    "frontchannel_logout_supported",
    "require_pushed_authorization_requests",
)


def _invalid(message: str) -> ConfigurationError:
    return ConfigurationError(message, code="invalid_metadata")


@dataclass(frozen=True, kw_only=True)
class ProviderMetadata:
    """The provider's discovery document as a typed, read-only view.

    Built by ``Provider.metadata()`` or from a mapping with ``from_document`` (for providers
    without discovery). Endpoints are ``None`` when the document does not name them; lists are
    ``None`` when absent (which is not the same as empty); boolean capabilities default to
    ``False`` as their specifications say (e.g. RFC 9207 section 3 for
    ``authorization_response_iss_parameter_supported``). ``raw`` holds the whole document,
    unknown members included (OIDC Discovery 3: unknown members are ignored, not rejected).

    Example::

        meta = await provider.metadata()
        token_url = meta.endpoint("token_endpoint")
        if meta.authorization_response_iss_parameter_supported:
            ...
    """

    issuer: str
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    jwks_uri: str | None = None
    userinfo_endpoint: str | None = None
    end_session_endpoint: str | None = None
    introspection_endpoint: str | None = None
    revocation_endpoint: str | None = None
    device_authorization_endpoint: str | None = None
    pushed_authorization_request_endpoint: str | None = None
    registration_endpoint: str | None = None
    scopes_supported: tuple[str, ...] | None = None
    response_types_supported: tuple[str, ...] | None = None
    response_modes_supported: tuple[str, ...] | None = None
    grant_types_supported: tuple[str, ...] | None = None
    subject_types_supported: tuple[str, ...] | None = None
    acr_values_supported: tuple[str, ...] | None = None
    claims_supported: tuple[str, ...] | None = None
    id_token_signing_alg_values_supported: tuple[str, ...] | None = None
    userinfo_signing_alg_values_supported: tuple[str, ...] | None = None
    token_endpoint_auth_methods_supported: tuple[str, ...] | None = None
    token_endpoint_auth_signing_alg_values_supported: tuple[str, ...] | None = None
    code_challenge_methods_supported: tuple[str, ...] | None = None
    dpop_signing_alg_values_supported: tuple[str, ...] | None = None
    authorization_response_iss_parameter_supported: bool = False
    backchannel_logout_supported: bool = False
    backchannel_logout_session_supported: bool = False
    frontchannel_logout_supported: bool = False
    require_pushed_authorization_requests: bool = False
    raw: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), repr=False)

    @classmethod
    def from_document(
        cls,
        document: Mapping[str, Any],
        *,
        issuer: str | None = None,
        allow_insecure_http: bool = False,
    ) -> ProviderMetadata:
        """Validate a discovery document and build the typed view.

        ``issuer``, when given, must equal the document's ``issuer`` exactly, character for
        character (OIDC Discovery 1.0 section 4.3, RFC 8414 section 3.3): no trailing-slash or
        case tolerance, because the value is compared with every token's ``iss``. Endpoints must
        be absolute https URLs without a fragment (RFC 8414 section 2).

        Example::

            meta = ProviderMetadata.from_document(
                {"issuer": "https://idp.example", "jwks_uri": "https://idp.example/jwks"},
                issuer="https://idp.example",
            )
        """
        doc_issuer = document.get("issuer")
        if not isinstance(doc_issuer, str) or not doc_issuer:
            raise _invalid("discovery document has no issuer string")
        if issuer is not None and doc_issuer != issuer:
            raise ConfigurationError(
                f"discovery document issuer {doc_issuer[:200]!r} does not equal the "
                f"configured issuer {issuer!r} (OIDC Discovery 4.3)",
                code="issuer_mismatch",
            )
        values: dict[str, Any] = {}
        for name in _ENDPOINTS:
            url = document.get(name)
            if url is None:
                continue
            if not isinstance(url, str):
                raise _invalid(f"{name} is not a string")
            _check_endpoint(name, url, allow_insecure_http)
            values[name] = url
        for name in _LISTS:
            items = document.get(name)
            if items is None:
                continue
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise _invalid(f"{name} is not a list of strings")
            values[name] = tuple(items)
        for name in _FLAGS:
            flag = document.get(name)
            if flag is None:
                continue
            if not isinstance(flag, bool):
                raise _invalid(f"{name} is not a boolean")
            values[name] = flag
        return cls(issuer=doc_issuer, raw=MappingProxyType(dict(document)), **values)

    def endpoint(self, name: str) -> str:
        """The URL of endpoint ``name``, or ``ConfigurationError(code="missing_endpoint")``.

        Example::

            url = meta.endpoint("device_authorization_endpoint")
        """
        url = getattr(self, name, None) if name in _ENDPOINTS else None
        if not isinstance(url, str):
            raise ConfigurationError(
                f"the provider's metadata has no {name}", code="missing_endpoint"
            )
        return url


def _check_endpoint(name: str, url: str, allow_insecure_http: bool) -> None:
    try:
        require_https(url, allow_insecure_http=allow_insecure_http, what=name)
    except ConfigurationError as exc:
        if exc.code == "invalid_url":
            raise _invalid(f"{name} is not an absolute https URL") from None
        raise
    if "#" in url:
        raise _invalid(f"{name} has a fragment")


@dataclass
class ProviderStats:
    """Counters for tests, benchmarks and metrics exporters; read them, do not write them.

    Example::

        assert provider.stats.jwks_fetches == 1
    """

    discovery_fetches: int = 0
    jwks_fetches: int = 0
    failed_fetches: int = 0
    not_modified: int = 0
    kid_misses: int = 0
    unknown_kid_hits: int = 0
    stale_served: int = 0


@dataclass
class _Loaded(Generic[T]):
    value: T | None  # None: 304 Not Modified, keep what we have
    source: str
    max_age: float | None
    etag: str | None


@dataclass
class _Cell(Generic[T]):
    """One cached document and the bookkeeping around its single in-flight fetch."""

    name: str
    value: T | None = None
    source: str | None = None
    etag: str | None = None
    fetched_at: float = -math.inf  # last successful fetch (clock time)
    expires_at: float = -math.inf
    attempted_at: float = -math.inf  # start of the last attempt, successful or not
    retry_at: float = -math.inf  # no new attempt before this, after a failure
    error: ConfigurationError | ProviderUnavailable | None = None
    task: asyncio.Task[T] | None = None
    started: int = 0  # sequence number of the last fetch started
    applied: int = 0  # sequence number of the fetch whose answer is held


def _consume(task: asyncio.Task[Any]) -> None:
    # Waiters may all have been cancelled; mark the outcome seen so asyncio does not log it.
    if not task.cancelled():
        task.exception()


def _rfc8414_url(issuer: str) -> str:
    # RFC 8414 section 3.1: the well-known suffix goes between the host and the issuer's path.
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{_OAUTH_WELL_KNOWN}{path}"


class Provider:
    """The discovery document and signing keys of one OpenID Provider, fetched and cached.

    Implements the ``KeySource`` protocol (``candidates``) used by token validation, and
    ``metadata()`` for the endpoints. Create one per issuer and share it: the cache, the
    single-flight fetches and the unknown-``kid`` limits are per instance.

    ``issuer`` is compared exactly with the discovery document and with tokens, so write it
    exactly as the provider does (trailing slash included, e.g. Auth0's). ``metadata=`` skips
    discovery for providers that publish none (the keys are still fetched from its
    ``jwks_uri``). ``http_client`` is used for every request (the caller keeps ownership); by
    default the provider creates one and ``aclose()`` closes it. ``now`` is the clock.

    Plain http is refused except for loopback hosts; ``allow_insecure_http=True`` lifts that
    and emits ``InsecureTransportWarning``.

    Example::

        provider = Provider("https://login.example.com/")
        meta = await provider.metadata()
        keys = await provider.candidates(kid="2024-05", alg="RS256")
    """

    def __init__(
        self,
        issuer: str,
        *,
        http_client: httpx.AsyncClient | None = None,
        allow_insecure_http: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        jwks_ttl: float = 600.0,
        min_ttl: float = 60.0,
        max_ttl: float = 3600.0,
        cooldown: float = 30.0,
        max_stale: float = 86400.0,
        unknown_kid_ttl: float = 120.0,
        max_unknown_kids: int = 1024,
        failure_backoff: float = 5.0,
        refresh_ahead: float | None = 0.8,
        max_response_bytes: int = DEFAULT_MAX_BYTES,
        now: Callable[[], float] = time.time,
        metadata: ProviderMetadata | Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(issuer, str):
            raise ConfigurationError("issuer must be a string", code="invalid_issuer")
        try:
            require_https(
                issuer,
                allow_insecure_http=allow_insecure_http,
                what="issuer",
                code="insecure_issuer",
            )
        except ConfigurationError as exc:
            if exc.code == "invalid_url":
                raise ConfigurationError(
                    "issuer must be an absolute https URL", code="invalid_issuer"
                ) from None
            raise
        parts = urlsplit(issuer)
        if parts.query or parts.fragment or "?" in issuer or "#" in issuer:
            # OIDC Discovery 2 / RFC 8414 section 2: no query or fragment in an issuer.
            raise ConfigurationError(
                "issuer must not have a query or fragment", code="invalid_issuer"
            )
        _check_settings(
            timeout=timeout,
            jwks_ttl=jwks_ttl,
            min_ttl=min_ttl,
            max_ttl=max_ttl,
            cooldown=cooldown,
            max_stale=max_stale,
            unknown_kid_ttl=unknown_kid_ttl,
            max_unknown_kids=max_unknown_kids,
            failure_backoff=failure_backoff,
            refresh_ahead=refresh_ahead,
            max_response_bytes=max_response_bytes,
        )
        if allow_insecure_http:
            warn_insecure_http(f"Provider({issuer!r})")
        self.issuer = issuer
        self._client = http_client
        self._owns_client = http_client is None
        self._allow_insecure_http = allow_insecure_http
        self._timeout = timeout
        self._default_ttl = jwks_ttl
        self._min_ttl = min_ttl
        self._max_ttl = max_ttl
        self._cooldown = cooldown
        self._max_stale = max_stale
        self._unknown_kid_ttl = unknown_kid_ttl
        self._max_unknown_kids = max_unknown_kids
        self._failure_backoff = failure_backoff
        self._refresh_ahead = refresh_ahead
        self._max_bytes = max_response_bytes
        self._now = now
        self.stats = ProviderStats()
        self._discovery: _Cell[ProviderMetadata] = _Cell("discovery document")
        self._jwks: _Cell[tuple[VerificationKey, ...]] = _Cell("JWKS")
        self._unknown_kids: dict[str, float] = {}
        # candidates() answers per (kid, alg) for the key set it was computed from.
        self._selected: dict[tuple[str | None, str], tuple[VerificationKey, ...]] = {}
        self._selected_from: tuple[VerificationKey, ...] | None = None
        if metadata is not None:
            if not isinstance(metadata, ProviderMetadata):
                metadata = ProviderMetadata.from_document(
                    metadata, issuer=issuer, allow_insecure_http=allow_insecure_http
                )
            elif metadata.issuer != issuer:
                raise ConfigurationError(
                    "metadata.issuer does not equal the configured issuer",
                    code="issuer_mismatch",
                )
            else:
                for name in _ENDPOINTS:
                    url = getattr(metadata, name)
                    if url is not None:
                        _check_endpoint(name, url, allow_insecure_http)
            self._discovery.value = metadata
            self._discovery.fetched_at = now()
            self._discovery.expires_at = math.inf

    def __repr__(self) -> str:
        return f"Provider({self.issuer!r})"

    # -- public API -----------------------------------------------------------------------

    async def metadata(self) -> ProviderMetadata:
        """The provider's metadata, from cache when fresh (OIDC Discovery 1.0 section 4).

        Tries ``<issuer>/.well-known/openid-configuration`` first and, when that answers with a
        4xx status, RFC 8414's ``/.well-known/oauth-authorization-server`` inserted before the
        issuer's path (section 3.1). Raises ``ConfigurationError`` (``issuer_mismatch``,
        ``invalid_metadata``, ``insecure_url``, ``discovery_not_found``) or
        ``ProviderUnavailable`` when nothing usable is cached.

        Example::

            meta = await provider.metadata()
            print(meta.token_endpoint)
        """
        return await self._get(self._discovery, self._load_metadata)

    async def candidates(self, *, kid: str | None, alg: str) -> Sequence[VerificationKey]:
        """Keys that may have signed a token with header ``kid`` and ``alg`` (``KeySource``).

        An empty result means "no such key": the validator rejects the token. An unknown
        ``kid`` triggers at most one refetch per ``cooldown``; an algorithm we do not verify
        with published keys (``none``, ``HS256``, ...) returns nothing without any network
        call. Raises ``ProviderUnavailable`` when no usable key set is cached and the provider
        cannot be reached.

        Example::

            keys = await provider.candidates(kid=header.get("kid"), alg=header["alg"])
        """
        if alg not in ALGORITHM_KEYS or (kid is not None and len(kid) > _MAX_KID):
            return []
        cell = self._jwks
        # The common case answers without awaiting anything: fresh keys, a known (kid, alg).
        keys = self._fresh(cell, self._load_jwks, self._now())
        if keys is None:
            keys = await self._keys()
        if keys is not self._selected_from:
            self._selected = {}
            self._selected_from = keys
        found = self._selected.get((kid, alg))
        if found is not None:
            return found
        found = tuple(select_keys(keys, kid=kid, alg=alg))
        if found:
            # Bounded by the key set: only kids it holds (and None) are remembered.
            self._selected[(kid, alg)] = found
            return found
        return await self._key_miss(kid, alg)

    async def prefetch(self) -> None:
        """Fetch metadata and keys now, e.g. in the ASGI lifespan startup, so that the first
        request does not wait and a wrong issuer fails at startup.

        Example::

            @asynccontextmanager
            async def lifespan(app):
                await provider.prefetch()
                yield
                await provider.aclose()
        """
        await self.metadata()
        await self._keys()

    async def aclose(self) -> None:
        """Cancel in-flight fetches and close the HTTP client if the provider created it."""
        for cell in (self._discovery, self._jwks):
            task = cell.task
            if task is not None and not task.done():
                task.cancel()
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> Provider:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- keys -----------------------------------------------------------------------------

    async def _keys(self) -> tuple[VerificationKey, ...]:
        return await self._get(self._jwks, self._load_jwks)

    async def _key_miss(self, kid: str | None, alg: str) -> list[VerificationKey]:
        self.stats.kid_misses += 1
        now = self._now()
        if kid is not None:
            until = self._unknown_kids.get(kid)
            if until is not None and now < until:
                self.stats.unknown_kid_hits += 1
                return []
        cell = self._jwks
        if cell.task is None and (now - cell.attempted_at < self._cooldown or now < cell.retry_at):
            # Within the cooldown: answer at once, no network. The kid is not remembered as
            # unknown here, because no fetch made after it appeared has confirmed its absence.
            return []
        try:
            keys = await asyncio.shield(self._refresh(cell, self._load_jwks))
        except (ConfigurationError, ProviderUnavailable):
            # The failure is logged by the fetch; the last good keys do not hold this kid.
            return []
        found = select_keys(keys, kid=kid, alg=alg)
        if not found and kid is not None:
            self._remember_unknown(kid, self._now())
        return found

    def _remember_unknown(self, kid: str, now: float) -> None:
        table = self._unknown_kids
        if self._max_unknown_kids == 0:
            return
        table.pop(kid, None)
        while len(table) >= self._max_unknown_kids:
            del table[next(iter(table))]
        table[kid] = now + self._unknown_kid_ttl

    # -- loaders --------------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient()
            self._owns_client = True
        return self._client

    async def _fetch(self, url: str, etag: str | None) -> JsonResponse:
        return await fetch_json(
            self._http(),
            url,
            etag=etag,
            timeout=self._timeout,
            max_bytes=self._max_bytes,
            allow_insecure_http=self._allow_insecure_http,
        )

    async def _load_metadata(self, etag: str | None) -> _Loaded[ProviderMetadata]:
        source = self._discovery.source
        if source is None:
            source = self.issuer.rstrip("/") + _OIDC_WELL_KNOWN
            etag = None
            self.stats.discovery_fetches += 1
            try:
                response = await self._fetch(source, None)
            except ProviderStatusError as exc:
                if not 400 <= exc.status_code < 500:
                    raise
                source = _rfc8414_url(self.issuer)
                self.stats.discovery_fetches += 1
                try:
                    response = await self._fetch(source, None)
                except ProviderStatusError as exc2:
                    if not 400 <= exc2.status_code < 500:
                        raise
                    raise ConfigurationError(
                        f"no discovery document for issuer {self.issuer!r} (HTTP "
                        f"{exc.status_code} for OpenID Connect, {exc2.status_code} for RFC 8414)",
                        code="discovery_not_found",
                    ) from None
        else:
            self.stats.discovery_fetches += 1
            response = await self._fetch(source, etag)
        if response.not_modified:
            self.stats.not_modified += 1
            return _Loaded(None, source, response.max_age, response.etag or etag)
        meta = ProviderMetadata.from_document(
            response.data, issuer=self.issuer, allow_insecure_http=self._allow_insecure_http
        )
        return _Loaded(meta, source, response.max_age, response.etag)

    async def _load_jwks(self, etag: str | None) -> _Loaded[tuple[VerificationKey, ...]]:
        meta = await self.metadata()
        uri = meta.jwks_uri
        if uri is None:
            raise ConfigurationError(
                f"the metadata of {self.issuer!r} has no jwks_uri", code="no_jwks_uri"
            )
        if uri != self._jwks.source:
            etag = None
        self.stats.jwks_fetches += 1
        response = await self._fetch(uri, etag)
        if response.not_modified:
            self.stats.not_modified += 1
            return _Loaded(None, uri, response.max_age, response.etag or etag)
        try:
            keys = parse_jwks(response.data)
        except ValueError:
            raise ProviderUnavailable(
                f"GET {safe_url(uri)}: not a JWK Set", code="provider_bad_response"
            ) from None
        if not keys:
            log.warning("JWKS of %s holds no usable signature key", self.issuer)
        return _Loaded(keys, uri, response.max_age, response.etag)

    # -- the cache machinery --------------------------------------------------------------

    def _ttl(self, max_age: float | None) -> float:
        ttl = self._default_ttl if max_age is None else max_age
        return min(max(ttl, self._min_ttl), self._max_ttl)

    def _superseded(self, cell: _Cell[Any]) -> bool:
        # The keys came from a jwks_uri the current metadata no longer names.
        meta = self._discovery.value
        return cell is self._jwks and meta is not None and cell.source != meta.jwks_uri

    def _fresh(
        self, cell: _Cell[T], load: Callable[[str | None], Awaitable[_Loaded[T]]], now: float
    ) -> T | None:
        # The cached value when it is fresh (starting a background refresh when one is due),
        # else None: then _get decides between fetching, waiting and the stale fallback.
        value = cell.value
        if value is not None and now < cell.expires_at and not self._superseded(cell):
            if (
                self._refresh_ahead is not None
                and cell.task is None
                and now >= cell.retry_at
                and now - cell.fetched_at
                >= self._refresh_ahead * (cell.expires_at - cell.fetched_at)
            ):
                self._refresh(cell, load)  # in the background; this caller does not wait
            return value
        return None

    async def _get(self, cell: _Cell[T], load: Callable[[str | None], Awaitable[_Loaded[T]]]) -> T:
        now = self._now()
        value = self._fresh(cell, load, now)
        if value is not None:
            return value
        if cell.task is None and now < cell.retry_at:
            return self._fallback(cell, now)
        try:
            # shield: a caller cancelled while waiting must not cancel the shared fetch.
            return await asyncio.shield(self._refresh(cell, load))
        except (ConfigurationError, ProviderUnavailable):
            return self._fallback(cell, self._now())

    def _refresh(
        self, cell: _Cell[T], load: Callable[[str | None], Awaitable[_Loaded[T]]]
    ) -> asyncio.Task[T]:
        loop = asyncio.get_running_loop()
        task = cell.task
        if task is not None and not task.done() and task.get_loop() is loop:
            return task
        cell.started += 1
        cell.attempted_at = self._now()
        task = loop.create_task(self._run(cell, load, cell.started))
        task.add_done_callback(_consume)
        cell.task = task
        return task

    async def _run(
        self, cell: _Cell[T], load: Callable[[str | None], Awaitable[_Loaded[T]]], seq: int
    ) -> T:
        try:
            loaded = await load(cell.etag if cell.value is not None else None)
        except (ConfigurationError, ProviderUnavailable) as exc:
            now = self._now()
            self.stats.failed_fetches += 1
            cell.error = exc
            cell.retry_at = now + self._failure_backoff
            if cell.value is not None and now - cell.fetched_at <= self._max_stale:
                log.warning(
                    "refreshing the %s of %s failed (%s); serving the copy fetched %.0f s ago",
                    cell.name,
                    self.issuer,
                    exc.code,
                    now - cell.fetched_at,
                )
            else:
                log.warning("fetching the %s of %s failed (%s)", cell.name, self.issuer, exc.code)
            raise
        finally:
            if cell.task is asyncio.current_task():
                cell.task = None
        now = self._now()
        if seq > cell.applied:
            # Only a fetch started after the one whose answer we hold may replace it.
            cell.applied = seq
            if loaded.value is not None:
                cell.value = loaded.value
            cell.source = loaded.source
            cell.etag = loaded.etag
            cell.fetched_at = now
            cell.expires_at = now + self._ttl(loaded.max_age)
            cell.error = None
            cell.retry_at = -math.inf
        if cell.value is None:  # a 304 for a document we never had
            raise ProviderUnavailable(
                f"{cell.name} of {self.issuer!r}: unexpected 304", code="provider_bad_response"
            )
        return cell.value

    def _fallback(self, cell: _Cell[T], now: float) -> T:
        if cell.value is not None and now - cell.fetched_at <= self._max_stale:
            self.stats.stale_served += 1
            return cell.value
        error = cell.error
        retry_after = max(1, math.ceil(cell.retry_at - now))
        if isinstance(error, ConfigurationError):
            raise ConfigurationError(str(error), code=error.code)
        message = str(error) if error is not None else f"{cell.name} of {self.issuer} unavailable"
        code = error.code if error is not None else "provider_unavailable"
        raise ProviderUnavailable(message, code=code, retry_after=retry_after)


def _check_settings(
    *,
    timeout: float,
    jwks_ttl: float,
    min_ttl: float,
    max_ttl: float,
    cooldown: float,
    max_stale: float,
    unknown_kid_ttl: float,
    max_unknown_kids: int,
    failure_backoff: float,
    refresh_ahead: float | None,
    max_response_bytes: int,
) -> None:
    problems = []
    if not timeout > 0:
        problems.append("timeout must be > 0")
    if not 0 <= min_ttl <= jwks_ttl <= max_ttl <= max_stale:
        problems.append("need 0 <= min_ttl <= jwks_ttl <= max_ttl <= max_stale")
    if not cooldown >= 0 or not unknown_kid_ttl >= 0 or not failure_backoff >= 0:
        problems.append("cooldown, unknown_kid_ttl and failure_backoff must be >= 0")
    if max_unknown_kids < 0 or max_response_bytes <= 0:
        problems.append("max_unknown_kids must be >= 0 and max_response_bytes > 0")
    if refresh_ahead is not None and not 0 < refresh_ahead < 1:
        problems.append("refresh_ahead must be between 0 and 1, or None")
    if problems:
        raise ConfigurationError("; ".join(problems), code="invalid_setting")
