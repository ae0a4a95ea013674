// The app's state: chats, their loaded messages, read positions, presence, typing and the
// messages being sent. Pure data, no DOM; views subscribe to `change`.

export class Store {
  constructor(me) {
    this.me = me;
    this.chats = new Map();       // chat_id -> chat (see _chat)
    this.presence = new Map();    // user -> {online, last_seen, hidden}
    this.pending = new Map();     // chat key -> [{clientMsgId, kind, body, file, previewUrl, progress, state, error}]
    this.groups = new Map();      // chat_id -> group_info result
    this.connection = { state: 'connecting' };
    this.listLoaded = false;
    this._listeners = new Set();
    this._queued = false;
  }

  onChange(fn) { this._listeners.add(fn); return () => this._listeners.delete(fn); }

  // Coalesces many changes into one render per microtask.
  changed() {
    if (this._queued) return;
    this._queued = true;
    queueMicrotask(() => {
      this._queued = false;
      for (const fn of this._listeners) fn();
    });
  }

  _chat(id, init = {}) {
    let c = this.chats.get(id);
    if (!c) {
      c = {
        id, kind: init.kind || 'direct', peer: init.peer || null, name: init.name || null,
        large: false, member: true, lastSeq: 0, lastMessage: null, lastTs: 0,
        readSeq: 0, deliveredSeq: 0, peerReadSeq: 0, peerDeliveredSeq: 0,
        reads: new Map(),            // group: user -> {read_seq, delivered_seq}
        messages: new Map(),         // seq -> message
        loaded: false, hasMore: true, loadingOlder: false,
        older: null,                 // known count of older messages not loaded (from a snapshot)
        typing: new Map(),           // user -> expiry time (ms)
      };
      this.chats.set(id, c);
    }
    return c;
  }

  directChatWith(peer) {
    for (const c of this.chats.values()) if (c.kind === 'direct' && c.peer === peer) return c;
    return null;
  }

  unread(c) { return Math.max(0, c.lastSeq - c.readSeq); }

  // Chats by last activity, newest first.
  sortedChats() {
    return [...this.chats.values()].sort((a, b) => (b.lastTs - a.lastTs) || (b.id - a.id));
  }

  sortedMessages(c) {
    return [...c.messages.values()].sort((a, b) => a.seq - b.seq);
  }

  // --- from the server ---------------------------------------------------------------

  applyChatList(list) {
    for (const s of list.chats || []) {
      const c = this._chat(s.chat_id, { kind: s.kind, peer: s.peer, name: s.name });
      c.kind = s.kind;
      if (s.peer) c.peer = s.peer;
      if (s.name) c.name = s.name;
      c.large = Boolean(s.large);
      c.member = s.member !== false;
      c.lastSeq = Math.max(c.lastSeq, s.last_seq || 0);
      if (s.last_message && (!c.lastMessage || s.last_message.seq >= c.lastMessage.seq)) {
        c.lastMessage = s.last_message;
        c.lastTs = s.last_message.ts;
      }
      c.readSeq = Math.max(c.readSeq, s.read_seq || 0);
      c.deliveredSeq = Math.max(c.deliveredSeq, s.delivered_seq || 0);
      c.peerReadSeq = Math.max(c.peerReadSeq, s.peer_read_seq || 0);
      c.peerDeliveredSeq = Math.max(c.peerDeliveredSeq, s.peer_delivered_seq || 0, c.peerReadSeq);
      for (const r of s.reads || []) this._movePosition(c, r.user, 'read', r.read_seq, r.delivered_seq);
    }
    this.listLoaded = true;
    this.changed();
  }

  applyMessage(m) {
    const c = this._chat(m.chat_id, { kind: m.to ? 'direct' : 'group' });
    if (m.to) {
      c.kind = 'direct';
      c.peer = m.sender === this.me ? m.to : m.sender;
    } else {
      c.kind = 'group';
    }
    if (m.kind === 'event' && m.event) this._applyEvent(c, m);
    c.messages.set(m.seq, m);
    if (m.seq >= c.lastSeq) {
      c.lastSeq = m.seq;
      c.lastMessage = m;
      c.lastTs = m.ts;
    }
    if (m.sender === this.me) {
      // Sending moves one's own positions silently (PROTOCOL.md §3.11).
      c.readSeq = Math.max(c.readSeq, m.seq);
      c.deliveredSeq = Math.max(c.deliveredSeq, m.seq);
      if (m.client_msg_id) this.removePending(c, m.client_msg_id);
    } else {
      c.typing.delete(m.sender);
      // The sender's own positions moved to this message when it was sent, and the server
      // sends no receipt for that (PROTOCOL.md §3.11): infer it, as chats would report it.
      if (c.kind === 'direct') {
        c.peerReadSeq = Math.max(c.peerReadSeq, m.seq);
        c.peerDeliveredSeq = Math.max(c.peerDeliveredSeq, m.seq);
      } else {
        this._movePosition(c, m.sender, 'read', m.seq, m.seq);
      }
    }
    this.changed();
    return c;
  }

  _applyEvent(c, m) {
    const ev = m.event;
    if (ev.name) c.name = ev.name;
    if (ev.large) c.large = true;
    const gone = (u) => { c.reads.delete(u); if (u === this.me) c.member = false; };
    if (ev.event === 'member_removed') gone(ev.user);
    if (ev.event === 'member_left') gone(ev.user);
    if (ev.event === 'group_deleted') c.member = false;
    if ((ev.event === 'members_added' || ev.event === 'created') && (ev.users || ev.members || []).includes(this.me)) c.member = true;
    for (const u of ev.users || ev.members || []) if (u !== this.me && !c.reads.has(u)) c.reads.set(u, { read_seq: 0, delivered_seq: 0 });
    c.groupStale = true; // views fetch group_info again
  }

  applyHistory(chatId, page, older) {
    const c = this._chat(chatId);
    let added = 0;
    for (const m of page.messages || []) {
      if (!c.messages.has(m.seq)) added++;
      this.applyMessage(m);
    }
    if (older || !c.loaded) c.hasMore = Boolean(page.has_more);
    if (older && typeof c.older === 'number') c.older = c.hasMore ? Math.max(0, c.older - added) : 0;
    c.loaded = true;
    this.changed();
  }

  // One chat of a snapshot (PROTOCOL.md §3.5): its latest messages; what comes after them
  // arrives as updates, so the chat counts as loaded from the window on, and `older` says
  // how many messages before the window can be paged in with history.
  applySnapshotChat(s) {
    const c = this._chat(s.chat_id, { kind: s.kind, peer: s.peer, name: s.name });
    if (s.kind === 'group' && s.name) c.name = s.name;
    const msgs = s.messages || [];
    const fresh = !c.loaded && msgs.length > 0;
    if (fresh) {
      // Whatever this chat held without being loaded may not join up with the window.
      const first = msgs.reduce((a, m) => Math.min(a, m.seq), Infinity);
      for (const seq of [...c.messages.keys()]) if (seq < first) c.messages.delete(seq);
    }
    for (const m of msgs) this.applyMessage(m);
    if (fresh) {
      c.loaded = true;
      c.hasMore = Boolean(s.has_more);
      c.older = typeof s.older === 'number' ? (c.hasMore ? s.older : 0) : null;
    }
    this.changed();
  }

  applyReceipt(r) {
    const c = this.chats.get(r.chat_id);
    if (!c) return;
    if (r.user === this.me) {
      if (r.kind === 'read') c.readSeq = Math.max(c.readSeq, r.seq);
      c.deliveredSeq = Math.max(c.deliveredSeq, r.seq);
    } else if (c.kind === 'direct') {
      if (r.kind === 'read') c.peerReadSeq = Math.max(c.peerReadSeq, r.seq);
      c.peerDeliveredSeq = Math.max(c.peerDeliveredSeq, r.seq);
    } else {
      this._movePosition(c, r.user, r.kind, r.seq, r.seq);
    }
    this.changed();
  }

  _movePosition(c, user, kind, readSeq, deliveredSeq) {
    if (user === this.me) return;
    const p = c.reads.get(user) || { read_seq: 0, delivered_seq: 0 };
    if (kind === 'read') p.read_seq = Math.max(p.read_seq, readSeq || 0);
    p.delivered_seq = Math.max(p.delivered_seq, deliveredSeq || 0, p.read_seq);
    c.reads.set(user, p);
  }

  applyGroupInfo(info) {
    this.groups.set(info.chat_id, info);
    const c = this._chat(info.chat_id, { kind: 'group', name: info.name });
    c.name = info.name;
    c.large = Boolean(info.large);
    const active = new Set((info.members || []).map((m) => m.user));
    for (const u of [...c.reads.keys()]) if (!active.has(u)) c.reads.delete(u);
    for (const u of active) if (u !== this.me && !c.reads.has(u)) c.reads.set(u, { read_seq: 0, delivered_seq: 0 });
    this.changed();
  }

  // A limited snapshot: what we hold of these chats may have holes; reload it.
  forgetMessages(chatIds) {
    for (const id of chatIds) {
      const c = this.chats.get(id);
      if (!c) continue;
      c.messages.clear();
      c.loaded = false;
      c.hasMore = true;
      c.older = null;
    }
    this.changed();
  }

  applyPresence(list) {
    for (const p of list) this.presence.set(p.user, p);
    this.changed();
  }

  applyTyping(t) {
    const c = this.chats.get(t.chat_id);
    if (!c || t.user === this.me) return;
    if (t.state === 'start') c.typing.set(t.user, Date.now() + (t.expires_ms || 6000));
    else c.typing.delete(t.user);
    this.changed();
  }

  typingUsers(c) {
    const now = Date.now();
    for (const [u, until] of c.typing) if (until <= now) c.typing.delete(u);
    return [...c.typing.keys()];
  }

  setConnection(s) {
    this.connection = s;
    this.changed();
  }

  // --- own messages being sent --------------------------------------------------------

  // key: a chat id, or "@user" for a direct chat that does not exist yet.
  pendingFor(key) { return this.pending.get(key) || []; }

  addPending(key, p) {
    this.pending.set(key, [...this.pendingFor(key), p]);
    this.changed();
  }

  updatePending(p, fields) {
    Object.assign(p, fields);
    this.changed();
  }

  removePending(c, clientMsgId) {
    for (const key of [c.id, c.peer && `@${c.peer}`]) {
      if (!key || !this.pending.has(key)) continue;
      const list = this.pending.get(key);
      const gone = list.find((p) => p.clientMsgId === clientMsgId);
      if (gone && gone.previewUrl) {
        // Keep the local preview for the sent message until its thumbnail is loaded.
        this.sentPreviews = this.sentPreviews || new Map();
        this.sentPreviews.set(clientMsgId, gone.previewUrl);
      }
      this.pending.set(key, list.filter((p) => p.clientMsgId !== clientMsgId));
    }
  }

  // --- receipts of own messages -------------------------------------------------------

  // 'sent' | 'delivered' | 'read' for a message this user sent.
  tickOf(c, m) {
    if (c.kind === 'direct') {
      if (c.peerReadSeq >= m.seq) return 'read';
      if (c.peerDeliveredSeq >= m.seq) return 'delivered';
      return 'sent';
    }
    const others = [...c.reads.values()];
    if (others.length && others.every((p) => p.read_seq >= m.seq)) return 'read';
    if (others.some((p) => p.delivered_seq >= m.seq)) return 'delivered';
    return 'sent';
  }

  readersOf(c, m) {
    return [...c.reads.entries()].filter(([, p]) => p.read_seq >= m.seq).map(([u]) => u).sort();
  }
}
