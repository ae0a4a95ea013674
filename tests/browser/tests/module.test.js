// The protocol module inside a browser page without the UI, its type declarations, and how
// parleyd serves the web client's files.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parley } from '../lib/api.js';
import { scenario } from '../lib/env.js';
import { startServer, webRoot } from '../lib/server.js';

const here = path.dirname(fileURLToPath(import.meta.url));

describe('the protocol module in a page', () => {
  scenario('an app page embeds parley-client.js without the UI', async (env) => {
    const page = await env.open('embedder');
    const result = await page.evaluate(async () => {
      const P = await import('/parley-client.js');
      const log = [];
      await P.register(undefined, 'ann', 'correct horse battery');
      await P.register(undefined, 'ben', 'correct horse battery');
      const a = await P.login(undefined, 'ann', 'correct horse battery');
      const b = await P.login(undefined, 'ben', 'correct horse battery');
      const ann = new P.ParleyClient({ token: a.token, backoff: { minMs: 50, maxMs: 100 } });
      const ben = new P.ParleyClient({ token: b.token });
      const synced = (c) => new Promise((r) => c.once('synced', r));
      const next = (c, ev, pred = () => true) => new Promise((r) => { const off = c.on(ev, (...x) => { if (pred(...x)) { off(); r(x); } }); });
      const ready = Promise.all([synced(ann), synced(ben)]);
      ann.on('state', (s) => log.push(`ann:${s.state}`));
      ann.start();
      ben.start();
      await ready;
      const got = next(ben, 'message');
      const ack = await ann.send('ben', 'hi <ben>');
      const [m, info] = await got;
      log.push(`ben got ${m.body} seq ${m.seq} via ${info.source}`);
      const receipt = next(ann, 'receipt', (r) => r.kind === 'read');
      await ben.markRead(ack.chat_id);
      log.push(`ann saw ${(await receipt)[0].user} read ${ack.seq}`);
      // drop the socket: the client reconnects by itself and a send waits for it
      ann.drop('test');
      const again = next(ben, 'message');
      await ann.send(ack.chat_id, 'after the drop');
      log.push(`ben got ${(await again)[0].body}`);
      const err = await ann.send('nobody-at-all', 'x').catch((e) => e);
      log.push(`error ${err instanceof P.ParleyError} ${err.code}`);
      const bad = await P.login(undefined, 'ann', 'wrong password').catch((e) => e);
      log.push(`login ${bad.code} ${bad.status}`);
      const { describeError } = await import('/app/errors.js');
      log.push(describeError({ code: 'rate_limited' }));
      log.push(describeError({ code: 'too_large' }, 'upload'));
      ann.stop();
      ben.stop();
      return log;
    });
    assert.deepEqual(result, [
      'ann:connecting', 'ann:online',
      'ben got hi <ben> seq 1 via push',
      'ann saw ben read 1',
      'ann:waiting', 'ann:connecting', 'ann:online',
      'ben got after the drop',
      'error true not_found',
      'login invalid_credentials 401',
      'You are going too fast. Wait a moment and try again.',
      'That file is too large to send.',
      'ann:closed',
    ]);
  });
});

describe('the module declarations', () => {
  test('parley-client.d.ts declares every export of parley-client.js', () => {
    const dts = fs.readFileSync(path.join(webRoot, 'parley-client.d.ts'), 'utf8');
    const declared = new Set([...dts.matchAll(/^export (?:declare )?(?:function|class|const|interface|type) (\w+)/gm)].map((m) => m[1]));
    for (const name of Object.keys(parley)) assert.ok(declared.has(name), `${name} is not declared`);
    const methods = Object.getOwnPropertyNames(parley.ParleyClient.prototype).filter((n) => !n.startsWith('_') && n !== 'constructor');
    const classBody = dts.slice(dts.indexOf('export class ParleyClient'));
    for (const m of methods) assert.match(classBody, new RegExp(`\\n  (readonly )?${m}[(<:]`), `ParleyClient.${m} is not declared`);
  });

  test('the embedding example type-checks (tsc --noEmit)', { timeout: 60000 }, async () => {
    const tsc = path.join(here, '../node_modules/typescript/bin/tsc');
    await promisify(execFile)(process.execPath, [tsc, '-p', path.join(here, '../tsconfig.json')], { timeout: 60000 })
      .catch((err) => { throw new Error(`tsc failed:\n${err.stdout}${err.stderr}`); });
  });
});

describe('static files', () => {
  test('parleyd serves the web client with content types, validators and a CSP', { timeout: 30000 }, async () => {
    const server = await startServer();
    try {
      const expect = {
        '/': 'text/html', '/app/main.js': 'javascript', '/parley-client.js': 'javascript',
        '/style.css': 'text/css', '/icon.svg': 'image/svg+xml', '/manifest.webmanifest': 'manifest+json',
      };
      for (const [p, type] of Object.entries(expect)) {
        const r = await fetch(server.url + p);
        assert.equal(r.status, 200, p);
        assert.ok(r.headers.get('content-type').includes(type), `${p}: ${r.headers.get('content-type')}`);
        assert.equal(r.headers.get('cache-control'), 'no-cache', p);
        const etag = r.headers.get('etag');
        assert.ok(etag, `${p} has an ETag`);
        const again = await fetch(server.url + p, { headers: { 'If-None-Match': etag } });
        assert.equal(again.status, 304, `${p} revalidates`);
      }
      const html = await fetch(server.url + '/');
      assert.match(html.headers.get('content-security-policy'), /script-src 'self'/);
      const body = await html.text();
      assert.doesNotMatch(body, /<script(?![^>]*\bsrc=)/, 'no inline script');
      assert.doesNotMatch(body, /style=|<style/, 'no inline style');
      assert.doesNotMatch(body, /https?:\/\/(?!127)/, 'nothing from another origin');
      // every module the page imports is served
      const imports = new Set();
      const walk = (file) => {
        const src = fs.readFileSync(path.join(webRoot, file), 'utf8');
        for (const m of src.matchAll(/from '(\.{1,2}\/[^']+)'/g)) {
          const dep = path.posix.normalize(path.posix.join(path.posix.dirname(file), m[1]));
          if (!imports.has(dep)) { imports.add(dep); walk(dep); }
        }
      };
      walk('app/main.js');
      for (const dep of imports) assert.equal((await fetch(`${server.url}/${dep}`)).status, 200, dep);
      assert.ok(imports.size > 10);
    } finally {
      await server.stop();
    }
  });
});
