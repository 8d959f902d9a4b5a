// Reconnect, bounded waits, close codes, ping and close(): with a fake socket and a fake clock.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import useStorex, { socketConnector } from '../../storex.js'
import { fakeWebSocket, fakeClock, flush } from './helpers.js'

// transport 'websocket': these sockets may fail to open many times in a row without the
// connector moving to the event stream (its fallback is tested in eventstream.test.js).
const options = { address: 'ws://test/storex', reconnectBase: 100, reconnectMax: 1000, commitTimeout: 5000, pingInterval: 30000, transport: 'websocket' }

// A fetch for the probe of a socket that closed before opening: answers `status` with `body`
// (or fails like a network error when status is null), and records the calls.
function fakeFetch(status = 400, body = '') {
  const calls = []
  const fetch = async (url, init) => {
    calls.push([url, init])
    if (status == null) throw new TypeError('fetch failed')
    return { status, text: async () => body }
  }
  return { fetch, calls }
}

function setup(t, extra) {
  const clock = fakeClock(t)
  const WebSocket = fakeWebSocket()
  const connector = socketConnector({ ...options, WebSocket, fetch: fakeFetch().fetch, ...extra })
  t.after(() => connector.close())
  return { clock, WebSocket, connector }
}

// The timers storex.js has scheduled, other than the ping.
const nonPing = (clock) => clock.delays().filter((ms) => ms !== options.pingInterval)

// A server without resume tokens (Storex, or storex-rs before resume): as before resume existed.
// With a token, the unanswered commit is kept for a resume: see resume.test.js.
test('a dropped socket (no resume token): disconnect, reject the unanswered commit, reconnect, re-join, replace the state', async (t) => {
  const { clock, WebSocket, connector } = setup(t)
  const counter = useStorex({ store: 'Counter', connector })
  const chat = useStorex({ store: 'Chat', connector })
  const events = []
  counter.subscribe((state) => events.push(['state', state]))
  counter.onConnected(() => events.push(['connected']))
  counter.onDisconnected((event) => events.push(['disconnected', event.code]))
  const first = WebSocket.last
  first.open()
  first.acceptJoin('Counter', { counter: 1 }, 'S1')
  first.acceptJoin('Chat', { messages: [] }, 'S1')
  const lost = counter.commit('increase')

  first.serverClose(1006)
  await assert.rejects(lost, /Storex: mutation "increase" of Counter was lost: the connection closed \(1006\); it may or may not have been applied/)
  assert.deepEqual(events.slice(1), [['connected'], ['disconnected', 1006]])
  assert.equal(WebSocket.instances.length, 1)
  const [delay] = nonPing(clock)
  assert.ok(delay >= 50 && delay <= 100, `first retry after ${delay} ms`)

  clock.tick(100)
  assert.equal(WebSocket.instances.length, 2)
  const second = WebSocket.last
  second.open()
  assert.deepEqual(second.sentOf('join').map((join) => join.store), ['Counter', 'Chat'])
  second.acceptJoin('Counter', { counter: 7 }, 'S2')
  assert.deepEqual(counter.state, { counter: 7 })
  assert.equal(counter.session, 'S2')
  assert.deepEqual(events.slice(3), [['state', { counter: 7 }], ['connected']])

  const next = counter.commit('increase')
  assert.equal(second.sentOf('mutation')[0].session, 'S2')
  second.receive({ type: 'mutation', store: 'Counter', session: 'S2', diff: [{ a: 'u', p: ['counter'], t: 8 }], request: second.sentOf('mutation')[0].request })
  await next
  assert.equal(counter.state.counter, 8)
})

test('a dropped socket with a resume token: the unanswered commit is kept, and the new socket resumes first', async (t) => {
  const { clock, WebSocket, connector } = setup(t)
  const counter = useStorex({ store: 'Counter', connector })
  const first = WebSocket.last
  first.open()
  first.acceptJoin('Counter', { counter: 1 }, 'S1', { epoch: 'E', version: 1, token: 'T' })
  const kept = counter.commit('increase')
  const [mutation] = first.sentOf('mutation')
  first.serverClose(1006)
  let settled = false
  kept.finally(() => (settled = true)).catch(() => {})
  await flush()
  assert.equal(settled, false)
  clock.tick(100)
  const second = WebSocket.last
  second.open()
  assert.deepEqual(second.sent.map((message) => message.type), ['resume'])
  second.answer(second.sent[0], { type: 'resume', session: 'S1', resumed: true, token: 'T2', stores: [{ store: 'Counter', epoch: 'E', version: 1, diff: [] }] })
  assert.deepEqual(second.sentOf('mutation'), [mutation])
  second.answer(mutation, { type: 'mutation', store: 'Counter', session: 'S1', diff: [{ a: 'u', p: ['counter'], t: 2 }], epoch: 'E', version: 2, message: 'ok' })
  assert.equal(await kept, 'ok')
  assert.deepEqual(counter.state, { counter: 2 })
})

test('backoff doubles up to the maximum, with jitter between half and all of it', (t) => {
  const { clock, WebSocket, connector } = setup(t)
  useStorex({ store: 'Counter', connector })
  const seen = []
  for (let i = 0; i < 7; i++) {
    WebSocket.last.serverClose(1006) // the server is down: every attempt fails before opening
    const [delay] = nonPing(clock)
    seen.push(delay)
    clock.tick(delay)
  }
  const expected = [100, 200, 400, 800, 1000, 1000, 1000]
  seen.forEach((delay, i) => assert.ok(delay >= expected[i] / 2 && delay <= expected[i], `attempt ${i}: ${delay} ms, expected ${expected[i] / 2}..${expected[i]}`))
  assert.equal(WebSocket.instances.length, 8)
})

test('a successful join resets the backoff', (t) => {
  const { clock, WebSocket, connector } = setup(t)
  useStorex({ store: 'Counter', connector })
  for (let i = 0; i < 3; i++) {
    WebSocket.last.serverClose(1006)
    clock.tick(1000)
  }
  WebSocket.last.open()
  WebSocket.last.acceptJoin('Counter', 0)
  WebSocket.last.serverClose(1001)
  assert.ok(nonPing(clock)[0] <= 100)
})

test('commit while disconnected waits for the join, then is sent and resolves', async (t) => {
  const { clock, WebSocket, connector } = setup(t)
  const store = useStorex({ store: 'Counter', connector })
  const commit = store.commit('set', 3)
  clock.tick(4000)
  const ws = WebSocket.last
  ws.open()
  assert.equal(ws.sentOf('mutation').length, 0, 'not before the join answer: it needs the session')
  ws.acceptJoin('Counter', { counter: 0 }, 'S1')
  const [mutation] = ws.sentOf('mutation')
  assert.deepEqual(mutation.data, { name: 'set', data: [3] })
  assert.equal(mutation.session, 'S1')
  ws.receive({ type: 'mutation', store: 'Counter', session: 'S1', diff: [{ a: 'u', p: ['counter'], t: 3 }], message: 'ok', request: mutation.request })
  assert.equal(await commit, 'ok')
  clock.tick(10000)
  assert.equal(ws.sentOf('mutation').length, 1, 'its timeout was cleared')
})

test('commit while disconnected rejects after commitTimeout and is never sent', async (t) => {
  const { clock, WebSocket, connector } = setup(t)
  const store = useStorex({ store: 'Counter', connector })
  const ws = WebSocket.last
  ws.open()
  ws.acceptJoin('Counter', 0)
  ws.serverClose(1006)
  const commit = store.commit('increase')
  clock.tick(4999)
  let settled = false
  commit.catch(() => {}).finally(() => (settled = true))
  await flush()
  assert.equal(settled, false)
  clock.tick(1)
  await assert.rejects(commit, /Storex: not connected: mutation "increase" of Counter not sent within 5000 ms/)
  WebSocket.last.open()
  WebSocket.last.acceptJoin('Counter', 0)
  assert.equal(WebSocket.last.sentOf('mutation').length, 0)
})

test('close code 4001 (no such store): onError, that store is dropped, no reconnect loop', async (t) => {
  const { clock, WebSocket, connector } = setup(t)
  const store = useStorex({ store: 'Missing', connector })
  const errors = []
  store.onError((error) => errors.push(error.message))
  const commit = store.commit('x')
  WebSocket.last.open()
  WebSocket.last.serverClose(4001, "Store 'Missing' is not defined or can't be compiled.")
  assert.deepEqual(errors, ["Storex: Store 'Missing' is not defined or can't be compiled."])
  await assert.rejects(store.ready, /not defined/)
  await assert.rejects(commit, /joining Missing failed \(4001\)/)
  clock.tick(60000)
  assert.equal(WebSocket.instances.length, 1)
  assert.equal(clock.pending.size, 0, 'no timer left')
})

test('close code 4001 drops only the store that caused it; the others reconnect', (t) => {
  const { clock, WebSocket, connector } = setup(t)
  const good = useStorex({ store: 'Counter', connector })
  const bad = useStorex({ store: 'Missing', connector })
  const errors = []
  good.onError((error) => errors.push(error))
  WebSocket.last.open()
  WebSocket.last.acceptJoin('Counter', 1)
  WebSocket.last.serverClose(4001, "Store 'Missing' is not defined or can't be compiled.")
  clock.tick(100)
  WebSocket.last.open()
  assert.deepEqual(WebSocket.last.sentOf('join').map((join) => join.store), ['Counter'])
  WebSocket.last.acceptJoin('Counter', 2)
  assert.equal(good.state, 2)
  assert.equal(errors.length, 0)
  assert.equal(bad.state, undefined)
})

test('close code 4000 (store not set) rejects that join too', async (t) => {
  const { WebSocket, connector, clock } = setup(t)
  const store = useStorex({ store: 'Counter', connector })
  WebSocket.last.open()
  WebSocket.last.serverClose(4000, 'Store is not set.')
  await assert.rejects(store.ready, /Store is not set\./)
  clock.tick(60000)
  assert.equal(WebSocket.instances.length, 1)
})

// Codes that reconnecting cannot fix stop the connector: onError on every store, commits and
// unsettled `ready`s reject, no timer is left and no socket is opened again.
for (const [code, reason] of [[1007, 'Payload is malformed.'], [1009, 'Frame too large.'], [4001, "Store 'X' is not defined or can't be compiled."], [4000, 'Store is not set.']]) {
  test(`close code ${code} outside a join: onError on every store, commits reject, no reconnect`, async (t) => {
    const { clock, WebSocket, connector } = setup(t)
    const counter = useStorex({ store: 'Counter', connector })
    const chat = useStorex({ store: 'Chat', connector })
    const errors = []
    const disconnects = []
    counter.onError((error) => errors.push(['Counter', error.message]))
    chat.onError((error) => errors.push(['Chat', error.message]))
    counter.onDisconnected((event) => disconnects.push(event.code))
    WebSocket.last.open()
    WebSocket.last.acceptJoin('Counter', 0, 'S1', { epoch: 'E', version: 0, token: 'T' })
    WebSocket.last.acceptJoin('Chat', 0, 'S1', { epoch: 'E', version: 0, token: 'T' })
    const sent = counter.commit('x')
    WebSocket.last.serverClose(code, reason)
    const text = `Storex: the connection closed (${code}: ${reason}); reconnecting cannot fix that`
    assert.deepEqual(errors, [['Counter', text], ['Chat', text]])
    assert.deepEqual(disconnects, [code])
    await assert.rejects(sent, new RegExp(`mutation "x" of Counter was lost: the connection closed \\(${code}\\); it may or may not have been applied`))
    await assert.rejects(counter.commit('y'), (error) => error.message === text)
    assert.deepEqual(counter.state, 0, 'the state stays readable')
    assert.equal(clock.pending.size, 0, 'no timer left')
    clock.tick(120000)
    assert.equal(WebSocket.instances.length, 1)
  })
}

test('a fatal close rejects the commits waiting for the connection with its error', async (t) => {
  const { clock, WebSocket, connector } = setup(t)
  const store = useStorex({ store: 'Counter', connector })
  WebSocket.last.open()
  WebSocket.last.acceptJoin('Counter', 0)
  WebSocket.last.serverClose(1006)
  const waiting = store.commit('x')
  clock.tick(100)
  WebSocket.last.open() // the join is sent; the server closes before answering it
  WebSocket.last.serverClose(1009, 'Frame too large.')
  await assert.rejects(waiting, /^Error: Storex: the connection closed \(1009: Frame too large\.\); reconnecting cannot fix that$/)
  assert.equal(await store.ready, 0, 'a settled ready stays as it was')
  assert.equal(clock.pending.size, 0)
})

test('close code 1009 while a join is unanswered still stops everything', async (t) => {
  const { clock, WebSocket, connector } = setup(t)
  const a = useStorex({ store: 'A', connector })
  const b = useStorex({ store: 'B', connector })
  WebSocket.last.open()
  WebSocket.last.acceptJoin('A', 0)
  WebSocket.last.serverClose(1009, 'Frame too large.')
  await assert.rejects(b.ready, /1009/)
  await assert.rejects(a.commit('x'), /1009/)
  clock.tick(120000)
  assert.equal(WebSocket.instances.length, 1)
})

test('after a stop, a store attached later opens the connector again', (t) => {
  const { WebSocket, connector } = setup(t)
  useStorex({ store: 'A', connector })
  WebSocket.last.open()
  WebSocket.last.acceptJoin('A', 0)
  WebSocket.last.serverClose(1009)
  useStorex({ store: 'B', connector })
  assert.equal(WebSocket.instances.length, 2)
  WebSocket.last.open()
  assert.deepEqual(WebSocket.last.sentOf('join').map((join) => join.store), ['B'])
})

for (const code of [1000, 1001, 1006, 1008, 1011]) {
  test(`close code ${code} reconnects`, (t) => {
    const { clock, WebSocket, connector } = setup(t)
    const store = useStorex({ store: 'Counter', connector })
    const errors = []
    store.onError((error) => errors.push(error))
    WebSocket.last.open()
    WebSocket.last.acceptJoin('Counter', 0)
    WebSocket.last.serverClose(code)
    clock.tick(100)
    assert.equal(WebSocket.instances.length, 2)
    assert.deepEqual(errors, [])
  })
}

// ---- a socket that closes before opening: the probe
for (const [status, body, shown] of [[403, '{"error":"Forbidden: not signed in"}', 'Forbidden: not signed in'], [401, 'Log in first', 'Log in first']]) {
  test(`closed before opening, the probe answers ${status}: stop with the server's words`, async (t) => {
    const { fetch, calls } = fakeFetch(status, body)
    const { clock, WebSocket, connector } = setup(t, { address: 'wss://example.com/storex?x=1', fetch })
    const store = useStorex({ store: 'Counter', connector })
    const errors = []
    store.onError((error) => errors.push(error.message))
    const commit = store.commit('x')
    commit.catch(() => {}) // it rejects while the test awaits the probe
    WebSocket.last.serverClose(1006)
    assert.deepEqual(calls, [['https://example.com/storex?x=1', { credentials: 'include' }]])
    await flush()
    const text = `Storex: the server refused the connection (${status}): ${shown}`
    assert.deepEqual(errors, [text])
    await assert.rejects(store.ready, (error) => error.message === text)
    await assert.rejects(commit, (error) => error.message === text)
    assert.equal(clock.pending.size, 0, 'the retry was cancelled')
    clock.tick(120000)
    assert.equal(WebSocket.instances.length, 1)
  })
}

for (const [what, status] of [['400', 400], ['500', 500], ['200', 200], ['a network error', null]]) {
  test(`closed before opening, the probe answers ${what}: keep reconnecting`, async (t) => {
    const { fetch, calls } = fakeFetch(status, 'nope')
    const { clock, WebSocket, connector } = setup(t, { fetch })
    const store = useStorex({ store: 'Counter', connector })
    const errors = []
    store.onError((error) => errors.push(error))
    for (let i = 0; i < 3; i++) {
      WebSocket.last.serverClose(1006)
      await flush()
      clock.tick(1000)
    }
    assert.equal(calls.length, 3)
    assert.equal(calls[0][0], 'http://test/storex')
    assert.equal(WebSocket.instances.length, 4)
    assert.deepEqual(errors, [])
  })
}

test('no probe after a socket that opened, nor without fetch', async (t) => {
  const { fetch, calls } = fakeFetch(403)
  const { clock, WebSocket, connector } = setup(t, { fetch })
  useStorex({ store: 'Counter', connector })
  WebSocket.last.open()
  WebSocket.last.serverClose(1006)
  await flush()
  assert.equal(calls.length, 0)
  clock.tick(100)
  assert.equal(WebSocket.instances.length, 2)
  const bare = setup(t, { fetch: undefined })
  useStorex({ store: 'Counter', connector: bare.connector })
  bare.WebSocket.last.serverClose(1006)
  await flush()
  assert.equal(bare.WebSocket.instances.length, 1)
})

test('a probe answering 403 after the next socket opened is ignored', async (t) => {
  let answer
  const fetch = () => new Promise((resolve) => (answer = resolve))
  const { clock, WebSocket, connector } = setup(t, { fetch })
  const store = useStorex({ store: 'Counter', connector })
  WebSocket.last.serverClose(1006)
  clock.tick(100)
  WebSocket.last.open()
  WebSocket.last.acceptJoin('Counter', 0)
  answer({ status: 403, text: async () => 'late' })
  await flush()
  assert.equal(store.state, 0)
  assert.equal(WebSocket.last.closedWith, undefined)
})

test('ping every interval; pong answers it; a missing pong drops the socket and reconnects', (t) => {
  const { clock, WebSocket, connector } = setup(t)
  const store = useStorex({ store: 'Counter', connector })
  const disconnects = []
  store.onDisconnected((event) => disconnects.push(event.code))
  const ws = WebSocket.last
  ws.open()
  ws.acceptJoin('Counter', 0)
  assert.equal(ws.sentOf('ping').length, 0)
  clock.tick(30000)
  const [ping] = ws.sentOf('ping')
  assert.deepEqual(Object.keys(ping).sort(), ['request', 'type'])
  ws.receive({ type: 'pong', store: null, data: null, request: ping.request, session: null })
  clock.tick(30000)
  assert.equal(ws.sentOf('ping').length, 2)
  clock.tick(30000) // the second ping was never answered
  assert.equal(ws.closedWith.code, 4002)
  assert.deepEqual(disconnects, [4002])
  clock.tick(100)
  assert.equal(WebSocket.instances.length, 2)
})

test('close() on the last store clears every timer, closes the socket and rejects what waits', async (t) => {
  const { clock, WebSocket, connector } = setup(t)
  const store = useStorex({ store: 'Counter', connector })
  const ws = WebSocket.last
  ws.open()
  ws.acceptJoin('Counter', 0)
  const unanswered = store.commit('increase')
  ws.serverClose(1006)
  await assert.rejects(unanswered)
  const waiting = store.commit('increase')
  assert.ok(clock.pending.size >= 2, 'a retry and a commit timeout are pending')
  store.close()
  assert.equal(clock.pending.size, 0)
  await assert.rejects(waiting, /Storex: the store was closed/)
  clock.tick(120000)
  assert.equal(WebSocket.instances.length, 1)
})

test('connector.close() while open: socket closed with 1000, pending commit rejected, no timer, no reconnect', async (t) => {
  const { clock, WebSocket, connector } = setup(t)
  const store = useStorex({ store: 'Counter', connector })
  const ws = WebSocket.last
  ws.open()
  ws.acceptJoin('Counter', 0)
  const pending = store.commit('increase')
  assert.equal(clock.pending.size, 1, 'the ping')
  connector.close()
  assert.equal(ws.closedWith.code, 1000)
  assert.equal(clock.pending.size, 0)
  await assert.rejects(pending, /may or may not have been applied/)
  ws.serverClose(1000) // the close handshake finishing must not start anything
  clock.tick(120000)
  assert.equal(WebSocket.instances.length, 1)
})

test('a connector closed while idle can be used again', (t) => {
  const { WebSocket, connector } = setup(t)
  useStorex({ store: 'A', connector }).close()
  useStorex({ store: 'B', connector })
  assert.equal(WebSocket.instances.length, 2)
  WebSocket.last.open()
  assert.deepEqual(WebSocket.last.sentOf('join').map((join) => join.store), ['B'])
})
