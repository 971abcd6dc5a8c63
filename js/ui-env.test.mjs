// The playground's pure env helpers (ui/env.js), here so that `node --test js/`
// runs them and ui/ holds only the files it serves.
import test from 'node:test';
import assert from 'node:assert/strict';

import { envForSave, formatEnv, parseEnv } from '../ui/env.js';

test('an unchanged env box keeps the stored env (nothing is sent)', () => {
  const loaded = { A: '***', B: '***' };
  assert.equal(envForSave(formatEnv(loaded), loaded), undefined);
  assert.equal(envForSave(`${formatEnv(loaded)}\n`, loaded), undefined);
  assert.equal(envForSave('', {}), undefined);
});

test('an edited env box is sent, but a value still hidden is refused', () => {
  assert.deepEqual(envForSave('A=1\nB=2', { A: '***', B: '***' }), { A: '1', B: '2' });
  assert.deepEqual(envForSave('A=1', { A: '***', B: '***' }), { A: '1' });
  assert.deepEqual(envForSave('', { A: 'x' }), {});
  assert.throws(() => envForSave('A=1\nB=***', { A: '***', B: '***' }), /B is hidden/);
  assert.deepEqual(envForSave('A=***', { A: 'plain' }), { A: '***' });
});

test('parseEnv and formatEnv round-trip', () => {
  assert.deepEqual(parseEnv(formatEnv({ A: '1', B: 'x=y' })), { A: '1', B: 'x=y' });
});
