/**
 * Atomic file writes for Node: the bytes go to a temporary file in the target's own folder, are
 * flushed to disk (fsync), and the temporary file is renamed over the target. A rename within one
 * folder is atomic on POSIX file systems, so a reader (or a process killed mid-write) sees either
 * the previous file whole or the new one whole, never a mixture.
 *
 * `node:fs` is loaded on demand (platform/node-builtin.ts) so that browser bundles never resolve it.
 */

import { nodeBuiltin } from '../platform/node-builtin.js';

/** Writes `data` to `path` atomically; on any failure the temporary file is removed and the previous file, if any, is left untouched. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const [fs, nodePath, crypto] = await Promise.all([nodeBuiltin('fs/promises', 'writing a file'), nodeBuiltin('path', 'writing a file'), nodeBuiltin('crypto', 'writing a file')]);
  const dir = nodePath.dirname(path);
  const temp = nodePath.join(dir, `.${nodePath.basename(path)}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  let handle: Awaited<ReturnType<typeof fs.open>> | undefined;
  try {
    // 'wx': never follow or reuse an existing file at the temporary name.
    handle = await fs.open(temp, 'wx', 0o644);
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.rename(temp, path);
  } catch (e) {
    if (handle) await handle.close().catch(() => undefined);
    await fs.rm(temp, { force: true }).catch(() => undefined);
    throw e;
  }
  // Make the rename itself durable; not every platform lets a folder be opened (Windows), so best effort.
  try {
    const dh = await fs.open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch {
    /* the data is already in place; only the durability of the folder entry is not guaranteed here */
  }
}
