// Who is signed in, per tab. Each tab is its own device (docs/WEB.md, "Tabs and devices"):
// sessionStorage holds this tab's device token and cursor (from the login's or link's pts);
// localStorage holds the account's first token, used only to mint a device for a new tab
// (POST /v1/devices).
import { linkDevice, login, logout, register, revokeDevice } from '../parley-client.js';

const TAB = 'parley.tab';
const ACCOUNT = 'parley.account';
// Tab devices this browser made, with when each tab was last alive: a tab that is closed
// leaves its device behind, and the next new tab revokes it (the server allows at most
// auth.max_devices_per_user live devices).
const TABS = 'parley.tabs';
const HEARTBEAT_MS = 60000;
const CLOSED_AFTER_MS = 10 * 60000;

function read(storage, key) {
  try { return JSON.parse(storage.getItem(key) || 'null'); } catch { return null; }
}

function write(storage, key, value) {
  try {
    if (value === null) storage.removeItem(key); else storage.setItem(key, JSON.stringify(value));
  } catch { /* storage full or disabled: the tab still works until it is closed */ }
}

// A device made by a login or a link starts at the answer's `pts`: the account's update
// position just before the device existed. Its first sync is from there, so it receives every
// message and receipt that came after, however many (PROTOCOL.md §2). An older server sends
// no pts: then the tab has no cursor and its first sync is a snapshot.
function firstCursor(r) { return typeof r.pts === 'number' ? r.pts : null; }

function deviceName() {
  const ua = navigator.userAgent;
  const browser = /Firefox\//.test(ua) ? 'Firefox' : /Edg\//.test(ua) ? 'Edge' : /Chrom/.test(ua) ? 'Chromium' : /Safari\//.test(ua) ? 'Safari' : 'Browser';
  return `${browser} tab`;
}

export function tabSession() { return read(sessionStorage, TAB); }

export function saveCursor(pts) {
  const s = tabSession();
  if (s && typeof pts === 'number') write(sessionStorage, TAB, { ...s, cursor: pts });
}

// The tab's session, or a new device minted from the account token, or null (sign in).
export async function resumeSession(server) {
  const tab = tabSession();
  if (tab && tab.token) return tab;
  const account = read(localStorage, ACCOUNT);
  if (!account || !account.token) return null;
  try {
    await pruneClosedTabs(server, account.token);
    const d = await linkDevice(server, account.token, { deviceName: deviceName() });
    const s = { user: d.user, deviceId: d.device_id, token: d.token, cursor: firstCursor(d) };
    write(sessionStorage, TAB, s);
    markAlive(s.deviceId);
    return s;
  } catch (err) {
    // 404: a server without POST /v1/devices; 401: the account token was revoked.
    if (err.code === 'unauthorized') write(localStorage, ACCOUNT, null);
    return null;
  }
}

export async function signIn(server, username, password) {
  const r = await login(server, username, password, { deviceName: deviceName() });
  write(localStorage, ACCOUNT, { user: r.user, token: r.token });
  let tab = { user: r.user, deviceId: r.device_id, token: r.token, cursor: firstCursor(r) };
  // The login token stays the account's; this tab gets a device of its own when it can.
  try {
    await pruneClosedTabs(server, r.token);
    const d = await linkDevice(server, r.token, { deviceName: deviceName() });
    tab = { user: d.user, deviceId: d.device_id, token: d.token, cursor: firstCursor(d) };
    markAlive(tab.deviceId);
  } catch { /* no POST /v1/devices: the tab uses the login device */ }
  write(sessionStorage, TAB, tab);
  return tab;
}

function markAlive(deviceId) {
  const tabs = read(localStorage, TABS) || {};
  tabs[deviceId] = Date.now();
  write(localStorage, TABS, tabs);
}

// Keeps this tab's entry fresh while it is open; returns a function that stops it.
export function startHeartbeat() {
  const beat = () => { const s = tabSession(); if (s && s.deviceId) markAlive(s.deviceId); };
  beat();
  const timer = setInterval(beat, HEARTBEAT_MS);
  return () => clearInterval(timer);
}

async function pruneClosedTabs(server, accountToken) {
  const tabs = read(localStorage, TABS) || {};
  const now = Date.now();
  const closed = Object.keys(tabs).filter((id) => now - tabs[id] > CLOSED_AFTER_MS);
  for (const id of closed) {
    try {
      await revokeDevice(server, accountToken, id);
    } catch (err) {
      if (err.code !== 'not_found') continue; // try again next time
    }
    delete tabs[id];
  }
  if (closed.length) write(localStorage, TABS, tabs);
}

export async function signUp(server, username, password) {
  await register(server, username, password);
  return signIn(server, username, password);
}

// Signs out this tab's device and the account token; other tabs keep their own devices.
export async function signOut(server) {
  const tab = tabSession();
  const account = read(localStorage, ACCOUNT);
  write(sessionStorage, TAB, null);
  write(localStorage, ACCOUNT, null);
  if (tab && tab.deviceId) {
    const tabs = read(localStorage, TABS) || {};
    delete tabs[tab.deviceId];
    write(localStorage, TABS, tabs);
  }
  const tokens = new Set([tab && tab.token, account && account.token].filter(Boolean));
  await Promise.all([...tokens].map((t) => logout(server, t).catch(() => {})));
}

// The tab's token stopped working (revoked): forget it, keep the account token.
export function dropTab() { write(sessionStorage, TAB, null); }
