// A three-user group: created in the UI, messages to everyone, who has read, members managed.
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { message, openChat, scenario, send, texts } from '../lib/env.js';

describe('groups in the browser', () => {
  scenario('a three-user group: chat, who has read, manage members', async (env) => {
    const alice = await env.user('alice');
    const bob = await env.user('bob');
    const carol = await env.user('carol');
    const name = 'trip <i>2025</i>';
    await alice.getByTestId('new-group-button').click();
    await alice.getByTestId('new-group-name').fill(name);
    await alice.getByTestId('new-group-members').fill('bob, carol');
    await alice.getByTestId('new-group-dialog-submit').click();
    await alice.getByTestId('chat-title').filter({ hasText: name }).waitFor();
    await alice.getByTestId('event').filter({ hasText: 'You created the group' }).waitFor();
    await alice.getByTestId('chat-status').filter({ hasText: '3 members' }).waitFor();

    // the others find it in their list, its name as text
    for (const p of [bob, carol]) {
      await p.getByTestId('chat-item').filter({ hasText: name }).waitFor();
      assert.equal(await p.getByTestId('chat-name').filter({ hasText: 'trip' }).textContent(), name);
      assert.equal(await p.locator('[data-testid="chat-list"] i').count(), 0);
    }
    await send(alice, 'hello team');
    const mine = message(alice, 'hello team');
    await mine.waitFor();
    const readBy = alice.getByTestId('read-by');
    await openChat(bob, name);
    await message(bob, 'hello team').waitFor();
    assert.equal(await message(bob, 'hello team').getByTestId('message-sender').textContent(), 'alice');
    await readBy.filter({ hasText: 'Read by bob' }).waitFor();
    assert.equal(await mine.getByTestId('tick').getAttribute('data-status'), 'delivered');
    await openChat(carol, name);
    await message(carol, 'hello team').waitFor();
    await readBy.filter({ hasText: 'Read by bob and carol' }).waitFor();
    await mine.and(alice.locator('[data-status="read"]')).waitFor();

    await send(carol, 'hi all');
    await message(alice, 'hi all').waitFor();
    await message(bob, 'hi all').waitFor();
    assert.equal(await message(bob, 'hi all').getByTestId('message-sender').textContent(), 'carol');
    assert.deepEqual(await texts(bob), ['hello team', 'hi all']);

    // alice manages the members: bob becomes admin, carol is removed
    await alice.getByTestId('group-info-button').click();
    const panel = alice.getByTestId('group-panel');
    await panel.getByTestId('member-row').nth(2).waitFor();
    assert.deepEqual(await panel.getByTestId('member-row').evaluateAll((rows) => rows.map((r) => `${r.dataset.user}:${r.dataset.role}`)),
      ['alice:owner', 'bob:member', 'carol:member']);
    await panel.locator('[data-user="bob"]').getByTestId('promote-member').click();
    await panel.locator('[data-user="bob"][data-role="admin"]').waitFor();
    await bob.getByTestId('event').filter({ hasText: 'Alice made you an admin' }).waitFor();
    await panel.locator('[data-user="carol"]').getByTestId('remove-member').click();
    await panel.locator('[data-user="carol"]').waitFor({ state: 'detached' });
    await carol.getByTestId('event').filter({ hasText: 'Alice removed you' }).waitFor();
    await carol.getByTestId('composer-input').and(carol.locator(':disabled')).waitFor();
    // adding someone who does not exist is a readable error
    await panel.getByTestId('add-member-input').fill('nobody');
    await panel.getByTestId('add-member-button').click();
    await panel.getByTestId('group-error').filter({ hasText: 'No such user' }).waitFor();
    // bob, now admin, adds carol back; she sees the group again and can write
    await openChat(bob, name);
    await bob.getByTestId('group-info-button').click();
    await bob.getByTestId('add-member-input').fill('carol');
    await bob.getByTestId('add-member-button').click();
    await bob.getByTestId('group-panel').locator('[data-user="carol"]').waitFor();
    await carol.getByTestId('event').filter({ hasText: 'Bob added you' }).waitFor();
    await carol.getByTestId('composer-input').and(carol.locator(':enabled')).waitFor();
    await send(carol, 'back again');
    await message(alice, 'back again').waitFor();
  });
});
