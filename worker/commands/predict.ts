import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../model/backend.ts';
import { loadCheckpoint } from '../model/checkpoint.ts';
import { argmax } from '../model/metrics.ts';
import { classProbabilities, maxModelLength, readExamples, toInputs } from '../model/tasks.ts';
import { integer, parseFlags, required } from './args.ts';
import { EXIT, UsageError, type Command } from './command.ts';

export const predict: Command = {
  name: 'predict',
  summary: 'Run a checkpoint on code and print one JSON prediction per input line.',
  usage: [
    'Usage: elibadcode predict --model DIR --input FILE.jsonl [--max-length N] [--batch-size N] [--backend tensorflow|webgpu|wasm|cpu]',
    '',
    '  --model DIR        Hugging Face checkpoint: config.json, model.safetensors, tokenizer.json',
    '  --input FILE       JSON lines; classify/defect rows {"code"}, clone rows {"code1","code2"}, search rows {"code","query"?}',
    '  --max-length N     tokens per input, <s> and </s> included (default: 256, capped by the model)',
    '  --batch-size N     inputs per forward pass (default 16)',
    '',
    'Output per line: {"line", "id"?, "label", "probabilities"} for classifiers;',
    '{"line", "id"?, "embeddingNorm", "queryEmbeddingNorm"?, "similarity"?} for code search (norms before L2 normalisation).',
    'Exit codes: 0 done, 1 the model or input is unusable (the message names the file and problem), 2 bad flags.',
  ].join('\n'),
  async run(args) {
    const flags = parseFlags(args, {
      model: { type: 'string' },
      input: { type: 'string' },
      'max-length': { type: 'string' },
      'batch-size': { type: 'string' },
      backend: { type: 'string' },
    });
    const modelDir = required(flags.model, 'model');
    const input = required(flags.input, 'input');
    const batchSize = integer(flags['batch-size'], 'batch-size', 16);
    await initBackend(flags.backend as string | undefined);
    const ckpt = loadCheckpoint(modelDir);
    const maxLength = Math.min(integer(flags['max-length'], 'max-length', 256, 3), maxModelLength(ckpt.model));
    const examples = readExamples(input, ckpt.task === 'classify' ? 'classify' : ckpt.task);
    if (examples.length === 0) throw new UsageError(`${input}: no rows`);
    const line = (where: string) => Number(where.slice(where.lastIndexOf(':') + 1));

    if (ckpt.task !== 'search') {
      const probs = await classProbabilities(ckpt.model, ckpt.tokenizer, examples, maxLength, batchSize);
      examples.forEach((e, i) => {
        const p = probs[i].map((x) => Number(x.toFixed(6)));
        console.log(JSON.stringify({ line: line(e.where), ...(e.id ? { id: e.id } : {}), label: argmax(p), probabilities: p }));
      });
    } else {
      for (let i = 0; i < examples.length; i += batchSize) {
        const batch = examples.slice(i, i + batchSize);
        const withQuery = batch.some((e) => e.query !== undefined);
        const tensors = tf.tidy(() => {
          const code = ckpt.model.meanPooled(toInputs(ckpt.tokenizer, batch.map((e) => e.code), maxLength));
          if (!withQuery) return [tf.norm(code, 'euclidean', 1)];
          // Rows without a query get an empty one whose results are not printed.
          const query = ckpt.model.meanPooled(toInputs(ckpt.tokenizer, batch.map((e) => e.query ?? ''), maxLength));
          const unit = (x: tf.Tensor2D) => tf.div(x, tf.norm(x, 'euclidean', 1, true));
          return [tf.norm(code, 'euclidean', 1), tf.norm(query, 'euclidean', 1), tf.sum(tf.mul(unit(code), unit(query)), 1)];
        });
        const [codeNorms, queryNorms, sims] = (await Promise.all(tensors.map((t) => t.array()))) as number[][];
        tf.dispose(tensors);
        batch.forEach((e, j) => {
          const out: Record<string, unknown> = { line: line(e.where), ...(e.id ? { id: e.id } : {}), embeddingNorm: Number(codeNorms[j].toFixed(6)) };
          if (e.query !== undefined) Object.assign(out, { queryEmbeddingNorm: Number(queryNorms[j].toFixed(6)), similarity: Number(sims[j].toFixed(6)) });
          console.log(JSON.stringify(out));
        });
      }
    }
    ckpt.model.dispose();
    return EXIT.ok;
  },
};
