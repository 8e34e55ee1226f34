/**
 * Child process of atomic-save.test.ts without tfjs (it starts in a fraction of a second):
 * writes the saved files argv[3], argv[4], ... (serialized by the test) to argv[2] in turn
 * through `save`'s own file writer (writeSavedFile), printing "saved <i>" after each write; the
 * test kills it with SIGKILL at chosen moments.
 */
import { readFileSync } from 'node:fs';
import { writeSavedFile } from '../../src/persistence/write-path.js';

async function main(): Promise<void> {
  const [target, ...sources] = process.argv.slice(2) as [string, ...string[]];
  const files = sources.map((s) => new Uint8Array(readFileSync(s)));
  for (let i = 0; ; i = (i + 1) % files.length) {
    await writeSavedFile(target, files[i]!);
    process.stdout.write(`saved ${i}\n`);
  }
}

void main().catch((e) => {
  process.stderr.write(String(e));
  process.exit(1);
});
