// Starts the example servers (built by `cargo build -p storex-examples --bins`) for the
// integration and browser tests, and waits for conditions with bounded timeouts (no bare sleeps).
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url))
const targetDir = process.env.CARGO_TARGET_DIR || path.join(repoRoot, 'target')

// Every child still running when the test process ends is killed, even after a failure.
const children = new Set()
process.on('exit', () => { for (const child of children) child.kill('SIGKILL') })

// Starts example `name` on 127.0.0.1 (`port` 0 = a free one) and resolves once it printed
// `listening on http://127.0.0.1:PORT`.
export async function startExample(name, { port = 0, timeout = 15000 } = {}) {
  const binary = path.join(targetDir, 'debug', name)
  if (!existsSync(binary)) throw new Error(`${binary} is missing: run cargo build -p storex-examples --bins`)
  const child = spawn(binary, ['--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  let stderr = ''
  child.stderr.on('data', (chunk) => { stderr = (stderr + chunk).slice(-4000) })
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => { children.delete(child); resolve({ code, signal }) }))
  const listening = new Promise((resolve, reject) => {
    let stdout = ''
    child.stdout.on('data', (chunk) => {
      stdout += chunk
      const match = stdout.match(/^listening on http:\/\/127\.0\.0\.1:(\d+)\n/m)
      if (match) resolve(Number(match[1]))
    })
    exited.then(({ code, signal }) => reject(new Error(`${name} exited (${code ?? signal}) before listening: ${stderr}`)))
  })
  let actualPort
  try {
    actualPort = await within(listening, timeout, `${name} to print its "listening on" line`)
  } catch (error) {
    child.kill('SIGKILL')
    throw error
  }
  const url = `http://127.0.0.1:${actualPort}`
  return {
    name,
    port: actualPort,
    url,
    ws: `ws://127.0.0.1:${actualPort}/storex`,
    // Asks the server to stop (SIGTERM: the examples' graceful stop) and resolves with how it exited.
    async terminate(ms = 10000) {
      child.kill('SIGTERM')
      return within(exited, ms, `${name} to stop after SIGTERM`)
    },
    // Kills the server at once (SIGKILL: no goodbye to its clients, as in a crash) and waits for its end.
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await within(exited, 5000, `${name} to exit`)
    },
  }
}

// Restarts on the same port: the port may be held for a moment after the kill, so binding is
// retried a bounded number of times.
export async function restartExample(server) {
  await server.stop()
  let lastError
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      return await startExample(server.name, { port: server.port })
    } catch (error) {
      lastError = error
      await delay(100)
    }
  }
  throw lastError
}

// Resolves `promise`, or rejects after `ms` naming what was awaited.
export function within(promise, ms, what) {
  let timer
  const timeout = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

// Polls `condition` until it returns a truthy value (returned), for at most `ms`.
export async function waitFor(condition, what, ms = 10000) {
  const end = Date.now() + ms
  for (;;) {
    const value = await condition()
    if (value) return value
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await delay(10)
  }
}

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
