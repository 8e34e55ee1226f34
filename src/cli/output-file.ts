/**
 * The files the CLI writes (`--json`, `--report`): checked for writability before any
 * computation starts, so that a typo in a folder name costs a one-line error and not a whole
 * run, and written atomically (io/atomic-write.ts), so that an interrupted run leaves the
 * previous file whole. Node only.
 */
import { accessSync, closeSync, constants, fsyncSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { writeFileAtomic } from '../io/atomic-write.js';
import { CliError } from './errors.js';

/**
 * Checks that `path` can receive the output of `flag`: its folder exists, is a folder and is
 * writable, and the path itself is not a folder or another non-regular file.
 *
 * @throws CliError (exit code 2) naming the flag, the path and what to change.
 */
export function checkOutputFile(path: string, flag: string): void {
  if (path.trim() === '') throw new CliError(`${flag} needs a file name`);
  const target = resolve(path);
  const folder = dirname(target);
  const folderStat = statSync(folder, { throwIfNoEntry: false });
  if (!folderStat) throw new CliError(`${flag}: the folder ${folder} does not exist; create it first or choose another path for ${path}`);
  if (!folderStat.isDirectory()) throw new CliError(`${flag}: ${folder} is not a folder, so ${path} cannot be written`);
  try {
    accessSync(folder, constants.W_OK);
  } catch {
    throw new CliError(`${flag}: the folder ${folder} is not writable; choose another path for ${path}`);
  }
  const st = statSync(target, { throwIfNoEntry: false });
  if (st?.isDirectory()) throw new CliError(`${flag}: ${path} is a folder; give a file name such as ${resolve(target, flag === '--report' ? 'report.html' : 'out.json')}`);
  if (st && !st.isFile()) throw new CliError(`${flag}: ${path} exists and is not a regular file; choose another path`);
}

/**
 * Checks every output flag that is set (see `checkOutputFile`), and that no two name the same file.
 *
 * @example checkOutputFiles({ '--json': v.json, '--report': v.report });
 */
export function checkOutputFiles(outputs: Record<string, string | undefined>): void {
  const seen = new Map<string, string>();
  for (const [flag, path] of Object.entries(outputs)) {
    if (path === undefined) continue;
    checkOutputFile(path, flag);
    const other = seen.get(resolve(path));
    if (other) throw new CliError(`${flag} and ${other} name the same file ${path}; give each its own`);
    seen.set(resolve(path), flag);
  }
}

/**
 * Writes `data` to `path` atomically.
 *
 * @throws CliError naming the flag when the file system refuses.
 */
export async function writeOutputFile(path: string, flag: string, data: string | Uint8Array): Promise<void> {
  try {
    await writeFileAtomic(path, data);
  } catch (e) {
    throw new CliError(`${flag}: could not write ${path} (${(e as Error).message.split('\n')[0]})`);
  }
}

/**
 * `writeOutputFile` for synchronous code: the same steps as io/atomic-write.ts (a temporary file
 * in the target's folder, fsync, rename over the target), with node:fs's synchronous calls.
 *
 * @throws CliError naming the flag when the file system refuses.
 */
export function writeOutputFileSync(path: string, flag: string, data: string | Uint8Array): void {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(temp, 'wx', 0o644);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temp, path);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    rmSync(temp, { force: true });
    throw new CliError(`${flag}: could not write ${path} (${(e as Error).message.split('\n')[0]})`);
  }
}
