// Small formatting helpers: times, sizes, names, event lines.

export function timeOfDay(ts) {
  return new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

// "10:42" today, "Mon" this week, "12/03" before.
export function shortWhen(ts, now = Date.now()) {
  const d = new Date(ts);
  const today = new Date(now);
  if (d.toDateString() === today.toDateString()) return timeOfDay(ts);
  if (now - ts < 6 * 86400000) return d.toLocaleDateString([], { weekday: 'short' });
  return d.toLocaleDateString([], { day: '2-digit', month: '2-digit' });
}

export function dayLabel(ts, now = Date.now()) {
  const d = new Date(ts);
  const today = new Date(now);
  if (d.toDateString() === today.toDateString()) return 'Today';
  const y = new Date(now - 86400000);
  if (d.toDateString() === y.toDateString()) return 'Yesterday';
  return d.toLocaleDateString([], { weekday: 'long', day: 'numeric', month: 'long' });
}

export function lastSeen(p, now = Date.now()) {
  if (!p || p.hidden) return '';
  if (p.online) return 'online';
  if (!p.last_seen) return 'offline';
  const mins = Math.round((now - p.last_seen) / 60000);
  if (mins < 1) return 'last seen just now';
  if (mins < 60) return `last seen ${mins} min ago`;
  return `last seen ${shortWhen(p.last_seen, now)}`;
}

export function fileSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KB`;
  return `${(n / 1048576).toFixed(1)} MB`;
}

export function listNames(users) {
  if (users.length <= 1) return users.join('');
  return `${users.slice(0, -1).join(', ')} and ${users[users.length - 1]}`;
}

// One line for a group event message (docs/PROTOCOL.md §3.9).
export function eventText(ev, me) {
  const who = (u) => (u === me ? 'you' : u);
  const by = ev.by ? who(ev.by) : 'someone';
  const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);
  switch (ev.event) {
    case 'created': return `${cap(by)} created the group “${ev.name}”`;
    case 'renamed': return `${cap(by)} renamed the group to “${ev.name}”`;
    case 'members_added': return `${cap(by)} added ${listNames((ev.users || []).map(who))}`;
    case 'member_removed': return `${cap(by)} removed ${who(ev.user)}`;
    case 'member_left': return `${cap(who(ev.user))} left`;
    case 'role_changed': return `${cap(by)} made ${who(ev.user)} ${ev.role === 'admin' ? 'an admin' : 'a member'}`;
    case 'owner_changed': return `${cap(by)} made ${who(ev.user)} the owner`;
    case 'group_deleted': return `${cap(by)} deleted the group`;
    case 'settings_changed': return `${cap(by)} ${ev.full_history ? 'let new members read the history' : 'hid the history from new members'}`;
    default: return 'The group changed';
  }
}

// A preview line for the chat list.
export function previewText(m, me) {
  if (!m) return '';
  const prefix = m.sender === me ? 'You: ' : '';
  if (m.kind === 'event' && m.event) return eventText(m.event, me);
  if (m.kind === 'media' && m.media) {
    const what = m.media.kind === 'image' ? 'Photo' : `File: ${m.media.name || 'file'}`;
    return prefix + (m.media.caption ? `${what}: ${m.media.caption}` : what);
  }
  return prefix + (m.body || '');
}

// A stable colour per name for avatars (one of the palette classes in style.css).
export function avatarClass(name) {
  let x = 0;
  for (const ch of String(name)) x = (x * 31 + ch.codePointAt(0)) >>> 0;
  return `avatar-c${x % 8}`;
}

export function initials(name) {
  const s = String(name || '?').replace(/[^\p{L}\p{N}]+/gu, ' ').trim();
  const parts = s.split(' ').filter(Boolean);
  if (!parts.length) return '?';
  if (parts.length === 1) return parts[0].slice(0, 2).toUpperCase();
  return (parts[0][0] + parts[1][0]).toUpperCase();
}
