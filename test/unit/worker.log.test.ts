// The worker's JSON log lines (stage changes, iteration progress) reach stderr while the scan is
// still computing, not when it ends: the scan blocks the event loop for minutes at a time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CHILD = new URL('../fixtures/log-while-computing.ts', import.meta.url).pathname;

test('every stage line is on stderr while the worker computes synchronously', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'elibadcode-log-'));
  const sentinel = join(dir, 'seen');
  try {
    const child = spawn(process.execPath, [CHILD, sentinel], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk;
      if (stderr.includes('"stage":"Inversion"')) writeFileSync(sentinel, '');
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0, `the Inversion line arrived only after the computation ended; stderr:\n${stderr}`);
    const stages = stderr.trim().split('\n').map((l) => JSON.parse(l).stage);
    assert.deepEqual(stages, ['Screen', 'Inversion']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
