// A TCP proxy on a free loopback port in front of an example server, for the resume tests: clients
// connect through it, and it can drop every connection abruptly (`cut()`: both sockets destroyed,
// so the server sees its TCP stream end without a WebSocket close frame, as when a network
// drops), refuse new connections for a while, and hold back what the server sends (on the current
// connections, or on the next ones once their WebSocket is open): its answers are then lost by the
// next cut.
//
// It also reads the WebSocket frames going through (text messages as JSON, close frames with their
// code) into `messages`, so a test can wait for what the server answered and check what went on
// the wire.
import net from 'node:net'
import { within, waitFor } from './server.js'

// Starts a proxy to `target` (anything with a `port` on 127.0.0.1: the object startExample gives,
// which keeps its port across restartExample). `t.after` closes it.
export async function startProxy(target, t) {
  const pairs = new Set()
  let refusing = false
  let holdingNew = false
  const proxy = {
    connections: 0, // connections accepted and forwarded, in all (WebSockets and plain HTTP)
    upgrades: 0, // of those, the WebSocket handshakes
    refused: 0, // connections refused while refusing
    // Every WebSocket message seen: { connection (1, 2, ... in accept order), from ('client' or
    // 'server'), data (the parsed JSON of a text message), close ({ code, reason } of a close frame) }.
    messages: [],

    // Destroys every current connection on both sides at once: nothing more is forwarded, what
    // is held is dropped, no close frame is sent to anyone.
    cut() {
      for (const pair of pairs) pair.end(true)
    },
    // New connections are accepted and destroyed at once (the client sees its socket close
    // before it opens) until allow().
    refuse() { refusing = true },
    allow() { refusing = false },
    // From now on what the server sends on the current connections is kept here, not forwarded.
    holdServerToClient() {
      for (const pair of pairs) pair.holding = true
    },
    // The same for the connections accepted from now on (after the server's HTTP answer, so
    // that a WebSocket opens), until holdNewConnections(false).
    holdNewConnections(on = true) { holdingNew = on },
    // The messages from `from` ('client' or 'server') matching `accept`, in order.
    seen(from, accept = () => true) {
      return proxy.messages.filter((message) => message.from === from && accept(message.data ?? {}, message))
    },
    // Resolves with the first message from `from` matching `accept` (one seen already, or a later one).
    waitFor(from, accept, what, ms = 10000) {
      return waitFor(() => proxy.seen(from, accept)[0], what, ms)
    },
    // Waits until `n` connections were refused (the client is trying to reconnect).
    waitForRefused(n, ms = 10000) {
      return waitFor(() => proxy.refused >= n, `${n} refused connection(s) at the proxy (${proxy.refused} so far)`, ms)
    },
    async close() {
      proxy.cut()
      await within(new Promise((resolve) => server.close(resolve)), 5000, 'the proxy to close')
    },
  }

  const server = net.createServer((client) => {
    if (refusing) {
      proxy.refused++
      client.on('error', () => {})
      client.destroy()
      return
    }
    const id = ++proxy.connections
    const upstream = net.connect(target.port, '127.0.0.1')
    const pair = {
      holding: false,
      holdAfterHead: holdingNew,
      head: Buffer.alloc(0),
      held: [],
      // abrupt: destroy both now; otherwise (one side ended) end the other after what it was sent.
      // The first call decides.
      end(abrupt) {
        if (!pairs.delete(pair)) return
        if (abrupt || pair.holding) {
          client.destroy()
          upstream.destroy()
        } else {
          client.end()
          upstream.end()
        }
      },
    }
    pairs.add(pair)
    const fromClient = frameReader((message) => proxy.messages.push({ connection: id, from: 'client', ...message }), () => proxy.upgrades++)
    const fromServer = frameReader((message) => proxy.messages.push({ connection: id, from: 'server', ...message }))
    client.on('data', (chunk) => {
      if (!pairs.has(pair)) return
      fromClient(chunk)
      upstream.write(chunk)
    })
    upstream.on('data', (chunk) => {
      if (!pairs.has(pair)) return
      fromServer(chunk)
      if (pair.holdAfterHead) {
        // forward the HTTP head, hold from the first byte after it
        const before = pair.head.length
        pair.head = Buffer.concat([pair.head, chunk])
        const end = pair.head.indexOf('\r\n\r\n')
        if (end < 0) return client.write(chunk)
        pair.holdAfterHead = false
        pair.holding = true
        client.write(chunk.subarray(0, end + 4 - before))
        chunk = chunk.subarray(end + 4 - before)
      }
      if (pair.holding) pair.held.push(chunk)
      else client.write(chunk)
    })
    for (const socket of [client, upstream]) {
      socket.on('error', () => pair.end(true))
      socket.on('end', () => pair.end(false))
      socket.on('close', () => pair.end(true))
    }
  })
  await within(new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  }), 5000, 'the proxy to listen')
  const { port } = server.address()
  Object.assign(proxy, { port, url: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}/storex` })
  t?.after(() => proxy.close())
  return proxy
}

// Reads one direction of a connection: the HTTP head first; if it is a WebSocket handshake (a
// request with `Upgrade: websocket`, or a 101 answer), the frames after it, reassembling
// fragmented messages and unmasking the client's. Anything else is not read further.
function frameReader(onMessage, onUpgrade = () => {}) {
  let buffer = Buffer.alloc(0)
  let state = 'head' // 'head', 'frames' or 'off'
  let fragments = []
  return (chunk) => {
    if (state === 'off') return
    buffer = Buffer.concat([buffer, chunk])
    if (state === 'head') {
      const end = buffer.indexOf('\r\n\r\n')
      if (end < 0) return
      const head = buffer.subarray(0, end).toString('latin1')
      state = /^HTTP\/1\.1 101 /.test(head) || /^upgrade:\s*websocket\s*$/im.test(head) ? 'frames' : 'off'
      buffer = buffer.subarray(end + 4)
      if (state === 'off') return
      onUpgrade()
    }
    for (;;) {
      if (buffer.length < 2) return
      const opcode = buffer[0] & 0x0f
      const fin = (buffer[0] & 0x80) !== 0
      const masked = (buffer[1] & 0x80) !== 0
      let length = buffer[1] & 0x7f
      let offset = 2
      if (length === 126) {
        if (buffer.length < 4) return
        length = buffer.readUInt16BE(2)
        offset = 4
      } else if (length === 127) {
        if (buffer.length < 10) return
        length = Number(buffer.readBigUInt64BE(2))
        offset = 10
      }
      const mask = masked ? buffer.subarray(offset, offset + 4) : null
      if (masked) offset += 4
      if (buffer.length < offset + length) return
      const payload = Buffer.from(buffer.subarray(offset, offset + length))
      buffer = buffer.subarray(offset + length)
      if (mask) for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i % 4]
      if (opcode === 0x8) {
        onMessage({ close: { code: payload.length >= 2 ? payload.readUInt16BE(0) : null, reason: payload.subarray(2).toString() } })
      } else if (opcode === 0x1 || opcode === 0x0) {
        fragments.push(payload)
        if (!fin) continue
        const text = Buffer.concat(fragments).toString()
        fragments = []
        let data
        try { data = JSON.parse(text) } catch { data = { text } }
        onMessage({ data })
      }
    }
  }
}
