// The client (storex.js over the `ws` package) against the real counter example server.
import { test } from 'node:test'
import WebSocket from 'ws'
import assert from 'node:assert/strict'
import useStorex, { Storex, prepare, httpConnector } from '../../storex.js'
import { startExample, restartExample, waitFor, within } from '../support/server.js'
import { connectorTo, stateWhere, nextEvent } from './helpers.js'

const COUNTER = 'ExampleApp.Store.Counter'

async function counterServer(t) {
  const server = await startExample('counter')
  t.after(() => server.stop())
  return server
}

test('join answers the initial state and a session id', async (t) => {
  const server = await counterServer(t)
  const { connector } = connectorTo(server, t)
  const counter = useStorex({ store: COUNTER, connector })
  const connected = nextEvent((fn) => counter.onConnected(fn), 'onConnected')
  assert.deepEqual(await within(counter.ready, 10000, 'the join'), { counter: 0 })
  await connected
  assert.deepEqual(counter.state, { counter: 0 })
  assert.match(counter.session, /^[A-Za-z0-9_-]{21}$/)
})

test('commits answer with the diff applied and the reply', async (t) => {
  const server = await counterServer(t)
  const { connector } = connectorTo(server, t)
  const counter = useStorex({ store: COUNTER, connector })
  await counter.ready
  const states = []
  counter.subscribe((state) => states.push(state.counter))
  assert.equal(await counter.commit('increase'), undefined)
  assert.equal(await counter.commit('increase'), undefined)
  assert.equal(await counter.commit('decrease'), 'message')
  assert.equal(await counter.commit('set', 10), undefined)
  assert.deepEqual(counter.state, { counter: 10 })
  assert.deepEqual(states, [1, 2, 1, 10])
})

test('a commit that does not fit is rejected with the server message and changes nothing', async (t) => {
  const server = await counterServer(t)
  const { connector } = connectorTo(server, t)
  const counter = useStorex({ store: COUNTER, connector })
  await counter.ready
  await counter.commit('set', 3)
  await assert.rejects(counter.commit('set', 'ten'), /^Error: No mutation matching "set" with data \["ten"\] in store ExampleApp.Store.Counter/)
  await assert.rejects(counter.commit('not_existing'), /^Error: No mutation matching "not_existing" with data \[\] in store ExampleApp.Store.Counter/)
  await assert.rejects(counter.commit('set', 1.5), /No mutation matching "set" with data \[1.5\]/)
  await assert.rejects(counter.commit('set', 1, 2), /No mutation matching "set" with data \[1,2\]/)
  assert.deepEqual(counter.state, { counter: 3 })
  // the socket is still usable after the errors
  assert.equal(await counter.commit('decrease'), 'message')
  assert.deepEqual(counter.state, { counter: 2 })
})

test('POST /api/increase-all mutates every live counter, and each client gets the push', async (t) => {
  const server = await counterServer(t)
  const a = useStorex({ store: COUNTER, connector: connectorTo(server, t).connector })
  const b = useStorex({ store: COUNTER, connector: connectorTo(server, t).connector })
  await Promise.all([a.ready, b.ready])
  await b.commit('set', 41)
  const response = await fetch(`${server.url}/api/increase-all`, { method: 'POST' })
  assert.equal(response.status, 200)
  assert.deepEqual(await response.json(), { reached: 2 })
  assert.deepEqual(await stateWhere(a, (s) => s.counter === 1, 'the push to a'), { counter: 1 })
  assert.deepEqual(await stateWhere(b, (s) => s.counter === 42, 'the push to b'), { counter: 42 })
  assert.notEqual(a.session, b.session)
})

test('stores of both APIs share one socket and one server instance', async (t) => {
  const server = await counterServer(t)
  const { connector, sockets } = connectorTo(server, t)
  const seed = new Storex({ store: COUNTER, connector })
  const modern = prepare({}, connector).useStorex({ store: COUNTER })
  await Promise.all([seed.ready, modern.ready])
  assert.equal(sockets.length, 1)
  assert.equal(seed.session, modern.session)
  await seed.commit('set', 7)
  assert.deepEqual(modern.state, { counter: 7 })
  assert.equal(await modern.commit('decrease'), 'message')
  assert.deepEqual(seed.state, { counter: 6 })
  assert.equal(sockets.length, 1)
})

test('httpConnector joins with one GET and cannot commit', async (t) => {
  const server = await counterServer(t)
  const counter = useStorex({ store: COUNTER, connector: httpConnector({ address: `${server.url}/storex` }) })
  assert.deepEqual(await within(counter.ready, 10000, 'the HTTP join'), { counter: 0 })
  assert.equal(counter.session, 'SSR')
  await assert.rejects(counter.commit('increase'), /httpConnector only fetches the state/)
  const unknown = useStorex({ store: 'ExampleApp.Store.Nothing', connector: httpConnector({ address: `${server.url}/storex` }) })
  await assert.rejects(unknown.ready, { message: "Store 'ExampleApp.Store.Nothing' is not defined or can't be compiled." })
})

test('after a server restart on the same port the client reconnects, re-joins and shows the fresh state', async (t) => {
  let server = await startExample('counter')
  t.after(() => server.stop())
  const { connector, sockets } = connectorTo(server, t)
  const counter = useStorex({ store: COUNTER, connector })
  await counter.ready
  await counter.commit('set', 5)
  const disconnected = nextEvent((fn) => counter.onDisconnected(fn), 'onDisconnected')
  const reconnected = nextEvent((fn) => counter.onConnected(fn), 'onConnected after the restart', 15000)
  const oldSession = counter.session
  const port = server.port
  server = await restartExample(server)
  assert.equal(server.port, port)
  await disconnected
  await reconnected
  // the new process knows nothing of the old session: init ran again
  assert.deepEqual(await stateWhere(counter, (s) => s.counter === 0, 'the fresh state'), { counter: 0 })
  assert.notEqual(counter.session, oldSession)
  assert.ok(sockets.length >= 2, 'a new socket was opened')
  assert.equal(await counter.commit('increase'), undefined)
  assert.deepEqual(counter.state, { counter: 1 })
  await waitFor(() => counter.state.counter === 1, 'the state after the commit')
})

test('SIGTERM stops the server gracefully: each session is closed with 1001, then the process exits 0', async (t) => {
  const server = await counterServer(t)
  const sockets = [new WebSocket(server.ws), new WebSocket(server.ws)]
  t.after(() => { for (const socket of sockets) socket.terminate() })
  const closes = sockets.map((socket) => new Promise((resolve) => socket.once('close', (code, reason) => resolve([code, String(reason)]))))
  await Promise.all(sockets.map((socket, i) => new Promise((resolve, reject) => {
    socket.once('error', reject)
    socket.once('open', () => socket.send(JSON.stringify({ type: 'join', store: COUNTER, data: {}, request: `j${i}` })))
    socket.once('message', (data) => resolve(JSON.parse(String(data))))
  })))
  const exited = server.terminate()
  for (const close of closes) {
    assert.deepEqual(await within(close, 10000, 'a close frame'), [1001, 'The server is stopping.'])
  }
  assert.deepEqual(await exited, { code: 0, signal: null })
})
