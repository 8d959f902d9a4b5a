// storex.js: the browser (and Node) client of storex-rs, speaking the Storex wire protocol.
// One core, three parts: applyDiff (the patch), Storex (one store: state and listeners) and a
// connector (SocketConnection: one WebSocket, or its event-stream stand-in, shared by many stores;
// or the HTTP one for SSR).
// Two APIs sit on it: the seed's `new Storex({...})` and Storex 0.6's `useStorex(config)`.

const requestId = () => Math.random().toString(36).slice(2, 12)
const storexError = (text) => new Error('Storex: ' + text)
const valueAt = (state, path) => path.reduce((node, key) => node?.[key], state)
const httpOf = (address) => address?.replace(/^ws/, 'http')

// Runs a user's listener so that one that throws cannot stop the others or the socket's reader;
// its error is rethrown on its own, where the console (or the process) still sees it.
const safely = (fn, ...args) => {
  try { fn(...args) } catch (error) { queueMicrotask(() => { throw error }) }
}

// Close codes after which reconnecting as-is would fail again. For 1: the earliest unanswered join
// caused it (the server stops at the first bad frame), so that store is dropped and the others
// reconnect; without such a join, and always for 2 (a frame too large), the connector stops.
const FATAL = { 4000: 1, 4001: 1, 1007: 1, 1009: 2 }
const isMutation = (answer) => answer.message.type === 'mutation'

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

// ---- one store: its state and its listeners. The connector sets `live` (joined on an open socket),
// `failure` (why commits reject at once), `epoch` and `version` (of the state held, when the server
// sends them) and `rejoining` (a join sent to replace a state that missed a frame).
export class Storex {
  constructor(config) {
    if (!config?.store) throw storexError('a store name is required')
    this.name = config.store
    this.params = { ...Storex.defaults.params, ...config.params }
    this.listeners = new Set()
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

  // A join answer replaces the whole state (first join and every re-join after a reconnect); a
  // resume brings it up to date with the missed changes as one diff (one notification).
  joined(data, session, diff = [{ a: 'u', p: [], t: data }]) {
    this._session = session
    this.update(data, diff)
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

// ---- the event-stream socket (PROTOCOL.md "The event-stream transport"): the WebSocket the
// connector needs, over fetch. `GET <path>/sse` streams the server's frames as server-sent events;
// `POST <path>/sse/ID` carries the client's, one request at a time, each taking all that waited.
// Its close event fires at most once, and never after close().
class EventStreamSocket {
  constructor(address, fetch) {
    const url = httpOf(address).replace(/\/?(\?|$)/, '/sse$1') // <path>/sse?<query>
    this.go = (init, to = this.to) => fetch(to, { credentials: 'include', ...init })
    this.abort = new AbortController()
    globalThis.addEventListener?.('pagehide', (this.hide = () => this.close()))
    this.go({ headers: { Accept: 'text/event-stream' }, signal: this.abort.signal }, url)
      .then(async (response) => {
        if (!response.ok) throw response.status
        const reader = response.body.getReader()
        const decoder = new TextDecoder()
        let rest = '', cr, type, data
        for (let chunk; !(chunk = await reader.read()).done;) {
          let text = decoder.decode(chunk.value, { stream: true })
          if (cr && text[0] === '\n') text = text.slice(1) // the \n of a \r\n cut between two chunks
          cr = text.endsWith('\r')
          const lines = (rest + text).split(/\r\n?|\n/)
          rest = lines.pop()
          for (const line of lines) {
            const [, field, value] = line.match(/^([^:]*):? ?([^]*)/) // a comment's field is ''
            if (field === 'event') type = value
            if (field === 'data') data = data == null ? value : data + '\n' + value
            if (line) continue
            // A blank line dispatches the event; nothing is fired after the close.
            if (data != null && !this.done) {
              type = type || 'message'
              if (type === 'message') this.onmessage?.({ data })
              if (type === 'ping') this.send() // a sign of life: an empty POST, or one more
              if (type === 'close') this.end(JSON.parse(data))
              if (type === 'open') {
                this.to = url.split('?')[0] + '/' + JSON.parse(data).stream
                this.onopen?.()
              }
            }
            type = data = null
          }
        }
        throw 'it ended'
      })
      .catch((error) => this.lost(error))
  }

  // Queues the frames; one POST at a time, each sending all that waits.
  send(...frames) {
    (this.out = this.out || []).push(...frames)
    if (this.busy || this.done) return
    this.busy = this.go({ method: 'POST', body: this.out.join('\n') })
      .then((response) => {
        if (!response.ok) throw response.status
        this.busy = false
        if (this.out) this.send()
      })
      .catch((error) => this.lost(error))
    this.out = null
  }

  // The client's close: a DELETE (the session ends, as after a WebSocket's close frame). A page
  // that goes away sends it too, as a browser closes its WebSockets; the connector is not told, so
  // it does not reconnect while the page unloads (a page restored from the back-forward cache finds
  // the socket dead by its next ping, and reconnects).
  close() {
    if (this.to && !this.done) this.go({ method: 'DELETE', keepalive: true }).catch(() => {})
    this.onclose = null
    this.end()
  }

  lost(error) {
    this.end({ code: 1006, reason: `the event stream was lost (${error?.message || error})` })
  }

  end(event) {
    if (this.done) return
    this.done = true
    this.abort.abort()
    globalThis.removeEventListener?.('pagehide', this.hide)
    this.onclose?.(event)
  }
}

// ---- the socket connector: one WebSocket (or event stream), many stores, reconnect and resume,
// ping, bounded waits.
class SocketConnection {
  constructor(options = {}) {
    this.options = {
      address: Storex.defaults.address,
      WebSocket: globalThis.WebSocket,
      fetch: globalThis.fetch,
      reconnectBase: 500,
      reconnectMax: 30000,
      commitTimeout: 10000,
      pingInterval: 30000,
      maxInFlight: 256,
      transport: 'auto',
      fallbackAfter: 2,
      ...options,
    }
    this.stores = new Set()
    this.answers = new Map() // request id → { onAnswer, joining, message }, in the order they were sent
    this.queue = new Set() // commits not sent yet (their store is not joined, or maxInFlight are unanswered), in order
    this.timers = new Set()
    this.attempt = this.fails = 0 // fails: WebSockets in a row that closed without opening while HTTP was answered
  }

  attach(store) {
    if (!this.ws && !this.retry) this.connect()
    this.stores.add(store)
    if (this.open && !this.resuming) this.join(store) // else it joins when the resume is answered
  }

  detach(store) {
    this.stores.delete(store)
    store.live = false
    this.drop(storexError('the store was closed'), store)
    if (!this.stores.size) this.close()
  }

  // Ends everything this connection owns: the socket, the session, every timer, every wait.
  close() {
    for (const timer of this.timers) clearTimeout(timer)
    this.timers.clear()
    this.retry = this.token = null
    this.drop(storexError('the connection was closed'))
    this.stores.clear()
    this.forget(this.ws)
    this.ws?.close(1000)
    this.closed({ code: 1000, reason: 'closed by the client' })
  }

  commit(store, name, args) {
    return new Promise((resolve, reject) => {
      if (store.failure) return reject(store.failure)
      if (!this.stores.has(store)) return reject(storexError(`${store.name} is closed`))
      const wait = { store, reject }
      wait.send = () => this.send({ type: 'mutation', store: store.name, session: store.session, data: { name, data: args } }, (answer) => {
        if (answer.type === 'error') return reject(new Error(answer.error))
        if (answer.type !== 'mutation') return reject(storexError(`mutation "${name}" of ${store.name} was lost: ${answer.reason}; it may or may not have been applied`))
        if (!answer.replayed) this.patch(store.name, answer) // a replay's change came with the resume
        resolve(answer.message)
      })
      if (!store.live) {
        wait.timer = this.later(this.options.commitTimeout, () => {
          this.queue.delete(wait)
          reject(storexError(`not connected: mutation "${name}" of ${store.name} not sent within ${this.options.commitTimeout} ms`))
        })
      }
      this.queue.add(wait)
      this.pump()
    })
  }

  // Sends the waiting commits of joined stores, in order, while fewer than maxInFlight are
  // unanswered (the server remembers the answers of a session's last 256 mutations, for a resume).
  pump() {
    if (!this.queue.size) return // the common case on every answer: nothing waits
    let flying = [...this.answers.values()].filter(isMutation).length
    for (const wait of this.queue) {
      if (flying >= this.options.maxInFlight) return
      if (wait.store.live) {
        this.release(wait).send()
        flying++
      }
    }
  }

  // The event stream when told to, or ('auto') when there is no WebSocket or fallbackAfter of them
  // failed to open in a row while the server answered HTTP (a proxy that blocks them); once taken,
  // it stays.
  connect() {
    const { WebSocket, fetch, address, transport, fallbackAfter } = this.options
    this.retry = null
    const sse = (this.sse = this.sse || transport === 'sse' || (transport !== 'websocket' && fetch && (!WebSocket || this.fails >= fallbackAfter)))
    if (!address || !(sse ? fetch : WebSocket)) throw storexError('needs an address and a WebSocket or fetch: pass socketConnector({ address, WebSocket }) outside a browser')
    const ws = (this.ws = sse ? new EventStreamSocket(address, fetch) : new WebSocket(address))
    ws.onopen = () => this.opened()
    ws.onmessage = (event) => this.receive(event.data)
    ws.onclose = (event) => this.closed(event)
    ws.onerror = () => {} // a close event follows; an error without a listener would throw in some libraries
  }

  // A client that held a session (a resume token, stores at known versions) asks for it back as
  // its first message (PROTOCOL.md "The resume exchange"); otherwise every store joins afresh.
  opened() {
    this.open = true
    this.fails = 0
    const asked = new Map()
    for (const { name, epoch, version } of this.stores) if (version != null && !asked.has(name)) asked.set(name, { store: name, epoch, version })
    this.resuming = this.token && asked.size
    if (this.resuming) this.send({ type: 'resume', session: this.session, token: this.token, stores: [...asked.values()] }, (answer) => this.resumed(answer, asked))
    else this.resumed({ reason: 'nothing to resume' }, asked)
    this.keepAlive()
  }

  // Resumed: each store takes its missed changes (or its whole state), or joins if the session does
  // not hold it; then the unanswered mutations go again with their request ids (the server replays
  // the answers of those it ran), then the queued commits (pump). Refused: the unanswered ones are
  // reported lost and every store joins afresh.
  resumed(answer, asked) {
    this.resuming = false
    // The socket dropped before the answer: the session may still be there; the next socket asks
    // again (a close code of a server that does not know `resume` refuses it instead).
    if (answer.type === 'closed' && !FATAL[this.dropped]) return
    if (!answer.resumed) {
      this.token = null
      for (const [request, entry] of this.answers) {
        if (isMutation(entry)) {
          this.answers.delete(request)
          entry.onAnswer({ type: 'closed', reason: `the connection closed (${this.dropped}) and the session could not be resumed (${answer.error || answer.reason})` })
        }
      }
    }
    if (!this.open) return // the socket closed before the answer: a reconnect follows
    const ups = []
    for (const store of this.stores) {
      const mine = asked.get(store.name)
      const entry = mine && answer.resumed && answer.stores?.find((resumed) => resumed.store === store.name)
      const diff = entry?.diff || []
      if (!entry || entry.joined === false) this.join(store)
      else if ('data' in entry) ups.push([store, entry, entry.data])
      else if (store.epoch === mine.epoch && store.version === mine.version) ups.push([store, entry, applyDiff(store.state, diff), diff])
      else this.join(store) // a second store object of that name, not at the version asked for
    }
    for (const entry of this.answers.values()) if (isMutation(entry)) this.ws.send(JSON.stringify(entry.message))
    for (const [store, entry, data, diff] of ups) this.up(store, { ...entry, session: answer.session }, data, diff)
  }

  join(store) {
    this.send({ type: 'join', store: store.name, data: store.params }, (answer) => {
      if (!this.stores.has(store)) return // closed while its join was on the way
      if (answer.type === 'join') this.up(store, answer, answer.data)
      else if (answer.type === 'error') {
        store.live = false
        store.refused((store.failure = new Error(answer.error)))
        this.drop(storexError(`joining ${store.name} failed: ${answer.error}`), store)
      }
    }, store)
  }

  // A store's state arrived (a join answer, a resumed store): it is live; its commits go (pump).
  up(store, { session, epoch, version }, data, diff) {
    const was = store.live
    this.attempt = 0
    Object.assign(store, { epoch, version, live: true, failure: null, rejoining: false })
    store.joined(data, session, diff)
    if (!was) store.emit('connected')
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
    message = { ...message, request: requestId() }
    this.answers.set(message.request, { onAnswer, joining, message })
    this.ws.send(JSON.stringify(message))
  }

  receive(text) {
    let message
    try { message = JSON.parse(text) || {} } catch { return } // junk from a server must not throw here
    if (message.token) { // the newest resume token, of this connection's session
      this.token = message.token
      if (message.session) this.session = message.session
    }
    const answer = message.request != null && this.answers.get(message.request)
    if (answer) {
      this.answers.delete(message.request)
      answer.onAnswer(message)
      this.pump() // an answer may have made a store live or freed a slot
    } else if (message.type === 'mutation' && message.diff) {
      this.patch(message.store, message)
    }
  }

  // Every store object of that name shares the one server instance of this session. When the
  // server sends versions, a diff applies only on top of the version before it: one the store
  // already holds is skipped (a replay); one that skips ahead or is of another epoch (a new
  // instance) means the state missed something, so the store joins again for the whole state.
  patch(name, { diff, epoch, version }) {
    diff = diff || []
    for (const store of this.stores) {
      if (store.name !== name || !store.live || store.rejoining) continue
      const held = store.version
      if (held == null || version == null) store.update(applyDiff(store.state, diff), diff)
      else if (epoch !== store.epoch || version > held + (diff.length ? 1 : 0)) {
        store.rejoining = true
        this.join(store)
      } else if (version > held) {
        store.version = version
        store.update(applyDiff(store.state, diff), diff)
      }
    }
  }

  closed({ code, reason }) {
    const { ws, open } = this
    this.forget(ws)
    this.ws = null
    this.open = this.unanswered = false
    clearTimeout(this.pinger)
    this.timers.delete(this.pinger)
    const answers = [...this.answers.values()]
    this.answers.clear()
    const culprit = FATAL[code] === 1 && answers.find((answer) => answer.joining)?.joining
    if (culprit) this.fail(culprit, storexError(reason || `the server closed the connection (${code})`), storexError(`joining ${culprit.name} failed (${code})`))
    // A close answering the resume (a server that does not know it, say) only refuses it.
    const stop = !culprit && !this.resuming && FATAL[code]
    // While the session may be resumed, unanswered mutations stay unanswered, to be sent again.
    const keep = !stop && this.token && [...this.stores].some((store) => store.version != null)
    this.dropped = code
    for (const answer of answers) {
      if (keep && isMutation(answer)) this.answers.set(answer.message.request, answer)
      else answer.onAnswer({ type: 'closed', reason: `the connection closed (${code})` })
    }
    for (const store of this.stores) {
      if (store.live) {
        store.live = false
        store.emit('disconnected', { code, reason })
      }
    }
    if (stop) this.stop(storexError(`the connection closed (${code}${reason ? ': ' + reason : ''}); reconnecting cannot fix that`))
    else if (this.stores.size) {
      this.reconnect()
      if (ws && !open) this.probe()
    }
  }

  // A refusal by the connect hook (or the Origin check) looks, to a browser, like a socket that
  // closes before opening: a GET on the endpoint tells. 401 or 403 stops, with the server's
  // words; any other answer, or none, leaves the reconnect running. A WebSocket that failed while
  // the server answers HTTP counts toward the fallback (a server that is down does not).
  probe() {
    const { fetch, address } = this.options
    fetch?.(httpOf(address), { credentials: 'include' })
      .then(async (response) => {
        const { status } = response
        if (!this.sse) this.fails++
        if (status !== 401 && status !== 403) return
        let text = await response.text()
        try { text = JSON.parse(text).error || text } catch {}
        if (!this.open && this.stores.size) this.stop(storexError(`the server refused the connection (${status}): ${text}`))
      })
      .catch(() => {})
  }

  // Every store fails with `error` (onError, `ready` and commits reject) and the connector closes;
  // a store attached later opens it again.
  stop(error) {
    for (const store of this.stores) this.fail(store, error)
    this.close()
  }

  fail(store, error, why = error) {
    this.stores.delete(store)
    store.live = false
    store.refused((store.failure = error))
    this.drop(why, store)
  }

  // Capped exponential backoff with "equal jitter": half the delay fixed, half random, so that
  // many tabs dropped by one server restart do not all come back in the same instant.
  reconnect() {
    const { reconnectBase, reconnectMax } = this.options
    const delay = Math.min(reconnectMax, reconnectBase * 2 ** this.attempt++)
    this.retry = this.later(delay / 2 + (Math.random() * delay) / 2, () => this.connect())
  }

  // Rejects the commits not sent yet: of one store, or of all.
  drop(error, store) {
    for (const wait of this.queue) if (!store || wait.store === store) this.release(wait).reject(error)
  }

  release(wait) {
    this.queue.delete(wait)
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
  const { address = httpOf(Storex.defaults.address), fetch = globalThis.fetch } = options
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
