// lowcode-faas bootstrap: runs handler calls for the runtimes.
//
// Two modes (see faas-adapters/src/runner/protocol.rs for the Rust side):
//
// One-shot (`node bootstrap.mjs`): one call inside a workspace directory.
// Every file lives in this script's own directory, never in the current
// working directory:
//   in:  function.mjs  the user's ESM module
//        input.json    the input object
//   out: output.json   exactly one envelope, written atomically (temp + rename):
//                        {"type":"result","value":<handler return value>}
//                        {"type":"error","code":"<ERROR_CODE>","message":"..."}
//        logs.ndjson   one {"ts","level","message"} line per console.* call,
//                      bounded by LOWCODE_FAAS_FUNCTION_LOG_MAX_BYTES
// Every path that reaches a verdict writes an envelope and exits 0.
//
// Serve (`node bootstrap.mjs --serve`): a long-lived runner. It says it is
// ready, then reads jobs from stdin, one JSON object per line:
//   {"nonce","source","input","env","max_output_bytes","max_log_bytes","timeout_ms"}
// and answers each with frames on stdout, one line each:
//   \x1eLCF:<nonce>:<kind>:<payload>\n
// kinds: ready (nonce "-", before any job), started (the job was taken),
// log (one {"ts","level","message"} entry), result (the envelope above; the
// runner can take another job), result-final (the envelope; the runner is
// tainted and must not be reused), too-large ({"size":N}: the envelope is
// larger than max_output_bytes). Every frame starts on a new line. User code
// never writes frames: console.* becomes log frames, process.stdout.write is
// sent to stderr, and stray bytes on fd 1 are not frames (wrong or missing
// prefix or nonce; a job's nonce is random and never in the environment).
// Module state persists between jobs of one runner (warm mode). A runner
// outliving a job's timeout_ms by 2 s kills itself (a watchdog thread), and
// one idle for --max-idle-ms (default 15 min) exits: neither needs its server.
//
// A process that ends without a verdict (process.exit in the handler, a fatal
// V8 error, a kill) is judged by the runtime, not here.
//
// Error codes written here: SYNTAX_ERROR, NO_HANDLER, BAD_INPUT, HANDLER_THROW,
// BAD_RETURN.
//
// Only Node built-ins are used; it runs on Node >= 18.

import fs from 'node:fs';
import path from 'node:path';
import util from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

// Keep our own references to everything used after user code has run, so a
// handler that reassigns globals (JSON.stringify, process.exit, fs methods)
// cannot break the envelope.
const exit = process.exit.bind(process);
const stringify = JSON.stringify;
const parse = JSON.parse;
const { openSync, writeSync, writeFileSync, renameSync, readFileSync } = fs;
const format = util.format;
const inspect = util.inspect;
const stderrWrite = process.stderr.write.bind(process.stderr);
const byteLength = Buffer.byteLength;
const isArray = Array.isArray;
const bufferFrom = Buffer.from.bind(Buffer);
const isSafeInteger = Number.isSafeInteger;
const setTimer = setTimeout;
const clearTimer = clearTimeout;
const postToThread = Worker.prototype.postMessage;
// Node's timers fire at once past 2^31-1 ms: longer waits are cut to that.
const MAX_TIMER_MS = 2147483647;
const ObjectPrototype = Object.prototype;
const getPrototypeOf = Object.getPrototypeOf;
const objectKeys = Object.keys;

const SERVE = process.argv.includes('--serve');
const OWN_CONTAINER = SERVE && process.argv.includes('--own-container');
// Serving: a runner idle this long (no job) ends itself, so one whose
// server is gone (a kill -9) does not wait forever.
const MAX_IDLE_MS = (() => {
  const arg = process.argv.find((a) => a.startsWith('--max-idle-ms='));
  const n = arg === undefined ? NaN : Number(arg.slice('--max-idle-ms='.length));
  return Number.isSafeInteger(n) && n > 0 ? n : 15 * 60 * 1000;
})();
// Serving: past a job's deadline plus this, the runner kills itself, even
// when its server is gone and the handler spins (the watchdog thread below
// runs whatever the main thread does). A live server kills it first.
const DEADLINE_GRACE_MS = 2000;

const DIR = path.dirname(fileURLToPath(import.meta.url));
const FUNCTION_FILE = path.join(DIR, 'function.mjs');
const INPUT_FILE = path.join(DIR, 'input.json');
const OUTPUT_FILE = path.join(DIR, 'output.json');
const OUTPUT_TMP_FILE = path.join(DIR, 'output.json.tmp');
const LOG_FILE = path.join(DIR, 'logs.ndjson');

const DEFAULT_LOG_MAX_BYTES = 1048576;
const FRAME_PREFIX = '\n\x1eLCF:';
// The largest job line read from stdin (source + input + env, JSON-encoded).
const MAX_JOB_LINE_BYTES = 64 * 1024 * 1024;

// ---------------------------------------------------------------------------
// Frames (serve mode). fd 1 is written synchronously: a pipe on Linux, so a
// frame is complete before the next statement runs, and a frame written
// before a crash is not lost.

function writeFrame(nonce, kind, payload) {
  const line = FRAME_PREFIX + nonce + ':' + kind + ':' + payload + '\n';
  let offset = 0;
  const bytes = bufferFrom(line, 'utf8');
  while (offset < bytes.length) {
    try {
      offset += writeSync(1, bytes, offset, bytes.length - offset);
    } catch (err) {
      if (err && err.code === 'EAGAIN') continue;
      throw err;
    }
  }
}

// The job being served (serve mode), or null between jobs.
let job = null;

// ---------------------------------------------------------------------------
// Console capture, installed before the user module is imported so that its
// top-level console calls are captured too. Nothing reaches the real
// stdout/stderr through console.*.

function logMaxBytes() {
  const raw = process.env.LOWCODE_FAAS_FUNCTION_LOG_MAX_BYTES;
  if (raw === undefined || !/^\d+$/.test(raw.trim())) return DEFAULT_LOG_MAX_BYTES;
  const n = Number(raw.trim());
  return Number.isSafeInteger(n) ? n : DEFAULT_LOG_MAX_BYTES;
}

// One capture state per run: the one-shot run, or each served job.
function newLogState() {
  return { max: logMaxBytes(), written: 0, truncated: false };
}

let log = newLogState();
let logFd = -1;

if (!SERVE) {
  try {
    logFd = log.max === 0 ? -1 : openSync(LOG_FILE, 'a');
  } catch {
    // No log file: capture silently drops entries, the run itself goes on.
    logFd = -1;
  }
}

function appendLine(line) {
  if (SERVE) {
    // Between jobs (late timers of a finished run) nothing is captured.
    if (job === null) return;
    try {
      writeFrame(job.nonce, 'log', line);
    } catch {
      // A closed stdout ends the runner anyway.
    }
    return;
  }
  if (logFd < 0) return;
  try {
    writeSync(logFd, line + '\n');
  } catch {
    // A full disk must not turn into a handler failure.
  }
}

function entryLine(level, message) {
  return stringify({ ts: new Date().toISOString(), level, message });
}

// One console call = one NDJSON line (one log frame when serving), written
// synchronously so it survives process.exit() and a later kill. When the
// next line would pass the cap, one final warning entry is written (it may
// itself pass the cap by its own size; readers allow some slack for it) and
// everything after it is dropped.
function capture(level, message) {
  // A cap of 0 means nobody wants the logs (capture is off): drop everything.
  if (log.truncated || log.max === 0) return;
  if (SERVE && job === null) return;
  const line = entryLine(level, message);
  const size = byteLength(line) + 1;
  if (log.written + size > log.max) {
    log.truncated = true;
    const note = entryLine(
      'warn',
      `[lowcode-faas] function log truncated: limit of ${log.max} bytes reached`,
    );
    log.written += byteLength(note) + 1;
    appendLine(note);
    return;
  }
  log.written += size;
  appendLine(line);
}

function formatArgs(args) {
  try {
    return format(...args);
  } catch (err) {
    return `[lowcode-faas] could not format log arguments: ${describe(err)}`;
  }
}

function installConsoleCapture() {
  for (const level of ['log', 'info', 'warn', 'error', 'debug']) {
    console[level] = (...args) => capture(level, formatArgs(args));
  }
  // Same text as Node's console.trace ("Trace: <message>" plus the stack),
  // captured at level debug.
  console.trace = (...args) => {
    const err = { name: 'Trace', message: formatArgs(args) };
    Error.captureStackTrace(err, console.trace);
    capture('debug', String(err.stack));
  };
  console.dir = (obj, options) => {
    let message;
    try {
      message = inspect(obj, { customInspect: false, ...options });
    } catch (err) {
      message = `[lowcode-faas] could not inspect value: ${describe(err)}`;
    }
    capture('log', message);
  };
  // console.assert, count, table, time* go through this.log/this.warn in
  // Node, so they are captured by the methods above.
}

installConsoleCapture();

if (SERVE) {
  // stdout is the frame channel: what user code writes to process.stdout
  // goes to stderr instead (where the one-shot mode's stdout went: the
  // container's own log, not the function log).
  process.stdout.write = (chunk, encoding, cb) => process.stderr.write(chunk, encoding, cb);
}

// ---------------------------------------------------------------------------
// Envelopes.

// Workspace paths are meaningless to the caller and differ between runtimes
// (/workspace in Docker, a temp dir for the process runtime): strip them.
const DIR_URL_PREFIX = pathToFileURL(DIR).href + '/';
const DIR_PREFIX = DIR + path.sep;

function clean(text) {
  return String(text).split(DIR_URL_PREFIX).join('').split(DIR_PREFIX).join('');
}

// A human description of any thrown value.
function describe(err) {
  try {
    if (err instanceof Error) return err.message === '' ? err.name : err.message;
    if (typeof err === 'string') return err;
    return String(err);
  } catch {
    try {
      return inspect(err);
    } catch {
      return 'unknown error';
    }
  }
}

function describeWithName(err) {
  try {
    if (err instanceof Error) {
      return err.message === '' ? String(err.name) : `${err.name}: ${err.message}`;
    }
  } catch {
    // fall through
  }
  return describe(err);
}

function stackOf(err) {
  try {
    if (err instanceof Error && typeof err.stack === 'string') return err.stack;
  } catch {
    // fall through
  }
  return null;
}

let finished = false;

function writeEnvelope(text) {
  try {
    writeFileSync(OUTPUT_TMP_FILE, text);
    renameSync(OUTPUT_TMP_FILE, OUTPUT_FILE);
  } catch (err) {
    // Nothing left to report through: the runtime sees no output.json and
    // reports EXITED_WITHOUT_OUTPUT with this line from stderr.
    stderrWrite(`lowcode-faas bootstrap: cannot write output.json: ${describe(err)}\n`);
  }
}

// Hands the verdict of the current run over: one-shot, the output file and
// exit; serving, a result frame (too-large when over the job's cap) and the
// next job. `reusable` false marks a runner whose state can no longer be
// trusted (an uncaught exception or unhandled rejection).
function finish(text, reusable) {
  if (!SERVE) {
    if (finished) return;
    finished = true;
    writeEnvelope(text);
    exit(0);
    return;
  }
  if (job === null) return;
  const current = job;
  job = null;
  // In its own container (the Docker runtime), every process but init and
  // this runner belongs to the run that just ended: killed before the
  // verdict, so a warm runner's next run inherits none of them.
  if (OWN_CONTAINER) killAllButInitAndSelf();
  const size = byteLength(text);
  try {
    if (size > current.maxOutputBytes) {
      writeFrame(current.nonce, 'too-large', stringify({ size }));
    } else {
      writeFrame(current.nonce, reusable ? 'result' : 'result-final', text);
    }
  } catch (err) {
    stderrWrite(`lowcode-faas bootstrap: cannot write a frame: ${describe(err)}\n`);
    exit(71);
  }
  current.done();
}

function finishWithResult(valueJson) {
  finish('{"type":"result","value":' + valueJson + '}', true);
}

function finishWithError(code, message, reusable = true) {
  finish(stringify({ type: 'error', code, message: clean(message) }), reusable);
}

// Records the stack of a failure in the function log (level error) so the
// developer can find where it came from; the envelope carries the message.
function logStack(prefix, err) {
  const stack = stackOf(err);
  if (stack !== null) capture('error', `[lowcode-faas] ${prefix}: ${clean(stack)}`);
}

// ---------------------------------------------------------------------------
// Asynchronous failures of user code (a throw in a timer, a rejected promise
// nobody awaits) while the module loads or the handler runs are reported as
// HANDLER_THROW: they come from the function's code at run time. Serving,
// the runner is tainted by them; one that happens between jobs ends it.

function asyncFailure(prefix, err) {
  if (SERVE && job === null) {
    stderrWrite(`lowcode-faas bootstrap: ${prefix} between runs: ${describe(err)}\n`);
    exit(70);
    return;
  }
  logStack(prefix, err);
  finishWithError('HANDLER_THROW', `${prefix}: ${describe(err)}`, false);
}

process.on('uncaughtException', (err) => asyncFailure('uncaught exception', err));
process.on('unhandledRejection', (reason) => asyncFailure('unhandled promise rejection', reason));

// ---------------------------------------------------------------------------
// Processes left behind. The process runtime starts a runner as a child
// subreaper, so what a handler started (`detached`, a `setsid` double fork)
// stays below it, and the runtime SIGKILLs it after every job. A runner that
// exits by itself (process.exit() in a handler, an idle or error exit) would
// hand those processes to PID 1 as it dies: it SIGKILLs them first. Linux
// only (/proc); a SIGKILL or a V8 abort skips it. Runs synchronously in the
// 'exit' event, with references taken before user code runs.

const listDir = fs.readdirSync;
const readText = fs.readFileSync;
const signal = process.kill.bind(process);
const OWN_PID = process.pid;

function liveChildrenByParent() {
  const children = new Map();
  for (const name of listDir('/proc')) {
    const pid = Number(name);
    if (!isSafeInteger(pid) || pid <= 0) continue;
    let stat;
    try {
      stat = readText(`/proc/${pid}/stat`, 'latin1');
    } catch {
      continue; // ended meanwhile
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') continue;
    const ppid = Number(fields[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(pid);
  }
  return children;
}

function killDescendants() {
  try {
    // Bounded passes: a process may fork while it is swept.
    for (let pass = 0; pass < 50; pass++) {
      const children = liveChildrenByParent();
      const stack = [OWN_PID];
      const seen = new Set(stack);
      const found = [];
      while (stack.length > 0) {
        for (const child of children.get(stack.pop()) ?? []) {
          if (seen.has(child)) continue; // a torn snapshot
          seen.add(child);
          found.push(child);
          stack.push(child);
        }
      }
      if (found.length === 0) return;
      for (const pid of found) {
        try {
          signal(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
    }
  } catch {
    // no /proc: nothing to do here
  }
}

process.on('exit', killDescendants);

// The Docker runtime starts each runner in a container of its own
// (--own-container): PID 1 is docker-init, this runner the only other
// process it started. Never used by the process runtime, where /proc shows
// the whole host.
function killAllButInitAndSelf() {
  try {
    for (let pass = 0; pass < 50; pass++) {
      const found = [];
      for (const [, pids] of liveChildrenByParent()) {
        for (const pid of pids) if (pid !== 1 && pid !== OWN_PID) found.push(pid);
      }
      if (found.length === 0) return;
      for (const pid of found) {
        try {
          signal(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
    }
  } catch {
    // no /proc: nothing to do here
  }
}

// The event loop ran dry while the handler's promise was still pending (it
// never settles and nothing else is scheduled). Say so on stderr; the runtime
// reports EXITED_WITHOUT_OUTPUT with this line. (Serving, stdin is unref'd
// while a job runs, so the same holds.)
process.on('beforeExit', () => {
  if (SERVE ? job !== null : !finished) {
    stderrWrite(
      'lowcode-faas bootstrap: the process ran out of work before the handler settled ' +
        '(a promise that never resolves?)\n',
    );
    if (SERVE) exit(0);
  }
});

// ---------------------------------------------------------------------------
// Return value validation (docs/api.md): a plain object with a boolean `ok`,
// as the Go version accepted. Anything beside `ok` is the handler's business:
// `{ok:false}` without a string `error`, or with a numeric `code`, is still a
// business failure. The value is validated as the caller will receive it,
// i.e. after a JSON round trip (toJSON applied, undefined fields dropped).

function typeName(v) {
  if (v === null) return 'null';
  if (isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

function isPlainObject(v) {
  if (typeof v !== 'object' || v === null || isArray(v)) return false;
  const proto = getPrototypeOf(v);
  return proto === ObjectPrototype || proto === null;
}

// Returns [json, null] on success or [null, problem].
function checkReturn(value) {
  if (value === undefined) {
    return [null, 'handler returned undefined; it must return an object with a boolean "ok" field'];
  }
  let json;
  try {
    json = stringify(value);
  } catch (err) {
    return [null, `handler return value cannot be serialised to JSON: ${describe(err)}`];
  }
  if (typeof json !== 'string') {
    return [null, `handler returned ${typeName(value)} that serialises to nothing; it must return an object with a boolean "ok" field`];
  }
  const v = parse(json);
  if (!isPlainObject(v)) {
    return [null, `handler returned ${typeName(v)}; it must return an object with a boolean "ok" field`];
  }
  if (typeof v.ok !== 'boolean') {
    const got = 'ok' in v ? typeName(v.ok) : 'nothing';
    return [null, `handler return value must have a boolean "ok" field, got ${got}`];
  }
  return [json, null];
}

// ---------------------------------------------------------------------------
// The run.

function buildContext() {
  const env = process.env;
  const str = (name) => (typeof env[name] === 'string' ? env[name] : '');
  const rawVersion = str('LOWCODE_FAAS_DEPLOYMENT_VERSION').trim();
  // The platform always sets it; 0 stands for "unknown" rather than NaN.
  const version = /^\d+$/.test(rawVersion) ? Number(rawVersion) : 0;
  return Object.freeze({
    runId: str('LOWCODE_FAAS_RUN_ID'),
    executionId: str('LOWCODE_FAAS_EXECUTION_ID'),
    functionName: str('LOWCODE_FAAS_FUNCTION_NAME'),
    collectionPath: str('LOWCODE_FAAS_COLLECTION_PATH'),
    deploymentId: str('LOWCODE_FAAS_DEPLOYMENT_ID'),
    deploymentVersion: version,
  });
}

// The handler is the named export `handler` (docs/api.md): a module
// without one is NO_HANDLER, whatever else it exports (a default export too).
function pickHandler(mod) {
  if ('handler' in mod) {
    if (typeof mod.handler === 'function') return [mod.handler, null];
    return [null, `the export "handler" is ${typeName(mod.handler)}, not a function`];
  }
  return [null, 'the module has no "handler" export; export async function handler(input, context)'];
}

// Loads the module, parses the input, calls the handler and reports the
// verdict. `loadModule` imports function.mjs; `readInput` returns its text.
async function runHandler(loadModule, readInput) {
  let mod;
  try {
    mod = await loadModule();
  } catch (err) {
    logStack('loading the function failed', err);
    finishWithError('SYNTAX_ERROR', describeWithName(err));
    return;
  }

  const [handler, noHandler] = pickHandler(mod);
  if (handler === null) {
    finishWithError('NO_HANDLER', noHandler);
    return;
  }

  let input;
  try {
    input = parse(readInput());
  } catch (err) {
    finishWithError('BAD_INPUT', `cannot read input.json: ${describe(err)}`);
    return;
  }
  if (!isPlainObject(input)) {
    finishWithError('BAD_INPUT', `input must be a JSON object, got ${typeName(input)}`);
    return;
  }

  let value;
  try {
    value = await handler(input, buildContext());
  } catch (err) {
    logStack('handler threw', err);
    finishWithError('HANDLER_THROW', describe(err));
    return;
  }

  const [json, problem] = checkReturn(value);
  if (json === null) {
    finishWithError('BAD_RETURN', problem);
    return;
  }
  finishWithResult(json);
}

function internalError(err) {
  // A bug in this file, not in the function.
  stderrWrite(`lowcode-faas bootstrap: internal error: ${stackOf(err) ?? describe(err)}\n`);
  exit(70);
}

// ---------------------------------------------------------------------------
// Serve mode.

// The environment the runner started with (PATH, HOME, HOSTNAME …); every
// job sees exactly this plus its own env.
const BASE_ENV = { ...process.env };

// Names that change how node or the dynamic loader start: the platform
// refuses them in every env layer; never applied here either.
function runtimeName(key) {
  return key === 'PATH' || key === 'NODE_OPTIONS' || key === 'NODE_PATH' || key.startsWith('LD_');
}

function applyEnv(env) {
  for (const key of objectKeys(env)) {
    if (runtimeName(key)) delete env[key];
  }
  for (const key of objectKeys(process.env)) {
    if (!(key in BASE_ENV) || key in env) delete process.env[key];
  }
  for (const key of objectKeys(BASE_ENV)) {
    if (!(key in env)) process.env[key] = BASE_ENV[key];
  }
  for (const key of objectKeys(env)) process.env[key] = String(env[key]);
}

// The imported module per source text: a warm runner serves one deployment,
// so this holds one entry; a different source gets a file of its own.
let loaded = null;
let loadedCount = 0;

function loadModuleFor(source) {
  if (loaded !== null && loaded.source === source) return loaded.promise;
  loadedCount += 1;
  const file = loadedCount === 1 ? FUNCTION_FILE : path.join(DIR, `function-${loadedCount}.mjs`);
  writeFileSync(file, source);
  const promise = import(pathToFileURL(file).href);
  // A failed import is reported per job; keep it from counting as unhandled.
  promise.catch(() => {});
  loaded = { source, promise };
  return promise;
}

// The watchdog: a thread of its own that SIGKILLs this process when a job
// outlives its deadline. Unref'd: it never keeps the runner alive.
let watchdog = null;

function startWatchdog() {
  try {
    watchdog = new Worker(
      "const { parentPort } = require('node:worker_threads');" +
        'let timer = null;' +
        "parentPort.on('message', (m) => {" +
        '  if (timer !== null) { clearTimeout(timer); timer = null; }' +
        "  if (m !== null && typeof m === 'object' && Number.isSafeInteger(m.killAfterMs)) {" +
        "    timer = setTimeout(() => process.kill(process.pid, 'SIGKILL'), m.killAfterMs);" +
        '  }' +
        '});',
      // execArgv: [] so the thread reads this as CommonJS even when the
      // bootstrap itself runs as `node --input-type=module -e`.
      // Small heap limits: the thread holds one timer.
      { eval: true, execArgv: [], resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 2 } },
    );
    watchdog.unref();
    watchdog.on('error', () => {
      watchdog = null;
    });
  } catch (err) {
    stderrWrite(`lowcode-faas bootstrap: no watchdog thread: ${describe(err)}\n`);
    watchdog = null;
  }
}

function armWatchdog(timeoutMs) {
  if (watchdog !== null && isSafeInteger(timeoutMs) && timeoutMs > 0) {
    postToThread.call(watchdog, { killAfterMs: Math.min(timeoutMs + DEADLINE_GRACE_MS, MAX_TIMER_MS) });
  }
}

// Between jobs the watchdog still guards the idle limit: code a finished
// job left behind may block the event loop, which the idle timer needs.
function idleWatchdog() {
  if (watchdog !== null) {
    postToThread.call(watchdog, { killAfterMs: Math.min(MAX_IDLE_MS + DEADLINE_GRACE_MS, MAX_TIMER_MS) });
  }
}

let idleTimer = null;

function armIdleExit() {
  if (idleTimer !== null) clearTimer(idleTimer);
  idleTimer = setTimer(() => exit(0), Math.min(MAX_IDLE_MS, MAX_TIMER_MS));
  idleTimer.unref();
}

function disarmIdleExit() {
  if (idleTimer !== null) clearTimer(idleTimer);
  idleTimer = null;
}

function serveJob(line) {
  let spec;
  try {
    spec = parse(line);
  } catch (err) {
    stderrWrite(`lowcode-faas bootstrap: unreadable job: ${describe(err)}\n`);
    exit(65);
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    job = {
      nonce: String(spec.nonce),
      maxOutputBytes: isSafeInteger(spec.max_output_bytes) ? spec.max_output_bytes : Infinity,
      done: () => {
        idleWatchdog();
        armIdleExit();
        resolve();
      },
    };
    disarmIdleExit();
    armWatchdog(spec.timeout_ms);
    applyEnv(spec.env && typeof spec.env === 'object' ? spec.env : {});
    log = newLogState();
    writeFrame(job.nonce, 'started', '{}');
    runHandler(
      () => loadModuleFor(String(spec.source)),
      () => String(spec.input),
    ).catch(internalError);
  });
}

function serve() {
  let buffered = [];
  let bufferedBytes = 0;
  let queue = Promise.resolve();
  const stdin = process.stdin;
  stdin.on('data', (chunk) => {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl < 0) break;
      buffered.push(chunk.subarray(start, nl));
      const line = Buffer.concat(buffered).toString('utf8');
      buffered = [];
      bufferedBytes = 0;
      start = nl + 1;
      if (line.trim() === '') continue;
      queue = queue.then(() => {
        // Between jobs stdin keeps the runner alive; while one runs it does
        // not, so a handler that never settles and has nothing pending ends
        // the process as in one-shot mode.
        if (typeof stdin.unref === 'function') stdin.unref();
        return serveJob(line).then(() => {
          if (typeof stdin.ref === 'function') stdin.ref();
        });
      });
    }
    if (start < chunk.length) {
      buffered.push(chunk.subarray(start));
      bufferedBytes += chunk.length - start;
      if (bufferedBytes > MAX_JOB_LINE_BYTES) {
        stderrWrite('lowcode-faas bootstrap: a job line is too long\n');
        exit(65);
      }
    }
  });
  // The runtime closed stdin: nothing more to do.
  stdin.on('end', () => {
    queue.then(() => exit(0));
  });
  startWatchdog();
  idleWatchdog();
  armIdleExit();
  writeFrame('-', 'ready', stringify({ pid: process.pid }));
}

if (SERVE) {
  serve();
} else {
  runHandler(
    () => import(pathToFileURL(FUNCTION_FILE).href),
    () => readFileSync(INPUT_FILE, 'utf8'),
  ).catch(internalError);
}
