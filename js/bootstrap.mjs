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
// Serve (`node bootstrap.mjs --serve`): a long-lived runner. It reads one
// JSON object per line from stdin. The first line is the runner's key,
//   {"key":"<64 lowercase hex digits: 32 random bytes>"}
// read before any user code exists; then it says it is ready, and every
// further line is a job:
//   {"challenge","source","input","env","max_output_bytes","max_log_bytes","timeout_ms"}
// answered with frames on stdout, one line each, each written whole by one
// writeSync:
//   \x1eLCF:<nonce>:<kind>:<len>:<mac>:<payload>\n
// where a job's nonce is hex(HMAC-SHA256(key, challenge)), <len> the
// payload's length in bytes and <mac> hex(HMAC-SHA256(key,
// challenge ":" kind ":" payload)) (the ready frame's nonce and challenge
// are "-"). The challenge is random per job and the nonce and MAC key never
// travel, so code that reads the job lines (a later job's, in a warm runner)
// cannot forge that job's frames, and bytes another writer splices into a
// frame (a Worker thread, a child an earlier run left) make it invalid: the
// runtime checks length and MAC and fails the run.
// kinds: ready (once the key is read), started (the job was taken),
// log (one {"ts","level","message"} entry), result (the envelope above; the
// runner can take another job), result-final (the envelope; the runner is
// tainted and must not be reused), too-large ({"size":N}: the envelope is
// larger than max_output_bytes). Every frame starts on a new line. User code
// never writes frames: console.* becomes log frames, process.stdout.write is
// sent to stderr, and stray bytes on fd 1 are not frames (wrong or missing
// prefix, nonce or MAC; the key and the nonces are never in the environment).
// User code never gets the job channel either: `process.stdin` is an empty
// stream, the real one is taken before any user code loads, keeps its own
// copies of its methods and is split into lines with captured functions
// only; the key and nonces live only in typed arrays handled with
// operators (no method or getter a handler could replace sees them).
// That is defence in depth, not a boundary: code that reaches Node's
// internals or inspects its own process (process.binding, async_hooks,
// node:inspector, /proc/self/mem) can find them or rewrite later jobs, and
// code that reads fd 0 itself can see (and steal) later job lines
// (README.md, warm mode).
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
import { Readable } from 'node:stream';
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
const defineProperty = Object.defineProperty;
const applyFunction = Reflect.apply;
const concatBuffers = Buffer.concat.bind(Buffer);
const U8 = Uint8Array;
const U32 = Uint32Array;
// The data path of serve mode (job lines in, frames out) calls only these,
// captured before any user code exists and called through the captured
// Reflect.apply: never a method looked up on a prototype user code can
// replace (Buffer, String, EventEmitter, Promise).
const TypedArrayPrototype = getPrototypeOf(U8.prototype);
const typedSet = TypedArrayPrototype.set;
const typedSubarray = TypedArrayPrototype.subarray;
const typedCopyWithin = TypedArrayPrototype.copyWithin;
const typedLength = Reflect.getOwnPropertyDescriptor(TypedArrayPrototype, 'length').get;
const utf8Encoder = new TextEncoder();
const encodeUtf8 = TextEncoder.prototype.encode;
const utf8Decoder = new TextDecoder('utf-8');
const decodeUtf8 = TextDecoder.prototype.decode;

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
// The largest job line read from stdin (source + input + env, JSON-encoded).
const MAX_JOB_LINE_BYTES = 64 * 1024 * 1024;

// ---------------------------------------------------------------------------
// Frames (serve mode). fd 1 is written synchronously: a pipe on Linux, so a
// frame is complete before the next statement runs, and a frame written
// before a crash is not lost.
//
// A frame is `\n\x1eLCF:<nonce>:<kind>:<len>:<mac>:<payload>\n`, where
// `len` is the payload's length in bytes (decimal) and `mac` is
// hex(HMAC-SHA256(key, challenge ":" kind ":" payload)) (the ready frame's
// challenge is "-"): the runtime refuses a frame whose payload does not
// match them, so bytes another writer on fd 1 splices into a frame (a
// Worker thread, a child left by an earlier run) never pass for it. The
// whole frame is one buffer, written by one writeSync when the pipe takes
// it. It is assembled in a typed array with an own `byteLength`, encoded by
// a captured TextEncoder and hashed with operators only, so nothing a
// handler can replace (String and TypedArray methods and getters, Buffer
// internals) ever sees a nonce, the key or the payload on its way out.

// Bytes of an ASCII constant, as {bytes, size}. Only called before any user
// code runs.
function ascii(text) {
  const bytes = new U8(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return { bytes, size: text.length };
}

const FRAME_HEAD = ascii('\n\x1eLCF:');
// The ready frame's nonce, also its MAC's challenge.
const READY_NONCE = ascii('-');
READY_NONCE.challenge = READY_NONCE;
const KINDS = { __proto__: null };
for (const kind of ['ready', 'started', 'log', 'result', 'result-final', 'too-large']) KINDS[kind] = ascii(kind);
const COLON = 58;

// Writes `size` bytes of `bytes` to fd 1, whatever the pipe takes at once.
function writeAll(bytes, size) {
  let offset = 0;
  while (offset < size) {
    try {
      offset += writeSync(1, bytes, offset, size - offset);
    } catch (err) {
      if (err && err.code === 'EAGAIN') continue;
      throw err;
    }
  }
}

// `nonce` is {bytes, size, challenge: {bytes, size}}; `kind` a key of
// KINDS; `payload` a string.
function writeFrame(nonce, kind, payload) {
  const k = KINDS[kind];
  const body = applyFunction(encodeUtf8, utf8Encoder, [payload]);
  const bodySize = applyFunction(typedLength, body, []);
  const mac = frameMac(nonce.challenge, k, body, bodySize);
  // The length's decimal digits, without a string.
  const digits = new U8(20);
  let nDigits = 0;
  let rest = bodySize;
  do {
    digits[nDigits++] = 48 + (rest % 10);
    rest = (rest - (rest % 10)) / 10;
  } while (rest > 0);
  const headSize = FRAME_HEAD.size + nonce.size + 1 + k.size + 1 + nDigits + 1 + 2 * 32 + 1;
  const size = headSize + bodySize + 1;
  const frame = new U8(size);
  // fs.writeSync reads `byteLength`: an own property, never the prototype's getter.
  defineProperty(frame, 'byteLength', { value: size });
  let at = 0;
  for (let i = 0; i < FRAME_HEAD.size; i++) frame[at++] = FRAME_HEAD.bytes[i];
  for (let i = 0; i < nonce.size; i++) frame[at++] = nonce.bytes[i];
  frame[at++] = COLON;
  for (let i = 0; i < k.size; i++) frame[at++] = k.bytes[i];
  frame[at++] = COLON;
  for (let i = nDigits - 1; i >= 0; i--) frame[at++] = digits[i];
  frame[at++] = COLON;
  for (let i = 0; i < 32; i++) {
    frame[at++] = HEX_DIGITS[mac[i] >> 4];
    frame[at++] = HEX_DIGITS[mac[i] & 15];
  }
  frame[at++] = COLON;
  applyFunction(typedSet, frame, [body, at]);
  frame[size - 1] = 10;
  writeAll(frame, size);
}

// ---------------------------------------------------------------------------
// Job nonces (serve mode): hex(HMAC-SHA256(key, challenge)), computed with
// integer operators on typed arrays only (no crypto object, string method
// or getter that a handler could wrap). The key itself is kept only as the
// two HMAC pad states.

const SHA256_K = new U32([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const SHA256_IV = new U32([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);
const HEX_DIGITS = ascii('0123456789abcdef').bytes;
const KEY_BYTES = 32;
const NONCE_SIZE = 64;
// A challenge: 1 to 256 ASCII letters and digits.
const MAX_CHALLENGE = 256;

// Scratch space of the hash (zeroed after each nonce).
const W = new U32(64);
const BLOCK = new U8(64);

// One SHA-256 compression of BLOCK into `h` (8 words).
function compress(h) {
  for (let t = 0; t < 16; t++) {
    W[t] = (BLOCK[4 * t] << 24) | (BLOCK[4 * t + 1] << 16) | (BLOCK[4 * t + 2] << 8) | BLOCK[4 * t + 3];
  }
  for (let t = 16; t < 64; t++) {
    const a = W[t - 15];
    const b = W[t - 2];
    const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
    const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
    W[t] = (W[t - 16] + s0 + W[t - 7] + s1) | 0;
  }
  let a = h[0];
  let b = h[1];
  let c = h[2];
  let d = h[3];
  let e = h[4];
  let f = h[5];
  let g = h[6];
  let hh = h[7];
  for (let t = 0; t < 64; t++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const ch = (e & f) ^ (~e & g);
    const t1 = (hh + S1 + ch + SHA256_K[t] + W[t]) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const maj = (a & b) ^ (a & c) ^ (b & c);
    const t2 = (S0 + maj) | 0;
    hh = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  h[0] = (h[0] + a) | 0;
  h[1] = (h[1] + b) | 0;
  h[2] = (h[2] + c) | 0;
  h[3] = (h[3] + d) | 0;
  h[4] = (h[4] + e) | 0;
  h[5] = (h[5] + f) | 0;
  h[6] = (h[6] + g) | 0;
  h[7] = (h[7] + hh) | 0;
}

// Streaming SHA-256 over BLOCK: `fill` bytes of it pending, `fed` bytes
// hashed so far (one state at a time).
let fill = 0;
let fed = 0;

// Starts a hash from a state `from` that already hashed one 64-byte block.
function shaBegin(from, out) {
  for (let i = 0; i < 8; i++) out[i] = from[i];
  fill = 0;
  fed = 64;
}

function shaFeed(out, msg, size) {
  for (let i = 0; i < size; i++) {
    BLOCK[fill++] = msg[i];
    if (fill === 64) {
      compress(out);
      fill = 0;
    }
  }
  fed += size;
}

// Pads and finishes: the digest words are in `out`.
function shaEnd(out) {
  BLOCK[fill++] = 0x80;
  if (fill > 56) {
    while (fill < 64) BLOCK[fill++] = 0;
    compress(out);
    fill = 0;
  }
  while (fill < 56) BLOCK[fill++] = 0;
  // The length in bits, as two 32-bit words (operators only).
  const bits = fed * 8;
  const low = bits % 4294967296;
  const high = (bits - low) / 4294967296;
  BLOCK[56] = (high >>> 24) & 0xff;
  BLOCK[57] = (high >>> 16) & 0xff;
  BLOCK[58] = (high >>> 8) & 0xff;
  BLOCK[59] = high & 0xff;
  BLOCK[60] = (low >>> 24) & 0xff;
  BLOCK[61] = (low >>> 16) & 0xff;
  BLOCK[62] = (low >>> 8) & 0xff;
  BLOCK[63] = low & 0xff;
  compress(out);
  fill = 0;
}

// SHA-256 of (one 64-byte block already hashed into `from`) + msg[0..size]:
// the digest words into `out`.
function hashAfterBlock(from, msg, size, out) {
  shaBegin(from, out);
  shaFeed(out, msg, size);
  shaEnd(out);
}

// The HMAC pad states: SHA-256 state after (key ^ ipad) and (key ^ opad).
const INNER_PAD = new U32(8);
const OUTER_PAD = new U32(8);
let keyed = false;

// Takes the key from `bytes[0..size]` (the first stdin line, exactly
// {"key":"<64 hex>"}) and zeroes them. False when it is not such a line.
function acceptKey(bytes, size) {
  const head = ascii('{"key":"');
  const tail = ascii('"}');
  const key = new U8(KEY_BYTES);
  let ok = size === head.size + 2 * KEY_BYTES + tail.size;
  for (let i = 0; ok && i < head.size; i++) ok = bytes[i] === head.bytes[i];
  for (let i = 0; ok && i < tail.size; i++) ok = bytes[size - tail.size + i] === tail.bytes[i];
  const nibble = (c) => (c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1);
  for (let i = 0; ok && i < KEY_BYTES; i++) {
    const hi = nibble(bytes[head.size + 2 * i]);
    const lo = nibble(bytes[head.size + 2 * i + 1]);
    ok = hi >= 0 && lo >= 0;
    key[i] = (hi << 4) | lo;
  }
  for (let i = 0; i < size; i++) bytes[i] = 0;
  if (!ok) return false;
  for (let i = 0; i < 64; i++) BLOCK[i] = (i < KEY_BYTES ? key[i] : 0) ^ 0x36;
  for (let i = 0; i < 8; i++) INNER_PAD[i] = SHA256_IV[i];
  compress(INNER_PAD);
  for (let i = 0; i < 64; i++) BLOCK[i] = (i < KEY_BYTES ? key[i] : 0) ^ 0x5c;
  for (let i = 0; i < 8; i++) OUTER_PAD[i] = SHA256_IV[i];
  compress(OUTER_PAD);
  for (let i = 0; i < KEY_BYTES; i++) key[i] = 0;
  for (let i = 0; i < 64; i++) BLOCK[i] = 0;
  keyed = true;
  return true;
}

// ASCII letters and digits to their codes (a lookup, no string method).
const CHALLENGE_CODES = { __proto__: null };
for (const c of '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz') {
  CHALLENGE_CODES[c] = c.charCodeAt(0);
}

// The nonce of a job ({bytes, size}), or null for a malformed challenge.
function nonceFor(challenge) {
  if (typeof challenge !== 'string' || challenge.length < 1 || challenge.length > MAX_CHALLENGE) return null;
  const size = challenge.length;
  const msg = new U8(size);
  for (let i = 0; i < size; i++) {
    const code = CHALLENGE_CODES[challenge[i]];
    if (code === undefined) return null;
    msg[i] = code;
  }
  const inner = new U32(8);
  hashAfterBlock(INNER_PAD, msg, size, inner);
  const innerBytes = wordsToBytes(inner);
  const outer = new U32(8);
  hashAfterBlock(OUTER_PAD, innerBytes, 32, outer);
  const bytes = new U8(NONCE_SIZE);
  for (let i = 0; i < 32; i++) {
    const b = (outer[i >> 2] >>> (24 - 8 * (i & 3))) & 0xff;
    bytes[2 * i] = HEX_DIGITS[b >> 4];
    bytes[2 * i + 1] = HEX_DIGITS[b & 15];
  }
  wipeHmac(inner, outer, innerBytes);
  return { bytes, size: NONCE_SIZE, challenge: { bytes: msg, size } };
}

const COLON_BYTES = ascii(':').bytes;

// The MAC of a frame: HMAC-SHA256(key, challenge ":" kind ":" body), as 32
// bytes. `challenge` and `kind` are {bytes, size}.
function frameMac(challenge, kind, body, bodySize) {
  const inner = new U32(8);
  shaBegin(INNER_PAD, inner);
  shaFeed(inner, challenge.bytes, challenge.size);
  shaFeed(inner, COLON_BYTES, 1);
  shaFeed(inner, kind.bytes, kind.size);
  shaFeed(inner, COLON_BYTES, 1);
  shaFeed(inner, body, bodySize);
  shaEnd(inner);
  const innerBytes = wordsToBytes(inner);
  const outer = new U32(8);
  hashAfterBlock(OUTER_PAD, innerBytes, 32, outer);
  const mac = wordsToBytes(outer);
  wipeHmac(inner, outer, innerBytes);
  return mac;
}

// 8 big-endian words to 32 bytes.
// Zeroes what an HMAC computation leaves behind: its two states, the inner
// hash's bytes and the shared message schedule and block buffers.
function wipeHmac(inner, outer, innerBytes) {
  for (let i = 0; i < 8; i++) {
    inner[i] = 0;
    outer[i] = 0;
  }
  for (let i = 0; i < 32; i++) innerBytes[i] = 0;
  for (let i = 0; i < 64; i++) {
    W[i] = 0;
    BLOCK[i] = 0;
  }
}

function wordsToBytes(words) {
  const out = new U8(32);
  for (let i = 0; i < 8; i++) {
    out[4 * i] = words[i] >>> 24;
    out[4 * i + 1] = (words[i] >>> 16) & 0xff;
    out[4 * i + 2] = (words[i] >>> 8) & 0xff;
    out[4 * i + 3] = words[i] & 0xff;
  }
  return out;
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

// Runs one job line; `onDone` is called (directly, no promise) once its
// verdict is written.
function serveJob(line, onDone) {
  let spec;
  try {
    spec = parse(line);
  } catch (err) {
    stderrWrite(`lowcode-faas bootstrap: unreadable job: ${describe(err)}\n`);
    exit(65);
    return;
  }
  const nonce = spec !== null && typeof spec === 'object' ? nonceFor(spec.challenge) : null;
  if (nonce === null) {
    stderrWrite('lowcode-faas bootstrap: unreadable job: no valid challenge\n');
    exit(65);
    return;
  }
  {
    job = {
      nonce,
      maxOutputBytes: isSafeInteger(spec.max_output_bytes) ? spec.max_output_bytes : Infinity,
      done: () => {
        idleWatchdog();
        armIdleExit();
        onDone();
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
  }
}

// Takes the job channel away from user code: `process.stdin` becomes an
// empty stream for good (process.openStdin() returns it too), and the
// deprecated process._getActiveHandles() no longer lists the channel.
function hideChannel(channel) {
  const inert = new Readable({
    read() {
      this.push(null);
    },
  });
  defineProperty(process, 'stdin', { value: inert, enumerable: true, writable: false, configurable: false });
  const handles = process._getActiveHandles;
  if (typeof handles !== 'function') return;
  const hidden = channel._handle;
  defineProperty(process, '_getActiveHandles', {
    value: function _getActiveHandles() {
      const all = applyFunction(handles, process, []);
      const out = [];
      let n = 0;
      for (let i = 0; i < all.length; i++) {
        const handle = all[i];
        if (handle === channel || (hidden !== undefined && handle === hidden)) continue;
        defineProperty(out, n, { value: handle, writable: true, enumerable: true, configurable: true });
        n += 1;
      }
      return out;
    },
    enumerable: false,
    writable: true,
    configurable: true,
  });
}

// Gives `target` an own copy of every method on its prototype chain, so
// that what user code later does to the shared prototypes (Readable,
// EventEmitter, net.Socket, fs.ReadStream) never reaches it.
function pinMethods(target) {
  const seen = { __proto__: null };
  for (let proto = getPrototypeOf(target); proto !== null && proto !== ObjectPrototype; proto = getPrototypeOf(proto)) {
    const names = Reflect.ownKeys(proto);
    for (let i = 0; i < names.length; i++) {
      const name = names[i];
      if (name === 'constructor' || seen[name] === true) continue;
      seen[name] = true;
      const desc = Reflect.getOwnPropertyDescriptor(proto, name);
      if (typeof desc.value !== 'function' || Reflect.getOwnPropertyDescriptor(target, name) !== undefined) continue;
      defineProperty(target, name, { value: desc.value, writable: true, enumerable: false, configurable: true });
    }
  }
}

// The job channel: the real stdin stream, taken before any user code exists
// and then hidden; its methods are pinned (pinMethods) and its chunks are
// split into lines with typed-array operators and captured functions only,
// so no stream, EventEmitter, Buffer, String or Promise method a handler
// could replace is on the path of a job line. Lines wait while a job runs.
function serve() {
  // Bytes received but not yet taken as lines: pending[0..pendingSize].
  let pending = new U8(65536);
  let pendingSize = 0;
  let running = false;
  let ended = false;
  const READY = {};
  const channel = process.stdin;
  pinMethods(channel);
  // fd 0 may be a file or /dev/null (an fs.ReadStream, without ref/unref).
  const ref = typeof channel.ref === 'function' ? channel.ref : null;
  const unref = typeof channel.unref === 'function' ? channel.unref : null;
  const on = channel.on;
  hideChannel(channel);

  // Appends a chunk to pending (growing it), then zeroes the chunk (it may
  // hold the key).
  function take(chunk) {
    const n = applyFunction(typedLength, chunk, []);
    const capacity = applyFunction(typedLength, pending, []);
    if (pendingSize + n > capacity) {
      let grown = capacity * 2;
      while (grown < pendingSize + n) grown *= 2;
      const bigger = new U8(grown);
      applyFunction(typedSet, bigger, [pending, 0]);
      for (let i = 0; i < pendingSize; i++) pending[i] = 0;
      pending = bigger;
    }
    for (let i = 0; i < n; i++) {
      pending[pendingSize + i] = chunk[i];
      chunk[i] = 0;
    }
    pendingSize += n;
  }

  // Takes the complete lines in pending until a job starts.
  function lines() {
    while (!running) {
      let nl = -1;
      for (let i = 0; i < pendingSize; i++) {
        if (pending[i] === 10) {
          nl = i;
          break;
        }
      }
      if (nl < 0) {
        if (pendingSize > MAX_JOB_LINE_BYTES) {
          stderrWrite('lowcode-faas bootstrap: a job line is too long\n');
          exit(65);
        }
        if (ended) exit(0);
        return;
      }
      let line = null;
      if (!keyed) {
        // The first line is the key: read from bytes, then zeroed, never a string.
        const ok = acceptKey(pending, nl);
        if (!ok) {
          stderrWrite('lowcode-faas bootstrap: the first line is not a key\n');
          exit(65);
          return;
        }
        line = READY;
      } else {
        let blank = true;
        for (let i = 0; blank && i < nl; i++) {
          const c = pending[i];
          blank = c === 32 || c === 9 || c === 13;
        }
        if (!blank) line = applyFunction(decodeUtf8, utf8Decoder, [applyFunction(typedSubarray, pending, [0, nl])]);
      }
      applyFunction(typedCopyWithin, pending, [0, nl + 1, pendingSize]);
      const left = pendingSize - nl - 1;
      for (let i = left; i < pendingSize; i++) pending[i] = 0;
      pendingSize = left;
      if (line === READY) {
        writeFrame(READY_NONCE, 'ready', stringify({ pid: process.pid }));
      } else if (line !== null) {
        // While a job runs the channel does not keep the runner alive, so a
        // handler that never settles and has nothing pending ends the
        // process as in one-shot mode.
        running = true;
        if (unref !== null) applyFunction(unref, channel, []);
        serveJob(line, () => {
          running = false;
          if (ref !== null) applyFunction(ref, channel, []);
          lines();
        });
      }
    }
  }

  applyFunction(on, channel, [
    'data',
    (chunk) => {
      take(chunk);
      lines();
    },
  ]);
  // The runtime closed the channel: nothing more to do once the lines
  // already received are served.
  applyFunction(on, channel, [
    'end',
    () => {
      ended = true;
      if (!running) lines();
    },
  ]);
  startWatchdog();
  idleWatchdog();
  armIdleExit();
}

if (SERVE) {
  serve();
} else {
  runHandler(
    () => import(pathToFileURL(FUNCTION_FILE).href),
    () => readFileSync(INPUT_FILE, 'utf8'),
  ).catch(internalError);
}
