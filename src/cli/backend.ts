/**
 * Chooses the tfjs backend of a CLI run: 'wasm' (default; @tensorflow/tfjs-backend-wasm, the
 * fast one in Node without tfjs-node) or 'cpu' (pure JavaScript). Node only.
 */
import { tf } from '../tf.js';
import { CliError } from './errors.js';

export const BACKENDS = ['wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

/** Sets and initialises the backend; returns its name. */
export async function useBackend(name: string): Promise<BackendName> {
  if (!(BACKENDS as readonly string[]).includes(name)) throw new CliError(`--backend must be one of ${BACKENDS.join(', ')}, received '${name}'`);
  if (name === 'wasm') {
    try {
      await import('@tensorflow/tfjs-backend-wasm');
    } catch {
      throw new CliError(`--backend wasm needs the package @tensorflow/tfjs-backend-wasm (npm install @tensorflow/tfjs-backend-wasm), or use --backend cpu`);
    }
  }
  if (!(await tf.setBackend(name))) throw new CliError(`the tfjs backend '${name}' could not be initialised`);
  await tf.ready();
  silenceCpuBanner();
  return name as BackendName;
}

/**
 * Silences the multi-line "install tfjs-node" banner tfjs-backend-cpu prints on its first tensor
 * in Node (model loading and the library's kernel fixes touch the cpu backend even on wasm):
 * tfjs-node is not an option here, so the banner would only clutter the output. Call it once a
 * backend is chosen: choosing the default backend re-creates the cpu backend object.
 */
export function silenceCpuBanner(): void {
  const cpu = tf.findBackend('cpu') as unknown as { firstUse?: boolean } | null;
  if (cpu && typeof cpu.firstUse === 'boolean') cpu.firstUse = false;
}
