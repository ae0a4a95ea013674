// History pages in as the reader scrolls up.
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { nodeClient, registerUser } from '../lib/api.js';
import { message, openChat, scenario, texts } from '../lib/env.js';

describe('history', () => {
  scenario('older messages load as you scroll up, in order', async (env) => {
    const a = await registerUser(env.server, 'alice');
    await registerUser(env.server, 'bob');
    const alice = await nodeClient(env.server, a);
    const total = 130; // more than two pages of 50
    try {
      for (let i = 1; i <= total; i++) await alice.send('bob', `message ${i}`);
    } finally {
      alice.stop();
    }
    const bob = await env.open('bob');
    await env.signIn(bob, 'bob');
    await openChat(bob, 'alice');
    await message(bob, `message ${total}`).waitFor();
    const shown = await bob.getByTestId('message').count();
    assert.ok(shown < total, `only the newest page at first (${shown})`);
    const scroller = bob.getByTestId('message-scroller');
    // scroll up until the beginning of the chat shows
    for (let round = 0; round < 10; round++) {
      if (await bob.getByTestId('history-start').count()) break;
      const before = await bob.getByTestId('message').count();
      await scroller.evaluate((el) => { el.scrollTop = 0; });
      await bob.waitForFunction((n) => document.querySelectorAll('[data-testid="message"]').length > n
        || document.querySelector('[data-testid="history-start"]'), before);
    }
    await bob.getByTestId('history-start').waitFor();
    const expected = Array.from({ length: total }, (_, i) => `message ${i + 1}`);
    assert.deepEqual(await texts(bob), expected);
    // the reader stays where they were: not thrown to the bottom by a page loading
    const top = await scroller.evaluate((el) => el.scrollTop);
    const bottom = await scroller.evaluate((el) => el.scrollHeight - el.clientHeight);
    assert.ok(top < bottom, 'still near the top');
  });
});
