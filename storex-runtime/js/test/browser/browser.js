// Launches Debian's Chromium (/usr/bin/chromium, or $CHROMIUM) headless through playwright-core:
// no browser is downloaded. launch() gives each run a fresh temporary profile.
import { chromium } from 'playwright-core'

export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
]

export async function launchBrowser(t) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
    timeout: 30000,
  })
  t.after(() => browser.close())
  return browser
}

// A page in a fresh context (its own cookies and storage: another "user" or another tab),
// with page errors collected so a test can assert there were none.
export async function openPage(browser, url) {
  const context = await browser.newContext({ viewport: { width: 800, height: 700 } })
  return openTab(context, url)
}

// Another tab in `context` (the same browser user), errors collected as in openPage.
export async function openTab(context, url) {
  const page = await context.newPage()
  page.setDefaultTimeout(10000)
  page.errors = []
  page.on('pageerror', (error) => page.errors.push(error.message))
  await page.goto(url)
  return page
}

// Waits until `read(page)` (run in the test, reading the page) deep-equals `expected`;
// on timeout the error shows the last value read.
export async function expectValue(page, read, expected, what, ms = 10000) {
  const end = Date.now() + ms
  let actual
  for (;;) {
    actual = await read(page)
    if (JSON.stringify(actual) === JSON.stringify(expected)) return
    if (Date.now() > end) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}: expected ${JSON.stringify(expected)}, last saw ${JSON.stringify(actual)}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

// The text of `selector` ('' when it is missing or hidden).
export const textOf = (selector) => (page) =>
  page.evaluate((selector) => {
    const element = document.querySelector(selector)
    return element && !element.closest('[hidden]') ? element.textContent : ''
  }, selector)

export const expectText = (page, selector, text, ms) => expectValue(page, textOf(selector), text, `${selector} to read ${JSON.stringify(text)}`, ms)

// Waits until the text of `selector` matches `pattern`.
export async function expectMatch(page, selector, pattern, ms = 10000) {
  const end = Date.now() + ms
  for (;;) {
    const text = await textOf(selector)(page)
    if (pattern.test(text)) return text
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${selector} to match ${pattern}; it reads ${JSON.stringify(text)}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
