/**
 * `nngeometry --help` lists every flag each command accepts, every representation and every
 * variant, and says what --quiet does; `--version` prints the package's version.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { MONTE_CARLO_VARIANTS, VARIANTS } from '../../src/index.js';
import { helpText, packageVersion } from '../../src/cli/help.js';
import { main, OPTIONS, USAGES } from '../../src/cli/main.js';
import { REPRESENTATIONS } from '../../src/cli/representations.js';

const help = helpText(USAGES);
/** The flags part of the help (the usage lines above it would list a flag even without its description). */
const flags = help.slice(help.indexOf('\nFlags:'), help.indexOf('\nRepresentations'));

test('--help describes every flag of every command', () => {
  for (const [command, options] of Object.entries(OPTIONS)) {
    for (const name of Object.keys(options)) assert.match(flags, new RegExp(`--${name}\\b`), `${command} --${name}`);
  }
  assert.match(flags, /--quiet\s+no progress bars on stderr/);
  assert.match(flags, /--version/);
});

test('--help lists every representation and every variant with a description', () => {
  for (const r of REPRESENTATIONS) assert.match(help, new RegExp(`\\n  ${r.name}\\s+\\S`), r.name);
  for (const v of new Set<string>([...VARIANTS, ...MONTE_CARLO_VARIANTS])) assert.match(help, new RegExp(`\\n  ${v}\\s+\\S`), v);
  assert.match(help, /classif_probs\s+the model ends in a softmax/);
});

test('--version prints the version of package.json and exits 0', async () => {
  const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  assert.equal(packageVersion(), version);
  const logged: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void logged.push(a.join(' '));
  try {
    assert.equal(await main(['--version']), 0);
    assert.equal(await main(['--help']), 0);
  } finally {
    console.log = log;
  }
  assert.equal(logged[0], version);
  assert.equal(logged[1], help);
});

test('a Kronecker-factored representation on an LSTM is refused with the way out: ekfac-blockdiag (--ignore-unsupported does not skip it)', async () => {
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { tf } = await import('../../src/tf.js');
  const { saveModel } = await import('../../src/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'nngeometry-help-'));
  const model = tf.sequential({ layers: [tf.layers.lstm({ units: 3, inputShape: [2, 2] }), tf.layers.dense({ units: 2 })] });
  const errors: string[] = [];
  const error = console.error;
  try {
    await saveModel(model, join(dir, 'm'));
    writeFileSync(join(dir, 'x.json'), JSON.stringify([[[0.1, 0.2], [0.3, 0.4]], [[0.5, -0.1], [0.2, 0.0]]]));
    console.error = (...a: unknown[]) => void errors.push(a.join(' '));
    for (const flags of [[], ['--ignore-unsupported']]) {
      const code = await main(['fim', '--model', join(dir, 'm'), '--data', join(dir, 'x.json'), '--representation', 'kfac', '--backend', 'cpu', '--quiet', ...flags]);
      assert.equal(code, 2);
    }
  } finally {
    console.error = error;
    model.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
  const refusals = errors.filter((e) => e.startsWith('nngeometry:'));
  assert.equal(refusals.length, 2, errors.join('\n'));
  for (const e of refusals) assert.match(e, /no Kronecker factors.*--representation ekfac-blockdiag/);
});
