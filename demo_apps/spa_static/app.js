// oidc-asgi SPA demo: authorization code + PKCE (RFC 7636) in the browser, no library.
"use strict";

const $ = (id) => document.getElementById(id);
const app = { config: null, meta: null, tokens: null, claims: null };

function b64url(bytes) {
  let text = "";
  for (const byte of new Uint8Array(bytes)) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString() {
  return b64url(crypto.getRandomValues(new Uint8Array(32)));
}

async function s256(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return b64url(digest);
}

function decodePayload(jwt) {
  const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

async function signIn() {
  const { config, meta } = app;
  const login = { verifier: randomString(), state: randomString(), nonce: randomString() };
  sessionStorage.setItem("oidc-login", JSON.stringify(login));
  const params = new URLSearchParams({
    response_type: "code",
    client_id: config.client_id,
    redirect_uri: config.redirect_uri,
    scope: config.scope,
    state: login.state,
    nonce: login.nonce,
    code_challenge: await s256(login.verifier),
    code_challenge_method: "S256",
    audience: config.api_audience, // Auth0 style
    resource: config.api_audience, // RFC 8707
  });
  location.assign(`${meta.authorization_endpoint}?${params}`);
}

async function finishSignIn(params) {
  const { config, meta } = app;
  const login = JSON.parse(sessionStorage.getItem("oidc-login") || "null");
  sessionStorage.removeItem("oidc-login");
  history.replaceState(null, "", location.pathname); // the code leaves the address bar
  if (!login || params.get("state") !== login.state) {
    throw new Error("this sign-in was not started here (state mismatch); sign in again");
  }
  if (params.has("iss") ? params.get("iss") !== meta.issuer
      : meta.authorization_response_iss_parameter_supported) {
    throw new Error("the response names another issuer (RFC 9207)");
  }
  if (params.has("error")) throw new Error(`the provider said: ${params.get("error")}`);
  const response = await fetch(meta.token_endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: params.get("code"),
      redirect_uri: config.redirect_uri,
      client_id: config.client_id,
      code_verifier: login.verifier,
      resource: config.api_audience,
    }),
  });
  const tokens = await response.json();
  if (!response.ok) throw new Error(`token endpoint: ${tokens.error || response.status}`);
  const claims = tokens.id_token ? decodePayload(tokens.id_token) : {};
  if (tokens.id_token && claims.nonce !== login.nonce) throw new Error("nonce mismatch");
  app.tokens = tokens;
  app.claims = claims;
}

function signOut() {
  const { config, meta, tokens } = app;
  app.tokens = null;
  if (!meta.end_session_endpoint) return render();
  const params = new URLSearchParams({
    client_id: config.client_id,
    post_logout_redirect_uri: config.redirect_uri,
  });
  if (tokens && tokens.id_token) params.set("id_token_hint", tokens.id_token);
  location.assign(`${meta.end_session_endpoint}?${params}`);
}

async function callApi(method, path, body) {
  const headers = {};
  if (app.tokens) headers.Authorization = `Bearer ${app.tokens.access_token}`;
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  $("answer").textContent = `${method} ${path} ...`;
  try {
    const response = await fetch(app.config.api_url + path, init);
    const text = await response.text();
    let shown = text;
    try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON */ }
    const challenge = response.headers.get("WWW-Authenticate");
    $("answer").textContent = `${method} ${path} -> ${response.status}\n`
      + (challenge ? `WWW-Authenticate: ${challenge}\n` : "") + shown;
  } catch (error) {
    $("answer").textContent = `${method} ${path} failed: ${error.message}`;
  }
}

function render() {
  const signedIn = Boolean(app.tokens);
  $("login").hidden = signedIn;
  $("logout").hidden = !signedIn;
  $("who").hidden = !signedIn;
  const name = app.claims && (app.claims.name || app.claims.sub);
  $("status").textContent = signedIn ? `Signed in as ${name}.` : "Not signed in.";
  $("claims").textContent = signedIn ? JSON.stringify(app.claims, null, 2) : "";
}

function showError(error) {
  $("error").hidden = false;
  $("error").textContent = error.message;
}

async function start() {
  app.config = await (await fetch("/config.json")).json();
  $("client-id").textContent = app.config.client_id;
  $("api-url").textContent = app.config.api_url;
  const discovery = `${app.config.issuer.replace(/\/$/, "")}/.well-known/openid-configuration`;
  app.meta = await (await fetch(discovery)).json();
  if (app.meta.issuer !== app.config.issuer) throw new Error("discovery names another issuer");
  const params = new URLSearchParams(location.search);
  if (params.has("code") || params.has("error")) await finishSignIn(params);
  render();
}

$("login").addEventListener("click", () => signIn().catch(showError));
$("logout").addEventListener("click", signOut);
for (const button of document.querySelectorAll("[data-call]")) {
  const [method, path] = button.dataset.call.split(" ");
  button.addEventListener("click", () => callApi(method, path));
}
$("post").addEventListener("submit", (event) => {
  event.preventDefault();
  callApi("POST", "/api/messages", { text: $("text").value });
});
start().catch((error) => { render(); showError(error); });
