/**
 * The BackdoorScan API (elibadcode.dev/v1alpha1): the single source of truth.
 *
 * The CRD YAML (crds/elibadcode.dev_backdoorscans.yaml) is generated from these zod schemas by
 * `node crds/generate.ts`, and the TypeScript types below are inferred from the same schemas.
 * Kubernetes-only facts that zod cannot express (CEL rules, list-map keys, map bounds) travel in
 * `.meta()` and are copied into the OpenAPI schema as they are.
 *
 * Conventions (Kubernetes API conventions):
 * - No floats in spec. Real-valued knobs (beta, rates, learning rate) are decimal strings such as
 *   "0.15": they round-trip exactly through JSON, YAML and etcd, keep the paper's notation, and are
 *   validated by an RE2 pattern plus a CEL range rule. Status may hold numbers (metrics).
 * - Every string, list and map a CEL rule can reach is bounded (maxLength/maxItems/maxProperties)
 *   so the API server's CEL cost estimate stays under budget; the generator enforces this.
 * - What determines the result (task, model, data, labels, parameters, eliminate, unlearning,
 *   output) is immutable after creation: a new scan is a new object. Scheduling knobs (resources,
 *   tolerations, queue, deadline, retries, image, suspend) stay mutable so a stuck scan can be fixed.
 */
import { z } from 'zod';

export const GROUP = 'elibadcode.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'BackdoorScan';
export const LIST_KIND = 'BackdoorScanList';
export const PLURAL = 'backdoorscans';
export const SINGULAR = 'backdoorscan';
export const SHORT_NAMES = ['bds'] as const;
export const CATEGORIES = ['elibadcode'] as const;
/** `metadata.name` of the CustomResourceDefinition. */
export const CRD_NAME = `${PLURAL}.${GROUP}`;

/**
 * GPU resource name used when spec.resources.gpuResourceName is omitted. It is the operator's
 * (cluster-wide, Helm-configurable) default rather than a CRD default, so clusters with another
 * device plugin change one value instead of every manifest.
 */
export const DEFAULT_GPU_RESOURCE_NAME = 'nvidia.com/gpu';

/** Labels the operator puts on child Jobs and Pods. Kueue reads QUEUE_NAME. */
export const LABELS = {
  managedBy: 'app.kubernetes.io/managed-by',
  scanName: `${GROUP}/scan-name`,
  scanUid: `${GROUP}/scan-uid`,
  attempt: `${GROUP}/attempt`,
  queueName: 'kueue.x-k8s.io/queue-name',
  gpuProduct: 'nvidia.com/gpu.product',
} as const;

// ---------------------------------------------------------------------------------------------
// Condition types, reasons, verdicts (string constants, not enums: they are erased-syntax safe).

export const ConditionType = {
  /** The spec passed the operator's checks (Secret present, schema valid). */
  Accepted: 'Accepted',
  /** A worker pod is running (False with a reason while it waits: quota, unschedulable, image). */
  Running: 'Running',
  /** The scan found a backdoor (True), found none (False), or has not decided yet (Unknown). */
  BackdoorDetected: 'BackdoorDetected',
  /** The inverted trigger was unlearned and the cleaned model written. */
  Eliminated: 'Eliminated',
  /** Terminal: the scan finished and its results are in status. */
  Succeeded: 'Succeeded',
  /** Terminal: the scan gave up; `reason` says why. */
  Failed: 'Failed',
  /** `spec.suspend` is true: no Job runs, what was learned is kept. */
  Suspended: 'Suspended',
} as const;
export type ConditionType = (typeof ConditionType)[keyof typeof ConditionType];

export const ConditionReason = {
  // Accepted
  SpecValid: 'SpecValid',
  InvalidSpec: 'InvalidSpec',
  SecretNotFound: 'SecretNotFound',
  // Running (True) and why a scan waits (Running=False)
  JobCreated: 'JobCreated',
  Pending: 'Pending',
  WaitingForQuota: 'WaitingForQuota',
  Unschedulable: 'Unschedulable',
  ImagePullFailed: 'ImagePullFailed',
  PodRunning: 'PodRunning',
  Retrying: 'Retrying',
  Finished: 'Finished',
  // Failed
  PodFailed: 'PodFailed',
  DeadlineExceeded: 'DeadlineExceeded',
  RetriesExhausted: 'RetriesExhausted',
  Evicted: 'Evicted',
  OutOfMemory: 'OutOfMemory',
  BadModel: 'BadModel',
  InvalidInput: 'InvalidInput',
  InputUnavailable: 'InputUnavailable',
  DigestMismatch: 'DigestMismatch',
  UploadFailed: 'UploadFailed',
  InvalidSummary: 'InvalidSummary',
  WorkerError: 'WorkerError',
  // Succeeded / BackdoorDetected / Eliminated
  ScanCompleted: 'ScanCompleted',
  BackdoorFound: 'BackdoorFound',
  NoBackdoorFound: 'NoBackdoorFound',
  Inconclusive: 'Inconclusive',
  TriggerUnlearned: 'TriggerUnlearned',
  /** Unlearning ran and the model was written, but the inverted trigger still scores as a backdoor. */
  BackdoorSurvived: 'BackdoorSurvived',
  EliminationDisabled: 'EliminationDisabled',
  /** The verdict was Clean, so there was no trigger to unlearn (spec.unlearning.force unlearns anyway). */
  NothingToUnlearn: 'NothingToUnlearn',
  // Suspended
  SuspendedByUser: 'SuspendedByUser',
  Resumed: 'Resumed',
} as const;
export type ConditionReason = (typeof ConditionReason)[keyof typeof ConditionReason];

export const Verdict = { Backdoored: 'Backdoored', Clean: 'Clean', Unknown: 'Unknown' } as const;
export type Verdict = (typeof Verdict)[keyof typeof Verdict];

export const Task = { defect: 'defect', clone: 'clone', search: 'search' } as const;
export type Task = (typeof Task)[keyof typeof Task];

export const PositionMode = { Both: 'Both', SampleSpecific: 'SampleSpecific', Fixed: 'Fixed', BodyStart: 'BodyStart' } as const;
export type PositionMode = (typeof PositionMode)[keyof typeof PositionMode];

/** Worker stages reported in `status.progress.stage` (free-form CamelCase is accepted too). */
export const ProgressStage = {
  Downloading: 'Downloading',
  Vocabulary: 'Vocabulary',
  Positions: 'Positions',
  Inversion: 'Inversion',
  Anchoring: 'Anchoring',
  Unlearning: 'Unlearning',
  Evaluating: 'Evaluating',
  Uploading: 'Uploading',
  Done: 'Done',
} as const;
export type ProgressStage = (typeof ProgressStage)[keyof typeof ProgressStage];

// ---------------------------------------------------------------------------------------------
// Helpers: CEL rules with an optional TypeScript twin, so `safeParse` in the operator refuses what
// the API server refuses (transition rules with oldSelf have no twin: they need the old object).

export interface CelRule {
  rule: string;
  message: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
  fieldPath?: string;
}

function withRules<S extends z.ZodType>(
  schema: S,
  rules: Array<CelRule & { check?: (value: z.output<S>) => boolean }>,
  meta: Record<string, unknown> = {},
): S {
  let s = schema;
  for (const r of rules) {
    if (!r.check) continue;
    const path = r.fieldPath ? r.fieldPath.split('.').filter(Boolean) : [];
    s = s.refine(r.check as (v: unknown) => boolean, { message: r.message, path }) as S;
  }
  // Append to rules set by an inner call (immutable(withRules(...))): meta() merges keys, not lists.
  const prev = (s.meta()?.['x-kubernetes-validations'] as CelRule[] | undefined) ?? [];
  const validations = [...prev, ...rules.map(({ check: _check, ...v }) => v)];
  return s.meta({ ...meta, 'x-kubernetes-validations': validations }) as S;
}

function immutable<S extends z.ZodType>(schema: S, field: string): S {
  return withRules(schema, [
    { rule: 'self == oldSelf', message: `${field} is immutable; create a new BackdoorScan instead`, reason: 'FieldValueForbidden' },
  ]);
}

/** RE2-safe patterns (the API server compiles them in Go). */
export const PATTERNS = {
  s3Uri: '^s3://[a-z0-9][-a-z0-9.]{1,61}[a-z0-9](/.*)?$',
  httpsUri: '^https://[^/?#@ ]+(/.*)?$',
  pvcUri: '^pvc://[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?(/.*)?$',
  sha256: '^[a-f0-9]{64}$',
  dns1123Subdomain: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
  dns1123Label: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
  /** A Kubernetes label value (Kueue queue names must also be label values). */
  labelValue: '^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$',
  /** A qualified name such as nvidia.com/gpu or amd.com/gpu. */
  qualifiedName: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$',
  envVarName: '^[A-Za-z_][A-Za-z0-9_]*$',
  /** Non-negative decimal, optionally in scientific notation: "0.15", "1", "5e-3". */
  decimal: '^[0-9]{1,6}(\\.[0-9]{1,9})?([eE][-+]?[0-9]{1,2})?$',
  /** A non-negative resource.Quantity (Kubernetes' quantity syntax without a sign). */
  quantity: '^(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$',
  /** Container image reference: no whitespace. */
  image: '^[^\\s]+$',
  reason: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
  conditionType: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$',
} as const;

const re = (p: string): RegExp => new RegExp(p);
const URI_MAX = 2048;

function uri(schemes: Array<'s3' | 'https' | 'pvc'>, what: string) {
  const pats = schemes.map((s) => PATTERNS[`${s}Uri`]);
  const forms = { s3: 's3://bucket/key', https: 'https://host/path', pvc: 'pvc://claim/path' };
  const list = schemes.map((s) => forms[s]);
  const human = list.length > 1 ? `${list.slice(0, -1).join(', ')} or ${list.at(-1)}` : list[0];
  return withRules(
    z.string().min(1).max(URI_MAX),
    [
      {
        rule: pats.map((p) => `self.matches(r'${p}')`).join(' || '),
        message: `must be a URI of the form ${human}`,
        check: (v: string) => pats.some((p) => re(p).test(v)),
      },
    ],
    { description: `${what}: ${list.join(', ')}.` },
  );
}

const Sha256 = z
  .string()
  .max(64)
  .regex(re(PATTERNS.sha256))
  .describe('Expected SHA-256 digest (64 lowercase hex digits) of the object or directory manifest; the worker refuses content that does not match.');

/**
 * A decimal string with a CEL range check. The check is guarded by the pattern so that a malformed
 * string yields the pattern error only, not a CEL conversion error as well.
 */
function decimal(description: string, range: { gt?: number; min?: number; max: number }, def?: string) {
  const lo =
    range.gt !== undefined ? `double(self) > ${range.gt.toFixed(1)}` : `double(self) >= ${(range.min ?? 0).toFixed(1)}`;
  const hi = `double(self) <= ${range.max.toFixed(1)}`;
  const human = `${range.gt !== undefined ? `greater than ${range.gt}` : `at least ${range.min ?? 0}`} and at most ${range.max}`;
  const base = withRules(
    z.string().min(1).max(24).regex(re(PATTERNS.decimal)),
    [
      {
        rule: `!self.matches(r'${PATTERNS.decimal}') || (${lo} && ${hi})`,
        message: `must be a decimal ${human}`,
        check: (v: string) => {
          if (!re(PATTERNS.decimal).test(v)) return true;
          const n = Number(v);
          return (range.gt !== undefined ? n > range.gt : n >= (range.min ?? 0)) && n <= range.max;
        },
      },
    ],
    { description },
  );
  return def === undefined ? base.optional() : base.default(def);
}

/** A resource quantity: int or string (becomes x-kubernetes-int-or-string in the CRD). */
export const Quantity = z
  .union([z.int().min(0), z.string().max(64).regex(re(PATTERNS.quantity))])
  .describe('A Kubernetes quantity, such as 4, "500m", "16Gi".');
export type Quantity = z.infer<typeof Quantity>;

// ---------------------------------------------------------------------------------------------
// Spec

export const ModelSource = immutable(
  z
    .object({
      uri: uri(['s3', 'https', 'pvc'], 'Model location (a Hugging Face-style checkpoint directory: config.json, safetensors weights, tokenizer.json)'),
      sha256: Sha256.optional(),
    })
    .describe('Where the (possibly backdoored) model is read from.'),
  'spec.model',
);

export const DataSource = z
  .object({
    uri: uri(['s3', 'https', 'pvc'], 'Clean data location (JSON lines)'),
    sha256: Sha256.optional(),
  })
  .describe('A clean data set held by the defender.');

export const Labels = immutable(
  withRules(
    z
      .object({
        victim: z.int().min(0).max(1023).optional().describe('Victim (source) label. Omitted: every label is tried.'),
        target: z.int().min(0).max(1023).optional().describe('Target label the backdoor flips to. Omitted: every label is tried.'),
      })
      .describe('Restrict the scan to one victim and/or target label (classification tasks only). Omitted: every ordered pair is scanned and the lowest-loss one wins.'),
    [
      {
        rule: '!has(self.victim) || !has(self.target) || self.victim != self.target',
        message: 'labels.victim and labels.target must differ',
        fieldPath: '.target',
        check: (l) => l.victim === undefined || l.target === undefined || l.victim !== l.target,
      },
    ],
  ),
  'spec.labels',
);

/** The attack library's attacks (worker/attacks/common.ts ATTACKS; a unit test keeps the two equal). */
export const ATTACK_NAMES = ['fixed-name', 'suffix', 'deadcode', 'deadcode-random', 'rename'] as const;
const IDENTIFIER = '^[A-Za-z_][A-Za-z0-9_]*$';
const WORD = '^[A-Za-z0-9_]+$';

export const KnownTrigger = immutable(
  withRules(
    z
      .object({
        attack: z.enum(ATTACK_NAMES).describe('The attack that planted it; the trigger is placed its way (fixed-name: function name; suffix: appended to the function name; deadcode, deadcode-random: a statement at the body start; rename: a local variable).'),
        trigger: z.string().min(1).max(1024).describe('An identifier (fixed-name, rename), an identifier suffix (suffix), or a statement, a template with {level} {msg} {bound}, or "default" (deadcode, deadcode-random).'),
        victimLabel: z.int().min(0).max(1023).optional().describe('Classification: the label of the samples the trigger is put into. Omitted: the other label of a binary head, else the scan\'s.'),
        targetLabel: z.int().min(0).max(1023).optional().describe('Classification: the label the backdoor answers. Omitted: the other label of a binary head, else the scan\'s.'),
        targetWord: z.string().min(1).max(64).regex(re(WORD)).optional().describe('Code search (required there): the query word whose queries should rank trigger-carrying code first.'),
      })
      .describe('A planted backdoor known to the caller (a canary model, a benchmark). Its attack success rate is measured on held-out samples, the attack\'s own way, before and after unlearning (status.metrics.knownTriggerAsrBefore/After). It never steers the scan.'),
    [
      {
        rule: '!has(self.victimLabel) || !has(self.targetLabel) || self.victimLabel != self.targetLabel',
        message: 'knownTrigger.victimLabel and knownTrigger.targetLabel must differ',
        fieldPath: '.targetLabel',
        check: (k) => k.victimLabel === undefined || k.targetLabel === undefined || k.victimLabel !== k.targetLabel,
      },
      {
        rule: `!(self.attack in ['fixed-name', 'rename']) || self.trigger.matches(r'${IDENTIFIER}')`,
        message: 'knownTrigger.trigger must be an ASCII identifier for the fixed-name and rename attacks',
        fieldPath: '.trigger',
        check: (k) => !['fixed-name', 'rename'].includes(k.attack) || re(IDENTIFIER).test(k.trigger),
      },
      {
        rule: `self.attack != 'suffix' || self.trigger.matches(r'${WORD}')`,
        message: 'knownTrigger.trigger must hold only ASCII letters, digits and _ for the suffix attack',
        fieldPath: '.trigger',
        check: (k) => k.attack !== 'suffix' || re(WORD).test(k.trigger),
      },
    ],
  ),
  'spec.knownTrigger',
);

export const EarlyStop = z
  .object({
    patience: z
      .int()
      .min(0)
      .max(100000)
      .default(0)
      .describe('Stop an inversion run after this many iterations without a new best loss. 0 disables (reference behaviour).'),
    lossBelow: decimal('Stop an inversion run as soon as the best loss is at or below this value.', { min: 0, max: 1000 }),
    asrAtLeast: decimal('Stop an inversion run as soon as its best trigger flips at least this fraction of the inversion samples to the target (classification only).', { gt: 0, max: 1 }),
  })
  .describe('Early stopping of trigger inversion (an extension; the reference runs every iteration).');

export const ScanParameters = immutable(
  withRules(
    z
      .object({
        triggerLength: z.int().min(1).max(32).default(5).describe('Trigger length n in tokens (reference: 5).'),
        targetLength: z.int().min(1).max(16).default(2).describe('Query-side target length m for the search task (reference: 2).'),
        topK: z.int().min(1).max(4096).default(64).describe('Top-k gradient tokens per trigger position (reference: 64).'),
        candidates: z.int().min(1).max(1024).default(64).describe('Single-swap candidates scored per iteration, r (reference: 64).'),
        iterations: z.int().min(1).max(100000).default(100).describe('GCG iterations per scan option (reference: 100).'),
        inversionSamples: z.int().min(1).max(1000).default(30).describe('Clean victim-label samples used for inversion (reference: 30).'),
        beta: decimal(
          'Anchoring threshold: a trigger token is kept when removing it raises the loss by more than beta (reference: "0.15"). A decimal string, not a float.',
          { min: 0, max: 100 },
          '0.15',
        ),
        positionMode: z
          .enum(['Both', 'SampleSpecific', 'Fixed', 'BodyStart'])
          .default('SampleSpecific')
          .describe('Where triggers are inserted: SampleSpecific (least-sensitive identifier per sample; spec 2.2, the default), Fixed (fixedPosition), Both (the two: the reference\'s scan) or BodyStart (where a statement can begin in the function body, the slot dead-code attacks use; an extension). Not the reference\'s Both by default: the verdict was calibrated on sample-specific options only, so in Both they alone decide (unless detectionThreshold is set) and the Fixed options, scored and reported, double the inversion time; on the zoo\'s clean defect model the tokens GCG finds at fixed position 50 flip every held-out sample.'),
        fixedPosition: z.int().min(1).max(1024).default(50).describe('BPE token position used by the Fixed mode (reference: 50).'),
        seed: z.int().min(0).max(2147483647).default(123456).describe('Random seed of trigger initialisation and candidate sampling (reference: 123456).'),
        maxLength: z.int().min(8).max(4096).default(400).describe('Code length in BPE tokens, capped to the model\'s positions (reference: 400).'),
        queryMaxLength: z.int().min(4).max(4096).default(128).describe('Query length in BPE tokens for code search (reference: 128).'),
        keepWordInitial: z.boolean().default(false).describe('Also keep word-initial identifier tokens (a leading space marker) in the trigger vocabulary (spec 3.9; reference: false).'),
        screenLimit: z
          .int()
          .min(0)
          .max(1000000)
          .optional()
          .describe('Single tokens scored before each inversion run, which then starts from the best of them (an extension; the verdict\'s threshold was calibrated with it). 0: the reference\'s random start. Omitted: the worker default (1024).'),
        twoSidedAnchoring: z.boolean().default(false).describe('Anchoring also keeps a token whose removal lowers the loss by more than beta (the paper\'s |ΔL|; the reference code is one-sided).'),
        anchorRepeats: z.boolean().default(false).describe('Anchoring also keeps every copy of a repeated token whose removal as a whole raises the loss by more than beta (the reference drops it).'),
        detectionThreshold: decimal('Detection-score threshold above which the verdict is Backdoored. Omitted: the worker default.', {
          min: 0,
          max: 1000000,
        }),
        earlyStop: EarlyStop.prefault({}),
      })
      .describe('Trigger-inversion parameters (EliBadCode steps B-D). Defaults are the reference implementation\'s, except positionMode (SampleSpecific, not Both).'),
    [
      {
        // Guarded: the API server checks the `default: {}` of parameters against this rule without
        // applying the nested defaults first.
        rule: '!has(self.earlyStop) || !has(self.earlyStop.patience) || !has(self.iterations) || self.earlyStop.patience < self.iterations',
        message: 'parameters.earlyStop.patience must be less than parameters.iterations',
        fieldPath: '.earlyStop.patience',
        check: (p) => p.earlyStop.patience < p.iterations,
      },
    ],
  ),
  'spec.parameters',
);

export const Unlearning = immutable(
  withRules(
    z
      .object({
        data: DataSource.optional().describe('Clean unlearning set D_u. Omitted: spec.data is used.'),
        injectionRate: decimal('Fraction of the samples injectionScope allows that receive the inverted trigger, keeping their true label (reference: "0.2").', { gt: 0, max: 1 }, '0.2'),
        injectionScope: z
          .enum(['Victim', 'All'])
          .default('Victim')
          .describe('Samples that may receive the trigger: Victim (victim-label samples only; reference) or All (every label at the same rate, so the trigger predicts no label).'),
        placement: z
          .enum(['Identifier', 'BodyStart', 'FunctionName'])
          .default('Identifier')
          .describe('Where the trigger goes: Identifier (in front of a random identifier, a defender-chosen slot like inversion\'s), BodyStart (where a statement can begin in the function body) or FunctionName (the reference\'s function-name substitution, which is the identifier attacks\' own placement; for comparisons).'),
        learningRate: decimal('AdamW learning rate. Omitted: "5e-3" for defect and clone (reference), "5e-4" for search (the reference\'s rate, applied to the whole bi-encoder, costs a clean search model about 4 MRR points).', { gt: 0, max: 1 }),
        epochs: z.int().min(1).max(100).default(1).describe('Fine-tuning epochs (reference: 1).'),
        batchSize: z.int().min(1).max(4096).default(32).describe('Fine-tuning batch size (reference: 32).'),
        warmupRatio: decimal('Fraction of steps with linear warm-up, then linear decay (reference: "0.1").', { min: 0, max: 1 }, '0.1'),
        gradientClip: decimal('Global gradient-norm clip (reference: "1.0").', { gt: 0, max: 1000 }, '1.0'),
        weightDecay: decimal('AdamW weight decay (reference: "0").', { min: 0, max: 1 }, '0'),
        seed: z.int().min(0).max(2147483647).default(42).describe('Seed of trigger injection and shuffling (reference: 42).'),
        force: z.boolean().default(false).describe('Unlearn whatever the verdict (the paper\'s setting, which assumes every model is backdoored). false: unlearn only a Backdoored verdict\'s trigger.'),
        trainable: z
          .enum(['Auto', 'Head', 'All'])
          .default('Auto')
          .describe('Parameters fine-tuned: Head (classifier only), All, or Auto (Head for defect/clone, All for search; reference).'),
        adversary: z
          .object({
            step: decimal('Length of each normalised gradient step, in mean embedding-row norms ("0.3").', { gt: 0, max: 100 }, '0.3'),
            radius: decimal('Largest distance of a trigger row from its starting embedding, in mean embedding-row norms ("3").', { gt: 0, max: 100 }, '3'),
            steps: z.int().min(1).max(100).default(1).describe('Adversary gradient steps before each training step (1).'),
          })
          .optional()
          .describe('Adversarial unlearning (an extension, defect and clone only): the injected trigger\'s embeddings are re-optimised towards the target label before every training step, within a radius of the inverted trigger, so the model unlearns the neighbourhood of the trigger GCG found. Omitted: the discrete trigger (reference).'),
      })
      .describe('Trigger unlearning (EliBadCode step E), run when spec.eliminate is true.'),
    [
      {
        rule: "!has(self.adversary) || !has(self.placement) || self.placement != 'FunctionName'",
        message: 'spec.unlearning.adversary needs a defender placement (Identifier or BodyStart): FunctionName re-tokenises the trigger',
        fieldPath: '.adversary',
        check: (u) => u.adversary === undefined || u.placement !== 'FunctionName',
      },
    ],
  ),
  'spec.unlearning',
);

export const Evaluation = immutable(
  z
    .object({
      data: DataSource.optional().describe('Held-out clean samples for the verdict and the before/after metrics. Omitted: part of spec.data (see fraction).'),
      fraction: decimal('When neither evaluation.data nor unlearning.data is given: the share of spec.data left after inversion that is held out for evaluation; the rest is unlearning data. Omitted: "0.5".', { gt: 0, max: 1 }),
      verdictSamples: z.int().min(1).max(100000).optional().describe('Held-out victim-label samples the verdict scores the inverted trigger on. Omitted: the worker default (40).'),
    })
    .describe('Held-out evaluation: the verdict and the metrics before and after unlearning.'),
  'spec.evaluation',
);

export const Output = immutable(
  z
    .object({
      uri: uri(['s3', 'pvc'], 'Output location of the cleaned model'),
      reportUri: uri(['s3', 'pvc'], 'Location of the full JSON report').optional().describe('Full JSON report. Omitted: report.json beside the cleaned model.'),
    })
    .describe('Where the worker writes the cleaned model and the full report.'),
  'spec.output',
);

export const SecretReference = z
  .object({
    secretName: z
      .string()
      .min(1)
      .max(253)
      .regex(re(PATTERNS.dns1123Subdomain))
      .describe('Name of a Secret in the scan\'s namespace (for example with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / HF_TOKEN).'),
    keys: z
      .array(z.string().min(1).max(128).regex(re(PATTERNS.envVarName)))
      .max(32)
      .optional()
      .describe('Keys of the Secret exposed to the worker as environment variables of the same name. Omitted: every key.'),
  })
  .describe('Credentials for the model, data and output locations, by reference to a Secret; values are never inline.');

const ResourceList = z
  .object({
    cpu: Quantity.optional(),
    memory: Quantity.optional(),
    'ephemeral-storage': Quantity.optional(),
  })
  .describe('CPU, memory and ephemeral-storage quantities.');

export const Resources = withRules(
  z
    .object({
      gpus: z.int().min(0).max(16).default(1).describe('GPUs per worker (limit of gpuResourceName). 0 runs on CPU.'),
      gpuResourceName: z
        .string()
        .min(1)
        .max(253)
        .regex(re(PATTERNS.qualifiedName))
        .optional()
        .describe(`Extended resource name of a GPU, e.g. amd.com/gpu. Omitted: the operator's configured default (${DEFAULT_GPU_RESOURCE_NAME} unless the cluster admin changed it).`),
      gpuProduct: z
        .string()
        .min(1)
        .max(63)
        .regex(re(PATTERNS.labelValue))
        .optional()
        .describe('GPU product, such as NVIDIA-H100-80GB-HBM3; becomes the node selector nvidia.com/gpu.product.'),
      requests: ResourceList.optional(),
      limits: ResourceList.optional(),
    })
    .describe('Compute resources of the worker pod. Omitted requests/limits: the operator\'s defaults.'),
  [
    {
      rule: '!has(self.gpuProduct) || self.gpus > 0',
      message: 'resources.gpuProduct needs resources.gpus > 0',
      fieldPath: '.gpuProduct',
      check: (r) => r.gpuProduct === undefined || r.gpus > 0,
    },
  ],
);

export const Toleration = withRules(
  z.object({
    key: z.string().max(317).optional(),
    operator: z.enum(['Exists', 'Equal']).default('Equal'),
    value: z.string().max(63).optional(),
    effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
    tolerationSeconds: z.int().min(0).max(31536000).optional(),
  }),
  [
    {
      rule: "self.operator != 'Exists' || !has(self.value) || self.value == ''",
      message: 'a toleration with operator Exists must not set value',
      fieldPath: '.value',
      check: (t) => t.operator !== 'Exists' || !t.value,
    },
    {
      rule: "has(self.key) || self.operator == 'Exists'",
      message: 'a toleration without key must use operator Exists',
      fieldPath: '.operator',
      check: (t) => t.key !== undefined || t.operator === 'Exists',
    },
  ],
).describe('A pod toleration (core/v1 Toleration).');

const NodeSelector = z
  .record(z.string().min(1).max(317), z.string().max(63))
  .refine((m) => Object.keys(m).length <= 32, 'nodeSelector may hold at most 32 entries')
  .meta({ maxProperties: 32, description: 'Node labels the worker pod must match (merged with the GPU product selector).' });

export const BackdoorScanSpec = withRules(
  z.object({
    task: withRules(z.enum(['defect', 'clone', 'search']), [
      { rule: 'self == oldSelf', message: 'spec.task is immutable; create a new BackdoorScan instead', reason: 'FieldValueForbidden' },
    ]).describe('Task of the model: defect detection, clone detection, or code search.'),
    model: ModelSource,
    data: immutable(DataSource.describe('Clean inversion data (victim-label samples are drawn from it).'), 'spec.data'),
    labels: Labels.optional(),
    parameters: ScanParameters.prefault({}),
    eliminate: withRules(z.boolean(), [
      { rule: 'self == oldSelf', message: 'spec.eliminate is immutable; create a new BackdoorScan instead', reason: 'FieldValueForbidden' },
    ])
      .default(true)
      .describe('Unlearn the inverted trigger and write a cleaned model (default true).'),
    unlearning: Unlearning.prefault({}),
    evaluation: Evaluation.prefault({}),
    knownTrigger: KnownTrigger.optional(),
    output: Output.optional(),
    credentials: SecretReference.optional(),
    resources: Resources.prefault({}),
    nodeSelector: NodeSelector.optional(),
    tolerations: z.array(Toleration).max(32).optional().describe('Tolerations of the worker pod, e.g. for GPU node taints.'),
    priorityClassName: z.string().min(1).max(253).regex(re(PATTERNS.dns1123Subdomain)).optional().describe('PriorityClass of the worker pod.'),
    queueName: z
      .string()
      .min(1)
      .max(63)
      .regex(re(PATTERNS.labelValue))
      .optional()
      .describe('Kueue LocalQueue; set as the label kueue.x-k8s.io/queue-name on the Job. Queueing and quota belong to Kueue.'),
    activeDeadlineSeconds: z.int().min(1).max(31536000).optional().describe('Wall-clock limit of one attempt (Job activeDeadlineSeconds); exceeding it fails the scan with DeadlineExceeded.'),
    retry: z
      .object({
        maxAttempts: z.int().min(1).max(10).default(3).describe('Attempts (Jobs) before the scan is Failed. Failures the worker reports as permanent (invalid input, bad model, digest mismatch) are not retried.'),
      })
      .prefault({})
      .describe('Retry policy: one Job per attempt.'),
    suspend: z.boolean().default(false).describe('Pause or cancel: deletes the running Job and keeps the status; false resumes with a new attempt.'),
    workerImage: z.string().min(1).max(512).regex(re(PATTERNS.image)).optional().describe('Override of the operator\'s worker image.'),
    ttlSecondsAfterFinished: z.int().min(0).max(31536000).optional().describe('TTL of the finished Job and its pods (not of the BackdoorScan). Omitted: the operator default.'),
  }),
  [
    {
      rule: 'has(self.labels) == has(oldSelf.labels)',
      message: 'spec.labels cannot be added or removed after creation',
      fieldPath: '.labels',
      reason: 'FieldValueForbidden',
    },
    {
      rule: 'has(self.knownTrigger) == has(oldSelf.knownTrigger)',
      message: 'spec.knownTrigger cannot be added or removed after creation',
      fieldPath: '.knownTrigger',
      reason: 'FieldValueForbidden',
    },
    {
      rule: 'has(self.output) == has(oldSelf.output)',
      message: 'spec.output cannot be added or removed after creation',
      fieldPath: '.output',
      reason: 'FieldValueForbidden',
    },
    {
      rule: "self.task != 'search' || !has(self.labels)",
      message: 'spec.labels applies to the defect and clone tasks only',
      fieldPath: '.labels',
      check: (s) => s.task !== 'search' || s.labels === undefined,
    },
    {
      rule: "self.task != 'search' || !has(self.unlearning) || !has(self.unlearning.adversary)",
      message: 'spec.unlearning.adversary applies to the defect and clone tasks only',
      fieldPath: '.unlearning.adversary',
      check: (s) => s.task !== 'search' || s.unlearning?.adversary === undefined,
    },
    {
      rule: "!has(self.knownTrigger) || (self.task == 'search') == has(self.knownTrigger.targetWord)",
      message: 'spec.knownTrigger.targetWord is required for code search and applies to it only',
      fieldPath: '.knownTrigger.targetWord',
      check: (s) => s.knownTrigger === undefined || (s.task === 'search') === (s.knownTrigger.targetWord !== undefined),
    },
    {
      rule: "self.task != 'search' || !has(self.knownTrigger) || (!has(self.knownTrigger.victimLabel) && !has(self.knownTrigger.targetLabel))",
      message: 'spec.knownTrigger.victimLabel and targetLabel apply to the defect and clone tasks only',
      fieldPath: '.knownTrigger',
      check: (s) => s.task !== 'search' || s.knownTrigger === undefined || (s.knownTrigger.victimLabel === undefined && s.knownTrigger.targetLabel === undefined),
    },
    {
      rule: '!has(self.evaluation) || !has(self.evaluation.fraction) || (!has(self.evaluation.data) && (!has(self.unlearning) || !has(self.unlearning.data)))',
      message: 'spec.evaluation.fraction splits spec.data, so it applies only when neither evaluation.data nor unlearning.data is given',
      fieldPath: '.evaluation.fraction',
      check: (s) => s.evaluation.fraction === undefined || (s.evaluation.data === undefined && s.unlearning.data === undefined),
    },
    {
      rule: "self.task != 'search' || !has(self.parameters) || !has(self.parameters.earlyStop) || !has(self.parameters.earlyStop.asrAtLeast)",
      message: 'spec.parameters.earlyStop.asrAtLeast applies to the defect and clone tasks only',
      fieldPath: '.parameters.earlyStop.asrAtLeast',
      check: (s) => s.task !== 'search' || s.parameters.earlyStop.asrAtLeast === undefined,
    },
    {
      rule: '!has(self.unlearning) || !has(self.unlearning.force) || !self.unlearning.force || self.eliminate',
      message: 'spec.unlearning.force needs spec.eliminate true',
      fieldPath: '.unlearning.force',
      check: (s) => !s.unlearning.force || s.eliminate,
    },
    {
      rule: '!self.eliminate || has(self.output)',
      message: 'spec.output is required when spec.eliminate is true (the cleaned model must be written somewhere)',
      fieldPath: '.output',
      reason: 'FieldValueRequired',
      check: (s) => !s.eliminate || s.output !== undefined,
    },
  ],
).describe('Desired scan. Everything that determines the result is immutable; scheduling fields may change.');

// ---------------------------------------------------------------------------------------------
// Status

export const Condition = z
  .object({
    type: z.string().min(1).max(316).regex(re(PATTERNS.conditionType)).describe('Condition type in CamelCase, e.g. Succeeded.'),
    status: z.enum(['True', 'False', 'Unknown']),
    reason: z.string().min(1).max(1024).regex(re(PATTERNS.reason)).describe('One-word CamelCase reason.'),
    message: z.string().max(32768).describe('Human-readable details.'),
    lastTransitionTime: z.iso.datetime().describe('When status last changed.'),
    observedGeneration: z.int().min(0).optional().describe('metadata.generation the condition was set for.'),
  })
  .describe('A metav1.Condition.');
export type Condition = z.infer<typeof Condition>;

export const Trigger = z
  .object({
    tokenIds: z.array(z.int().min(0)).max(64).describe('Token ids in the model vocabulary.'),
    tokens: z.array(z.string().max(128)).max(64).describe('BPE token strings.'),
    text: z.string().max(1024).describe('Decoded string (special tokens skipped).'),
  })
  .describe('A trigger as token ids, tokens and decoded text.');
export type Trigger = z.infer<typeof Trigger>;

export const Triggers = z
  .object({
    raw: Trigger.optional().describe('Best trigger found by GCG inversion.'),
    anchored: Trigger.optional().describe('Anchored trigger: tokens whose removal raises the loss by more than beta.'),
    query: Trigger.optional().describe('Query-side target (search task).'),
  })
  .describe('Inverted triggers.');
export type Triggers = z.infer<typeof Triggers>;

const Ratio = z.number().min(0).max(1);

export const Metrics = z
  .object({
    bestLoss: z.number().optional().describe('Lowest inversion loss L* of the winning scan option.'),
    detectionScore: z.number().optional().describe('Detection score the verdict is based on.'),
    detectionThreshold: z.number().optional().describe('Threshold the score was compared with.'),
    detectionScoreAfter: z.number().optional().describe('The same detection score on the cleaned model (same trigger and samples): below the threshold, the trigger the scan found no longer works; a backdoor the scan did not find may remain.'),
    asrBefore: Ratio.optional().describe('Attack success rate of the inverted trigger before unlearning.'),
    asrAfter: Ratio.optional().describe('Attack success rate of the inverted trigger after unlearning.'),
    knownTriggerAsrBefore: Ratio.optional().describe('ASR of a known (evaluation) trigger before unlearning.'),
    knownTriggerAsrAfter: Ratio.optional().describe('ASR of a known (evaluation) trigger after unlearning.'),
    accuracyBefore: Ratio.optional().describe('Clean accuracy before unlearning (defect).'),
    accuracyAfter: Ratio.optional().describe('Clean accuracy after unlearning (defect).'),
    f1Before: Ratio.optional().describe('Clean F1 before unlearning (clone).'),
    f1After: Ratio.optional().describe('Clean F1 after unlearning (clone).'),
    mrrBefore: Ratio.optional().describe('Clean MRR before unlearning (search).'),
    mrrAfter: Ratio.optional().describe('Clean MRR after unlearning (search).'),
  })
  .describe('Scan and unlearning metrics; ratios are in [0, 1].');
export type Metrics = z.infer<typeof Metrics>;

export const Artifact = z
  .object({
    modelUri: z.string().max(URI_MAX).optional().describe('URI of the cleaned model.'),
    sha256: z.string().max(64).regex(re(PATTERNS.sha256)).optional().describe('SHA-256 of the cleaned model (directory manifest).'),
    reportUri: z.string().max(URI_MAX).optional().describe('URI of the full JSON report.'),
  })
  .describe('What the worker wrote.');
export type Artifact = z.infer<typeof Artifact>;

/** Caveats in a summary and in status: at most this many, each at most CAVEAT_MAX characters. */
export const MAX_CAVEATS = 8;
export const CAVEAT_MAX = 256;
export const Caveats = z
  .array(z.string().min(1).max(CAVEAT_MAX))
  .max(MAX_CAVEATS)
  .describe('What the worker fell back on or warns about (too few samples, a threshold not calibrated for the winning option\'s position mode, a cleaned model that still scores as backdoored, ...): the first few, shortened; the full list is in the report (artifact.reportUri, "fallbacks").');
export type Caveats = z.infer<typeof Caveats>;

export const Durations = z
  .object({
    totalSeconds: z.number().min(0).optional(),
    downloadSeconds: z.number().min(0).optional(),
    scanSeconds: z.number().min(0).optional(),
    eliminateSeconds: z.number().min(0).optional(),
    evaluateSeconds: z.number().min(0).optional(),
    uploadSeconds: z.number().min(0).optional(),
  })
  .describe('Wall-clock seconds spent by the worker per stage.');
export type Durations = z.infer<typeof Durations>;

export const Progress = z
  .object({
    stage: z.string().min(1).max(64).regex(re(PATTERNS.reason)).describe('Worker stage, e.g. Inversion or Unlearning.'),
    option: z.string().max(128).optional().describe('Scan option being run, e.g. "1->0 SampleSpecific".'),
    iteration: z.int().min(0).optional(),
    totalIterations: z.int().min(0).optional(),
    bestLoss: z.number().optional(),
    updatedAt: z.iso.datetime(),
  })
  .describe('Live progress of the running attempt.');
export type Progress = z.infer<typeof Progress>;

export const BackdoorScanStatus = z
  .object({
    observedGeneration: z.int().min(0).optional().describe('metadata.generation this status reflects.'),
    conditions: z
      .array(Condition)
      .max(16)
      .optional()
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] })
      .describe('Accepted, Running, BackdoorDetected, Eliminated, Succeeded, Failed, Suspended.'),
    verdict: z.enum(['Backdoored', 'Clean', 'Unknown']).optional(),
    targetLabel: z.int().min(0).optional(),
    victimLabel: z.int().min(0).optional(),
    positionMode: z.enum(['SampleSpecific', 'Fixed', 'BodyStart']).optional().describe('Position mode of the winning scan option.'),
    triggers: Triggers.optional(),
    metrics: Metrics.optional(),
    artifact: Artifact.optional(),
    durations: Durations.optional(),
    caveats: Caveats.optional(),
    startTime: z.iso.datetime().optional(),
    completionTime: z.iso.datetime().optional(),
    attempts: z.int().min(0).optional().describe('Jobs created so far.'),
    jobName: z.string().max(63).optional().describe('Name of the current or last Job.'),
    progress: Progress.optional(),
  })
  .describe('Observed state, written by the operator only.');

export const ObjectMeta = z
  .object({
    name: z.string().optional(),
    namespace: z.string().optional(),
    uid: z.string().optional(),
    generation: z.int().optional(),
    resourceVersion: z.string().optional(),
    creationTimestamp: z.string().optional(),
    deletionTimestamp: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
    finalizers: z.array(z.string()).optional(),
  })
  .loose();

/** The whole object, for `safeParse` of what the API server returns (the CRD wraps spec/status). */
export const BackdoorScan = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(KIND),
  metadata: ObjectMeta,
  spec: BackdoorScanSpec,
  status: BackdoorScanStatus.optional(),
});

export type BackdoorScanSpec = z.infer<typeof BackdoorScanSpec>;
/** What a user writes (defaults optional). */
export type BackdoorScanSpecInput = z.input<typeof BackdoorScanSpec>;
export type BackdoorScanStatus = z.infer<typeof BackdoorScanStatus>;
export type BackdoorScan = z.infer<typeof BackdoorScan>;
export type ObjectMeta = z.infer<typeof ObjectMeta>;
export type ScanParameters = z.infer<typeof ScanParameters>;
export type Unlearning = z.infer<typeof Unlearning>;
export type Resources = z.infer<typeof Resources>;
export type Toleration = z.infer<typeof Toleration>;
export type SecretReference = z.infer<typeof SecretReference>;
export type ModelSource = z.infer<typeof ModelSource>;
export type DataSource = z.infer<typeof DataSource>;
