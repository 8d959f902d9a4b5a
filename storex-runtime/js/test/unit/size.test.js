// The size budget (storex.js minified and gzipped stays within 4.5 KiB, the event-stream transport
// included) and the ES2020 promise.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { gzipSync } from 'node:zlib'
import { transform } from 'esbuild'

const BUDGET = 4608
const source = await readFile(new URL('../../storex.js', import.meta.url), 'utf8')
const minify = async (target) => (await transform(source, { minify: true, format: 'esm', target })).code

test(`storex.js is at most ${BUDGET} bytes minified and gzipped`, async () => {
  const size = gzipSync(await minify('es2020'), { level: 9 }).length
  console.log(`storex.js: ${size} bytes minified+gzipped`)
  assert.ok(size <= BUDGET, `${size} bytes is over the budget of ${BUDGET}`)
})

// esbuild rewrites newer syntax for an older target instead of failing, so any difference
// between the two outputs is syntax newer than ES2020.
test('storex.js uses no syntax newer than ES2020', async () => {
  assert.equal(await minify('es2020'), await minify('esnext'))
})
