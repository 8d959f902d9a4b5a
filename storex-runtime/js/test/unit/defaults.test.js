// Defaults in a browser-like global scope: the address comes from `location`, the WebSocket from the
// global, and stores that name no connector share one default socket.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fakeWebSocket } from './helpers.js'

// A fresh copy of the module (the query makes a new module record), evaluated with these globals.
async function importWith(globals) {
  const saved = Object.fromEntries(Object.keys(globals).map((key) => [key, globalThis[key]]))
  Object.assign(globalThis, globals)
  try {
    return { storex: await import(`../../storex.js?${Math.random()}`), restore: () => Object.assign(globalThis, saved) }
  } catch (error) {
    Object.assign(globalThis, saved)
    throw error
  }
}

test('on an https page: wss://host/storex, one shared socket, http(s) for httpConnector', async (t) => {
  const WebSocket = fakeWebSocket()
  const urls = []
  const fetch = async (url) => { urls.push(url); return { json: async () => ({ type: 'join', session: 'SSR', store: 'S', data: 1 }) } }
  const { storex, restore } = await importWith({ location: { protocol: 'https:', host: 'example.com:8443' }, WebSocket, fetch })
  t.after(restore)
  const { Storex, default: useStorex, httpConnector } = storex
  assert.equal(Storex.defaults.address, 'wss://example.com:8443/storex')
  const a = new Storex({ store: 'A' })
  const b = useStorex({ store: 'B' })
  assert.equal(WebSocket.instances.length, 1)
  assert.equal(WebSocket.last.url, 'wss://example.com:8443/storex')
  WebSocket.last.open()
  assert.deepEqual(WebSocket.last.sentOf('join').map((join) => join.store), ['A', 'B'])
  await useStorex({ store: 'S', connector: httpConnector() }).ready
  assert.match(urls[0], /^https:\/\/example\.com:8443\/storex\?store=S&params=%7B%7D$/)
  a.close()
  b.close()
})

test('on an http page: ws://host/storex', async (t) => {
  const { storex, restore } = await importWith({ location: { protocol: 'http:', host: 'localhost:4000' } })
  t.after(restore)
  assert.equal(storex.Storex.defaults.address, 'ws://localhost:4000/storex')
})

test('outside a browser there is no default address, and the error says what to pass', async () => {
  const { Storex, default: useStorex } = await import('../../storex.js')
  assert.equal(Storex.defaults.address, undefined)
  assert.throws(() => useStorex({ store: 'S' }), /pass socketConnector\(\{ address, WebSocket \}\)/)
})
