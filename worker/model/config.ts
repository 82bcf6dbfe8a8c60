// config.json of a Hugging Face RoBERTa-family checkpoint (CodeBERT, GraphCodeBERT, UniXcoder),
// and which task head it carries.
import { z } from 'zod';

export const TASKS = ['classify', 'defect', 'clone', 'search'] as const;
export type Task = (typeof TASKS)[number];

export const RobertaConfigSchema = z
  .object({
    model_type: z.string(),
    architectures: z.array(z.string()).optional(),
    vocab_size: z.number().int().positive(),
    hidden_size: z.number().int().positive(),
    num_hidden_layers: z.number().int().positive(),
    num_attention_heads: z.number().int().positive(),
    intermediate_size: z.number().int().positive(),
    hidden_act: z.string().default('gelu'),
    max_position_embeddings: z.number().int().positive(),
    type_vocab_size: z.number().int().positive().default(1),
    layer_norm_eps: z.number().positive().default(1e-5),
    pad_token_id: z.number().int().nonnegative().default(1),
    hidden_dropout_prob: z.number().min(0).max(1).default(0.1),
    attention_probs_dropout_prob: z.number().min(0).max(1).default(0.1),
    classifier_dropout: z.number().min(0).max(1).nullable().optional(),
    id2label: z.record(z.string(), z.string()).optional(),
    num_labels: z.number().int().positive().optional(),
    elibadcode_task: z.enum(TASKS).optional(),
  })
  .loose()
  .refine((c) => c.hidden_size % c.num_attention_heads === 0, {
    message: 'hidden_size must be divisible by num_attention_heads',
    path: ['hidden_size'],
  });

export type RobertaConfig = z.infer<typeof RobertaConfigSchema>;

/** Architectures whose weights are a RoBERTa encoder this runtime computes exactly. */
const SUPPORTED_MODEL_TYPES = ['roberta'];

export function parseConfig(json: unknown, file = 'config.json'): RobertaConfig {
  const parsed = RobertaConfigSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${file}: field "${issue.path.join('.') || '(root)'}": ${issue.message}`);
  }
  const config = parsed.data;
  if (!SUPPORTED_MODEL_TYPES.includes(config.model_type)) {
    throw new Error(
      `${file}: model_type "${config.model_type}" is not supported; this runtime runs RoBERTa-family encoders (model_type "roberta": CodeBERT, GraphCodeBERT, UniXcoder)`,
    );
  }
  if (config.hidden_act !== 'gelu') {
    throw new Error(`${file}: hidden_act "${config.hidden_act}" is not supported (only exact "gelu")`);
  }
  return config;
}

export function numLabels(config: RobertaConfig): number {
  return config.num_labels ?? (config.id2label ? Object.keys(config.id2label).length : 2);
}

/** The head a checkpoint carries: an explicit `elibadcode_task`, else read off `architectures`. */
export function taskOf(config: RobertaConfig, file = 'config.json'): Task {
  if (config.elibadcode_task) return config.elibadcode_task;
  const arch = config.architectures?.[0] ?? 'RobertaModel';
  switch (arch) {
    case 'RobertaForSequenceClassification':
      return numLabels(config) === 1 ? 'defect' : 'classify';
    case 'RobertaForCloneDetection':
      return 'clone';
    case 'RobertaModel':
    case 'RobertaForMaskedLM':
      return 'search';
    default:
      throw new Error(
        `${file}: architecture "${arch}" has no head this runtime knows (RobertaForSequenceClassification, RobertaForCloneDetection, RobertaModel); set "elibadcode_task"`,
      );
  }
}
