/**
 * Writing saved bytes to a file path (Node): atomically (a temporary file in the same folder,
 * fsync, rename; see io/atomic-write.ts), so a save killed at any moment leaves the previous file
 * whole, with file-system errors as PersistenceErrors naming the path. Kept apart from the rest
 * of persistence so that it loads without tfjs.
 */
import { writeFileAtomic } from '../io/atomic-write.js';
import { PersistenceError } from './format.js';

/** Writes `bytes` to `path` atomically, or throws PersistenceError naming the path. */
export async function writeSavedFile(path: string, bytes: Uint8Array): Promise<void> {
  try {
    await writeFileAtomic(path, bytes);
  } catch (e) {
    throw new PersistenceError(`save: cannot write '${path}': ${(e as Error).message}`);
  }
}
