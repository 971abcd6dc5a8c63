// Env maps as the user types them: KEY=VALUE lines (blank lines and lines
// starting with # are skipped) or a JSON object of strings. Pure functions,
// no DOM.

const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parses env text into an object of strings; throws Error with a message. */
export function parseEnv(text) {
  const trimmed = (text || '').trim();
  if (trimmed === '') return {};
  if (trimmed.startsWith('{')) {
    let value;
    try {
      value = JSON.parse(trimmed);
    } catch (err) {
      throw new Error(`env is not valid JSON: ${err.message}`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new Error('env JSON must be an object of strings');
    }
    for (const [k, v] of Object.entries(value)) {
      if (typeof v !== 'string') throw new Error(`env value of ${k} must be a string`);
      checkKey(k);
    }
    return value;
  }
  const env = {};
  trimmed.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    if (eq < 0) throw new Error(`env line ${i + 1}: expected KEY=VALUE, got "${line}"`);
    const key = line.slice(0, eq).trim();
    checkKey(key, i + 1);
    env[key] = line.slice(eq + 1);
  });
  return env;
}

function checkKey(key, line) {
  const where = line ? `env line ${line}: ` : '';
  if (!KEY.test(key)) throw new Error(`${where}invalid key "${key}"`);
  if (key === 'PORT' || key.startsWith('LOWCODE_FAAS_')) {
    throw new Error(`${where}key ${key} is reserved by the platform`);
  }
}

/** Formats an env object as KEY=VALUE lines. */
export function formatEnv(env) {
  return Object.entries(env || {})
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');
}

/** What a function response shows for every env value when the server
 * redacts env (LOWCODE_FAAS_REDACT_ENV). */
export const REDACTED = '***';

/**
 * The `env` of a save from the env box and the env the box was loaded with:
 * `undefined` (the field is left out, so the stored env is kept) when the
 * box is unchanged, which also keeps a redacted env from being written
 * back as `***`; otherwise the parsed box. A key still showing `***` as
 * loaded is refused: its real value is hidden, type it again or remove it.
 */
export function envForSave(text, loaded) {
  if ((text || '').trim() === formatEnv(loaded).trim()) return undefined;
  const env = parseEnv(text);
  for (const [k, v] of Object.entries(env)) {
    if (v === REDACTED && (loaded || {})[k] === REDACTED) {
      throw new Error(`the value of ${k} is hidden by the server: type it again or remove the line`);
    }
  }
  return env;
}
