// The connection banner: shown while the socket is not online, with a way to retry now.
import { h } from '../dom.js';

export class Banner {
  constructor(controller) {
    this.controller = controller;
    this.text = h('span', { class: 'banner-text' });
    this.retry = h('button', { class: 'btn small', testid: 'reconnect-button', on: { click: () => controller.client.reconnectNow() } }, 'Retry now');
    this.el = h('div', { class: 'banner', testid: 'connection-banner', role: 'status', 'aria-live': 'polite', hidden: true }, this.text, this.retry);
    this._everOnline = false;
  }

  render() {
    const s = this.controller.store.connection;
    if (s.state === 'online') this._everOnline = true;
    const show = s.state !== 'online' && s.state !== 'idle' && s.state !== 'closed';
    this.el.hidden = !show;
    this.el.dataset.state = s.state;
    if (!show) return;
    let text;
    if (typeof navigator !== 'undefined' && navigator.onLine === false) text = 'You are offline. Messages will be sent when you are back.';
    else if (s.state === 'connecting') text = this._everOnline ? 'Reconnecting…' : 'Connecting…';
    else text = `Connection lost. Reconnecting${s.retryInMs > 1500 ? ` in ${Math.round(s.retryInMs / 1000)} s` : ''}…`;
    this.text.textContent = text;
    this.retry.hidden = s.state !== 'waiting';
  }
}
