// httpConnector: one GET per store (Storex 0.6's server-side rendering join), with a fake fetch.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import useStorex, { httpConnector, prepare } from '../../storex.js'

function fakeFetch(status, body) {
  const urls = []
  const fetch = async (url) => {
    urls.push(url)
    return { status, ok: status < 300, json: async () => (typeof body === 'string' ? JSON.parse(body) : body) }
  }
  return { fetch, urls }
}

test('joins with GET address?store=S&params=JSON and takes the state', async () => {
  const { fetch, urls } = fakeFetch(200, { type: 'join', session: 'SSR', store: 'Todo List', data: { todos: [] } })
  const connector = httpConnector({ address: 'http://test/storex', fetch })
  const store = prepare({ user: 'a&b' }, connector).useStorex({ store: 'Todo List', params: { page: 1 } })
  const states = []
  store.subscribe((state) => states.push(state))
  assert.deepEqual(await store.ready, { todos: [] })
  const url = new URL(urls[0])
  assert.equal(url.origin + url.pathname, 'http://test/storex')
  assert.equal(url.searchParams.get('store'), 'Todo List')
  assert.deepEqual(JSON.parse(url.searchParams.get('params')), { user: 'a&b', page: 1 })
  assert.deepEqual(store.state, { todos: [] })
  assert.equal(store.session, 'SSR')
  assert.deepEqual(states, [{ todos: [] }])
})

test('appends to an address that already has a query', async () => {
  const { fetch, urls } = fakeFetch(200, { type: 'join', session: 'SSR', store: 'S', data: 1 })
  await useStorex({ store: 'S', connector: httpConnector({ address: 'http://test/storex?v=1', fetch }) }).ready
  assert.match(urls[0], /^http:\/\/test\/storex\?v=1&store=S&params=/)
})

test('a 400 error answer: onError and ready rejects with the message', async () => {
  const { fetch } = fakeFetch(400, { type: 'error', session: 'SSR', store: 'S', error: 'Unauthorized' })
  const store = useStorex({ store: 'S', connector: httpConnector({ address: 'http://test/storex', fetch }) })
  const errors = []
  store.onError((error) => errors.push(error.message))
  await assert.rejects(store.ready, /^Error: Unauthorized$/)
  assert.deepEqual(errors, ['Unauthorized'])
})

test('a network failure or a body that is not JSON reaches onError', async () => {
  const failing = httpConnector({ address: 'http://test/storex', fetch: async () => { throw new TypeError('fetch failed') } })
  await assert.rejects(useStorex({ store: 'S', connector: failing }).ready, /fetch failed/)
  const { fetch } = fakeFetch(502, '<html>')
  await assert.rejects(useStorex({ store: 'S', connector: httpConnector({ address: 'http://test/storex', fetch }) }).ready, SyntaxError)
})

test('commit rejects with a clear error: HTTP only fetches the state', async () => {
  const { fetch } = fakeFetch(200, { type: 'join', session: 'SSR', store: 'S', data: 1 })
  const store = useStorex({ store: 'S', connector: httpConnector({ address: 'http://test/storex', fetch }) })
  await assert.rejects(store.commit('increase'), /Storex: cannot commit "increase" to S: httpConnector only fetches the state; use socketConnector to commit/)
  store.close()
})

test('without an address (no page to derive it from) it says so', () => {
  assert.throws(() => httpConnector({ fetch: async () => {} }), /httpConnector needs an address/)
})
