// Development entry of a worker thread when the library runs from its TypeScript sources
// (tests, tsx): registers tsx in this thread, then loads the worker module.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
