// A relying party written the way any Node.js web app would use
// openid-client (v6): discovery, the authorization code flow with PKCE
// S256, state and nonce, then refresh, userinfo, introspection, revocation
// and RP-initiated logout. Nothing in it knows Tenantry; identity's browser
// test (openid_client_browser_test.go) drives it through a tenant's OpenID
// Provider in headless Chromium.
//
// Pages a browser navigates (redirects, real ones):
//
//   GET /login[?prompt=none]  starts a sign-in: 302 to the provider
//   GET /callback             the redirect URI: the code is exchanged and
//                             the validated ID token's claims shown
//   GET /logout               302 to the provider's end_session endpoint
//   GET /logged-out           the post-logout redirect URI
//
// and calls the page makes with fetch (same origin, the session cookie):
//
//   POST /refresh             refresh_token grant with the session's token
//   POST /userinfo            userinfo with the session's access token
//   POST /introspect?token=access_token|refresh_token
//   POST /revoke?token=access_token|refresh_token
//
// Every answer is JSON: a page shows it in <pre id="result">; an error is
// {"error": ..., "error_description": ...} with the OAuth error code.
//
// Configuration (environment): RP_ISSUER, RP_CLIENT_ID, RP_CLIENT_SECRET,
// and where to listen: RP_LISTEN_FD (an inherited listening socket, so the
// test knows the port before it registers the redirect URIs) or RP_PORT
// (on 127.0.0.1, default 0). Once ready it prints one line,
// {"msg":"listening","url":"http://localhost:PORT"}.
import { randomBytes } from 'node:crypto';
import { lookup as dnsLookup } from 'node:dns';
import { createServer } from 'node:http';

import * as client from 'openid-client';
import { Agent, fetch as undiciFetch } from 'undici';

function setting(name, fallback) {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === '') {
    console.error(`${name} is required`);
    process.exit(2);
  }
  return value;
}

const issuer = new URL(setting('RP_ISSUER'));
const clientID = setting('RP_CLIENT_ID');
const clientSecret = setting('RP_CLIENT_SECRET');
const listenFD = process.env.RP_LISTEN_FD;
const port = Number(process.env.RP_PORT ?? 0);

// Browsers resolve every *.localhost name to the loopback address (RFC
// 6761), which is how a tenant's issuer (http://acme.localhost:8080) is
// reached on a developer's machine; the C library, hence Node, does not.
// This agent does what the browser does, for the provider's requests only.
const loopbackAgent = new Agent({
  connect: {
    lookup(hostname, options, callback) {
      if (hostname !== 'localhost' && !hostname.endsWith('.localhost')) {
        return dnsLookup(hostname, options, callback);
      }
      if (options.all) {
        return callback(null, [{ address: '127.0.0.1', family: 4 }]);
      }
      return callback(null, '127.0.0.1', 4);
    },
  },
});
const providerFetch = (url, options) => undiciFetch(url, { ...options, dispatcher: loopbackAgent });

const config = await client.discovery(
  issuer,
  clientID,
  // identity signs with EdDSA today; the client is registered so.
  { id_token_signed_response_alg: 'EdDSA' },
  client.ClientSecretBasic(clientSecret),
  {
    [client.customFetch]: providerFetch,
    execute: [
      // The issuer is http on loopback in the test.
      client.allowInsecureRequests,
      // Check the ID token's signature against the provider's JWKS too,
      // not only its claims (the token endpoint's TLS would vouch for it
      // in production; here there is none).
      client.enableNonRepudiationChecks,
    ],
  },
);

// Sessions in memory, by a random cookie: what a sign-in needs to finish
// (PKCE verifier, state, nonce) and, after it, the tokens.
const sessions = new Map();
const sessionCookie = 'rp_session';

function sessionOf(req, res) {
  const cookies = Object.fromEntries(
    (req.headers.cookie ?? '').split(';').map((c) => c.trim().split('=')).filter(([k]) => k),
  );
  let id = cookies[sessionCookie];
  if (!id || !sessions.has(id)) {
    id = randomBytes(24).toString('base64url');
    sessions.set(id, {});
    res.setHeader('Set-Cookie', `${sessionCookie}=${id}; Path=/; HttpOnly; SameSite=Lax`);
  }
  return sessions.get(id);
}

function escapeHTML(s) {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(res, status, result) {
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(`<!doctype html><meta charset="utf-8"><title>openid-client RP</title>
<pre id="result">${escapeHTML(JSON.stringify(result, null, 2))}</pre>`);
}

function json(res, status, result) {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
  res.end(JSON.stringify(result));
}

function redirect(res, location) {
  res.writeHead(302, { Location: location.href ?? location, 'Cache-Control': 'no-store' });
  res.end();
}

// errorOf is what an error answers: the OAuth error code and description
// when openid-client got one from the provider (ResponseBodyError,
// AuthorizationResponseError, WWWAuthenticateChallengeError), or else the
// library's own check that failed (its code, and the cause it gives: a
// claim, a header, the HTTP status of a response it refused).
function errorOf(err) {
  const cause = err.cause instanceof Error ? err.cause.message : undefined;
  return {
    error: err.error ?? err.code ?? err.name,
    error_description: err.error_description ?? err.message,
    status: err.status ?? err.cause?.status,
    cause,
  };
}

// tokensOf is what the test sees of a token response: the tokens
// themselves (it is a test app: a real one would never show them) and the
// validated ID token's claims.
function tokensOf(tokens) {
  return {
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token,
    id_token: tokens.id_token,
    scope: tokens.scope,
    token_type: tokens.token_type,
    expires_in: tokens.expiresIn(),
    claims: tokens.claims(),
  };
}

// origin is this app's own URL, as the browser reaches it.
let origin;

const routes = {
  'GET /login': async (req, res, session, url) => {
    session.verifier = client.randomPKCECodeVerifier();
    session.state = client.randomState();
    session.nonce = client.randomNonce();
    const parameters = {
      redirect_uri: `${origin}/callback`,
      scope: 'openid profile email offline_access',
      code_challenge: await client.calculatePKCECodeChallenge(session.verifier),
      code_challenge_method: 'S256',
      state: session.state,
      nonce: session.nonce,
    };
    if (url.searchParams.has('prompt')) parameters.prompt = url.searchParams.get('prompt');
    redirect(res, client.buildAuthorizationUrl(config, parameters));
  },

  'GET /callback': async (req, res, session, url) => {
    const { verifier, state, nonce } = session;
    delete session.verifier;
    delete session.state;
    delete session.nonce;
    if (!verifier) return page(res, 400, { error: 'no_sign_in_started' });
    try {
      const tokens = await client.authorizationCodeGrant(config, url, {
        pkceCodeVerifier: verifier,
        expectedState: state,
        expectedNonce: nonce,
        idTokenExpected: true,
      });
      session.tokens = tokensOf(tokens);
      page(res, 200, { ...session.tokens, expected_nonce: nonce });
    } catch (err) {
      page(res, 400, errorOf(err));
    }
  },

  'POST /refresh': async (req, res, session) => {
    if (!session.tokens) return json(res, 401, { error: 'not_signed_in' });
    const before = session.tokens;
    const tokens = await client.refreshTokenGrant(config, before.refresh_token);
    // A refresh response's ID token is checked against the first one's
    // subject by openid-client; keep the claims of the last one.
    session.tokens = { ...tokensOf(tokens), claims: tokens.claims() ?? before.claims };
    json(res, 200, { before, after: session.tokens });
  },

  'POST /userinfo': async (req, res, session) => {
    if (!session.tokens) return json(res, 401, { error: 'not_signed_in' });
    // The expected subject is the ID token's: openid-client refuses an
    // answer about anyone else.
    json(res, 200, await client.fetchUserInfo(config, session.tokens.access_token, session.tokens.claims.sub));
  },

  'POST /introspect': async (req, res, session, url) => {
    if (!session.tokens) return json(res, 401, { error: 'not_signed_in' });
    const which = url.searchParams.get('token') ?? 'access_token';
    json(res, 200, await client.tokenIntrospection(config, session.tokens[which], { token_type_hint: which }));
  },

  'POST /revoke': async (req, res, session, url) => {
    if (!session.tokens) return json(res, 401, { error: 'not_signed_in' });
    const which = url.searchParams.get('token') ?? 'refresh_token';
    await client.tokenRevocation(config, session.tokens[which], { token_type_hint: which });
    json(res, 200, { revoked: which });
  },

  'GET /logout': async (req, res, session) => {
    if (!session.tokens) return page(res, 401, { error: 'not_signed_in' });
    session.logoutState = client.randomState();
    redirect(res, client.buildEndSessionUrl(config, {
      id_token_hint: session.tokens.id_token,
      post_logout_redirect_uri: `${origin}/logged-out`,
      state: session.logoutState,
    }));
  },

  'GET /logged-out': async (req, res, session, url) => {
    const expected = session.logoutState;
    delete session.logoutState;
    // The state the provider sent back says the logout is the one this
    // app asked for; then the app forgets the tokens.
    if (!expected || url.searchParams.get('state') !== expected) {
      return page(res, 400, { error: 'state_mismatch' });
    }
    delete session.tokens;
    page(res, 200, { logged_out: true });
  },
};

const server = createServer(async (req, res) => {
  const url = new URL(req.url, origin);
  const route = routes[`${req.method} ${url.pathname}`];
  if (!route) return json(res, 404, { error: 'not_found' });
  try {
    await route(req, res, sessionOf(req, res), url);
  } catch (err) {
    json(res, 400, errorOf(err));
  }
});

server.listen(listenFD !== undefined ? { fd: Number(listenFD) } : { host: '127.0.0.1', port }, () => {
  origin = `http://localhost:${server.address().port}`;
  console.log(JSON.stringify({ msg: 'listening', url: origin }));
});
