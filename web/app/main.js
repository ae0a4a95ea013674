// Entry point: resume this tab's session or show the sign-in screen, then run the app.
import { describeError } from './errors.js';
import { Controller } from './controller.js';
import { dropTab, resumeSession, signIn, signOut, signUp, startHeartbeat } from './session.js';
import { loginView } from './views/login.js';
import { Shell } from './views/shell.js';

const server = location.origin;
const root = document.getElementById('app');
let controller = null;
let stopHeartbeat = () => {};

async function boot(message) {
  const session = await resumeSession(server);
  if (session) startApp(session); else showLogin(message);
}

function showLogin(message) {
  document.title = 'Parley';
  root.replaceChildren(loginView({
    message,
    onSubmit: async (mode, username, password) => {
      let session;
      try {
        session = mode === 'register' ? await signUp(server, username, password) : await signIn(server, username, password);
      } catch (err) {
        throw new Error(describeError(err, mode));
      }
      startApp(session);
    },
  }));
}

function startApp(session) {
  stopHeartbeat();
  stopHeartbeat = startHeartbeat();
  controller = new Controller(server, session, {
    onSignedOut: (code) => {
      controller.stop();
      dropTab();
      boot(describeError({ code }));
    },
  });
  const shell = new Shell(controller, {
    onSignOut: async () => {
      controller.stop();
      await signOut(server);
      showLogin('You are signed out.');
    },
  });
  root.replaceChildren(shell.el);
  controller.store.onChange(() => shell.render());
  controller.start();
  shell.render();
}

boot();
