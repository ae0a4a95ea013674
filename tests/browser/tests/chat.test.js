// Two people chatting in two browser contexts: messages both ways, typing, ticks, images,
// errors, and text that looks like HTML.
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { PASSWORD, registerUser } from '../lib/api.js';
import { message, openChat, scenario, send, startChat, texts } from '../lib/env.js';
import { makePng, tempFile } from '../lib/png.js';

describe('direct chat in the browser', () => {
  scenario('two users chat both ways', async (env) => {
    const alice = await env.user('alice');
    const bob = await env.user('bob');
    await startChat(alice, 'bob');
    await send(alice, 'hi bob');
    await message(alice, 'hi bob').waitFor();
    // bob sees the chat appear with an unread count, opens it and answers
    const item = bob.getByTestId('chat-item').filter({ hasText: 'alice' });
    await item.getByTestId('unread-badge').filter({ hasText: '1' }).waitFor();
    await openChat(bob, 'alice');
    await message(bob, 'hi bob').waitFor();
    await item.getByTestId('unread-badge').waitFor({ state: 'detached' });
    await send(bob, 'hello alice');
    await message(alice, 'hello alice').waitFor();
    // Shift+Enter is a new line, Enter sends
    const input = alice.getByTestId('composer-input');
    await input.fill('how are you?');
    await input.press('Shift+Enter');
    await input.pressSequentially('all good here');
    await input.press('Enter');
    await message(bob, 'how are you?\nall good here').waitFor();
    assert.equal(await input.inputValue(), '');
    assert.deepEqual(await texts(bob), ['hi bob', 'hello alice', 'how are you?\nall good here']);
    assert.deepEqual(await texts(alice), ['hi bob', 'hello alice', 'how are you?\nall good here']);
  });

  scenario('typing shows and disappears', async (env) => {
    const alice = await env.user('alice');
    const bob = await env.user('bob');
    await startChat(alice, 'bob');
    await send(alice, 'hi');
    await openChat(bob, 'alice');
    await message(bob, 'hi').waitFor();
    const indicator = bob.getByTestId('typing-indicator');
    await alice.getByTestId('composer-input').pressSequentially('I am wri');
    await indicator.filter({ hasText: 'alice is typing' }).waitFor();
    await bob.getByTestId('chat-status').filter({ hasText: 'typing' }).waitFor();
    // clearing the box stops it
    await alice.getByTestId('composer-input').fill('');
    await alice.getByTestId('composer-input').press('Backspace');
    await indicator.waitFor({ state: 'hidden' });
    // typing again, then sending: the message replaces the indicator
    await alice.getByTestId('composer-input').pressSequentially('again');
    await indicator.waitFor({ state: 'visible' });
    await alice.getByTestId('composer-input').press('Enter');
    await message(bob, 'again').waitFor();
    await indicator.waitFor({ state: 'hidden' });
  });

  scenario('delivered and read ticks appear', async (env) => {
    const alice = await env.user('alice');
    const bob = await env.user('bob');
    await startChat(alice, 'bob');
    await send(alice, 'are you there?');
    const mine = message(alice, 'are you there?');
    // bob's tab is open on his chat list: the message is delivered, not read
    await bob.getByTestId('chat-item').filter({ hasText: 'alice' }).waitFor();
    await mine.and(alice.locator('[data-status="delivered"]')).waitFor();
    await openChat(bob, 'alice');
    await mine.and(alice.locator('[data-status="read"]')).waitFor();
    assert.equal(await mine.getByTestId('tick').getAttribute('data-status'), 'read');
  });

  scenario('text that looks like HTML is shown as text', async (env) => {
    const alice = await env.user('alice');
    const bob = await env.user('bob');
    const attacks = [
      '<img src=x onerror="window.__xss=1">',
      '<script>window.__xss=2</script><b>bold</b>',
      '"><svg onload="window.__xss=3"></svg>&amp; &lt;',
    ];
    await startChat(alice, 'bob');
    for (const a of attacks) {
      await send(alice, a);
      await message(alice, a).waitFor();
    }
    await openChat(bob, 'alice');
    for (const a of attacks) await message(bob, a).waitFor();
    for (const page of [alice, bob]) {
      assert.deepEqual(await texts(page), attacks);
      assert.equal(await page.evaluate(() => window.__xss), undefined);
      assert.equal(await page.locator('[data-testid="messages"] img, [data-testid="messages"] b, [data-testid="messages"] svg:not(.ico), [data-testid="messages"] script').count(), 0);
    }
    // the chat list preview is text too
    const preview = await bob.getByTestId('chat-preview').first().textContent();
    assert.equal(preview, attacks[2]);
  });

  scenario('an image message shows its thumbnail for the other user', async (env) => {
    const alice = await env.user('alice');
    const bob = await env.user('bob');
    await startChat(alice, 'bob');
    await send(alice, 'look at this');
    await openChat(bob, 'alice');
    await message(bob, 'look at this').waitFor();
    await alice.getByTestId('file-input').setInputFiles(tempFile('sunset.png', makePng()));
    await alice.getByTestId('attachment-preview').getByTestId('preview-image').waitFor();
    assert.equal(await alice.getByTestId('preview-name').textContent(), 'sunset.png');
    await alice.getByTestId('composer-input').fill('sunset <b>tonight</b>');
    await alice.getByTestId('composer-input').press('Enter');
    const mine = alice.getByTestId('message').filter({ has: alice.getByTestId('message-image') });
    await mine.and(alice.locator('[data-seq]:not([data-seq=""])')).waitFor();
    const theirs = bob.getByTestId('message').filter({ has: bob.getByTestId('message-image') });
    const img = theirs.getByTestId('message-image');
    await img.and(bob.locator('[data-loaded="true"]')).waitFor();
    await bob.waitForFunction(() => {
      const i = document.querySelector('[data-testid="message-image"]');
      return i && i.complete && i.naturalWidth > 0;
    });
    const { src, w, h } = await img.evaluate((i) => ({ src: i.src, w: i.naturalWidth, h: i.naturalHeight }));
    assert.match(src, /^blob:/);
    assert.equal(w, 320); // the server's thumbnail of a 480x320 picture
    assert.equal(h, 213);
    assert.equal(await theirs.getByTestId('message-text').textContent(), 'sunset <b>tonight</b>');
    // clicking opens the full picture
    await img.click();
    await bob.getByTestId('image-viewer').waitFor();
    await bob.waitForFunction(() => {
      const i = document.querySelector('[data-testid="viewer-image"]');
      return i && i.complete && i.naturalWidth === 480;
    });
    await bob.keyboard.press('Escape');
    await bob.getByTestId('image-viewer').waitFor({ state: 'detached' });
    // and the chat list says what it is
    assert.equal(await bob.getByTestId('chat-preview').first().textContent(), 'Photo: sunset <b>tonight</b>');
  });

  scenario('a file shows upload progress and can be downloaded', async (env) => {
    const alice = await env.user('alice');
    const bob = await env.user('bob');
    await startChat(alice, 'bob');
    await send(alice, 'a file is coming');
    // a slow upload link, so that the progress bar is seen moving
    const cdp = await alice.context().newCDPSession(alice);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 256 * 1024 });
    const text = 'notes\n'.repeat(150000); // 900 KB of text/plain
    await alice.getByTestId('file-input').setInputFiles(tempFile('notes.txt', text));
    await alice.getByTestId('attachment-preview').filter({ hasText: 'notes.txt' }).waitFor();
    await alice.getByTestId('send-button').click();
    const progress = alice.getByTestId('upload-progress');
    await progress.waitFor();
    await alice.waitForFunction(() => {
      const p = document.querySelector('[data-testid="upload-progress"]');
      return p && p.value > 0 && p.value < 1;
    });
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    await progress.waitFor({ state: 'detached', timeout: 20000 });
    await openChat(bob, 'alice');
    const file = bob.getByTestId('message-file').filter({ hasText: 'notes.txt' });
    await file.waitFor();
    const download = bob.waitForEvent('download');
    await file.getByTestId('download-button').click();
    const d = await download;
    assert.equal(d.suggestedFilename(), 'notes.txt');
    const fs = await import('node:fs');
    assert.equal(fs.readFileSync(await d.path(), 'utf8'), text);
  });

  scenario('too large a file is refused with a readable error', { config: '[media]\nmax_upload_bytes = 100000\n' }, async (env) => {
    const alice = await env.user('alice');
    await registerUser(env.server, 'bob');
    await startChat(alice, 'bob');
    await send(alice, 'hi');
    await message(alice, 'hi').waitFor();
    await alice.getByTestId('file-input').setInputFiles(tempFile('big.txt', 'x'.repeat(300000)));
    await alice.getByTestId('send-button').click();
    await alice.getByTestId('send-error').filter({ hasText: 'That file is too large to send.' }).waitFor();
    await alice.getByTestId('toast').filter({ hasText: 'too large' }).waitFor();
    // it can be discarded
    await alice.getByTestId('send-error').getByRole('button', { name: 'Discard' }).click();
    await alice.getByTestId('send-error').waitFor({ state: 'detached' });
  });

  scenario('a message to a user that does not exist says so', async (env) => {
    const alice = await env.user('alice');
    await startChat(alice, 'nobody');
    await send(alice, 'hello?');
    await alice.getByTestId('send-error').filter({ hasText: 'No user with that name.' }).waitFor();
  });

  scenario('wrong password and taken names give readable errors', async (env) => {
    await registerUser(env.server, 'alice');
    const page = await env.open('visitor');
    await page.getByTestId('login-username').fill('alice');
    await page.getByTestId('login-password').fill('not the password');
    await page.getByTestId('login-submit').click();
    await page.getByTestId('login-error').filter({ hasText: 'Wrong username or password.' }).waitFor();
    await page.getByTestId('register-submit').click();
    await page.getByTestId('login-error').filter({ hasText: 'That username is taken.' }).waitFor();
    await page.getByTestId('login-username').fill('zed');
    await page.getByTestId('login-password').fill('short');
    await page.getByTestId('register-submit').click();
    await page.getByTestId('login-error').filter({ hasText: 'at least 8 characters' }).waitFor();
    // and the right password works
    await page.getByTestId('login-username').fill('alice');
    await page.getByTestId('login-password').fill(PASSWORD);
    await page.getByTestId('login-submit').click();
    await page.getByTestId('me').filter({ hasText: 'alice' }).waitFor();
    // signing out returns to the sign-in screen
    await page.getByTestId('logout-button').click();
    await page.getByTestId('login-form').waitFor();
    await page.reload();
    await page.getByTestId('login-form').waitFor();
  });
});
