// Modal forms on <dialog>: new direct chat, new group. Escape and the Cancel button close them.
import { h } from '../dom.js';

// fields: [{name, label, placeholder, testid}]; onSubmit(values) may throw an Error to show.
export function formDialog({ title, fields, submitLabel, testid, onSubmit }) {
  const inputs = fields.map((f) => h('input', {
    id: `dlg-${f.name}`, name: f.name, placeholder: f.placeholder || '', testid: f.testid,
    autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false',
  }));
  const error = h('p', { class: 'form-error', role: 'alert', testid: `${testid}-error`, hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn primary', testid: `${testid}-submit` }, submitLabel);
  const cancel = h('button', { type: 'button', class: 'btn', on: { click: () => dlg.close() } }, 'Cancel');
  const form = h('form', { method: 'dialog', class: 'dialog-form' },
    h('h2', {}, title),
    fields.map((f, i) => [h('label', { for: `dlg-${f.name}` }, f.label), inputs[i], f.hint ? h('p', { class: 'hint' }, f.hint) : null]),
    error,
    h('div', { class: 'dialog-actions' }, cancel, submit));
  const dlg = h('dialog', { class: 'dialog', testid }, form);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const values = Object.fromEntries(fields.map((f, i) => [f.name, inputs[i].value]));
    submit.disabled = true;
    try {
      await onSubmit(values);
      dlg.close();
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
  dlg.addEventListener('close', () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
  inputs[0].focus();
  return dlg;
}
