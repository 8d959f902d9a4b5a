// Versions, resume tokens, the resume exchange and exactly-once commits (PROTOCOL.md "Versions and
// resume"), and maxInFlight: with a fake socket and a fake clock.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import useStorex, { socketConnector } from '../../storex.js'
import { fakeWebSocket, fakeClock, flush } from './helpers.js'

// transport 'websocket': these sockets may fail to open many times in a row without the
// connector moving to the event stream (its fallback is tested in eventstream.test.js).
const options = { address: 'ws://test/storex', reconnectBase: 100, reconnectMax: 1000, commitTimeout: 5000, pingInterval: 30000, transport: 'websocket' }
const noProbe = async () => ({ status: 400, text: async () => '' })

function setup(t, extra) {
  const clock = fakeClock(t)
  const WebSocket = fakeWebSocket()
  const connector = socketConnector({ ...options, WebSocket, fetch: noProbe, ...extra })
  t.after(() => connector.close())
  return { clock, WebSocket, connector }
}

// A storex-rs join answer: epoch, version and a resume token.
const join = (ws, store, data, version = 0, epoch = 'E1', token = 'T1', session = 'S1') => ws.acceptJoin(store, data, session, { epoch, version, token })
const set = (path, value) => ({ a: 'u', p: path, t: value })
// Answers the mutation sent `index`-th on `ws` (among mutations).
const answerMutation = (ws, index, fields) => ws.answer(ws.sentOf('mutation')[index], { type: 'mutation', store: ws.sentOf('mutation')[index].store, session: 'S1', ...fields })
const push = (ws, store, fields) => ws.receive({ type: 'mutation', store, session: 'S1', ...fields })

// Joined Counter {counter: 0} at version 0, then the socket drops and a new one opens.
function dropped(t, extra) {
  const env = setup(t, extra)
  const counter = useStorex({ store: 'Counter', connector: env.connector })
  const first = env.WebSocket.last
  first.open()
  join(first, 'Counter', { counter: 0 })
  return { ...env, counter, first }
}

function reconnect({ clock, WebSocket }) {
  clock.tick(1000) // the longest retry delay (reconnectMax)
  const ws = WebSocket.last
  ws.open()
  return ws
}

// ---- versions

test('versions: a diff applies on top of the version before it; one already held is skipped', async (t) => {
  const { WebSocket, connector } = setup(t)
  const store = useStorex({ store: 'Counter', connector })
  const states = []
  store.subscribe((state) => states.push(state.counter))
  const ws = WebSocket.last
  ws.open()
  join(ws, 'Counter', { counter: 0 }, 4)
  assert.equal(store.version, 4)
  assert.equal(store.epoch, 'E1')

  const commit = store.commit('increase')
  answerMutation(ws, 0, { diff: [set(['counter'], 1)], epoch: 'E1', version: 5, message: 'one' })
  assert.equal(await commit, 'one')
  assert.equal(store.version, 5)
  push(ws, 'Counter', { diff: [set(['counter'], 2)], epoch: 'E1', version: 6 })
  push(ws, 'Counter', { diff: [set(['counter'], 99)], epoch: 'E1', version: 6 }) // already held
  push(ws, 'Counter', { diff: [set(['counter'], 98)], epoch: 'E1', version: 3 }) // older
  assert.deepEqual(states, [0, 1, 2])
  assert.equal(store.version, 6)

  const same = store.commit('noop')
  answerMutation(ws, 1, { diff: [], epoch: 'E1', version: 6, message: 'nothing' })
  assert.equal(await same, 'nothing')
  const failed = store.commit('bad')
  ws.answer(ws.sentOf('mutation')[2], { type: 'error', store: 'Counter', session: 'S1', error: 'no', epoch: 'E1', version: 6 })
  await assert.rejects(failed, /^Error: no$/)
  assert.deepEqual(states, [0, 1, 2])
  assert.equal(ws.sentOf('join').length, 1, 'no re-join')
})

test('a replayed answer resolves the commit with its message and leaves the state', async (t) => {
  const { WebSocket, connector } = setup(t)
  const store = useStorex({ store: 'Counter', connector })
  const ws = WebSocket.last
  ws.open()
  join(ws, 'Counter', { counter: 3 }, 3)
  const states = []
  store.subscribe((state) => states.push(state))
  const commit = store.commit('increase')
  answerMutation(ws, 0, { diff: [], epoch: 'E1', version: 2, message: 'was 2', replayed: true })
  assert.equal(await commit, 'was 2')
  assert.deepEqual(store.state, { counter: 3 })
  assert.equal(store.version, 3)
  assert.deepEqual(states, [])
})

test('a version that skips ahead: the store joins again, skips frames until the answer, and is not "connected" twice', async (t) => {
  const { WebSocket, connector } = setup(t)
  const store = useStorex({ store: 'Counter', connector })
  const other = useStorex({ store: 'Other', connector })
  const events = []
  store.subscribe((state) => events.push(['state', state.counter]))
  store.onConnected(() => events.push(['connected']))
  const ws = WebSocket.last
  ws.open()
  join(ws, 'Counter', { counter: 0 }, 0)
  join(ws, 'Other', 'o', 0)
  push(ws, 'Counter', { diff: [set(['counter'], 2)], epoch: 'E1', version: 2 }) // version 1 is missing
  assert.deepEqual(store.state, { counter: 0 }, 'not applied')
  assert.deepEqual(ws.sentOf('join').map((message) => message.store), ['Counter', 'Other', 'Counter'])
  push(ws, 'Counter', { diff: [set(['counter'], 3)], epoch: 'E1', version: 3 }) // sent before the join answer: in it
  const commit = store.commit('increase') // a commit while the re-join is on the way still goes
  assert.equal(ws.sentOf('mutation').length, 1)
  assert.equal(ws.sentOf('join').length, 3, 'one re-join only')
  join(ws, 'Counter', { counter: 3 }, 3)
  answerMutation(ws, 0, { diff: [set(['counter'], 4)], epoch: 'E1', version: 4 })
  await commit
  assert.deepEqual(store.state, { counter: 4 })
  assert.deepEqual(events, [['state', 0], ['connected'], ['state', 3], ['state', 4]])
  push(ws, 'Other', { diff: [set([], 'p')], epoch: 'E1', version: 1 })
  assert.equal(other.state, 'p', 'the other store was not affected')
})

test('an empty diff whose version is ahead, or another epoch, means a missed change: re-join', (t) => {
  const { WebSocket, connector } = setup(t)
  const store = useStorex({ store: 'Counter', connector })
  const ws = WebSocket.last
  ws.open()
  join(ws, 'Counter', { counter: 0 }, 5)
  push(ws, 'Counter', { diff: [], epoch: 'E1', version: 6 })
  assert.equal(ws.sentOf('join').length, 2)
  join(ws, 'Counter', { counter: 1 }, 6)
  push(ws, 'Counter', { diff: [set(['counter'], 7)], epoch: 'E2', version: 7 }) // a new instance
  assert.equal(ws.sentOf('join').length, 3)
  assert.deepEqual(store.state, { counter: 1 })
  join(ws, 'Counter', { counter: 7 }, 0, 'E2')
  assert.equal(store.epoch, 'E2')
  push(ws, 'Counter', { diff: [set(['counter'], 8)], epoch: 'E2', version: 1 })
  assert.deepEqual(store.state, { counter: 8 })
})

test('a server that sends no versions: every diff applies, as before', (t) => {
  const { WebSocket, connector } = setup(t)
  const store = useStorex({ store: 'Counter', connector })
  const ws = WebSocket.last
  ws.open()
  ws.acceptJoin('Counter', { counter: 0 }, 'S1')
  assert.equal(store.version, undefined)
  push(ws, 'Counter', { diff: [set(['counter'], 1)] })
  push(ws, 'Counter', { diff: [set(['counter'], 2)], epoch: 'X', version: 9 })
  assert.deepEqual(store.state, { counter: 2 })
  assert.equal(ws.sentOf('join').length, 1)
})

// ---- the resume exchange

test('the resume request is the first message: the session, the newest token, each store name once with its epoch and version', (t) => {
  const { clock, WebSocket, connector } = setup(t)
  const a = useStorex({ store: 'Counter', connector })
  const b = useStorex({ store: 'Counter', connector }) // a second object of the same store
  useStorex({ store: 'Chat', connector })
  useStorex({ store: 'Never', connector }) // never joined: joins after the resume
  const first = WebSocket.last
  first.open()
  const [ja, jb] = first.sentOf('join')
  first.answer(ja, { type: 'join', store: 'Counter', session: 'S1', data: 0, epoch: 'E1', version: 0, token: 'T1' })
  first.answer(jb, { type: 'join', store: 'Counter', session: 'S1', data: 0, epoch: 'E1', version: 0, token: 'T2' })
  join(first, 'Chat', [], 7, 'E9', 'T3')
  push(first, 'Counter', { diff: [set([], 1)], epoch: 'E1', version: 1 })
  clock.tick(30000)
  const [ping] = first.sentOf('ping')
  first.answer(ping, { type: 'pong', store: null, data: null, session: null, token: 'T4' })
  first.serverClose(1006)
  const ws = reconnect({ clock, WebSocket })
  assert.equal(ws.sent.length, 1, 'nothing else before the answer')
  const [resume] = ws.sent
  assert.deepEqual({ ...resume, request: 'R' }, {
    type: 'resume', session: 'S1', token: 'T4', request: 'R',
    stores: [{ store: 'Counter', epoch: 'E1', version: 1 }, { store: 'Chat', epoch: 'E9', version: 7 }],
  })
  assert.notEqual(resume.request, ping.request)
  void a; void b
})

test('resumed with a diff: one notification, each onChange once, new version and session, connected', async (t) => {
  const env = dropped(t)
  const { counter, first } = env
  const events = []
  counter.subscribe((state) => events.push(['state', state]))
  counter.onChange(['counter'], (value, previous) => events.push(['counter', value, previous]))
  counter.onChange(['untouched'], () => events.push(['untouched']))
  counter.onConnected(() => events.push(['connected']))
  counter.onDisconnected(() => events.push(['disconnected']))
  first.serverClose(1006)
  const ws = reconnect(env)
  const [resume] = ws.sent
  ws.answer(resume, {
    type: 'resume', session: 'S1', resumed: true, token: 'T5',
    stores: [{ store: 'Counter', epoch: 'E1', version: 3, diff: [set(['counter'], 1), set(['counter'], 2), { a: 'i', p: ['extra'], t: true }, set(['counter'], 3)] }],
  })
  assert.deepEqual(counter.state, { counter: 3, extra: true })
  assert.equal(counter.version, 3)
  assert.equal(counter.session, 'S1')
  assert.deepEqual(events, [['disconnected'], ['state', { counter: 3, extra: true }], ['counter', 3, 0], ['connected']])
  assert.equal(ws.sentOf('join').length, 0, 'no join: the session kept the store')
  push(ws, 'Counter', { diff: [set(['counter'], 4)], epoch: 'E1', version: 4 })
  assert.equal(counter.state.counter, 4)
  // The next resume uses the token of the resume answer.
  ws.serverClose(1006)
  const third = reconnect(env)
  assert.equal(third.sent[0].token, 'T5')
  assert.deepEqual(third.sent[0].stores, [{ store: 'Counter', epoch: 'E1', version: 4 }])
})

test('resumed with an empty diff: nobody is notified but onConnected', (t) => {
  const env = dropped(t)
  const { counter, first } = env
  const events = []
  counter.subscribe(() => events.push('state'))
  counter.onConnected(() => events.push('connected'))
  first.serverClose(1006)
  const ws = reconnect(env)
  ws.answer(ws.sent[0], { type: 'resume', session: 'S1', resumed: true, token: 'T2', stores: [{ store: 'Counter', epoch: 'E1', version: 0, diff: [] }] })
  assert.deepEqual(events, ['connected'])
})

test('resumed with data: the whole state is replaced (another epoch, or history too short)', (t) => {
  const env = dropped(t)
  const { counter, first } = env
  const states = []
  counter.subscribe((state) => states.push(state))
  first.serverClose(1006)
  const ws = reconnect(env)
  ws.answer(ws.sent[0], { type: 'resume', session: 'S1', resumed: true, token: 'T2', stores: [{ store: 'Counter', epoch: 'E2', version: 40, data: { counter: 40 } }] })
  assert.deepEqual(states, [{ counter: 40 }])
  assert.equal(counter.epoch, 'E2')
  assert.equal(counter.version, 40)
  push(ws, 'Counter', { diff: [set(['counter'], 41)], epoch: 'E2', version: 41 })
  assert.deepEqual(counter.state, { counter: 41 })
})

test('resumed, a store the session does not hold (joined:false) and one never joined: they join as usual', (t) => {
  const env = setup(t)
  const { clock, WebSocket, connector } = env
  const counter = useStorex({ store: 'Counter', connector })
  const chat = useStorex({ store: 'Chat', connector })
  const first = WebSocket.last
  first.open()
  join(first, 'Counter', 0)
  join(first, 'Chat', [])
  first.serverClose(1006)
  const late = useStorex({ store: 'Late', connector })
  const ws = reconnect({ clock, WebSocket })
  assert.deepEqual(ws.sent[0].stores.map((entry) => entry.store), ['Counter', 'Chat'])
  ws.answer(ws.sent[0], { type: 'resume', session: 'S1', resumed: true, token: 'T2', stores: [
    { store: 'Counter', epoch: 'E1', version: 0, diff: [] },
    { store: 'Chat', joined: false },
  ] })
  assert.deepEqual(ws.sent.slice(1).map((message) => [message.type, message.store]), [['join', 'Chat'], ['join', 'Late']])
  join(ws, 'Chat', ['fresh'], 0, 'E3', 'T3')
  join(ws, 'Late', 'late', 0, 'E4', 'T4')
  assert.deepEqual(chat.state, ['fresh'])
  assert.equal(chat.epoch, 'E3')
  assert.equal(late.state, 'late')
  assert.equal(counter.state, 0)
})

test('resumed: the unanswered commits go again with their request ids, in order, before the queued ones', async (t) => {
  const env = dropped(t)
  const { counter, first, clock } = env
  const one = counter.commit('add', 1)
  const two = counter.commit('add', 2)
  const [m1, m2] = first.sentOf('mutation')
  first.serverClose(1006)
  let settled = 0
  for (const commit of [one, two]) commit.finally(() => settled++).catch(() => {})
  await flush()
  assert.equal(settled, 0, 'the unanswered commits are kept, not rejected')
  const three = counter.commit('add', 3) // queued while disconnected
  const ws = reconnect(env)
  assert.deepEqual(ws.sent.map((message) => message.type), ['resume'])
  clock.tick(1000)
  ws.answer(ws.sent[0], { type: 'resume', session: 'S1', resumed: true, token: 'T2', stores: [{ store: 'Counter', epoch: 'E1', version: 1, diff: [set(['counter'], 1)] }] })
  const sent = ws.sent.slice(1)
  assert.deepEqual(sent.map((message) => message.type), ['mutation', 'mutation', 'mutation'])
  assert.deepEqual(sent[0], m1, 'the first, byte for byte')
  assert.deepEqual(sent[1], m2)
  assert.deepEqual(sent[2].data, { name: 'add', data: [3] })
  assert.ok(![m1.request, m2.request].includes(sent[2].request))
  // The first had run before the drop (the resume brought its change): its answer is replayed.
  answerMutation(ws, 0, { diff: [], epoch: 'E1', version: 1, message: 'one', replayed: true })
  answerMutation(ws, 1, { diff: [set(['counter'], 3)], epoch: 'E1', version: 2, message: 'two' })
  answerMutation(ws, 2, { diff: [set(['counter'], 6)], epoch: 'E1', version: 3, message: 'three' })
  assert.deepEqual([await one, await two, await three], ['one', 'two', 'three'])
  assert.deepEqual(counter.state, { counter: 6 })
  clock.tick(10000)
  assert.equal(ws.sentOf('mutation').length, 3, 'the queued commit\'s timeout was cleared')
})

test('kept commits survive failed attempts to reconnect until a socket opens', async (t) => {
  const env = dropped(t)
  const { counter, first, clock, WebSocket } = env
  const one = counter.commit('x')
  const [m1] = first.sentOf('mutation')
  first.serverClose(1006)
  for (let i = 0; i < 3; i++) {
    clock.tick(1000)
    WebSocket.last.serverClose(1006) // the server is still down
  }
  const ws = reconnect(env)
  ws.answer(ws.sent[0], { type: 'resume', session: 'S1', resumed: true, token: 'T2', stores: [{ store: 'Counter', epoch: 'E1', version: 0, diff: [] }] })
  assert.deepEqual(ws.sentOf('mutation'), [m1])
  answerMutation(ws, 0, { diff: [], epoch: 'E1', version: 0, message: 'ok' })
  assert.equal(await one, 'ok')
})

test('resume refused: the unanswered commits reject saying so, every store joins afresh, queued commits follow', async (t) => {
  const env = dropped(t)
  const { counter, first, clock } = env
  const lost = counter.commit('increase')
  first.serverClose(1006)
  const queued = counter.commit('set', 5)
  const ws = reconnect(env)
  ws.answer(ws.sent[0], { type: 'resume', session: 'S2', resumed: false, error: 'The resume token has expired.' })
  await assert.rejects(lost, (error) => error.message === 'Storex: mutation "increase" of Counter was lost: the connection closed (1006) and the session could not be resumed (The resume token has expired.); it may or may not have been applied')
  assert.deepEqual(ws.sent.slice(1).map((message) => [message.type, message.store]), [['join', 'Counter']])
  join(ws, 'Counter', { counter: 0 }, 0, 'E2', 'T9', 'S2')
  assert.equal(counter.session, 'S2')
  assert.equal(counter.epoch, 'E2')
  const [mutation] = ws.sentOf('mutation')
  assert.equal(mutation.session, 'S2')
  assert.deepEqual(mutation.data, { name: 'set', data: [5] })
  answerMutation(ws, 0, { diff: [set(['counter'], 5)], epoch: 'E2', version: 1, message: 'set' })
  assert.equal(await queued, 'set')
  // The next drop resumes the new session with its own token.
  ws.serverClose(1006)
  const next = reconnect({ clock, WebSocket: env.WebSocket })
  assert.deepEqual({ ...next.sent[0], request: 'R' }, { type: 'resume', session: 'S2', token: 'T9', stores: [{ store: 'Counter', epoch: 'E2', version: 1 }], request: 'R' })
})

test('an error answer to the resume is a refusal too', async (t) => {
  const env = dropped(t)
  const { counter, first } = env
  const lost = counter.commit('x')
  first.serverClose(1006)
  const ws = reconnect(env)
  ws.answer(ws.sent[0], { type: 'error', error: 'nope' })
  await assert.rejects(lost, /could not be resumed \(nope\); it may or may not have been applied/)
  assert.equal(ws.sentOf('join').length, 1)
})

test('a socket that drops before the resume answer: the commits stay kept and the next socket asks again', async (t) => {
  const env = dropped(t)
  const { counter, first, WebSocket } = env
  let settled = false
  const kept = counter.commit('x').finally(() => (settled = true))
  const request = first.sentOf('mutation')[0].request
  first.serverClose(1006)
  const ws = reconnect(env)
  assert.deepEqual(ws.sent.map((message) => message.type), ['resume'])
  ws.serverClose(1006)
  await flush()
  assert.equal(settled, false, 'the commit is neither resolved nor rejected')
  const next = reconnect(env)
  assert.deepEqual(next.sent.map((message) => message.type), ['resume'])
  assert.equal(next.sent[0].token, 'T1')
  next.answer(next.sent[0], { type: 'resume', session: 'S1', resumed: true, token: 'T2', stores: [{ store: 'Counter', epoch: 'E1', version: 1, diff: [set(['counter'], 1)] }] })
  const again = next.sentOf('mutation')
  assert.deepEqual(again.map((message) => message.request), [request], 'sent again under its id')
  answerMutation(next, 0, { diff: [], epoch: 'E1', version: 1, replayed: true, message: 'done' })
  assert.equal(await kept, 'done')
  assert.equal(counter.state.counter, 1)
  assert.equal(WebSocket.instances.length, 3)
})

test('with a token but no store at a known version there is nothing to resume: join', async (t) => {
  const { clock, WebSocket, connector } = setup(t)
  const store = useStorex({ store: 'Counter', connector })
  WebSocket.last.open()
  WebSocket.last.acceptJoin('Counter', 0, 'S1', { token: 'T1' }) // a token without versions
  const lost = store.commit('x')
  WebSocket.last.serverClose(1006)
  await assert.rejects(lost, /was lost: the connection closed \(1006\); it may or may not have been applied/)
  const ws = reconnect({ clock, WebSocket })
  assert.deepEqual(ws.sent.map((message) => message.type), ['join'])
})

test('commits kept for a resume reject when the connector closes', async (t) => {
  const env = dropped(t)
  const { counter, first, connector, clock } = env
  const kept = counter.commit('x')
  first.serverClose(1006)
  connector.close()
  await assert.rejects(kept, /was lost: the connection closed \(1000\)/)
  assert.equal(clock.pending.size, 0)
})

// ---- maxInFlight

test('maxInFlight: further commits wait in order until an answer frees a slot', async (t) => {
  const { WebSocket, connector } = setup(t, { maxInFlight: 2 })
  const store = useStorex({ store: 'Counter', connector })
  const ws = WebSocket.last
  ws.open()
  join(ws, 'Counter', 0)
  const commits = [1, 2, 3, 4].map((n) => store.commit('add', n))
  assert.deepEqual(ws.sentOf('mutation').map((message) => message.data.data[0]), [1, 2])
  answerMutation(ws, 1, { diff: [], epoch: 'E1', version: 0, message: 2 })
  assert.deepEqual(ws.sentOf('mutation').map((message) => message.data.data[0]), [1, 2, 3])
  ws.answer(ws.sentOf('mutation')[0], { type: 'error', error: 'bad' })
  assert.deepEqual(ws.sentOf('mutation').map((message) => message.data.data[0]), [1, 2, 3, 4])
  answerMutation(ws, 2, { diff: [], epoch: 'E1', version: 0, message: 3 })
  answerMutation(ws, 3, { diff: [], epoch: 'E1', version: 0, message: 4 })
  const results = await Promise.allSettled(commits)
  assert.deepEqual(results.map((result) => result.value ?? result.reason.message), ['bad', 2, 3, 4])
})

test('maxInFlight counts the commits kept for a resume; the queued ones wait for their answers', async (t) => {
  const env = dropped(t, { maxInFlight: 2 })
  const { counter, first } = env
  counter.commit('a')
  counter.commit('b').catch(() => {}) // unanswered: rejected when the test closes the connector
  first.serverClose(1006)
  const c = counter.commit('c')
  const ws = reconnect(env)
  ws.answer(ws.sent[0], { type: 'resume', session: 'S1', resumed: true, token: 'T2', stores: [{ store: 'Counter', epoch: 'E1', version: 0, diff: [] }] })
  assert.deepEqual(ws.sentOf('mutation').map((message) => message.data.name), ['a', 'b'])
  answerMutation(ws, 0, { diff: [], epoch: 'E1', version: 0 })
  assert.deepEqual(ws.sentOf('mutation').map((message) => message.data.name), ['a', 'b', 'c'])
  answerMutation(ws, 2, { diff: [], epoch: 'E1', version: 0, message: 'c' })
  assert.equal(await c, 'c')
})

test('the default maxInFlight is 256', (t) => {
  const { WebSocket, connector } = setup(t)
  const store = useStorex({ store: 'Counter', connector })
  WebSocket.last.open()
  join(WebSocket.last, 'Counter', 0)
  for (let i = 0; i < 300; i++) store.commit('x').catch(() => {})
  assert.equal(WebSocket.last.sentOf('mutation').length, 256)
})

test('a store attached while the resume is unanswered joins once, after the answer', (t) => {
  const env = dropped(t)
  env.first.serverClose(1006)
  const ws = reconnect(env)
  const chat = useStorex({ store: 'Chat', connector: env.connector })
  assert.deepEqual(ws.sent.map((message) => message.type), ['resume'])
  ws.answer(ws.sent[0], { type: 'resume', session: 'S1', resumed: true, token: 'T2', stores: [{ store: 'Counter', epoch: 'E1', version: 0, diff: [] }] })
  assert.deepEqual(ws.sent.slice(1).map((message) => [message.type, message.store]), [['join', 'Chat']])
  join(ws, 'Chat', [])
  assert.deepEqual(chat.state, [])
})

test('a close code answering the resume (a server that does not know it) refuses it, and does not stop', async (t) => {
  const env = dropped(t)
  const { counter, first } = env
  const errors = []
  counter.onError((error) => errors.push(error))
  const lost = counter.commit('x')
  first.serverClose(1006)
  const ws = reconnect(env)
  ws.serverClose(1007, 'Payload is malformed.')
  await assert.rejects(lost, /closed \(1007\) and the session could not be resumed/)
  const next = reconnect(env)
  assert.deepEqual(next.sent.map((message) => message.type), ['join'])
  assert.deepEqual(errors, [])
})
