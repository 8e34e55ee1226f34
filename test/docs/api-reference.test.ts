/**
 * The API reference builds from the TSDoc of the public surface (src/index.ts, src/kernels.ts,
 * src/engine.ts) with no error and nothing public left undocumented: every exported declaration
 * and every constructor, method, accessor and property of an exported class or interface
 * (typedoc also warns when a public signature references a type that is not exported).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

test('typedoc builds the API reference with 0 errors, no unexported public types and no undocumented declaration or member', () => {
  const r = spawnSync(process.execPath, ['node_modules/typedoc/bin/typedoc', '--emit', 'none'], { encoding: 'utf8' });
  const out = `${r.stdout}${r.stderr}`;
  assert.equal(r.status, 0, out);
  // typedoc prints its summary ("Found 0 errors and N warnings") only when it has something to report.
  assert.ok(out.trim() === '' || /Found 0 errors/.test(out), out);
  assert.doesNotMatch(out, /is referenced by .* but not included in the documentation/, out);
  // typedoc.json turns on the not-documented check for every exported declaration (class,
  // interface, type alias, variable, enum, function) of the entry points and for their members
  // (constructors, methods, accessors, properties, members of inline object types).
  assert.doesNotMatch(out, /does not have any documentation/, out);
});
