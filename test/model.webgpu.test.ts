// The webgpu backend (Dawn's WebGPU for Node, over Vulkan) computes what transformers computes and
// trains as the other backends do: the golden and training checks run again in a child process on
// ELIBADCODE_BACKEND=webgpu. Without a GPU they run on Mesa's lavapipe, a Vulkan driver on the CPU
// ($ELIBADCODE_LAVAPIPE, fetched by scripts/lavapipe/fetch.sh; test.sh sets it); skipped without it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { nodeOnWebgpu, root, skipWithoutLavapipe as skip } from './webgpu.helpers.ts';

function testsOnWebgpu(file: string, atLeast: number): string {
  const { status, output } = nodeOnWebgpu(['--test', '--test-reporter=spec', join(root, file)]);
  const count = (what: string) => Number(output.match(new RegExp(`^ℹ ${what} (\\d+)$`, 'm'))?.[1] ?? NaN);
  assert.equal(count('fail'), 0, output);
  assert.equal(status, 0, output);
  assert.ok(count('pass') >= atLeast, `only ${count('pass')} checks of ${file} passed:\n${output}`);
  return output;
}

test('on webgpu: token ids, logits, embeddings and gradients equal transformers\' (the golden checks)', { skip }, () => {
  assert.match(testsOnWebgpu('test/model.golden.test.ts', 9), /the checks run on the backend asked for/);
});

test('on webgpu: custom gradients, AdamW, clipping and fine-tuning behave as on the other backends (the training checks)', { skip }, () => {
  testsOnWebgpu('test/model.train.test.ts', 10);
});
