// An OpenID Provider written with the npm package oidc-provider, as any
// Node.js team would run one, with its development login and consent pages
// (any login, any password). Identity's federation test
// (federation_browser_test.go) adds it to a tenant as an upstream identity
// provider and signs people in through it in headless Chromium. Nothing in
// it knows Tenantry.
//
// Configuration (environment):
//   OP_LISTEN_FD    an inherited listening socket (so the test knows the
//                   issuer's port before it starts this)
//   OP_ISSUER       the issuer, http://localhost:PORT
//   OP_CLIENT_ID, OP_CLIENT_SECRET, OP_REDIRECT_URI
//                   the one client: the tenant's identity service
//   OP_ACCOUNTS     JSON: {"<login>": {"email": ..., "email_verified": ...,
//                   "name": ...}}; a login not in it has no email
// Once ready it prints {"msg":"listening","url":"<issuer>"}.
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

function setting(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is required`);
    process.exit(2);
  }
  return value;
}

const issuer = setting('OP_ISSUER');
const accounts = JSON.parse(process.env.OP_ACCOUNTS || '{}');

const provider = new Provider(issuer, {
  clients: [{
    client_id: setting('OP_CLIENT_ID'),
    client_secret: setting('OP_CLIENT_SECRET'),
    redirect_uris: [setting('OP_REDIRECT_URI')],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  pkce: { required: () => true },
  cookies: { keys: ['a key for the test provider cookies'] },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, ...(accounts[id] || {}) };
      },
    };
  },
});
// Plain HTTP on localhost, as a developer runs it.
provider.on('server_error', (ctx, err) => console.error(JSON.stringify({ msg: 'server_error', err: String(err) })));

const server = createServer(provider.callback());
server.listen({ fd: Number(setting('OP_LISTEN_FD')) }, () => {
  console.log(JSON.stringify({ msg: 'listening', url: issuer }));
});
