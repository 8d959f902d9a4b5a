// The client against the real chat example server: refused joins, keyed pushes by room.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import useStorex, { prepare, httpConnector } from '../../storex.js'
import { startExample, within } from '../support/server.js'
import { connectorTo, stateWhere } from './helpers.js'

const CHAT = 'ExampleApp.Store.Chat'
const NAME_REQUIRED = 'A name is required to join the chat.'

async function chatServer(t) {
  const server = await startExample('chat')
  t.after(() => server.stop())
  return server
}

test('a join without a name is refused: onError and ready reject with the server message', async (t) => {
  const server = await chatServer(t)
  const { connector } = connectorTo(server, t)
  for (const params of [{ room: 'lobby' }, { room: 'lobby', name: '   ' }]) {
    const chat = useStorex({ store: CHAT, params, connector })
    const errors = []
    chat.onError((error) => errors.push(error.message))
    await assert.rejects(within(chat.ready, 10000, 'the refusal'), { message: NAME_REQUIRED })
    assert.deepEqual(errors, [NAME_REQUIRED])
    assert.equal(chat.state, undefined)
    await assert.rejects(chat.commit('say', 'hello'), { message: /joining ExampleApp.Store.Chat failed|A name is required/ })
    chat.close()
  }
  // the same socket still serves a join that is allowed
  const ok = useStorex({ store: CHAT, params: { room: 'lobby', name: 'ada' }, connector })
  assert.deepEqual(await ok.ready, { room: 'lobby', name: 'ada', messages: [] })
})

test('the HTTP join is refused with the same message', async (t) => {
  const server = await chatServer(t)
  const chat = useStorex({ store: CHAT, params: { room: 'lobby' }, connector: httpConnector({ address: `${server.url}/storex` }) })
  await assert.rejects(chat.ready, { message: NAME_REQUIRED })
})

test('members of a room receive every message; another room receives none', async (t) => {
  const server = await chatServer(t)
  const join = (room, name) => prepare({ room }, connectorTo(server, t).connector).useStorex({ store: CHAT, params: { name } })
  const ada = join('lobby', 'ada')
  const bob = join('lobby', 'bob')
  const eve = join('attic', 'eve')
  await Promise.all([ada.ready, bob.ready, eve.ready])

  await ada.commit('say', 'hello bob')
  await bob.commit('say', '  hi ada  ')
  const twoMessages = (state) => state.messages.length === 2
  for (const member of [ada, bob]) {
    const { messages } = await stateWhere(member, twoMessages, 'both messages')
    assert.deepEqual(messages.map(({ id, from, text }) => ({ id, from, text })), [
      { id: 1, from: 'ada', text: 'hello bob' },
      { id: 2, from: 'bob', text: 'hi ada' },
    ])
    assert.ok(messages.every(({ at }) => Math.abs(Date.now() - at) < 60000), 'at is a recent timestamp in ms')
  }

  // eve's room stays empty: her own message is the first thing she receives
  await eve.commit('say', 'anyone?')
  const { messages } = await stateWhere(eve, (state) => state.messages.length > 0, "eve's message")
  assert.deepEqual(messages.map(({ from, text }) => ({ from, text })), [{ from: 'eve', text: 'anyone?' }])

  // a newcomer starts from the room's history
  const carol = join('lobby', 'carol')
  assert.deepEqual((await carol.ready).messages.map((m) => m.text), ['hello bob', 'hi ada'])
})

test('bad messages are error answers, never crashes', async (t) => {
  const server = await chatServer(t)
  const chat = useStorex({ store: CHAT, params: { room: 'lobby', name: 'ada' }, connector: connectorTo(server, t).connector })
  await chat.ready
  await assert.rejects(chat.commit('say', '   '), { message: 'A message cannot be empty.' })
  await assert.rejects(chat.commit('say', 'x'.repeat(501)), { message: 'A message may be at most 500 characters long.' })
  await assert.rejects(chat.commit('say'), /No mutation matching "say" with data \[\]/)
  await assert.rejects(chat.commit('say', { text: 'hi' }), /No mutation matching "say"/)
  await chat.commit('say', 'still here')
  await stateWhere(chat, (state) => state.messages.length === 1, 'the message after the errors')
})
