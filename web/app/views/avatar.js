// A round avatar with initials and, for people, a presence dot.
import { h } from '../dom.js';
import { avatarClass, initials } from '../format.js';

export function avatar(name, { presence, group = false, size = '' } = {}) {
  const el = h('span', { class: ['avatar', avatarClass(name), group && 'group', size], 'aria-hidden': 'true' }, group ? '#' : initials(name));
  if (presence && !presence.hidden) {
    el.append(h('span', {
      class: ['presence-dot', presence.online ? 'online' : 'offline'],
      testid: 'presence-dot', dataset: { online: String(Boolean(presence.online)) },
    }));
  }
  return el;
}
