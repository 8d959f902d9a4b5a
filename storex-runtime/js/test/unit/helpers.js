// Test doubles for the unit tests: a WebSocket driven by hand and a clock advanced by hand,
// so that every test is deterministic and none waits for real time.

// A fresh WebSocket class per test, recording its instances, so tests cannot see each other's sockets.
export function fakeWebSocket() {
  class FakeWebSocket {
    constructor(url) {
      this.url = url
      this.sent = []
      this.readyState = 0
      FakeWebSocket.instances.push(this)
    }

    send(text) {
      if (this.readyState !== 1) throw new Error('send on a socket that is not open')
      this.sent.push(JSON.parse(text))
    }

    close(code, reason) {
      this.closedWith = { code, reason }
      this.readyState = 3
    }

    // ---- what a server (or the network) does
    open() {
      this.readyState = 1
      this.onopen?.({})
    }

    receive(message) {
      this.onmessage?.({ data: typeof message === 'string' ? message : JSON.stringify(message) })
    }

    serverClose(code, reason = '') {
      this.readyState = 3
      this.onclose?.({ code, reason })
    }

    sentOf(type) {
      return this.sent.filter((message) => message.type === type)
    }

    // Answers the last join of `store` as a server would; `extra` adds fields such as a
    // storex-rs server's epoch, version and token (PROTOCOL.md "Versions and resume").
    acceptJoin(store, data, session = 'SESSION-1', extra = {}) {
      const join = this.sentOf('join').findLast((message) => message.store === store)
      this.receive({ type: 'join', store, session, data, request: join.request, ...extra })
      return join
    }

    // Answers a sent message (the object from `sent`) with `answer`, echoing its request id.
    answer(message, answer) {
      this.receive({ ...answer, request: message.request })
    }

    static get last() {
      return FakeWebSocket.instances.at(-1)
    }
  }
  FakeWebSocket.instances = []
  return FakeWebSocket
}

// Replaces setTimeout/clearTimeout with a clock that only moves on tick(); restores them after the test.
export function fakeClock(t) {
  const real = { setTimeout: globalThis.setTimeout, clearTimeout: globalThis.clearTimeout }
  const pending = new Map()
  let now = 0
  let next = 0
  globalThis.setTimeout = (fn, ms = 0) => {
    const id = ++next
    pending.set(id, { at: now + ms, ms, fn })
    return id
  }
  globalThis.clearTimeout = (id) => pending.delete(id)
  t.after(() => Object.assign(globalThis, real))
  return {
    pending,
    delays: () => [...pending.values()].map((timer) => timer.ms),
    tick(ms) {
      const end = now + ms
      for (;;) {
        const due = [...pending].filter(([, timer]) => timer.at <= end).sort((a, b) => a[1].at - b[1].at)[0]
        if (!due) break
        pending.delete(due[0])
        now = due[1].at
        due[1].fn()
      }
      now = end
    },
  }
}

// Lets promise callbacks that are already due run.
export const flush = () => new Promise((resolve) => setImmediate(resolve))

// A fetch driven by hand, for the event-stream transport (PROTOCOL.md "The event-stream transport").
// A GET of <path>/sse is recorded in `streams` and answered when the test says: `open(id)` answers
// 200 and sends the open event, `push(chunk)` sends raw event-stream text or bytes (split as the test likes),
// `send(message)` one frame, `end()` ends the body, `respond(status)` answers without opening, `fail()`
// fails like a network error; `aborted` tells whether the client aborted it. POSTs are recorded in
// `posts` (their `frames` parsed) and wait for `answer(status = 204)` or `fail()`; DELETEs are recorded
// in `deletes` and answered 204. Any other GET is the connector's probe: recorded in `probes`, answered
// with `probe` (the status, 400 by default).
export function fakeFetch() {
  const encoder = new TextEncoder()
  const fake = { streams: [], posts: [], deletes: [], probes: [], probe: 400 }
  const answer = (status, extra) => ({ ok: status >= 200 && status < 300, status, text: async () => `status ${status}`, ...extra })
  fake.fetch = (url, init = {}) => new Promise((resolve, reject) => {
    const call = { url, init, fail: () => reject(new TypeError('fetch failed')) }
    if (init.method === 'POST') {
      const frames = init.body.split('\n').filter(Boolean).map((line) => JSON.parse(line))
      fake.posts.push(Object.assign(call, { body: init.body, frames, answer: (status = 204) => resolve(answer(status)) }))
    } else if (init.method === 'DELETE') {
      fake.deletes.push(call)
      resolve(answer(204))
    } else if (!/\/sse(\?|$)/.test(url)) {
      fake.probes.push(call)
      resolve(answer(fake.probe))
    } else {
      let controller
      const body = new ReadableStream({ start: (c) => (controller = c) })
      init.signal?.addEventListener('abort', () => {
        const error = new DOMException('This operation was aborted', 'AbortError')
        try { controller.error(error) } catch {}
        reject(error)
      })
      Object.defineProperty(call, 'aborted', { get: () => Boolean(init.signal?.aborted) })
      fake.streams.push(Object.assign(call, {
        respond: (status = 200) => resolve(answer(status, { body })),
        open(id = `STREAM-${fake.streams.indexOf(call) + 1}`) {
          call.respond()
          call.push(`event: open\ndata: {"stream":"${id}"}\n\n`)
        },
        push: (chunk) => controller.enqueue(typeof chunk === 'string' ? encoder.encode(chunk) : chunk),
        send: (message) => call.push(`data: ${JSON.stringify(message)}\n\n`),
        end: () => controller.close(),
      }))
    }
  })
  // Every frame POSTed so far, in order; those of one type.
  fake.sent = () => fake.posts.flatMap((post) => post.frames)
  fake.sentOf = (type) => fake.sent().filter((frame) => frame.type === type)
  return fake
}
