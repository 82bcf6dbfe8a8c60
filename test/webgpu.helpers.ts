// Running a child process on the webgpu backend over Mesa's lavapipe (Vulkan on the CPU), for the
// tests that check webgpu against the other backends on a machine without a GPU.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const root = new URL('../', import.meta.url).pathname;
const lavapipe = process.env.ELIBADCODE_LAVAPIPE;
const icd = lavapipe ? join(lavapipe, 'lvp_icd.json') : '';

/** A test's skip reason when there is no software Vulkan driver, else false. */
export const skipWithoutLavapipe: string | false = lavapipe && existsSync(icd)
  ? false
  : 'no software Vulkan driver (set ELIBADCODE_LAVAPIPE to the output of scripts/lavapipe/fetch.sh)';

/** Runs node with `args` in the repository root on ELIBADCODE_BACKEND=webgpu over lavapipe. */
export function nodeOnWebgpu(args: string[], env: Record<string, string> = {}): { status: number | null; output: string } {
  const lib = join(lavapipe!, 'usr/lib/x86_64-linux-gnu');
  // A child test run is a run of its own, not a subprocess of this one's runner.
  const { NODE_TEST_CONTEXT: _, ...inherited } = process.env;
  const r = spawnSync(process.execPath, args, {
    cwd: root,
    encoding: 'utf8',
    timeout: 15 * 60_000,
    env: {
      ...inherited,
      ...env,
      ELIBADCODE_BACKEND: 'webgpu',
      VK_ICD_FILENAMES: icd,
      LD_LIBRARY_PATH: [lib, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'),
    },
  });
  return { status: r.status, output: `${r.stdout}\n${r.stderr}` };
}
