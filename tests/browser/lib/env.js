// One end-to-end scenario: its own parleyd, browser contexts (one per user or device), page
// console capture, diagnostics on failure and cleanup in every case.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { chromium } from 'playwright-core';
import { PASSWORD, registerUser } from './api.js';
import { repoRoot, startServer } from './server.js';

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync',
  '--disable-renderer-backgrounding', '--disable-background-timer-throttling', '--disable-backgrounding-occluded-windows'];

let browserPromise = null;

// One browser per test file (launching costs seconds); every scenario gets new contexts.
export function browser() {
  if (!browserPromise) {
    browserPromise = chromium.launch({
      executablePath: process.env.PARLEY_CHROMIUM || '/usr/bin/chromium',
      args: CHROMIUM_ARGS,
      timeout: 30000,
    });
  }
  return browserPromise;
}

// Registered at load time, so it belongs to the file, not to the first test that launched.
after(async () => {
  const b = browserPromise && await browserPromise.catch(() => null);
  if (b) await b.close();
});

export const screenshotDir = process.env.PARLEY_SCREENSHOT_DIR || path.join(os.tmpdir(), 'parley-screenshots');
const docsShots = path.join(repoRoot, 'docs/screenshots');

export async function screenshot(page, name) {
  fs.mkdirSync(screenshotDir, { recursive: true });
  const file = path.join(screenshotDir, `${name}.png`);
  await page.screenshot({ path: file, animations: 'disabled', caret: 'hide' });
  if (process.env.PARLEY_UPDATE_SCREENSHOTS === '1') {
    fs.mkdirSync(docsShots, { recursive: true });
    fs.copyFileSync(file, path.join(docsShots, `${name}.png`));
  }
  return file;
}

// Console noise that is not a client bug: the browser logs every non-2xx fetch and every
// WebSocket that cannot connect (the offline tests cut the network on purpose).
const BENIGN = [/Failed to load resource/, /WebSocket connection to .* failed/];

class Env {
  constructor(opts) {
    this.opts = opts;
    this.contexts = [];
    this.pages = [];
    this.log = [];
  }

  async start() {
    this.server = await startServer({ config: this.opts.config || '' });
    this.url = this.server.url;
  }

  // A new browser context (a new browser profile: own storage) with one page on the app.
  async open(label, opts) {
    return this.page(await this.context(opts), label);
  }

  async context({ viewport = DESKTOP } = {}) {
    const b = await browser();
    const context = await b.newContext({ viewport, deviceScaleFactor: 1, locale: 'en-GB', timezoneId: 'UTC' });
    context.setDefaultTimeout(10000);
    this.contexts.push(context);
    return context;
  }

  // Another tab in an existing context (shares localStorage, not sessionStorage).
  async page(context, label) {
    const page = await context.newPage();
    page.label = label;
    page.errors = [];
    page.on('console', (m) => {
      const line = `[${label}] console.${m.type()}: ${m.text()}`;
      this.log.push(line);
      if (m.type() === 'error' && !BENIGN.some((re) => re.test(m.text()))) page.errors.push(line);
    });
    page.on('pageerror', (err) => {
      const line = `[${label}] pageerror: ${err.message}`;
      this.log.push(line);
      page.errors.push(line);
    });
    this.pages.push(page);
    await page.goto(this.url + '/');
    return page;
  }

  // Registers through the UI and waits for the chat list.
  async signUp(page, username, password = PASSWORD) {
    await page.getByTestId('login-username').fill(username);
    await page.getByTestId('login-password').fill(password);
    await page.getByTestId('register-submit').click();
    await page.getByTestId('chat-list').waitFor();
    await page.getByTestId('me').filter({ hasText: username }).waitFor();
  }

  async signIn(page, username, password = PASSWORD) {
    await page.getByTestId('login-username').fill(username);
    await page.getByTestId('login-password').fill(password);
    await page.getByTestId('login-submit').click();
    await page.getByTestId('chat-list').waitFor();
  }

  // A user in a context of its own, signed in. Registered over HTTP; the browser profile is
  // seeded with the account token only, so the page takes the path of a new tab of a
  // signed-in browser (POST /v1/devices). The sign-in form has tests of its own.
  async user(username, opts) {
    const s = await registerUser(this.server, username);
    const context = await this.context(opts);
    await context.addInitScript((account) => {
      if (localStorage.getItem('parley.seeded')) return;
      localStorage.setItem('parley.seeded', '1');
      localStorage.setItem('parley.account', JSON.stringify(account));
    }, { user: s.user, token: s.token });
    const page = await this.page(context, username);
    await page.getByTestId('me').filter({ hasText: username }).waitFor();
    return page;
  }

  assertNoPageErrors() {
    const errors = this.pages.flatMap((p) => p.errors);
    if (errors.length) throw new Error(`errors in the page console:\n${errors.join('\n')}`);
  }

  dump(err) {
    const out = [`--- diagnostics: ${err && err.message}`];
    if (this.server) out.push('--- parleyd stderr (tail):', this.server.stderrTail(30));
    out.push('--- page console (tail):', ...this.log.slice(-40));
    console.error(out.join('\n'));
  }

  async close() {
    for (const c of this.contexts) await c.close().catch(() => {});
    if (this.server) await this.server.stop();
  }
}

// test() with an Env: a private server, cleanup even on failure, bounded in time.
export function scenario(name, opts, fn) {
  if (typeof opts === 'function') { fn = opts; opts = {}; }
  test(name, { timeout: opts.timeout ?? 60000 }, async (t) => {
    const env = new Env(opts);
    try {
      await env.start();
      await fn(env, t);
      env.assertNoPageErrors();
    } catch (err) {
      env.dump(err);
      const base = `failure-${name.replace(/\W+/g, '-').slice(0, 40)}`;
      for (const p of env.pages) {
        if (!p.isClosed()) await screenshot(p, `${base}-${p.label.replace(/\W+/g, '-')}`).catch(() => {});
      }
      console.error(`# screenshots of the pages: ${screenshotDir}/${base}-*.png`);
      throw err;
    } finally {
      await env.close();
    }
  });
}

// Page helpers ---------------------------------------------------------------------------

export async function startChat(page, peer) {
  await page.getByTestId('new-chat-button').click();
  await page.getByTestId('new-chat-user').fill(peer);
  await page.getByTestId('new-chat-dialog-submit').click();
  await page.getByTestId('chat-title').filter({ hasText: peer }).waitFor();
}

export async function openChat(page, title) {
  await page.getByTestId('chat-item').filter({ has: page.getByTestId('chat-name').getByText(title, { exact: true }) }).click();
  await page.getByTestId('chat-title').filter({ hasText: title }).waitFor();
}

export async function send(page, text) {
  const input = page.getByTestId('composer-input');
  await input.fill(text);
  await input.press('Enter');
}

// Waits until the conversation shows a (server-acknowledged) message with this text.
export function message(page, text) {
  return page.getByTestId('message').filter({ has: page.getByTestId('message-text').getByText(text, { exact: true }) });
}

export async function texts(page) {
  return page.getByTestId('message').getByTestId('message-text').allTextContents();
}
