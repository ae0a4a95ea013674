// Going offline and coming back: a network cut (banner, reconnect, sync), a closed browser
// (a new device catches up), a reload, and two tabs as two devices.
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { message, openChat, scenario, send, startChat, texts } from '../lib/env.js';

async function chatting(env) {
  const alice = await env.user('alice');
  const bob = await env.user('bob');
  await startChat(alice, 'bob');
  await send(alice, 'first');
  await openChat(bob, 'alice');
  await message(bob, 'first').waitFor();
  return { alice, bob };
}

describe('offline and back', () => {
  scenario('a network cut shows a banner, and messages arrive in order after it', async (env) => {
    const { alice, bob } = await chatting(env);
    const banner = bob.getByTestId('connection-banner');
    assert.equal(await banner.isVisible(), false);
    // alice sees bob online
    await alice.getByTestId('chat-status').filter({ hasText: 'online' }).waitFor();

    await bob.context().setOffline(true);
    await banner.waitFor({ state: 'visible' });
    assert.match(await banner.textContent(), /offline/i);
    // the server closed bob's session: alice sees him go offline
    await alice.getByTestId('chat-status').filter({ hasText: 'last seen' }).waitFor();
    for (const t of ['second', 'third', 'fourth']) {
      await send(alice, t);
      await message(alice, t).and(alice.locator('[data-status="sent"]')).waitFor();
    }
    // bob writes while cut off: it waits, marked as sending
    await send(bob, 'sent while offline');
    await bob.getByTestId('message').and(bob.locator('[data-pending="true"]')).waitFor();
    assert.deepEqual(await texts(bob), ['first', 'sent while offline']);

    await bob.context().setOffline(false);
    await banner.waitFor({ state: 'hidden' });
    await message(bob, 'fourth').waitFor();
    await message(alice, 'sent while offline').waitFor();
    await bob.getByTestId('message').and(bob.locator('[data-pending="true"]')).waitFor({ state: 'detached' });
    const seen = await texts(bob);
    assert.deepEqual(seen.filter((t) => t !== 'sent while offline'), ['first', 'second', 'third', 'fourth']);
    // the messages are read once they are on bob's screen
    await message(alice, 'fourth').and(alice.locator('[data-status="read"]')).waitFor();
    await alice.getByTestId('chat-status').filter({ hasText: 'online' }).waitFor();

    // a reload keeps this tab's device and its place
    await bob.reload();
    await bob.getByTestId('chat-list').waitFor();
    await openChat(bob, 'alice');
    await message(bob, 'fourth').waitFor();
    assert.equal(await bob.getByTestId('login-form').count(), 0);
  });

  scenario('a closed browser comes back and sees what it missed, in order', async (env) => {
    const { alice, bob } = await chatting(env);
    await message(alice, 'first').and(alice.locator('[data-status="read"]')).waitFor();
    await bob.context().close();
    const sent = ['one', 'two', 'three', '<b>four</b>'];
    for (const t of sent) await send(alice, t);
    for (const t of sent) await message(alice, t).and(alice.locator('[data-status="sent"]')).waitFor();
    const back = await env.open('bob again');
    await env.signIn(back, 'bob');
    const item = back.getByTestId('chat-item').filter({ hasText: 'alice' });
    await item.getByTestId('unread-badge').filter({ hasText: String(sent.length) }).waitFor();
    await openChat(back, 'alice');
    await message(back, '<b>four</b>').waitFor();
    assert.deepEqual(await texts(back), ['first', ...sent]);
    await message(alice, '<b>four</b>').and(alice.locator('[data-status="read"]')).waitFor();
  });

  scenario('two tabs are two devices, and both receive messages', async (env) => {
    const alice = await env.user('alice');
    const tab1 = await env.user('bob');
    const tab2 = await env.page(tab1.context(), 'bob tab 2');
    // The second tab gets a device of its own from the account token (POST /v1/devices),
    // without asking for the password.
    await tab2.getByTestId('chat-list').waitFor();
    assert.equal(await tab2.getByTestId('login-form').count(), 0);
    const device = (p) => p.evaluate(() => JSON.parse(sessionStorage.getItem('parley.tab')).deviceId);
    const [d1, d2] = [await device(tab1), await device(tab2)];
    assert.notEqual(d1, d2);
    assert.match(d1, /^d[0-9a-f]{16}$/);

    await startChat(alice, 'bob');
    await send(alice, 'to every tab');
    for (const tab of [tab1, tab2]) {
      await tab.getByTestId('chat-item').filter({ hasText: 'alice' }).getByTestId('unread-badge').waitFor();
    }
    // reading in one tab clears the count in the other (the read receipt reaches own devices)
    await openChat(tab1, 'alice');
    await message(tab1, 'to every tab').waitFor();
    await tab2.getByTestId('chat-item').filter({ hasText: 'alice' }).getByTestId('unread-badge').waitFor({ state: 'detached' });
    // a message sent from tab 2 shows up in tab 1
    await openChat(tab2, 'alice');
    await send(tab2, 'from the second tab');
    await message(tab1, 'from the second tab').waitFor();
    await message(alice, 'from the second tab').waitFor();
    // each tab reloads into its own device
    await tab2.reload();
    await tab2.getByTestId('chat-list').waitFor();
    assert.equal(await device(tab2), d2);

    // a closed tab leaves its device; once it has been silent long enough, the next new tab
    // revokes it (here "long enough" is made to have passed by editing the heartbeat)
    await tab2.close();
    await tab1.evaluate((id) => {
      const tabs = JSON.parse(localStorage.getItem('parley.tabs'));
      tabs[id] = Date.now() - 3600000;
      localStorage.setItem('parley.tabs', JSON.stringify(tabs));
    }, d2);
    const tab3 = await env.page(tab1.context(), 'bob tab 3');
    await tab3.getByTestId('chat-list').waitFor();
    const live = await tab3.evaluate(async () => {
      const { listDevices } = await import('/parley-client.js');
      const account = JSON.parse(localStorage.getItem('parley.account'));
      return (await listDevices(undefined, account.token)).devices.map((d) => d.device_id);
    });
    assert.ok(live.includes(d1) && live.includes(await device(tab3)));
    assert.ok(!live.includes(d2), 'the closed tab\'s device was revoked');
  });

  scenario('a server without POST /v1/devices: a second tab asks to sign in', async (env) => {
    const tab1 = await env.user('bob');
    await tab1.context().route('**/v1/devices', (route) => route.fulfill({
      status: 404, contentType: 'application/json',
      body: JSON.stringify({ error: { code: 'not_found', message: 'no route for /v1/devices' } }),
    }));
    const tab2 = await env.page(tab1.context(), 'bob tab 2');
    await tab2.getByTestId('login-form').waitFor();
    await env.signIn(tab2, 'bob');
    const device = (p) => p.evaluate(() => JSON.parse(sessionStorage.getItem('parley.tab')).deviceId);
    assert.notEqual(await device(tab1), await device(tab2));
  });
});
