// The webgpu backend (Dawn's WebGPU for Node, over Vulkan) computes what transformers computes and
// trains as the other backends do: the golden and training checks run again in a child process on
// ELIBADCODE_BACKEND=webgpu. Without a GPU they run on Mesa's lavapipe, a Vulkan driver on the CPU
// ($ELIBADCODE_LAVAPIPE, fetched by scripts/lavapipe/fetch.sh; test.sh sets it); skipped without it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../', import.meta.url).pathname;
const lavapipe = process.env.ELIBADCODE_LAVAPIPE;
const icd = lavapipe ? join(lavapipe, 'lvp_icd.json') : '';
const skip = lavapipe && existsSync(icd) ? false : 'no software Vulkan driver (set ELIBADCODE_LAVAPIPE to the output of scripts/lavapipe/fetch.sh)';

function onWebgpu(files: string[]): { status: number | null; output: string } {
  const lib = join(lavapipe!, 'usr/lib/x86_64-linux-gnu');
  // The child is a test run of its own, not a subprocess of this one's runner.
  const { NODE_TEST_CONTEXT: _, ...inherited } = process.env;
  const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...files.map((f) => join(root, f))], {
    cwd: root,
    encoding: 'utf8',
    timeout: 15 * 60_000,
    env: {
      ...inherited,
      ELIBADCODE_BACKEND: 'webgpu',
      VK_ICD_FILENAMES: icd,
      LD_LIBRARY_PATH: [lib, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'),
    },
  });
  return { status: r.status, output: `${r.stdout}\n${r.stderr}` };
}

function counts(output: string): { pass: number; fail: number } {
  const n = (what: string) => Number(output.match(new RegExp(`^ℹ ${what} (\\d+)$`, 'm'))?.[1] ?? NaN);
  return { pass: n('pass'), fail: n('fail') };
}

test('on webgpu: token ids, logits, embeddings and gradients equal transformers\' (the golden checks)', { skip }, () => {
  const { status, output } = onWebgpu(['test/model.golden.test.ts']);
  const { pass, fail } = counts(output);
  assert.equal(fail, 0, output);
  assert.equal(status, 0, output);
  assert.ok(pass >= 9, `only ${pass} golden checks passed:\n${output}`);
  assert.match(output, /the checks run on the backend asked for/);
});

test('on webgpu: custom gradients, AdamW, clipping and fine-tuning behave as on the other backends (the training checks)', { skip }, () => {
  const { status, output } = onWebgpu(['test/model.train.test.ts']);
  const { pass, fail } = counts(output);
  assert.equal(fail, 0, output);
  assert.equal(status, 0, output);
  assert.ok(pass >= 10, `only ${pass} training checks passed:\n${output}`);
});
