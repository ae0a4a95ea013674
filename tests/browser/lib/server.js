// Starts a private parleyd for one test: port 0, a temporary data dir, the web client.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../../..');
export const webRoot = process.env.PARLEY_WEB_ROOT || path.join(repoRoot, 'web');

function parleydBin() {
  return process.env.PARLEYD_BIN || path.join(repoRoot, 'build/src/parleyd/parleyd');
}

// The binary may be missing for a moment while another engineer relinks it.
async function waitForBinary(bin, ms = 60000) {
  const end = Date.now() + ms;
  for (;;) {
    try { fs.accessSync(bin, fs.constants.X_OK); return; } catch (err) {
      if (Date.now() > end) throw new Error(`parleyd not found at ${bin} (set PARLEYD_BIN)`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

const FAST_AUTH = `[auth]
argon2_memlimit_kib = 8192
argon2_opslimit = 1
`;

// config: extra TOML appended to the test defaults.
export async function startServer({ config = '', label = 'parleyd' } = {}) {
  const bin = parleydBin();
  await waitForBinary(bin);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-browser-'));
  const cfg = path.join(dir, 'parleyd.toml');
  fs.writeFileSync(cfg, FAST_AUTH + '\n' + config);
  const child = spawn(bin, ['--listen', '127.0.0.1:0', '--data-dir', path.join(dir, 'data'),
    '--web-root', webRoot, '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-20000); });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label}: no "listening on" within 15 s\n${stderr}`)), 15000);
    child.stdout.on('data', (d) => {
      stdout += d;
      const m = /listening on (\S+:\d+)/.exec(stdout);
      if (m) { clearTimeout(timer); resolve(`http://${m[1]}`); }
    });
    child.on('exit', (code, sig) => { clearTimeout(timer); reject(new Error(`${label} exited (${code ?? sig})\n${stderr}`)); });
  });
  let exited = false;
  child.on('exit', () => { exited = true; });
  return {
    url,
    dir,
    stderrTail: (n = 40) => stderr.split('\n').slice(-n).join('\n'),
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        const gone = await Promise.race([
          new Promise((r) => child.once('exit', () => r(true))),
          new Promise((r) => setTimeout(() => r(false), 5000)),
        ]);
        if (!gone && !exited) {
          child.kill('SIGKILL');
          await new Promise((r) => child.once('exit', r));
        }
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
