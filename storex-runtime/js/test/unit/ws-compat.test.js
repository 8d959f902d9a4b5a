// storex.js on Node with the `ws` package as its WebSocket, against a tiny loopback server
// that plays the protocol by hand (the real storex-rs server is covered by test/integration).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { WebSocket, WebSocketServer } from 'ws'
import useStorex, { socketConnector } from '../../storex.js'

function tinyServer() {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/storex' })
  let counter = 0
  server.on('connection', (socket) => {
    socket.on('message', (text) => {
      const message = JSON.parse(text)
      const answer = { store: message.store, session: 'S', request: message.request }
      if (message.type === 'join') socket.send(JSON.stringify({ ...answer, type: 'join', data: { counter } }))
      if (message.type === 'mutation') {
        counter += message.data.data[0]
        socket.send(JSON.stringify({ ...answer, type: 'mutation', diff: [{ a: 'u', p: ['counter'], t: counter }], message: 'added' }))
        setTimeout(() => socket.send(JSON.stringify({ type: 'mutation', store: message.store, session: 'S', diff: [{ a: 'u', p: ['pushed'], t: true }] })), 5)
      }
    })
  })
  return new Promise((resolve) => server.on('listening', () => resolve(server)))
}

test('joins, commits and receives a push over a real socket', async () => {
  const server = await tinyServer()
  const connector = socketConnector({ address: `ws://127.0.0.1:${server.address().port}/storex`, WebSocket })
  const store = useStorex({ store: 'Counter', connector })
  assert.deepEqual(await store.ready, { counter: 0 })
  const pushed = new Promise((resolve) => store.onChange(['pushed'], resolve))
  assert.equal(await store.commit('add', 5), 'added')
  assert.equal(await pushed, true)
  assert.deepEqual(store.state, { counter: 5, pushed: true })
  store.close()
  await new Promise((resolve) => server.close(resolve))
})

test('close() while the socket is still connecting does not throw', async () => {
  const server = await tinyServer()
  const connector = socketConnector({ address: `ws://127.0.0.1:${server.address().port}/storex`, WebSocket })
  useStorex({ store: 'Counter', connector }).close()
  await new Promise((resolve) => setTimeout(resolve, 50))
  await new Promise((resolve) => server.close(resolve))
})

// Node's own WebSocket (undici: the WHATWG API browsers have) is global from Node 22 and behind
// a flag on Node 20, so this runs in a child process with the flag.
test('works with the standard WebSocket global (as in browsers)', async () => {
  const { spawn } = await import('node:child_process')
  const { fileURLToPath } = await import('node:url')
  const script = `
    import { WebSocketServer } from 'ws'
    import useStorex, { socketConnector } from './storex.js'
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 })
    server.on('connection', (s) => s.on('message', (text) => {
      const m = JSON.parse(text)
      s.send(JSON.stringify(m.type === 'join'
        ? { type: 'join', store: m.store, session: 'S', data: { n: 0 }, request: m.request }
        : { type: 'mutation', store: m.store, session: 'S', diff: [{ a: 'u', p: ['n'], t: 1 }], message: 'ok', request: m.request }))
    }))
    await new Promise((resolve) => server.on('listening', resolve))
    const store = useStorex({ store: 'C', connector: socketConnector({ address: 'ws://127.0.0.1:' + server.address().port }) })
    const out = [typeof globalThis.WebSocket, await store.ready, await store.commit('x'), store.state]
    store.close()
    server.close()
    console.log(JSON.stringify(out))
  `
  const child = spawn(process.execPath, ['--experimental-websocket', '--input-type=module', '-e', script], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
  })
  let out = ''
  child.stdout.on('data', (chunk) => (out += chunk))
  child.stderr.on('data', (chunk) => (out += chunk))
  const killer = setTimeout(() => child.kill(), 8000)
  const code = await new Promise((resolve) => child.on('exit', resolve))
  clearTimeout(killer)
  assert.equal(code, 0, out)
  assert.deepEqual(JSON.parse(out), ['function', { n: 0 }, 'ok', { n: 1 }])
})
