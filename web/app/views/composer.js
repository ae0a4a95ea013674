// The message box: Enter sends, Shift+Enter is a new line; a file can be attached (button,
// paste or drop) and is previewed before it is sent with the text as its caption.
import { h } from '../dom.js';
import { fileSize } from '../format.js';
import { icon } from '../icons.js';

export class Composer {
  constructor(controller) {
    this.controller = controller;
    this.file = null;
    this.previewUrl = null;
    this.input = h('textarea', {
      class: 'composer-input', testid: 'composer-input', rows: '1', placeholder: 'Message',
      'aria-label': 'Message', enterkeyhint: 'send',
    });
    this.fileInput = h('input', { type: 'file', class: 'visually-hidden', testid: 'file-input', tabindex: '-1', 'aria-hidden': 'true' });
    this.attach = h('button', { type: 'button', class: 'btn icon', testid: 'attach-button', title: 'Attach a file', 'aria-label': 'Attach a file', on: { click: () => this.fileInput.click() } }, icon('attach'));
    this.send = h('button', { type: 'submit', class: 'btn primary send', testid: 'send-button', 'aria-label': 'Send' }, 'Send');
    this.preview = h('div', { class: 'attachment-preview', testid: 'attachment-preview', hidden: true });
    this.form = h('form', { class: 'composer', testid: 'composer' },
      this.preview,
      h('div', { class: 'composer-row' }, this.attach, this.fileInput, this.input, this.send));

    this.form.addEventListener('submit', (e) => { e.preventDefault(); this.submit(); });
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.submit();
      } else if (e.key === 'Escape' && this.file) {
        this.clearFile();
      }
    });
    this.input.addEventListener('input', () => controller.typingInput(this.input.value.trim().length > 0));
    this.fileInput.addEventListener('change', () => {
      if (this.fileInput.files && this.fileInput.files[0]) this.setFile(this.fileInput.files[0]);
      this.fileInput.value = '';
    });
    this.input.addEventListener('paste', (e) => {
      const f = e.clipboardData && [...e.clipboardData.files][0];
      if (f) { e.preventDefault(); this.setFile(f); }
    });
    this.form.addEventListener('dragover', (e) => { e.preventDefault(); });
    this.form.addEventListener('drop', (e) => {
      e.preventDefault();
      const f = e.dataTransfer && e.dataTransfer.files[0];
      if (f) this.setFile(f);
    });
  }

  setFile(file) {
    this.clearFile();
    this.file = file;
    const isImage = /^image\/(jpeg|png|gif|webp)$/.test(file.type);
    if (isImage) this.previewUrl = URL.createObjectURL(file);
    this.preview.replaceChildren(
      isImage ? h('img', { src: this.previewUrl, alt: '', class: 'preview-image', testid: 'preview-image' }) : icon('file', 'file-icon'),
      h('span', { class: 'file-info' }, h('span', { class: 'file-name', testid: 'preview-name' }, file.name), h('span', { class: 'muted small' }, fileSize(file.size))),
      h('button', { type: 'button', class: 'btn icon', testid: 'preview-remove', 'aria-label': 'Remove the attachment', on: { click: () => this.clearFile() } }, icon('close')));
    this.preview.hidden = false;
    this.input.placeholder = 'Add a caption';
    this.input.focus();
  }

  clearFile() {
    if (this.previewUrl) URL.revokeObjectURL(this.previewUrl);
    this.file = null;
    this.previewUrl = null;
    this.preview.hidden = true;
    this.preview.replaceChildren();
    this.input.placeholder = 'Message';
  }

  submit() {
    const text = this.input.value;
    if (this.file) {
      if (this.controller.sendFile(this.file, text.trim())) {
        this.clearFile();
        this.input.value = '';
      }
    } else if (this.controller.sendText(text)) {
      this.input.value = '';
    }
    this.input.focus();
  }

  setEnabled(enabled, placeholder) {
    this.input.disabled = this.send.disabled = this.attach.disabled = !enabled;
    if (placeholder) this.input.placeholder = placeholder;
    else if (!this.file) this.input.placeholder = 'Message';
  }
}
