// A real OpenID Provider for castgate's tests and `make demo`: npm's oidc-provider with the device
// flow, RS256 and ES256 keys, key rotation, and optional Okta- or Entra-shaped issuers and claims.
// Test-only control endpoints under /__test/ make it misbehave on purpose (tampered tokens,
// slow_down) so that castgate's rejections can be exercised against a real server.
//
// Configuration (JSON in IDP_CONFIG): {shape: "generic"|"okta"|"entra", tenant, client_id,
//   alg: "RS256"|"ES256", device_ttl, accounts: {login: {claims}}, port}
// Prints one line of JSON ({"port", "issuer"}) on stdout once it listens.
import http from 'node:http';
import crypto from 'node:crypto';
import { Provider, errors } from 'oidc-provider';
import * as jose from 'jose';

const cfg = JSON.parse(process.env.IDP_CONFIG || '{}');
const shape = cfg.shape || 'generic';
const clientId = cfg.client_id || 'castgate';
const alg = cfg.alg || 'RS256';
const tenant = cfg.tenant || '72f988bf-86f1-41af-91ab-2d7cd011db47';
const accounts = cfg.accounts || {};

const prefix = shape === 'okta' ? '/oauth2/default' : shape === 'entra' ? `/${tenant}/v2.0` : '';
const routes = shape === 'okta'
  ? { device_authorization: '/v1/device/authorize', token: '/v1/token', jwks: '/v1/keys',
      authorization: '/v1/authorize', userinfo: '/v1/userinfo' }
  : shape === 'entra'
    ? { device_authorization: '/oauth2/v2.0/devicecode', token: '/oauth2/v2.0/token',
        jwks: '/discovery/v2.0/keys', authorization: '/oauth2/v2.0/authorize' }
    : {};

let keys = [];
let provider;
let port = 0;
let tamper = null;        // one-shot: how to spoil the next id_token
let slowDowns = 0;        // answer this many token polls with slow_down
let keysDelayMs = 0;      // hold answers for the key set this long (a slow provider)
let declineAsEntra = shape === 'entra';
const stats = { tokenPolls: [] };

async function newKeys() {
  const stamp = crypto.randomBytes(4).toString('hex');
  const rsa = await jose.generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  const ec = await jose.generateKeyPair('ES256', { extractable: true });
  const rsaJwk = { ...(await jose.exportJWK(rsa.privateKey)), kid: `rsa-${stamp}`, alg: 'RS256', use: 'sig' };
  const ecJwk = { ...(await jose.exportJWK(ec.privateKey)), kid: `ec-${stamp}`, alg: 'ES256', use: 'sig' };
  return [rsaJwk, ecJwk];
}

function claimsFor(login) {
  const base = { ...(cfg.default_claims || {}), ...(accounts[login] || {}) };
  if (shape === 'entra') {
    return { oid: base.oid || crypto.createHash('sha256').update(login).digest('hex').slice(0, 32),
             tid: tenant, preferred_username: `${login}@contoso.example`, name: login, ...base };
  }
  return { preferred_username: login, email: `${login}@example.com`, name: login, ...base };
}

function buildProvider(issuer) {
  const claimNames = ['sub', 'email', 'email_verified', 'xms_edov', 'name', 'preferred_username',
    'groups', 'roles', 'tid', 'oid', '_claim_names', '_claim_sources', 'hasgroups'];
  const p = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      token_endpoint_auth_method: 'none',
      grant_types: ['urn:ietf:params:oauth:grant-type:device_code'],
      response_types: [],
      redirect_uris: [],
      id_token_signed_response_alg: alg,
    }],
    jwks: { keys },
    routes,
    // Okta releases groups only to a client that asks for the `groups` scope.
    claims: shape === 'okta'
      ? { openid: claimNames.filter((c) => c !== 'groups'), groups: ['groups'] }
      : { openid: claimNames },
    conformIdTokenClaims: false,
    features: { deviceFlow: { enabled: true }, devInteractions: { enabled: true } },
    ttl: { DeviceCode: cfg.device_ttl || 600, IdToken: 3600, AccessToken: 3600, Interaction: 600,
           Session: 3600, Grant: 3600 },
    cookies: { keys: [crypto.randomBytes(16).toString('hex')] },
    async findAccount(ctx, id) {
      return { accountId: id, async claims() { return { sub: id, ...claimsFor(id) }; } };
    },
    async loadExistingGrant(ctx) {
      // Consent is implied (a test provider): every client gets the scopes it asked for.
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId,
                                                  accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope('openid profile email groups');
      await grant.save();
      return grant;
    },
  });
  p.proxy = false;
  return p;
}

// The factors an account signed in with (its `amr`/`acr` in `accounts`), as the provider's own
// login would have recorded them in the session: oidc-provider's development login records
// none, so they are set on the ID token it issued, signed again with the same key.
async function withFactors(idToken) {
  const [h, pl] = idToken.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  const payload = JSON.parse(Buffer.from(pl, 'base64url'));
  const account = accounts[payload.sub] || {};
  if (account.amr === undefined && account.acr === undefined) return idToken;
  const key = keys.find((k) => k.kid === header.kid);
  const body = { ...payload };
  if (account.amr !== undefined) body.amr = account.amr;
  if (account.acr !== undefined) body.acr = account.acr;
  return new jose.SignJWT(body).setProtectedHeader(header).sign(await jose.importJWK(key, key.alg));
}

// Re-signs the id_token of a token response the way a test asked it to be spoiled.
async function spoil(idToken, mode) {
  const [h, pl] = idToken.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  const payload = JSON.parse(Buffer.from(pl, 'base64url'));
  const now = Math.floor(Date.now() / 1000);
  const key = keys.find((k) => k.kid === header.kid);
  const sign = async (hdr, body) => new jose.SignJWT(body).setProtectedHeader(hdr)
    .sign(await jose.importJWK(key, key.alg));
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  switch (mode) {
    case 'wrong-audience': return sign(header, { ...payload, aud: 'some-other-client', azp: undefined });
    case 'wrong-issuer': return sign(header, { ...payload, iss: 'https://evil.example.com' });
    case 'expired': return sign(header, { ...payload, iat: now - 7200, exp: now - 3600 });
    case 'alg-none': return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`;
    case 'hs256-public-key': {
      // The classic confusion attack: HMAC keyed with the provider's public key.
      const pub = { ...key };
      for (const k of ['d', 'p', 'q', 'dp', 'dq', 'qi']) delete pub[k];
      const pem = crypto.createPublicKey({ key: pub, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
      const hdr = b64({ alg: 'HS256', typ: 'JWT', kid: header.kid });
      const body = b64(payload);
      const mac = crypto.createHmac('sha256', pem).update(`${hdr}.${body}`).digest('base64url');
      return `${hdr}.${body}.${mac}`;
    }
    case 'tampered-signature': {
      const parts = idToken.split('.');
      const sig = Buffer.from(parts[2], 'base64url');
      sig[5] ^= 0x01;
      return `${parts[0]}.${parts[1]}.${sig.toString('base64url')}`;
    }
    case 'tampered-payload': return `${h}.${b64({ ...payload, sub: 'mallory' })}.${idToken.split('.')[2]}`;
    default: return idToken;
  }
}

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString()));
  });
}

// The provider runs behind this server on a port of its own; answers are relayed, and rewritten
// where a test or an emulated provider needs it.
let innerPort = 0;
function relay(req, res, body, rewrite) {
  const upstream = http.request({ host: '127.0.0.1', port: innerPort, method: req.method,
                                  path: req.url, headers: req.headers }, (r) => {
    const chunks = [];
    r.on('data', (c) => chunks.push(c));
    r.on('end', async () => {
      let status = r.statusCode;
      let text = Buffer.concat(chunks);
      if (rewrite) {
        const out = await rewrite(status, text.toString());
        status = out.status;
        text = Buffer.from(out.body);
      }
      const headers = { ...r.headers };
      delete headers['content-length'];
      delete headers['transfer-encoding'];
      headers['content-length'] = text.length;
      res.writeHead(status, headers);
      res.end(text);
    });
  });
  upstream.on('error', (e) => { res.writeHead(502); res.end(String(e)); });
  upstream.end(body);
}

async function handle(req, res) {
  const url = new URL(req.url, `http://127.0.0.1:${port}`);
  if (url.pathname.startsWith('/__test/')) {
    const body = JSON.parse((await readBody(req)) || '{}');
    if (url.pathname === '/__test/rotate') {
      keys = await newKeys();
      provider = buildProvider(`http://127.0.0.1:${port}${prefix}`);
    } else if (url.pathname === '/__test/tamper') {
      tamper = body.mode || null;
    } else if (url.pathname === '/__test/slow_down') {
      slowDowns = body.count || 1;
    } else if (url.pathname === '/__test/slow_keys') {
      keysDelayMs = body.ms || 0;
    } else if (url.pathname === '/__test/accounts') {
      Object.assign(accounts, body);
    } else if (url.pathname === '/__test/mint') {
      // A token as a workload identity issuer (a CI system) would sign it.
      const key = keys.find((k) => k.alg === (body.alg || 'RS256'));
      const now = Math.floor(Date.now() / 1000);
      const token = await new jose.SignJWT({ iat: now, exp: now + 600, ...body.claims,
                                             iss: body.iss || `http://127.0.0.1:${port}${prefix}` })
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
        .sign(await jose.importJWK(key, key.alg));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ok: true, kids: keys.map((k) => k.kid), stats }));
    return;
  }
  if (prefix && !url.pathname.startsWith(prefix)) {
    res.writeHead(404);
    res.end();
    return;
  }
  const inner = url.pathname.slice(prefix.length) || '/';
  const tokenPath = routes.token || '/token';
  const devicePath = routes.device_authorization || '/device/auth';
  const body = await readBody(req);
  if (inner === (routes.jwks || '/jwks') && keysDelayMs > 0) {
    await new Promise((resolve) => setTimeout(resolve, keysDelayMs));
  }
  if (inner === tokenPath && req.method === 'POST') {
    stats.tokenPolls.push(Date.now());
    if (slowDowns > 0) {
      slowDowns -= 1;
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'slow_down', error_description: 'polling too fast' }));
      return;
    }
    return relay(req, res, body, async (status, text) => {
      let json;
      try { json = JSON.parse(text); } catch { return { status, body: text }; }
      if (status === 200 && json.id_token) json.id_token = await withFactors(json.id_token);
      if (status === 200 && json.id_token && tamper) {
        json.id_token = await spoil(json.id_token, tamper);
        tamper = null;
      }
      if (status !== 200 && json.error === 'access_denied' && declineAsEntra) {
        json.error = 'authorization_declined';  // what Entra ID says
      }
      return { status, body: JSON.stringify(json) };
    });
  }
  if (inner === devicePath && shape === 'entra') {
    return relay(req, res, body, (status, text) => {
      try {
        const json = JSON.parse(text);
        delete json.verification_uri_complete;  // Entra ID sends none
        return { status, body: JSON.stringify(json) };
      } catch { return { status, body: text }; }
    });
  }
  return relay(req, res, body, null);
}

function startInner() {
  if (innerServer) innerServer.close();
  innerServer = http.createServer((req, res) => {
    req.originalUrl = req.url;
    req.url = req.url.slice(prefix.length) || '/';
    provider.callback()(req, res);
  });
  return new Promise((resolve) => innerServer.listen(0, '127.0.0.1', () => {
    innerPort = innerServer.address().port;
    resolve();
  }));
}
let innerServer = null;

const server = http.createServer((req, res) => {
  handle(req, res).catch((e) => {
    res.writeHead(500);
    res.end(String(e));
  });
});
keys = await newKeys();
server.listen(cfg.port || 0, '127.0.0.1', async () => {
  port = server.address().port;
  const issuer = `http://127.0.0.1:${port}${prefix}`;
  provider = buildProvider(issuer);
  await startInner();
  process.stdout.write(JSON.stringify({ port, issuer, kids: keys.map((k) => k.kid) }) + '\n');
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
