// Type declarations of parley-client.js, the protocol layer of the Parley web client.
// Reference: docs/WEB.md ("The protocol module"); wire format: docs/PROTOCOL.md, docs/MEDIA.md.

export const VERSION: string;
export const SUBPROTOCOL: 'parley.v1';

/** Server codes (PROTOCOL.md §4) pass through; the client adds its own (docs/WEB.md). */
export type ErrorCode =
  | 'bad_request' | 'unknown_type' | 'invalid_utf8' | 'too_large' | 'unauthorized' | 'token_expired'
  | 'already_authenticated' | 'not_found' | 'forbidden' | 'conflict' | 'rate_limited' | 'unavailable'
  | 'internal' | 'unsupported_type' | 'invalid_credentials' | 'username_taken' | 'invalid_username'
  | 'weak_password' | 'registration_closed' | 'method_not_allowed' | 'too_many_devices'
  | 'connection_failed' | 'timeout' | 'disconnected' | 'stopped' | 'bad_response' | 'invalid_argument'
  | 'token_revoked' | 'aborted' | 'cursor_reset' | 'callback'
  | (string & {});

export class ParleyError extends Error {
  constructor(code: ErrorCode, message?: string, extra?: { status?: number; retryable?: boolean; retryAfterMs?: number });
  readonly name: 'ParleyError';
  /** Stable machine code. */
  code: ErrorCode;
  /** HTTP status for HTTP calls, 0 otherwise. */
  status: number;
  /** The same request may succeed later. */
  retryable: boolean;
  /** From `retry_after_ms` of a `rate_limited` error. */
  retryAfterMs?: number;
}

// --- wire types ------------------------------------------------------------------------

export interface MediaThumbnail { id: string; type?: string; size?: number; width: number; height: number; }

export interface MediaInfo {
  id: string; type: string; kind: 'image' | 'video' | 'audio' | 'file'; size: number;
  width?: number; height?: number; thumbnail?: MediaThumbnail;
}

export interface MediaDescriptor extends MediaInfo { name?: string; caption?: string; }

export interface GroupEvent {
  event: 'created' | 'renamed' | 'members_added' | 'member_removed' | 'member_left' | 'role_changed'
    | 'owner_changed' | 'group_deleted' | 'settings_changed' | (string & {});
  by?: string; name?: string; user?: string; users?: string[]; members?: string[];
  role?: 'owner' | 'admin' | 'member'; full_history?: boolean; large?: boolean;
}

export interface Message {
  chat_id: number;
  seq: number;
  message_id: string;
  sender: string;
  /** The other member of a direct chat; absent in groups. */
  to?: string;
  kind: 'text' | 'media' | 'event' | (string & {});
  body?: string;
  media?: MediaDescriptor;
  event?: GroupEvent;
  ts: number;
  client_msg_id?: string;
}

export interface Receipt { chat_id: number; user: string; kind: 'read' | 'delivered'; seq: number; ts?: number; }

export interface TypingEvent { chat_id: number; user: string; state: 'start' | 'stop'; expires_ms?: number; }

export interface Presence { user: string; online?: boolean; last_seen?: number; hidden?: boolean; }

export interface SendAck {
  chat_id: number; seq: number; message_id: string; ts: number; pts: number; duplicate: boolean;
  /** The idempotency key the send used (given or generated). */
  client_msg_id: string;
}

export interface HistoryPage { chat_id: number; messages: Message[]; has_more: boolean; }

export interface ReadPosition { user: string; read_seq: number; delivered_seq: number; }

export interface ChatSummary {
  chat_id: number; kind: 'direct' | 'group'; peer?: string; name?: string; large?: boolean; member?: boolean;
  last_seq: number; last_message?: Message; unread: number; read_seq: number; delivered_seq: number;
  peer_read_seq?: number; peer_delivered_seq?: number; reads?: ReadPosition[];
}

export interface ChatList {
  chats: ChatSummary[]; has_more: boolean; pts: number; unread_total: number; unread_chats: number;
  /** With has_more: pass it as `cursor` of the next `chats()` call for the next page. */
  next_cursor?: string;
  /** Chats left out because the server's storage that holds them is down (a cluster): ask again later. */
  unavailable?: number[];
}

export interface Update { pts: number; kind: 'message' | 'read' | 'delivered' | (string & {}); message?: Message; receipt?: Receipt; }

export interface SnapshotChat {
  chat_id: number; kind: 'direct' | 'group'; peer?: string; name?: string; large?: boolean; last_seq: number;
  /** The chat's latest messages, oldest first. */
  messages: Message[];
  /** Older messages exist: page them with `history(chat_id, {beforeSeq: messages[0].seq})`. */
  has_more: boolean;
  /** How many messages the user may read before the first one of `messages` (absent on older servers). */
  older?: number;
}

export interface SyncResult {
  updates: Update[]; pts: number; has_more: boolean; limited: boolean;
  snapshot?: boolean; chats?: SnapshotChat[];
  /** In a snapshot: chats left out because the server's storage that holds them is down (a cluster). */
  unavailable?: number[];
}

export interface MarkResult { chat_id: number; kind: 'read' | 'delivered'; seq: number; advanced: boolean; unread: number; pts: number; }

export interface GroupMember { user: string; role: 'owner' | 'admin' | 'member'; joined_seq: number; }

export interface GroupInfo {
  chat_id: number; kind: 'group'; name: string; created_by: string; created_at: number; last_seq: number;
  member_count: number; large: boolean; full_history: boolean; members?: GroupMember[]; members_truncated?: boolean;
}

export interface GroupResult { chat: GroupInfo; seq: number; message_id: string; ts: number; pts: number; }

export interface Settings { presence: 'everyone' | 'contacts' | 'nobody'; dnd_until: number; push_preview: boolean; }

export interface LoginResult {
  user: string; device_id: string; token: string;
  /**
   * The user's update position just before this device was created: the new device's first
   * cursor. Pass it as `cursor` of its ParleyClient (and save it) and the first sync brings
   * every message and receipt since, as ordinary updates. Absent on servers before it existed.
   */
  pts?: number;
}

export interface SignedUrl { url: string; expires_at: number; }

// --- HTTP ------------------------------------------------------------------------------

export interface HttpOptions {
  /** Default 15000. */
  timeoutMs?: number;
  fetchImpl?: typeof fetch;
}

/** "http(s)://host:port[/prefix]" without the trailing slash; default: the page's origin. */
export function httpBase(server?: string): string;
/** The WebSocket URL, ws(s)://…/v1/ws. */
export function webSocketUrl(server?: string): string;

export function register(server: string | undefined, username: string, password: string, options?: HttpOptions): Promise<{ user: string }>;
export function login(server: string | undefined, username: string, password: string, options?: HttpOptions & { deviceName?: string }): Promise<LoginResult>;
/** POST /v1/devices: a new device of the same user, authorised by an existing device's token. */
export function linkDevice(server: string | undefined, token: string, options?: HttpOptions & { deviceName?: string }): Promise<LoginResult>;
export interface DeviceInfo { device_id: string; name: string; created_at: number; current: boolean; }
export function listDevices(server: string | undefined, token: string, options?: HttpOptions): Promise<{ devices: DeviceInfo[] }>;
/** Revokes one of the user's own devices (404 for any other). */
export function revokeDevice(server: string | undefined, token: string, deviceId: string, options?: HttpOptions): Promise<Record<string, never>>;
export function logout(server: string | undefined, token: string, options?: HttpOptions): Promise<Record<string, never>>;
export function deleteAccount(server: string | undefined, token: string, password?: string, options?: HttpOptions): Promise<{ user: string; removed_media: number }>;

export interface UploadOptions {
  /** The declared type; default: the Blob's type. The server checks it against the bytes. */
  contentType?: string;
  onProgress?: (sent: number, total: number) => void;
  signal?: AbortSignal;
  /** Fail with `timeout` when no byte moved for this long. Default 60000. */
  timeoutMs?: number;
  XMLHttpRequest?: typeof XMLHttpRequest;
  fetchImpl?: typeof fetch;
}

export function uploadMedia(server: string | undefined, token: string, data: Blob | ArrayBuffer | Uint8Array, options?: UploadOptions): Promise<MediaInfo>;
export function downloadMedia(server: string | undefined, token: string, mediaId: string, options?: { name?: string; signal?: AbortSignal; fetchImpl?: typeof fetch }): Promise<Blob>;
/** An absolute signed URL, usable without a token until `expires_at` (Unix seconds). */
export function signMediaUrl(server: string | undefined, token: string, mediaId: string, options?: HttpOptions): Promise<SignedUrl>;

// --- helpers ---------------------------------------------------------------------------

export interface BackoffPolicy { minMs?: number; maxMs?: number; multiplier?: number; jitter?: number; }
/** min(max, min·multiplier^attempt)·(1 − jitter·u), never below min·(1 − jitter). */
export function backoffDelay(policy: BackoffPolicy, attempt: number, u?: number): number;
/** 16 random bytes in hex: a fresh client_msg_id. */
export function randomId(): string;

/** The pts rule of PROTOCOL.md §3.4, without sockets. */
export class UpdateSequencer<U extends { pts: number } = Update> {
  constructor(options: { cursor?: number | null; apply: (update: U) => void; needSync: () => void });
  /** null before a new device's snapshot. */
  cursor: number | null;
  readonly hasGap: boolean;
  push(update: U): void;
  reset(pts: number): void;
  drain(): void;
}

// --- the WebSocket client --------------------------------------------------------------

/** A user id (direct chat, `to`/`with`), a chat id, or either as an object. */
export type Target = string | number | { user: string } | { chatId: number } | { chat_id: number };

export type ConnectionState = 'idle' | 'connecting' | 'online' | 'waiting' | 'closed';

export interface StateEvent {
  state: ConnectionState;
  /** Why the connection ended (waiting, closed). */
  reason?: string;
  code?: ErrorCode;
  closeCode?: number;
  /** waiting: the reconnect delay. */
  retryInMs?: number;
  /** connecting: how many attempts failed before. */
  attempt?: number;
  /** online: */
  user?: string;
  deviceId?: string;
  pts?: number;
}

export interface MessageInfo {
  /** Position in the user's update log; 0 for large groups (outside the log). */
  pts: number;
  source: 'push' | 'sync' | 'own' | 'history';
}

export interface ClientEvents {
  state: (e: StateEvent) => void;
  message: (m: Message, info: MessageInfo) => void;
  receipt: (r: Receipt, info: { pts: number; source: 'push' | 'sync' }) => void;
  typing: (t: TypingEvent) => void;
  presence: (changed: Presence[]) => void;
  snapshot: (s: SyncResult) => void;
  cursor: (pts: number) => void;
  synced: (e: { pts: number | null }) => void;
  error: (e: ParleyError) => void;
}

export interface ClientOptions {
  /** Login token or JWT. Required. */
  token: string;
  /** Default: the page's origin. */
  server?: string;
  /**
   * The saved pts. A new device made by login() or linkDevice(): that answer's `pts`.
   * Absent or null: no cursor, the first sync is a snapshot (the latest messages of each
   * chat, with how many older ones there are: `SnapshotChat.older`).
   */
  cursor?: number | null;
  /**
   * With no cursor: take the first `auth` answer's `pts` as the cursor instead of starting
   * with a snapshot. For a JWT device's first connection (the server creates the device at
   * that auth, so its pts is the device's first cursor). Default false.
   */
  startAtFirstAuth?: boolean;
  /** For node and workers without a global WebSocket (e.g. the `ws` package). */
  WebSocket?: unknown;
  /** One attempt of one request. Default 10000. */
  requestTimeoutMs?: number;
  /** Idempotent requests across retries. Default 30000. */
  readTimeoutMs?: number;
  /** A send across retries and reconnects. Default 60000. */
  sendTimeoutMs?: number;
  /** Open + auth. Default 10000. */
  connectTimeoutMs?: number;
  /** Ping after this long without a frame. Default 20000. */
  pingIntervalMs?: number;
  /** Then drop the connection after this much more silence. Default 10000. */
  pingTimeoutMs?: number;
  /** `limit` of each sync page. Default 100. */
  syncPageLimit?: number;
  /** Send mark_delivered for messages of others it applied. Default true. */
  autoDelivered?: boolean;
  /** Batching delay of those. Default 100. */
  autoDeliveredDelayMs?: number;
  /** Reconnect delays. Default {minMs: 250, maxMs: 30000, multiplier: 2, jitter: 0.5}. */
  backoff?: BackoffPolicy;
}

export interface RequestOptions {
  /** 'send': retried with the same frame; 'idempotent': resent after reconnects; 'once': fails with `disconnected`. */
  policy?: 'send' | 'idempotent' | 'once';
  timeoutMs?: number;
  /** Fail at once with `disconnected` when not online instead of waiting. */
  onlineOnly?: boolean;
}

export class ParleyClient {
  constructor(options: ClientOptions);
  readonly options: Required<Omit<ClientOptions, 'WebSocket' | 'cursor' | 'server'>> & ClientOptions;
  readonly server: string;
  readonly state: ConnectionState;
  /** The local pts; null before a new device's first snapshot. */
  readonly cursor: number | null;
  /** Known once online. */
  user: string | null;
  deviceId: string | null;

  on<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): () => void;
  once<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): () => void;
  off<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): void;

  start(): void;
  /** Close 1000; everything unfinished fails with `stopped`. Final. */
  stop(): void;
  /** Drop the connection as if the network had cut it; reconnect with backoff. */
  drop(reason?: string): void;
  /** Reconnect now (resets the backoff), e.g. when the browser is back online. */
  reconnectNow(): void;

  request<T = Record<string, unknown>>(type: string, fields?: Record<string, unknown>, options?: RequestOptions): Promise<T>;

  send(target: Target, body: string, options?: { clientMsgId?: string; timeoutMs?: number }): Promise<SendAck>;
  sendMedia(target: Target, media: { id: string; name?: string; caption?: string }, options?: { clientMsgId?: string; timeoutMs?: number }): Promise<SendAck>;
  history(target: Target, options?: { beforeSeq?: number; afterSeq?: number; limit?: number }): Promise<HistoryPage>;
  /** One page; `cursor`: the previous page's `next_cursor`. */
  chats(options?: { limit?: number; cursor?: string }): Promise<ChatList>;
  /** A raw sync page; does not move the client's cursor. */
  sync(pts?: number | null, limit?: number): Promise<SyncResult>;
  ping(): Promise<number>;
  markRead(target: Target, seq?: number): Promise<MarkResult>;
  markDelivered(target: Target, seq: number): Promise<MarkResult>;
  /** Resolves to whether the server passed it on. */
  typing(target: Target, state?: 'start' | 'stop'): Promise<boolean>;
  presenceSubscribe(users: string[]): Promise<Presence[]>;
  presenceUnsubscribe(users: string[] | 'all'): Promise<void>;
  settings(fields?: Partial<Settings>): Promise<Settings>;

  groupCreate(name: string, members?: string[]): Promise<GroupResult>;
  groupInfo(chatId: number): Promise<GroupInfo>;
  groupRename(chatId: number, name: string): Promise<GroupResult>;
  groupAdd(chatId: number, users: string[]): Promise<GroupResult>;
  groupRemove(chatId: number, user: string): Promise<GroupResult>;
  groupPromote(chatId: number, user: string): Promise<GroupResult>;
  groupDemote(chatId: number, user: string): Promise<GroupResult>;
  groupLeave(chatId: number): Promise<GroupResult>;
  groupTransfer(chatId: number, user: string): Promise<GroupResult>;
  groupDelete(chatId: number): Promise<GroupResult>;
  groupSettings(chatId: number, settings: { fullHistory: boolean }): Promise<GroupResult>;

  uploadMedia(data: Blob | ArrayBuffer | Uint8Array, options?: UploadOptions): Promise<MediaInfo>;
  downloadMedia(mediaId: string, options?: { name?: string; signal?: AbortSignal }): Promise<Blob>;
  signMediaUrl(mediaId: string): Promise<SignedUrl>;
}

/** new ParleyClient(options), started. */
export function connect(options: ClientOptions): ParleyClient;
