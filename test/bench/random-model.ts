// Writes a randomly initialised RoBERTa defect detector of a chosen size, with the golden byte-level
// BPE tokenizer, for timing scans at sizes the zoo does not have (its answers mean nothing):
//   node test/bench/random-model.ts OUT_DIR [--preset base|small] [--hidden H --layers N --heads A --max-positions P]
// `base` is CodeBERT's shape (hidden 768, 12 layers, 12 heads, 514 positions) with a 1000-piece vocabulary.
import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { initBackend } from '../../worker/model/backend.ts';
import { saveCheckpoint } from '../../worker/model/checkpoint.ts';
import { parseConfig } from '../../worker/model/config.ts';
import { Roberta } from '../../worker/model/roberta.ts';
import { GOLDEN_DEFECT } from '../pipeline.helpers.ts';

const PRESETS: Record<string, { hidden: number; layers: number; heads: number; maxPositions: number }> = {
  base: { hidden: 768, layers: 12, heads: 12, maxPositions: 514 },
  small: { hidden: 256, layers: 4, heads: 4, maxPositions: 514 },
};
const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { preset: { type: 'string', default: 'base' }, hidden: { type: 'string' }, layers: { type: 'string' }, heads: { type: 'string' }, 'max-positions': { type: 'string' } },
});
const out = positionals[0];
const preset = PRESETS[values.preset!];
if (!out || !preset) {
  console.error(`usage: random-model.ts OUT_DIR [--preset ${Object.keys(PRESETS).join('|')}] [--hidden H --layers N --heads A --max-positions P]`);
  process.exit(2);
}
const hidden = Number(values.hidden ?? preset.hidden);
const layers = Number(values.layers ?? preset.layers);
const heads = Number(values.heads ?? preset.heads);
const maxPositions = Number(values['max-positions'] ?? preset.maxPositions);
await initBackend();
const rawConfig = {
  architectures: ['RobertaForSequenceClassification'], model_type: 'roberta', elibadcode_task: 'defect',
  vocab_size: 1000, hidden_size: hidden, num_hidden_layers: layers, num_attention_heads: heads, intermediate_size: 4 * hidden,
  max_position_embeddings: maxPositions, type_vocab_size: 1, pad_token_id: 1, bos_token_id: 0, eos_token_id: 2,
  hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1, layer_norm_eps: 1e-5, num_labels: 1, id2label: { 0: 'LABEL_0' }, label2id: { LABEL_0: 0 },
};
const model = Roberta.init(parseConfig(rawConfig), 'defect', 1);
mkdirSync(out, { recursive: true });
const saved = await saveCheckpoint({ dir: GOLDEN_DEFECT, rawConfig, model, prefix: 'roberta.', extras: new Map() }, out);
model.dispose();
console.log(JSON.stringify({ out, hidden, layers, heads, maxPositions, sha256: saved.sha256 }));
