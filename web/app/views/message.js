// One message row: a bubble (text, image or file) with time and ticks, or an event line.
// Text goes in with textContent only; `white-space: pre-wrap` keeps its line breaks.
import { h } from '../dom.js';
import { eventText, fileSize, listNames, timeOfDay } from '../format.js';
import { icon } from '../icons.js';

const TICKS = { sent: '✓', delivered: '✓✓', read: '✓✓', failed: '!' };
const TICK_LABEL = { sending: 'Sending', sent: 'Sent', delivered: 'Delivered', read: 'Read', failed: 'Not sent' };

export function tick(status, title) {
  return h('span', { class: ['tick', status], testid: 'tick', dataset: { status }, title: title || TICK_LABEL[status], 'aria-label': title || TICK_LABEL[status] }, status === 'sending' ? icon('clock') : TICKS[status]);
}

export function eventRow(m, me) {
  return h('li', { class: 'event-row', testid: 'event', dataset: { seq: String(m.seq) } }, h('span', {}, eventText(m.event, me)));
}

export function dayRow(label) {
  return h('li', { class: 'day-row' }, h('span', {}, label));
}

// ctx: {me, group, status, readers, showReadBy, showSender, media (MediaCache), onOpenImage}
export function messageRow(m, ctx) {
  const own = m.sender === ctx.me;
  const bubble = h('div', { class: 'bubble' });
  if (ctx.group && !own && ctx.showSender) bubble.append(h('div', { class: 'sender', testid: 'message-sender' }, m.sender));
  if (m.kind === 'media' && m.media) bubble.append(mediaContent(m.media, ctx));
  const text = m.kind === 'media' ? (m.media && m.media.caption) : m.body;
  if (text) bubble.append(h('div', { class: 'text', testid: 'message-text' }, text));
  const meta = h('div', { class: 'meta' }, h('time', { datetime: new Date(m.ts).toISOString() }, timeOfDay(m.ts)));
  if (own) meta.append(tick(ctx.status, ctx.group && ctx.readers.length ? `Read by ${listNames(ctx.readers)}` : undefined));
  bubble.append(meta);
  const row = h('li', {
    class: ['msg', own ? 'own' : 'theirs'], testid: 'message',
    dataset: { seq: String(m.seq), sender: m.sender, status: own ? ctx.status : '' },
  }, bubble);
  if (own && ctx.showReadBy) {
    row.append(h('div', { class: 'read-by muted small', testid: 'read-by' },
      ctx.readers.length ? `Read by ${listNames(ctx.readers)}` : (ctx.status === 'delivered' ? 'Delivered' : 'Sent')));
  }
  return row;
}

function mediaContent(media, ctx) {
  if (media.kind === 'image' && media.thumbnail) {
    const t = media.thumbnail;
    const img = h('img', {
      class: 'thumb', testid: 'message-image', alt: media.name || 'image',
      width: String(t.width || 320), height: String(t.height || 240),
    });
    const local = ctx.localPreview;
    const url = ctx.media.url(t.id) || local;
    if (url) img.src = url;
    if (!ctx.media.url(t.id)) ctx.media.load(t.id).then((u) => { img.src = u; img.dataset.loaded = 'true'; }).catch(() => img.classList.add('broken'));
    else img.dataset.loaded = 'true';
    img.addEventListener('load', () => ctx.onMediaLoad && ctx.onMediaLoad());
    return h('button', { class: 'thumb-button', 'aria-label': `Open ${media.name || 'image'}`, on: { click: () => ctx.onOpenImage(media) } }, img);
  }
  return fileCard(media.name || 'file', media.size, () => ctx.media.save(media.id, media.name));
}

export function fileCard(name, size, onDownload) {
  return h('div', { class: 'file-card', testid: 'message-file' },
    icon('file', 'file-icon'),
    h('span', { class: 'file-info' }, h('span', { class: 'file-name' }, name), h('span', { class: 'muted small' }, size ? fileSize(size) : '')),
    onDownload ? h('button', { class: 'btn small', testid: 'download-button', on: { click: onDownload } }, 'Download') : null);
}

// A message of ours not acknowledged yet: uploading, sending or failed (with retry).
export function pendingRow(p, { onRetry, onDiscard }) {
  const bubble = h('div', { class: 'bubble' });
  if (p.kind === 'media') {
    if (p.previewUrl) bubble.append(h('img', { class: 'thumb', src: p.previewUrl, alt: p.file.name, testid: 'pending-image' }));
    else bubble.append(fileCard(p.file.name, p.file.size, null));
    if (p.state === 'uploading') {
      bubble.append(h('progress', { class: 'upload-progress', testid: 'upload-progress', max: '1', value: String(p.progress || 0), 'aria-label': 'Upload progress' }));
    }
  }
  if (p.body) bubble.append(h('div', { class: 'text', testid: 'message-text' }, p.body));
  const status = p.state === 'failed' ? 'failed' : 'sending';
  bubble.append(h('div', { class: 'meta' }, h('time', {}, timeOfDay(p.ts)), tick(status)));
  const row = h('li', { class: ['msg', 'own', 'pending', p.state], testid: 'message', dataset: { status, pending: 'true' } }, bubble);
  if (p.state === 'failed') {
    row.append(h('div', { class: 'failed-line small', testid: 'send-error' },
      h('span', {}, p.error || 'Not sent.'), ' ',
      h('button', { class: 'link', testid: 'retry-button', on: { click: onRetry } }, 'Retry'), ' ',
      h('button', { class: 'link', on: { click: onDiscard } }, 'Discard')));
  }
  return row;
}
