// zta-oidc-test-server: a local OpenID Connect server shaped like Microsoft Entra ID, for the
// integration tests of zta-identity-oidc. Started by `cargo xtask services`; never for production.
//
// Listens on 127.0.0.1:$ZTA_OIDC_TEST_PORT (default 17080); <base> = http://127.0.0.1:<port>.
// The first path segment {t} names a tenant ([A-Za-z0-9-]+; tests use a fresh GUID each). Every
// tenant gets its own state on first use: an RS256 keystore (oauth2-mock-server's OAuth2Issuer,
// one key to start with), registered clients, modes and counters. `organizations` and `common`
// share one keystore, as in Entra; their issuer is the template <base>/{tenantid}/v2.0.
//
// Entra-shaped endpoints:
//   GET  /{t}/v2.0/.well-known/openid-configuration   discovery, issuer <base>/{t}/v2.0
//   GET  /{t}/.well-known/openid-configuration        v1 discovery, issuer <base>/sts/{t}/
//   GET  /{t}/discovery/v2.0/keys, /{t}/discovery/keys  {"keys":[{kty,use,kid,n,e,issuer (v2 only)}]}
//   POST /{t}/oauth2/v2.0/token, /{t}/oauth2/token     client credentials grant (client_secret
//        in the body or HTTP Basic, or a private_key_jwt client assertion: RS256, ES256, EdDSA)
// Test control (JSON bodies):
//   GET  /__test/health                 {"server":"zta-oidc-test-server","version":1}
//   POST /__test/{t}/clients            register (replace) a client
//   POST /__test/{t}/sign               {"claims",header?,key?} -> {"token"}: RS256 over exactly
//                                       the claims; header members merged, null removes one
//   GET  /__test/{t}/public-key         {"kid","pem","jwk"} of the current key
//   POST /__test/{t}/rotate             {"drop_old"?} -> {"kid"}: a new current key
//   POST /__test/{t}/remove-key         {"kid"} -> {"removed"}: stop publishing a key
//   POST /__test/{t}/mode               {"jwks"?,"discovery"?,"token"?} failure modes
//   GET  /__test/{t}/stats              {"jwks_fetches","discovery_fetches","token_requests"}

import crypto from 'node:crypto';
import http from 'node:http';

import { OAuth2Issuer } from 'oauth2-mock-server';

const SERVER_NAME = 'zta-oidc-test-server';
const SERVER_VERSION = 1;
const HOST = '127.0.0.1';
const MAX_BODY = 1024 * 1024;
const HUGE_BYTES = 10 * 1024 * 1024;
const TENANT_RE = /^[A-Za-z0-9-]{1,128}$/;
const MULTI_TENANT = new Set(['organizations', 'common']);
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const JWKS_MODES = ['normal', 'down', 'hang', 'not_json', 'huge'];
const DISCOVERY_MODES = ['normal', 'down', 'hang', 'not_json', 'wrong_issuer'];
const TOKEN_MODES = ['normal', 'down', 'hang', 'not_json'];

let base = '';

// ---------------------------------------------------------------------------------------------
// Keystores and tenants

/** A keystore: the package's issuer (key material and token signing) plus what is published. */
async function newKeystore() {
  const issuer = new OAuth2Issuer();
  // buildToken insists on an issuer URL; every token sets its own `iss`, so this is a placeholder.
  issuer.url = `${base}/keystore`;
  const keystore = { issuer, published: [], current: '' };
  await addKey(keystore);
  return keystore;
}

/** Generates an RS256 key with an Entra-looking random kid; it becomes current and published. */
async function addKey(keystore) {
  const kid = crypto.randomBytes(20).toString('base64url');
  await keystore.issuer.keys.generate('RS256', { kid });
  keystore.published.push(kid);
  keystore.current = kid;
  return kid;
}

/** The private JWK of a key of the keystore, or undefined. */
function privateJwk(keystore, kid) {
  return keystore.issuer.keys.toJSON(true).find((k) => k.kid === kid);
}

function publicJwk(keystore, kid) {
  return keystore.issuer.keys.toJSON(false).find((k) => k.kid === kid);
}

let sharedKeystore;
const tenants = new Map();

/** The tenant's state, created on first use (a promise, so concurrent first requests share it). */
function tenant(name) {
  let state = tenants.get(name);
  if (state === undefined) {
    state = createTenant(name);
    tenants.set(name, state);
    // A failed creation must not poison the tenant forever.
    state.catch(() => tenants.delete(name));
  }
  return state;
}

async function createTenant(name) {
  let keystore;
  if (MULTI_TENANT.has(name)) {
    sharedKeystore ??= newKeystore();
    keystore = await sharedKeystore;
  } else {
    keystore = await newKeystore();
  }
  return {
    name,
    multi: MULTI_TENANT.has(name),
    keystore,
    clients: new Map(),
    objectIds: new Map(),
    modes: { jwks: 'normal', discovery: 'normal', token: 'normal' },
    stats: { jwks_fetches: 0, discovery_fetches: 0, token_requests: 0 },
  };
}

/** The tenant segment as it appears in issuers: the template for the multi-tenant names. */
function issuerTenant(state) {
  return state.multi ? '{tenantid}' : state.name;
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers

function sendJson(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

function sendError(res, status, error, description, headers) {
  const body = { error };
  if (description !== undefined) body.error_description = description;
  sendJson(res, status, body, headers);
}

class HttpError extends Error {
  constructor(status, error, description) {
    super(description ?? error);
    this.status = status;
    this.error = error;
    this.description = description;
  }
}

/** Reads the request body (up to MAX_BODY bytes) as a string. */
function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        const e = new HttpError(413, 'payload_too_large', `the body is over ${MAX_BODY} bytes`);
        e.headers = { connection: 'close' };
        reject(e);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (size <= MAX_BODY) resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', reject);
  });
}

/** A JSON object body; an empty body is `{}`. */
async function readJsonObject(req) {
  const text = await readBody(req);
  if (text.trim() === '') return {};
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'invalid_json', 'the body is not JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new HttpError(400, 'invalid_json', 'the body is not a JSON object');
  }
  return value;
}

/** Answers a request according to a failure mode; true when the mode took the request. */
function applyMode(mode, req, res) {
  switch (mode) {
    case 'down':
      sendError(res, 503, 'temporarily_unavailable', 'the test put this endpoint down');
      return true;
    case 'hang':
      hang(req, res);
      return true;
    case 'not_json':
      res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'no-store' });
      res.end('<html>not json</html>');
      return true;
    case 'huge':
      streamHugeJwks(res);
      return true;
    default:
      return false;
  }
}

const hanging = new Set();

/** Accepts the request and never answers it; the socket stays open until the client leaves. */
function hang(req, res) {
  hanging.add(res);
  req.resume();
  res.on('close', () => hanging.delete(res));
}

/** About 10 MB of a JWK set full of junk keys, streamed in chunks with backpressure. */
function streamHugeJwks(res) {
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  const junkModulus = crypto.randomBytes(256).toString('base64url');
  let written = 0;
  let index = 0;
  let closed = false;
  res.on('close', () => {
    closed = true;
  });
  const key = (i) =>
    JSON.stringify({ kty: 'RSA', use: 'sig', kid: `junk-${i}`, n: junkModulus, e: 'AQAB' });
  const pump = () => {
    while (!closed) {
      if (written >= HUGE_BYTES) {
        res.end(']}');
        return;
      }
      const parts = [];
      for (let j = 0; j < 200; j += 1, index += 1) parts.push(key(index));
      const chunk = (index === 200 ? '{"keys":[' : ',') + parts.join(',');
      written += chunk.length;
      if (!res.write(chunk)) {
        res.once('drain', pump);
        return;
      }
    }
  };
  pump();
}

// ---------------------------------------------------------------------------------------------
// Entra-shaped endpoints

function discoveryDocument(state, version, mode) {
  const t = state.name;
  const it = issuerTenant(state);
  let issuer = version === 2 ? `${base}/${it}/v2.0` : `${base}/sts/${it}/`;
  if (mode === 'wrong_issuer') {
    issuer = version === 2 ? `${base}/someone-else/v2.0` : `${base}/sts/someone-else/`;
  }
  const oauth = version === 2 ? `${base}/${t}/oauth2/v2.0` : `${base}/${t}/oauth2`;
  return {
    issuer,
    token_endpoint: `${oauth}/token`,
    jwks_uri: version === 2 ? `${base}/${t}/discovery/v2.0/keys` : `${base}/${t}/discovery/keys`,
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    subject_types_supported: ['pairwise'],
    token_endpoint_auth_methods_supported: [
      'client_secret_post',
      'private_key_jwt',
      'client_secret_basic',
    ],
    authorization_endpoint: `${oauth}/authorize`,
  };
}

function handleDiscovery(state, version, req, res) {
  state.stats.discovery_fetches += 1;
  const mode = state.modes.discovery;
  if (applyMode(mode, req, res)) return;
  sendJson(res, 200, discoveryDocument(state, version, mode));
}

// As Entra: the v2 key set gives each key the v2 issuer it signs for; the v1 key set does not.
function handleJwks(state, req, res, version) {
  state.stats.jwks_fetches += 1;
  if (applyMode(state.modes.jwks, req, res)) return;
  const issuer = `${base}/${issuerTenant(state)}/v2.0`;
  const keys = state.keystore.published
    .map((kid) => publicJwk(state.keystore, kid))
    .filter((k) => k !== undefined)
    .map((k) => {
      const key = { kty: k.kty, use: 'sig', kid: k.kid, n: k.n, e: k.e };
      return version === 2 ? { ...key, issuer } : key;
    });
  sendJson(res, 200, { keys });
}

function b64urlJson(buffer) {
  const text = Buffer.from(buffer, 'base64url').toString('utf8');
  const value = JSON.parse(text);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
  return value;
}

/** Verifies a private_key_jwt client assertion; returns the client id it asserts, or throws. */
function verifyAssertion(state, assertion, tokenEndpoint) {
  const bad = (why) => new HttpError(401, 'invalid_client', `client assertion: ${why}`);
  if (typeof assertion !== 'string') throw bad('missing');
  const parts = assertion.split('.');
  if (parts.length !== 3) throw bad('not a compact JWS');
  const [h, p, s] = parts;
  let header;
  let claims;
  try {
    header = b64urlJson(h);
    claims = b64urlJson(p);
  } catch {
    throw bad('header or payload is not a base64url JSON object');
  }
  const clientId = claims.iss;
  if (typeof clientId !== 'string' || claims.sub !== clientId) throw bad('iss and sub must both be the client id');
  const client = state.clients.get(clientId);
  if (client === undefined || client.publicKey === undefined) throw bad('no client with a public key has that id');
  const key = client.publicKey;
  const data = Buffer.from(`${h}.${p}`, 'ascii');
  const signature = Buffer.from(s, 'base64url');
  let ok = false;
  try {
    if (header.alg === 'RS256' && key.asymmetricKeyType === 'rsa') {
      ok = crypto.verify('sha256', data, key, signature);
    } else if (
      header.alg === 'ES256' &&
      key.asymmetricKeyType === 'ec' &&
      key.asymmetricKeyDetails?.namedCurve === 'prime256v1'
    ) {
      ok = crypto.verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
    } else if (header.alg === 'EdDSA' && key.asymmetricKeyType === 'ed25519') {
      ok = crypto.verify(null, data, key, signature);
    } else {
      throw bad(`alg ${JSON.stringify(header.alg)} does not fit the registered key`);
    }
  } catch (e) {
    if (e instanceof HttpError) throw e;
    ok = false;
  }
  if (!ok) throw bad('bad signature');
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!aud.includes(tokenEndpoint)) throw bad(`aud must be ${tokenEndpoint}`);
  const now = Math.floor(Date.now() / 1000);
  if (typeof claims.exp !== 'number' || claims.exp <= now) throw bad('exp missing or past');
  if (claims.nbf !== undefined && (typeof claims.nbf !== 'number' || claims.nbf > now + 5)) {
    throw bad('nbf in the future');
  }
  return { client, acr: '2' };
}

function secretsEqual(given, expected) {
  const a = crypto.createHash('sha256').update(String(given)).digest();
  const b = crypto.createHash('sha256').update(String(expected)).digest();
  return crypto.timingSafeEqual(a, b);
}

function formDecode(s) {
  return decodeURIComponent(s.replace(/\+/g, ' '));
}

/** Authenticates the client of a token request: secret (body or Basic) or client assertion. */
function authenticate(state, req, form, tokenEndpoint) {
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && /^basic /i.test(auth)) {
    const challenge = { 'www-authenticate': 'Basic realm="zta-oidc-test-server"' };
    const fail = (why) => {
      const e = new HttpError(401, 'invalid_client', why);
      e.headers = challenge;
      return e;
    };
    if (form.has('client_secret') || form.has('client_assertion')) {
      throw new HttpError(400, 'invalid_request', 'more than one client authentication method');
    }
    let id;
    let secret;
    try {
      const decoded = Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) throw new Error('no colon');
      id = formDecode(decoded.slice(0, colon));
      secret = formDecode(decoded.slice(colon + 1));
    } catch {
      throw fail('malformed Basic credentials');
    }
    if (form.has('client_id') && form.get('client_id') !== id) {
      throw fail('client_id differs from the Basic user');
    }
    const client = state.clients.get(id);
    if (client?.secret === undefined || !secretsEqual(secret, client.secret)) throw fail('bad client credentials');
    return { client, acr: '1' };
  }
  if (form.has('client_assertion') || form.has('client_assertion_type')) {
    if (form.has('client_secret')) {
      throw new HttpError(400, 'invalid_request', 'more than one client authentication method');
    }
    if (form.get('client_assertion_type') !== ASSERTION_TYPE) {
      throw new HttpError(401, 'invalid_client', `client_assertion_type must be ${ASSERTION_TYPE}`);
    }
    const result = verifyAssertion(state, form.get('client_assertion'), tokenEndpoint);
    if (form.has('client_id') && form.get('client_id') !== result.client.id) {
      throw new HttpError(401, 'invalid_client', 'client_id differs from the assertion');
    }
    return result;
  }
  if (form.has('client_secret')) {
    const client = state.clients.get(form.get('client_id') ?? '');
    if (client?.secret === undefined || !secretsEqual(form.get('client_secret'), client.secret)) {
      throw new HttpError(401, 'invalid_client', 'bad client credentials');
    }
    return { client, acr: '1' };
  }
  throw new HttpError(401, 'invalid_client', 'no client authentication');
}

async function handleToken(state, version, req, res) {
  state.stats.token_requests += 1;
  if (applyMode(state.modes.token, req, res)) return;
  const type = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  const body = await readBody(req);
  if (type !== 'application/x-www-form-urlencoded') {
    throw new HttpError(400, 'invalid_request', 'the body must be application/x-www-form-urlencoded');
  }
  const form = new URLSearchParams(body);
  if (form.get('grant_type') !== 'client_credentials') {
    throw new HttpError(400, 'unsupported_grant_type', 'only client_credentials is supported');
  }
  const tokenEndpoint =
    version === 2 ? `${base}/${state.name}/oauth2/v2.0/token` : `${base}/${state.name}/oauth2/token`;
  const { client, acr } = authenticate(state, req, form, tokenEndpoint);

  const wanted = `${client.resource}/.default`;
  const scope = form.get('scope');
  const resource = form.get('resource');
  const scopeOk = scope !== null ? scope === wanted : version === 1 && resource === client.resource;
  if (!scopeOk) throw new HttpError(400, 'invalid_scope', `the scope must be ${wanted}`);

  let tid = state.name;
  if (state.multi) {
    if (client.tenantId === undefined) {
      throw new HttpError(
        400,
        'invalid_request',
        `client credentials on /${state.name} need a client registered with tenant_id`,
      );
    }
    tid = client.tenantId;
  }
  const lifetime = client.lifetime;
  const kid = state.keystore.current;
  const token = await state.keystore.issuer.buildToken({
    kid,
    expiresIn: lifetime,
    scopesOrTransform: (header, payload) => {
      const iat = payload.iat;
      for (const name of Object.keys(payload)) delete payload[name];
      Object.assign(payload, {
        aud: client.audience,
        iss: client.version === 2 ? `${base}/${tid}/v2.0` : `${base}/sts/${tid}/`,
        iat,
        nbf: iat,
        exp: iat + lifetime,
      });
      if (client.version === 2) {
        Object.assign(payload, { azp: client.id, azpacr: acr });
      } else {
        Object.assign(payload, { appid: client.id, appidacr: acr });
      }
      Object.assign(payload, { idtyp: 'app', oid: client.objectId });
      if (client.roles.length > 0) payload.roles = [...client.roles];
      Object.assign(payload, {
        sub: client.objectId,
        tid,
        uti: crypto.randomBytes(16).toString('base64url'),
        ver: client.version === 2 ? '2.0' : '1.0',
      });
      Object.assign(payload, client.extraClaims);
      header.typ = 'JWT';
    },
  });
  sendJson(res, 200, {
    token_type: 'Bearer',
    expires_in: lifetime,
    ext_expires_in: lifetime,
    access_token: token,
  });
}

// ---------------------------------------------------------------------------------------------
// Test control

function optionalString(body, name) {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v === '') throw new HttpError(400, 'invalid_request', `${name} must be a non-empty string`);
  return v;
}

function requiredString(body, name) {
  const v = optionalString(body, name);
  if (v === undefined) throw new HttpError(400, 'invalid_request', `${name} is required`);
  return v;
}

async function registerClient(state, req, res) {
  const body = await readJsonObject(req);
  const id = requiredString(body, 'client_id');
  const resource = requiredString(body, 'resource');
  const secret = optionalString(body, 'client_secret');
  let publicKey;
  if (body.public_jwk !== undefined && body.public_jwk !== null) {
    try {
      publicKey = crypto.createPublicKey({ key: body.public_jwk, format: 'jwk' });
    } catch (e) {
      throw new HttpError(400, 'invalid_request', `public_jwk: ${e.message}`);
    }
  }
  if (secret === undefined && publicKey === undefined) {
    throw new HttpError(400, 'invalid_request', 'a client needs client_secret or public_jwk');
  }
  const roles = body.roles ?? [];
  if (!Array.isArray(roles) || roles.some((r) => typeof r !== 'string')) {
    throw new HttpError(400, 'invalid_request', 'roles must be an array of strings');
  }
  const version = body.version ?? 2;
  if (version !== 1 && version !== 2) throw new HttpError(400, 'invalid_request', 'version must be 1 or 2');
  const lifetime = body.lifetime ?? 3600;
  if (!Number.isInteger(lifetime)) throw new HttpError(400, 'invalid_request', 'lifetime must be an integer');
  const extraClaims = body.extra_claims ?? {};
  if (extraClaims === null || typeof extraClaims !== 'object' || Array.isArray(extraClaims)) {
    throw new HttpError(400, 'invalid_request', 'extra_claims must be an object');
  }
  const tenantId = optionalString(body, 'tenant_id');
  if (tenantId !== undefined && !TENANT_RE.test(tenantId)) {
    throw new HttpError(400, 'invalid_request', 'tenant_id must match [A-Za-z0-9-]+');
  }
  let objectId = optionalString(body, 'object_id');
  if (objectId === undefined) {
    // Stable per client id, also across re-registrations.
    if (!state.objectIds.has(id)) state.objectIds.set(id, crypto.randomUUID());
    objectId = state.objectIds.get(id);
  }
  state.clients.set(id, {
    id,
    secret,
    publicKey,
    resource,
    audience: body.audience ?? resource,
    roles,
    version,
    objectId,
    lifetime,
    extraClaims,
    tenantId,
  });
  sendJson(res, 200, {});
}

function keyOf(state, which) {
  const kid = which === undefined || which === null || which === 'current' ? state.keystore.current : which;
  const jwk = typeof kid === 'string' ? privateJwk(state.keystore, kid) : undefined;
  if (jwk === undefined) throw new HttpError(400, 'unknown_key', `no key ${JSON.stringify(which)}`);
  return jwk;
}

async function sign(state, req, res) {
  const body = await readJsonObject(req);
  if (!('claims' in body)) throw new HttpError(400, 'invalid_request', 'claims is required');
  const extra = body.header ?? {};
  if (extra === null || typeof extra !== 'object' || Array.isArray(extra)) {
    throw new HttpError(400, 'invalid_request', 'header must be an object');
  }
  const jwk = keyOf(state, body.key);
  const header = { alg: 'RS256', typ: 'JWT', kid: jwk.kid };
  for (const [name, value] of Object.entries(extra)) {
    if (value === null) delete header[name];
    else header[name] = value;
  }
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(
    JSON.stringify(body.claims),
  ).toString('base64url')}`;
  const privateKey = crypto.createPrivateKey({ key: jwk, format: 'jwk' });
  const signature = crypto.sign('sha256', Buffer.from(input, 'ascii'), privateKey);
  sendJson(res, 200, { token: `${input}.${signature.toString('base64url')}` });
}

function publicKey(state, url, res) {
  const jwk = keyOf(state, url.searchParams.get('kid') ?? undefined);
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  const pub = publicJwk(state.keystore, jwk.kid);
  sendJson(res, 200, {
    kid: jwk.kid,
    pem: key.export({ type: 'spki', format: 'pem' }),
    jwk: { kty: pub.kty, use: 'sig', kid: pub.kid, n: pub.n, e: pub.e },
  });
}

async function rotate(state, req, res) {
  const body = await readJsonObject(req);
  if (body.drop_old !== undefined && typeof body.drop_old !== 'boolean') {
    throw new HttpError(400, 'invalid_request', 'drop_old must be a boolean');
  }
  const kid = await addKey(state.keystore);
  if (body.drop_old === true) state.keystore.published = [kid];
  sendJson(res, 200, { kid });
}

async function removeKey(state, req, res) {
  const body = await readJsonObject(req);
  const kid = requiredString(body, 'kid');
  const before = state.keystore.published.length;
  state.keystore.published = state.keystore.published.filter((k) => k !== kid);
  sendJson(res, 200, { removed: state.keystore.published.length !== before });
}

async function setMode(state, req, res) {
  const body = await readJsonObject(req);
  const allowed = { jwks: JWKS_MODES, discovery: DISCOVERY_MODES, token: TOKEN_MODES };
  for (const [name, value] of Object.entries(body)) {
    const modes = allowed[name];
    if (modes === undefined) throw new HttpError(400, 'invalid_request', `unknown mode ${name}`);
    if (!modes.includes(value)) {
      throw new HttpError(400, 'invalid_request', `${name} must be one of ${modes.join(', ')}`);
    }
  }
  for (const [name, value] of Object.entries(body)) state.modes[name] = value;
  sendJson(res, 200, { ...state.modes });
}

// ---------------------------------------------------------------------------------------------
// Routing

function expectMethod(req, method) {
  if (req.method !== method) throw new HttpError(405, 'method_not_allowed', `use ${method}`);
}

async function route(req, res) {
  const url = new URL(req.url ?? '/', base);
  const segments = url.pathname.split('/').slice(1);
  const path = segments.join('/');

  if (path === '__test/health') {
    expectMethod(req, 'GET');
    sendJson(res, 200, { server: SERVER_NAME, version: SERVER_VERSION });
    return;
  }

  if (segments[0] === '__test' && segments.length === 3 && TENANT_RE.test(segments[1])) {
    const action = segments[2];
    const method = { 'public-key': 'GET', stats: 'GET' }[action] ?? 'POST';
    const handlers = {
      clients: (s) => registerClient(s, req, res),
      sign: (s) => sign(s, req, res),
      'public-key': (s) => publicKey(s, url, res),
      rotate: (s) => rotate(s, req, res),
      'remove-key': (s) => removeKey(s, req, res),
      mode: (s) => setMode(s, req, res),
      stats: (s) => sendJson(res, 200, { ...s.stats }),
    };
    const handler = handlers[action];
    if (handler !== undefined) {
      expectMethod(req, method);
      await handler(await tenant(segments[1]));
      return;
    }
  }

  if (segments.length >= 2 && TENANT_RE.test(segments[0])) {
    const rest = segments.slice(1).join('/');
    const entra = {
      'v2.0/.well-known/openid-configuration': ['GET', (s) => handleDiscovery(s, 2, req, res)],
      '.well-known/openid-configuration': ['GET', (s) => handleDiscovery(s, 1, req, res)],
      'discovery/v2.0/keys': ['GET', (s) => handleJwks(s, req, res, 2)],
      'discovery/keys': ['GET', (s) => handleJwks(s, req, res, 1)],
      'oauth2/v2.0/token': ['POST', (s) => handleToken(s, 2, req, res)],
      'oauth2/token': ['POST', (s) => handleToken(s, 1, req, res)],
    }[rest];
    if (entra !== undefined) {
      expectMethod(req, entra[0]);
      await entra[1](await tenant(segments[0]));
      return;
    }
  }

  throw new HttpError(404, 'not_found', `no endpoint ${url.pathname}`);
}

function handle(req, res) {
  route(req, res).catch((e) => {
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    if (e instanceof HttpError) {
      // Drain what is left of the request so the answer is not lost to a reset.
      req.resume();
      sendError(res, e.status, e.error, e.description, e.headers);
    } else {
      console.error(`${SERVER_NAME}: ${req.method} ${req.url}:`, e);
      sendError(res, 500, 'server_error', String(e?.message ?? e));
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Start

process.on('uncaughtException', (e) => console.error(`${SERVER_NAME}: uncaught:`, e));
process.on('unhandledRejection', (e) => console.error(`${SERVER_NAME}: unhandled rejection:`, e));

const portText = process.env.ZTA_OIDC_TEST_PORT ?? '17080';
const port = Number.parseInt(portText, 10);
if (!Number.isInteger(port) || port < 0 || port > 65535 || String(port) !== portText.trim()) {
  console.error(`${SERVER_NAME}: ZTA_OIDC_TEST_PORT must be a port number, not ${JSON.stringify(portText)}`);
  process.exit(2);
}

const server = http.createServer(handle);
server.on('clientError', (_err, socket) => {
  if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
  else socket.destroy();
});
server.on('error', (e) => {
  console.error(`${SERVER_NAME}: cannot listen on ${HOST}:${port}: ${e.message}`);
  process.exit(1);
});
server.listen(port, HOST, () => {
  base = `http://${HOST}:${server.address().port}`;
  console.log(`${SERVER_NAME} listening on ${base} (pid ${process.pid})`);
});

const stop = (signal) => {
  console.log(`${SERVER_NAME}: ${signal}, stopping`);
  for (const res of hanging) res.destroy();
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
