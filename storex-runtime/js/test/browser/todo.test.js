// The todo page in headless Chromium: two tabs of one user stay in sync; another user's list
// is separate.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startExample } from '../support/server.js'
import { launchBrowser, openPage, openTab, expectText, expectValue } from './browser.js'

// What a tab shows: each item's title and whether it is done.
const items = (page) => page.$$eval('#items li', (lis) => lis.map((li) => [li.querySelector('.title').value, li.querySelector('[type=checkbox]').checked]))
const expectItems = (page, expected, what) => expectValue(page, items, expected, what)

async function add(page, title) {
  await page.fill('#title', title)
  await page.press('#title', 'Enter')
}

// The row whose title input holds `title` (inputs' values are properties, not attributes).
async function row(page, title) {
  const index = (await items(page)).findIndex(([t]) => t === title)
  assert.notEqual(index, -1, `no todo titled ${title}`)
  return page.locator('#items li').nth(index)
}

test('two tabs of one user share the list live; another user sees only theirs', async (t) => {
  const browser = await launchBrowser(t)
  const server = await startExample('todo')
  t.after(() => server.stop())
  const adaTab1 = await openPage(browser, `${server.url}/?user=ada`)
  const adaTab2 = await openTab(adaTab1.context(), `${server.url}/?user=ada`) // a second tab of the same browser user
  const bob = await openPage(browser, `${server.url}/?user=bob`)
  for (const page of [adaTab1, adaTab2, bob]) await expectText(page, '#status', 'connected')
  await expectText(adaTab1, '#user', 'ada')
  await expectText(bob, '#user', 'bob')

  // add in one tab → both tabs
  await add(adaTab1, 'milk')
  await add(adaTab1, 'bread')
  await expectItems(adaTab1, [['milk', false], ['bread', false]], 'the items in the tab that added them')
  await expectItems(adaTab2, [['milk', false], ['bread', false]], 'the items in the other tab')
  await expectText(adaTab2, '#open', '2')

  // toggle in the other tab → back in the first
  await (await row(adaTab2, 'milk')).locator('[type=checkbox]').check()
  await expectItems(adaTab1, [['milk', true], ['bread', false]], 'milk done in the first tab')
  await expectText(adaTab1, '#open', '1')

  // rename in the first tab → the other
  const bread = (await row(adaTab1, 'bread')).locator('.title')
  await bread.fill('rye bread')
  await bread.press('Enter')
  await expectItems(adaTab2, [['milk', true], ['rye bread', false]], 'the rename in the other tab')

  // remove in the other tab → the first
  await (await row(adaTab2, 'milk')).locator('.remove').click()
  await expectItems(adaTab1, [['rye bread', false]], 'the removal in the first tab')
  await expectItems(adaTab2, [['rye bread', false]], 'the removal in the tab that removed')

  // bob's list: none of ada's items, and his own stay his
  await add(bob, 'call ada')
  await expectItems(bob, [['call ada', false]], "bob's own list")
  await expectItems(adaTab1, [['rye bread', false]], "ada's list without bob's item")

  // a reload of a tab starts from the user's list
  await adaTab2.reload()
  await expectItems(adaTab2, [['rye bread', false]], 'the list after a reload')
  for (const page of [adaTab1, adaTab2, bob]) assert.deepEqual(page.errors, [])
})

test("undo reverts the user's last changes one by one, in every tab of theirs", async (t) => {
  const browser = await launchBrowser(t)
  const server = await startExample('todo')
  t.after(() => server.stop())
  const adaTab1 = await openPage(browser, `${server.url}/?user=ada`)
  const adaTab2 = await openTab(adaTab1.context(), `${server.url}/?user=ada`)
  const bob = await openPage(browser, `${server.url}/?user=bob`)
  for (const page of [adaTab1, adaTab2, bob]) await expectText(page, '#status', 'connected')
  const undoEnabled = (page) => page.$eval('#undo', (button) => !button.disabled)
  await expectValue(adaTab1, undoEnabled, false, 'nothing to undo in a new list')

  await add(adaTab1, 'milk')
  await add(adaTab1, 'bread')
  await expectItems(adaTab1, [['milk', false], ['bread', false]], 'two adds')
  await (await row(adaTab1, 'milk')).locator('[type=checkbox]').check()
  await add(bob, 'call ada')
  await expectItems(adaTab2, [['milk', true], ['bread', false]], 'three changes in the other tab')
  await expectValue(adaTab2, undoEnabled, true, 'undo enabled in the other tab too')

  // Undo from the other tab: the toggle goes, in both tabs.
  await adaTab2.click('#undo')
  await expectItems(adaTab1, [['milk', false], ['bread', false]], 'the toggle undone')
  await expectText(adaTab1, '#open', '2')
  // Then the second add, from the first tab.
  await adaTab1.click('#undo')
  await expectItems(adaTab2, [['milk', false]], 'the second add undone')
  // A new change after an undo is undone first.
  await add(adaTab2, 'eggs')
  await expectItems(adaTab1, [['milk', false], ['eggs', false]], 'a change after the undos')
  await adaTab1.click('#undo')
  await expectItems(adaTab2, [['milk', false]], 'the new change undone')
  await adaTab1.click('#undo')
  await expectItems(adaTab1, [], 'the first add undone: the list is empty')
  await expectItems(adaTab2, [], 'the list is empty in the other tab')
  await expectValue(adaTab1, undoEnabled, false, 'nothing left to undo')
  await expectValue(adaTab2, undoEnabled, false, 'nothing left to undo in the other tab')

  // bob's list and his own undo were never touched.
  await expectItems(bob, [['call ada', false]], "bob's list")
  await bob.click('#undo')
  await expectItems(bob, [], "bob's own change undone")
  for (const page of [adaTab1, adaTab2, bob]) assert.deepEqual(page.errors, [])
})

test('bad input shows the server error and changes nothing; the page asks for a user', async (t) => {
  const browser = await launchBrowser(t)
  const server = await startExample('todo')
  t.after(() => server.stop())
  const page = await openPage(browser, server.url)
  // no ?user=: the page asks who you are, then opens that list
  await page.fill('#who input', 'carol')
  await page.click('#who button')
  await expectText(page, '#user', 'carol')
  assert.match(page.url(), /\?user=carol$/)
  await add(page, '   ')
  await expectText(page, '#error', "A todo's title cannot be empty.")
  await expectItems(page, [], 'an empty list')
  await add(page, 'tea')
  await expectItems(page, [['tea', false]], 'the list after a good add')
  await expectText(page, '#error', '')
  const title = (await row(page, 'tea')).locator('.title')
  await title.fill('')
  await title.press('Enter')
  await expectText(page, '#error', "A todo's title cannot be empty.")
  await title.fill('x'.repeat(201)) // the add field stops at 200 characters; this one does not
  await title.press('Enter')
  await expectText(page, '#error', "A todo's title may be at most 200 characters long.")
  await page.reload()
  await expectItems(page, [['tea', false]], 'the list unchanged by the refused renames')
  assert.deepEqual(page.errors, [])
})

test('a join without a user name is refused and the page says so', async (t) => {
  const browser = await launchBrowser(t)
  const server = await startExample('todo')
  t.after(() => server.stop())
  const page = await openPage(browser, `${server.url}/?user=`)
  await expectText(page, '#error', 'A user name (1 to 40 characters) is required.')
})
