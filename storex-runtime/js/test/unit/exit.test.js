// After close(), nothing of storex.js keeps Node's event loop alive: a script with real timers
// (a 30 s ping, a pending retry, a waiting commit) must exit on its own, at once.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const storex = fileURLToPath(new URL('../../storex.js', import.meta.url))
const helpers = fileURLToPath(new URL('./helpers.js', import.meta.url))

const script = `
import useStorex, { socketConnector } from ${JSON.stringify(storex)}
import { fakeWebSocket } from ${JSON.stringify(helpers)}
const WebSocket = fakeWebSocket()
// Long delays, so that any timer left behind would hold the process for seconds.
const connector = socketConnector({ address: 'ws://test/storex', WebSocket, reconnectBase: 20000 })
const a = useStorex({ store: 'A', connector })
const b = useStorex({ store: 'B', connector })
WebSocket.last.open()
WebSocket.last.acceptJoin('A', 0)
WebSocket.last.acceptJoin('B', 0)
const lost = a.commit('x').catch((error) => error.message)
WebSocket.last.serverClose(1006)        // schedules a reconnect
const waiting = b.commit('y').catch((error) => error.message) // schedules a 10 s timeout
a.close()
b.close()                               // the last store: the connector closes
const open = socketConnector({ address: 'ws://test/storex', WebSocket })
const c = useStorex({ store: 'C', connector: open })
WebSocket.last.open()
WebSocket.last.acceptJoin('C', 0)       // schedules the 30 s ping
open.close()
console.log(JSON.stringify([await lost, await waiting]))
`

test('a script exits promptly after its stores are closed', async () => {
  const started = Date.now()
  const child = spawn(process.execPath, ['--input-type=module', '-e', script])
  let out = ''
  child.stdout.on('data', (chunk) => (out += chunk))
  child.stderr.on('data', (chunk) => (out += chunk))
  const killer = setTimeout(() => child.kill(), 8000)
  const code = await new Promise((resolve) => child.on('exit', resolve))
  clearTimeout(killer)
  assert.equal(code, 0, out)
  const [lost, waiting] = JSON.parse(out)
  assert.match(lost, /may or may not have been applied/)
  assert.match(waiting, /the store was closed/)
  // The limit is far below the 10 s commit timeout and the 30 s ping: only a leak would reach it.
  assert.ok(Date.now() - started < 8000, 'exited on its own')
})
