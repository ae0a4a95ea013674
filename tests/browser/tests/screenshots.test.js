// Screenshots of the main screens, desktop and phone sized (docs/WEB.md shows them).
// Saved to $PARLEY_SCREENSHOT_DIR (else a temporary folder); with PARLEY_UPDATE_SCREENSHOTS=1
// also to docs/screenshots/.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe } from 'node:test';
import { nodeClient, registerUser } from '../lib/api.js';
import { DESKTOP, PHONE, message, openChat, scenario, screenshot, send } from '../lib/env.js';
import { makePng } from '../lib/png.js';

async function both(page, name) {
  await page.setViewportSize(DESKTOP);
  const files = [await screenshot(page, `${name}-desktop`)];
  await page.setViewportSize(PHONE);
  files.push(await screenshot(page, `${name}-phone`));
  await page.setViewportSize(DESKTOP);
  for (const f of files) assert.ok(fs.statSync(f).size < 200 * 1024, `${f} under 200 KB`);
}

describe('screenshots', () => {
  scenario('main screens, desktop and phone', { timeout: 90000 }, async (env) => {
    const clients = [];
    try {
      // the others, driven from node
      const sessions = {};
      for (const u of ['bob', 'carol', 'dave']) sessions[u] = await registerUser(env.server, u);

      const alice = await env.open('alice');
      await alice.getByTestId('login-form').waitFor();
      await both(alice, 'login');
      await env.signUp(alice, 'alice');

      const bob = await nodeClient(env.server, sessions.bob);
      const carol = await nodeClient(env.server, sessions.carol);
      clients.push(bob, carol);
      const dave = await nodeClient(env.server, sessions.dave);
      await dave.send('alice', 'See you on Monday!');
      dave.stop(); // offline from now on, with a last-seen time

      // a direct chat with bob: text both ways, a picture from him, ticks on alice's side
      await bob.send('alice', 'Hey Alice! Are we still on for Saturday?');
      await openChat(alice, 'bob');
      await send(alice, 'Yes! Meet at the harbour at 10?');
      await message(alice, 'Yes! Meet at the harbour at 10?').waitFor();
      await bob.send('alice', 'Perfect. This was the view last time:');
      const up = await bob.uploadMedia(new Blob([makePng(480, 320)], { type: 'image/png' }));
      await bob.sendMedia('alice', { id: up.id, name: 'harbour.png', caption: 'Sunset from the pier' });
      await alice.getByTestId('message-image').and(alice.locator('[data-loaded="true"]')).waitFor();
      await send(alice, 'Wow, beautiful 😍\nI will bring the snacks.');
      await message(alice, 'Wow, beautiful 😍\nI will bring the snacks.').waitFor();
      const list = await bob.chats();
      await bob.markRead(list.chats[0].chat_id);
      await alice.locator('[data-testid="message"][data-status="read"]').last().waitFor();

      // a group where bob and carol read alice's last message
      const g = await bob.groupCreate('Weekend trip', ['alice', 'carol']);
      await carol.send(g.chat.chat_id, 'I booked the boat for 11:00.');
      await bob.send(g.chat.chat_id, 'Great, I will drive.');
      await openChat(alice, 'Weekend trip');
      await send(alice, 'I will take the train and meet you there.');
      await message(alice, 'I will take the train and meet you there.').waitFor();
      const readBoth = alice.getByTestId('read-by').filter({ hasText: 'Read by bob and carol' });
      await bob.markRead(g.chat.chat_id);
      await carol.markRead(g.chat.chat_id);
      await readBoth.waitFor();

      // carol writes to alice directly: an unread chat in the list
      await carol.send('alice', 'Do you have a spare life jacket?');
      await carol.send('alice', 'Mine is torn.');

      // the chat list (no chat open on a phone)
      await alice.getByTestId('back-button').evaluate((b) => b.click());
      await alice.getByTestId('no-chat').waitFor();
      await alice.getByTestId('chat-item').filter({ hasText: 'carol' }).getByTestId('unread-badge').filter({ hasText: '2' }).waitFor();
      await alice.getByTestId('chat-item').filter({ hasText: 'dave' }).locator('[data-online="false"]').waitFor();
      await alice.getByTestId('chat-item').filter({ hasText: 'bob' }).locator('[data-online="true"]').waitFor();
      // newest activity first
      assert.deepEqual(await alice.getByTestId('chat-name').allTextContents(), ['carol', 'Weekend trip', 'bob', 'dave']);
      await both(alice, 'chat-list');

      // the direct chat, bob typing
      await openChat(alice, 'bob');
      await alice.getByTestId('message-image').and(alice.locator('[data-loaded="true"]')).waitFor();
      await bob.typing('alice', 'start');
      await alice.getByTestId('typing-indicator').waitFor();
      await both(alice, 'direct');

      // the group with who has read, and its members panel
      await openChat(alice, 'Weekend trip');
      await readBoth.waitFor();
      await alice.setViewportSize(PHONE);
      await screenshot(alice, 'group-phone');
      await alice.setViewportSize(DESKTOP);
      await alice.getByTestId('group-info-button').click();
      await alice.getByTestId('member-row').nth(2).waitFor();
      await screenshot(alice, 'group-desktop');
    } finally {
      for (const c of clients) c.stop();
    }
  });
});
