// The webgpu backend in Node: Dawn (the `webgpu` package) provides navigator.gpu; one kernel of
// tfjs-backend-webgpu 4.22 is replaced because it computes wrong values, and its buffer pool is
// bounded because it never gives memory back.
import * as tf from '@tensorflow/tfjs';
import { log } from '../log.ts';

export interface GpuAdapter {
  vendor: string;
  architecture: string;
  description: string;
}

/** Puts Dawn's GPU on navigator.gpu and registers the webgpu backend; null when no adapter is found. */
export async function installWebgpu(): Promise<GpuAdapter | null> {
  const dawn = await import('webgpu');
  // tfjs-backend-webgpu reads GPUBufferUsage, GPUMapMode, ... and navigator.gpu as a browser has them.
  Object.assign(globalThis, dawn.globals);
  const gpu = dawn.create([]);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return null;
  Object.defineProperty(globalThis.navigator, 'gpu', { value: gpu, configurable: true });
  await import('@tensorflow/tfjs-backend-webgpu');
  replaceCast();
  const { vendor, architecture, description } = adapter.info;
  return { vendor, architecture, description };
}

/** Free pooled GPU memory kept for reuse, at most (ELIBADCODE_WEBGPU_POOL_MIB, default 4096). */
export const DEFAULT_POOL_MIB = 4096;

interface BufferPool {
  freeBuffers: Map<string, { size: number; destroy(): void }[]>;
  numFreeBuffers: number;
  numBytesAllocated: number;
  numBytesUsed: number;
  releaseBuffer(buffer: unknown, reuse?: boolean): void;
}

/**
 * tfjs-backend-webgpu keeps every buffer it ever freed, keyed by size, for reuse. A scan's batches
 * come in many shapes, and a base-size model's forward pass holds gigabytes of intermediates per
 * shape, so the pool grew to the H200's 139 GiB within 10 s of a scan and allocation failed. Here
 * the free part of the pool is trimmed, largest buffers first, whenever it exceeds its bound.
 */
export function boundBufferPool(maxFreeBytes = Number(process.env.ELIBADCODE_WEBGPU_POOL_MIB ?? DEFAULT_POOL_MIB) * 2 ** 20): void {
  const pool = (tf.backend() as unknown as { bufferManager: BufferPool }).bufferManager;
  const release = pool.releaseBuffer.bind(pool);
  pool.releaseBuffer = (buffer, reuse = true) => {
    release(buffer, reuse);
    let free = pool.numBytesAllocated - pool.numBytesUsed;
    if (!reuse || free <= maxFreeBytes) return;
    const bySize = [...pool.freeBuffers.values()].filter((list) => list.length).sort((a, b) => b[0].size - a[0].size);
    for (const list of bySize) {
      while (list.length && free > maxFreeBytes) {
        const b = list.pop()!;
        b.destroy();
        pool.numFreeBuffers--;
        pool.numBytesAllocated -= b.size;
        free -= b.size;
      }
      if (free <= maxFreeBytes) break;
    }
  };
}

/**
 * A shader that does not compile or a command that fails validation leaves its output unwritten,
 * and the computation goes on with garbage. No answer is better than a wrong one: the first such
 * error ends the process (exit 1) with the GPU's message. Call once the backend is selected.
 */
export function failOnGpuErrors(): void {
  const device = (tf.backend() as unknown as { device: EventTarget }).device;
  device.addEventListener('uncapturederror', (event) => {
    const message = (event as unknown as { error: { message: string } }).error.message;
    log.fatal({ backend: 'webgpu', gpuError: message }, 'the GPU refused a computation; its result would be wrong, so the process stops (rerun with --backend wasm, and report the message)');
    process.exit(1);
  });
}

// Structural views of the backend's API that the replacement uses (its own types need @webgpu/types).
interface TensorInfo { dataId: object; shape: number[]; dtype: tf.DataType }
interface WebgpuBackend {
  shouldExecuteOnCPU(inputs: TensorInfo[]): boolean;
  tensorMap: { get(dataId: object): { values: ArrayLike<number> | null } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): TensorInfo;
  runWebGPUProgram(program: object, inputs: TensorInfo[], dtype: tf.DataType): TensorInfo;
}

/**
 * tfjs-backend-webgpu 4.22 casts int32 and bool to float32 by relabelling the int buffer as float.
 * Most kernels convert on read, but the transpose (and with it every reduction over a non-last
 * axis, such as the code-search head's mean over tokens) reads the raw buffer: its shader does not
 * compile and the result is garbage. This Cast converts for real.
 */
function replaceCast(): void {
  const original = tf.getKernel('Cast', 'webgpu');
  if (!original) throw new Error('tfjs-backend-webgpu registered no Cast kernel');
  const kernelFunc = (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) => {
    const x = args.inputs.x as TensorInfo;
    const backend = args.backend as WebgpuBackend;
    if (args.attrs?.dtype !== 'float32' || (x.dtype !== 'int32' && x.dtype !== 'bool')) {
      return original.kernelFunc(args as Parameters<tf.KernelFunc>[0]);
    }
    if (backend.shouldExecuteOnCPU([x])) {
      return backend.makeTensorInfo(x.shape, 'float32', Float32Array.from(backend.tensorMap.get(x.dataId).values!));
    }
    return backend.runWebGPUProgram(new ToFloatProgram(x.shape), [x], 'float32');
  };
  tf.unregisterKernel('Cast', 'webgpu');
  tf.registerKernel({ ...original, kernelFunc: kernelFunc as tf.KernelFunc });
}

/** out[i] = f32(A[i]): the backend's input getters convert from the input's own type. */
class ToFloatProgram {
  readonly variableNames = ['A'];
  readonly size = true;
  readonly workgroupSize: [number, number, number] = [128, 1, 1];
  readonly outputShape: number[];
  readonly dispatchLayout: { x: number[] };
  readonly dispatch: [number, number, number];
  readonly shaderKey = 'elibadcode_to_float';

  constructor(shape: number[]) {
    this.outputShape = shape;
    const size = shape.reduce((a, b) => a * b, 1);
    this.dispatchLayout = { x: shape.map((_, i) => i) };
    // One thread per element, 128 per workgroup (the backend reshapes a dispatch beyond its limits).
    this.dispatch = [Math.ceil(size / 128), 1, 1];
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          setOutputAtIndex(index, getAByOutputIndex(index));
        }
      }`;
  }
}
