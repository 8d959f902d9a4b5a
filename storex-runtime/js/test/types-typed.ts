// Compiled by `tsc --noEmit` (test.sh): stores typed by the files storex::ts exported from the
// examples' Rust stores (examples/pages/types/, checked current by the examples' Rust tests).
// Lines marked @ts-expect-error must NOT compile; tsc fails if they ever do, so each line below
// proves one check of the typed API.
import useStorex, { Storex, prepare } from '../storex.js'
import type { Store, StateOf } from '../storex.js'
import type { CounterStore } from '../../../examples/pages/types/CounterStore.js'
import type { TodoStore } from '../../../examples/pages/types/TodoStore.js'

// ---- what compiles
const counter = useStorex<CounterStore>({ store: 'ExampleApp.Store.Counter' })
counter.subscribe((state) => { const n: number = state.counter; void n })
const increased: Promise<undefined> = counter.commit('increase')
const decreased: Promise<string> = counter.commit('decrease')
const set: Promise<undefined> = counter.commit('set', 10)
void increased; void decreased; void set
counter.ready.then((state) => state.counter.toFixed())
const now: number | undefined = counter.state?.counter
void now

const todo = new Storex<TodoStore>({
  store: 'ExampleApp.Store.Todo',
  params: { user: 'ada' },
  subscribe: (state) => state.list.items.map((item) => item.title.trim() + item.id.toFixed() + String(item.done)),
})
todo.commit('add', 'milk')
todo.commit('rename', 1, 'oat milk')
todo.commit('undo')
const asStore: Store<TodoStore> = todo
void asStore

const { useStorex: prepared } = prepare({ user: 'grace' })
prepared<TodoStore>({ store: 'ExampleApp.Store.Todo' }).commit('toggle', 3)
const state: StateOf<TodoStore> = { user: 'ada', list: { items: [], open: 0, revision: 0, next_id: 1, undoable: 0 } }
void state

// ---- what must not compile
// @ts-expect-error a misspelt mutation name
counter.commit('increse')
// @ts-expect-error a string where the store wants a number
counter.commit('set', '10')
// @ts-expect-error a missing argument
counter.commit('set')
// @ts-expect-error one argument too many
counter.commit('increase', 1)
// @ts-expect-error the reply of decrease is a string, not a number
const wrongReply: Promise<number> = counter.commit('decrease')
void wrongReply
// @ts-expect-error a field the state does not have
counter.subscribe((state) => state.count)
// @ts-expect-error the counter is a number, not a string
counter.ready.then((state) => state.counter.toUpperCase())
// @ts-expect-error a store joined by another store's name
useStorex<CounterStore>({ store: 'ExampleApp.Store.Todo' })
// @ts-expect-error rename takes an id, then a title
todo.commit('rename', 'oat milk', 1)
// @ts-expect-error items are in the list, not at the root
todo.subscribe((state) => state.items)
