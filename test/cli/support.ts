/**
 * Runs the `nngeometry` CLI as a child process (node + tsx on src/cli/main.ts), as a user would,
 * and collects its exit code and output.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CNN = `${ROOT}data/models/fmnist-cnn/model.json`;
export const MLP = `${ROOT}data/models/fmnist-mlp/model.json`;
export const IMAGES = `${ROOT}data/fashion-mnist/test-images-idx3-ubyte.gz`;
export const LABELS = `${ROOT}data/fashion-mnist/test-labels-idx1-ubyte.gz`;

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `nngeometry ...args`, from the repository root. */
export function runCli(args: string[], script = 'src/cli/main.ts'): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
