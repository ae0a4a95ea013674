#!/usr/bin/env node
// Test double for the push providers' far ends (src/push/*_test.cpp). No npm packages:
//   node receiver.js
// listens on 127.0.0.1 with two ports the OS picks and prints
//   "receiver listening http=<port> h2c=<port>"
// - http (HTTP/1.1): the webhook receiver (any path), the OAuth token endpoint (POST
//   /token), FCM (POST /v1/projects/<id>/messages:send) and the control endpoints (/_*).
// - h2c (HTTP/2 without TLS, prior knowledge): APNs (POST /3/device/<token>).
// - h2tls (HTTP/2 over TLS, on request: POST /_tls): APNs as well.
//
// Every request but the control ones is recorded (server, method, path, httpVersion,
// headers, body, t = arrival in ms, remotePort, and `jwt` when a JWT was found and a public
// key is configured: header, claims, verified, signature_bytes). Answers come from
// per-route scripts, else defaults.
//
// Control (on the http port, JSON bodies):
//   POST /_reset                     forget requests, scripts, tokens, config
//   POST /_script {key, responses}   queue answers for key "http /path", "h2c /path",
//                                    "http *" or "h2c *" (any path of that server); each
//                                    {status, headers?, body? (string or JSON), delay_ms?}
//   POST /_config {...}              token_expires_in (s, default 3600), fcm_auth (default
//                                    true: FCM answers 401 unless the bearer token was issued
//                                    here and has not expired), jwt_public_key (PEM)
//   POST /_revoke_tokens             every issued token becomes invalid
//   POST /_tls {key, cert}           starts (once) the h2tls server with this PEM key and
//                                    certificate; answers {port}
//   GET  /_requests[?server=h2c]     the recorded requests, oldest first
//   GET  /_stats                     {tokens_issued, requests}
'use strict';

const crypto = require('crypto');
const http = require('http');
const http2 = require('http2');

let requests = [];
let scripts = new Map();
let config = {};
let tokens = new Map(); // access token -> expiry (ms)
let issued = 0;
let tlsServer = null;

function reset() {
  requests = [];
  scripts = new Map();
  config = { token_expires_in: 3600, fcm_auth: true, jwt_public_key: null };
  tokens = new Map();
  issued = 0;
}
reset();

function b64urlDecode(s) {
  return Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

// {header, claims, verified} for a compact JWS, verified with config.jwt_public_key.
function inspectJwt(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return { error: 'not a compact JWS' };
  const out = {};
  try {
    out.header = JSON.parse(b64urlDecode(parts[0]).toString('utf8'));
    out.claims = JSON.parse(b64urlDecode(parts[1]).toString('utf8'));
  } catch (e) {
    return { error: 'bad JSON in JWT: ' + e.message };
  }
  const sig = b64urlDecode(parts[2]);
  out.signature_bytes = sig.length;
  const data = Buffer.from(parts[0] + '.' + parts[1]);
  try {
    if (out.header.alg === 'RS256') {
      out.verified = crypto.verify('sha256', data, config.jwt_public_key, sig);
    } else if (out.header.alg === 'ES256') {
      // JWS carries raw R||S (IEEE P1363), not DER.
      out.verified = crypto.verify(
        'sha256',
        data,
        { key: config.jwt_public_key, dsaEncoding: 'ieee-p1363' },
        sig,
      );
    } else {
      out.verified = false;
    }
  } catch (e) {
    out.verified = false;
    out.error = e.message;
  }
  return out;
}

function findJwt(server, path, headers, body) {
  if (server === 'http' && path === '/token') {
    return new URLSearchParams(body).get('assertion');
  }
  const auth = headers['authorization'] || '';
  const m = /^bearer (.+)$/i.exec(auth);
  return server !== 'http' && m ? m[1] : null;
}

function send(res, spec) {
  const write = () => {
    try {
      if (res.destroyed || (res.stream && res.stream.destroyed)) return;
      let body = spec.body === undefined ? '' : spec.body;
      const headers = Object.assign({}, spec.headers || {});
      if (typeof body !== 'string') {
        body = JSON.stringify(body);
        headers['content-type'] = headers['content-type'] || 'application/json';
      }
      res.writeHead(spec.status || 200, headers);
      res.end(body);
    } catch (e) {
      // The client gave up (timeout): nothing to answer.
    }
  };
  if (spec.delay_ms) setTimeout(write, spec.delay_ms);
  else write();
}

function scripted(server, path) {
  for (const key of [`${server} ${path}`, `${server} *`]) {
    const queue = scripts.get(key);
    if (queue && queue.length) return queue.shift();
  }
  return null;
}

function control(req, res, path, query, body) {
  const reply = (obj, status = 200) => send(res, { status, body: obj });
  let args = {};
  if (body) {
    try {
      args = JSON.parse(body);
    } catch (e) {
      return reply({ error: 'bad JSON' }, 400);
    }
  }
  if (req.method === 'POST' && path === '/_reset') {
    reset();
    return reply({});
  }
  if (req.method === 'POST' && path === '/_script') {
    if (!scripts.has(args.key)) scripts.set(args.key, []);
    scripts.get(args.key).push(...(args.responses || []));
    return reply({});
  }
  if (req.method === 'POST' && path === '/_config') {
    Object.assign(config, args);
    return reply({});
  }
  if (req.method === 'POST' && path === '/_revoke_tokens') {
    tokens.clear();
    return reply({});
  }
  if (req.method === 'POST' && path === '/_tls') {
    if (tlsServer) return reply({ port: tlsServer.address().port });
    tlsServer = http2.createSecureServer({ key: args.key, cert: args.cert }, (q, r) =>
      handle('h2tls', q, r),
    );
    tlsServer.on('sessionError', () => {});
    tlsServer.listen(0, '127.0.0.1', () => reply({ port: tlsServer.address().port }));
    return;
  }
  if (req.method === 'GET' && path === '/_requests') {
    const server = query.get('server');
    return reply(server ? requests.filter(r => r.server === server) : requests);
  }
  if (req.method === 'GET' && path === '/_stats') {
    return reply({ tokens_issued: issued, requests: requests.length });
  }
  return reply({ error: 'no such control endpoint' }, 404);
}

function handle(server, req, res) {
  const chunks = [];
  req.on('data', c => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url, 'http://receiver');
    const path = url.pathname;
    if (server === 'http' && path.startsWith('/_')) {
      return control(req, res, path, url.searchParams, body);
    }
    const headers = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (!k.startsWith(':')) headers[k] = v;
    }
    const record = {
      server,
      method: req.method,
      path,
      httpVersion: req.httpVersion,
      headers,
      body,
      t: Date.now(),
      // The client's port: the same one for requests that reused a connection.
      remotePort: server === 'http' ? req.socket.remotePort : req.stream.session.socket.remotePort,
    };
    const jwt = findJwt(server, path, headers, body);
    if (jwt && config.jwt_public_key) record.jwt = inspectJwt(jwt);
    requests.push(record);

    const script = scripted(server, path);
    if (server === 'http' && path === '/token') {
      if (script) return send(res, script);
      const token = `tok-${++issued}`;
      tokens.set(token, Date.now() + config.token_expires_in * 1000);
      return send(res, {
        status: 200,
        body: { access_token: token, expires_in: config.token_expires_in, token_type: 'Bearer' },
      });
    }
    if (server === 'http' && /^\/v1\/projects\/[^/]+\/messages:send$/.test(path)) {
      const m = /^Bearer (.+)$/.exec(headers['authorization'] || '');
      const expiry = m ? tokens.get(m[1]) : undefined;
      if (config.fcm_auth && !(expiry && expiry > Date.now())) {
        return send(res, {
          status: 401,
          body: {
            error: {
              code: 401,
              message: 'Request had invalid authentication credentials.',
              status: 'UNAUTHENTICATED',
            },
          },
        });
      }
      return send(res, script || { status: 200, body: { name: 'projects/p/messages/1' } });
    }
    if (server !== 'http') {
      return send(res, script || { status: 200, headers: { 'apns-id': crypto.randomUUID() } });
    }
    return send(res, script || { status: 200, body: {} });
  });
}

const h1 = http.createServer((req, res) => handle('http', req, res));
const h2 = http2.createServer((req, res) => handle('h2c', req, res));
h2.on('sessionError', () => {});

h1.listen(0, '127.0.0.1', () => {
  h2.listen(0, '127.0.0.1', () => {
    console.log(`receiver listening http=${h1.address().port} h2c=${h2.address().port}`);
  });
});
process.on('SIGTERM', () => process.exit(0));
