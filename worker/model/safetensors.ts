// safetensors: 8-byte little-endian header length, a JSON header naming each tensor's
// dtype, shape and [begin, end) byte offsets into the data that follows, then the data.
// Reading converts F32/F16/BF16 to float32; writing emits F32. No code is ever executed.

export interface Tensor32 {
  shape: number[];
  data: Float32Array;
}

/** An error in a checkpoint file: always names the file and the problem. */
export class CheckpointError extends Error {
  override name = 'CheckpointError';
  constructor(file: string, problem: string) {
    super(`${file}: ${problem}`);
  }
}

/** A larger header is a corrupt or hostile file: real headers are a few hundred bytes per tensor. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const BYTES_PER_DTYPE: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };

export function readSafetensors(bytes: Uint8Array, file = 'model.safetensors'): Map<string, Tensor32> {
  if (bytes.byteLength < 8) throw new CheckpointError(file, `truncated: ${bytes.byteLength} bytes, shorter than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > MAX_HEADER_BYTES) {
    throw new CheckpointError(file, `header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte cap (corrupt or not a safetensors file)`);
  }
  if (8 + headerLength > bytes.byteLength) {
    throw new CheckpointError(file, `truncated: header says ${headerLength} bytes but the file has ${bytes.byteLength - 8} after the length`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch (e) {
    throw new CheckpointError(file, `header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new CheckpointError(file, 'header is not a JSON object');
  }
  const dataStart = 8 + headerLength;
  const dataLength = bytes.byteLength - dataStart;
  const tensors = new Map<string, Tensor32>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const { dtype, shape, data_offsets: offsets } = (entry ?? {}) as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const where = `tensor "${name}"`;
    if (typeof dtype !== 'string' || !(dtype in BYTES_PER_DTYPE)) {
      throw new CheckpointError(file, `${where} has dtype ${JSON.stringify(dtype)}; supported: ${Object.keys(BYTES_PER_DTYPE).join(', ')}`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new CheckpointError(file, `${where} has an invalid shape ${JSON.stringify(shape)}`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      throw new CheckpointError(file, `${where} has invalid data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    const width = BYTES_PER_DTYPE[dtype];
    if (end < begin || end > dataLength) {
      throw new CheckpointError(file, `${where} data_offsets [${begin}, ${end}] are out of range (data section is ${dataLength} bytes)`);
    }
    if (end - begin !== count * width) {
      throw new CheckpointError(file, `${where} spans ${end - begin} bytes but shape ${JSON.stringify(shape)} of ${dtype} needs ${count * width}`);
    }
    tensors.set(name, { shape: shape as number[], data: decode(bytes, dataStart + begin, count, dtype) });
  }
  return tensors;
}

function decode(bytes: Uint8Array, offset: number, count: number, dtype: string): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, count * BYTES_PER_DTYPE[dtype]);
  const out = new Float32Array(count);
  if (dtype === 'F32' && isLittleEndianHost) {
    const start = bytes.byteOffset + offset;
    return new Float32Array(bytes.buffer.slice(start, start + count * 4));
  } else if (dtype === 'F32') {
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
  } else if (dtype === 'F16') {
    for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
  } else {
    // bfloat16 is the top half of a float32.
    const word = new DataView(new ArrayBuffer(4));
    for (let i = 0; i < count; i++) {
      word.setUint32(0, view.getUint16(i * 2, true) << 16);
      out[i] = word.getFloat32(0);
    }
  }
  return out;
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** Serialises tensors as F32, in name order (deterministic bytes for equal weights). */
export function writeSafetensors(tensors: Map<string, Tensor32>, metadata: Record<string, string> = {}): Uint8Array {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', ...metadata } };
  let offset = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new Error(`tensor "${name}": shape ${JSON.stringify(t.shape)} does not match ${t.data.length} values`);
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + count * 4] };
    offset += count * 4;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const name of names) {
    const data = tensors.get(name)!.data;
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (isLittleEndianHost) out.set(bytes, at);
    else for (let i = 0; i < data.length; i++) view.setFloat32(at + i * 4, data[i], true);
    at += data.byteLength;
  }
  return out;
}

const isLittleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
