// The event-stream fallback in the browser: the counter page, unchanged (its connector is the
// default: transport 'auto', fallbackAfter 2), in a browser without a WebSocket, and in one whose
// WebSocket never opens, runs over GET /storex/sse and POSTs.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startExample, restartExample, waitFor } from '../support/server.js'
import { launchBrowser, openTab, expectText } from './browser.js'
import { startBlockingProxy } from '../support/nginx.js'

// The counter page in a fresh context whose pages run `init` before any of their scripts, with the
// requests they make recorded (method and path).
async function setup(t, init, through) {
  const browser = await launchBrowser(t)
  let server = await startExample('counter')
  t.after(() => server.stop())
  const proxy = through && (await through(server, t))
  const context = await browser.newContext({ viewport: { width: 800, height: 700 } })
  await context.addInitScript(init)
  const requests = []
  context.on('request', (request) => requests.push(`${request.method()} ${new URL(request.url()).pathname}`))
  const page = await openTab(context, (proxy || server).url)
  return { server, proxy, page, requests, restart: async () => (server = await restartExample(server)) }
}

const streamRequests = (requests) => ({
  gets: requests.filter((request) => request === 'GET /storex/sse').length,
  posts: requests.filter((request) => /^POST \/storex\/sse\/[\w-]{21}$/.test(request)).length,
})

test('without window.WebSocket the page runs over the event stream at once: clicks, a push, a server restart', async (t) => {
  const { server, page, requests, restart } = await setup(t, () => { delete window.WebSocket })
  assert.equal(await page.evaluate(() => typeof WebSocket), 'undefined')
  await expectText(page, '#status', 'connected')
  await expectText(page, '#counter', '0')
  await page.click('#increase')
  await expectText(page, '#counter', '1')
  await page.click('#decrease')
  await expectText(page, '#reply', '"message"')
  await expectText(page, '#counter', '0')
  const response = await fetch(`${server.url}/api/increase-all`, { method: 'POST' })
  assert.deepEqual(await response.json(), { reached: 1 })
  await expectText(page, '#counter', '1')
  assert.equal(streamRequests(requests).gets, 1)
  assert.ok(streamRequests(requests).posts >= 3, 'the join and two commits went by POST')
  // The stream is still open, so it has no resource timing entry yet; its POSTs have.
  const resources = await page.evaluate(() => performance.getEntriesByType('resource').map((entry) => new URL(entry.name).pathname))
  assert.ok(resources.some((path) => /^\/storex\/sse\/[\w-]{21}$/.test(path)), JSON.stringify(resources))

  await page.evaluate(() => {
    const status = document.getElementById('status')
    window.statuses = []
    new MutationObserver(() => window.statuses.push(status.textContent)).observe(status, { childList: true, characterData: true, subtree: true })
  })
  await restart()
  // The new process knows nothing of the old session: the page joins again and shows init's state.
  await page.waitForFunction(() => document.getElementById('counter').textContent === '0', null, { timeout: 15000 })
  await expectText(page, '#status', 'connected')
  assert.deepEqual([...new Set(await page.evaluate(() => window.statuses))], ['disconnected: reconnecting…', 'connected'])
  assert.ok(streamRequests(requests).gets >= 2, 'a new stream')
  await page.click('#increase')
  await expectText(page, '#counter', '1')
  assert.deepEqual(page.errors, [])
  // Leaving the page ends its session at once (its DELETE), as a WebSocket's close frame does; a
  // stream only dropped would leave it detached, still reached by server-side mutations.
  const streams = streamRequests(requests).gets
  await page.goto('about:blank') // the user leaves the page: pagehide runs
  await waitFor(async () => {
    const answer = await fetch(`${server.url}/api/increase-all`, { method: 'POST' })
    return (await answer.json()).reached === 0
  }, 'the session to end with its page', 5000)
  assert.equal(streamRequests(requests).gets, streams, 'no new stream while the page went away')
})

test('a WebSocket that never opens: after two failures the page moves to the event stream and works', async (t) => {
  // Each WebSocket the page makes connects to a path the server does not have (404): it never opens.
  const { server, page, requests } = await setup(t, () => {
    window.webSocketsMade = 0
    window.WebSocket = class extends window.WebSocket {
      constructor(url, protocols) {
        super(`${url}/no-such-path`, protocols)
        window.webSocketsMade++
      }
    }
  })
  await expectText(page, '#status', 'connected')
  await expectText(page, '#counter', '0')
  assert.equal(await page.evaluate(() => window.webSocketsMade), 2)
  assert.equal(streamRequests(requests).gets, 1)
  await page.click('#increase')
  await expectText(page, '#counter', '1')
  const response = await fetch(`${server.url}/api/increase-all`, { method: 'POST' })
  assert.deepEqual(await response.json(), { reached: 1 })
  await expectText(page, '#counter', '2')
  assert.equal(await page.evaluate(() => window.webSocketsMade), 2, 'no WebSocket after the fallback')
  assert.deepEqual(page.errors, [])
})

test('behind nginx that does not pass WebSocket upgrades on, the page moves to the event stream and works through it', async (t) => {
  const { proxy, page, requests } = await setup(t, () => {
    window.webSocketsMade = 0
    window.WebSocket = class extends window.WebSocket {
      constructor(url, protocols) {
        super(url, protocols)
        window.webSocketsMade++
      }
    }
  }, startBlockingProxy)
  await expectText(page, '#status', 'connected')
  await expectText(page, '#counter', '0')
  assert.equal(await page.evaluate(() => window.webSocketsMade), 2, 'two WebSockets failed through nginx first')
  assert.equal(streamRequests(requests).gets, 1)
  await page.click('#increase')
  await expectText(page, '#counter', '1')
  // A server-side push reaches the page through nginx's proxied stream at once (not buffered).
  const response = await fetch(`${proxy.url}/api/increase-all`, { method: 'POST' })
  assert.deepEqual(await response.json(), { reached: 1 })
  await expectText(page, '#counter', '2')
  assert.deepEqual(page.errors, [])
})
