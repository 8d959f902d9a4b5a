// What the integration tests share: a connector to a real server over the `ws` package, and a
// wait for a store's state to satisfy a condition.
import { WebSocket } from 'ws'
import { socketConnector } from '../../storex.js'
import { within } from '../support/server.js'

// A connector to `server` that counts the WebSockets it opens; reconnects quickly for the tests.
// WebSockets only (transport 'websocket'): these tests refuse, cut and restart connections and read
// WebSocket frames, and must not move to the event stream (sse.test.js covers that transport).
export function connectorTo(server, t, options = {}) {
  const sockets = []
  class CountingWebSocket extends WebSocket {
    constructor(...args) {
      super(...args)
      sockets.push(this)
    }
  }
  const connector = socketConnector({ address: server.ws, WebSocket: CountingWebSocket, transport: 'websocket', reconnectBase: 100, reconnectMax: 1000, ...options })
  t.after(() => connector.close())
  return { connector, sockets }
}

// Resolves with the store's state once `accept(state)` is true (now or after a change).
export function stateWhere(store, accept, what, ms = 10000) {
  return within(new Promise((resolve) => {
    if (store.state !== undefined && accept(store.state)) return resolve(store.state)
    const off = store.subscribe((state) => {
      if (accept(state)) {
        off()
        resolve(state)
      }
    })
  }), ms, what)
}

// Resolves the first time `register(listener)` calls the listener, with its argument.
export function nextEvent(register, what, ms = 10000) {
  return within(new Promise((resolve) => {
    const off = register((value) => {
      off()
      resolve(value)
    })
  }), ms, what)
}
