// The signed-in screen: banner, chat list, conversation and group panel. On a phone-sized
// window only one of list and conversation shows (data-view on the root, style.css).
import { h } from '../dom.js';
import { describeError } from '../errors.js';
import { Banner } from './banner.js';
import { ChatList } from './chatlist.js';
import { Conversation } from './conversation.js';
import { formDialog } from './dialogs.js';
import { GroupPanel } from './group-panel.js';

export class Shell {
  constructor(controller, { onSignOut }) {
    this.controller = controller;
    this.banner = new Banner(controller);
    this.chatList = new ChatList(controller, {
      onNewChat: () => this.newChat(),
      onNewGroup: () => this.newGroup(),
      onSignOut,
    });
    this.groupPanel = new GroupPanel(controller, { onClose: () => { this.groupPanel.close(); this.render(); } });
    this.conversation = new Conversation(controller, {
      onBack: () => { this.groupPanel.close(); controller.select(null); },
      onGroupInfo: () => {
        const c = controller.openChat();
        if (!c) return;
        if (this.groupPanel.isOpen) this.groupPanel.close(); else this.groupPanel.open(c.id);
        this.render();
      },
      onOpenImage: (media) => this.openImage(media),
    });
    this.toast = h('div', { class: 'toast', testid: 'toast', role: 'alert', hidden: true });
    this.el = h('div', { class: 'app', testid: 'app', dataset: { view: 'list' } },
      this.banner.el,
      h('div', { class: 'panes' }, this.chatList.el, this.conversation.el, this.groupPanel.el),
      this.toast);
    this.el.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && this.groupPanel.isOpen) { this.groupPanel.close(); this.render(); }
    });
  }

  render() {
    const ctl = this.controller;
    const open = ctl.openChat();
    if (this.groupPanel.isOpen && (!open || open.id !== this.groupPanel.chatId)) this.groupPanel.close();
    this.el.dataset.view = ctl.selection ? 'chat' : 'list';
    this.el.dataset.panel = this.groupPanel.isOpen ? 'open' : 'closed';
    this.banner.render();
    this.chatList.render();
    this.conversation.render();
    this.groupPanel.render();
    this.toast.hidden = !ctl.notice;
    this.toast.textContent = ctl.notice ? ctl.notice.text : '';
    let unread = 0;
    for (const c of ctl.store.chats.values()) unread += ctl.store.unread(c);
    document.title = unread ? `(${unread}) Parley` : 'Parley';
  }

  newChat() {
    formDialog({
      title: 'New chat', submitLabel: 'Open chat', testid: 'new-chat-dialog',
      fields: [{ name: 'user', label: 'Username', placeholder: 'e.g. bob', testid: 'new-chat-user' }],
      onSubmit: ({ user }) => {
        if (!this.controller.openDirect(user)) throw new Error(this.controller.notice ? this.controller.notice.text : 'Check the username.');
      },
    });
  }

  newGroup() {
    formDialog({
      title: 'New group', submitLabel: 'Create group', testid: 'new-group-dialog',
      fields: [
        { name: 'name', label: 'Group name', placeholder: 'e.g. Weekend trip', testid: 'new-group-name' },
        { name: 'members', label: 'Members', placeholder: 'bob, carol', testid: 'new-group-members', hint: 'Usernames, separated by commas or spaces.' },
      ],
      onSubmit: async ({ name, members }) => {
        const n = name.trim();
        if (!n) throw new Error('Give the group a name.');
        const users = members.split(/[\s,]+/).map((u) => u.trim().toLowerCase()).filter((u) => u && u !== this.controller.store.me);
        try {
          await this.controller.createGroup(n, [...new Set(users)]);
        } catch (err) {
          throw new Error(describeError(err, 'group'));
        }
      },
    });
  }

  // The full picture in a dialog, fetched with the token.
  openImage(media) {
    const img = h('img', { class: 'viewer-image', alt: media.name || 'image', testid: 'viewer-image' });
    const close = h('button', { class: 'btn', on: { click: () => dlg.close() } }, 'Close');
    const save = h('button', { class: 'btn primary', on: { click: () => this.controller.media.save(media.id, media.name) } }, 'Download');
    const dlg = h('dialog', { class: 'dialog viewer', testid: 'image-viewer' },
      img, media.caption ? h('p', { class: 'viewer-caption' }, media.caption) : null,
      h('div', { class: 'dialog-actions' }, save, close));
    dlg.addEventListener('close', () => dlg.remove());
    dlg.addEventListener('click', (e) => { if (e.target === dlg) dlg.close(); });
    document.body.append(dlg);
    dlg.showModal();
    this.controller.media.load(media.id).then((url) => { img.src = url; }).catch(() => { img.alt = 'The picture could not be loaded.'; });
  }
}
