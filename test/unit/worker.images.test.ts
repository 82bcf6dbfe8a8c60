// The Dockerfile's images: each worker image selects the backend it was built for (asking for one
// that cannot start is an error, so a wrong ELIBADCODE_BACKEND fails loudly rather than running on
// the CPU), the webgpu image asks the NVIDIA runtime for the Vulkan ICD, and the operator image
// carries no GPU binding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { BACKENDS } from '../../worker/model/backend.ts';

const dockerfile = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8');

function stage(name: string): string {
  const start = dockerfile.search(new RegExp(`^FROM \\S+ AS ${name}$`, 'm'));
  assert.ok(start >= 0, `Dockerfile has a stage ${name}`);
  const next = dockerfile.slice(start + 1).search(/^FROM /m);
  return next < 0 ? dockerfile.slice(start) : dockerfile.slice(start, start + 1 + next);
}

test('images: the CUDA worker runs the native backend, the Vulkan worker runs webgpu', () => {
  for (const [name, backend] of [['worker', 'tensorflow'], ['worker-webgpu', 'webgpu']] as const) {
    const s = stage(name);
    assert.ok(BACKENDS.includes(backend));
    assert.match(s, new RegExp(`ELIBADCODE_BACKEND=${backend}\\b`), `${name} selects ${backend}`);
    assert.match(s, /^USER 65532:65532$/m, `${name} runs as non-root`);
    assert.match(s, /^ENTRYPOINT \["elibadcode"\]$/m, `${name}'s entrypoint is the CLI the Job calls`);
  }
});

test('images: the webgpu worker gets the driver\'s Vulkan ICD (graphics capability, loader, glvnd) and the Dawn binding', () => {
  const s = stage('worker-webgpu');
  assert.match(s, /NVIDIA_DRIVER_CAPABILITIES=\S*\bgraphics\b/);
  assert.match(s, /NVIDIA_DRIVER_CAPABILITIES=\S*\bcompute\b/);
  for (const lib of ['libvulkan1', 'libglvnd0', 'libegl1']) assert.match(s, new RegExp(`\\b${lib}\\b`));
  assert.match(stage('webgpu-deps'), /test -f node_modules\/webgpu\/dist\/linux-x64\/dawn\.node/);
  assert.doesNotMatch(stage('webgpu-deps'), /--omit=optional/);
});

test('images: the operator image omits the optional GPU binding, and the default target stays the CUDA worker', () => {
  assert.match(stage('prod-deps'), /npm ci [^\n]*--omit=optional/);
  assert.match(stage('operator'), /COPY --from=prod-deps /);
  const last = [...dockerfile.matchAll(/^FROM \S+ AS (\S+)$/gm)].at(-1)?.[1];
  assert.equal(last, 'worker');
});
