// The cluster to try (scripts/cluster.sh): two chat nodes with Redis between them, nginx in front.
// A client on each node and one through nginx join one room: what one says reaches the others,
// whichever node serves them; then the script stops and nothing it started is left running.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import net from 'node:net'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { WebSocket } from 'ws'
import useStorex from '../../storex.js'
import { repoRoot, within, waitFor } from '../support/server.js'
import { connectorTo, stateWhere } from './helpers.js'

const CHAT = 'ExampleApp.Store.Chat'
const SCRIPT = path.join(repoRoot, 'scripts', 'cluster.sh')
const READY = /^CLUSTER READY nginx=(\d+) node1=(\d+) node2=(\d+) redis=(\d+) pids=([\d,]+)$/m

const alive = (pid) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return error.code === 'EPERM'
  }
}

// The processes of process group `pgid` (Linux: /proc/PID/stat, field 5 after the command).
function groupMembers(pgid) {
  if (!existsSync('/proc/self/stat')) return []
  const members = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (fields[0] !== 'Z' && Number(fields[2]) === pgid) members.push(Number(entry))
    } catch {
      // it ended while we looked
    }
  }
  return members
}

// How many connections of the Redis server on `port` listen to `channel` (PUBSUB NUMSUB).
function subscribers(port, channel) {
  return within(new Promise((resolve, reject) => {
    const socket = net.createConnection({ host: '127.0.0.1', port })
    const args = ['PUBSUB', 'NUMSUB', channel]
    let answer = ''
    socket.on('data', (chunk) => {
      answer += chunk
      const match = answer.match(/:(\d+)\r\n$/)
      if (match) {
        socket.end()
        resolve(Number(match[1]))
      }
    })
    socket.on('error', reject)
    socket.write(`*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')}`)
  }), 2000, `PUBSUB NUMSUB ${channel}`)
}

// Starts scripts/cluster.sh (the binary test-e2e.sh built; nginx on a free port) in a process
// group of its own, and resolves once it printed its CLUSTER READY line.
async function startCluster(t) {
  const child = spawn('bash', [SCRIPT, '--port', '0', '--no-build'], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk) => { output += chunk })
  child.stderr.on('data', (chunk) => { output += chunk })
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  // Whatever happens to the test, nothing of the cluster outlives it.
  const killGroup = () => { try { process.kill(-child.pid, 'SIGKILL') } catch {} }
  process.once('exit', killGroup)
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await within(exited, 10000, 'cluster.sh to stop').catch(killGroup)
    }
    killGroup()
    process.removeListener('exit', killGroup)
  })
  const ready = new Promise((resolve, reject) => {
    child.stdout.on('data', () => {
      const match = output.match(READY)
      if (match) resolve(match)
    })
    exited.then(({ code, signal }) => reject(new Error(`cluster.sh exited (${code ?? signal}) before it was ready:\n${output}`)))
  })
  const [, nginx, node1, node2, redis, pids] = await within(ready, 30000, "cluster.sh's CLUSTER READY line")
    .catch((error) => { throw new Error(`${error.message}; its output:\n${output}`) })
  const [redisPid, node1Pid, node2Pid, nginxPid] = pids.split(',').map(Number)
  const at = (port) => ({ url: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}/storex` })
  return {
    child,
    exited,
    output: () => output,
    nginx: { port: Number(nginx), ...at(nginx) },
    node1: at(node1),
    node2: at(node2),
    redisPort: Number(redis),
    pids: { redis: redisPid, node1: node1Pid, node2: node2Pid, nginx: nginxPid },
  }
}

test('two chat nodes behind nginx: a message said on one node reaches the room on the other; the script stops everything', async (t) => {
  const started = Date.now()
  const cluster = await startCluster(t)
  for (const [name, pid] of Object.entries(cluster.pids)) assert.ok(alive(pid), `${name} (PID ${pid}) runs`)

  // nginx serves the page (from one of the nodes) and proxies the WebSocket. The client through
  // nginx sends a browser's Origin: its join passes the endpoint's same-host check only because
  // nginx passes the Host header on.
  const page = await fetch(`${cluster.nginx.url}/?room=lobby&name=ada`)
  assert.equal(page.status, 200)
  assert.match(await page.text(), /ExampleApp\.Store\.Chat/)
  const origin = cluster.nginx.url
  class BrowserLikeWebSocket extends WebSocket {
    constructor(address) {
      super(address, { origin })
    }
  }

  // nginx passes Origin on too: a page of another site is still refused (403) by the node.
  const foreign = new WebSocket(cluster.nginx.ws, { origin: 'http://evil.example' })
  const refused = await within(new Promise((resolve, reject) => {
    foreign.once('unexpected-response', (request, response) => resolve(response.statusCode))
    foreign.once('open', () => reject(new Error('a foreign origin was let in through nginx')))
    foreign.once('error', reject)
  }), 5000, 'the refusal of a foreign origin')
  foreign.terminate()
  assert.equal(refused, 403)

  const connectors = []
  const join = (server, name, room = 'lobby', options = {}) => {
    const { connector } = connectorTo(server, t, options)
    connectors.push(connector)
    return useStorex({ store: CHAT, params: { room, name }, connector })
  }
  const ada = join(cluster.node1, 'ada')
  const bob = join(cluster.node2, 'bob')
  const carol = join(cluster.nginx, 'carol', 'lobby', { WebSocket: BrowserLikeWebSocket })
  const eve = join(cluster.node2, 'eve', 'attic')
  await within(Promise.all([ada.ready, bob.ready, carol.ready, eve.ready]), 10000, 'the four joins')

  // A node subscribes to a room's channel when its first member joins, in the background: the
  // messages below are said once both nodes listen to the lobby.
  const lobby = `storex:key:${CHAT}:lobby`
  await waitFor(async () => (await subscribers(cluster.redisPort, lobby)) === 2, `both nodes to listen to ${lobby}`, 5000)

  const texts = (state) => state.messages.map(({ id, from, text }) => `${id} ${from}: ${text}`)
  await ada.commit('say', 'hello from node 1')
  for (const [name, member] of Object.entries({ ada, bob, carol })) {
    const state = await stateWhere(member, (s) => s.messages.length === 1, `${name} to receive ada's message`)
    assert.deepEqual(texts(state), ['1 ada: hello from node 1'], name)
  }
  await bob.commit('say', 'hello from node 2')
  for (const [name, member] of Object.entries({ ada, bob, carol })) {
    const state = await stateWhere(member, (s) => s.messages.length === 2, `${name} to receive bob's message`)
    assert.deepEqual(texts(state), ['1 ada: hello from node 1', '2 bob: hello from node 2'], name)
  }
  // Said on both nodes at once: the nodes number a room's messages alike (in Redis), so every
  // member ends with the same list, whatever order the messages arrived in.
  await within(Promise.all([0, 1, 2, 3, 4].flatMap((n) => [ada.commit('say', `ada ${n}`), bob.commit('say', `bob ${n}`)])), 10000, 'ten messages')
  const all = {}
  for (const [name, member] of Object.entries({ ada, bob, carol })) {
    all[name] = texts(await stateWhere(member, (s) => s.messages.length === 12, `${name} to have 12 messages`))
    assert.deepEqual(all[name].map((text) => Number(text.split(' ')[0])), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], name)
  }
  assert.deepEqual(all.bob, all.ada)
  assert.deepEqual(all.carol, all.ada)
  // A newcomer on either node starts from the same history.
  const dave = join(cluster.node1, 'dave')
  assert.deepEqual(texts(await within(dave.ready, 10000, "dave's join")), all.ada)
  // Another room heard nothing.
  assert.deepEqual(eve.state.messages, [])

  for (const connector of connectors) connector.close()

  // SIGTERM to the script alone: it stops what it started, by PID, and exits.
  cluster.child.kill('SIGTERM')
  const { code, signal } = await within(cluster.exited, 10000, 'cluster.sh to stop after SIGTERM')
  assert.ok(code === 143 || signal === 'SIGTERM', `cluster.sh ended with ${code ?? signal}:\n${cluster.output()}`)
  assert.match(cluster.output(), /stopped redis node1 node2 nginx/)
  await waitFor(() => Object.values(cluster.pids).every((pid) => !alive(pid)), 'every process of the cluster to be gone', 5000)
    .catch((error) => {
      const left = Object.entries(cluster.pids).filter(([, pid]) => alive(pid)).map(([name, pid]) => `${name} ${pid}`)
      throw new Error(`${error.message}: still running: ${left.join(', ')}`)
    })
  // Nothing else of its process group either (nginx's worker, a sleep).
  await waitFor(() => groupMembers(cluster.child.pid).length === 0, 'the process group to be empty', 5000)
    .catch((error) => { throw new Error(`${error.message}: ${groupMembers(cluster.child.pid).join(', ')}`) })
  // Redis's port is free again (nginx's too).
  for (const port of [cluster.redisPort, cluster.nginx.port]) {
    await assert.rejects(fetch(`http://127.0.0.1:${port}/`), `port ${port} is closed`)
  }
  t.diagnostic(`cluster started, checked and stopped in ${Date.now() - started} ms`)
})
