// Tests of bootstrap.mjs: each case copies the bootstrap into a fresh temp
// workspace, runs it with `node` from a different working directory and a
// cleared environment, and checks output.json / logs.ndjson.
//
// Run with: node --test js/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BOOTSTRAP = fileURLToPath(new URL('./bootstrap.mjs', import.meta.url));

const PLATFORM_ENV = {
  LOWCODE_FAAS_RUN_ID: 'run-0190-abc',
  LOWCODE_FAAS_EXECUTION_ID: 'run-0190-abc',
  LOWCODE_FAAS_FUNCTION_NAME: 'hello',
  LOWCODE_FAAS_COLLECTION_PATH: 'a/b',
  LOWCODE_FAAS_DEPLOYMENT_ID: 'a/b/hello@v3',
  LOWCODE_FAAS_DEPLOYMENT_VERSION: '3',
};

/**
 * Runs `source` as function.mjs. `input` is written verbatim when it is a
 * string, as JSON otherwise.
 */
function run(source, { input = {}, env = {} } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lowcode-faas-bootstrap-test-'));
  try {
    fs.copyFileSync(BOOTSTRAP, path.join(dir, 'bootstrap.mjs'));
    fs.writeFileSync(path.join(dir, 'function.mjs'), source);
    fs.writeFileSync(
      path.join(dir, 'input.json'),
      typeof input === 'string' ? input : JSON.stringify(input),
    );
    const proc = spawnSync(process.execPath, [path.join(dir, 'bootstrap.mjs')], {
      cwd: os.tmpdir(),
      env: { ...PLATFORM_ENV, ...env },
      encoding: 'utf8',
      timeout: 30000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const outputPath = path.join(dir, 'output.json');
    const logPath = path.join(dir, 'logs.ndjson');
    const envelope = fs.existsSync(outputPath)
      ? JSON.parse(fs.readFileSync(outputPath, 'utf8'))
      : null;
    const logText = fs.existsSync(logPath) ? fs.readFileSync(logPath, 'utf8') : '';
    const logs = logText === '' ? [] : logText.trimEnd().split('\n').map((l) => JSON.parse(l));
    return {
      envelope,
      logs,
      logText,
      status: proc.status,
      signal: proc.signal,
      stdout: proc.stdout,
      stderr: proc.stderr,
      files: fs.readdirSync(dir).sort(),
      dir,
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function assertError(r, code, messagePattern) {
  assert.equal(r.status, 0, `exit status, stderr: ${r.stderr}`);
  assert.equal(r.envelope?.type, 'error', JSON.stringify(r.envelope));
  assert.equal(r.envelope.code, code, r.envelope.message);
  assert.equal(typeof r.envelope.message, 'string');
  if (messagePattern) assert.match(r.envelope.message, messagePattern);
  assert.deepEqual(Object.keys(r.envelope).sort(), ['code', 'message', 'type']);
}

function assertResult(r, value) {
  assert.equal(r.status, 0, `exit status, stderr: ${r.stderr}`);
  assert.deepEqual(r.envelope, { type: 'result', value });
}

// --- results ---------------------------------------------------------------

test('success: the return value is wrapped in a result envelope', () => {
  const r = run(
    'export async function handler(input) { return { ok: true, data: { echo: input, n: 1.5 } }; }',
    { input: { name: 'x', list: [1, 2] } },
  );
  assertResult(r, { ok: true, data: { echo: { name: 'x', list: [1, 2] }, n: 1.5 } });
  // logs.ndjson always exists (empty here); no temp file is left behind.
  assert.deepEqual(r.files, ['bootstrap.mjs', 'function.mjs', 'input.json', 'logs.ndjson', 'output.json']);
  assert.equal(r.logText, '');
});

test('success: a synchronous handler works too', () => {
  const r = run('export function handler() { return { ok: true }; }');
  assertResult(r, { ok: true });
});

test('business error ok:false is a result, not a platform error', () => {
  const r = run(
    'export async function handler() { return { ok: false, error: "not found", code: "E404" }; }',
  );
  assertResult(r, { ok: false, error: 'not found', code: 'E404' });
  const r2 = run('export async function handler() { return { ok: false, error: "bad" }; }');
  assertResult(r2, { ok: false, error: 'bad' });
});

// The Go version accepted any object with a boolean `ok`; so does this one.
const goEraBusinessFailures = [
  ['no error', 'return { ok: false };', { ok: false }],
  ['a numeric code', 'return { ok: false, error: "x", code: 5 };', { ok: false, error: 'x', code: 5 }],
  ['an object error', 'return { ok: false, error: { m: 1 } };', { ok: false, error: { m: 1 } }],
  ['a null error and no code', 'return { ok: false, error: null, data: [1] };', { ok: false, error: null, data: [1] }],
  ['an undefined error (dropped)', 'return { ok: false, error: undefined, code: 7 };', { ok: false, code: 7 }],
];

for (const [name, body, want] of goEraBusinessFailures) {
  test(`ok:false with ${name} is a business failure, returned exactly`, () => {
    const r = run(`export async function handler() { ${body} }`);
    assertResult(r, want);
  });
}

test('a default export is not a handler: NO_HANDLER', () => {
  const r = run('export default async function () { return { ok: true, data: 1 }; }');
  assertError(r, 'NO_HANDLER', /no "handler" export/);
});

test('stray timers do not keep the process alive', () => {
  const r = run(
    'export async function handler() { setInterval(() => {}, 1000); return { ok: true }; }',
  );
  assertResult(r, { ok: true });
});

test('context carries the platform fields, frozen', () => {
  const r = run(`
    export async function handler(input, context) {
      let frozen = false;
      try { context.runId = 'x'; } catch { frozen = true; }
      return { ok: true, data: { context: { ...context }, frozen: Object.isFrozen(context) && frozen } };
    }`);
  assertResult(r, {
    ok: true,
    data: {
      context: {
        runId: 'run-0190-abc',
        executionId: 'run-0190-abc',
        functionName: 'hello',
        collectionPath: 'a/b',
        deploymentId: 'a/b/hello@v3',
        deploymentVersion: 3,
      },
      frozen: true,
    },
  });
});

// --- SYNTAX_ERROR ----------------------------------------------------------

test('SYNTAX_ERROR for a syntax error', () => {
  const r = run('export async function handler( { return { ok: true }; }');
  assertError(r, 'SYNTAX_ERROR', /^SyntaxError: /);
});

test('SYNTAX_ERROR for a failing import, without workspace paths', () => {
  const r = run('import x from "no-such-package"; export const handler = () => x;');
  assertError(r, 'SYNTAX_ERROR', /no-such-package/);
  assert.ok(!r.envelope.message.includes(r.dir), r.envelope.message);
});

test('SYNTAX_ERROR for a throw at the top level', () => {
  const r = run('throw new TypeError("broken at load"); export const handler = () => ({ ok: true });');
  assertError(r, 'SYNTAX_ERROR', /^TypeError: broken at load$/);
});

// --- NO_HANDLER ------------------------------------------------------------

test('NO_HANDLER when nothing is exported', () => {
  const r = run('export const other = 1;');
  assertError(r, 'NO_HANDLER', /no "handler" export/);
});

test('NO_HANDLER when handler is not a function', () => {
  const r = run('export const handler = 42; export default () => ({ ok: true });');
  assertError(r, 'NO_HANDLER', /a number, not a function/);
});

// --- BAD_INPUT -------------------------------------------------------------

test('BAD_INPUT for invalid JSON', () => {
  const r = run('export async function handler() { return { ok: true }; }', { input: '{not json' });
  assertError(r, 'BAD_INPUT', /input\.json/);
});

test('BAD_INPUT for JSON that is not an object', () => {
  const r = run('export async function handler() { return { ok: true }; }', { input: '[1,2]' });
  assertError(r, 'BAD_INPUT', /must be a JSON object, got an array/);
});

// --- HANDLER_THROW ---------------------------------------------------------

test('HANDLER_THROW with the error message, stack in the log', () => {
  const r = run('export async function handler() { throw new RangeError("kaput"); }');
  assertError(r, 'HANDLER_THROW', /^kaput$/);
  const last = r.logs.at(-1);
  assert.equal(last.level, 'error');
  assert.match(last.message, /handler threw: RangeError: kaput/);
  assert.ok(!last.message.includes(r.dir), last.message);
});

test('HANDLER_THROW for a synchronous throw and a non-Error value', () => {
  assertError(run('export function handler() { throw "plain string"; }'), 'HANDLER_THROW', /^plain string$/);
  assertError(
    run('export async function handler() { return Promise.reject(42); }'),
    'HANDLER_THROW',
    /^42$/,
  );
});

test('HANDLER_THROW for an uncaught exception in a timer', () => {
  const r = run(`
    export async function handler() {
      setTimeout(() => { throw new Error("late boom"); }, 0);
      return new Promise(() => {});
    }`);
  assertError(r, 'HANDLER_THROW', /^uncaught exception: late boom$/);
});

test('HANDLER_THROW for an unhandled rejection', () => {
  const r = run(`
    export async function handler() {
      Promise.reject(new Error("nobody awaits"));
      return new Promise(() => { setTimeout(() => {}, 10000); });
    }`);
  assertError(r, 'HANDLER_THROW', /^unhandled promise rejection: nobody awaits$/);
});

// --- BAD_RETURN ------------------------------------------------------------

const badReturns = [
  ['undefined', 'return undefined;', /returned undefined/],
  ['null', 'return null;', /returned null/],
  ['a string', 'return "ok";', /returned a string/],
  ['an array', 'return [1];', /returned an array/],
  ['no ok', 'return { data: 1 };', /boolean "ok" field, got nothing/],
  ['non-boolean ok', 'return { ok: "yes" };', /boolean "ok" field, got a string/],
  ['ok undefined', 'return { ok: undefined, error: "x" };', /boolean "ok" field, got nothing/],
  ['ok null', 'return { ok: null };', /boolean "ok" field, got null/],
  ['a circular value', 'const o = { ok: true }; o.self = o; return o;', /cannot be serialised to JSON.*circular/i],
  ['a BigInt', 'return { ok: true, data: 10n };', /cannot be serialised to JSON.*BigInt/i],
];

for (const [name, body, pattern] of badReturns) {
  test(`BAD_RETURN for ${name}`, () => {
    const r = run(`export async function handler() { ${body} }`);
    assertError(r, 'BAD_RETURN', pattern);
  });
}

// --- no envelope -----------------------------------------------------------

test('process.exit inside the handler leaves no output.json, logs survive', () => {
  const r = run('export async function handler() { console.log("before exit"); process.exit(3); }');
  assert.equal(r.status, 3);
  assert.equal(r.envelope, null);
  assert.ok(!r.files.includes('output.json.tmp'));
  assert.deepEqual(r.logs.map((l) => l.message), ['before exit']);
});

test('a handler that never settles and has no pending work says so on stderr', () => {
  const r = run('export async function handler() { return new Promise(() => {}); }');
  assert.equal(r.envelope, null);
  assert.match(r.stderr, /ran out of work before the handler settled/);
});

// --- console capture -------------------------------------------------------

test('console capture: top-level logs, levels, util.format, nothing on stdout/stderr', () => {
  const r = run(`
    console.log("top level");
    export async function handler() {
      console.log("a", 7);
      console.info("%s=%d", "n", 42);
      console.warn({ k: [1, "x"] });
      console.error(new Error("shown").message);
      console.debug("dbg");
      console.trace("here");
      console.log("line1\\nline2");
      return { ok: true };
    }`);
  assertResult(r, { ok: true });
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, '');
  const pairs = r.logs.map((l) => [l.level, l.message]);
  assert.deepEqual(pairs.slice(0, 5), [
    ['log', 'top level'],
    ['log', 'a 7'],
    ['info', 'n=42'],
    ['warn', "{ k: [ 1, 'x' ] }"],
    ['error', 'shown'],
  ]);
  assert.deepEqual(pairs[5], ['debug', 'dbg']);
  assert.equal(pairs[6][0], 'debug');
  assert.match(pairs[6][1], /^Trace: here\n/);
  assert.deepEqual(pairs[7], ['log', 'line1\nline2']);
  assert.equal(r.logs.length, 8);
  for (const entry of r.logs) {
    assert.deepEqual(Object.keys(entry), ['ts', 'level', 'message']);
    assert.match(entry.ts, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  }
});

test('console capture is bounded: one truncation entry, then nothing', () => {
  const max = 400;
  const r = run(
    `export async function handler() {
      for (let i = 0; i < 50; i++) console.log("entry number " + i);
      console.error("after the cap");
      return { ok: true };
    }`,
    { env: { LOWCODE_FAAS_FUNCTION_LOG_MAX_BYTES: String(max) } },
  );
  assertResult(r, { ok: true });
  const last = r.logs.at(-1);
  assert.deepEqual(
    [last.level, last.message],
    ['warn', `[lowcode-faas] function log truncated: limit of ${max} bytes reached`],
  );
  const notes = r.logs.filter((l) => l.message.includes('function log truncated'));
  assert.equal(notes.length, 1);
  const kept = r.logText.slice(0, r.logText.length - (JSON.stringify(last).length + 1));
  assert.ok(Buffer.byteLength(kept) <= max, `kept ${Buffer.byteLength(kept)} bytes`);
  assert.ok(r.logs.length > 2);
  assert.ok(r.logs.every((l) => l.message !== 'after the cap'));
  assert.deepEqual(
    r.logs.slice(0, -1).map((l) => l.message),
    r.logs.slice(0, -1).map((_, i) => `entry number ${i}`),
  );
});

test('a log cap of 0 captures nothing and writes no log file', () => {
  const r = run('console.log("top"); export async function handler() { console.log("x"); return { ok: true }; }', {
    env: { LOWCODE_FAAS_FUNCTION_LOG_MAX_BYTES: '0' },
  });
  assertResult(r, { ok: true });
  assert.deepEqual(r.logs, []);
});

test('an invalid log cap falls back to the default', () => {
  const r = run('export async function handler() { console.log("x"); return { ok: true }; }', {
    env: { LOWCODE_FAAS_FUNCTION_LOG_MAX_BYTES: 'lots' },
  });
  assertResult(r, { ok: true });
  assert.deepEqual(r.logs.map((l) => l.message), ['x']);
});
