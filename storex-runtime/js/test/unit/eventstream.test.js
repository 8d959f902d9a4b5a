// The event-stream transport (PROTOCOL.md "The event-stream transport"): the socket storex.js builds
// on fetch (a GET streaming server-sent events, POSTs for the client's frames), the connector over
// it, and when the connector falls back to it. A fetch, a WebSocket and a clock driven by hand.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import useStorex, { socketConnector } from '../../storex.js'
import { fakeWebSocket, fakeClock, fakeFetch, flush } from './helpers.js'

const options = { address: 'ws://test/storex', reconnectBase: 100, reconnectMax: 1000, commitTimeout: 5000, pingInterval: 30000 }

// The socket class is not exported: a connector on the event stream shows it.
const EventStreamSocket = (() => {
  const connector = socketConnector({ ...options, transport: 'sse', fetch: fakeFetch().fetch })
  useStorex({ store: 'X', connector })
  const socket = connector.ws
  connector.close()
  return socket.constructor
})()

// One socket, with what it fires recorded in `events`.
function openSocket(address = 'ws://test/storex?user=1&x=%3F') {
  const fake = fakeFetch()
  const socket = new EventStreamSocket(address, fake.fetch)
  const events = []
  socket.onopen = () => events.push(['open'])
  socket.onmessage = ({ data }) => events.push(['message', data])
  socket.onclose = ({ code, reason }) => events.push(['close', code, reason])
  return { fake, socket, events, stream: fake.streams[0] }
}

function setup(t, extra) {
  const clock = fakeClock(t)
  const fake = fakeFetch()
  const WebSocket = fakeWebSocket()
  const connector = socketConnector({ ...options, WebSocket, fetch: fake.fetch, ...extra })
  t.after(() => connector.close())
  return { clock, fake, WebSocket, connector }
}

// The server's answer to the last frame of `type` (for `store`) the client POSTed.
const answerTo = (fake, stream, type, fields, store) => {
  const frame = fake.sentOf(type).findLast((sent) => !store || sent.store === store)
  stream.send({ type, store: frame.store, session: 'S1', ...fields, request: frame.request })
  return frame
}

// ---- the socket

test('the socket: GET <path>/sse with the query, credentials included; POSTs and DELETE to <path>/sse/ID without it', async () => {
  const { fake, socket, stream, events } = openSocket()
  assert.equal(stream.url, 'http://test/storex/sse?user=1&x=%3F')
  assert.equal(stream.init.credentials, 'include')
  assert.equal(stream.init.headers.Accept, 'text/event-stream')
  stream.open('V1StGXR8_Z5jdHi6B-myT')
  await flush()
  assert.deepEqual(events, [['open']])
  socket.send('{"type":"ping","request":"p1"}')
  assert.equal(fake.posts[0].url, 'http://test/storex/sse/V1StGXR8_Z5jdHi6B-myT')
  assert.deepEqual({ ...fake.posts[0].init }, { credentials: 'include', method: 'POST', body: '{"type":"ping","request":"p1"}' })
  socket.close(1000)
  assert.equal(fake.deletes[0].url, 'http://test/storex/sse/V1StGXR8_Z5jdHi6B-myT')
  assert.deepEqual({ ...fake.deletes[0].init }, { credentials: 'include', method: 'DELETE', keepalive: true })

  assert.equal(openSocket('wss://example.com/storex').stream.url, 'https://example.com/storex/sse')
  assert.equal(openSocket('ws://example.com/mount/storex/').stream.url, 'http://example.com/mount/storex/sse')
})

// Every event shape of the SSE format, cut into chunks of every size (bytes: UTF-8 characters and
// \r\n pairs are cut too), gives the same events.
test('the socket parses server-sent events: any chunking, \\n, \\r\\n and \\r, multi-line data, comments, other fields', async () => {
  const text = [
    ': a comment before anything\n',
    'event: open\r\ndata: {"stream":"ID-1"}\r\n\r\n',
    'data: one\n\n',
    'data: first line\ndata: second line\ndata\ndata:  two spaces, one kept\n\n',
    'event: message\rdata:no space\r\r',
    ':comment\nevent: unknown\ndata: ignored\n\n',
    'event: open\n\n', // no data: not dispatched
    'id: 7\nretry: 100\ndata: other fields are ignored\n\n',
    'data: é ✓ 😀 \u2028 end\r\n\r\n',
    'data: {"type":"pong"}\n\n',
    'data: not dispatched: the stream ends before its blank line\n',
  ].join('')
  const bytes = new TextEncoder().encode(text)
  for (const size of [1, 2, 3, 5, 7, 64, bytes.length]) {
    const { stream, events } = openSocket()
    stream.respond()
    for (let at = 0; at < bytes.length; at += size) stream.push(bytes.slice(at, at + size))
    stream.end()
    await flush()
    assert.deepEqual(events, [
      ['open'],
      ['message', 'one'],
      ['message', 'first line\nsecond line\n\n two spaces, one kept'],
      ['message', 'no space'],
      ['message', 'other fields are ignored'],
      ['message', 'é ✓ 😀 \u2028 end'],
      ['message', '{"type":"pong"}'],
      ['close', 1006, 'the event stream was lost (it ended)'],
    ], `chunks of ${size} bytes`)
  }
})

test('the socket: a GET answered non-2xx, or failing, closes with 1006 without opening', async () => {
  const refused = openSocket()
  refused.stream.respond(403)
  await flush()
  assert.deepEqual(refused.events, [['close', 1006, 'the event stream was lost (403)']])
  assert.equal(refused.stream.aborted, true)
  const failed = openSocket()
  failed.stream.fail()
  await flush()
  assert.deepEqual(failed.events, [['close', 1006, 'the event stream was lost (fetch failed)']])
})

test('the socket: a close event fires onclose with its code and reason, once; nothing after it', async () => {
  const { fake, socket, stream, events } = openSocket()
  stream.open()
  stream.push('event: close\ndata: {"code":4001,"reason":"Store \'X\' is not defined or can\'t be compiled."}\n\ndata: after the close\n\nevent: ping\ndata:\n\n')
  await flush()
  assert.deepEqual(events, [['open'], ['close', 4001, "Store 'X' is not defined or can't be compiled."]])
  assert.equal(stream.aborted, true)
  socket.send('{}')
  socket.close(1000)
  await flush()
  assert.deepEqual([fake.posts.length, fake.deletes.length, events.length], [0, 0, 2])
})

test('the socket: frames queue; one POST at a time carries all that waited, in order', async () => {
  const { fake, socket, stream } = openSocket()
  stream.open()
  await flush()
  socket.send('{"n":1}')
  socket.send('{"n":2}')
  socket.send('{"n":3}')
  assert.deepEqual(fake.posts.map((post) => post.body), ['{"n":1}'])
  fake.posts[0].answer()
  await flush()
  assert.deepEqual(fake.posts.map((post) => post.body), ['{"n":1}', '{"n":2}\n{"n":3}'])
  socket.send('{"n":4}')
  fake.posts[1].answer()
  await flush()
  assert.equal(fake.posts[2].body, '{"n":4}')
  fake.posts[2].answer()
  await flush()
  assert.equal(fake.posts.length, 3, 'nothing waits: no more POSTs')
})

test('the socket: a ping is answered with an empty POST; during a POST, by one more POST after it', async () => {
  const { fake, socket, stream } = openSocket()
  stream.open()
  stream.push('event: ping\ndata:\n\n')
  await flush()
  assert.deepEqual(fake.posts.map((post) => post.body), [''])
  stream.push('event: ping\ndata:\n\n') // while the first is in flight
  await flush()
  assert.equal(fake.posts.length, 1)
  fake.posts[0].answer()
  await flush()
  assert.deepEqual(fake.posts.map((post) => post.body), ['', ''])
  socket.send('{"n":1}')
  stream.push('event: ping\ndata:\n\n')
  socket.send('{"n":2}')
  fake.posts[1].answer()
  await flush()
  assert.deepEqual(fake.posts.map((post) => post.body), ['', '', '{"n":1}\n{"n":2}'], 'a ping while frames wait: they go together')
})

for (const [what, end, reason] of [
  ['answered 404', (post) => post.answer(404), '404'],
  ['answered 500', (post) => post.answer(500), '500'],
  ['failing', (post) => post.fail(), 'fetch failed'],
]) {
  test(`the socket: a POST ${what} loses the connection: the stream is aborted, onclose 1006 once`, async () => {
    const { fake, socket, stream, events } = openSocket()
    stream.open()
    await flush()
    socket.send('{"n":1}')
    socket.send('{"n":2}')
    end(fake.posts[0])
    await flush()
    assert.equal(stream.aborted, true)
    assert.deepEqual(events, [['open'], ['close', 1006, `the event stream was lost (${reason})`]])
    assert.equal(fake.posts.length, 1, 'what waited is not sent')
  })
}

test('the socket: close() sends DELETE (keepalive) once open, aborts the stream, fires nothing', async () => {
  const { fake, socket, stream, events } = openSocket()
  stream.open()
  await flush()
  socket.close(1000)
  await flush()
  assert.equal(fake.deletes.length, 1)
  assert.equal(stream.aborted, true)
  assert.deepEqual(events, [['open']])
  const early = openSocket()
  early.socket.close(1000)
  await flush()
  assert.deepEqual([early.fake.deletes.length, early.stream.aborted, early.events], [0, true, []], 'not open yet: no DELETE')
})

test('the socket: a page that goes away (pagehide) sends the DELETE and fires nothing (no reconnect while it unloads); a closed socket listens no more', async (t) => {
  const page = new EventTarget() // the window, for this test
  const listening = () => page.listeners
  const add = page.addEventListener.bind(page)
  const remove = page.removeEventListener.bind(page)
  page.listeners = 0
  globalThis.addEventListener = (type, fn) => { page.listeners++; add(type, fn) }
  globalThis.removeEventListener = (type, fn) => { page.listeners--; remove(type, fn) }
  t.after(() => { delete globalThis.addEventListener; delete globalThis.removeEventListener })
  const { fake, stream, events } = openSocket()
  stream.open()
  await flush()
  assert.equal(listening(), 1)
  page.dispatchEvent(new Event('pagehide'))
  await flush()
  assert.equal(fake.deletes.length, 1)
  assert.equal(stream.aborted, true)
  assert.deepEqual(events, [['open']])
  assert.equal(listening(), 0, 'the listener goes with the socket')
  const other = openSocket()
  other.socket.close(1000)
  assert.equal(listening(), 0)
})

// ---- the connector over it

// A connector on the event stream whose store Counter joined (state 0) over stream `id`.
async function joinedOverStream(t, id) {
  const { clock, fake, connector } = setup(t, { transport: 'sse' })
  const counter = useStorex({ store: 'Counter', connector })
  fake.streams[0].open(id)
  await flush()
  fake.posts[0].answer()
  answerTo(fake, fake.streams[0], 'join', { data: 0 })
  await counter.ready
  return { clock, fake, connector, counter }
}


test('transport sse: open, the join goes by POST, commits with answers, a push', async (t) => {
  const { fake, WebSocket, connector } = setup(t, { transport: 'sse' })
  const counter = useStorex({ store: 'Counter', params: { user: 1 }, connector })
  const connected = []
  counter.onConnected(() => connected.push(true))
  const stream = fake.streams[0]
  assert.equal(stream.url, 'http://test/storex/sse')
  stream.open('ID1')
  await flush()
  assert.equal(fake.posts[0].url, 'http://test/storex/sse/ID1')
  assert.deepEqual(fake.posts[0].frames.map(({ type, store, data }) => [type, store, data]), [['join', 'Counter', { user: 1 }]])
  fake.posts[0].answer()
  answerTo(fake, stream, 'join', { data: { counter: 0 } })
  assert.deepEqual(await counter.ready, { counter: 0 })
  assert.equal(counter.session, 'S1')
  assert.deepEqual(connected, [true])

  const reply = counter.commit('set', 5)
  await flush()
  const mutation = answerTo(fake, stream, 'mutation', { diff: [{ a: 'u', p: ['counter'], t: 5 }], message: 'ok' })
  assert.deepEqual(mutation.data, { name: 'set', data: [5] })
  assert.equal(await reply, 'ok')
  stream.send({ type: 'mutation', store: 'Counter', session: 'S1', diff: [{ a: 'u', p: ['counter'], t: 6 }] })
  await flush()
  assert.deepEqual(counter.state, { counter: 6 })
  assert.equal(WebSocket.instances.length, 0, "'sse' never tries a WebSocket")
})

test('transport sse: commits batch into one POST while one is in flight, in order, and are answered in order', async (t) => {
  const { fake, connector } = setup(t, { transport: 'sse' })
  const a = useStorex({ store: 'A', connector })
  const b = useStorex({ store: 'B', connector })
  const stream = fake.streams[0]
  stream.open()
  await flush()
  assert.deepEqual(fake.posts.map((post) => post.frames.map((frame) => frame.store)), [['A']], 'one POST at a time')
  fake.posts[0].answer()
  await flush()
  assert.deepEqual(fake.posts.map((post) => post.frames.map((frame) => frame.store)), [['A'], ['B']])
  fake.posts[1].answer()
  answerTo(fake, stream, 'join', { data: 0 }, 'A')
  answerTo(fake, stream, 'join', { data: 0 }, 'B')
  await Promise.all([a.ready, b.ready])
  const commits = [a.commit('one'), b.commit('two'), a.commit('three'), b.commit('four')]
  await flush()
  assert.deepEqual(fake.posts.slice(2).map((post) => post.frames.map((frame) => frame.data.name)), [['one']])
  fake.posts[2].answer()
  await flush()
  assert.deepEqual(fake.posts.slice(2).map((post) => post.frames.map((frame) => frame.data.name)), [['one'], ['two', 'three', 'four']])
  for (const frame of fake.sentOf('mutation')) stream.send({ type: 'mutation', store: frame.store, session: 'S1', diff: [], message: frame.data.name, request: frame.request })
  assert.deepEqual(await Promise.all(commits), ['one', 'two', 'three', 'four'])
})

test('transport sse: the close event reaches the connector: 4001 stops it as a WebSocket close would', async (t) => {
  const { clock, fake, connector } = setup(t, { transport: 'sse' })
  const counter = useStorex({ store: 'Counter', connector })
  const errors = []
  const disconnects = []
  counter.onError((error) => errors.push(error.message))
  counter.onDisconnected((event) => disconnects.push(event))
  const stream = fake.streams[0]
  stream.open()
  await flush()
  fake.posts[0].answer()
  answerTo(fake, stream, 'join', { data: 0 })
  await counter.ready
  stream.push('event: close\ndata: {"code":4001,"reason":"Store \'Other\' is not defined or can\'t be compiled."}\n\n')
  await flush()
  assert.deepEqual(disconnects, [{ code: 4001, reason: "Store 'Other' is not defined or can't be compiled." }])
  assert.deepEqual(errors, ["Storex: the connection closed (4001: Store 'Other' is not defined or can't be compiled.); reconnecting cannot fix that"])
  clock.tick(10000)
  assert.equal(fake.streams.length, 1, 'no reconnect')
  assert.equal(fake.deletes.length, 0, 'the server closed: no DELETE')
})

test('transport sse: a close event 1001 reconnects over a new stream', async (t) => {
  const { clock, fake, connector, counter } = await joinedOverStream(t)
  fake.streams[0].push('event: close\ndata: {"code":1001,"reason":"The server is stopping."}\n\n')
  await flush()
  clock.tick(100)
  assert.equal(fake.streams.length, 2)
  fake.streams[1].open()
  await flush()
  assert.deepEqual(fake.posts[1].frames.map((frame) => frame.type), ['join'])
})

test('transport sse: the stream ending without a close event is a lost connection: a new stream resumes the session, the unanswered commit goes again', async (t) => {
  const { clock, fake, connector } = setup(t, { transport: 'sse' })
  const counter = useStorex({ store: 'Counter', connector })
  const disconnects = []
  counter.onDisconnected((event) => disconnects.push(event.code))
  const first = fake.streams[0]
  first.open('ID1')
  await flush()
  fake.posts[0].answer()
  answerTo(fake, first, 'join', { data: { counter: 1 }, epoch: 'E', version: 1, token: 'T1' })
  await counter.ready
  const kept = counter.commit('increase')
  await flush()
  fake.posts[1].answer()
  const [mutation] = fake.sentOf('mutation')
  first.end()
  await flush()
  assert.deepEqual(disconnects, [1006])
  clock.tick(100)
  const second = fake.streams[1]
  assert.equal(second.url, 'http://test/storex/sse')
  second.open('ID2')
  await flush()
  const resume = fake.posts[2]
  assert.equal(resume.url, 'http://test/storex/sse/ID2')
  assert.deepEqual(resume.frames.map(({ type, session, token, stores }) => ({ type, session, token, stores })), [
    { type: 'resume', session: 'S1', token: 'T1', stores: [{ store: 'Counter', epoch: 'E', version: 1 }] },
  ])
  second.send({ type: 'resume', session: 'S1', resumed: true, token: 'T2', request: resume.frames[0].request, stores: [{ store: 'Counter', epoch: 'E', version: 2, diff: [{ a: 'u', p: ['counter'], t: 2 }] }] })
  await flush()
  assert.deepEqual(counter.state, { counter: 2 })
  resume.answer()
  await flush()
  assert.deepEqual(fake.posts[3].frames, [mutation], 'sent again with its request id')
  second.send({ type: 'mutation', store: 'Counter', session: 'S1', diff: [], epoch: 'E', version: 2, replayed: true, request: mutation.request })
  assert.equal(await kept, undefined)
  assert.deepEqual(counter.state, { counter: 2 })
})

test('transport sse: a POST answered 404 is a lost connection: the stream is aborted and a new one opens', async (t) => {
  const { clock, fake, connector } = setup(t, { transport: 'sse' })
  const counter = useStorex({ store: 'Counter', connector })
  const disconnects = []
  counter.onDisconnected((event) => disconnects.push(event))
  fake.streams[0].open()
  await flush()
  fake.posts[0].answer()
  answerTo(fake, fake.streams[0], 'join', { data: 0 })
  await counter.ready
  counter.commit('increase').catch(() => {})
  await flush()
  fake.posts[1].answer(404)
  await flush()
  assert.equal(fake.streams[0].aborted, true)
  assert.deepEqual(disconnects, [{ code: 1006, reason: 'the event stream was lost (404)' }])
  clock.tick(100)
  assert.equal(fake.streams.length, 2)
  fake.streams[1].open()
  await flush()
  assert.deepEqual(fake.posts[2].frames.map((frame) => frame.type), ['join'])
})

test('transport sse: a GET refused with 403 is probed as a refused WebSocket is: the connector stops with the reason', async (t) => {
  const { clock, fake, connector } = setup(t, { transport: 'sse' })
  fake.probe = 403
  const counter = useStorex({ store: 'Counter', connector })
  fake.streams[0].respond(403)
  await flush()
  await flush()
  assert.equal(fake.probes[0].url, 'http://test/storex')
  await assert.rejects(counter.ready, /the server refused the connection \(403\): status 403/)
  clock.tick(10000)
  assert.equal(fake.streams.length, 1)
})

test('transport sse: the ping every pingInterval goes by POST; its pong keeps the stream', async (t) => {
  const { clock, fake, connector, counter } = await joinedOverStream(t)
  clock.tick(30000)
  await flush()
  assert.deepEqual(fake.posts[1].frames.map((frame) => frame.type), ['ping'])
  fake.posts[1].answer()
  fake.streams[0].send({ type: 'pong', store: null, data: null, session: null, request: fake.posts[1].frames[0].request })
  await flush()
  clock.tick(30000)
  await flush()
  assert.equal(fake.streams.length, 1)
  assert.deepEqual(fake.posts[2].frames.map((frame) => frame.type), ['ping'])
})

test("client close: the last store's close() sends DELETE and aborts the stream", async (t) => {
  const { fake, connector, counter } = await joinedOverStream(t, 'ID1')
  counter.close()
  await flush()
  assert.deepEqual(fake.deletes.map((call) => [call.url, call.init.keepalive]), [['http://test/storex/sse/ID1', true]])
  assert.equal(fake.streams[0].aborted, true)
  assert.equal(fake.streams.length, 1)
})

// ---- when the connector takes the event stream

// Fails the current WebSocket before it opens, then lets the reconnect run.
const failWebSocket = async (WebSocket, clock) => {
  WebSocket.last.serverClose(1006)
  await flush()
  clock.tick(1000)
}

test("auto: after fallbackAfter (2) WebSockets in a row failed to open, the event stream, and it stays", async (t) => {
  const { clock, fake, WebSocket, connector } = setup(t)
  const counter = useStorex({ store: 'Counter', connector })
  await failWebSocket(WebSocket, clock)
  assert.deepEqual([WebSocket.instances.length, fake.streams.length], [2, 0], 'one failure: a WebSocket again')
  await failWebSocket(WebSocket, clock)
  assert.deepEqual([WebSocket.instances.length, fake.streams.length], [2, 1], 'two: the event stream')
  fake.streams[0].open()
  await flush()
  fake.posts[0].answer()
  answerTo(fake, fake.streams[0], 'join', { data: 0 })
  await counter.ready
  fake.streams[0].end()
  await flush()
  clock.tick(1000)
  assert.deepEqual([WebSocket.instances.length, fake.streams.length], [2, 2], 'the event stream stays')
})

test('auto: WebSockets that fail while the server answers no HTTP either (it is down) do not count', async (t) => {
  const { clock, fake, WebSocket, connector } = setup(t)
  useStorex({ store: 'Counter', connector })
  const down = fake.fetch
  fake.fetch = (url, init) => (/\/sse/.test(url) ? down(url, init) : Promise.reject(new TypeError('fetch failed')))
  connector.options.fetch = fake.fetch
  for (let i = 0; i < 4; i++) await failWebSocket(WebSocket, clock)
  assert.deepEqual([WebSocket.instances.length, fake.streams.length], [5, 0], 'a server restart is not a blocked WebSocket')
  connector.options.fetch = down // it answers HTTP again, and WebSockets still fail: a proxy blocks them
  await failWebSocket(WebSocket, clock)
  await failWebSocket(WebSocket, clock)
  assert.deepEqual([WebSocket.instances.length, fake.streams.length], [6, 1])
})

test('auto: a WebSocket that opened resets the count of failures', async (t) => {
  const { clock, fake, WebSocket, connector } = setup(t)
  useStorex({ store: 'Counter', connector })
  await failWebSocket(WebSocket, clock)
  WebSocket.last.open()
  WebSocket.last.serverClose(1006)
  clock.tick(1000)
  await failWebSocket(WebSocket, clock)
  assert.deepEqual([WebSocket.instances.length, fake.streams.length], [4, 0])
  await failWebSocket(WebSocket, clock)
  assert.deepEqual([WebSocket.instances.length, fake.streams.length], [4, 1])
})

test('auto: fallbackAfter sets the number of failures', async (t) => {
  const { clock, fake, WebSocket, connector } = setup(t, { fallbackAfter: 3 })
  useStorex({ store: 'Counter', connector })
  await failWebSocket(WebSocket, clock)
  await failWebSocket(WebSocket, clock)
  assert.deepEqual([WebSocket.instances.length, fake.streams.length], [3, 0])
  await failWebSocket(WebSocket, clock)
  assert.deepEqual([WebSocket.instances.length, fake.streams.length], [3, 1])
})

test('auto: without a WebSocket, the event stream at once', async (t) => {
  const { fake, connector } = setup(t, { WebSocket: undefined })
  const counter = useStorex({ store: 'Counter', connector })
  assert.equal(fake.streams.length, 1)
  fake.streams[0].open()
  await flush()
  fake.posts[0].answer()
  answerTo(fake, fake.streams[0], 'join', { data: 0 })
  assert.equal(await counter.ready, 0)
})

test("websocket: never falls back, however many WebSockets fail", async (t) => {
  const { clock, fake, WebSocket, connector } = setup(t, { transport: 'websocket' })
  useStorex({ store: 'Counter', connector })
  for (let i = 0; i < 10; i++) await failWebSocket(WebSocket, clock)
  assert.deepEqual([WebSocket.instances.length, fake.streams.length], [11, 0])
})

test("sse: never tries a WebSocket, however many streams fail", async (t) => {
  const { clock, fake, WebSocket, connector } = setup(t, { transport: 'sse' })
  useStorex({ store: 'Counter', connector })
  for (let i = 0; i < 5; i++) {
    fake.streams.at(-1).fail()
    await flush()
    clock.tick(1000)
  }
  assert.deepEqual([WebSocket.instances.length, fake.streams.length], [0, 6])
})
