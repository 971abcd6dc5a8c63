// Tests of bootstrap.mjs in serve mode (`--serve`): a long-lived runner that
// reads its key and then jobs from stdin and answers with frames on stdout.
//
// Run with: node --test js/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const BOOTSTRAP = fileURLToPath(new URL('./bootstrap.mjs', import.meta.url));
const PREFIX = '\x1eLCF:';

const PLATFORM_ENV = {
  LOWCODE_FAAS_RUN_ID: 'run-0190-abc',
  LOWCODE_FAAS_EXECUTION_ID: 'run-0190-abc',
  LOWCODE_FAAS_FUNCTION_NAME: 'hello',
  LOWCODE_FAAS_COLLECTION_PATH: 'a/b',
  LOWCODE_FAAS_DEPLOYMENT_ID: 'a/b/hello@v3',
  LOWCODE_FAAS_DEPLOYMENT_VERSION: '3',
};

/** A started runner: send jobs, await their frames. */
class Runner {
  /** `key`: false sends no key line; a string sends that line instead. */
  constructor(args = [], { key = true } = {}) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lowcode-faas-serve-test-'));
    fs.copyFileSync(BOOTSTRAP, path.join(this.dir, 'bootstrap.mjs'));
    this.proc = spawn(process.execPath, [path.join(this.dir, 'bootstrap.mjs'), '--serve', ...args], {
      cwd: os.tmpdir(),
      env: { BASE_VAR: 'base' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.frames = [];
    this.stray = [];
    this.stderr = '';
    this.waiters = [];
    this.exited = new Promise((resolve) => this.proc.on('exit', (code) => resolve(code)));
    let pending = '';
    this.proc.stdout.setEncoding('utf8');
    this.proc.stdout.on('data', (chunk) => {
      pending += chunk;
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line === '') continue;
        if (!line.startsWith(PREFIX)) {
          this.stray.push(line);
          continue;
        }
        // <nonce>:<kind>:<len>:<mac>:<payload> (stray frame-like lines of
        // handlers may have fewer fields: kept, never valid).
        const rest = line.slice(PREFIX.length);
        const a = rest.indexOf(':');
        const b = rest.indexOf(':', a + 1);
        const c = rest.indexOf(':', b + 1);
        const d = c < 0 ? -1 : rest.indexOf(':', c + 1);
        const frame = { nonce: rest.slice(0, a), kind: rest.slice(a + 1, b) };
        if (d < 0) frame.payload = rest.slice(b + 1);
        else Object.assign(frame, { len: rest.slice(b + 1, c), mac: rest.slice(c + 1, d), payload: rest.slice(d + 1) });
        this.frames.push(frame);
        this.wake();
      }
    });
    this.proc.stderr.on('data', (chunk) => {
      this.stderr += chunk;
    });
    this.proc.on('exit', () => this.wake());
    this.key = randomBytes(32);
    if (key === true) this.proc.stdin.write(JSON.stringify({ key: this.key.toString('hex') }) + '\n');
    else if (typeof key === 'string') this.proc.stdin.write(key + '\n');
  }

  /** Whether a frame's length and MAC match its payload under `challenge`. */
  authentic(frame, challenge) {
    const mac = createHmac('sha256', this.key).update(`${challenge}:${frame.kind}:`).update(frame.payload).digest('hex');
    return frame.len === String(Buffer.byteLength(frame.payload)) && frame.mac === mac;
  }

  /** The nonce of a job's frames: hex(HMAC-SHA256(key, challenge)). */
  nonceOf(challenge) {
    return createHmac('sha256', this.key).update(challenge).digest('hex');
  }

  wake() {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Waits until `pred(frames)` holds or the process exits (bounded). */
  async until(pred) {
    const deadline = Date.now() + 20000;
    while (!pred(this.frames)) {
      if (this.proc.exitCode !== null || Date.now() > deadline) return false;
      await new Promise((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
    return true;
  }

  /** Sends one job; resolves with its frames once it ends (or the runner does). */
  async run(source, { input = {}, env = {}, maxOutputBytes = 6 * 1024 * 1024, challenge, timeoutMs = 60000, allowBad = false } = {}) {
    const sent = challenge ?? randomBytes(16).toString('hex');
    const id = this.nonceOf(sent);
    const job = {
      challenge: sent,
      source,
      input: typeof input === 'string' ? input : JSON.stringify(input),
      env: { ...PLATFORM_ENV, ...env },
      max_output_bytes: maxOutputBytes,
      max_log_bytes: 1048576,
      timeout_ms: timeoutMs,
    };
    this.proc.stdin.write(JSON.stringify(job) + '\n');
    // What the runtime does: a frame of the nonce that is not authentic
    // (torn, spliced, forged) ends the run, never counts as a verdict.
    const bad = (f) => f.nonce === id && !this.authentic(f, sent);
    const isEnd = (f) => f.nonce === id && ['result', 'result-final', 'too-large'].includes(f.kind) && !bad(f);
    await this.until((frames) => frames.some((f) => isEnd(f) || bad(f)));
    const firstBad = this.frames.findIndex(bad);
    const mine = this.frames.filter((f, i) => f.nonce === id && (firstBad < 0 || i < firstBad));
    if (!allowBad) assert.equal(firstBad, -1, `a frame that is not authentic: ${JSON.stringify(this.frames[firstBad] ?? null).slice(0, 300)}`);
    const end = mine.find(isEnd);
    return {
      nonce: id,
      kinds: mine.map((f) => f.kind),
      logs: mine.filter((f) => f.kind === 'log').map((f) => JSON.parse(f.payload).message),
      end: end?.kind,
      envelope: end && end.kind !== 'too-large' ? JSON.parse(end.payload) : null,
      payload: end ? JSON.parse(end.payload) : null,
      bad: firstBad >= 0,
    };
  }

  async close() {
    this.proc.stdin.end();
    const code = await Promise.race([this.exited, new Promise((r) => setTimeout(() => r('timeout'), 10000))]);
    if (code === 'timeout') this.proc.kill('SIGKILL');
    fs.rmSync(this.dir, { recursive: true, force: true });
    return code;
  }
}

async function withRunner(fn) {
  const r = new Runner();
  try {
    assert.ok(await r.until((f) => f.some((x) => x.kind === 'ready')), `no ready frame: ${r.stderr}`);
    assert.equal(r.frames[0].nonce, '-');
    return await fn(r);
  } finally {
    await r.close();
  }
}

test('serve: ready, then started, logs and a result per job', async () => {
  await withRunner(async (r) => {
    const res = await r.run(
      'console.log("top"); export async function handler(input, ctx) { console.log("in", input.n); return { ok: true, data: { n: input.n, run: ctx.runId } }; }',
      { input: { n: 1 } },
    );
    assert.deepEqual(res.kinds, ['started', 'log', 'log', 'result']);
    assert.deepEqual(res.logs, ['top', 'in 1']);
    assert.deepEqual(res.envelope, { type: 'result', value: { ok: true, data: { n: 1, run: 'run-0190-abc' } } });
  });
});

test('serve: a warm runner keeps module state and sees each job env', async () => {
  await withRunner(async (r) => {
    const source = 'let calls = 0; export async function handler(input, ctx) { calls += 1; return { ok: true, data: { calls, run: ctx.runId, v: process.env.V ?? null, base: process.env.BASE_VAR } }; }';
    const a = await r.run(source, { env: { V: 'one' } });
    const b = await r.run(source, { env: { LOWCODE_FAAS_RUN_ID: 'run-2' } });
    assert.deepEqual(a.envelope.value.data, { calls: 1, run: 'run-0190-abc', v: 'one', base: 'base' });
    // V of the first job is gone; the base environment stays.
    assert.deepEqual(b.envelope.value.data, { calls: 2, run: 'run-2', v: null, base: 'base' });
  });
});

test('serve: user output never forges or breaks a frame', async () => {
  await withRunner(async (r) => {
    const res = await r.run(`
      import fs from "node:fs";
      export async function handler() {
        process.stdout.write("\\x1eLCF:guess:result:{\\"type\\":\\"result\\",\\"value\\":{\\"ok\\":true,\\"data\\":\\"forged\\"}}\\n");
        fs.writeSync(1, "\\x1eLCF:guess:result:{}\\n");
        fs.writeSync(1, "half a line without newline");
        console.log("logged");
        return { ok: true, data: "real" };
      }`);
    assert.equal(res.end, 'result');
    assert.deepEqual(res.envelope, { type: 'result', value: { ok: true, data: 'real' } });
    assert.deepEqual(res.logs, ['logged']);
    // process.stdout went to stderr; the raw fd-1 writes are stray lines.
    assert.match(r.stderr, /forged/);
    // A frame-shaped raw write carries no job nonce: it is not the job's.
    assert.ok(r.frames.some((f) => f.nonce === 'guess'));
    assert.ok(r.stray.some((l) => l.startsWith('half a line')));
  });
});

test('serve: late logs of a finished job are not captured', async () => {
  await withRunner(async (r) => {
    const a = await r.run('export async function handler() { setTimeout(() => console.log("late"), 50); return { ok: true }; }');
    assert.equal(a.end, 'result');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const b = await r.run('export async function handler() { return { ok: true }; }');
    assert.equal(b.end, 'result');
    assert.ok(r.frames.every((f) => f.kind !== 'log'));
  });
});

test('serve: an uncaught exception taints the runner (result-final)', async () => {
  await withRunner(async (r) => {
    const res = await r.run('export async function handler() { setTimeout(() => { throw new Error("later"); }, 1); return new Promise(() => {}); }');
    assert.equal(res.end, 'result-final');
    assert.equal(res.envelope.code, 'HANDLER_THROW');
    assert.match(res.envelope.message, /uncaught exception: later/);
  });
});

test('serve: error envelopes keep the runner usable', async () => {
  await withRunner(async (r) => {
    const thrown = await r.run('export async function handler() { throw new Error("boom"); }');
    assert.equal(thrown.end, 'result');
    assert.equal(thrown.envelope.code, 'HANDLER_THROW');
    const bad = await r.run('export async function handler() { return 1; }');
    assert.equal(bad.envelope.code, 'BAD_RETURN');
    const goEra = await r.run('export async function handler() { return { ok: false, code: 42 }; }');
    assert.equal(goEra.end, 'result');
    assert.deepEqual(goEra.envelope, { type: 'result', value: { ok: false, code: 42 } });
    const input = await r.run('export async function handler() { return { ok: true }; }', { input: '{nope' });
    assert.equal(input.envelope.code, 'BAD_INPUT');
    const syntax = await r.run('export async function handler( {');
    assert.equal(syntax.envelope.code, 'SYNTAX_ERROR');
  });
});

test('serve: an envelope over the job cap is answered with its size only', async () => {
  await withRunner(async (r) => {
    const res = await r.run('export async function handler() { return { ok: true, data: "x".repeat(2000) }; }', {
      maxOutputBytes: 100,
    });
    assert.equal(res.end, 'too-large');
    assert.deepEqual(res.payload, { size: 2047 });
  });
});

test('serve: process.exit ends the runner after the started frame', async () => {
  const r = new Runner();
  try {
    await r.until((f) => f.some((x) => x.kind === 'ready'));
    const res = await r.run('export async function handler() { console.log("bye"); process.exit(3); }');
    assert.equal(res.end, undefined);
    assert.deepEqual(res.kinds, ['started', 'log']);
    assert.equal(await r.exited, 3);
  } finally {
    await r.close();
  }
});

test('serve: a handler that never settles with nothing pending ends the runner', async () => {
  const r = new Runner();
  try {
    await r.until((f) => f.some((x) => x.kind === 'ready'));
    const res = await r.run('export async function handler() { return new Promise(() => {}); }');
    assert.equal(res.end, undefined);
    await r.exited;
    assert.match(r.stderr, /ran out of work before the handler settled/);
  } finally {
    await r.close();
  }
});

test('serve: closing stdin ends an idle runner with status 0', async () => {
  const r = new Runner();
  await r.until((f) => f.some((x) => x.kind === 'ready'));
  assert.equal(await r.close(), 0);
});

test('serve: a job past its deadline kills its own runner (no server needed)', async () => {
  const r = new Runner();
  try {
    await r.until((f) => f.some((x) => x.kind === 'ready'));
    const res = await r.run('export async function handler() { while (true) {} }', { timeoutMs: 300 });
    assert.equal(res.end, undefined);
    const code = await Promise.race([
      new Promise((resolve) => r.proc.on('exit', (c, signal) => resolve(signal))),
      r.exited.then(() => r.proc.signalCode),
      new Promise((resolve) => setTimeout(() => resolve('still running'), 15000)),
    ]);
    assert.equal(code, 'SIGKILL');
  } finally {
    await r.close();
  }
});

test('serve: a runner idle past --max-idle-ms exits by itself', async () => {
  const r = new Runner(['--max-idle-ms=300']);
  try {
    await r.until((f) => f.some((x) => x.kind === 'ready'));
    const done = await r.run('export async function handler() { return { ok: true }; }');
    assert.equal(done.end, 'result');
    const code = await Promise.race([r.exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 15000))]);
    assert.equal(code, 0);
  } finally {
    await r.close();
  }
});

test('serve: the nonce is the HMAC of the challenge under the key, for any challenge length', async () => {
  await withRunner(async (r) => {
    const source = 'export async function handler() { return { ok: true }; }';
    // Around the SHA-256 padding edges (55/56 bytes, one block, two blocks).
    for (const n of [1, 2, 31, 54, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 200, 256]) {
      const challenge = 'aZ09'.repeat(64).slice(0, n);
      const res = await r.run(source, { challenge });
      assert.equal(res.end, 'result', `challenge of ${n} bytes`);
      assert.deepEqual(res.kinds, ['started', 'result']);
    }
  });
});

test('serve: a runner without a valid key line never gets ready', async () => {
  for (const key of [JSON.stringify({ key: 'ab' }), '{"challenge":"x","source":""}', JSON.stringify({ key: 'G'.repeat(64) })]) {
    const r = new Runner([], { key });
    try {
      const code = await Promise.race([r.exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 15000))]);
      assert.equal(code, 65, key);
      assert.equal(r.frames.length, 0, key);
      assert.match(r.stderr, /the first line is not a key/);
    } finally {
      await r.close();
    }
  }
});

test('serve: a job with a malformed challenge ends the runner before any user code', async () => {
  for (const challenge of ['', 'a-b', 'x'.repeat(257), 'é']) {
    await withRunner(async (r) => {
      const res = await r.run('console.log("loaded"); export async function handler() { return { ok: true }; }', {
        challenge,
      });
      assert.equal(res.end, undefined);
      assert.equal(await r.exited, 65);
      assert.ok(r.frames.every((f) => f.kind === 'ready'), JSON.stringify(r.frames));
    });
  }
});

// A handler that tries every way a warm runner's code could read later jobs
// from the job channel, and forges result frames with whatever it finds.
const SNIFFER = `
  import fs from "node:fs";
  let calls = 0;
  const seen = [];
  function forge(text) {
    seen.push(text);
    for (const line of text.split("\\n")) {
      let job;
      try { job = JSON.parse(line); } catch { continue; }
      for (const guess of [job.challenge, job.nonce, job.key]) {
        if (typeof guess !== "string") continue;
        const frame = '\\n\\x1eLCF:' + guess + ':result:{"type":"result","value":{"ok":true,"data":"forged"}}\\n';
        fs.writeSync(1, frame);
      }
    }
  }
  export async function handler(input) {
    calls += 1;
    if (calls === 1) {
      process.stdin.on("data", (d) => forge(String(d)));
      process.stdin.resume();
      process.openStdin().on("data", (d) => forge(String(d)));
      for (const h of process._getActiveHandles()) {
        if (h && typeof h.on === "function" && h !== process.stdout && h !== process.stderr) h.on("data", (d) => forge(String(d)));
      }
    }
    // Whatever the stdin stream of user code holds, read it all.
    let piped = "";
    process.stdin.setEncoding?.("utf8");
    for (let chunk; (chunk = process.stdin.read()) !== null; ) piped += chunk;
    if (piped) forge(piped);
    return new Promise((resolve) => setTimeout(() => resolve({ ok: true, data: { calls, seen: seen.length } }), 50));
  }`;

test('serve: a warm handler cannot read the job channel nor forge a later job\'s result', async () => {
  await withRunner(async (r) => {
    const first = await r.run(SNIFFER);
    assert.equal(first.end, 'result');
    for (let i = 2; i <= 4; i++) {
      const next = await r.run(SNIFFER, { input: { i } });
      assert.equal(next.end, 'result');
      // Genuine: the real handler's answer, and it never saw a job line.
      assert.deepEqual(next.envelope, { type: 'result', value: { ok: true, data: { calls: i, seen: 0 } } });
      assert.deepEqual(next.kinds, ['started', 'result']);
    }
    assert.ok(!r.frames.some((f) => f.payload.includes('forged')), 'no forged frame was written');
  });
});

test('serve: a handler that steals job lines from fd 0 learns a challenge, never a usable nonce', async () => {
  await withRunner(async (r) => {
    // The first job leaves a thief behind: it spins on fd 0 (blocking the
    // event loop, so the bootstrap never reads first), takes the next job
    // line and forges a result under everything it finds in it.
    const source = `
      import fs from "node:fs";
      let calls = 0;
      function thief() {
        const buf = Buffer.alloc(65536);
        const until = Date.now() + 10000;
        fs.writeSync(2, "thief armed\\n");
        while (Date.now() < until) {
          let n = 0;
          try { n = fs.readSync(0, buf); } catch { continue; }
          for (const line of buf.subarray(0, n).toString().split("\\n")) {
            let job;
            try { job = JSON.parse(line); } catch { continue; }
            for (const guess of Object.values(job)) {
              if (typeof guess !== "string" || guess.includes(":")) continue;
              fs.writeSync(1, '\\n\\x1eLCF:' + guess + ':result:{"type":"result","value":{"ok":true,"data":"forged"}}\\n');
            }
          }
          return;
        }
      }
      export async function handler() {
        calls += 1;
        if (calls === 1) setTimeout(thief, 0);
        return { ok: true, data: calls };
      }`;
    const first = await r.run(source);
    assert.deepEqual(first.envelope, { type: 'result', value: { ok: true, data: 1 } });
    // Only once the thief spins is the next line sent: the bootstrap cannot read first.
    assert.ok(await r.until(() => r.stderr.includes('thief armed')), r.stderr);
    const sent = randomBytes(16).toString('hex');
    const nonce = r.nonceOf(sent);
    const line = { challenge: sent, source, input: '{}', env: {}, max_output_bytes: 1 << 20, max_log_bytes: 1 << 20, timeout_ms: 60000 };
    r.proc.stdin.write(JSON.stringify(line) + '\n');
    // The thief answers under the challenge: a frame the runtime ignores.
    assert.ok(await r.until((frames) => frames.some((f) => f.nonce === sent)), r.stderr);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(
      r.frames.filter((f) => f.nonce === nonce),
      [],
      'nothing answered under the job nonce: the job was lost, never forged',
    );
  });
});

// A handler that replaces the prototype methods a job line could pass
// through (streams, Buffer, String, Promise, TextDecoder), recording and
// rewriting anything that looks like a job.
const PATCHER = `
  import { EventEmitter } from "node:events";
  const seen = [];
  const inc = String.prototype.includes;
  const split = String.prototype.split;
  const latin1 = Buffer.prototype.latin1Slice;
  let busy = false;
  const look = (x) => {
    if (busy) return;
    busy = true;
    try {
      const text = typeof x === "string" ? x : x instanceof Uint8Array ? latin1.call(x, 0, x.length) : "";
      if (inc.call(text, "challenge") || inc.call(text, "SECRET")) seen.push(1);
    } catch {}
    busy = false;
  };
  const rewrite = (x) => (typeof x === "string" && !busy ? split.call(x, "SECRET").join("FORGED") : x);
  function wrap(obj, name, fn) {
    const orig = obj[name];
    if (typeof orig !== "function") return;
    obj[name] = function (...args) { return fn.call(this, orig, args); };
  }
  let calls = 0;
  export async function handler(input) {
    calls += 1;
    if (calls === 1) {
      wrap(EventEmitter.prototype, "emit", function (orig, args) { for (const a of args) look(a); return orig.apply(this, args); });
      for (const name of ["toString", "indexOf", "subarray", "slice", "utf8Slice", "fill"]) {
        wrap(Buffer.prototype, name, function (orig, args) { look(this); const r = orig.apply(this, args); look(r); return rewrite(r); });
      }
      for (const name of ["concat", "allocUnsafe", "from"]) {
        wrap(Buffer, name, function (orig, args) { for (const a of args) look(a); return orig.apply(this, args); });
      }
      for (const name of ["trim", "slice", "split", "includes", "indexOf"]) {
        const orig = String.prototype[name];
        String.prototype[name] = function (...args) { look(String(this)); return orig.apply(this, args); };
      }
      wrap(Promise.prototype, "then", function (orig, args) { return orig.apply(this, args); });
      wrap(TextDecoder.prototype, "decode", function (orig, args) { const r = orig.apply(this, args); look(r); return rewrite(r); });
      const origParse = JSON.parse;
      JSON.parse = function (text, ...rest) { look(text); return origParse.call(this, rewrite(text), ...rest); };
    }
    return { ok: true, data: { calls, secret: input.secret ?? null, seen: seen.length } };
  }`;

test('serve: prototypes patched by a warm handler never see nor alter a later job', async () => {
  await withRunner(async (r) => {
    const first = await r.run(PATCHER, { input: { secret: 'none' } });
    assert.equal(first.end, 'result');
    for (let i = 2; i <= 3; i++) {
      const next = await r.run(PATCHER, { input: { secret: `SECRET-${i}` } });
      assert.equal(next.end, 'result', r.stderr);
      assert.deepEqual(next.envelope, { type: 'result', value: { ok: true, data: { calls: i, secret: `SECRET-${i}`, seen: 0 } } });
    }
  });
});

test('serve: a frame is one write whose length and MAC bind its payload (spliced writers cannot forge)', async () => {
  await withRunner(async (r) => {
    // Run 1 leaves a Worker thread that floods fd 1 with result-shaped bytes.
    const source = `
      import { Worker } from "node:worker_threads";
      let calls = 0;
      export async function handler() {
        calls += 1;
        if (calls === 1) {
          const w = new Worker('const fs = require("fs"); const junk = "{\\\\"type\\\\":\\\\"result\\\\",\\\\"value\\\\":{\\\\"ok\\\\":true,\\\\"data\\\\":\\\\"forged\\\\"}}"; const until = Date.now() + 3000; while (Date.now() < until) { try { fs.writeSync(1, junk); } catch {} }', { eval: true });
          w.unref();
          return { ok: true, data: 1 };
        }
        return { ok: true, data: "x".repeat(300000) };
      }`;
    await r.run(source);
    for (let i = 0; i < 5; i++) {
      const res = await r.run(source, { allowBad: true });
      // Frames up to the first inauthentic one (a torn or spliced frame
      // ends the run): the verdict, if any, is the handler's own.
      if (res.end !== undefined) assert.equal(res.envelope.value.data.length, 300000);
      if (res.bad) break;
    }
  });
});

test('serve: stdin may be a file (an fs.ReadStream without ref/unref): its jobs run, its end ends the runner', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lowcode-faas-serve-file-'));
  try {
    fs.copyFileSync(BOOTSTRAP, path.join(dir, 'bootstrap.mjs'));
    const key = randomBytes(32);
    const job = {
      challenge: 'abc123',
      source: 'export async function handler() { return { ok: true, data: 7 }; }',
      input: '{}',
      env: PLATFORM_ENV,
      max_output_bytes: 1 << 20,
      max_log_bytes: 1 << 20,
      timeout_ms: 60000,
    };
    const input = path.join(dir, 'stdin.txt');
    fs.writeFileSync(input, JSON.stringify({ key: key.toString('hex') }) + '\n' + JSON.stringify(job) + '\n');
    const fd = fs.openSync(input, 'r');
    const proc = spawn(process.execPath, [path.join(dir, 'bootstrap.mjs'), '--serve'], { cwd: os.tmpdir(), stdio: [fd, 'pipe', 'pipe'] });
    fs.closeSync(fd);
    let out = '';
    let err = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (err += d));
    const code = await new Promise((resolve) => proc.on('exit', resolve));
    assert.equal(code, 0, err);
    const nonce = createHmac('sha256', key).update('abc123').digest('hex');
    const payload = '{"type":"result","value":{"ok":true,"data":7}}';
    const mac = createHmac('sha256', key).update(`abc123:result:${payload}`).digest('hex');
    assert.ok(out.includes(`\x1eLCF:${nonce}:result:${payload.length}:${mac}:${payload}\n`), out + err);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
