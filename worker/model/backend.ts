// Picks the TensorFlow.js backend once per process: native `tensorflow` (tfjs-node-gpu, then
// tfjs-node, when installed), else `wasm`, else `cpu`. ELIBADCODE_BACKEND or an explicit
// argument overrides the order; asking for one that cannot load is an error, not a fallback.
import * as tf from '@tensorflow/tfjs';
import { log } from '../log.ts';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export const BACKENDS: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

async function register(name: BackendName): Promise<string | null> {
  try {
    if (name === 'tensorflow') {
      // Optional dependencies: present only in the worker images.
      for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
        try {
          await import(pkg);
          return pkg;
        } catch {
          /* try the next one */
        }
      }
      return null;
    }
    if (name === 'wasm') {
      await import('@tensorflow/tfjs-backend-wasm');
      return '@tensorflow/tfjs-backend-wasm';
    }
    return '@tensorflow/tfjs-backend-cpu';
  } catch {
    return null;
  }
}

let chosen: Promise<BackendName> | null = null;

export function initBackend(requested: string | undefined = process.env.ELIBADCODE_BACKEND): Promise<BackendName> {
  chosen ??= choose(requested);
  return chosen;
}

async function choose(requested: string | undefined): Promise<BackendName> {
  if (requested && !BACKENDS.includes(requested as BackendName)) {
    throw new Error(`unknown backend "${requested}" (ELIBADCODE_BACKEND or --backend): choose one of ${BACKENDS.join(', ')}`);
  }
  const order = requested ? [requested as BackendName] : BACKENDS;
  const tried: string[] = [];
  for (const name of order) {
    const pkg = await register(name);
    if (pkg && (await tf.setBackend(name))) {
      await tf.ready();
      // Gradients of this runtime are written for float32 throughout.
      log.info({ backend: name, package: pkg, requested: requested ?? null, tried }, 'tensorflow.js backend selected');
      return name;
    }
    tried.push(name);
  }
  throw new Error(`no TensorFlow.js backend could start (tried ${tried.join(', ')})`);
}
