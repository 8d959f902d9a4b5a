// The event-stream transport (PROTOCOL.md "The event-stream transport") against the real counter
// server: storex.js with transport 'sse' over Node's own fetch, no WebSocket at all.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import useStorex, { socketConnector } from '../../storex.js'
import { startExample, waitFor, within } from '../support/server.js'
import { stateWhere, nextEvent } from './helpers.js'

const COUNTER = 'ExampleApp.Store.Counter'

// A connector on the event stream whose fetch records every request (method, path, status) and can
// cut the open streams as a dropped network would (the client sees its read fail; no DELETE).
function sseConnector(server, t) {
  const requests = []
  const streams = new Set()
  const fetch = async (url, init = {}) => {
    const entry = { method: init.method || 'GET', path: new URL(url).pathname, body: init.body }
    requests.push(entry)
    let cut
    if (entry.method === 'GET') {
      cut = new AbortController()
      streams.add(cut)
      init.signal?.addEventListener('abort', () => cut.abort())
    }
    const response = await globalThis.fetch(url, cut ? { ...init, signal: cut.signal } : init)
    entry.status = response.status
    return response
  }
  const WebSocket = class { constructor() { throw new Error('no WebSocket with transport sse') } }
  const connector = socketConnector({ address: server.ws, transport: 'sse', fetch, WebSocket, reconnectBase: 100, reconnectMax: 1000 })
  t.after(() => connector.close())
  const cutStreams = () => {
    for (const cut of streams) cut.abort()
    streams.clear()
  }
  return { connector, requests, cutStreams }
}

async function counterServer(t) {
  const server = await startExample('counter')
  t.after(() => server.stop())
  return server
}

const increaseAll = async (server) => (await (await fetch(`${server.url}/api/increase-all`, { method: 'POST' })).json()).reached

test('over the event stream: join, commits with their answers, a server-side push, and close() ends the session', async (t) => {
  const server = await counterServer(t)
  const { connector, requests } = sseConnector(server, t)
  const counter = useStorex({ store: COUNTER, connector })
  assert.deepEqual(await within(counter.ready, 10000, 'the join over the event stream'), { counter: 0 })
  assert.match(counter.session, /^[A-Za-z0-9_-]{21}$/)
  assert.deepEqual(requests[0], { method: 'GET', path: '/storex/sse', body: undefined, status: 200 })
  const post = requests.find((request) => request.method === 'POST')
  assert.match(post.path, /^\/storex\/sse\/[A-Za-z0-9_-]{21}$/)
  assert.equal(JSON.parse(post.body).type, 'join')
  assert.equal(post.status, 204)

  const states = []
  counter.subscribe((state) => states.push(state.counter))
  assert.equal(await counter.commit('increase'), undefined)
  assert.equal(await counter.commit('decrease'), 'message')
  // Several commits at once: batched into fewer POSTs, applied and answered in order.
  const replies = await Promise.all([counter.commit('set', 10), counter.commit('increase'), counter.commit('decrease'), counter.commit('increase')])
  assert.deepEqual(replies, [undefined, undefined, 'message', undefined])
  assert.deepEqual(counter.state, { counter: 11 })
  assert.deepEqual(states, [1, 0, 10, 11, 10, 11])
  // Frames per POST of commits: the first of the four went alone and the other three waited for
  // its POST; or all four waited, when the POST of 'decrease' was still awaiting its 204 after its
  // answer came on the stream.
  const perPost = requests.filter((request) => request.method === 'POST' && request.body.includes('"mutation"')).map((request) => request.body.split('\n').length)
  assert.ok(['1,1,1,3', '1,1,4'].includes(perPost.join()), `the commits made while a POST was in flight went in one POST: ${perPost}`)
  await assert.rejects(counter.commit('set', 'ten'), /No mutation matching "set" with data \["ten"\]/)

  assert.equal(await increaseAll(server), 1)
  assert.deepEqual(await stateWhere(counter, (state) => state.counter === 12, 'the push'), { counter: 12 })

  const streamPath = post.path
  counter.close()
  await waitFor(() => requests.some((request) => request.method === 'DELETE' && request.status), 'the DELETE to be answered')
  assert.deepEqual(requests.filter((request) => request.method === 'DELETE'), [{ method: 'DELETE', path: streamPath, body: undefined, status: 204 }])
  // The session ended at once (a dropped stream would only detach it, and it would still count).
  await waitFor(async () => (await increaseAll(server)) === 0, 'no live counter after close()')
  assert.ok(requests.every((request) => request.status < 300), JSON.stringify(requests.filter((request) => request.status >= 300)))
})

test('over the event stream: a stream cut without a close event resumes the session over a new one, a commit made meanwhile applied once', async (t) => {
  const server = await counterServer(t)
  const { connector, requests, cutStreams } = sseConnector(server, t)
  const counter = useStorex({ store: COUNTER, connector })
  await within(counter.ready, 10000, 'the join')
  await counter.commit('set', 5)
  const session = counter.session
  const disconnected = nextEvent((fn) => counter.onDisconnected(fn), 'onDisconnected')
  cutStreams()
  assert.equal((await disconnected).code, 1006)
  const made = counter.commit('increase') // while disconnected
  assert.equal(await increaseAll(server), 1, 'the detached session still holds its counter') // 6, missed by the client
  assert.equal(await within(made, 10000, 'the commit made while disconnected'), undefined)
  assert.equal(counter.session, session, 'the session was resumed')
  assert.deepEqual(counter.state, { counter: 7 })
  const gets = requests.filter((request) => request.method === 'GET')
  assert.equal(gets.length, 2)
  const posts = requests.filter((request) => request.method === 'POST' && request.body)
  const resume = posts.find((request) => JSON.parse(request.body.split('\n')[0]).type === 'resume')
  assert.ok(resume, 'the new stream asked for the session back')
  assert.equal(await counter.commit('increase'), undefined)
  assert.deepEqual(counter.state, { counter: 8 })
})

// A bare event stream, read by hand: its id, and the data of its default events as they come.
async function rawStream(server, t) {
  const abort = new AbortController()
  t.after(() => abort.abort())
  const response = await fetch(`${server.url}/storex/sse`, { signal: abort.signal })
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
  let text = ''
  const next = async (pattern, what) => within((async () => {
    for (;;) {
      const match = text.match(pattern)
      if (match) {
        text = text.slice(match.index + match[0].length)
        return match[1]
      }
      const { value, done } = await reader.read()
      if (done) throw new Error(`the stream ended before ${what}`)
      text += value
    }
  })(), 10000, what)
  const id = JSON.parse(await next(/event: open\ndata: (.*)\n\n/, 'the open event')).stream
  return { id, message: async () => JSON.parse(await next(/^data: (.*)\n\n/m, 'a frame')) }
}

test('over the event stream: the client answers the server\'s ping event, so a resume of its live session is refused', async (t) => {
  const server = await counterServer(t)
  const { connector, requests } = sseConnector(server, t)
  const counter = useStorex({ store: COUNTER, connector })
  await within(counter.ready, 10000, 'the join')
  await counter.commit('set', 3)
  const emptyPosts = () => requests.filter((request) => request.method === 'POST' && request.body === '').length
  assert.equal(emptyPosts(), 0)
  // Another stream asks for the client's session: the server pings the client's stream, which answers.
  const other = await rawStream(server, t)
  const resume = { type: 'resume', session: counter.session, token: connector.token, stores: [], request: 'r1' }
  const posted = await fetch(`${server.url}/storex/sse/${other.id}`, { method: 'POST', body: JSON.stringify(resume) })
  assert.equal(posted.status, 204)
  const answer = await other.message()
  assert.equal(answer.resumed, false, JSON.stringify(answer))
  assert.equal(answer.error, `Session ${counter.session} is attached to another connection.`)
  assert.ok(emptyPosts() >= 1, 'the ping was answered with an empty POST')
  // The client's own connection goes on.
  assert.equal(await counter.commit('increase'), undefined)
  assert.deepEqual(counter.state, { counter: 4 })
})
