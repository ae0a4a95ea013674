// The protocol module (web/parley-client.js) used from node, for setting up tests.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { webRoot } from './server.js';

export const parley = await import(pathToFileURL(path.join(webRoot, 'parley-client.js')).href);

export const PASSWORD = 'correct horse battery';

export async function registerUser(server, username, password = PASSWORD) {
  await parley.register(server.url, username, password);
  return parley.login(server.url, username, password, { deviceName: 'node' });
}

// A started client of a user, online and synced; close it with client.stop().
export async function nodeClient(server, session, options = {}) {
  const client = new parley.ParleyClient({ server: server.url, token: session.token, WebSocket, ...options });
  const synced = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('client not synced within 10 s')), 10000);
    const offSynced = client.on('synced', () => { clearTimeout(timer); offSynced(); resolve(); });
    const off = client.on('state', (s) => {
      if (s.state === 'closed') { off(); clearTimeout(timer); reject(new Error(s.reason)); }
    });
  });
  client.start();
  await synced;
  return client;
}

// Resolves with the first event for which pred(...args) holds; rejects after ms.
export function waitEvent(client, event, pred = () => true, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`no ${event} event within ${ms} ms`)); }, ms);
    const off = client.on(event, (...args) => {
      if (pred(...args)) { clearTimeout(timer); off(); resolve(args); }
    });
  });
}
