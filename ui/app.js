// lowcode-faas playground: collections, functions, a CodeMirror editor and
// an invoke panel over the dispatcher's JSON API. No inline script or style:
// the page runs under `script-src 'self'; style-src 'self'`.

import { ApiError, call, collectionEnvPath, functionPath, functionsPath, getToken, setToken, setTokenPrompt, withQuery } from './api.js';
import { envForSave, formatEnv, parseEnv } from './env.js';

const HISTORY_SIZE = 5;
const TEMPLATE = `export async function handler(input, context) {
  console.log('called with', input);
  return { ok: true, data: { hello: input.name ?? 'world' } };
}
`;

const $ = (id) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing element #${id}`);
  return el;
};

const state = {
  collection: '', // '' is the root
  collections: [],
  functions: [],
  fn: null, // the open function (current version), as the API returns it
  viewing: null, // a pinned version shown read-only, or null
  history: new Map(), // function key -> last invokes, newest first
  invokes: 0, // invokes sent from this page (the result panel's data-seq)
};

// ---------------------------------------------------------------------------
// Small DOM helpers (textContent only: API data is never parsed as HTML).

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : String(c));
  return e;
}

function show(node, visible) {
  node.hidden = !visible;
}

function status(message) {
  $('status-line').textContent = message;
}

function showError(err) {
  const code = err instanceof ApiError ? err.code : 'CLIENT_ERROR';
  const prefix = err instanceof ApiError && err.status ? `HTTP ${err.status}: ` : '';
  $('error-code').textContent = code;
  $('error-message').textContent = prefix + err.message;
  show($('error-banner'), true);
  status('');
}

function clearError() {
  show($('error-banner'), false);
}

/** Runs an async UI action; any error goes to the banner. */
async function guarded(action) {
  try {
    clearError();
    await action();
  } catch (err) {
    showError(err);
  }
}

function collectionLabel(path) {
  return path ? path : '/ (root)';
}

function fnKey(collection, name) {
  return `${collection}\u0000${name}`;
}

// ---------------------------------------------------------------------------
// Token dialog (no prompt()).

function askTokenDialog(reason) {
  const dialog = $('token-dialog');
  $('token-reason').textContent = reason;
  $('token-input').value = '';
  return new Promise((resolve) => {
    const form = $('token-form');
    const done = (value) => {
      form.removeEventListener('submit', onSubmit);
      $('token-cancel').removeEventListener('click', onCancel);
      dialog.removeEventListener('cancel', onCancel);
      if (dialog.open) dialog.close();
      resolve(value);
    };
    const onSubmit = (e) => {
      e.preventDefault();
      const t = $('token-input').value.trim();
      if (t) done(t);
    };
    const onCancel = (e) => {
      e.preventDefault();
      done(null);
    };
    form.addEventListener('submit', onSubmit);
    $('token-cancel').addEventListener('click', onCancel);
    dialog.addEventListener('cancel', onCancel);
    dialog.showModal();
    $('token-input').focus();
  });
}

// ---------------------------------------------------------------------------
// Editor.

let editor = null;

function setupEditor() {
  const host = $('editor');
  if (typeof window.CodeMirror !== 'function') {
    // The vendored script did not load: fall back to a plain textarea.
    const ta = el('textarea', { id: 'editor-fallback', class: 'editor-fallback', spellcheck: 'false' });
    host.append(ta);
    editor = {
      getValue: () => ta.value,
      setValue: (v) => { ta.value = v; },
      setOption: (k, v) => { if (k === 'readOnly') ta.readOnly = Boolean(v); },
      refresh: () => {},
    };
    showError(new Error('CodeMirror did not load; using a plain text box'));
    return;
  }
  editor = window.CodeMirror(host, {
    value: '',
    mode: 'javascript',
    lineNumbers: true,
    matchBrackets: true,
    indentUnit: 2,
    tabSize: 2,
    extraKeys: {
      Tab: (cm) => (cm.somethingSelected() ? cm.indentSelection('add') : cm.replaceSelection('  ')),
      'Shift-Tab': (cm) => cm.indentSelection('subtract'),
    },
  });
  // For the browser test and for debugging: the editor's instance.
  window.playgroundEditor = editor;
}

// ---------------------------------------------------------------------------
// Collections.

async function loadCollections() {
  const { data } = await call('GET', '/collections');
  state.collections = Array.isArray(data) ? data : [];
  renderCollections();
}

function renderCollections() {
  const tree = $('collection-tree');
  tree.replaceChildren();
  const item = (path, label) => {
    const btn = el('button', {
      type: 'button',
      class: `tree-item${path === state.collection ? ' selected' : ''}`,
      'data-testid': 'collection-item',
      'data-path': path,
      'aria-current': path === state.collection ? 'true' : null,
      onclick: () => guarded(() => selectCollection(path)),
    }, label);
    return el('li', {}, btn);
  };
  const root = item('', '/ (root)');
  const rootList = el('ul');
  root.append(rootList);
  tree.append(root);
  // Listing is sorted by path, parents before children.
  const lists = new Map([['', rootList]]);
  for (const c of state.collections) {
    const path = c.path;
    const cut = path.lastIndexOf('/');
    const parent = cut < 0 ? '' : path.slice(0, cut);
    const name = cut < 0 ? path : path.slice(cut + 1);
    const li = item(path, name);
    const sub = el('ul');
    li.append(sub);
    lists.set(path, sub);
    (lists.get(parent) || rootList).append(li);
  }
}

async function selectCollection(path) {
  state.collection = path;
  $('current-collection').textContent = collectionLabel(path);
  $('collection-env-name').textContent = collectionLabel(path);
  $('collection-env').value = '';
  renderCollections();
  closeFunction();
  await loadFunctions();
}

async function createCollection(e) {
  e.preventDefault();
  const path = $('new-collection-path').value.trim();
  const env = parseEnv($('new-collection-env').value);
  const { data } = await call('POST', '/collections', { path, env });
  status(`created collection ${data.path}`);
  $('new-collection-path').value = '';
  $('new-collection-env').value = '';
  await loadCollections();
  await selectCollection(data.path);
}

async function saveCollectionEnv(e) {
  e.preventDefault();
  const env = parseEnv($('collection-env').value);
  await call('PUT', collectionEnvPath(state.collection), { env });
  status(`env of ${collectionLabel(state.collection)} saved (${Object.keys(env).length} variables)`);
}

// ---------------------------------------------------------------------------
// Functions.

async function loadFunctions() {
  const { data } = await call('GET', functionsPath(state.collection));
  state.functions = Array.isArray(data) ? data : [];
  renderFunctions();
}

function renderFunctions() {
  const list = $('function-list');
  list.replaceChildren();
  if (state.functions.length === 0) {
    list.append(el('li', { class: 'muted small' }, 'No functions yet.'));
  }
  for (const f of state.functions) {
    const open = state.fn && state.fn.name === f.name;
    list.append(el('li', {},
      el('button', {
        type: 'button',
        class: `list-item${open ? ' selected' : ''}`,
        'data-testid': 'function-item',
        'data-name': f.name,
        onclick: () => guarded(() => openFunction(f.name)),
      }, el('span', {}, f.name), el('span', { class: 'badge' }, `v${f.version}`))));
  }
}

// With no function open the editor holds a draft: Create saves it (and the
// env box) as version 1 of the new function.
async function createFunction(e) {
  e.preventDefault();
  const name = $('new-function-name').value.trim();
  const source_code = state.fn ? TEMPLATE : editor.getValue();
  const env = state.fn ? {} : parseEnv($('function-env').value);
  const { data } = await call('POST', functionsPath(state.collection), { name, source_code, env });
  $('new-function-name').value = '';
  status(`created ${data.id} version ${data.version}`);
  await loadFunctions();
  await openFunction(data.name);
}

function closeFunction() {
  state.fn = null;
  state.viewing = null;
  $('function-title').textContent = 'New function (draft: name it and press Create)';
  show($('function-version'), false);
  show($('viewing-version'), false);
  editor.setValue(TEMPLATE);
  editor.setOption('readOnly', false);
  $('function-env').value = '';
  $('versions-list').replaceChildren();
  for (const id of ['save-function', 'delete-function', 'invoke-button']) $(id).disabled = true;
  show($('confirm-delete'), false);
  show($('invoke-result'), false);
  renderHistory();
}

async function openFunction(name) {
  const { data } = await call('GET', functionPath(state.collection, name));
  showFunction(data);
  renderFunctions();
  renderHistory();
  await loadVersions();
}

function showFunction(f) {
  state.fn = f;
  state.viewing = null;
  $('function-title').textContent = f.id;
  $('function-version').textContent = `v${f.version}`;
  show($('function-version'), true);
  show($('viewing-version'), false);
  editor.setOption('readOnly', false);
  editor.setValue(f.source_code || '');
  $('function-env').value = formatEnv(f.env);
  for (const id of ['save-function', 'delete-function', 'invoke-button']) $(id).disabled = false;
  show($('confirm-delete'), false);
  editor.refresh();
}

async function saveFunction() {
  if (!state.fn) {
    status('a draft: name the new function and press Create');
    return;
  }
  if (state.viewing) {
    status('viewing an old version: go back to the current one to save');
    return;
  }
  // Left out when the box is unchanged: the stored env is kept (and a
  // redacted one is never written back as ***).
  const env = envForSave($('function-env').value, state.fn.env);
  const { data } = await call('PUT', functionPath(state.collection, state.fn.name), {
    source_code: editor.getValue(),
    env,
  });
  showFunction(data);
  status(`saved ${data.id} version ${data.version}`);
  await loadFunctions();
  await loadVersions();
}

async function deleteFunction() {
  if (!state.fn) return;
  const { name, id } = state.fn;
  await call('DELETE', functionPath(state.collection, name));
  state.history.delete(fnKey(state.collection, name));
  closeFunction();
  status(`deleted ${id}`);
  await loadFunctions();
}

async function loadVersions() {
  if (!state.fn) return;
  const { data } = await call('GET', functionPath(state.collection, state.fn.name, 'versions'));
  const list = $('versions-list');
  list.replaceChildren();
  for (const v of Array.isArray(data) ? data : []) {
    list.append(el('li', {},
      el('button', {
        type: 'button',
        class: 'list-item',
        'data-testid': 'version-item',
        'data-version': String(v.version),
        onclick: () => guarded(() => viewVersion(v.version)),
      }, el('span', {}, `v${v.version}`), el('span', { class: 'muted' }, v.created_at || ''))));
  }
}

async function viewVersion(version) {
  if (!state.fn) return;
  if (version === state.fn.version) {
    showFunction(state.fn);
    return;
  }
  const name = state.fn.name;
  const { data } = await call('GET', withQuery(functionPath(state.collection, name), 'version', version));
  state.viewing = data;
  $('viewing-version-number').textContent = String(data.version);
  show($('viewing-version'), true);
  editor.setValue(data.source_code || '');
  editor.setOption('readOnly', true);
  $('save-function').disabled = true;
}

async function pullFunction(e) {
  e.preventDefault();
  if (!state.fn) throw new Error('open a function first');
  const source_url = $('pull-url').value.trim();
  const { data } = await call('POST', functionPath(state.collection, state.fn.name, 'pull'), { source_url });
  showFunction(data);
  status(`pulled ${data.id} version ${data.version}`);
  await loadFunctions();
  await loadVersions();
}

// ---------------------------------------------------------------------------
// Invoke.

function readInvokeForm() {
  const inputError = $('invoke-input-error');
  show(inputError, false);
  let input;
  try {
    input = JSON.parse($('invoke-input').value.trim() || '{}');
  } catch (err) {
    inputError.textContent = `Input is not valid JSON: ${err.message}`;
    show(inputError, true);
    return null;
  }
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    inputError.textContent = 'Input must be a JSON object, like {"name": "Ada"}';
    show(inputError, true);
    return null;
  }
  const body = { input, include_logs: true };
  const env = parseEnv($('invoke-env').value);
  if (Object.keys(env).length) body.env = env;
  for (const [id, field, what] of [['invoke-timeout', 'timeout_ms', 'Timeout'], ['invoke-version', 'version', 'Version']]) {
    const raw = $(id).value.trim();
    if (!raw) continue;
    if (!/^[1-9][0-9]*$/.test(raw)) {
      inputError.textContent = `${what} must be a whole number ≥ 1, got "${raw}"`;
      show(inputError, true);
      return null;
    }
    body[field] = Number(raw);
  }
  return body;
}

async function invoke() {
  if (!state.fn) return;
  const body = readInvokeForm();
  if (!body) return;
  const { name } = state.fn;
  const collection = state.collection;
  $('invoke-button').disabled = true;
  status(`invoking ${name}…`);
  let entry;
  try {
    const { status: http, data } = await call('POST', functionPath(collection, name, 'invoke'), body);
    entry = { http, result: data || {}, at: new Date(), input: body.input, version: body.version };
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    entry = { http: err.status, error: err, at: new Date(), input: body.input, version: body.version };
    showError(err);
  } finally {
    $('invoke-button').disabled = !state.fn;
  }
  state.invokes += 1;
  entry.seq = state.invokes;
  const key = fnKey(collection, name);
  const list = [entry, ...(state.history.get(key) || [])].slice(0, HISTORY_SIZE);
  state.history.set(key, list);
  showResult(entry);
  renderHistory();
  if (!entry.error) status(`${name}: ${entry.result.status || 'done'} in ${entry.result.duration_ms ?? '?'} ms`);
}

function showResult(entry) {
  show($('invoke-result'), true);
  $('invoke-result').dataset.seq = String(entry.seq);
  const r = entry.result || {};
  $('invoke-http-status').textContent = entry.http ? String(entry.http) : 'no answer';
  $('invoke-status').textContent = entry.error ? 'not run' : r.status || '';
  $('invoke-status').className = r.status === 'success' ? 'ok' : 'bad';
  $('invoke-error-code').textContent = entry.error ? entry.error.code : r.error_code || '–';
  $('invoke-duration').textContent = r.duration_ms !== undefined ? `${r.duration_ms} ms` : '–';
  $('invoke-start-kind').textContent = r.start_kind || '–';
  $('invoke-deployment').textContent = r.deployment_version !== undefined ? `v${r.deployment_version}` : '–';
  const message = entry.error ? entry.error.message : r.error_message;
  $('invoke-error-message').textContent = message || '';
  show($('invoke-error-message'), Boolean(message));
  $('invoke-output').textContent = entry.error
    ? JSON.stringify({ error: entry.error.message, code: entry.error.code }, null, 2)
    : JSON.stringify(r.output, null, 2) ?? '';
  const logs = $('invoke-logs');
  logs.replaceChildren();
  const entries = Array.isArray(r.logs) ? r.logs : [];
  for (const l of entries) {
    logs.append(el('li', { class: `log-${l.level || 'log'}`, 'data-testid': 'log-line' },
      el('span', { class: 'muted' }, l.time || l.ts || ''), ' ',
      el('span', { class: 'level' }, l.level || l.stream || 'log'), ' ',
      el('span', { class: 'message' }, l.message ?? '')));
  }
  let note = '';
  if (!Array.isArray(r.logs) && !entry.error) note = '(the server sent no logs)';
  else if (entries.length === 0 && !entry.error) note = '(none)';
  if (r.logs_truncated) note = '(truncated)';
  $('invoke-logs-note').textContent = note;
}

function renderHistory() {
  const list = $('invoke-history');
  list.replaceChildren();
  if (!state.fn) return;
  for (const entry of state.history.get(fnKey(state.collection, state.fn.name)) || []) {
    const r = entry.result || {};
    const outcome = entry.error ? entry.error.code : r.error_code || r.status || '?';
    const pin = entry.version ? ` v${entry.version}` : '';
    list.append(el('li', {},
      el('button', {
        type: 'button',
        class: 'list-item',
        'data-testid': 'history-item',
        onclick: () => showResult(entry),
      },
      el('span', {}, `${entry.at.toLocaleTimeString()}${pin}`),
      el('span', { class: entry.error || r.status !== 'success' ? 'bad' : 'ok' }, outcome),
      el('span', { class: 'muted' }, r.duration_ms !== undefined ? `${r.duration_ms} ms` : ''))));
  }
}

// ---------------------------------------------------------------------------
// Wiring.

function onKeyDown(e) {
  if (!(e.ctrlKey || e.metaKey)) return;
  if (e.key === 's' || e.key === 'S') {
    e.preventDefault();
    e.stopPropagation();
    guarded(saveFunction);
  } else if (e.key === 'Enter') {
    e.preventDefault();
    e.stopPropagation();
    guarded(invoke);
  }
}

function main() {
  setupEditor();
  setTokenPrompt(askTokenDialog);
  $('error-dismiss').addEventListener('click', clearError);
  $('token-button').addEventListener('click', () => guarded(async () => {
    const t = await askTokenDialog(getToken() ? 'Replace the API token.' : 'Set the API token.');
    if (t) {
      setToken(t);
      status('token saved for this tab');
      await loadCollections();
    }
  }));
  $('new-collection-form').addEventListener('submit', (e) => guarded(() => createCollection(e)));
  $('collection-env-form').addEventListener('submit', (e) => guarded(() => saveCollectionEnv(e)));
  $('new-function-form').addEventListener('submit', (e) => guarded(() => createFunction(e)));
  $('save-function').addEventListener('click', () => guarded(saveFunction));
  $('delete-function').addEventListener('click', () => show($('confirm-delete'), true));
  $('confirm-delete-no').addEventListener('click', () => show($('confirm-delete'), false));
  $('confirm-delete-yes').addEventListener('click', () => guarded(deleteFunction));
  $('back-to-current').addEventListener('click', () => { if (state.fn) showFunction(state.fn); });
  $('pull-form').addEventListener('submit', (e) => guarded(() => pullFunction(e)));
  $('invoke-form').addEventListener('submit', (e) => { e.preventDefault(); guarded(invoke); });
  document.addEventListener('keydown', onKeyDown, true);
  closeFunction();
  renderCollections();
  guarded(async () => {
    await loadCollections();
    await loadFunctions();
    status('ready');
  });
}

main();
