// storex.js: the browser (and Node) client of storex-rs, speaking the Storex wire protocol.
// One core, three parts: applyDiff (the patch), Storex (one store: state and listeners) and a
// connector (SocketConnection: one WebSocket shared by many stores; or the HTTP one for SSR).
// Two APIs sit on it: the seed's `new Storex({...})` and Storex 0.6's `useStorex(config)`.

const requestId = () => Math.random().toString(36).slice(2, 12)
const storexError = (text) => new Error('Storex: ' + text)
const valueAt = (state, path) => path.reduce((node, key) => node?.[key], state)

// Runs a user's listener so that one that throws cannot stop the others or the socket's reader;
// its error is rethrown on its own, where the console (or the process) still sees it.
const safely = (fn, ...args) => {
  try { fn(...args) } catch (error) { queueMicrotask(() => { throw error }) }
}

// Close codes after which reconnecting as-is would fail again: the earliest unanswered join
// caused them (the server stops at the first bad frame), so that store is dropped, not retried.
const FATAL = { 4000: 1, 4001: 1, 1007: 1 }

// ---- the patch (PROTOCOL.md "The diff"): changes in order; u/i assign, d splices or deletes.
// Containers along each changed path are copied, never mutated, so a changed subtree gets a
// new identity and an untouched sibling keeps its own: `prev !== next` tells what changed.
export function applyDiff(state, diff) {
  for (const change of diff) state = applyChange(state, change, 0)
  return state
}

function applyChange(node, change, depth) {
  const { a, p, t } = change
  if (depth === p.length) return t
  const copy = Array.isArray(node) ? node.slice() : { ...node }
  const key = p[depth]
  if (depth < p.length - 1) put(copy, key, applyChange(copy[key], change, depth + 1))
  else if (a !== 'd') put(copy, key, t)
  else if (Array.isArray(copy)) copy.splice(key, 1)
  else delete copy[key]
  return copy
}

// An own data property, even for the key "__proto__" (which `copy[key] = v` would take as the
// object's prototype), as JSON.parse makes it.
function put(object, key, value) {
  if (key === '__proto__') Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true })
  else object[key] = value
}

// Whether a change can alter the value at `path`: it is at the path, over it or under it.
// A list delete also shifts the later elements of that list, so it touches them too.
function touches({ a, p }, path) {
  for (let i = 0; i < p.length && i < path.length; i++) {
    if (String(p[i]) !== String(path[i])) {
      return a === 'd' && i === p.length - 1 && typeof p[i] === 'number' && path[i] > p[i]
    }
  }
  return true
}

// ---- one store: its state, its listeners, and the commits waiting for its join.
export class Storex {
  constructor(config) {
    if (!config?.store) throw storexError('a store name is required')
    this.name = config.store
    this.params = { ...Storex.defaults.params, ...config.params }
    this.listeners = new Set()
    this.waiting = new Set()
    this.live = false
    let settle
    this.ready = new Promise((resolve, reject) => (settle = { resolve, reject }))
    this.ready.catch(() => {}) // an unused `ready` must not become an unhandled rejection
    this.settle = settle
    // Bound, so they can be passed around unbound: useSyncExternalStore(store.subscribe, ...), onClick={store.commit}.
    for (const key of ['commit', 'subscribe', 'onChange', 'close']) this[key] = this[key].bind(this)
    if (config.subscribe) this.subscribe(config.subscribe)
    if (config.connection) this.connection(config.connection)
    this.connector = config.connector || defaultConnector()
    this.connector.attach(this)
  }

  get state() { return this._state }
  get session() { return this._session }

  commit(name, ...args) {
    return this.connector.commit(this, name, args)
  }

  subscribe(fn) { return this.on('state', fn) }
  onChange(path, fn) { return this.on('change', fn, path) }
  onConnected(fn) { return this.on('connected', fn) }
  onDisconnected(fn) { return this.on('disconnected', fn) }
  onError(fn) { return this.on('error', fn) }
  connection(fn) {
    const offs = [this.onConnected(() => fn(true)), this.onDisconnected(() => fn(false))]
    return () => offs.map((off) => off()).every(Boolean)
  }

  close() {
    this.connector.detach(this)
  }

  on(event, fn, path) {
    const listener = { event, fn, path }
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  emit(event, ...args) {
    for (const listener of [...this.listeners]) if (listener.event === event) safely(listener.fn, ...args)
  }

  // A join answer replaces the whole state (first join and every re-join after a reconnect).
  joined(data, session) {
    this._session = session
    this.update(data, [{ a: 'u', p: [], t: data }])
    this.settle.resolve(data)
  }

  refused(error) {
    this.emit('error', error)
    this.settle.reject(error)
  }

  update(next, diff) {
    const prev = this._state
    this._state = next
    if (!diff.length) return
    this.emit('state', next)
    for (const { event, fn, path } of [...this.listeners]) {
      if (event === 'change' && diff.some((change) => touches(change, path))) safely(fn, valueAt(next, path), valueAt(prev, path))
    }
  }
}

Storex.defaults = {
  params: {},
  address: globalThis.location && `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/storex`,
}

// ---- the socket connector: one WebSocket, many stores, reconnect, ping, bounded waits.
class SocketConnection {
  constructor(options = {}) {
    this.options = {
      address: Storex.defaults.address,
      WebSocket: globalThis.WebSocket,
      reconnectBase: 500,
      reconnectMax: 30000,
      commitTimeout: 10000,
      pingInterval: 30000,
      ...options,
    }
    this.stores = new Set()
    this.answers = new Map() // request id → handler of its answer, in the order they were sent
    this.timers = new Set()
    this.attempt = 0
  }

  attach(store) {
    if (!this.ws && !this.retry) this.connect()
    this.stores.add(store)
    if (this.open) this.join(store)
  }

  detach(store) {
    this.stores.delete(store)
    store.live = false
    this.dropWaiting(store, 'the store was closed')
    if (!this.stores.size) this.close()
  }

  // Ends everything this connection owns: the socket, every timer, every wait.
  close() {
    for (const timer of this.timers) clearTimeout(timer)
    this.timers.clear()
    this.retry = null
    for (const store of this.stores) this.dropWaiting(store, 'the connection was closed')
    this.stores.clear()
    const ws = this.ws
    if (ws) {
      this.forget(ws)
      ws.close(1000)
      this.closed({ code: 1000, reason: 'closed by the client' })
    }
  }

  commit(store, name, args) {
    return new Promise((resolve, reject) => {
      const send = () => this.send({ type: 'mutation', store: store.name, session: store.session, data: { name, data: args } }, (answer) => {
        if (answer.type === 'error') return reject(new Error(answer.error))
        if (answer.type !== 'mutation') return reject(storexError(`mutation "${name}" of ${store.name} was lost: ${answer.reason}; it may or may not have been applied`))
        this.patch(store.name, answer.diff || [])
        resolve(answer.message)
      })
      if (!this.stores.has(store)) return reject(storexError(`${store.name} is closed`))
      if (store.live) return send()
      if (store.failure) return reject(store.failure)
      const wait = { send, reject }
      wait.timer = this.later(this.options.commitTimeout, () => {
        store.waiting.delete(wait)
        reject(storexError(`not connected: mutation "${name}" of ${store.name} not sent within ${this.options.commitTimeout} ms`))
      })
      store.waiting.add(wait)
    })
  }

  connect() {
    const { WebSocket, address } = this.options
    this.retry = null
    if (!WebSocket || !address) throw storexError('needs an address and a WebSocket: pass socketConnector({ address, WebSocket }) outside a browser')
    const ws = (this.ws = new WebSocket(address))
    ws.onopen = () => this.opened()
    ws.onmessage = (event) => this.receive(event.data)
    ws.onclose = (event) => this.closed(event)
    ws.onerror = () => {} // a close event follows; an error without a listener would throw in some libraries
  }

  opened() {
    this.open = true
    for (const store of this.stores) this.join(store)
    this.keepAlive()
  }

  join(store) {
    this.send({ type: 'join', store: store.name, data: store.params }, (answer) => {
      if (!this.stores.has(store)) return // closed while its join was on the way
      if (answer.type === 'join') {
        this.attempt = 0
        store.live = true
        store.failure = null
        store.joined(answer.data, answer.session)
        store.emit('connected')
        for (const wait of store.waiting) this.release(store, wait).send()
      } else if (answer.type === 'error') {
        store.refused((store.failure = new Error(answer.error)))
        this.dropWaiting(store, `joining ${store.name} failed: ${answer.error}`)
      }
    }, store)
  }

  // Pings keep the server from closing a silent socket; a ping still unanswered at the next
  // one means the connection is dead even if the browser has not noticed yet.
  keepAlive() {
    this.pinger = this.later(this.options.pingInterval, () => {
      if (this.unanswered) return this.lost()
      this.unanswered = true
      this.send({ type: 'ping' }, () => (this.unanswered = false))
      this.keepAlive()
    })
  }

  lost() {
    const ws = this.ws
    this.forget(ws)
    ws.close(4002, 'no pong')
    this.closed({ code: 4002, reason: 'no answer to ping' })
  }

  send(message, onAnswer, joining) {
    const request = requestId()
    this.answers.set(request, { onAnswer, joining })
    this.ws.send(JSON.stringify({ ...message, request }))
  }

  receive(text) {
    let message
    try { message = JSON.parse(text) || {} } catch { return } // junk from a server must not throw here
    const answer = message.request != null && this.answers.get(message.request)
    if (answer) {
      this.answers.delete(message.request)
      answer.onAnswer(message)
    } else if (message.type === 'mutation' && message.diff) {
      this.patch(message.store, message.diff)
    }
  }

  // Every store object of that name shares the one server instance of this session.
  patch(name, diff) {
    for (const store of this.stores) {
      if (store.name === name && store.live) store.update(applyDiff(store.state, diff), diff)
    }
  }

  closed({ code, reason }) {
    this.forget(this.ws)
    this.ws = null
    this.open = this.unanswered = false
    clearTimeout(this.pinger)
    this.timers.delete(this.pinger)
    const answers = [...this.answers.values()]
    this.answers.clear()
    const culprit = FATAL[code] && answers.find((answer) => answer.joining)?.joining
    if (culprit) {
      this.stores.delete(culprit)
      culprit.refused(storexError(reason || `the server closed the connection (${code})`))
      this.dropWaiting(culprit, `joining ${culprit.name} failed (${code})`)
    } else if (code === 1007) {
      for (const store of this.stores) store.emit('error', storexError('the server found a message malformed (1007)'))
    }
    for (const { onAnswer } of answers) onAnswer({ type: 'closed', reason: `the connection closed (${code})` })
    for (const store of this.stores) {
      if (store.live) {
        store.live = false
        store.emit('disconnected', { code, reason })
      }
    }
    if (this.stores.size) this.reconnect()
  }

  // Capped exponential backoff with "equal jitter": half the delay fixed, half random, so that
  // many tabs dropped by one server restart do not all come back in the same instant.
  reconnect() {
    const { reconnectBase, reconnectMax } = this.options
    const delay = Math.min(reconnectMax, reconnectBase * 2 ** this.attempt++)
    this.retry = this.later(delay / 2 + (Math.random() * delay) / 2, () => this.connect())
  }

  dropWaiting(store, why) {
    for (const wait of store.waiting) this.release(store, wait).reject(storexError(why))
  }

  release(store, wait) {
    store.waiting.delete(wait)
    clearTimeout(wait.timer)
    this.timers.delete(wait.timer)
    return wait
  }

  forget(ws) {
    if (ws) ws.onopen = ws.onmessage = ws.onclose = null
  }

  later(ms, fn) {
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      fn()
    }, ms)
    this.timers.add(timer)
    return timer
  }
}

export const socketConnector = (options) => new SocketConnection(options)

// ---- the HTTP connector (Storex 0.6): one GET per store, for server-side rendering and
// scripts. It fetches the state once; there is no session to commit to.
export function httpConnector(options = {}) {
  const { address = Storex.defaults.address?.replace(/^ws/, 'http'), fetch = globalThis.fetch } = options
  if (!address || !fetch) throw storexError('httpConnector needs an address and fetch')
  return {
    attach(store) {
      const query = `store=${encodeURIComponent(store.name)}&params=${encodeURIComponent(JSON.stringify(store.params))}`
      fetch(`${address}${address.includes('?') ? '&' : '?'}${query}`)
        .then((response) => response.json())
        .then((answer) => answer.type === 'join' ? store.joined(answer.data, answer.session) : store.refused(new Error(answer.error)))
        .catch((error) => store.refused(error))
    },
    detach() {},
    close() {},
    commit: (store, name) => Promise.reject(storexError(`cannot commit "${name}" to ${store.name}: httpConnector only fetches the state; use socketConnector to commit`)),
  }
}

// ---- Storex 0.6's API over the same core.
let sharedConnector
const defaultConnector = () => sharedConnector || (sharedConnector = socketConnector())

export default function useStorex(config) {
  return new Storex(config)
}

export function prepare(params, connector) {
  return {
    useStorex: (config) => useStorex({ connector, ...config, params: { ...params, ...config.params } }),
  }
}

export { useStorex }
