// Hand-written typings of storex.js. A store's type parameter T is either the type of its state
// (the JSON the server sends), or the store's types as storex::ts writes them (`CounterStore`):
// then its name, its state and its commits are all checked.

/** A place in the state: map keys (strings) and list indexes (numbers) from the root; [] is the root. */
export type Path = ReadonlyArray<string | number>

/** One change of a diff (the wire format): update, insert or delete at a path. */
export interface Change {
  a: 'u' | 'i' | 'd'
  p: Path
  t?: unknown
}

/**
 * A store's types as storex::ts writes them from the Rust store (`CounterStore` in
 * `CounterStore.ts`): its name, its state, and each mutation's arguments and reply.
 */
export interface StoreTypes {
  __storex: {
    name: string
    state: unknown
    mutations: { [name: string]: { args: readonly unknown[]; reply: unknown } }
  }
}

/** The state of a store typed T: a StoreTypes' state, or T itself. */
export type StateOf<T> = [T] extends [StoreTypes] ? T['__storex']['state'] : T

/** The names a store typed T may be joined by: a StoreTypes' name, or any string. */
export type NameOf<T> = [T] extends [StoreTypes] ? T['__storex']['name'] : string

/** The mutations of a StoreTypes, by name. */
export type MutationsOf<T extends StoreTypes> = T['__storex']['mutations']

/**
 * `commit` of a store typed T. With a StoreTypes: only its mutations' names, each with its
 * arguments, resolving with its reply (`undefined` when it has none). Otherwise any name and
 * arguments, resolving with R.
 */
export type Commit<T> = [T] extends [StoreTypes]
  ? <K extends keyof MutationsOf<T> & string>(name: K, ...args: MutationsOf<T>[K]['args']) => Promise<MutationsOf<T>[K]['reply']>
  : <R = unknown>(name: string, ...args: unknown[]) => Promise<R>

/** Join parameters, sent as the join message's `data` (any JSON object). */
export type Params = { [key: string]: unknown }

/** Why a socket closed (a WebSocket close code and reason). */
export interface DisconnectEvent {
  code: number
  reason: string
}

/** What storex.js needs of a WebSocket: the browser's, `ws`'s, or any alike. */
export interface WebSocketLike {
  send(data: string): void
  close(code?: number, reason?: string): void
}
export type WebSocketConstructor = new (url: string) => WebSocketLike

/**
 * What storex.js needs of fetch (`globalThis.fetch` fits): the probe reads a GET's `status` and
 * `text()`; the event stream (PROTOCOL.md "The event-stream transport") reads the GET's `ok` and
 * `body`, and sends its frames by POST and its close by DELETE.
 */
export type FetchLike = (url: string, init: FetchInit) => Promise<FetchResponse>
export interface FetchInit {
  credentials: 'include'
  method?: 'POST' | 'DELETE'
  /** A POST's frames, one per line (`text/plain;charset=UTF-8`, fetch's default for a string). */
  body?: string
  headers?: { Accept: string }
  keepalive?: boolean
  signal?: AbortSignal
}
export interface FetchResponse {
  ok: boolean
  status: number
  text(): Promise<string>
  body: { getReader(): { read(): Promise<{ done: boolean; value?: Uint8Array }> } } | null
}

declare const connectorBrand: unique symbol

/** Carries stores' joins and commits: made by socketConnector or httpConnector. */
export interface Connector {
  readonly [connectorBrand]: true
  /** Ends everything: the socket, every timer, every waiting commit. A store attached later reopens it. */
  close(): void
}

export interface SocketConnectorOptions {
  /** Default: Storex.defaults.address (`ws(s)://<page host>/storex` in a browser). */
  address?: string
  /**
   * Default: globalThis.WebSocket. On Node 20 pass one, e.g. the `ws` package's (without one, 'auto'
   * takes the event stream over fetch).
   */
  WebSocket?: WebSocketConstructor
  /**
   * How the connector reaches the server (default 'auto'). 'websocket': a WebSocket only (it never
   * falls back). 'sse': the event-stream transport only (a `GET <address>/sse` stream of server-sent
   * events for the server's frames, POSTs for the client's, over `fetch`; with http(s) for ws(s)).
   * 'auto': a WebSocket, and the event stream from then on for this connector when there is no
   * WebSocket or `fallbackAfter` WebSockets in a row closed without opening while the server answered
   * the probe's plain GET (a proxy that strips `Upgrade`, say; a server that is down does not count). Everything else (resume, ping, reconnect, the probe) is the same over both.
   */
  transport?: 'auto' | 'websocket' | 'sse'
  /**
   * With transport 'auto': how many WebSockets in a row must fail to open (close without having
   * opened, the server answering HTTP) before the connector moves to the event stream (default 2).
   * One that opens resets the count.
   */
  fallbackAfter?: number
  /** First reconnect delay in ms, doubled on each failed attempt (default 500). */
  reconnectBase?: number
  /** Cap of the reconnect delay in ms (default 30000). Each delay is jittered between half and all of it. */
  reconnectMax?: number
  /** How long a commit waits for the connection before rejecting, in ms (default 10000). */
  commitTimeout?: number
  /** Ping period in ms (default 30000); a ping unanswered by the next one drops the socket. */
  pingInterval?: number
  /**
   * Most commits sent and not yet answered (default 256, what a storex-rs server remembers per session
   * for a resume); further commits wait, in order, for an answer.
   */
  maxInFlight?: number
  /**
   * Default: globalThis.fetch. Probes the endpoint (GET, address with http(s) for ws(s)) when a socket
   * closes before opening: 401 or 403 stops reconnecting. Without fetch there is no probe. It also
   * carries the event stream (transport 'sse', or the fallback of 'auto', which needs it).
   */
  fetch?: FetchLike
}

export interface HttpConnectorOptions {
  /** Default: Storex.defaults.address with http(s) instead of ws(s). */
  address?: string
  /** Default: globalThis.fetch. */
  fetch?: (url: string) => Promise<{ json(): Promise<unknown> }>
}

export interface StoreConfig<T = unknown> {
  /** The store's name on the server, e.g. "ExampleApp.Store.Counter". */
  store: NameOf<T>
  /** Join parameters, merged over Storex.defaults.params (and prepare's params). */
  params?: Params
  /** Default: one socketConnector shared by every store that names none. */
  connector?: Connector
  /** Seed API: called with the state after the join and after each applied diff. */
  subscribe?: (state: StateOf<T>) => void
  /** Seed API: called with true when the store is joined, false when its socket closes. */
  connection?: (connected: boolean) => void
}

/** Removes a listener; true if it was still registered. */
export type Unsubscribe = () => boolean

/** A joined (or joining) store; T is its state's type or its StoreTypes. */
export interface Store<T = unknown> {
  readonly name: string
  readonly params: Params
  /** The current state; undefined until the first join answer. Replaced, never mutated in place. */
  readonly state: StateOf<T> | undefined
  /** The session id (the connection's), "SSR" over HTTP; undefined until joined. */
  readonly session: string | undefined
  /** The server instance's epoch (storex-rs); undefined until joined, or when the server sends none. */
  readonly epoch: string | undefined
  /** The version of `state` (storex-rs: 0 after init, +1 per changing mutation); undefined as `epoch`. */
  readonly version: number | undefined
  /** Resolves with the state of the first join; rejects if that join fails or the connector stops first. */
  readonly ready: Promise<StateOf<T>>
  /**
   * Runs mutation `name` on the server with `args` (sent as the array `[...args]`). Resolves with its
   * reply (undefined when none); rejects with the server's error text, or when it cannot be delivered.
   * Typed by T's mutations when T is a StoreTypes.
   */
  readonly commit: Commit<T>
  /** Calls `fn` with the state after each join and each applied non-empty diff. */
  subscribe(fn: (state: StateOf<T>) => void): Unsubscribe
  /** Calls `fn` with the value at `path` (and the previous one) when a change touches it, over it or under it. */
  onChange<V = unknown>(path: Path, fn: (value: V | undefined, previous: V | undefined) => void): Unsubscribe
  onConnected(fn: () => void): Unsubscribe
  onDisconnected(fn: (event: DisconnectEvent) => void): Unsubscribe
  /** A refused join, or the connector stopping (a close code or a refusal that reconnecting cannot fix). */
  onError(fn: (error: Error) => void): Unsubscribe
  /** Seed API: fn(true) when joined, fn(false) when disconnected. */
  connection(fn: (connected: boolean) => void): Unsubscribe
  /** Leaves the connector; the last store to leave a socket closes it and clears its timers. */
  close(): void
}

/** The seed's API: `new Storex({ store, params, subscribe, connection })`. */
export interface Storex<T = unknown> extends Store<T> {}
export declare class Storex<T = unknown> {
  constructor(config: StoreConfig<T>)
  static defaults: {
    /** Merged into every store's join params. */
    params: Params
    /** Where the default socketConnector connects; undefined outside a browser. */
    address: string | undefined
  }
}

/** Storex 0.6's API: a store over `config.connector` (default: the shared socket). */
export default function useStorex<T = unknown>(config: StoreConfig<T>): Store<T>
export { useStorex }

/** Binds params (merged under each store's own) and a connector for many stores. */
export declare function prepare(params: Params, connector?: Connector): {
  useStorex<T = unknown>(config: StoreConfig<T>): Store<T>
}

/**
 * One WebSocket (or event stream: `transport`) for every store given it: reconnects (resuming the
 * session when the server allows), pings, re-joins.
 */
export declare function socketConnector(options?: SocketConnectorOptions): Connector

/** Joins with one HTTP GET (server-side rendering, scripts): state only; commits reject. */
export declare function httpConnector(options?: HttpConnectorOptions): Connector

/** The patch algorithm: applies a diff's changes in order, copying the containers along each changed path. */
export declare function applyDiff<S>(state: S, diff: readonly Change[]): S
