// The sidebar: who I am, new chat / new group, and the chats by last activity.
import { h, reconcile } from '../dom.js';
import { listNames, previewText, shortWhen } from '../format.js';
import { avatar } from './avatar.js';
import { icon } from '../icons.js';

export class ChatList {
  constructor(controller, { onNewChat, onNewGroup, onSignOut }) {
    this.controller = controller;
    const me = controller.store.me;
    this.list = h('ul', { class: 'chat-list', testid: 'chat-list', 'aria-label': 'Chats' });
    this.empty = h('p', { class: 'empty muted', testid: 'chat-list-empty' }, 'No chats yet. Start one with “New chat”.');
    this.el = h('aside', { class: 'sidebar', testid: 'sidebar' },
      h('header', { class: 'sidebar-head' },
        avatar(me),
        h('div', { class: 'me' }, h('strong', { testid: 'me' }, me), h('span', { class: 'muted small' }, 'Parley')),
        h('button', { class: 'btn icon', title: 'Sign out', 'aria-label': 'Sign out', testid: 'logout-button', on: { click: onSignOut } }, icon('signout'))),
      h('div', { class: 'sidebar-actions' },
        h('button', { class: 'btn primary', testid: 'new-chat-button', on: { click: onNewChat } }, '+ New chat'),
        h('button', { class: 'btn', testid: 'new-group-button', on: { click: onNewGroup } }, '+ New group')),
      this.list, this.empty);
  }

  render() {
    const { store } = this.controller;
    const open = this.controller.openChat();
    const chats = store.sortedChats().filter((c) => c.lastTs || c.lastMessage || c.kind === 'group' || (open && open.id === c.id));
    this.empty.hidden = chats.length > 0 || !store.listLoaded;
    reconcile(this.list, chats.map((c) => {
      const title = c.kind === 'direct' ? c.peer : (c.name || 'Group');
      const presence = c.kind === 'direct' ? store.presence.get(c.peer) : null;
      const typing = store.typingUsers(c);
      const unread = store.unread(c);
      const selected = Boolean(open && open.id === c.id);
      let preview = previewText(c.lastMessage, store.me);
      if (typing.length) preview = c.kind === 'direct' ? 'typing…' : `${listNames(typing)} typing…`;
      const sig = JSON.stringify([title, presence && !presence.hidden && presence.online, presence && presence.hidden,
        preview, c.lastTs, unread, selected, typing.length > 0, c.member]);
      return {
        key: String(c.id), sig, build: () => h('li', {},
          h('button', {
            class: ['chat-item', selected && 'selected', unread && 'has-unread'], testid: 'chat-item',
            dataset: { chatId: String(c.id), title, kind: c.kind }, 'aria-current': selected ? 'true' : undefined,
            on: { click: () => this.controller.select({ chatId: c.id }) },
          },
          avatar(title, { presence, group: c.kind === 'group' }),
          h('span', { class: 'chat-main' },
            h('span', { class: 'chat-top' },
              h('span', { class: 'chat-name', testid: 'chat-name' }, title),
              h('span', { class: 'chat-time muted small' }, c.lastTs ? shortWhen(c.lastTs) : '')),
            h('span', { class: 'chat-bottom' },
              h('span', { class: ['chat-preview', typing.length && 'typing'], testid: 'chat-preview' }, preview),
              unread ? h('span', { class: 'badge', testid: 'unread-badge', 'aria-label': `${unread} unread` }, String(unread)) : null)))),
      };
    }));
  }
}
