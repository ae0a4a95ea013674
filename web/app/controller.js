// The signed-in app: one ParleyClient, one Store, and the actions the views call.
import { ParleyClient, randomId } from '../parley-client.js';
import { saveCursor } from './session.js';
import { Store } from './store.js';
import { MediaCache } from './media.js';
import { describeError } from './errors.js';

const TYPING_RENEW_MS = 3000;
const TYPING_IDLE_MS = 4000;

export class Controller {
  constructor(server, session, { onSignedOut }) {
    this.server = server;
    this.session = session;
    this.store = new Store(session.user);
    this.onSignedOut = onSignedOut;
    this.selection = null;       // {chatId} | {peer} (a direct chat not created yet)
    this.notice = null;          // {text, kind} shown as a toast
    this.client = new ParleyClient({ server, token: session.token, cursor: session.cursor ?? undefined });
    this.media = new MediaCache(this.client);
    this._typingSent = new Map(); // chat key -> last 'start' time
    this._typingIdle = new Map();
    this._markTimer = null;
    this._wire();
  }

  _wire() {
    const { client, store } = this;
    client.on('state', (s) => {
      store.setConnection(s);
      if (s.state === 'closed' && ['token_revoked', 'unauthorized', 'token_expired'].includes(s.code)) this.onSignedOut(s.code);
    });
    client.on('message', (m) => {
      const c = store.applyMessage(m);
      if (c.kind === 'direct' && this.selection && this.selection.peer === c.peer) {
        // The draft chat now exists on the server.
        this.selection = { chatId: c.id };
        if (!c.loaded) this.loadLatest(c.id);
      }
      if (m.kind === 'event' && c.kind === 'group' && this.isOpen(c.id)) this.loadGroup(c.id);
      if (c.kind === 'direct' && c.peer && !store.presence.has(c.peer)) this.watchPresence([c.peer]);
      this.scheduleMarkRead();
    });
    client.on('receipt', (r) => store.applyReceipt(r));
    client.on('typing', (t) => store.applyTyping(t));
    client.on('presence', (list) => store.applyPresence(list));
    client.on('cursor', (pts) => saveCursor(pts));
    client.on('snapshot', (snap) => {
      // A device without a cursor, or one too old: each chat's latest messages, and how many
      // older ones there are (the conversation offers to load them).
      if (snap.limited) store.forgetMessages((snap.chats || []).map((c) => c.chat_id));
      for (const c of snap.chats || []) store.applySnapshotChat(c);
    });
    client.on('synced', () => this.refresh());
    client.on('error', (err) => { if (err.code !== 'callback') console.warn('parley:', err.code, err.message); });
    // Expired typing indicators disappear without a push.
    this._typingSweep = setInterval(() => {
      for (const c of store.chats.values()) {
        const before = c.typing.size;
        if (before && store.typingUsers(c).length !== before) store.changed();
      }
    }, 1000);
    this._onOnline = () => client.reconnectNow();
    this._onOffline = () => client.drop('the browser is offline');
    this._onVisible = () => { if (document.visibilityState === 'visible') { client.reconnectNow(); this.scheduleMarkRead(); } };
    window.addEventListener('online', this._onOnline);
    window.addEventListener('offline', this._onOffline);
    document.addEventListener('visibilitychange', this._onVisible);
  }

  start() { this.client.start(); }

  stop() {
    clearInterval(this._typingSweep);
    clearTimeout(this._refreshRetry);
    window.removeEventListener('online', this._onOnline);
    window.removeEventListener('offline', this._onOffline);
    document.removeEventListener('visibilitychange', this._onVisible);
    this.client.stop();
    this.media.clear();
  }

  notify(text, kind = 'error') {
    this.notice = { text, kind, at: Date.now() };
    this.store.changed();
    clearTimeout(this._noticeTimer);
    this._noticeTimer = setTimeout(() => { this.notice = null; this.store.changed(); }, 6000);
  }

  // After every (re)connect and sync: the chat list (every page), presence and the open chat.
  async refresh() {
    try {
      const peers = [];
      let cursor;
      let unavailable = 0;
      for (let page = 0; page < 50; page++) {
        const list = await this.client.chats({ limit: 100, cursor });
        this.store.applyChatList(list);
        for (const c of list.chats || []) if (c.kind === 'direct') peers.push(c.peer);
        unavailable = Math.max(unavailable, (list.unavailable || []).length);
        if (!list.has_more || !list.next_cursor || !(list.chats || []).length) break;
        cursor = list.next_cursor;
      }
      // A cluster whose storage server for some chats is down lists the others and names
      // these (PROTOCOL.md §3.7): say so, and list again a little later.
      clearTimeout(this._refreshRetry);
      if (unavailable) {
        this.notify(`${unavailable} chat${unavailable === 1 ? '' : 's'} cannot be loaded right now; trying again.`);
        this._refreshRetry = setTimeout(() => this.refresh(), 10000);
      }
      this.watchPresence(peers);
      const open = this.openChat();
      if (open) {
        if (!open.loaded) await this.loadLatest(open.id);
        if (open.kind === 'group') this.loadGroup(open.id);
      }
      this.scheduleMarkRead();
    } catch (err) {
      if (err.code !== 'stopped') console.warn('refresh failed', err);
    }
  }

  watchPresence(users) {
    const fresh = users.filter((u) => u && u !== this.store.me && !this.store.presence.has(u));
    if (!fresh.length) return;
    for (const u of fresh) this.store.presence.set(u, { user: u, hidden: true });
    this.client.presenceSubscribe(fresh).then((list) => this.store.applyPresence(list)).catch(() => {
      for (const u of fresh) this.store.presence.delete(u);
    });
  }

  // --- selection --------------------------------------------------------------------

  openChat() {
    if (!this.selection) return null;
    if (this.selection.chatId) return this.store.chats.get(this.selection.chatId) || null;
    return this.store.directChatWith(this.selection.peer);
  }

  isOpen(chatId) {
    const c = this.openChat();
    return Boolean(c && c.id === chatId);
  }

  select(selection) {
    this.selection = selection;
    const c = this.openChat();
    if (c) {
      this.selection = { chatId: c.id };
      if (!c.loaded) this.loadLatest(c.id);
      if (c.kind === 'group') this.loadGroup(c.id);
      else this.watchPresence([c.peer]);
    } else if (selection && selection.peer) {
      this.watchPresence([selection.peer]);
      // Maybe a chat exists that is not in our list yet.
      this.client.history(selection.peer, { limit: 50 }).then((page) => {
        if (page.chat_id) {
          this.store.applyHistory(page.chat_id, page, false);
          if (this.selection && this.selection.peer === selection.peer) this.selection = { chatId: page.chat_id };
          this.store.changed();
        }
      }).catch(() => {});
    }
    this.store.changed();
    this.scheduleMarkRead();
  }

  openDirect(peer) {
    const name = String(peer || '').trim().toLowerCase();
    if (!/^[a-z0-9][a-z0-9_.-]{2,31}$/.test(name)) {
      this.notify('Usernames are 3 to 32 characters: a–z, 0–9, "_", "." or "-".');
      return false;
    }
    if (name === this.store.me) {
      this.notify('That is you. Pick someone else to chat with.');
      return false;
    }
    const c = this.store.directChatWith(name);
    this.select(c ? { chatId: c.id } : { peer: name });
    return true;
  }

  // --- history ----------------------------------------------------------------------

  async loadLatest(chatId) {
    try {
      const page = await this.client.history(chatId, { limit: 50 });
      this.store.applyHistory(chatId, page, false);
      this.scheduleMarkRead();
    } catch (err) {
      this.notify(this._describe(err, 'history'));
    }
  }

  async loadOlder(chatId) {
    const c = this.store.chats.get(chatId);
    if (!c || !c.loaded || !c.hasMore || c.loadingOlder) return false;
    const oldest = Math.min(...c.messages.keys());
    if (!Number.isFinite(oldest) || oldest <= 1) { c.hasMore = false; return false; }
    c.loadingOlder = true;
    this.store.changed();
    try {
      const page = await this.client.history(chatId, { beforeSeq: oldest, limit: 50 });
      this.store.applyHistory(chatId, page, true);
      return true;
    } catch (err) {
      this.notify(this._describe(err, 'history'));
      return false;
    } finally {
      c.loadingOlder = false;
      this.store.changed();
    }
  }

  // --- read positions ---------------------------------------------------------------

  // Reads the open chat when the page is visible and the newest message is on screen.
  scheduleMarkRead() {
    clearTimeout(this._markTimer);
    this._markTimer = setTimeout(() => this._markRead(), 150);
  }

  _markRead() {
    const c = this.openChat();
    if (!c || document.visibilityState !== 'visible' || !this.atBottom) return;
    if (c.lastSeq <= c.readSeq || !c.member) return;
    const seq = c.lastSeq;
    c.readSeq = seq; // optimistic: the badge clears at once
    this.store.changed();
    this.client.markRead(c.id, seq).catch(() => {});
  }

  // --- sending ------------------------------------------------------------------------

  _targetOf(sel) {
    const c = this.openChat();
    if (c) return { target: c.kind === 'direct' ? c.peer : c.id, key: c.id, chat: c };
    if (sel && sel.peer) return { target: sel.peer, key: `@${sel.peer}`, chat: null };
    return null;
  }

  sendText(text) {
    const t = this._targetOf(this.selection);
    const body = text.replace(/\s+$/, '');
    if (!t || !body.trim()) return false;
    if (new TextEncoder().encode(body).length > 4096) {
      this.notify('That message is too long (at most 4096 bytes).');
      return false;
    }
    const p = { clientMsgId: randomId(), kind: 'text', body, state: 'sending', ts: Date.now() };
    this.store.addPending(t.key, p);
    this._stopTyping(t);
    this._deliver(t, p);
    return true;
  }

  sendFile(file, caption) {
    const t = this._targetOf(this.selection);
    if (!t || !file) return false;
    const isImage = /^image\/(jpeg|png|gif|webp)$/.test(file.type);
    const p = {
      clientMsgId: randomId(), kind: 'media', body: caption || '', file, state: 'uploading', progress: 0,
      ts: Date.now(), previewUrl: isImage ? URL.createObjectURL(file) : null,
    };
    this.store.addPending(t.key, p);
    this._stopTyping(t);
    this._deliver(t, p);
    return true;
  }

  async _deliver(t, p) {
    try {
      if (p.kind === 'media') {
        if (!p.uploaded) {
          this.store.updatePending(p, { state: 'uploading', progress: 0, error: null });
          p.uploaded = await this.client.uploadMedia(p.file, {
            onProgress: (sent, total) => this.store.updatePending(p, { progress: total ? sent / total : 0 }),
          });
        }
        this.store.updatePending(p, { state: 'sending', progress: 1 });
        await this.client.sendMedia(t.target, { id: p.uploaded.id, name: p.file.name, caption: p.body }, { clientMsgId: p.clientMsgId });
      } else {
        this.store.updatePending(p, { state: 'sending', error: null });
        await this.client.send(t.target, p.body, { clientMsgId: p.clientMsgId });
      }
      // The message itself arrives through the client's 'message' event (own send).
    } catch (err) {
      const context = p.kind === 'media' && !p.uploaded ? 'upload' : 'send';
      const text = this._describe(err, context);
      this.store.updatePending(p, { state: 'failed', error: text });
      this.notify(text);
    }
  }

  retry(p) {
    const t = this._targetOf(this.selection);
    if (t) this._deliver(t, p);
  }

  discard(p) {
    for (const [key, list] of this.store.pending) this.store.pending.set(key, list.filter((x) => x !== p));
    if (p.previewUrl) URL.revokeObjectURL(p.previewUrl);
    this.store.changed();
  }

  // --- typing -------------------------------------------------------------------------

  typingInput(hasText) {
    const t = this._targetOf(this.selection);
    if (!t || !t.chat) return;
    if (!hasText) { this._stopTyping(t); return; }
    const now = Date.now();
    if (now - (this._typingSent.get(t.key) || 0) > TYPING_RENEW_MS) {
      this._typingSent.set(t.key, now);
      this.client.typing(t.target, 'start').catch(() => {});
    }
    clearTimeout(this._typingIdle.get(t.key));
    this._typingIdle.set(t.key, setTimeout(() => this._stopTyping(t), TYPING_IDLE_MS));
  }

  _stopTyping(t) {
    clearTimeout(this._typingIdle.get(t.key));
    if (!this._typingSent.get(t.key)) return;
    this._typingSent.delete(t.key);
    this.client.typing(t.target, 'stop').catch(() => {});
  }

  // --- groups -------------------------------------------------------------------------

  async createGroup(name, members) {
    const r = await this.client.groupCreate(name, members);
    const c = this.store._chat(r.chat.chat_id, { kind: 'group', name: r.chat.name });
    c.kind = 'group';
    c.lastTs = r.ts || Date.now();
    this.select({ chatId: c.id });
    return c;
  }

  async loadGroup(chatId) {
    try {
      const info = await this.client.groupInfo(chatId);
      this.store.applyGroupInfo(info);
      this.watchPresence((info.members || []).map((m) => m.user));
    } catch (err) {
      if (err.code === 'forbidden' || err.code === 'not_found') {
        const c = this.store.chats.get(chatId);
        if (c) { c.member = false; this.store.groups.delete(chatId); this.store.changed(); }
      }
    }
  }

  // op: 'groupAdd' | 'groupRemove' | ...; throws a readable Error.
  async groupAction(op, chatId, ...args) {
    try {
      await this.client[op](chatId, ...args);
    } catch (err) {
      throw new Error(this._describe(err, 'group'));
    } finally {
      this.loadGroup(chatId);
    }
  }

  _describe(err, context) { return describeError(err, context); }
}
