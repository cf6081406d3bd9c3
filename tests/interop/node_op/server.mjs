// node-oidc-provider (OpenID Certified) configured for oidc-asgi's interop tests.
//
//   node server.mjs <port> [settings-json]
//
// Listens on 127.0.0.1:<port> with issuer http://127.0.0.1:<port> and prints
// "READY http://127.0.0.1:<port>" on stdout once it accepts connections (nothing else goes to
// stdout; errors go to stderr). settings-json (also read from NODE_OP_SETTINGS) may hold:
//   web_secret                       secret of client "web" (default "web-secret")
//   web_redirect_uris                exact redirect URIs of client "web"
//   web_post_logout_redirect_uris    post-logout redirect URIs of client "web"
//   web_backchannel_logout_uri       back-channel logout receiver of client "web"
//   pkjwt_jwks                       public JWKS of client "pkjwt" (private_key_jwt)
//   webapp_redirect_uris             exact redirect URIs of the webapp demo's client "webapp"
//   webapp_post_logout_redirect_uris post-logout redirect URIs of client "webapp"
//   webapp_backchannel_logout_uri    back-channel logout URI of client "webapp"
//   spa_redirect_uris                redirect (and post-logout) URIs of the public client "spa"
import { createPrivateKey, createPublicKey, generateKeyPairSync, verify } from 'node:crypto';

import Provider, { errors } from 'oidc-provider';

const port = Number(process.argv[2] ?? process.env.NODE_OP_PORT);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node server.mjs <port> [settings-json]');
  process.exit(2);
}
const settings = JSON.parse(process.argv[3] ?? process.env.NODE_OP_SETTINGS ?? '{}');
const issuer = `http://127.0.0.1:${port}`;

// Resource servers (RFC 8707): every access token for them is an RFC 9068 JWT.
const RESOURCES = {
  'http://127.0.0.1:8001/api': 'read:messages write:messages',
  'http://127.0.0.1:8002/api': 'read:summary', // the gateway: token exchange starts here
  'http://127.0.0.1:8004/api': 'read:reports', // opaque tokens: only introspection reads them
};
const OPAQUE = new Set(['http://127.0.0.1:8004/api']);
const GATEWAY = 'http://127.0.0.1:8002/api';
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

function resourceServerInfo(indicator) {
  const scope = RESOURCES[indicator];
  if (scope === undefined) throw new errors.InvalidTarget();
  return {
    scope,
    audience: indicator,
    accessTokenFormat: OPAQUE.has(indicator) ? 'opaque' : 'jwt',
    accessTokenTTL: 600,
    jwt: { sign: { alg: 'RS256' } },
  };
}

// Signing keys: generated as PEM and re-imported, because exporting a fresh RSA key straight
// to JWK has been seen to hang on Node 20.
function signingKey(kid, type, options) {
  const { privateKey } = generateKeyPairSync(type, {
    ...options, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return { ...createPrivateKey(privateKey).export({ format: 'jwk' }), kid, use: 'sig' };
}
const rsaKey = signingKey('rsa-1', 'rsa', { modulusLength: 2048 });
const ecKey = signingKey('ec-1', 'ec', { namedCurve: 'P-256' });
const rsaPublic = createPublicKey({ key: rsaKey, format: 'jwk' });

// Unbounded in-memory storage: the built-in adapter evicts after 1,000 entries.
const store = new Map();
const byGrant = new Map();
const byUserCode = new Map();
const byUid = new Map();
class MemoryAdapter {
  constructor(name) { this.name = name; }

  key(id) { return `${this.name}:${id}`; }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    store.set(key, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
    if (payload.grantId) {
      if (!byGrant.has(payload.grantId)) byGrant.set(payload.grantId, new Set());
      byGrant.get(payload.grantId).add(key);
    }
    if (payload.userCode) byUserCode.set(payload.userCode, key);
    if (payload.uid) byUid.set(payload.uid, key);
  }

  async find(id) { return this.get(this.key(id)); }

  async findByUserCode(userCode) { return this.get(byUserCode.get(userCode)); }

  async findByUid(uid) { return this.get(byUid.get(uid)); }

  async consume(id) {
    const entry = store.get(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) { store.delete(this.key(id)); }

  async revokeByGrantId(grantId) {
    for (const key of byGrant.get(grantId) ?? []) store.delete(key);
    byGrant.delete(grantId);
  }

  get(key) {
    const entry = key === undefined ? undefined : store.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= Date.now()) {
      store.delete(key);
      return undefined;
    }
    return { ...entry.payload };
  }
}

const configuration = {
  adapter: MemoryAdapter,
  jwks: { keys: [rsaKey, ecKey] },
  cookies: { keys: ['interop-cookie-key-not-secret'] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  scopes: ['openid', 'offline_access', 'email', 'profile'],
  async findAccount(_ctx, sub) {
    return {
      accountId: sub,
      async claims() { return { sub, email: `${sub}@example.test`, email_verified: true, name: sub }; },
    };
  },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    deviceFlow: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    backchannelLogout: { enabled: true },
    resourceIndicators: {
      enabled: true,
      async getResourceServerInfo(_ctx, indicator) { return resourceServerInfo(indicator); },
    },
  },
  // RFC 8693 4.1: an exchanged token names the party acting for the subject.
  async extraTokenClaims(ctx, token) {
    if (ctx?.oidc?.params?.grant_type !== TOKEN_EXCHANGE || token.kind !== 'AccessToken') return undefined;
    return { act: { sub: ctx.oidc.client.clientId } };
  },
  // Browsers may call the token, userinfo and revocation endpoints from a public client's
  // redirect URI origins (the SPA demo); the provider's own default, stated explicitly.
  clientBasedCORS(ctx, origin, client) {
    if (origin === 'null') return false;
    if (ctx.oidc.route !== 'userinfo' && client.clientAuthMethod !== 'none') return false;
    return client.redirectUris.some((uri) => URL.parse(uri)?.origin === origin);
  },
  // The provider blocks back-channel calls to special-use addresses (SSRF guard, since 9.7);
  // the tests' receivers listen on 127.0.0.1, so lift it for that host only.
  fetch(url, options) {
    if (new URL(url).hostname === '127.0.0.1') delete options.dispatcher;
    return globalThis.fetch(url, options);
  },
  clients: [
    {
      client_id: 'web',
      client_secret: settings.web_secret ?? 'web-secret',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: settings.web_redirect_uris ?? ['http://127.0.0.1:8000/callback'],
      post_logout_redirect_uris: settings.web_post_logout_redirect_uris ?? ['http://127.0.0.1:8000/'],
      ...(settings.web_backchannel_logout_uri ? {
        backchannel_logout_uri: settings.web_backchannel_logout_uri,
        backchannel_logout_session_required: true,
      } : {}),
    },
    // The demos (demo_apps/) under the development provider's client ids.
    {
      client_id: 'webapp',
      client_secret: 'webapp-secret',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: settings.webapp_redirect_uris ?? ['http://127.0.0.1:8000/callback'],
      post_logout_redirect_uris: settings.webapp_post_logout_redirect_uris ?? ['http://127.0.0.1:8000/logged-out'],
      ...(settings.webapp_backchannel_logout_uri ? {
        backchannel_logout_uri: settings.webapp_backchannel_logout_uri,
        backchannel_logout_session_required: true,
      } : {}),
    },
    {
      client_id: 'spa',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: settings.spa_redirect_uris ?? ['http://127.0.0.1:8003/'],
      post_logout_redirect_uris: settings.spa_redirect_uris ?? ['http://127.0.0.1:8003/'],
    },
    {
      client_id: 'cli',
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
      response_types: [],
      redirect_uris: [],
    },
    {
      // A resource server that introspects opaque tokens (RFC 7662).
      client_id: 'messages-api',
      client_secret: 'messages-api-secret',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    },
    {
      client_id: 'pkjwt',
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: settings.pkjwt_jwks ?? { keys: [] },
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    },
    {
      client_id: 'native',
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/callback'], // any port (RFC 8252 7.3)
    },
    {
      client_id: 'daemon',
      client_secret: 'daemon-secret',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    },
    {
      client_id: 'gateway',
      client_secret: 'gateway-secret',
      grant_types: [TOKEN_EXCHANGE],
      response_types: [],
      redirect_uris: [],
    },
  ],
};

const provider = new Provider(issuer, configuration);

// RFC 8693 token exchange, not built in: an access token issued for the gateway becomes one for
// another resource server, for the same user, with `act` naming the gateway.
function verifiedClaims(jwt) {
  const [header, payload, signature] = String(jwt).split('.');
  const head = JSON.parse(Buffer.from(header, 'base64url'));
  if (head.alg !== 'RS256' || head.kid !== rsaKey.kid || head.typ !== 'at+jwt') throw new Error('header');
  const signed = verify('sha256', Buffer.from(`${header}.${payload}`), rsaPublic, Buffer.from(signature, 'base64url'));
  if (!signed) throw new Error('signature');
  const claims = JSON.parse(Buffer.from(payload, 'base64url'));
  if (claims.iss !== issuer || !(claims.exp > Date.now() / 1000)) throw new Error('iss/exp');
  return claims;
}

provider.registerGrantType(TOKEN_EXCHANGE, async (ctx) => {
  const { client, params } = ctx.oidc;
  if (params.subject_token_type !== ACCESS_TOKEN_TYPE) {
    throw new errors.InvalidRequest('subject_token_type must be an access token');
  }
  let subject;
  try {
    subject = verifiedClaims(params.subject_token);
  } catch {
    throw new errors.InvalidGrant('subject_token is invalid');
  }
  if (![subject.aud].flat().includes(GATEWAY)) throw new errors.InvalidGrant('subject_token is not for the gateway');
  const target = params.resource ?? params.audience;
  const info = resourceServerInfo(target);
  const allowed = new Set(info.scope.split(' '));
  const scope = (params.scope ?? '').split(' ').filter((s) => allowed.has(s)).join(' ');
  const token = new provider.AccessToken({ accountId: subject.sub, client, gty: 'token_exchange', scope: scope || undefined });
  token.resourceServer = new provider.ResourceServer(target, info);
  ctx.oidc.entity('AccessToken', token);
  ctx.body = {
    access_token: await token.save(),
    issued_token_type: ACCESS_TOKEN_TYPE,
    token_type: token.tokenType,
    expires_in: token.expiration,
    scope: token.scope,
  };
}, ['subject_token', 'subject_token_type', 'actor_token', 'actor_token_type', 'requested_token_type', 'audience', 'resource', 'scope']);

provider.on('server_error', (_ctx, err) => console.error('server_error', err));

const server = provider.listen(port, '127.0.0.1', () => console.log(`READY ${issuer}`));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
