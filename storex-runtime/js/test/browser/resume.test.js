// Session resume in the browser: the counter page, served through a TCP proxy (so its WebSocket,
// at location.host, goes through it too), loses its connection without a close frame and gets its
// session back without a reload.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startExample } from '../support/server.js'
import { startProxy } from '../support/proxy.js'
import { launchBrowser, openPage, expectText } from './browser.js'

const COUNTER = 'ExampleApp.Store.Counter'

async function setup(t) {
  const browser = await launchBrowser(t)
  const server = await startExample('counter')
  t.after(() => server.stop())
  const proxy = await startProxy(server, t)
  const page = await openPage(browser, proxy.url)
  await expectText(page, '#status', 'connected')
  await expectText(page, '#counter', '0')
  return { server, proxy, page }
}

// From now on the page records every status and count it shows, and carries a mark that a reload
// would lose.
const record = (page) => page.evaluate(() => {
  window.mark = 'not reloaded'
  window.statuses = []
  window.counts = []
  const watch = (id, list) => {
    const element = document.getElementById(id)
    new MutationObserver(() => list.push(element.textContent)).observe(element, { childList: true, characterData: true, subtree: true })
  }
  watch('status', window.statuses)
  watch('counter', window.counts)
})
const recorded = (page) => page.evaluate(() => ({ mark: window.mark, statuses: [...new Set(window.statuses)], counts: window.counts }))

// The frames of the page's WebSocket connections, as the proxy read them.
const webSocketMessages = (proxy, from) => proxy.messages.filter((m) => m.from === from && m.data).map((m) => ({ connection: m.connection, ...m.data }))

test('after a dropped connection the page resumes its session and shows the same count, without a reload', async (t) => {
  const { proxy, page } = await setup(t)
  await page.click('#increase')
  await expectText(page, '#counter', '1')
  await page.click('#increase')
  await expectText(page, '#counter', '2')
  await record(page)

  proxy.cut()
  await page.waitForFunction(() => window.statuses.includes('disconnected: reconnecting…') && window.statuses.at(-1) === 'connected', null, { timeout: 15000 })
  assert.equal(await page.textContent('#counter'), '2')
  assert.deepEqual(await recorded(page), { mark: 'not reloaded', statuses: ['disconnected: reconnecting…', 'connected'], counts: [] })

  const [join] = webSocketMessages(proxy, 'server').filter((m) => m.type === 'join')
  const resumes = webSocketMessages(proxy, 'server').filter((m) => m.type === 'resume')
  assert.equal(resumes.length, 1)
  assert.notEqual(resumes[0].connection, join.connection)
  assert.equal(resumes[0].resumed, true)
  assert.equal(resumes[0].session, join.session)
  assert.deepEqual(resumes[0].stores, [{ store: COUNTER, epoch: join.epoch, version: 2, diff: [] }])

  await page.click('#increase')
  await expectText(page, '#counter', '3')
  assert.deepEqual(page.errors, [])
})

test('a click while the socket is down is applied exactly once after the resume', async (t) => {
  const { server, proxy, page } = await setup(t)
  await page.click('#increase')
  await expectText(page, '#counter', '1')
  await page.click('#increase')
  await expectText(page, '#counter', '2')
  await page.click('#decrease')
  await expectText(page, '#counter', '1')
  await expectText(page, '#reply', '"message"') // the increase below will set it to none
  await record(page)

  proxy.refuse() // the page cannot reconnect until allow()
  proxy.cut()
  await expectText(page, '#status', 'disconnected: reconnecting…')
  await page.click('#increase')
  await proxy.waitForRefused(1) // the page tried to come back, with the commit waiting
  assert.equal(await page.textContent('#counter'), '1')
  proxy.allow()
  await expectText(page, '#counter', '2', 15000)
  await expectText(page, '#status', 'connected')
  await expectText(page, '#reply', 'none') // the commit resolved (its reply shows)
  assert.deepEqual(await recorded(page), { mark: 'not reloaded', statuses: ['disconnected: reconnecting…', 'connected'], counts: ['2'] })

  // On the wire: the click's mutation went once, after the resume, and the server answered it once
  // with its count, 2.
  const increases = webSocketMessages(proxy, 'client').filter((m) => m.type === 'mutation' && m.data.name === 'increase')
  assert.equal(increases.length, 3)
  const [first, , second] = increases
  assert.notEqual(second.connection, first.connection)
  const sentOnResumed = webSocketMessages(proxy, 'client').filter((m) => m.connection === second.connection)
  assert.deepEqual(sentOnResumed.map((m) => m.type), ['resume', 'mutation'])
  const answers = webSocketMessages(proxy, 'server').filter((m) => m.request === second.request)
  assert.equal(answers.length, 1)
  assert.equal(answers[0].replayed, undefined)
  assert.deepEqual(answers[0].diff, [{ a: 'u', p: ['counter'], t: 2 }])

  // The server's count agrees with the page's: a server-side increase makes both 3.
  const response = await fetch(`${server.url}/api/increase-all`, { method: 'POST' })
  assert.deepEqual(await response.json(), { reached: 1 })
  await expectText(page, '#counter', '3')
  const push = webSocketMessages(proxy, 'server').filter((m) => m.type === 'mutation' && m.request === undefined)
  assert.deepEqual(push.map((m) => m.diff), [[{ a: 'u', p: ['counter'], t: 3 }]])
  assert.deepEqual(page.errors, [])
})
