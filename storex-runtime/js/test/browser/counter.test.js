// The counter page in headless Chromium against the real counter server.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startExample, restartExample } from '../support/server.js'
import { launchBrowser, openPage, expectText, expectMatch } from './browser.js'

async function setup(t) {
  const browser = await launchBrowser(t)
  let server = await startExample('counter')
  t.after(() => server.stop())
  return { browser, server, restart: async () => (server = await restartExample(server)) }
}

test('clicks commit mutations; the count and the reply show', async (t) => {
  const { browser, server } = await setup(t)
  const page = await openPage(browser, server.url)
  await expectText(page, '#status', 'connected')
  await expectText(page, '#counter', '0')
  await page.click('#increase')
  await expectText(page, '#counter', '1')
  await page.click('#increase')
  await expectText(page, '#counter', '2')
  assert.equal(await page.textContent('#reply'), 'none')
  await page.click('#decrease')
  await expectText(page, '#counter', '1')
  await expectText(page, '#reply', '"message"')
  await page.fill('#set-value', '42')
  await page.click('#set button')
  await expectText(page, '#counter', '42')
  assert.deepEqual(page.errors, [])
})

test('a commit the server refuses shows its error and leaves the count', async (t) => {
  const { browser, server } = await setup(t)
  const page = await openPage(browser, server.url)
  await expectText(page, '#counter', '0')
  await page.fill('#set-value', '')
  await page.click('#set button')
  await expectMatch(page, '#error', /^No mutation matching "set" with data \[null\] in store ExampleApp.Store.Counter/)
  assert.equal(await page.textContent('#counter'), '0')
  await page.click('#increase')
  await expectText(page, '#counter', '1')
  await expectText(page, '#error', '') // hidden again after a commit that worked
})

test('a server-side mutation (POST /api/increase-all) shows in every open page', async (t) => {
  const { browser, server } = await setup(t)
  const first = await openPage(browser, server.url)
  const second = await openPage(browser, server.url)
  await expectText(first, '#status', 'connected')
  await expectText(second, '#status', 'connected')
  await second.click('#increase')
  await expectText(second, '#counter', '1')

  const response = await fetch(`${server.url}/api/increase-all`, { method: 'POST' })
  assert.deepEqual(await response.json(), { reached: 2 })
  await expectText(first, '#counter', '1')
  await expectText(second, '#counter', '2')

  await first.click('#increase-all') // the page's own button does the same
  await expectText(first, '#reached', 'reached 2 pages')
  await expectText(first, '#counter', '2')
  await expectText(second, '#counter', '3')
})

test('after a server restart the page reconnects and shows the fresh state', async (t) => {
  const { browser, server, restart } = await setup(t)
  const page = await openPage(browser, server.url)
  await expectText(page, '#status', 'connected')
  await page.click('#increase')
  await page.click('#increase')
  await expectText(page, '#counter', '2')
  // record every status the page shows from now on
  await page.evaluate(() => {
    const status = document.getElementById('status')
    window.statuses = []
    new MutationObserver(() => window.statuses.push(status.textContent)).observe(status, { childList: true, characterData: true, subtree: true })
  })
  const port = server.port
  const restarted = await restart()
  assert.equal(restarted.port, port)
  // the page noticed (its status said so at some point) and came back with init's state
  await page.waitForFunction(() => document.getElementById('counter').textContent === '0', null, { timeout: 15000 })
  await expectText(page, '#status', 'connected')
  const statuses = await page.evaluate(() => window.statuses)
  assert.deepEqual([...new Set(statuses)], ['disconnected: reconnecting…', 'connected'])
  await page.click('#increase')
  await expectText(page, '#counter', '1')
  assert.deepEqual(page.errors, [])
})
