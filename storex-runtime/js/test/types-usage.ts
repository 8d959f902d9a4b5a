// Compiled by `tsc --noEmit` (test.sh): both APIs as a TypeScript user writes them.
// Lines marked @ts-expect-error must NOT compile; tsc fails if they ever do.
import useStorex, { Storex, prepare, socketConnector, httpConnector, applyDiff } from '../storex.js'
import type { Store, Connector, Change, DisconnectEvent } from '../storex.js'
import { useStorex as namedUseStorex } from 'storex-rs'

interface Counter { counter: number }
interface Todos { todos: { text: string; done: boolean }[] }

// ---- the seed's API
Storex.defaults.params = { token: 'secret' }
Storex.defaults.address = 'ws://localhost:4000/storex'
const seed = new Storex<Counter>({
  store: 'ExampleApp.Store.Counter',
  params: {},
  subscribe: (state) => { const n: number = state.counter; void n },
  connection: (connected) => { const b: boolean = connected; void b },
})
const reply: Promise<string> = seed.commit<string>('decrease')
seed.commit('set', 10).catch((error: Error) => error.message)
seed.subscribe((state) => state.counter.toFixed())
seed.connection((up) => up)
const seedAsStore: Store<Counter> = seed
void reply; void seedAsStore

// ---- Storex 0.6's API
const socket: Connector = socketConnector({ address: 'ws://localhost:4000/storex', WebSocket, reconnectBase: 250, reconnectMax: 10_000, commitTimeout: 5000, pingInterval: 30_000, maxInFlight: 64, fetch })
socketConnector({ fetch: async (url, init) => ({ ok: false, status: url.length + (init.credentials === 'include' ? 0 : 1), text: async () => 'no', body: null }) })
socketConnector({ address: 'ws://localhost:4000/storex', transport: 'sse', fetch: globalThis.fetch })
socketConnector({ transport: 'auto', fallbackAfter: 3 })
socketConnector({ transport: 'websocket', WebSocket })
const ssr: Connector = httpConnector({ address: 'http://localhost:4000/storex', fetch })
const todos = useStorex<Todos>({ store: 'Todos', params: { list: 1 }, connector: socket })
const first: Todos | undefined = todos.state
const session: string | undefined = todos.session
const version: number | undefined = todos.version
const epoch: string | undefined = todos.epoch
void version; void epoch
const unsubscribe: () => boolean = todos.subscribe((state) => state.todos.length)
todos.onConnected(() => {})
todos.onError((error) => error.message)
todos.onDisconnected((event: DisconnectEvent) => event.code + event.reason.length)
todos.onChange<boolean>(['todos', 0, 'done'], (done, before) => { const d: boolean | undefined = done; void d; void before })
todos.ready.then((state) => state.todos[0]?.text)
todos.close()
void first; void session; void unsubscribe

const { useStorex: prepared } = prepare({ user: 42 }, ssr)
const counter = prepared<Counter>({ store: 'ExampleApp.Store.Counter' })
counter.commit<number>('increase').then((n) => n.toFixed())
namedUseStorex({ store: 'Any' }).state
socket.close()

const diff: Change[] = [{ a: 'u', p: ['counter'], t: 1 }, { a: 'd', p: ['list', 0] }]
const next: Counter = applyDiff({ counter: 0 }, diff)
void next

// ---- what must not compile
// @ts-expect-error a store name is required
useStorex({ params: {} })
// @ts-expect-error the state is read-only
todos.state = { todos: [] }
// @ts-expect-error the version is read-only
todos.version = 1
// @ts-expect-error maxInFlight is a number
socketConnector({ maxInFlight: '256' })
// @ts-expect-error the probe needs the response's status
socketConnector({ fetch: async () => ({ ok: true, text: async () => '', body: null }) })
// @ts-expect-error the event stream needs the response's body
socketConnector({ fetch: async () => ({ ok: true, status: 200, text: async () => '' }) })
// @ts-expect-error transport is 'auto', 'websocket' or 'sse'
socketConnector({ transport: 'long-polling' })
// @ts-expect-error fallbackAfter is a number
socketConnector({ fallbackAfter: '2' })
// @ts-expect-error the state may be undefined before the join
counter.state.counter
// @ts-expect-error a connector comes from socketConnector or httpConnector
useStorex({ store: 'X', connector: { close() {} } })
// @ts-expect-error a change action is u, i or d
applyDiff(1, [{ a: 'x', p: [] }])
// @ts-expect-error subscribe's listener gets the store's state type
seed.subscribe((state: string) => state)
