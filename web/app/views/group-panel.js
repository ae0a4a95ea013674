// Group details: members with roles and presence; owners and admins add, remove, promote
// and rename (the server checks the role table, PROTOCOL.md §3.9); anyone may leave.
import { h, replaceChildren } from '../dom.js';
import { lastSeen } from '../format.js';
import { avatar } from './avatar.js';
import { icon } from '../icons.js';

const ROLE_RANK = { owner: 3, admin: 2, member: 1 };

export class GroupPanel {
  constructor(controller, { onClose }) {
    this.controller = controller;
    this.onClose = onClose;
    this.chatId = null;
    this.error = h('p', { class: 'form-error', role: 'alert', testid: 'group-error', hidden: true });
    this.content = h('div', { class: 'panel-content' });
    this.el = h('aside', { class: 'group-panel', testid: 'group-panel', hidden: true, 'aria-label': 'Group details' },
      h('header', { class: 'panel-head' },
        h('h2', {}, 'Group'),
        h('button', { class: 'btn icon', testid: 'group-panel-close', 'aria-label': 'Close', on: { click: () => onClose() } }, icon('close'))),
      this.error, this.content);
    this._sig = '';
    // Inputs live across renders, so typing is not lost when the member list changes.
    this.nameInput = h('input', { testid: 'group-name-input', 'aria-label': 'Group name', maxlength: '128' });
    this.addInput = h('input', { testid: 'add-member-input', placeholder: 'username', 'aria-label': 'Username to add', autocapitalize: 'none', spellcheck: 'false' });
  }

  open(chatId) {
    this.nameInput.value = '';
    this.addInput.value = '';
    this.chatId = chatId;
    this.error.hidden = true;
    this._sig = '';
    this.el.hidden = false;
    this.controller.loadGroup(chatId);
    this.render();
  }

  close() {
    this.chatId = null;
    this.el.hidden = true;
  }

  get isOpen() { return this.chatId !== null; }

  render() {
    if (!this.isOpen) return;
    const ctl = this.controller;
    const { store } = ctl;
    const c = store.chats.get(this.chatId);
    const info = store.groups.get(this.chatId);
    const sig = JSON.stringify([info, c && c.member, info && info.members.map((m) => store.presence.get(m.user))]);
    if (sig === this._sig) return;
    this._sig = sig;
    if (!c) { replaceChildren(this.content); return; }
    if (!c.member) {
      replaceChildren(this.content, h('p', { class: 'muted' }, 'You are no longer a member of this group.'));
      return;
    }
    if (!info) { replaceChildren(this.content, h('p', { class: 'muted' }, 'Loading…')); return; }
    const me = info.members.find((m) => m.user === store.me);
    const myRank = me ? ROLE_RANK[me.role] : 0;
    const canManage = myRank >= 2;

    const nameInput = this.nameInput;
    if (document.activeElement !== nameInput) nameInput.value = info.name;
    nameInput.disabled = !canManage;
    const rename = h('form', { class: 'inline-form' }, nameInput,
      canManage ? h('button', { class: 'btn small', testid: 'group-rename-button' }, 'Rename') : null);
    rename.addEventListener('submit', (e) => {
      e.preventDefault();
      const name = nameInput.value.trim();
      if (name && name !== info.name) this._act('groupRename', name);
    });

    const members = [...info.members].sort((a, b) => (ROLE_RANK[b.role] - ROLE_RANK[a.role]) || a.user.localeCompare(b.user));
    const rows = members.map((m) => {
      const presence = store.presence.get(m.user);
      const actions = [];
      if (m.user !== store.me) {
        if (myRank === 3) {
          actions.push(m.role === 'member'
            ? h('button', { class: 'btn small', testid: 'promote-member', on: { click: () => this._act('groupPromote', m.user) } }, 'Make admin')
            : h('button', { class: 'btn small', testid: 'demote-member', on: { click: () => this._act('groupDemote', m.user) } }, 'Make member'));
        }
        if (canManage && myRank > ROLE_RANK[m.role]) {
          actions.push(h('button', { class: 'btn small danger', testid: 'remove-member', on: { click: () => this._act('groupRemove', m.user) } }, 'Remove'));
        }
      }
      return h('li', { class: 'member-row', testid: 'member-row', dataset: { user: m.user, role: m.role } },
        avatar(m.user, { presence: m.user === store.me ? { online: true } : presence, size: 'small' }),
        h('span', { class: 'member-name' },
          h('span', {}, m.user === store.me ? `${m.user} (you)` : m.user),
          h('span', { class: 'muted small' }, m.user === store.me ? '' : lastSeen(presence))),
        m.role !== 'member' ? h('span', { class: 'role-tag', testid: 'member-role' }, m.role) : null,
        h('span', { class: 'member-actions' }, actions));
    });

    const addInput = this.addInput;
    const add = h('form', { class: 'inline-form' }, addInput, h('button', { class: 'btn small primary', testid: 'add-member-button' }, 'Add'));
    add.addEventListener('submit', (e) => {
      e.preventDefault();
      const users = addInput.value.split(/[\s,]+/).map((u) => u.trim().toLowerCase()).filter(Boolean);
      if (users.length) this._act('groupAdd', users).then((ok) => { if (ok) addInput.value = ''; });
    });

    const leave = h('button', { class: 'btn danger', testid: 'leave-group', on: { click: () => this._act('groupLeave') } }, 'Leave group');

    replaceChildren(this.content, 
      h('label', { class: 'small muted' }, 'Name'), rename,
      h('h3', {}, `${info.member_count} members`),
      h('ul', { class: 'member-list', testid: 'member-list' }, rows),
      canManage ? [h('h3', {}, 'Add people'), add] : null,
      me && me.role === 'owner' ? h('p', { class: 'muted small' }, 'As the owner, hand the group over (make someone admin, then owner) before you leave.') : null,
      leave);
  }

  async _act(op, ...args) {
    this.error.hidden = true;
    try {
      await this.controller.groupAction(op, this.chatId, ...args);
      return true;
    } catch (err) {
      this.error.textContent = err.message;
      this.error.hidden = false;
      return false;
    }
  }
}
