// Readable text for the stable error codes of the server (docs/PROTOCOL.md §4, MEDIA.md)
// and of the protocol module. `context` picks the wording where one code means several things.

const TEXT = {
  invalid_credentials: 'Wrong username or password.',
  username_taken: 'That username is taken. Pick another one.',
  invalid_username: 'Usernames are 3 to 32 characters: a–z, 0–9, "_", "." or "-", starting with a letter or digit.',
  weak_password: 'That password is too short: use at least 8 characters.',
  registration_closed: 'New accounts cannot be created on this server.',
  too_many_devices: 'Too many devices are signed in to this account. Sign out on one of them first.',
  rate_limited: 'You are going too fast. Wait a moment and try again.',
  unsupported_type: 'This kind of file cannot be sent.',
  unauthorized: 'Your session has ended. Please sign in again.',
  token_expired: 'Your session has expired. Please sign in again.',
  token_revoked: 'This device was signed out.',
  forbidden: 'You are not allowed to do that here.',
  conflict: 'That is already the case.',
  unavailable: 'The server is busy. Try again in a moment.',
  internal: 'Something went wrong on the server. Try again.',
  connection_failed: 'Cannot reach the server. Check your connection.',
  disconnected: 'The connection was lost before the server answered.',
  timeout: 'The server did not answer in time.',
  invalid_utf8: 'The text contains invalid characters.',
  bad_request: 'The server could not accept that.',
  aborted: 'Cancelled.',
};

const BY_CONTEXT = {
  upload: {
    too_large: 'That file is too large to send.',
    bad_request: 'That file could not be read (it may be damaged).',
    rate_limited: 'Too many uploads at once. Wait for the others to finish.',
  },
  send: {
    too_large: 'That message is too long.',
    not_found: 'No user with that name.',
    forbidden: 'You are not a member of this chat.',
  },
  group: {
    not_found: 'No such user or group.',
    forbidden: 'Only the group owner or an admin may do that.',
    conflict: 'Nothing to change: that is already so.',
    too_large: 'The group is full, or the name is too long.',
    bad_request: 'Check the names and try again.',
  },
  history: { forbidden: 'You are not a member of this chat.', not_found: 'This chat does not exist.' },
};

// An upload the server refused by its content (415 unsupported_type): the server's message
// names the detected type when the operator's list (media.allowed_types) does not have it.
function refusedFile(err) {
  const msg = String((err && err.message) || '');
  const type = /files of type (\S+) are not accepted/.exec(msg);
  if (type) return `This server does not accept files of type ${type[1]}.`;
  if (/does not match/.test(msg)) return 'That file\'s content does not match its type, so it cannot be sent.';
  if (/empty/.test(msg)) return 'That file is empty.';
  return null;
}

export function describeError(err, context = '') {
  const code = err && err.code;
  if (code === 'unsupported_type' && context === 'upload') {
    const text = refusedFile(err);
    if (text) return text;
  }
  const text = (BY_CONTEXT[context] && BY_CONTEXT[context][code]) || TEXT[code];
  if (text) return text;
  if (code === 'not_found') return 'Not found.';
  if (code === 'too_large') return 'That is too large.';
  return (err && err.message) || 'Something went wrong.';
}
