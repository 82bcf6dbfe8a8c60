import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CheckpointError, MAX_HEADER_BYTES, readSafetensors, writeSafetensors } from '../worker/model/safetensors.ts';

function file(header: object, data: Uint8Array = new Uint8Array()): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

test('writes and reads back float32 tensors with their shapes, in deterministic bytes', () => {
  const tensors = new Map([
    ['b.bias', { shape: [3], data: new Float32Array([1, -2, 3.5]) }],
    ['a.weight', { shape: [2, 2], data: new Float32Array([0.25, 0.5, -0.75, 1e-7]) }],
  ]);
  const bytes = writeSafetensors(tensors);
  const back = readSafetensors(bytes);
  assert.deepEqual([...back.keys()].sort(), ['a.weight', 'b.bias']);
  assert.deepEqual(back.get('a.weight')!.shape, [2, 2]);
  assert.deepEqual([...back.get('a.weight')!.data], [...tensors.get('a.weight')!.data]);
  assert.deepEqual([...back.get('b.bias')!.data], [1, -2, 3.5]);
  assert.deepEqual(writeSafetensors(new Map([...tensors].reverse())), bytes);
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal((8 + headerLength) % 8, 0, 'data section starts 8-byte aligned');
});

test('decodes F16 and BF16 to float32', () => {
  const f16 = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x3555, 0x0001, 0x7c00]).buffer); // 1, -2, ~1/3, smallest subnormal, inf
  const bf16 = new Uint8Array(new Uint16Array([0x3f80, 0xc040]).buffer); // 1, -3
  const t = readSafetensors(file({
    h: { dtype: 'F16', shape: [5], data_offsets: [0, 10] },
    b: { dtype: 'BF16', shape: [2], data_offsets: [10, 14] },
  }, new Uint8Array([...f16, ...bf16])));
  const h = [...t.get('h')!.data];
  assert.equal(h[0], 1);
  assert.equal(h[1], -2);
  assert.ok(Math.abs(h[2] - 1 / 3) < 1e-3);
  assert.equal(h[3], 2 ** -24);
  assert.equal(h[4], Infinity);
  assert.deepEqual([...t.get('b')!.data], [1, -3]);
});

test('refuses malformed files with the file name and the problem', () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ['shorter than the length prefix', new Uint8Array(4), /truncated: 4 bytes/],
    ['header longer than the file', (() => { const b = file({}); new DataView(b.buffer).setBigUint64(0, 1000n, true); return b; })(), /truncated: header says 1000 bytes/],
    ['oversized header', (() => { const b = new Uint8Array(16); new DataView(b.buffer).setBigUint64(0, BigInt(MAX_HEADER_BYTES + 1), true); return b; })(), /exceeds the .*-byte cap/],
    ['header not JSON', (() => { const b = new Uint8Array(12); new DataView(b.buffer).setBigUint64(0, 4n, true); b.set([0x7b, 0x7b, 0x7b, 0x7b], 8); return b; })(), /not valid UTF-8 JSON/],
    ['unknown dtype', file({ x: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)), /tensor "x" has dtype "F64"/],
    ['offsets past the end', file({ x: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, new Uint8Array(8)), /tensor "x" data_offsets \[0, 16\] are out of range/],
    ['shape disagrees with byte span', file({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)), /spans 8 bytes but shape \[3\] of F32 needs 12/],
    ['negative shape', file({ x: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)), /invalid shape/],
  ];
  for (const [name, bytes, message] of cases) {
    assert.throws(() => readSafetensors(bytes, 'ckpt/model.safetensors'), (e: Error) => {
      assert.ok(e instanceof CheckpointError, name);
      assert.match(e.message, /^ckpt\/model\.safetensors: /, name);
      assert.match(e.message, message, name);
      return true;
    });
  }
});
