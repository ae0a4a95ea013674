// parley-client.js: the protocol layer of the Parley web client (docs/WEB.md).
// Standalone ES module, no DOM use: it runs in browsers, workers and node (pass `WebSocket`).
// Wire protocol: docs/PROTOCOL.md (parley.v1) and docs/MEDIA.md (HTTP API).

export const VERSION = '1.0.0';
export const SUBPROTOCOL = 'parley.v1';

// ---------------------------------------------------------------------------------------
// Errors

// Codes of the server are passed through (PROTOCOL.md §4); the client adds its own:
// connection_failed, timeout, disconnected, stopped, bad_response, invalid_argument,
// token_revoked, aborted, http_<status>.
export class ParleyError extends Error {
  constructor(code, message, extra = {}) {
    super(message || code);
    this.name = 'ParleyError';
    this.code = code;
    this.status = extra.status ?? 0;
    this.retryable = Boolean(extra.retryable);
    if (extra.retryAfterMs !== undefined) this.retryAfterMs = extra.retryAfterMs;
  }
}

const STATUS_CODES = {
  400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found',
  409: 'conflict', 413: 'too_large', 415: 'unsupported_type', 416: 'range_not_satisfiable',
  422: 'bad_request', 429: 'rate_limited', 503: 'unavailable',
};

function errorFromHttp(status, body) {
  const e = body && typeof body === 'object' && body.error;
  if (e && typeof e.code === 'string') {
    return new ParleyError(e.code, e.message || e.code, {
      status, retryable: status === 429 || status === 503 || status >= 500,
    });
  }
  const code = STATUS_CODES[status] || `http_${status}`;
  return new ParleyError(code, `HTTP ${status}`, { status, retryable: status === 429 || status >= 500 });
}

function errorFromFrame(frame) {
  const extra = { retryable: Boolean(frame.retryable) };
  if (typeof frame.retry_after_ms === 'number') extra.retryAfterMs = frame.retry_after_ms;
  return new ParleyError(String(frame.code || 'bad_response'), String(frame.message || frame.code || ''), extra);
}

// ---------------------------------------------------------------------------------------
// URLs

// `server` is "http(s)://host:port[/prefix]"; default: the page's origin.
export function httpBase(server) {
  let s = server;
  if (!s) {
    if (typeof globalThis.location === 'undefined') throw new ParleyError('invalid_argument', 'no server URL');
    s = globalThis.location.origin;
  }
  return String(s).replace(/\/+$/, '');
}

export function webSocketUrl(server) {
  const base = httpBase(server);
  if (/^wss?:\/\//.test(base)) return base.endsWith('/v1/ws') ? base : `${base}/v1/ws`;
  return base.replace(/^http/, 'ws') + '/v1/ws';
}

// ---------------------------------------------------------------------------------------
// HTTP: accounts, devices, media

async function httpJson(server, method, path, { token, body, timeoutMs = 15000, fetchImpl } = {}) {
  const f = fetchImpl || globalThis.fetch;
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await f(httpBase(server) + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      signal: typeof AbortSignal !== 'undefined' && AbortSignal.timeout ? AbortSignal.timeout(timeoutMs) : undefined,
    });
  } catch (err) {
    if (err && err.name === 'TimeoutError') throw new ParleyError('timeout', `${method} ${path}: no answer in ${timeoutMs} ms`, { retryable: true });
    throw new ParleyError('connection_failed', `${method} ${path}: ${err && err.message ? err.message : err}`, { retryable: true });
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!res.ok) throw errorFromHttp(res.status, data);
  if (data === null || typeof data !== 'object') throw new ParleyError('bad_response', `${method} ${path}: not JSON`, { status: res.status });
  return data;
}

export function register(server, username, password, options = {}) {
  return httpJson(server, 'POST', '/v1/register', { ...options, body: { username, password } });
}

// POST /v1/login: a new device, {user, device_id, token, pts}. `pts` is the user's update
// position just before the device was created: pass it as the new device's `cursor` and its
// first sync brings every message and receipt since the login (PROTOCOL.md §2).
export function login(server, username, password, options = {}) {
  const body = { username, password };
  if (options.deviceName) body.device_name = options.deviceName;
  return httpJson(server, 'POST', '/v1/login', { ...options, body });
}

// A new device of the same user, authorised by the token of an existing one (a second tab).
// The same answer as login(), `pts` included: the new device's first cursor.
export function linkDevice(server, token, options = {}) {
  const body = {};
  if (options.deviceName) body.device_name = options.deviceName;
  return httpJson(server, 'POST', '/v1/devices', { ...options, token, body });
}

// GET /v1/devices: {devices: [{device_id, name, created_at, current}]}.
export function listDevices(server, token, options = {}) {
  return httpJson(server, 'GET', '/v1/devices', { ...options, token });
}

// DELETE /v1/devices/{id}: revokes one of the user's devices (its sockets close with 4003).
export function revokeDevice(server, token, deviceId, options = {}) {
  return httpJson(server, 'DELETE', `/v1/devices/${encodeURIComponent(deviceId)}`, { ...options, token });
}

export function logout(server, token, options = {}) {
  return httpJson(server, 'POST', '/v1/logout', { ...options, token });
}

export function deleteAccount(server, token, password, options = {}) {
  return httpJson(server, 'DELETE', '/v1/account', { ...options, token, body: password ? { password } : {} });
}

export function signMediaUrl(server, token, mediaId, options = {}) {
  return httpJson(server, 'POST', `/v1/media/${encodeURIComponent(mediaId)}/url`, { ...options, token })
    .then((r) => ({ ...r, url: r.url && r.url.startsWith('/') ? httpBase(server) + r.url : r.url }));
}

// Uploads a Blob/File (or ArrayBuffer/Uint8Array): POST /v1/media, streamed by the browser.
// options: contentType, onProgress(sent, total), signal (AbortSignal), timeoutMs (no progress for
// that long fails with `timeout`). XMLHttpRequest gives upload progress; without it (node) fetch.
export function uploadMedia(server, token, data, options = {}) {
  const url = httpBase(server) + '/v1/media';
  const type = options.contentType ?? (data && data.type) ?? '';
  const XHR = options.XMLHttpRequest || globalThis.XMLHttpRequest;
  if (!XHR) {
    const headers = { Authorization: `Bearer ${token}` };
    if (type) headers['Content-Type'] = type;
    const f = options.fetchImpl || globalThis.fetch;
    return f(url, { method: 'POST', headers, body: data, signal: options.signal })
      .catch((err) => { throw new ParleyError(err && err.name === 'AbortError' ? 'aborted' : 'connection_failed', String(err && err.message || err)); })
      .then(async (res) => {
        let body = null;
        try { body = await res.json(); } catch { body = null; }
        if (!res.ok) throw errorFromHttp(res.status, body);
        return body;
      });
  }
  return new Promise((resolve, reject) => {
    const xhr = new XHR();
    const idleMs = options.timeoutMs ?? 60000;
    let idle = null;
    const touch = () => {
      clearTimeout(idle);
      idle = setTimeout(() => { xhr.abort(); finish(new ParleyError('timeout', `upload: no progress for ${idleMs} ms`, { retryable: true })); }, idleMs);
    };
    let done = false;
    const finish = (err, value) => {
      if (done) return;
      done = true;
      clearTimeout(idle);
      if (options.signal) options.signal.removeEventListener('abort', onAbort);
      if (err) reject(err); else resolve(value);
    };
    const onAbort = () => { xhr.abort(); finish(new ParleyError('aborted', 'upload cancelled')); };
    xhr.open('POST', url);
    xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    if (type) xhr.setRequestHeader('Content-Type', type);
    xhr.upload.onprogress = (e) => {
      touch();
      if (options.onProgress) options.onProgress(e.loaded, e.lengthComputable ? e.total : 0);
    };
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { body = null; }
      if (xhr.status >= 200 && xhr.status < 300 && body) finish(null, body);
      else finish(errorFromHttp(xhr.status, body));
    };
    // A 413 may arrive before the body is sent, and the browser then reports a network error.
    xhr.onerror = () => finish(xhr.status ? errorFromHttp(xhr.status, null)
      : new ParleyError('connection_failed', 'upload failed: the connection was closed', { retryable: true }));
    if (options.signal) {
      if (options.signal.aborted) { onAbort(); return; }
      options.signal.addEventListener('abort', onAbort);
    }
    touch();
    xhr.send(data);
  });
}

// GET /v1/media/{id} with the token: resolves to a Blob (make a blob: URL of it to show it).
export async function downloadMedia(server, token, mediaId, options = {}) {
  const f = options.fetchImpl || globalThis.fetch;
  let path = `/v1/media/${encodeURIComponent(mediaId)}`;
  if (options.name) path += `?name=${encodeURIComponent(options.name)}`;
  let res;
  try {
    res = await f(httpBase(server) + path, { headers: { Authorization: `Bearer ${token}` }, signal: options.signal });
  } catch (err) {
    throw new ParleyError('connection_failed', `download: ${err && err.message ? err.message : err}`, { retryable: true });
  }
  if (!res.ok) {
    let body = null;
    try { body = await res.json(); } catch { body = null; }
    throw errorFromHttp(res.status, body);
  }
  return res.blob();
}

// ---------------------------------------------------------------------------------------
// Small pure helpers (exported for tests and for apps that keep their own state)

// Reconnect delay: d = min(max, min * multiplier^attempt), then d * (1 - jitter * u), u in [0,1).
export function backoffDelay(policy, attempt, u = Math.random()) {
  const p = { minMs: 250, maxMs: 30000, multiplier: 2, jitter: 0.5, ...policy };
  const d = Math.min(p.maxMs, p.minMs * Math.pow(p.multiplier, Math.max(0, attempt)));
  return Math.max(p.minMs * (1 - p.jitter), Math.min(p.maxMs, d * (1 - p.jitter * u)));
}

export function randomId() {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

// The pts rule of PROTOCOL.md §3.4 without sockets: feed updates in any order, `apply` sees
// each once, in pts order; `needSync` is called when a gap is seen.
export class UpdateSequencer {
  constructor({ cursor = null, apply, needSync }) {
    this.cursor = cursor;          // null: a new device, waiting for its snapshot
    this._held = new Map();        // pts -> update, beyond a gap
    this._apply = apply;
    this._needSync = needSync;
  }

  push(update) {
    if (typeof update.pts !== 'number') return;
    if (this.cursor !== null && update.pts <= this.cursor) return;
    if (this.cursor === null || update.pts > this.cursor + 1) {
      this._held.set(update.pts, update);
      if (this.cursor !== null) this._needSync();
      return;
    }
    this._step(update);
    this.drain();
  }

  // After a snapshot (or a cursor reset): everything up to `pts` is known.
  reset(pts) {
    this.cursor = pts;
    this.drain();
  }

  // Applies held updates that are now next; drops those already covered.
  drain() {
    if (this.cursor === null) return;
    for (const pts of [...this._held.keys()]) if (pts <= this.cursor) this._held.delete(pts);
    while (this._held.has(this.cursor + 1)) {
      const u = this._held.get(this.cursor + 1);
      this._held.delete(this.cursor + 1);
      this._step(u);
    }
  }

  get hasGap() { return this._held.size > 0; }

  _step(update) {
    this.cursor = update.pts;
    this._apply(update);
  }
}

// ---------------------------------------------------------------------------------------
// The WebSocket client

const DEFAULTS = {
  requestTimeoutMs: 10000,   // one attempt of one request
  readTimeoutMs: 30000,      // idempotent requests (history, chats, marks...), across retries
  sendTimeoutMs: 60000,      // a send, across retries and reconnects
  connectTimeoutMs: 10000,   // open + auth
  pingIntervalMs: 20000,     // ping when nothing was received for this long
  pingTimeoutMs: 10000,      // and drop the connection if still nothing after this
  syncPageLimit: 100,
  autoDelivered: true,
  autoDeliveredDelayMs: 100,
  startAtFirstAuth: false,   // no cursor: the first auth answer's pts is the cursor (a JWT's new device)
  backoff: { minMs: 250, maxMs: 30000, multiplier: 2, jitter: 0.5 },
};

// Requests that may be repeated without changing the outcome: resent after a reconnect.
const IDEMPOTENT = new Set(['history', 'chats', 'sync', 'ping', 'mark_read', 'mark_delivered',
  'presence_subscribe', 'presence_unsubscribe', 'settings', 'group_info']);

const FINAL_CLOSES = { 4001: 'unauthorized', 4003: 'token_revoked' };

function targetFields(target, userKey) {
  if (typeof target === 'number') return { chat_id: target };
  if (typeof target === 'string' && target) return { [userKey]: target };
  if (target && typeof target === 'object') {
    if (typeof target.chatId === 'number') return { chat_id: target.chatId };
    if (typeof target.chat_id === 'number') return { chat_id: target.chat_id };
    if (typeof target.user === 'string' && target.user) return { [userKey]: target.user };
  }
  throw new ParleyError('invalid_argument', 'a target is a user id (string) or a chat id (number)');
}

export class ParleyClient {
  constructor(options = {}) {
    if (!options.token) throw new ParleyError('invalid_argument', 'token is required');
    this.options = { ...DEFAULTS, ...options, backoff: { ...DEFAULTS.backoff, ...(options.backoff || {}) } };
    this._WebSocket = options.WebSocket || globalThis.WebSocket;
    if (!this._WebSocket) throw new ParleyError('invalid_argument', 'no WebSocket implementation: pass options.WebSocket');
    this.server = httpBase(options.server);
    this._listeners = new Map();
    this._state = 'idle';
    this.user = null;
    this.deviceId = null;
    this._ws = null;
    this._gen = 0;                 // connection generation: events of older sockets are ignored
    this._nextId = 1;
    this._ops = new Set();         // every unfinished public request
    this._byId = new Map();        // wire id -> op or internal waiter
    this._attempt = 0;
    this._timers = new Map();
    this._authed = false;
    this._lastRx = 0;
    this._chatMeta = new Map();    // chat_id -> {kind:'direct', peer} | {kind:'group', large}
    this._large = new Map();       // large group chat_id -> last seq applied
    this._snapshotSeq = new Map(); // chat_id -> last seq a snapshot showed (de-duplication)
    this._presence = new Set();    // users whose subscription was acknowledged
    this._delivered = new Map();   // chat_id -> {seq, own}: highest applied message
    this._deliveredSent = new Map();
    this._deliverTimer = null;
    this._syncing = null;
    this._syncAgain = false;
    this._everAuthed = false;
    const cursor = typeof options.cursor === 'number' ? options.cursor : null;
    this._seq = new UpdateSequencer({
      cursor,
      apply: (u) => this._applyUpdate(u),
      needSync: () => this._requestSync(),
    });
  }

  // --- events ---------------------------------------------------------------------------

  on(event, fn) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(fn);
    return () => this.off(event, fn);
  }

  off(event, fn) { this._listeners.get(event)?.delete(fn); }

  once(event, fn) {
    const off = this.on(event, (...args) => { off(); fn(...args); });
    return off;
  }

  _emit(event, ...args) {
    const set = this._listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try { fn(...args); } catch (err) {
        if (event !== 'error') this._emit('error', new ParleyError('callback', `${event} listener threw: ${err && err.message}`));
        else if (typeof console !== 'undefined') console.error(err);
      }
    }
  }

  // --- lifecycle ------------------------------------------------------------------------

  get state() { return this._state; }
  get cursor() { return this._seq.cursor; }

  start() {
    if (this._state !== 'idle') return;
    this._connect();
  }

  // Closes with 1000 and fails everything unfinished with `stopped`. Final.
  stop() {
    if (this._state === 'closed') return;
    this._flushDelivered();
    this._final(new ParleyError('stopped', 'the client was stopped'));
  }

  // Drops the current connection as if the network had cut it; reconnects with backoff.
  drop(reason = 'dropped') {
    if (this._state === 'closed' || this._state === 'idle') return;
    this._lost(new ParleyError('disconnected', reason), this._gen);
  }

  // Reconnects at once (e.g. the browser says the network is back), resetting the backoff.
  reconnectNow() {
    if (this._state === 'closed' || this._state === 'idle') return;
    this._attempt = 0;
    if (this._state === 'waiting') {
      this._clearTimer('retry');
      this._connect();
    }
  }

  _setState(state, info = {}) {
    this._state = state;
    this._emit('state', { state, ...info });
  }

  // Named timers of the connection (connect, heartbeat, retry): one of each at a time.
  _timer(name, ms, fn) {
    this._clearTimer(name);
    this._timers.set(name, setTimeout(() => { this._timers.delete(name); fn(); }, ms));
  }

  _clearTimer(name) {
    clearTimeout(this._timers.get(name));
    this._timers.delete(name);
  }

  _connect() {
    const gen = ++this._gen;
    this._authed = false;
    this._setState('connecting', { attempt: this._attempt });
    let ws;
    try {
      ws = new this._WebSocket(webSocketUrl(this.server), SUBPROTOCOL);
    } catch (err) {
      this._lost(new ParleyError('connection_failed', String(err && err.message || err)), gen);
      return;
    }
    this._ws = ws;
    this._timer('connect', this.options.connectTimeoutMs, () =>
      this._lost(new ParleyError('timeout', 'connect and auth took too long'), gen));
    ws.onopen = () => {
      if (gen !== this._gen) return;
      this._lastRx = Date.now();
      this._authenticate(gen);
    };
    ws.onmessage = (e) => {
      if (gen !== this._gen) return;
      this._lastRx = Date.now();
      // The client asks for batching at auth: a message may hold several frames, one per
      // line (PROTOCOL.md §3.1); a server frame never contains a raw newline.
      const text = typeof e.data === 'string' ? e.data : String(e.data);
      for (const line of text.split('\n')) if (line) this._onFrame(line);
    };
    ws.onclose = (e) => {
      if (gen !== this._gen) return;
      const finalCode = FINAL_CLOSES[e.code];
      if (finalCode) {
        this._final(new ParleyError(finalCode, finalCode === 'token_revoked' ? 'this device was logged out' : 'authentication failed'), e.code);
        return;
      }
      this._lost(new ParleyError('disconnected', `connection closed (${e.code}${e.reason ? ' ' + e.reason : ''})`), gen, e.code);
    };
    ws.onerror = () => {};
  }

  async _authenticate(gen) {
    let result;
    try {
      result = await this._raw('auth', { token: this.options.token, batch: true }, this.options.connectTimeoutMs);
    } catch (err) {
      if (gen !== this._gen) return;
      if (err.code === 'unauthorized' || err.code === 'token_expired') this._final(err, 4001);
      else this._lost(err, gen);
      return;
    }
    if (gen !== this._gen) return;
    this._clearTimer('connect');
    this._authed = true;
    this._attempt = 0;
    this.user = result.user;
    this.deviceId = result.device_id;
    if (this._seq.cursor !== null && result.pts < this._seq.cursor) {
      // The server's data is older than our cursor (it was reset): start over.
      this._emit('error', new ParleyError('cursor_reset', `cursor ${this._seq.cursor} is ahead of the server (${result.pts})`));
      this._seq = new UpdateSequencer({ cursor: null, apply: (u) => this._applyUpdate(u), needSync: () => this._requestSync() });
    } else if (this._seq.cursor === null && this.options.startAtFirstAuth && !this._everAuthed && typeof result.pts === 'number') {
      // A device created by this auth (a JWT's first use): the answer's pts is its first
      // cursor, so everything after it arrives as updates, without a snapshot.
      this._seq.reset(result.pts);
      this._emit('cursor', this._seq.cursor);
    }
    this._everAuthed = true;
    this._setState('online', { user: result.user, deviceId: result.device_id, pts: result.pts });
    this._heartbeat(gen);
    for (const op of this._ops) if (!op.wireId && !op.retryTimer) this._transmit(op);
    this._afterAuth(gen).catch((err) => {
      if (gen === this._gen && err.code !== 'disconnected') this._emit('error', err);
    });
  }

  async _afterAuth(gen) {
    if (this._presence.size) {
      const r = await this._raw('presence_subscribe', { users: [...this._presence] });
      if (gen !== this._gen) return;
      this._emit('presence', r.presence || []);
    }
    await this._requestSync();
    if (gen !== this._gen) return;
    await this._catchUpLarge(gen);
    if (gen !== this._gen) return;
    this._emit('synced', { pts: this._seq.cursor });
  }

  _heartbeat(gen) {
    const { pingIntervalMs, pingTimeoutMs } = this.options;
    const tick = () => {
      if (gen !== this._gen || !this._authed) return;
      const quiet = Date.now() - this._lastRx;
      if (quiet >= pingIntervalMs + pingTimeoutMs) {
        this._lost(new ParleyError('timeout', `no answer from the server for ${quiet} ms`), gen);
        return;
      }
      if (quiet >= pingIntervalMs) this._raw('ping', {}, pingTimeoutMs).catch(() => {});
      this._timer('heartbeat', Math.max(500, Math.min(pingIntervalMs, pingTimeoutMs) / 2), tick);
    };
    this._timer('heartbeat', Math.max(500, Math.min(pingIntervalMs, pingTimeoutMs) / 2), tick);
  }

  // The connection is gone: in-flight once-only requests fail, the rest wait for the next one.
  _lost(err, gen, closeCode) {
    if (gen !== this._gen || this._state === 'closed') return;
    this._gen++;
    this._authed = false;
    this._clearTimer('connect');
    this._clearTimer('heartbeat');
    if (this._ws) {
      const ws = this._ws;
      ws.onopen = ws.onmessage = ws.onclose = null;
      try { ws.close(1000); } catch { /* already closed */ }
      this._ws = null;
    }
    for (const [id, w] of this._byId) {
      this._byId.delete(id);
      if (w.internal) { clearTimeout(w.timer); w.reject(new ParleyError('disconnected', err.message)); continue; }
      const op = w;
      clearTimeout(op.timer);
      op.wireId = 0;
      if (op.policy === 'once') this._finishOp(op, new ParleyError('disconnected', `the connection closed before the answer: ${err.message}`));
    }
    const delay = Math.round(backoffDelay(this.options.backoff, this._attempt++));
    this._setState('waiting', { reason: err.message, code: err.code, closeCode, retryInMs: delay });
    this._timer('retry', delay, () => this._connect());
  }

  _final(err, closeCode) {
    this._gen++;
    this._authed = false;
    this._closedError = err;
    for (const t of this._timers.values()) clearTimeout(t);
    this._timers.clear();
    clearTimeout(this._deliverTimer);
    if (this._ws) {
      const ws = this._ws;
      ws.onopen = ws.onmessage = ws.onclose = null;
      try { ws.close(1000); } catch { /* already closed */ }
      this._ws = null;
    }
    for (const [, w] of this._byId) if (w.internal) { clearTimeout(w.timer); w.reject(err); }
    this._byId.clear();
    for (const op of [...this._ops]) this._finishOp(op, err);
    this._setState('closed', { reason: err.message, code: err.code, closeCode });
  }

  // --- frames ---------------------------------------------------------------------------

  _sendFrame(frame) {
    try {
      this._ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  // Internal request on the current connection only (auth, sync...): no queue, no retry.
  _raw(type, fields = {}, timeoutMs = this.options.requestTimeoutMs) {
    return new Promise((resolve, reject) => {
      if (!this._ws || (type !== 'auth' && !this._authed)) {
        reject(new ParleyError('disconnected', 'not connected'));
        return;
      }
      const id = this._nextId++;
      const w = { internal: true, resolve, reject };
      w.timer = setTimeout(() => {
        this._byId.delete(id);
        reject(new ParleyError('timeout', `${type}: no answer in ${timeoutMs} ms`, { retryable: true }));
      }, timeoutMs);
      this._byId.set(id, w);
      if (!this._sendFrame({ type, id, ...fields })) {
        clearTimeout(w.timer);
        this._byId.delete(id);
        reject(new ParleyError('disconnected', 'not connected'));
      }
    });
  }

  _onFrame(text) {
    let f;
    try { f = JSON.parse(text); } catch {
      this._emit('error', new ParleyError('bad_response', 'a frame that is not JSON'));
      return;
    }
    if (!f || typeof f !== 'object') return;
    if (f.type === 'ok' || f.type === 'error') {
      const w = this._byId.get(f.id);
      if (!w) return; // a late answer of a request given up on
      this._byId.delete(f.id);
      clearTimeout(w.timer);
      if (w.internal) {
        if (f.type === 'ok') w.resolve(f.result || {}); else w.reject(errorFromFrame(f));
      } else {
        this._onAnswer(w, f);
      }
      return;
    }
    switch (f.type) {
      case 'message':
        if (!f.message) return;
        if (typeof f.pts === 'number') this._seq.push({ pts: f.pts, kind: 'message', message: f.message, source: 'push' });
        else this._onLargeMessage(f.message, 'push');
        break;
      case 'receipt':
        if (!f.receipt) return;
        if (typeof f.pts === 'number') this._seq.push({ pts: f.pts, kind: f.receipt.kind, receipt: f.receipt, source: 'push' });
        else this._emit('receipt', f.receipt, { pts: 0, source: 'push' });
        break;
      case 'typing':
        this._emit('typing', { chat_id: f.chat_id, user: f.user, state: f.state, expires_ms: f.expires_ms });
        break;
      case 'presence':
        this._emit('presence', Array.isArray(f.presence) ? f.presence : []);
        break;
      default:
        break; // unknown pushes are ignored (PROTOCOL.md)
    }
  }

  // --- public requests ------------------------------------------------------------------

  // Any request. policy: 'send' (retried with the same frame until sendTimeoutMs),
  // 'idempotent' (resent after reconnects until readTimeoutMs), 'once' (fails with
  // `disconnected` if the connection closes before the answer).
  // onlineOnly: fail at once with `disconnected` instead of waiting for the connection.
  request(type, fields = {}, { policy, timeoutMs, onlineOnly } = {}) {
    if (this._state === 'closed') return Promise.reject(this._closedError || new ParleyError('stopped', 'the client is closed'));
    if (onlineOnly && !this._authed) return Promise.reject(new ParleyError('disconnected', 'not connected'));
    const p = policy || (IDEMPOTENT.has(type) ? 'idempotent' : 'once');
    const total = timeoutMs ?? (p === 'send' ? this.options.sendTimeoutMs : p === 'idempotent' ? this.options.readTimeoutMs : this.options.requestTimeoutMs);
    return new Promise((resolve, reject) => {
      const op = { type, fields, policy: p, resolve, reject, wireId: 0, timer: null, retryTimer: null };
      op.deadline = setTimeout(() => this._finishOp(op, new ParleyError('timeout', `${type}: no answer in ${total} ms`, { retryable: true })), total);
      this._ops.add(op);
      if (this._authed) this._transmit(op);
    });
  }

  _transmit(op) {
    op.retryTimer = null;
    if (!this._authed || !this._ops.has(op)) return;
    const id = this._nextId++;
    op.wireId = id;
    this._byId.set(id, op);
    op.timer = setTimeout(() => {
      this._byId.delete(id);
      op.wireId = 0;
      if (op.policy === 'once') this._finishOp(op, new ParleyError('timeout', `${op.type}: no answer in ${this.options.requestTimeoutMs} ms`, { retryable: true }));
      else this._transmit(op); // same client_msg_id: the server answers a repeat with the original
    }, this.options.requestTimeoutMs);
    if (!this._sendFrame({ type: op.type, id, ...op.fields })) {
      clearTimeout(op.timer);
      this._byId.delete(id);
      op.wireId = 0;
    }
  }

  _onAnswer(op, f) {
    op.wireId = 0;
    if (f.type === 'ok') { this._finishOp(op, null, f.result || {}); return; }
    const err = errorFromFrame(f);
    if (err.retryable && op.policy !== 'once') {
      const wait = err.retryAfterMs ?? 500;
      op.retryTimer = setTimeout(() => this._transmit(op), wait);
      return;
    }
    this._finishOp(op, err);
  }

  _finishOp(op, err, result) {
    if (!this._ops.delete(op)) return;
    clearTimeout(op.deadline);
    clearTimeout(op.timer);
    clearTimeout(op.retryTimer);
    if (op.wireId) this._byId.delete(op.wireId);
    if (err) op.reject(err); else op.resolve(result);
  }

  // Text message to a user (string) or chat (number). Idempotent: retried with the same
  // client_msg_id until acknowledged or sendTimeoutMs. Resolves to the server's ack.
  send(target, body, options = {}) {
    if (typeof body !== 'string' || body === '') return Promise.reject(new ParleyError('invalid_argument', 'empty message'));
    return this._send(target, { body }, options);
  }

  // Media message: {id, name?, caption?} of an object uploaded with uploadMedia().
  sendMedia(target, media, options = {}) {
    if (!media || !media.id) return Promise.reject(new ParleyError('invalid_argument', 'media.id is required'));
    const m = { id: media.id };
    if (media.name) m.name = media.name;
    if (media.caption) m.caption = media.caption;
    return this._send(target, { media: m }, options);
  }

  async _send(target, content, options) {
    const fields = targetFields(target, 'to');
    const clientMsgId = options.clientMsgId || randomId();
    if (clientMsgId.length > 64) throw new ParleyError('invalid_argument', 'client_msg_id over 64 bytes');
    const ack = await this.request('send', { ...fields, client_msg_id: clientMsgId, ...content }, { policy: 'send', timeoutMs: options.timeoutMs });
    ack.client_msg_id = clientMsgId;
    this._onOwnAck(fields, content, ack);
    return ack;
  }

  history(target, { beforeSeq, afterSeq, limit = 50 } = {}) {
    const fields = { ...targetFields(target, 'with'), limit };
    if (afterSeq !== undefined) fields.after_seq = afterSeq;
    else if (beforeSeq !== undefined) fields.before_seq = beforeSeq;
    return this.request('history', fields).then((r) => {
      for (const m of r.messages || []) this._learnChat(m);
      return r;
    });
  }

  // One page of the chat list; `cursor`: the `next_cursor` of the previous page (has_more).
  chats({ limit = 100, cursor } = {}) {
    const fields = { limit };
    if (cursor) fields.cursor = cursor;
    return this.request('chats', fields).then((r) => {
      for (const c of r.chats || []) this._learnChatSummary(c);
      return r;
    });
  }

  // A raw sync page; does not move the client's own cursor.
  sync(pts, limit = this.options.syncPageLimit) {
    const fields = { limit };
    if (typeof pts === 'number') fields.pts = pts;
    return this.request('sync', fields);
  }

  ping() { return this.request('ping').then((r) => r.ts); }

  markRead(target, seq) {
    const fields = targetFields(target, 'with');
    if (seq !== undefined) fields.seq = seq;
    return this.request('mark_read', fields).then((r) => {
      if (r.pts > 0 && this._seq.cursor !== null && r.pts > this._seq.cursor) this._requestSync();
      return r;
    });
  }

  markDelivered(target, seq) {
    return this.request('mark_delivered', { ...targetFields(target, 'with'), seq });
  }

  typing(target, state = 'start') {
    return this.request('typing', { ...targetFields(target, 'with'), state }, { policy: 'once', onlineOnly: true })
      .then((r) => Boolean(r.forwarded));
  }

  async presenceSubscribe(users) {
    const list = [...new Set(users)].filter((u) => typeof u === 'string' && u);
    if (!list.length) return [];
    const r = await this.request('presence_subscribe', { users: list });
    for (const u of list) this._presence.add(u);
    return r.presence || [];
  }

  async presenceUnsubscribe(users) {
    if (users === 'all') {
      this._presence.clear();
      await this.request('presence_unsubscribe', { all: true });
      return;
    }
    for (const u of users) this._presence.delete(u);
    if (users.length) await this.request('presence_unsubscribe', { users });
  }

  settings(fields = {}) { return this.request('settings', fields); }

  // Groups (PROTOCOL.md §3.9). Each resolves to {chat, seq, message_id, ts, pts}.
  groupCreate(name, members = []) { return this._group('group_create', { name, members }); }
  groupInfo(chatId) { return this.request('group_info', { chat_id: chatId }).then((r) => r.chat); }
  groupRename(chatId, name) { return this._group('group_rename', { chat_id: chatId, name }); }
  groupAdd(chatId, users) { return this._group('group_add', { chat_id: chatId, users }); }
  groupRemove(chatId, user) { return this._group('group_remove', { chat_id: chatId, user }); }
  groupPromote(chatId, user) { return this._group('group_promote', { chat_id: chatId, user }); }
  groupDemote(chatId, user) { return this._group('group_demote', { chat_id: chatId, user }); }
  groupLeave(chatId) { return this._group('group_leave', { chat_id: chatId }); }
  groupTransfer(chatId, user) { return this._group('group_transfer', { chat_id: chatId, user }); }
  groupDelete(chatId) { return this._group('group_delete', { chat_id: chatId }); }
  groupSettings(chatId, { fullHistory }) { return this._group('group_settings', { chat_id: chatId, full_history: fullHistory }); }

  async _group(type, fields) {
    const r = await this.request(type, fields, { policy: 'once' });
    if (r.chat) this._chatMeta.set(r.chat.chat_id, { kind: 'group', large: Boolean(r.chat.large) });
    // The event is in our log at r.pts, but this connection gets no push of it: sync.
    if (r.pts > 0 && this._seq.cursor !== null && r.pts > this._seq.cursor) this._requestSync();
    if (r.chat && r.chat.large && r.seq) this._catchUpChat(r.chat.chat_id).catch(() => {});
    return r;
  }

  // HTTP helpers bound to this client's server and token.
  uploadMedia(data, options) { return uploadMedia(this.server, this.options.token, data, options); }
  downloadMedia(mediaId, options) { return downloadMedia(this.server, this.options.token, mediaId, options); }
  signMediaUrl(mediaId) { return signMediaUrl(this.server, this.options.token, mediaId); }

  // --- the update log -------------------------------------------------------------------

  // One sync loop per connection; a request while it runs makes it go round once more.
  _requestSync() {
    if (this._syncing && this._syncingGen === this._gen) { this._syncAgain = true; return this._syncing; }
    const run = this._syncLoop();
    this._syncing = run;
    this._syncingGen = this._gen;
    run.finally(() => { if (this._syncing === run) this._syncing = null; });
    return run;
  }

  async _syncLoop() {
    const gen = this._gen;
    try {
      do {
        this._syncAgain = false;
        for (;;) {
          if (gen !== this._gen || !this._authed) return;
          const fields = { limit: this.options.syncPageLimit };
          if (this._seq.cursor !== null) fields.pts = this._seq.cursor;
          const r = await this._raw('sync', fields);
          if (gen !== this._gen) return;
          if (r.snapshot) {
            this._applySnapshot(r);
          } else {
            for (const u of r.updates || []) this._seq.push({ ...u, source: 'sync' });
            // Updates of kinds we skip still move the cursor: the log has no holes.
            if (typeof r.pts === 'number' && this._seq.cursor !== null && r.pts > this._seq.cursor && !(r.updates || []).length) this._seq.reset(r.pts);
          }
          if (!r.has_more) break;
        }
        this._seq.drain();
      } while (this._syncAgain || this._seq.hasGap);
    } catch (err) {
      if (err.code !== 'disconnected' && gen === this._gen) this._emit('error', new ParleyError(err.code, `sync failed: ${err.message}`));
    }
  }

  _applySnapshot(r) {
    for (const chat of r.chats || []) {
      if (chat.kind === 'direct') this._chatMeta.set(chat.chat_id, { kind: 'direct', peer: chat.peer });
      else this._chatMeta.set(chat.chat_id, { kind: 'group', large: Boolean(chat.large) });
      const last = (chat.messages || []).reduce((a, m) => Math.max(a, m.seq), 0);
      this._snapshotSeq.set(chat.chat_id, last);
      for (const m of chat.messages || []) if (m.sender !== this.user) this._noteDelivered(m.chat_id, m.seq, false);
      if (chat.large) this._large.set(chat.chat_id, Math.max(this._large.get(chat.chat_id) || 0, last));
    }
    this._emit('snapshot', r);
    this._seq.reset(r.pts);
    this._emit('cursor', this._seq.cursor);
  }

  _applyUpdate(u) {
    if (u.kind === 'message' && u.message) {
      const m = u.message;
      this._learnChat(m);
      const shown = this._snapshotSeq.get(m.chat_id);
      if (shown === undefined || m.seq > shown) {
        this._emit('message', m, { pts: u.pts, source: u.source || 'push' });
        this._noteDelivered(m.chat_id, m.seq, m.sender === this.user);
      }
    } else if (u.receipt) {
      this._emit('receipt', u.receipt, { pts: u.pts, source: u.source || 'push' });
    }
    this._emit('cursor', u.pts);
  }

  _learnChat(m) {
    if (m.to) {
      this._chatMeta.set(m.chat_id, { kind: 'direct', peer: m.sender === this.user ? m.to : m.sender });
    } else if (!this._chatMeta.has(m.chat_id) || m.kind === 'event') {
      const prev = this._chatMeta.get(m.chat_id);
      const large = Boolean((prev && prev.large) || (m.event && m.event.large));
      this._chatMeta.set(m.chat_id, { kind: 'group', large });
      if (m.event && m.event.large && !this._large.has(m.chat_id)) this._large.set(m.chat_id, m.seq);
    }
  }

  _learnChatSummary(c) {
    if (c.kind === 'direct') this._chatMeta.set(c.chat_id, { kind: 'direct', peer: c.peer });
    else this._chatMeta.set(c.chat_id, { kind: 'group', large: Boolean(c.large) });
    if (c.large && c.member !== false && !this._large.has(c.chat_id)) this._large.set(c.chat_id, c.last_seq);
  }

  // A connection gets no push of its own sends: rebuild the message from request + ack.
  _onOwnAck(fields, content, ack) {
    const meta = fields.chat_id ? this._chatMeta.get(fields.chat_id) : { kind: 'direct', peer: fields.to };
    if (meta && meta.kind === 'group' && meta.large) {
      this._catchUpChat(ack.chat_id).catch(() => {});
      return;
    }
    if (!(ack.pts > 0) || this._seq.cursor === null || ack.pts <= this._seq.cursor) return;
    if (content.body !== undefined && meta && !ack.duplicate) {
      const m = { chat_id: ack.chat_id, seq: ack.seq, message_id: ack.message_id, sender: this.user, kind: 'text',
        body: content.body, ts: ack.ts, client_msg_id: ack.client_msg_id };
      if (meta.kind === 'direct') m.to = meta.peer;
      this._seq.push({ pts: ack.pts, kind: 'message', message: m, source: 'own' });
    } else {
      this._requestSync(); // media: only the server knows the descriptor
    }
  }

  // --- large groups: per-chat seq (PROTOCOL.md §3.4) --------------------------------------

  _onLargeMessage(m, source) {
    const last = this._large.get(m.chat_id);
    if (last === undefined || m.seq === last + 1) {
      this._large.set(m.chat_id, m.seq);
      this._learnChat(m);
      this._emit('message', m, { pts: 0, source });
      this._noteDelivered(m.chat_id, m.seq, m.sender === this.user);
    } else if (m.seq > last + 1) {
      this._catchUpChat(m.chat_id).catch(() => {});
    }
  }

  async _catchUpChat(chatId) {
    const key = `large${chatId}`;
    if (this[key]) return this[key];
    this[key] = (async () => {
      for (;;) {
        const after = this._large.get(chatId) || 0;
        const r = await this._raw('history', { chat_id: chatId, after_seq: after, limit: 200 });
        for (const m of r.messages || []) this._onLargeMessage(m, 'history');
        if (!r.has_more || !(r.messages || []).length) break;
      }
    })().finally(() => { this[key] = null; });
    return this[key];
  }

  async _catchUpLarge(gen) {
    let cursor;
    for (let page = 0; page < 100; page++) {
      const fields = { limit: 500 };
      if (cursor) fields.cursor = cursor;
      const r = await this._raw('chats', fields);
      if (gen !== this._gen) return;
      for (const c of r.chats || []) {
        this._learnChatSummary(c);
        if (c.large && c.member !== false && c.last_seq > (this._large.get(c.chat_id) || 0)) await this._catchUpChat(c.chat_id);
        if (c.delivered_seq) this._deliveredSent.set(c.chat_id, Math.max(this._deliveredSent.get(c.chat_id) || 0, c.delivered_seq));
      }
      if (!r.has_more || !r.next_cursor || !(r.chats || []).length) return;
      cursor = r.next_cursor;
    }
  }

  // --- delivered positions, batched -------------------------------------------------------

  _noteDelivered(chatId, seq, own) {
    if (!this.options.autoDelivered) return;
    const cur = this._delivered.get(chatId);
    if (!cur || seq > cur.seq) this._delivered.set(chatId, { seq, own });
    if (!this._deliverTimer) this._deliverTimer = setTimeout(() => { this._deliverTimer = null; this._flushDelivered(); }, this.options.autoDeliveredDelayMs);
  }

  _flushDelivered() {
    let n = 0;
    for (const [chatId, d] of this._delivered) {
      if (n >= 16) { this._noteDelivered(chatId, d.seq, d.own); break; }
      this._delivered.delete(chatId);
      if (d.own || d.seq <= (this._deliveredSent.get(chatId) || 0)) continue;
      this._deliveredSent.set(chatId, d.seq);
      n++;
      this.request('mark_delivered', { chat_id: chatId, seq: d.seq }).catch(() => this._deliveredSent.delete(chatId));
    }
  }
}

export function connect(options) {
  const c = new ParleyClient(options);
  c.start();
  return c;
}
