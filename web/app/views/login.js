// The sign-in / create-account screen.
import { h } from '../dom.js';

export function loginView({ onSubmit, message }) {
  const username = h('input', {
    id: 'login-username', testid: 'login-username', name: 'username', autocomplete: 'username',
    autocapitalize: 'none', spellcheck: 'false', required: true, maxlength: '32',
  });
  const password = h('input', {
    id: 'login-password', testid: 'login-password', name: 'password', type: 'password',
    autocomplete: 'current-password', required: true,
  });
  const error = h('p', { class: 'form-error', testid: 'login-error', role: 'alert', hidden: !message }, message || '');
  const signIn = h('button', { type: 'submit', class: 'btn primary', testid: 'login-submit', value: 'login' }, 'Sign in');
  const create = h('button', { type: 'submit', class: 'btn', testid: 'register-submit', value: 'register' }, 'Create account');
  const form = h('form', { class: 'login-form', testid: 'login-form', novalidate: true },
    h('label', { for: 'login-username' }, 'Username'), username,
    h('label', { for: 'login-password' }, 'Password'), password,
    error,
    h('div', { class: 'login-actions' }, signIn, create));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const mode = e.submitter && e.submitter.value === 'register' ? 'register' : 'login';
    const u = username.value.trim().toLowerCase();
    if (!u || !password.value) {
      show('Enter a username and a password.');
      return;
    }
    signIn.disabled = create.disabled = true;
    form.setAttribute('aria-busy', 'true');
    try {
      await onSubmit(mode, u, password.value);
    } catch (err) {
      show(err.message);
      password.select();
    } finally {
      signIn.disabled = create.disabled = false;
      form.removeAttribute('aria-busy');
    }
  });

  function show(text) {
    error.textContent = text;
    error.hidden = false;
  }

  const el = h('main', { class: 'login-screen', testid: 'login-screen' },
    h('div', { class: 'login-card' },
      h('div', { class: 'brand' }, h('img', { src: '/icon.svg', alt: '', width: '40', height: '40' }), h('h1', {}, 'Parley')),
      h('p', { class: 'muted' }, 'Sign in, or create an account on this server.'),
      form));
  queueMicrotask(() => username.focus());
  return el;
}
