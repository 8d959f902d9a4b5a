// The shared diff vectors (storex-runtime/tests/vectors/diff.json): diffs the Rust diff computed,
// which the Rust patcher (tests/diff_vectors.rs) and applyDiff must both turn `old` into `new` with.
// The file is generated: `STOREX_WRITE_VECTORS=1 cargo test -p storex-runtime --test diff_vectors`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { applyDiff } from '../../storex.js'

const file = new URL('../../../tests/vectors/diff.json', import.meta.url)
const text = readFileSync(file, 'utf8')
const cases = JSON.parse(text)
// A second parse, never handed to applyDiff: what `old` must still be afterwards.
const pristine = JSON.parse(text)

const deepFreeze = (value) => {
  if (value && typeof value === 'object') {
    for (const item of Object.values(value)) deepFreeze(item)
    Object.freeze(value)
  }
  return value
}

// Every number of `actual` and `expected`, in order, must be the same by Object.is (so 0 is not -0).
// deepStrictEqual already compares numbers so; this walks the values itself, in case it ever did not.
function assertSameNumbers(actual, expected, where) {
  const numbers = (value, out = []) => {
    if (typeof value === 'number') out.push(value)
    else if (value && typeof value === 'object') {
      for (const key of Object.keys(value).sort()) numbers(value[key], out)
    }
    return out
  }
  const [found, wanted] = [numbers(actual), numbers(expected)]
  assert.equal(found.length, wanted.length, where)
  found.forEach((number, index) => assert.ok(Object.is(number, wanted[index]), `${where}: ${number} is not ${wanted[index]}`))
}

test('the vectors file holds the cases', () => {
  assert.ok(Array.isArray(cases), 'the vectors file is not a JSON array')
  assert.ok(cases.length > 20, `only ${cases.length} cases in the vectors file`)
  for (const { name, diff } of cases) {
    assert.equal(typeof name, 'string')
    assert.ok(Array.isArray(diff), `${name}: the diff is not a list`)
  }
  assert.ok(cases.some(({ name }) => name.includes('-0.0')), 'no case with -0.0')
})

test('deepStrictEqual tells -0 from 0, which the -0.0 cases rely on', () => {
  assert.throws(() => assert.deepStrictEqual({ x: [-0] }, { x: [0] }))
  assert.ok(Object.is(JSON.parse('-0.0'), -0))
})

cases.forEach((vector, index) => {
  test(`vector: ${vector.name}`, () => {
    const old = deepFreeze(vector.old) // a mutation throws (ES modules are strict)
    const next = applyDiff(old, vector.diff)
    assert.deepStrictEqual(next, vector.new)
    assertSameNumbers(next, vector.new, vector.name)
    assert.deepStrictEqual(old, pristine[index].old, 'applyDiff changed the old state')
    assertSameNumbers(old, pristine[index].old, vector.name)
    if (vector.diff.length === 0) assert.equal(next, old, 'an empty diff returns the same state')
  })
})
