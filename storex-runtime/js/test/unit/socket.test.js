// Both APIs over a socketConnector, against a fake WebSocket: the messages sent and the answers handled.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import useStorex, { Storex, prepare, socketConnector } from '../../storex.js'
import { fakeWebSocket, flush } from './helpers.js'

function setup() {
  const WebSocket = fakeWebSocket()
  const connector = socketConnector({ address: 'ws://test/storex', WebSocket })
  return { WebSocket, connector }
}

test('join: the message, then state, session, subscribers, onConnected and ready', async () => {
  const { WebSocket, connector } = setup()
  const store = useStorex({ store: 'Counter', params: { user: 1 }, connector })
  const states = []
  let connected = 0
  store.subscribe((state) => states.push(state))
  store.onConnected(() => connected++)
  const ws = WebSocket.last
  assert.equal(ws.url, 'ws://test/storex')
  assert.deepEqual(ws.sent, [])
  ws.open()
  const [join] = ws.sent
  assert.deepEqual(Object.keys(join).sort(), ['data', 'request', 'store', 'type'])
  assert.equal(join.type, 'join')
  assert.equal(join.store, 'Counter')
  assert.deepEqual(join.data, { user: 1 })
  assert.match(join.request, /^\w{4,}$/)
  ws.receive({ type: 'join', store: 'Counter', session: 'S1', data: { counter: 0 }, request: join.request })
  assert.deepEqual(store.state, { counter: 0 })
  assert.equal(store.session, 'S1')
  assert.deepEqual(states, [{ counter: 0 }])
  assert.equal(connected, 1)
  assert.deepEqual(await store.ready, { counter: 0 })
  store.close()
})

test('commit: the mutation message; the answer patches the state and resolves with the reply', async () => {
  const { WebSocket, connector } = setup()
  const store = useStorex({ store: 'Counter', connector })
  const ws = WebSocket.last
  ws.open()
  ws.acceptJoin('Counter', { counter: 0 }, 'S1')
  const states = []
  store.subscribe((state) => states.push(state))

  const set = store.commit('set', 10, { why: 'test' })
  const message = ws.sentOf('mutation')[0]
  assert.deepEqual({ ...message, request: 'R' }, {
    type: 'mutation', store: 'Counter', session: 'S1', data: { name: 'set', data: [10, { why: 'test' }] }, request: 'R',
  })
  assert.notEqual(message.request, ws.sent[0].request)
  ws.receive({ type: 'mutation', store: 'Counter', session: 'S1', diff: [{ a: 'u', p: ['counter'], t: 10 }], message: 'done', request: message.request })
  assert.equal(await set, 'done')
  assert.deepEqual(store.state, { counter: 10 })
  assert.deepEqual(states, [{ counter: 10 }])

  const increase = store.commit('increase')
  const second = ws.sentOf('mutation')[1]
  assert.deepEqual(second.data, { name: 'increase', data: [] })
  ws.receive({ type: 'mutation', store: 'Counter', session: 'S1', diff: [], request: second.request })
  assert.equal(await increase, undefined)
  assert.deepEqual(states.length, 1, 'an empty diff notifies nobody')
  store.close()
})

test('commit: an error answer rejects with the server text and leaves the state', async () => {
  const { WebSocket, connector } = setup()
  const store = useStorex({ store: 'Counter', connector })
  const ws = WebSocket.last
  ws.open()
  ws.acceptJoin('Counter', { counter: 1 })
  const commit = store.commit('not_existing')
  const text = 'No mutation matching "not_existing" with data [] in store Counter'
  ws.receive({ type: 'error', store: 'Counter', session: 'SESSION-1', error: text, request: ws.sentOf('mutation')[0].request })
  await assert.rejects(commit, (error) => error instanceof Error && error.message === text)
  assert.deepEqual(store.state, { counter: 1 })
  store.close()
})

test('pushes (request missing or null) patch the named store only; junk is ignored', () => {
  const { WebSocket, connector } = setup()
  const counter = useStorex({ store: 'Counter', connector })
  const chat = useStorex({ store: 'Chat', connector })
  assert.equal(WebSocket.instances.length, 1, 'stores share one socket')
  const ws = WebSocket.last
  ws.open()
  assert.deepEqual(ws.sentOf('join').map((join) => join.store), ['Counter', 'Chat'])
  ws.acceptJoin('Counter', { counter: 0 })
  ws.acceptJoin('Chat', { messages: [] })
  ws.receive({ type: 'mutation', store: 'Chat', session: 'SESSION-1', diff: [{ a: 'i', p: ['messages', 0], t: 'hi' }] })
  ws.receive({ type: 'mutation', store: 'Counter', session: 'SESSION-1', diff: [{ a: 'u', p: ['counter'], t: 2 }], request: null })
  ws.receive('not json')
  ws.receive('null')
  ws.receive('[1]')
  ws.receive({ type: 'join', request: 'unknown', data: 1 })
  ws.receive({ type: 'pong', request: 'unknown' })
  assert.deepEqual(chat.state, { messages: ['hi'] })
  assert.deepEqual(counter.state, { counter: 2 })
  counter.close()
  assert.equal(ws.closedWith, undefined, 'the socket stays while a store uses it')
  chat.close()
  assert.equal(ws.closedWith.code, 1000)
})

test('two store objects of one name share the server instance: both get every diff', async () => {
  const { WebSocket, connector } = setup()
  const a = useStorex({ store: 'Counter', connector })
  const b = useStorex({ store: 'Counter', connector })
  const ws = WebSocket.last
  ws.open()
  const [ja, jb] = ws.sentOf('join')
  ws.receive({ type: 'join', store: 'Counter', session: 'S', data: { counter: 0 }, request: ja.request })
  ws.receive({ type: 'join', store: 'Counter', session: 'S', data: { counter: 0 }, request: jb.request })
  const commit = a.commit('increase')
  ws.receive({ type: 'mutation', store: 'Counter', session: 'S', diff: [{ a: 'u', p: ['counter'], t: 1 }], request: ws.sentOf('mutation')[0].request })
  await commit
  assert.equal(a.state.counter, 1)
  assert.equal(b.state.counter, 1)
  connector.close()
})

test('a refused join: onError, ready rejects, commits reject with the reason', async () => {
  const { WebSocket, connector } = setup()
  const store = useStorex({ store: 'Secret', connector })
  const errors = []
  store.onError((error) => errors.push(error.message))
  const early = store.commit('read')
  const ws = WebSocket.last
  ws.open()
  ws.receive({ type: 'error', store: 'Secret', session: 'S', error: 'Unauthorized', request: ws.sent[0].request })
  assert.deepEqual(errors, ['Unauthorized'])
  await assert.rejects(store.ready, /Unauthorized/)
  await assert.rejects(early, /Unauthorized/)
  await assert.rejects(store.commit('read'), /^Error: Unauthorized$/)
  assert.equal(ws.sentOf('mutation').length, 0)
  store.close()
})

test('the seed API: new Storex({store, params, subscribe, connection}) with Storex.defaults.params', async () => {
  const { WebSocket, connector } = setup()
  Storex.defaults.params = { token: 't' }
  try {
    const states = []
    const connection = []
    const store = new Storex({
      store: 'Counter', params: { page: 2 }, connector,
      subscribe: (state) => states.push(state),
      connection: (up) => connection.push(up),
    })
    assert.ok(store instanceof Storex)
    const ws = WebSocket.last
    ws.open()
    assert.deepEqual(ws.sent[0].data, { token: 't', page: 2 })
    ws.acceptJoin('Counter', 0)
    const reply = store.commit('decrease')
    ws.receive({ type: 'mutation', store: 'Counter', session: 'SESSION-1', diff: [{ a: 'u', p: [], t: -1 }], message: 'decreased', request: ws.sentOf('mutation')[0].request })
    assert.equal(await reply, 'decreased')
    assert.deepEqual(states, [0, -1])
    ws.serverClose(1001)
    assert.deepEqual(connection, [true, false])
    store.close()
  } finally {
    Storex.defaults.params = {}
  }
})

test('prepare(params, connector).useStorex merges params and uses the connector', () => {
  const { WebSocket, connector } = setup()
  const { useStorex: use } = prepare({ token: 't', page: 1 }, connector)
  const store = use({ store: 'Counter', params: { page: 2 } })
  WebSocket.last.open()
  assert.deepEqual(WebSocket.last.sent[0].data, { token: 't', page: 2 })
  store.close()
})

test('state and session are read-only getters', () => {
  const { connector } = setup()
  const store = useStorex({ store: 'Counter', connector })
  assert.throws(() => { store.state = 1 }, TypeError)
  assert.throws(() => { store.session = 'x' }, TypeError)
  store.close()
})

test('a store needs a name; a socket needs an address and a WebSocket (or fetch), and the error says what to pass', () => {
  assert.throws(() => useStorex({ params: {} }), /store name is required/)
  const what = /needs an address and a WebSocket or fetch: pass socketConnector\(\{ address, WebSocket \}\)/
  for (const transport of ['auto', 'websocket', 'sse']) {
    const connector = socketConnector({ address: 'ws://x/storex', WebSocket: undefined, fetch: undefined, transport })
    assert.throws(() => useStorex({ store: 'S', connector }), what, transport)
  }
  const sse = socketConnector({ address: 'ws://x/storex', WebSocket: fakeWebSocket(), fetch: undefined, transport: 'sse' })
  assert.throws(() => useStorex({ store: 'S', connector: sse }), what)
  const ws = socketConnector({ address: 'ws://x/storex', WebSocket: undefined, fetch: async () => {}, transport: 'websocket' })
  assert.throws(() => useStorex({ store: 'S', connector: ws }), what)
})

test('a closed store rejects commits', async () => {
  const { WebSocket, connector } = setup()
  const store = useStorex({ store: 'Counter', connector })
  WebSocket.last.open()
  WebSocket.last.acceptJoin('Counter', 0)
  store.close()
  await assert.rejects(store.commit('increase'), /Storex: Counter is closed/)
  await flush()
})

test('methods work unbound, as React and event handlers pass them', async () => {
  const { WebSocket, connector } = setup()
  const { subscribe, commit, onChange, close } = useStorex({ store: 'Counter', connector })
  const states = []
  subscribe((state) => states.push(state))
  onChange(['counter'], () => {})
  WebSocket.last.open()
  WebSocket.last.acceptJoin('Counter', { counter: 0 })
  const done = commit('increase')
  const [mutation] = WebSocket.last.sentOf('mutation')
  WebSocket.last.receive({ type: 'mutation', store: 'Counter', session: 'SESSION-1', diff: [], request: mutation.request })
  await done
  assert.deepEqual(states, [{ counter: 0 }])
  close()
  assert.equal(WebSocket.last.closedWith.code, 1000)
})

test('a join answer arriving after the store was closed is ignored', () => {
  const { WebSocket, connector } = setup()
  const other = useStorex({ store: 'Other', connector })
  const store = useStorex({ store: 'Counter', connector })
  const connected = []
  store.onConnected(() => connected.push(true))
  WebSocket.last.open()
  store.close()
  WebSocket.last.acceptJoin('Counter', 1)
  assert.equal(store.state, undefined)
  assert.deepEqual(connected, [])
  other.close()
})
