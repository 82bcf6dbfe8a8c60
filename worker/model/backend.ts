// Picks the TensorFlow.js backend once per process: native `tensorflow` (tfjs-node-gpu, then
// tfjs-node, when installed), else `wasm`, else `cpu`. `webgpu` (Dawn's Vulkan/Metal/D3D12
// implementation for Node, the `webgpu` package) is a GPU backend that needs no CUDA or
// libtensorflow, only the GPU driver's Vulkan ICD; it is used when asked for, never by default,
// so that a machine with a software Vulkan driver does not silently run on it.
// ELIBADCODE_BACKEND or an explicit argument overrides the order; asking for one that cannot load
// is an error, not a fallback.
import * as tf from '@tensorflow/tfjs';
import { log } from '../log.ts';
import type { GpuAdapter } from './webgpu.ts';

export type BackendName = 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';
export const BACKENDS: readonly BackendName[] = ['tensorflow', 'webgpu', 'wasm', 'cpu'];
const AUTOMATIC: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

/** What the webgpu backend runs on, for logs and reports (null unless it was selected). */
export let gpuAdapter: GpuAdapter | null = null;

/** The device the selected backend computes on, when it is a GPU: "vendor architecture (description)". */
export function backendDevice(): string | undefined {
  if (!gpuAdapter || tf.getBackend() !== 'webgpu') return undefined;
  const { vendor, architecture, description } = gpuAdapter;
  return [vendor, architecture].filter(Boolean).join(' ') + (description ? ` (${description})` : '');
}

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
    if (name === 'webgpu') {
      gpuAdapter = await (await import('./webgpu.ts')).installWebgpu();
      return gpuAdapter && `@tensorflow/tfjs-backend-webgpu on ${gpuAdapter.description || gpuAdapter.vendor}`;
    }
    if (name === 'wasm') {
      await import('@tensorflow/tfjs-backend-wasm');
      return '@tensorflow/tfjs-backend-wasm';
    }
    return '@tensorflow/tfjs-backend-cpu';
  } catch (err) {
    log.debug({ backend: name, err: (err as Error).message }, 'tensorflow.js backend did not load');
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
  const order = requested ? [requested as BackendName] : AUTOMATIC;
  const tried: string[] = [];
  for (const name of order) {
    const pkg = await register(name);
    if (pkg && (await tf.setBackend(name))) {
      await tf.ready();
      if (name === 'webgpu') {
        const webgpu = await import('./webgpu.ts');
        webgpu.failOnGpuErrors();
        webgpu.boundBufferPool();
      }
      // Gradients of this runtime are written for float32 throughout.
      log.info({ backend: name, package: pkg, device: backendDevice() ?? null, requested: requested ?? null, tried }, 'tensorflow.js backend selected');
      return name;
    }
    tried.push(name);
  }
  const hint = requested === 'webgpu' ? ' (webgpu needs a Vulkan driver: libvulkan.so.1 and a GPU ICD, e.g. NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics)' : '';
  throw new Error(`no TensorFlow.js backend could start (tried ${tried.join(', ')})${hint}`);
}
