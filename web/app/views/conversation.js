// The open chat: header (name, presence or typing), the messages (older pages load as you
// scroll up), and the composer.
import { h, reconcile } from '../dom.js';
import { dayLabel, lastSeen, listNames } from '../format.js';
import { avatar } from './avatar.js';
import { icon } from '../icons.js';
import { Composer } from './composer.js';
import { dayRow, eventRow, messageRow, pendingRow } from './message.js';

export class Conversation {
  constructor(controller, { onBack, onGroupInfo, onOpenImage }) {
    this.controller = controller;
    this.onOpenImage = onOpenImage;
    this.chatKey = null;
    this.title = h('h2', { class: 'conv-title', testid: 'chat-title' });
    this.status = h('div', { class: 'conv-status muted small', testid: 'chat-status', 'aria-live': 'polite' });
    this.avatarSlot = h('span', { class: 'avatar-slot' });
    this.infoButton = h('button', { class: 'btn', testid: 'group-info-button', on: { click: onGroupInfo } }, icon('members'), ' Members');
    this.header = h('header', { class: 'conv-head' },
      h('button', { class: 'btn icon back', testid: 'back-button', 'aria-label': 'Back to chats', on: { click: onBack } }, icon('back')),
      this.avatarSlot,
      h('div', { class: 'conv-names' }, this.title, this.status),
      this.infoButton);
    this.list = h('ol', { class: 'messages', testid: 'messages', 'aria-label': 'Messages' });
    this.scroller = h('div', { class: 'message-scroller', testid: 'message-scroller', tabindex: '0' }, this.list);
    this.typing = h('div', { class: 'typing-line muted small', testid: 'typing-indicator', hidden: true, 'aria-live': 'polite' });
    this.composer = new Composer(controller);
    this.placeholder = h('div', { class: 'conv-empty', testid: 'no-chat' },
      h('img', { src: '/icon.svg', alt: '', width: '64', height: '64' }),
      h('p', { class: 'muted' }, 'Pick a chat, or start a new one.'));
    this.body = h('section', { class: 'conversation-body', hidden: true }, this.header, this.scroller, this.typing, this.composer.form);
    this.el = h('section', { class: 'conversation', testid: 'conversation' }, this.placeholder, this.body);
    this.atBottom = true;
    this.scroller.addEventListener('scroll', () => this._onScroll());
  }

  _onScroll() {
    const s = this.scroller;
    this.atBottom = s.scrollHeight - s.scrollTop - s.clientHeight < 48;
    this.controller.atBottom = this.atBottom;
    if (this.atBottom) this.controller.scheduleMarkRead();
    if (s.scrollTop < 200) this._loadOlder();
  }

  _loadOlder() {
    const c = this.controller.openChat();
    if (c) this.controller.loadOlder(c.id);
  }

  render() {
    const ctl = this.controller;
    const { store } = ctl;
    const sel = ctl.selection;
    const c = ctl.openChat();
    if (!sel) {
      this.placeholder.hidden = false;
      this.body.hidden = true;
      this.chatKey = null;
      return;
    }
    this.placeholder.hidden = true;
    this.body.hidden = false;
    const key = c ? `c${c.id}` : `@${sel.peer}`;
    const switched = key !== this.chatKey;
    if (switched) {
      this.chatKey = key;
      this.list.replaceChildren();
      this.atBottom = true;
      this.composer.clearFile();
      this.composer.input.value = '';
    }
    const kind = c ? c.kind : 'direct';
    const peer = c ? c.peer : sel.peer;
    const title = kind === 'direct' ? peer : (c.name || 'Group');
    this.title.textContent = title;
    const presence = kind === 'direct' ? store.presence.get(peer) : null;
    this.avatarSlot.replaceChildren(avatar(title, { presence, group: kind === 'group' }));
    const typing = c ? store.typingUsers(c) : [];
    let status;
    if (kind === 'direct') status = typing.length ? 'typing…' : lastSeen(presence);
    else {
      const info = store.groups.get(c.id);
      status = typing.length ? `${listNames(typing)} ${typing.length > 1 ? 'are' : 'is'} typing…`
        : info ? `${info.member_count} members` : '';
    }
    this.status.textContent = status;
    this.status.classList.toggle('typing', typing.length > 0);
    this.typing.hidden = typing.length === 0;
    this.typing.textContent = typing.length ? `${listNames(typing)} ${typing.length > 1 ? 'are' : 'is'} typing…` : '';
    this.infoButton.hidden = kind !== 'group';
    const canWrite = !c || c.member;
    this.composer.setEnabled(canWrite, canWrite ? undefined : 'You are no longer a member of this group');
    this.el.dataset.chatId = c ? String(c.id) : '';

    // Keep the view where the reader is: at the bottom, or at the same message when a page
    // of older ones is put above.
    const s = this.scroller;
    // At the bottom, as last scrolled, and still there now: a scroll that has happened but
    // whose event has not run yet (the reader just scrolled up) must not be undone.
    const wasBottom = this.atBottom && s.scrollHeight - s.scrollTop - s.clientHeight < 48;
    const firstBefore = this._topKeys();
    const heightBefore = s.scrollHeight;
    const topBefore = s.scrollTop;
    reconcile(this.list, this._items(c, key));
    const firstAfter = this._topKeys();
    if (switched || wasBottom) s.scrollTop = s.scrollHeight;
    else if (firstBefore !== firstAfter) s.scrollTop = topBefore + (s.scrollHeight - heightBefore);
    this.atBottom = s.scrollHeight - s.scrollTop - s.clientHeight < 48;
    ctl.atBottom = this.atBottom;
    if (switched) queueMicrotask(() => this.composer.input.focus());
    // A short first page does not fill the screen: no scroll event would ever ask for more.
    // (Where the number of older messages is known, their row at the top is the way.)
    if (c && c.loaded && c.hasMore && !c.loadingOlder && !(c.older > 0) && s.scrollHeight <= s.clientHeight + 10) this._loadOlder();
  }

  // What is at the top: the first row and the first message (a page of older messages of
  // the same day moves the first message but not the first row).
  _topKeys() {
    let message = '';
    for (const el of this.list.children) if (el.dataset.key && el.dataset.key[0] === 'm') { message = el.dataset.key; break; }
    const first = this.list.firstElementChild;
    return `${first ? first.dataset.key : ''} ${message}`;
  }

  _items(c, key) {
    const ctl = this.controller;
    const { store } = ctl;
    const me = store.me;
    const items = [];
    const group = Boolean(c && c.kind === 'group');
    if (c) {
      if (c.loaded && !c.hasMore) items.push({ key: 'start', sig: '', build: () => h('li', { class: 'history-start muted small', testid: 'history-start' }, 'This is the beginning of the chat.') });
      if (c.loaded && c.hasMore && c.older > 0 && !c.loadingOlder) {
        const n = c.older;
        items.push({
          key: 'older', sig: String(n),
          build: () => h('li', { class: 'history-older', testid: 'older-messages' },
            h('button', { class: 'btn small', testid: 'older-messages-button', title: 'Load older messages', on: { click: () => this._loadOlder() } },
              `${n.toLocaleString('en')} older message${n === 1 ? '' : 's'}`)),
        });
      }
      if (c.loadingOlder || (!c.loaded && c.lastSeq > 0)) items.push({ key: 'loading', sig: '', build: () => h('li', { class: 'history-loading muted small', testid: 'history-loading' }, 'Loading…') });
      const messages = store.sortedMessages(c);
      const lastOwn = [...messages].reverse().find((m) => m.sender === me && m.kind !== 'event');
      let prevDay = '';
      let prevSender = '';
      for (const m of messages) {
        const day = dayLabel(m.ts);
        if (day !== prevDay) {
          items.push({ key: `d${new Date(m.ts).toDateString()}`, sig: day, build: () => dayRow(day) });
          prevDay = day;
          prevSender = '';
        }
        if (m.kind === 'event') {
          items.push({ key: `m${m.seq}`, sig: 'e', build: () => eventRow(m, me) });
          prevSender = '';
          continue;
        }
        const own = m.sender === me;
        const status = own ? store.tickOf(c, m) : '';
        const readers = own && group ? store.readersOf(c, m) : [];
        const showReadBy = group && !c.large && m === lastOwn;
        const showSender = m.sender !== prevSender;
        prevSender = m.sender;
        const thumbId = m.media && m.media.thumbnail && m.media.thumbnail.id;
        const localPreview = store.sentPreviews && m.client_msg_id ? store.sentPreviews.get(m.client_msg_id) : undefined;
        const sig = JSON.stringify([status, readers, showReadBy, showSender, thumbId ? Boolean(ctl.media.url(thumbId)) : 0]);
        items.push({
          key: `m${m.seq}`, sig,
          build: () => messageRow(m, {
            me, group, status, readers, showReadBy, showSender, media: ctl.media, localPreview,
            onOpenImage: this.onOpenImage, onMediaLoad: () => this._keepBottom(),
          }),
        });
      }
    }
    // Messages being sent; those to a direct chat that did not exist yet are under "@peer".
    const pendingKeys = c ? [c.id, c.kind === 'direct' && `@${c.peer}`] : [key];
    for (const k of pendingKeys.filter(Boolean)) for (const p of store.pendingFor(k)) items.push(this._pendingItem(p));
    if (!c && !items.length) {
      const peer = this.controller.selection.peer;
      items.push({ key: 'new', sig: peer, build: () => h('li', { class: 'history-start muted small', testid: 'history-start' }, `This is the start of your chat with ${peer}.`) });
    }
    return items;
  }

  _pendingItem(p) {
    return {
      key: `p${p.clientMsgId}`,
      sig: JSON.stringify([p.state, Math.round((p.progress || 0) * 20), p.error || '']),
      build: () => pendingRow(p, { onRetry: () => this.controller.retry(p), onDiscard: () => this.controller.discard(p) }),
    };
  }

  _keepBottom() {
    if (this.atBottom) this.scroller.scrollTop = this.scroller.scrollHeight;
  }
}
