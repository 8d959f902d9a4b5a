// Reconnect, bounded waits, close codes, ping and close(): with a fake socket and a fake clock.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import useStorex, { socketConnector } from '../../storex.js'
import { fakeWebSocket, fakeClock, flush } from './helpers.js'

const options = { address: 'ws://test/storex', reconnectBase: 100, reconnectMax: 1000, commitTimeout: 5000, pingInterval: 30000 }

function setup(t, extra) {
  const clock = fakeClock(t)
  const WebSocket = fakeWebSocket()
  const connector = socketConnector({ ...options, WebSocket, ...extra })
  t.after(() => connector.close())
  return { clock, WebSocket, connector }
}

// The timers storex.js has scheduled, other than the ping.
const nonPing = (clock) => clock.delays().filter((ms) => ms !== options.pingInterval)

test('a dropped socket: disconnect, reject the unanswered commit, reconnect, re-join, replace the state', async (t) => {
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

test('close code 1007 outside a join: onError on every store, then reconnect', async (t) => {
  const { clock, WebSocket, connector } = setup(t)
  const store = useStorex({ store: 'Counter', connector })
  const errors = []
  store.onError((error) => errors.push(error.message))
  WebSocket.last.open()
  WebSocket.last.acceptJoin('Counter', 0)
  const commit = store.commit('x')
  WebSocket.last.serverClose(1007, 'Payload is malformed.')
  assert.deepEqual(errors, ['Storex: the server found a message malformed (1007)'])
  await assert.rejects(commit, /may or may not have been applied/)
  clock.tick(100)
  assert.equal(WebSocket.instances.length, 2)
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
