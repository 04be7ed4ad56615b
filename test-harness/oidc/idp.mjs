// A real OpenID Provider (npm `oidc-provider`) for the gateway's OAuth2/OIDC integration tests.
//
// `IDP_CONFIG` (JSON) describes it:
//   {"port": 0, "clients": [{"client_id", "client_secret", "redirect_uris": [...],
//     "post_logout_redirect_uris": [...], "token_endpoint_auth_method": "client_secret_basic"}],
//    "users": {"alice": {"email", "name", "scope_grants": "chat:read chat:write",
//                        "roles": ["admin"]}},
//    "extra_scopes": ["chat:read", ...]}
//
// Listens on 127.0.0.1 only and, once ready, prints one line to stdout:
//   {"issuer": "http://127.0.0.1:<port>", "port": <port>}
// Everything else (oidc-provider's notices included) goes to stderr.
//
// Login is this file's own interaction: GET /interaction/:uid renders a form (fields `login`,
// `password`); POST /interaction/:uid/login accepts a configured user with any password and
// grants consent in the same step (openid, profile, email, offline_access and the user's
// `scope_grants`, intersected with what was requested; other requested scopes are rejected).
// Unknown users get the form again with status 401. GET /interaction/:uid/abort denies
// (`error=access_denied` back to the client).
//
// Access tokens are opaque (no resource indicators): RFC 7662 introspection at
// POST /token/introspection and RFC 7009 revocation at POST /token/revocation, for any
// configured client (with its registered authentication method).
//
// Test hooks (for the gateway's failure tests), changed at run time:
//   POST /__test/settings {"decoy_jwks": bool, "hide_end_session": bool}
//     decoy_jwks: GET /jwks serves only a decoy key (not the signing key), as an IdP's cached
//       JWKS does just before a key rotation reaches it; hide_end_session: discovery without
//       end_session_endpoint.
//   POST /__test/slow-token: a token endpoint that answers only after 5 s.
//   POST /__test/bad-id-token: a token endpoint whose id_token has valid claims and the signing
//     key's kid, but a signature that does not verify.
//
// Redirect URIs: a client configured with none accepts any loopback http redirect URI
// (127.0.0.1, localhost, [::1]; any port and path), since the gateway's port is only known once
// Envoy runs; the same for post-logout redirect URIs. More can be registered at run time:
//   POST /__test/clients/<client_id>  {"redirect_uris": [...], "post_logout_redirect_uris": [...]}

import * as crypto from 'node:crypto';
import * as http from 'node:http';

// oidc-provider prints notices with console.info; stdout carries only the ready line.
console.info = console.error;
console.log = console.error;

// Start-up stages go to stderr with their times, so a slow start on a loaded machine can be told
// from a hang when the harness reports it.
const started = Date.now();
const stage = (what) => console.error(`idp: ${what} after ${Date.now() - started} ms`);

const { default: Provider } = await import('oidc-provider');
stage('oidc-provider imported');

const config = JSON.parse(process.env.IDP_CONFIG || '{}');
const users = config.users || {};
const extraScopes = config.extra_scopes || [];
const BASE_SCOPES = ['openid', 'profile', 'email', 'offline_access'];
const PLACEHOLDER_REDIRECT = 'http://127.0.0.1/__no_redirect_uri_registered__';

// Redirect URIs added at run time or allowed by the loopback rule, per client.
const runtime = new Map();
const clients = (config.clients || []).map((c) => {
  const redirectUris = c.redirect_uris || [];
  const postLogout = c.post_logout_redirect_uris || [];
  runtime.set(c.client_id, {
    anyLoopbackRedirect: redirectUris.length === 0,
    anyLoopbackPostLogout: postLogout.length === 0,
    redirectUris: new Set(),
    postLogoutRedirectUris: new Set(),
  });
  return {
    client_id: c.client_id,
    client_secret: c.client_secret,
    // oidc-provider requires at least one; never used implicitly (see
    // allowOmittingSingleRegisteredRedirectUri below).
    redirect_uris: redirectUris.length ? redirectUris : [PLACEHOLDER_REDIRECT],
    post_logout_redirect_uris: postLogout,
    token_endpoint_auth_method: c.token_endpoint_auth_method || 'client_secret_basic',
    response_types: ['code'],
    grant_types: ['authorization_code', 'refresh_token'],
    id_token_signed_response_alg: 'RS256',
  };
});

function isLoopbackHttp(value) {
  const url = URL.parse(value);
  return url !== null
    && url.protocol === 'http:'
    && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)
    && url.hash === '';
}

function listen(port) {
  return new Promise((resolve, reject) => {
    const server = http.createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

const server = await listen(config.port || 0);
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
stage(`listening on ${port}, signing key generated`);
const signingKey = {
  ...privateKey.export({ format: 'jwk' }),
  kid: crypto.randomBytes(8).toString('hex'),
  alg: 'RS256',
  use: 'sig',
};

// Run-time switches of the test hooks (see the header).
const testSettings = { decoy_jwks: false, hide_end_session: false };
let decoyJwk;
function decoyJwks() {
  if (!decoyJwk) {
    const { publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    decoyJwk = {
      ...publicKey.export({ format: 'jwk' }),
      kid: crypto.randomBytes(8).toString('hex'),
      alg: 'RS256',
      use: 'sig',
    };
  }
  return { keys: [decoyJwk] };
}

function base64url(value) {
  return Buffer.from(value).toString('base64url');
}

// An ID token that passes every claim check but whose signature does not verify.
function badIdToken(clientId) {
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: 'RS256', kid: signingKey.kid, typ: 'JWT' };
  const payload = {
    iss: issuer, aud: clientId, sub: 'alice', iat: now, exp: now + 300, nonce: 'unknown',
  };
  return `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}.${
    crypto.randomBytes(256).toString('base64url')}`;
}

const ttl = (seconds) => () => seconds;

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [signingKey] },
  cookies: {
    keys: [crypto.randomBytes(32).toString('hex')],
  },
  claims: {
    // A user's roles (if any) go into the ID token, as Azure AD's `roles` and Keycloak's
    // `realm_access.roles` (with a mapper adding them to the ID token).
    openid: ['sub', 'roles', 'realm_access'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
  },
  scopes: [...new Set([...BASE_SCOPES, ...extraScopes])],
  // profile/email claims in the ID token itself, not only at userinfo.
  conformIdTokenClaims: false,
  allowOmittingSingleRegisteredRedirectUri: false,
  responseTypes: ['code'],
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      // The confirmation form carries logout=yes itself, so a form-filling client signs out.
      async logoutSource(ctx, form) {
        ctx.type = 'html';
        ctx.body = page('Sign-out', `<h1>Do you want to sign out?</h1>${
          form.replace('</form>', '<input type="hidden" name="logout" value="yes"/><button type="submit">Yes, sign me out</button></form>')}`);
      },
      async postLogoutSuccessSource(ctx) {
        ctx.type = 'html';
        ctx.body = page('Signed out', '<h1>Sign-out Success</h1>');
      },
    },
    userinfo: { enabled: true },
    revocation: { enabled: true },
    // RFC 7662, for gateways checking the (opaque) access tokens this provider issues.
    introspection: { enabled: true },
  },
  interactions: {
    url: (ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  async findAccount(ctx, id) {
    const user = Object.hasOwn(users, id) ? users[id] : undefined;
    if (!user) {
      return undefined;
    }
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: user.email,
          email_verified: true,
          name: user.name,
          preferred_username: id,
          ...(user.roles && user.roles.length
            ? { roles: user.roles, realm_access: { roles: user.roles } }
            : {}),
        };
      },
    };
  },
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  clientBasedCORS: () => true,
  ttl: {
    AccessToken: ttl(3600),
    AuthorizationCode: ttl(120),
    IdToken: ttl(3600),
    Interaction: ttl(1800),
    RefreshToken: ttl(86400),
    Session: ttl(86400),
    Grant: ttl(86400),
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Error', `<h1>oops! something went wrong</h1><pre id="error">${
      Object.entries(out).map(([k, v]) => `${escape(k)}: ${escape(v)}`).join('\n')}</pre>`);
  },
});

provider.on('server_error', (ctx, err) => console.error('server_error', err));

const { Client } = provider;
const redirectUriAllowed = Client.prototype.redirectUriAllowed;
Client.prototype.redirectUriAllowed = function allowed(value) {
  const extra = runtime.get(this.clientId);
  if (value === PLACEHOLDER_REDIRECT) {
    return false;
  }
  if (redirectUriAllowed.call(this, value)) {
    return true;
  }
  return Boolean(extra)
    && (extra.redirectUris.has(value) || (extra.anyLoopbackRedirect && isLoopbackHttp(value)));
};
const postLogoutRedirectUriAllowed = Client.prototype.postLogoutRedirectUriAllowed;
Client.prototype.postLogoutRedirectUriAllowed = function allowed(value) {
  const extra = runtime.get(this.clientId);
  if (postLogoutRedirectUriAllowed.call(this, value)) {
    return true;
  }
  return Boolean(extra)
    && (extra.postLogoutRedirectUris.has(value)
      || (extra.anyLoopbackPostLogout && isLoopbackHttp(value)));
};

function escape(value) {
  return String(value).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}

function page(title, body) {
  return `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>${escape(title)}</title></head>\n<body>\n${body}\n</body></html>\n`;
}

function send(res, status, type, body) {
  res.statusCode = status;
  res.setHeader('content-type', type);
  res.setHeader('cache-control', 'no-store');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(body);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > 1024 * 1024) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function loginPage(uid, error) {
  const message = error ? `<p id="error">${escape(error)}</p>` : '';
  return page('Sign-in', `<h1>Sign-in</h1>
${message}
<form method="post" action="/interaction/${escape(uid)}/login" autocomplete="off">
  <input type="text" name="login" placeholder="login" required/>
  <input type="password" name="password" placeholder="password"/>
  <button type="submit">Sign-in</button>
</form>
<a href="/interaction/${escape(uid)}/abort">Cancel</a>`);
}

function consentPage(uid, details) {
  const scopes = (details.params.scope || '').split(' ').filter(Boolean);
  return page('Authorize', `<h1>Authorize ${escape(details.params.client_id)}</h1>
<ul>${scopes.map((s) => `<li>${escape(s)}</li>`).join('')}</ul>
<form method="post" action="/interaction/${escape(uid)}/confirm">
  <input type="hidden" name="prompt" value="consent"/>
  <button type="submit">Continue</button>
</form>
<a href="/interaction/${escape(uid)}/abort">Cancel</a>`);
}

// Grants what the user holds of what was requested; rejects the rest (so consent is not asked
// again for it).
async function grantFor(details, accountId) {
  const { params } = details;
  let grant;
  if (details.grantId) {
    grant = await provider.Grant.find(details.grantId);
  }
  if (!grant || grant.accountId !== accountId) {
    grant = new provider.Grant({ accountId, clientId: params.client_id });
  }
  const held = new Set([...BASE_SCOPES, ...(users[accountId].scope_grants || '').split(' ').filter(Boolean)]);
  const requested = (params.scope || '').split(' ').filter(Boolean);
  const granted = requested.filter((s) => held.has(s));
  const rejected = requested.filter((s) => !held.has(s));
  if (granted.length) {
    grant.addOIDCScope(granted.join(' '));
  }
  if (rejected.length) {
    grant.rejectOIDCScope(rejected.join(' '));
  }
  const missingClaims = details.prompt?.details?.missingOIDCClaims;
  if (missingClaims) {
    grant.addOIDCClaims(missingClaims);
  }
  return grant.save();
}

async function interaction(req, res, uid, action) {
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (err) {
    send(res, 400, 'text/plain; charset=utf-8', `interaction not found: ${err.message}\n`);
    return;
  }
  if (details.uid !== uid) {
    send(res, 400, 'text/plain; charset=utf-8', 'interaction cookie does not match the URL\n');
    return;
  }
  const prompt = details.prompt.name;

  if (req.method === 'GET' && action === undefined) {
    if (prompt === 'login') {
      send(res, 200, 'text/html; charset=utf-8', loginPage(uid));
    } else if (prompt === 'consent') {
      send(res, 200, 'text/html; charset=utf-8', consentPage(uid, details));
    } else {
      send(res, 501, 'text/plain; charset=utf-8', `prompt ${prompt} not implemented\n`);
    }
    return;
  }

  if (req.method === 'GET' && action === 'abort') {
    await provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
    return;
  }

  if (req.method === 'POST' && action === 'login') {
    const form = new URLSearchParams(await readBody(req));
    const login = form.get('login') || '';
    if (prompt !== 'login') {
      send(res, 400, 'text/plain; charset=utf-8', `expected prompt login, not ${prompt}\n`);
      return;
    }
    if (!Object.hasOwn(users, login)) {
      console.error(`login refused for unknown user ${JSON.stringify(login)}`);
      send(res, 401, 'text/html; charset=utf-8', loginPage(uid, 'unknown user or wrong password'));
      return;
    }
    const grantId = await grantFor(details, login);
    await provider.interactionFinished(req, res, {
      login: { accountId: login },
      consent: { grantId },
    }, { mergeWithLastSubmission: false });
    return;
  }

  if (req.method === 'POST' && action === 'confirm') {
    await readBody(req);
    if (prompt !== 'consent') {
      send(res, 400, 'text/plain; charset=utf-8', `expected prompt consent, not ${prompt}\n`);
      return;
    }
    const accountId = details.session?.accountId;
    if (!accountId || !Object.hasOwn(users, accountId)) {
      send(res, 400, 'text/plain; charset=utf-8', 'no signed-in user\n');
      return;
    }
    const grantId = await grantFor(details, accountId);
    await provider.interactionFinished(req, res, { consent: { grantId } }, {
      mergeWithLastSubmission: true,
    });
    return;
  }

  send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
}

async function testAdmin(req, res, clientId) {
  const extra = runtime.get(clientId);
  if (req.method !== 'POST' || !extra) {
    send(res, 404, 'text/plain; charset=utf-8', 'no such client\n');
    return;
  }
  const body = JSON.parse((await readBody(req)) || '{}');
  for (const uri of body.redirect_uris || []) {
    extra.redirectUris.add(uri);
  }
  for (const uri of body.post_logout_redirect_uris || []) {
    extra.postLogoutRedirectUris.add(uri);
  }
  send(res, 204, 'text/plain', '');
}

// oidc-provider accepts client_secret_basic and client_secret_post interchangeably; a real
// deployment (and the gateway's tests) want the registered method enforced. The body is read
// here and handed on as `req.body`, which oidc-provider uses when the stream is consumed.
const authMethods = new Map(clients.map((c) => [c.client_id, c.token_endpoint_auth_method]));
const TOKEN_PATHS = new Set(['/token', '/token/revocation', '/token/introspection']);

function basicClientId(header) {
  const [scheme, value] = (header || '').split(' ');
  if (scheme?.toLowerCase() !== 'basic' || !value) {
    return undefined;
  }
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i === -1) {
    return undefined;
  }
  try {
    return decodeURIComponent(decoded.slice(0, i).replace(/\+/g, '%20'));
  } catch {
    return undefined;
  }
}

async function checkClientAuthMethod(req, res) {
  const body = await readBody(req);
  req.body = body;
  const form = new URLSearchParams(body);
  const viaBasic = req.headers.authorization !== undefined;
  const viaPost = form.has('client_secret');
  if (viaBasic === viaPost) {
    return true; // none or both: oidc-provider's own error
  }
  const clientId = viaBasic ? basicClientId(req.headers.authorization) : form.get('client_id');
  const registered = authMethods.get(clientId);
  const used = viaBasic ? 'client_secret_basic' : 'client_secret_post';
  if (registered === undefined || registered === used) {
    return true;
  }
  console.error(`client ${clientId} authenticated with ${used}, registered ${registered}`);
  send(res, 401, 'application/json; charset=utf-8', JSON.stringify({
    error: 'invalid_client',
    error_description: `client authentication failed (registered method is ${registered})`,
  }));
  return false;
}

const callback = provider.callback();

// The test hooks of the header; true when the request was one of them.
function testHook(req, res, path) {
  if (req.method === 'POST' && path === '/__test/settings') {
    readBody(req).then((body) => {
      Object.assign(testSettings, JSON.parse(body || '{}'));
      send(res, 204, 'text/plain', '');
    }, () => send(res, 400, 'text/plain', 'bad settings\n'));
    return true;
  }
  if (req.method === 'POST' && path === '/__test/slow-token') {
    setTimeout(() => send(res, 503, 'application/json', '{"error":"temporarily_unavailable"}'), 5000);
    return true;
  }
  if (req.method === 'POST' && path === '/__test/bad-id-token') {
    readBody(req).then(() => {
      const clientId = basicClientId(req.headers.authorization) || 'qwen-web-chat';
      send(res, 200, 'application/json', JSON.stringify({
        access_token: 'at', token_type: 'Bearer', expires_in: 300, id_token: badIdToken(clientId),
      }));
    });
    return true;
  }
  if (req.method === 'GET' && path === '/jwks' && testSettings.decoy_jwks) {
    send(res, 200, 'application/json', JSON.stringify(decoyJwks()));
    return true;
  }
  if (req.method === 'GET' && path === '/.well-known/openid-configuration'
      && testSettings.hide_end_session && !req.headers['x-test-internal']) {
    fetch(`${issuer}${path}`, { headers: { 'x-test-internal': '1' } })
      .then((r) => r.json())
      .then((doc) => {
        delete doc.end_session_endpoint;
        send(res, 200, 'application/json', JSON.stringify(doc));
      }, (err) => send(res, 500, 'text/plain', `${err.message}\n`));
    return true;
  }
  return false;
}

server.on('request', (req, res) => {
  const path = (req.url || '/').split('?')[0];
  if (testHook(req, res, path)) {
    return;
  }
  let match = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|confirm|abort))?$/.exec(path);
  if (match) {
    interaction(req, res, match[1], match[2]).catch((err) => {
      console.error('interaction error', err);
      if (!res.headersSent) {
        send(res, 500, 'text/plain; charset=utf-8', `interaction error: ${err.message}\n`);
      } else {
        res.end();
      }
    });
    return;
  }
  match = /^\/__test\/clients\/([^/]+)$/.exec(path);
  if (match) {
    testAdmin(req, res, decodeURIComponent(match[1])).catch((err) => {
      send(res, 400, 'text/plain; charset=utf-8', `bad request: ${err.message}\n`);
    });
    return;
  }
  if (req.method === 'POST' && TOKEN_PATHS.has(path)) {
    checkClientAuthMethod(req, res).then((ok) => {
      if (ok) {
        callback(req, res);
      }
    }, (err) => {
      send(res, 400, 'application/json; charset=utf-8', JSON.stringify({
        error: 'invalid_request', error_description: err.message,
      }));
    });
    return;
  }
  callback(req, res);
});

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

stage('provider ready');
process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);
