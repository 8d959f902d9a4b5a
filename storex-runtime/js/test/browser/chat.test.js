// The chat page in headless Chromium: a join without a name is refused on the page; members of
// a room see each other's messages; a member of another room does not.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startExample } from '../support/server.js'
import { launchBrowser, openPage, expectText, expectValue } from './browser.js'

// What a page shows: "from: text" for each message.
const messages = (page) => page.$$eval('#messages li', (lis) => lis.map((li) => `${li.querySelector('.from').textContent}: ${li.querySelector('.text').textContent}`))

async function say(page, text) {
  await page.fill('#text', text)
  await page.press('#text', 'Enter')
}

async function setup(t) {
  const browser = await launchBrowser(t)
  const server = await startExample('chat')
  t.after(() => server.stop())
  return { browser, server }
}

test('joining without a name shows the server refusal; with one, the chat opens', async (t) => {
  const { browser, server } = await setup(t)
  const page = await openPage(browser, server.url)
  await page.fill('#room', 'lobby')
  await page.click('#join button')
  await expectText(page, '#error', 'A name is required to join the chat.')
  assert.equal(await page.isVisible('#chat'), false)
  await page.fill('#name', 'ada')
  await page.click('#join button')
  await expectText(page, '#me', 'ada')
  await expectText(page, '#status', 'connected')
  assert.equal(await page.isVisible('#error'), false)
  assert.equal(await page.isVisible('#join'), false)
  assert.deepEqual(page.errors, [])
})

test('members of a room see each other; another room sees nothing of it', async (t) => {
  const { browser, server } = await setup(t)
  const ada = await openPage(browser, `${server.url}/?room=lobby&name=ada`)
  const bob = await openPage(browser, `${server.url}/?room=lobby&name=bob`)
  const eve = await openPage(browser, `${server.url}/?room=attic&name=eve`)
  for (const page of [ada, bob, eve]) await expectText(page, '#status', 'connected')
  await expectText(eve, '#room-name', 'attic')

  await say(ada, 'hello bob')
  await expectValue(bob, messages, ['ada: hello bob'], "ada's message at bob's")
  await say(bob, 'hi ada')
  const both = ['ada: hello bob', 'bob: hi ada']
  await expectValue(ada, messages, both, "bob's answer at ada's")
  await expectValue(bob, messages, both, 'both messages at bob')

  // eve's first message is the first thing her page shows: the lobby's never reached her
  await say(eve, 'anyone here?')
  await expectValue(eve, messages, ['eve: anyone here?'], "eve's own message only")
  await expectValue(ada, messages, both, "the lobby without eve's message")

  // an empty message is refused on the page, and nobody receives anything
  await say(ada, '   ')
  await expectText(ada, '#error', 'A message cannot be empty.')
  await say(ada, 'bye')
  await expectValue(bob, messages, [...both, 'ada: bye'], 'the last message')
  for (const page of [ada, bob, eve]) assert.deepEqual(page.errors, [])
})
