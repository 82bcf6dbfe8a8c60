// Progress: a one-line bar on a terminal (stage, iteration, best loss, elapsed, ETA); otherwise
// one pino JSON line per stage and every `every` iterations. In a worker pod whose Job configured
// live progress (ELIBADCODE_PROGRESS_URL), the same calls are also reported to the operator.
import { log } from '../log.ts';
import { progressSinkFromEnv, type ProgressSink } from './report-progress.ts';

export interface Progress {
  stage(stage: string, detail?: Record<string, unknown>): void;
  iteration(s: { option: string; iteration: number; iterations: number; bestLoss: number; loss: number; seconds: number }): void;
  done(): void;
}

export function makeProgress(o: { tty?: boolean; every?: number; quiet?: boolean; reporter?: ProgressSink } = {}): Progress {
  const local = localProgress(o);
  const remote = o.reporter ?? progressSinkFromEnv();
  if (!remote) return local;
  return {
    stage(stage, detail) {
      local.stage(stage, detail);
      remote.stage(stage, detail);
    },
    iteration(s) {
      local.iteration(s);
      remote.iteration(s);
    },
    done() {
      local.done();
    },
  };
}

function localProgress(o: { tty?: boolean; every?: number; quiet?: boolean }): Progress {
  const tty = o.tty ?? process.stderr.isTTY === true;
  const every = o.every ?? 10;
  const start = performance.now();
  let current = '';
  const elapsed = () => (performance.now() - start) / 1000;
  if (o.quiet) return { stage() {}, iteration() {}, done() {} };
  if (!tty) {
    return {
      stage(stage, detail = {}) {
        current = stage;
        log.info({ stage, elapsedSeconds: Number(elapsed().toFixed(1)), ...detail }, `scan stage ${stage}`);
      },
      iteration(s) {
        if (s.iteration % every !== 0 && s.iteration !== s.iterations) return;
        log.info({ stage: current, ...s, bestLoss: Number(s.bestLoss.toFixed(5)), loss: Number(s.loss.toFixed(5)), seconds: Number(s.seconds.toFixed(2)) }, 'inversion progress');
      },
      done() {},
    };
  }
  const write = (line: string) => process.stderr.write(`\r\x1b[2K${line}`);
  return {
    stage(stage) {
      current = stage;
      write(`[${elapsed().toFixed(0)}s] ${stage}`);
    },
    iteration(s) {
      const width = 24;
      const frac = Math.min(1, s.iteration / s.iterations);
      const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
      const eta = s.iteration > 0 ? (s.seconds / s.iteration) * (s.iterations - s.iteration) : 0;
      write(`${current} ${s.option} [${bar}] ${s.iteration}/${s.iterations} best ${s.bestLoss.toFixed(4)} elapsed ${elapsed().toFixed(0)}s eta ≤${eta.toFixed(0)}s`);
    },
    done() {
      process.stderr.write('\n');
    },
  };
}
