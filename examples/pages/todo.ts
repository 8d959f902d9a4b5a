// The todo page's script, typed by the store's TypeScript types (types/TodoStore.ts, exported
// from the Rust store by storex::ts): a misspelt mutation, a wrong argument or a wrong read of
// the state fails `tsc`. The page loads todo.js, built from this file by esbuild (see
// storex-runtime/js/test.sh, which checks that todo.js is current).
//
// Storex 0.6's API: useStorex(config), store.subscribe, store.onError, store.commit.
import useStorex from '/storex/storex.js'
import type { StateOf } from '/storex/storex.js'
import type { TodoStore } from './types/TodoStore.js'

type Todo = StateOf<TodoStore>

/** The element with this id, of this type: the page is built with all of them. */
function $<E extends HTMLElement = HTMLElement>(id: string): E {
  const element = document.getElementById(id)
  if (element === null) throw new Error(`the page has no #${id}`)
  return element as E
}

const showError = (error: Error) => { $('error').textContent = error.message; $('error').hidden = false }
const clearError = () => { $('error').hidden = true }
const user = new URLSearchParams(location.search).get('user')

if (user === null) {
  $('who').hidden = false
} else {
  $('app').hidden = false
  const todo = useStorex<TodoStore>({ store: 'ExampleApp.Store.Todo', params: { user } })
  const done = (commit: Promise<unknown>) => commit.then(clearError, showError)
  const title = $<HTMLInputElement>('title')

  todo.subscribe(render)
  todo.onError(showError)
  todo.onConnected(() => setStatus(true))
  todo.onDisconnected(() => setStatus(false))

  // The field is emptied at once (what is typed next is not lost when the answer comes) and
  // refilled if the server refused the title.
  $('add').onsubmit = async (event) => {
    event.preventDefault()
    const text = title.value
    title.value = ''
    try {
      await todo.commit('add', text)
      clearError()
    } catch (error) {
      showError(error as Error)
      if (!title.value) title.value = text
    }
  }
  // The id of the item an event happened in.
  const itemId = (event: Event) => Number((event.target as HTMLElement).closest('li')?.dataset.id)
  $('items').onchange = (event) => {
    const input = event.target as HTMLInputElement
    if (input.type === 'checkbox') done(todo.commit('toggle', itemId(event)))
    else done(todo.commit('rename', itemId(event), input.value))
  }
  $('undo').onclick = () => done(todo.commit('undo'))
  $('items').onclick = (event) => {
    if ((event.target as HTMLElement).matches('.remove')) done(todo.commit('remove', itemId(event)))
  }
}

function setStatus(connected: boolean) {
  $('status').dataset.connected = String(connected)
  $('status').textContent = connected ? 'connected' : 'disconnected: reconnecting…'
}

// Rebuilds the list from the state; user text only ever goes through .value and .textContent.
function render({ user, list }: Todo) {
  $('user').textContent = user
  $('open').textContent = String(list.open)
  $<HTMLButtonElement>('undo').disabled = list.undoable === 0
  $('items').replaceChildren(...list.items.map((item) => {
    const li = document.createElement('li')
    li.dataset.id = String(item.id)
    li.classList.toggle('done', item.done)
    const done = Object.assign(document.createElement('input'), { type: 'checkbox', checked: item.done })
    done.setAttribute('aria-label', 'done')
    const title = Object.assign(document.createElement('input'), { className: 'title', value: item.title })
    title.setAttribute('aria-label', 'title')
    const remove = Object.assign(document.createElement('button'), { className: 'link remove', textContent: '✕', title: 'remove' })
    li.append(done, title, remove)
    return li
  }))
}
