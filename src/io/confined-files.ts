/**
 * Reading the files a model.json names without letting it name anything else (Node only). A
 * manifest is untrusted input: its shard paths must stay inside the model's folder, so a path is
 * refused before any read when it
 * - is absolute (POSIX or Windows), carries a URL scheme, or has a `..` segment;
 * - resolves, through symlinks, to a place outside the folder (checked on the real path);
 * - is not a regular file (a device such as /dev/zero, a fifo, a folder).
 * A file is then read through one open handle, checked again with fstat to be the file that was
 * checked, and read for exactly its expected size: a file that is shorter, longer, or grows while
 * being read is refused, and nothing beyond that size is read. Sizes are only ever reported for
 * files inside the folder.
 *
 * `node:fs` is loaded on demand (platform/node-builtin.ts) so that browser bundles never resolve it.
 */
import { InvalidArgumentError } from '../errors.js';
import { nodeBuiltin } from '../platform/node-builtin.js';

async function nodeModules() {
  const [fs, path] = await Promise.all([nodeBuiltin('fs/promises', 'a model file path'), nodeBuiltin('path', 'a model file path')]);
  return { fs, path };
}

/** A file inside the folder: its real path and what stat said about it. */
export interface ConfinedFile {
  /** The path as written in the manifest. */
  readonly name: string;
  readonly realPath: string;
  readonly size: number;
  readonly dev: number;
  readonly ino: number;
}

/** True for a path that is absolute on POSIX or Windows, or that carries a URL scheme ('http:', 'file:', 'C:'). */
function isAbsoluteOrScheme(p: string, path: Awaited<ReturnType<typeof nodeModules>>['path']): boolean {
  return path.posix.isAbsolute(p) || path.win32.isAbsolute(p) || /^[A-Za-z][A-Za-z0-9+.-]*:/.test(p);
}

/**
 * The real path of `folder` (symlinks resolved), the root every named file must stay under.
 *
 * @throws InvalidArgumentError naming `where` when the folder cannot be resolved.
 */
export async function realFolder(folder: string, where: string): Promise<string> {
  const { fs } = await nodeModules();
  try {
    return await fs.realpath(folder);
  } catch {
    throw new InvalidArgumentError(`${where}: the folder '${folder}' cannot be resolved`);
  }
}

/**
 * Resolves `name` (a path relative to `root`, the real path of a folder) to a regular file
 * inside `root`, without opening it.
 *
 * @throws InvalidArgumentError naming `where` and `name` for every refusal listed in the file comment.
 */
export async function resolveInside(root: string, name: string, where: string): Promise<ConfinedFile> {
  const { fs, path } = await nodeModules();
  const refuse = (why: string) => new InvalidArgumentError(`${where}: the weights path '${name}' ${why}; weight files must sit in the model's folder and be named relative to it (as model.save writes them)`);
  if (typeof name !== 'string' || name.length === 0 || name.includes('\0')) throw refuse('is not a file name');
  if (isAbsoluteOrScheme(name, path)) throw refuse('is absolute');
  if (name.split(/[\\/]/).includes('..')) throw refuse("contains '..'");
  let realPath: string;
  try {
    realPath = await fs.realpath(path.resolve(root, name));
  } catch {
    throw refuse('does not exist (or cannot be resolved) in the folder');
  }
  if (!realPath.startsWith(root.endsWith(path.sep) ? root : root + path.sep)) throw refuse('leads out of the folder through a symbolic link');
  const st = await fs.stat(realPath).catch(() => undefined);
  if (!st) throw refuse('cannot be read');
  if (!st.isFile()) throw refuse(`is not a regular file (${st.isDirectory() ? 'a folder' : st.isFIFO() ? 'a fifo' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : 'a special file'})`);
  return { name, realPath, size: st.size, dev: st.dev, ino: st.ino };
}

/**
 * The bytes of `file` (from `resolveInside`), exactly `file.size` of them, into `into` at
 * `offset`; refuses a file swapped or resized since it was checked.
 *
 * @throws InvalidArgumentError naming `where` and the file.
 */
export async function readConfined(file: ConfinedFile, into: Uint8Array, offset: number, where: string): Promise<void> {
  const { fs } = await nodeModules();
  const { constants } = fs;
  // O_NOFOLLOW: the real path has no symlink left, so one appearing now is a swap; O_NONBLOCK: a
  // fifo put in its place must not block the open.
  const flags = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);
  let handle: Awaited<ReturnType<typeof fs.open>> | undefined;
  const changed = () => new InvalidArgumentError(`${where}: the file '${file.name}' changed while it was being read; load again once it is written`);
  try {
    handle = await fs.open(file.realPath, flags).catch(() => {
      throw new InvalidArgumentError(`${where}: the file '${file.name}' cannot be opened`);
    });
    const st = await handle.stat();
    if (!st.isFile() || st.dev !== file.dev || st.ino !== file.ino || st.size !== file.size) throw changed();
    let done = 0;
    while (done < file.size) {
      const { bytesRead } = await handle.read(into, offset + done, file.size - done, done);
      if (bytesRead === 0) throw changed();
      done += bytesRead;
    }
    const probe = new Uint8Array(1);
    if ((await handle.read(probe, 0, 1, file.size)).bytesRead !== 0) throw changed();
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/**
 * Reads a small text file (a model.json) of at most `maxBytes`, refusing anything but a regular file.
 *
 * @throws InvalidArgumentError naming `where`.
 */
export async function readBoundedText(filePath: string, maxBytes: number, where: string): Promise<string> {
  const { fs } = await nodeModules();
  const st = await fs.stat(filePath).catch(() => undefined);
  if (!st) throw new InvalidArgumentError(`${where}: cannot read '${filePath}' (expected a model.json written by model.save)`);
  if (!st.isFile()) throw new InvalidArgumentError(`${where}: '${filePath}' is not a regular file (expected a model.json written by model.save)`);
  if (st.size > maxBytes) throw new InvalidArgumentError(`${where}: '${filePath}' has ${st.size} bytes, more than the ${maxBytes} a model.json may have`);
  const bytes = new Uint8Array(st.size);
  await readConfined({ name: filePath, realPath: await fs.realpath(filePath), size: st.size, dev: st.dev, ino: st.ino }, bytes, 0, where);
  return new TextDecoder('utf-8').decode(bytes);
}
