// The patch algorithm of PROTOCOL.md ("The diff"), as applyDiff implements it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { applyDiff } from '../../storex.js'

const frozen = (value) => JSON.parse(JSON.stringify(value), (_, v) => (typeof v === 'object' && v ? Object.freeze(v) : v))

test('u replaces the value at a path, i adds a map key', () => {
  const next = applyDiff({ a: 1, b: { c: 2 } }, [
    { a: 'u', p: ['b', 'c'], t: 3 },
    { a: 'i', p: ['d'], t: [1] },
  ])
  assert.deepEqual(next, { a: 1, b: { c: 3 }, d: [1] })
})

test('d deletes a map key', () => {
  assert.deepEqual(applyDiff({ a: 1, b: 2 }, [{ a: 'd', p: ['a'] }]), { b: 2 })
})

test('a list shrinks by deleting from the highest index down', () => {
  const next = applyDiff({ l: [1, 2, 3, 4] }, [
    { a: 'u', p: ['l', 0], t: 9 },
    { a: 'd', p: ['l', 3] },
    { a: 'd', p: ['l', 2] },
  ])
  assert.deepEqual(next, { l: [9, 2] })
})

test('d splices a list, so later elements move down', () => {
  assert.deepEqual(applyDiff(['a', 'b', 'c'], [{ a: 'd', p: [0] }]), ['b', 'c'])
})

test('a list grows by updating old indexes, then inserting new ones', () => {
  const next = applyDiff({ l: [1] }, [
    { a: 'u', p: ['l', 0], t: 5 },
    { a: 'i', p: ['l', 1], t: 6 },
    { a: 'i', p: ['l', 2], t: { x: 1 } },
  ])
  assert.deepEqual(next, { l: [5, 6, { x: 1 }] })
})

test('the empty path replaces the root', () => {
  assert.deepEqual(applyDiff({ a: 1 }, [{ a: 'u', p: [], t: [1, 2] }]), [1, 2])
  assert.equal(applyDiff(0, [{ a: 'u', p: [], t: 1 }]), 1)
})

test('a type change is one u', () => {
  assert.deepEqual(applyDiff({ v: 1 }, [{ a: 'u', p: ['v'], t: { n: 1 } }]), { v: { n: 1 } })
  assert.deepEqual(applyDiff({ v: { n: 1 } }, [{ a: 'u', p: ['v'], t: 'text' }]), { v: 'text' })
})

test('changes apply in order: a later change sees the earlier ones', () => {
  const next = applyDiff({}, [
    { a: 'i', p: ['todos'], t: [] },
    { a: 'i', p: ['todos', 0], t: { done: false } },
    { a: 'u', p: ['todos', 0, 'done'], t: true },
  ])
  assert.deepEqual(next, { todos: [{ done: true }] })
})

test('an empty diff returns the same state', () => {
  const state = { a: [1] }
  assert.equal(applyDiff(state, []), state)
})

test('copies along the changed path only: the old state is untouched, siblings keep identity', () => {
  const prev = frozen({ todos: [{ done: false }, { done: false }], user: { name: 'x' } })
  const next = applyDiff(prev, [{ a: 'u', p: ['todos', 1, 'done'], t: true }])
  assert.equal(prev.todos[1].done, false)
  assert.notEqual(next, prev)
  assert.notEqual(next.todos, prev.todos)
  assert.notEqual(next.todos[1], prev.todos[1])
  assert.equal(next.todos[0], prev.todos[0])
  assert.equal(next.user, prev.user)
  assert.ok(Array.isArray(next.todos))
})

// A reference differ that follows PROTOCOL.md's ordering rules (lists by position, maps by key,
// tails deleted from the highest index down), used to check applyDiff on random states.
function diff(old, now, path = [], out = []) {
  const kind = (v) => (Array.isArray(v) ? 'list' : v && typeof v === 'object' ? 'map' : 'scalar')
  if (kind(old) !== kind(now) || kind(old) === 'scalar') {
    if (JSON.stringify(old) !== JSON.stringify(now)) out.push({ a: 'u', p: path, t: now })
  } else if (kind(old) === 'list') {
    const common = Math.min(old.length, now.length)
    for (let i = 0; i < common; i++) diff(old[i], now[i], [...path, i], out)
    for (let i = old.length - 1; i >= now.length; i--) out.push({ a: 'd', p: [...path, i] })
    for (let i = old.length; i < now.length; i++) out.push({ a: 'i', p: [...path, i], t: now[i] })
  } else {
    for (const key of Object.keys(old)) {
      if (key in now) diff(old[key], now[key], [...path, key], out)
      else out.push({ a: 'd', p: [...path, key] })
    }
    for (const key of Object.keys(now)) if (!(key in old)) out.push({ a: 'i', p: [...path, key], t: now[key] })
  }
  return out
}

function randomValue(random, depth) {
  const roll = random()
  if (depth > 3 || roll < 0.3) return [0, 1, 'x', true, null][Math.floor(random() * 5)]
  if (roll < 0.65) return Array.from({ length: Math.floor(random() * 5) }, () => randomValue(random, depth + 1))
  const map = {}
  for (let i = Math.floor(random() * 4); i > 0; i--) map['abcd'[Math.floor(random() * 4)]] = randomValue(random, depth + 1)
  return map
}

test('random states: applying the reference diff to old gives new', () => {
  let seed = 42
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648)
  for (let round = 0; round < 500; round++) {
    const old = frozen(randomValue(random, 0))
    const now = randomValue(random, 0)
    assert.deepEqual(applyDiff(old, diff(old, now)), now, `round ${round}`)
  }
})
