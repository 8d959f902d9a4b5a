// Path subscriptions: store.onChange(path, fn) fires when a change touches the path.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import useStorex, { socketConnector } from '../../storex.js'
import { fakeWebSocket } from './helpers.js'

// A joined store over a fake socket, and a way to push a diff to it.
function joinedStore(state) {
  const WebSocket = fakeWebSocket()
  const store = useStorex({ store: 'Todos', connector: socketConnector({ address: 'ws://test/storex', WebSocket }) })
  const ws = WebSocket.last
  ws.open()
  ws.acceptJoin('Todos', state)
  const push = (...diff) => ws.receive({ type: 'mutation', store: 'Todos', session: 'SESSION-1', diff })
  return { store, push }
}

function record(store, path) {
  const calls = []
  const off = store.onChange(path, (value, previous) => calls.push([value, previous]))
  return { calls, off }
}

const initial = () => ({ todos: [{ text: 'a', done: false }, { text: 'b', done: false }], filter: 'all' })

test('fires for a change at the path, with the new and the old value', () => {
  const { store, push } = joinedStore(initial())
  const { calls } = record(store, ['todos', 0, 'done'])
  push({ a: 'u', p: ['todos', 0, 'done'], t: true })
  assert.deepEqual(calls, [[true, false]])
  store.close()
})

test('fires for a change under the path', () => {
  const { store, push } = joinedStore(initial())
  const { calls } = record(store, ['todos'])
  push({ a: 'u', p: ['todos', 1, 'text'], t: 'B' })
  assert.equal(calls.length, 1)
  assert.equal(calls[0][0][1].text, 'B')
  store.close()
})

test('fires for a change over the path, including root replacement', () => {
  const { store, push } = joinedStore(initial())
  const { calls } = record(store, ['todos', 0, 'done'])
  push({ a: 'u', p: ['todos', 0], t: { text: 'a', done: true } })
  push({ a: 'u', p: [], t: { todos: [] } })
  assert.deepEqual(calls, [[true, false], [undefined, true]])
  store.close()
})

test('does not fire for a sibling', () => {
  const { store, push } = joinedStore(initial())
  const { calls } = record(store, ['todos', 0, 'done'])
  push({ a: 'u', p: ['filter'], t: 'done' }, { a: 'u', p: ['todos', 1, 'done'], t: true }, { a: 'u', p: ['todos', 0, 'text'], t: 'x' })
  assert.deepEqual(calls, [])
  store.close()
})

test('a list delete touches the elements after it, which move down', () => {
  const { store, push } = joinedStore(initial())
  const first = record(store, ['todos', 0])
  const second = record(store, ['todos', 1, 'text'])
  push({ a: 'd', p: ['todos', 0] })
  assert.equal(first.calls.length, 1)
  assert.deepEqual(second.calls, [[undefined, 'b']])
  store.close()
})

test('a map key delete does not touch other keys', () => {
  const { store, push } = joinedStore({ a: 1, b: 2 })
  const { calls } = record(store, ['b'])
  push({ a: 'd', p: ['a'] })
  assert.deepEqual(calls, [])
  store.close()
})

test('fires once per diff, however many of its changes touch the path', () => {
  const { store, push } = joinedStore(initial())
  const { calls } = record(store, ['todos'])
  push({ a: 'u', p: ['todos', 0, 'done'], t: true }, { a: 'u', p: ['todos', 1, 'done'], t: true })
  assert.equal(calls.length, 1)
  store.close()
})

test('the join answer counts as a root replacement; unsubscribe stops the calls', () => {
  const WebSocket = fakeWebSocket()
  const store = useStorex({ store: 'Todos', connector: socketConnector({ address: 'ws://test/storex', WebSocket }) })
  const { calls, off } = record(store, ['filter'])
  WebSocket.last.open()
  WebSocket.last.acceptJoin('Todos', initial())
  assert.deepEqual(calls, [['all', undefined]])
  assert.equal(off(), true)
  WebSocket.last.receive({ type: 'mutation', store: 'Todos', diff: [{ a: 'u', p: ['filter'], t: 'done' }] })
  assert.equal(calls.length, 1)
  store.close()
})

test('a listener that throws does not stop the others', async () => {
  const { store, push } = joinedStore(initial())
  const errors = []
  // The error is rethrown in a microtask (so it still reaches the console); catch it here instead of the runner.
  const runners = process.listeners('uncaughtException')
  process.removeAllListeners('uncaughtException')
  process.on('uncaughtException', (error) => errors.push(error.message))
  store.onChange(['filter'], () => { throw new Error('boom') })
  const { calls } = record(store, ['filter'])
  push({ a: 'u', p: ['filter'], t: 'done' })
  assert.equal(calls.length, 1)
  await new Promise((resolve) => setImmediate(resolve))
  process.removeAllListeners('uncaughtException')
  for (const listener of runners) process.on('uncaughtException', listener)
  assert.deepEqual(errors, ['boom'])
  store.close()
})
