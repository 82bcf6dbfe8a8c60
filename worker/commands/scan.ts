import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { WorkerErrorReason } from '../../crds/scan-summary.ts';
import { DEMO_DEFAULTS, POSITION_MODE_OPTIONS, REFERENCE_DEFAULTS, SEARCH_UNLEARN_LEARNING_RATE, ScanError, runScan, type ScanOptions } from '../pipeline/scan.ts';
import { DEFAULT_THRESHOLDS } from '../pipeline/verdict.ts';
import { ADVERSARY_DEFAULTS, type Adversary } from '../pipeline/unlearning.ts';
import { errorSummary, writeAtomically } from '../pipeline/report.ts';
import { StorageError, materialize, outputUri, publish, publishFile } from '../storage/locations.ts';
import { s3ConfigFromEnv } from '../storage/s3.ts';
import { parseFlags, required } from './args.ts';
import { EXIT, UsageError, type Command } from './command.ts';

const D = DEMO_DEFAULTS;
const R = REFERENCE_DEFAULTS;

export const usage = [
  'Usage: elibadcode scan --model DIR --data CLEAN.jsonl --task defect|clone|search --out DIR [options]',
  '',
  'Finds a backdoor trigger by GCG inversion (EliBadCode), decides backdoored/clean, unlearns it and',
  'verifies. Writes OUT/model (cleaned checkpoint, atomic), OUT/report.json and OUT/summary.json.',
  '',
  'Inputs',
  '  --model DIR|URI          Hugging Face checkpoint (config.json, model.safetensors or a sharded index, tokenizer.json):',
  '                           a directory, s3://bucket/prefix/ (every object directly under it) or an https:// base URL',
  '                           (https://huggingface.co/ORG/NAME/resolve/REV; HF_TOKEN is sent as a bearer token)',
  '  --model-sha256 HEX       refuse the model unless its model.safetensors or directory digest matches (checked after download)',
  '  --data FILE|URI          clean JSON lines: defect {code,label}; clone {code1,code2,label}; search {code,query};',
  '                           a file, an s3:// object or an https:// URL (so are --eval-data and --unlearn-data)',
  '  --data-sha256 HEX        refuse the data unless its sha256 matches',
  '  --eval-data FILE         held-out rows for the verdict and verification (default: half of what --data leaves)',
  '  --eval-data-sha256 HEX',
  '  --unlearn-data FILE      clean unlearning set D_u (default: the rest of --data)',
  '  --unlearn-data-sha256 HEX',
  '  --task defect|clone|search',
  'Outputs',
  '  --out DIR|s3://B/P       output directory, or an s3:// prefix: written in --scratch, then uploaded, SHA256SUMS last',
  '  --report FILE|s3://B/K   full report (default OUT/report.json)',
  '  --summary-file FILE      ≤4 KiB status summary (default $ELIBADCODE_SUMMARY_FILE; always OUT/summary.json too)',
  '  --scratch DIR            working directory for downloads and outputs before upload (default: a temporary',
  '                           directory, removed at exit)',
  '  S3: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION|AWS_DEFAULT_REGION (us-east-1),',
  '      AWS_ENDPOINT_URL_S3|AWS_ENDPOINT_URL (a custom endpoint: path-style addressing)',
  'Inversion (demo-sized defaults; --reference sets the reference implementation\'s)',
  `  --reference              top-k ${R.topK}, candidates ${R.candidates}, iterations ${R.iterations}, samples ${R.inversionSamples}, position Both, max length ${R.maxLength}, no early stop`,
  '  --victim-label N --target-label N   scan only these (default: every ordered pair)',
  `  --trigger-length N (${D.triggerLength})  --target-length M (search, ${D.targetLength})  --top-k K (${D.topK})  --candidates R (${D.candidates})`,
  `  --iterations N (${D.iterations})  --inversion-samples N (${D.inversionSamples})  --beta B (${D.beta})  --two-sided-anchoring`,
  '  --anchor-repeats         also keep every copy of a repeated token whose removal as a whole raises the loss by more than beta (the reference drops it)',
  `  --position-mode ${POSITION_MODE_OPTIONS.join('|')} (${D.positionMode})  --fixed-position P (${D.fixedPosition})`,
  '  --legacy-eval-position [P]  score candidates at fixed position P (reference code: 10), not the sample-specific ones',
  `  --seed N (${D.seed})  --max-length N (${D.maxLength})  --query-max-length N (${D.queryMaxLength})  --keep-word-initial  --dropout`,
  '  --no-vocabulary-filter   an ablation: search every token but the special ones, not only identifier pieces (spec 2.1)',
  `  --screen-limit N (${D.screenLimit}; 0 = reference random start): score up to N single tokens first, start GCG from the best`,
  `  --early-stop-patience N (${D.patience}; 0 = off)  --early-stop-loss X  --early-stop-asr F`,
  `  --max-identifiers N (${D.maxIdentifiers})  --tokens-per-batch N (${D.tokensPerBatch})`,
  'Verdict',
  `  --detection-threshold X  (default per task: defect ${DEFAULT_THRESHOLDS.defect}, clone ${DEFAULT_THRESHOLDS.clone} on the best option's max(single-token flip rate, trigger confidence); search lift ${DEFAULT_THRESHOLDS.search})  --verdict-samples N (${D.verdictSamples})  --eval-fraction F (${D.evalFraction})`,
  'Unlearning',
  '  --eliminate (unlearn when the verdict is Backdoored; default)  --force-eliminate (always)  --no-eliminate',
  `  --injection-rate F (${D.unlearning.injectionRate})  --learning-rate F (${D.unlearning.learningRate}; search ${SEARCH_UNLEARN_LEARNING_RATE})  --epochs N (${D.unlearning.epochs})  --batch-size N (${D.unlearning.batchSize})`,
  `  --warmup-ratio F (${D.unlearning.warmupRatio})  --gradient-clip F (${D.unlearning.gradientClip})  --weight-decay F (${D.unlearning.weightDecay})  --unlearn-seed N (${D.unlearning.seed})`,
  '  --injection-scope victim|all (victim: reference; all: every label at the same rate, so the trigger predicts no label)',
  '  --trainable Auto|Head|All (Auto: head for defect/clone, all for search)',
  `  --adversarial-unlearning  re-optimise the trigger's embeddings towards the target before every step (classification; an extension, README)`,
  `  --adversary-step S (${ADVERSARY_DEFAULTS.step})  --adversary-radius R (${ADVERSARY_DEFAULTS.radius})  --adversary-steps N (${ADVERSARY_DEFAULTS.steps})   sizes in mean embedding-row norms; any of them implies --adversarial-unlearning`,
  '  --unlearn-placement identifier|body-start|function-name (identifier: a random identifier slot; body-start: the function body\'s start; both defender-chosen; function-name: the reference\'s substitution)',
  '  --unlearn-random-trigger  a control: unlearn random vocabulary tokens (as many as the trigger found) instead of it; if the',
  '                           planted trigger falls as far, the fine-tuning and not the inversion did the work',
  '  --unlearn-known-trigger   the oracle control: unlearn the --known-trigger, put in by --known-attack the attack\'s way, instead of the',
  '                           trigger found; if the planted trigger survives even this, no inverted trigger can remove it with these settings',
  'Verification',
  '  --known-trigger T --known-attack fixed-name|suffix|deadcode|deadcode-random|rename   ASR of a known trigger before/after',
  '  --known-victim-label N --known-target-label N   classification: the known attack\'s direction (a binary head fills in the other; default: the scan\'s direction)',
  '  --known-target-word W    code search: the query word the known attack targets (ASR = share of triggered codes in the top 10% for queries with W; ANR too)',
  '  --backend tensorflow|webgpu|wasm|cpu   (default: tensorflow when installed, else wasm; webgpu only when asked for)',
  '',
  'Exit codes: 0 done (any verdict), 1 the model or data is unusable or the scan failed (summary has error.reason), 2 bad flags.',
].join('\n');

/** The adversary of --adversarial-unlearning, when asked for (any of its flags turns it on). */
function adversaryOf(f: Record<string, unknown>): { adversary?: Adversary } {
  const given = f['adversarial-unlearning'] === true || ['adversary-step', 'adversary-radius', 'adversary-steps'].some((k) => f[k] !== undefined);
  if (!given) return {};
  return {
    adversary: {
      step: num(f['adversary-step'], 'adversary-step', ADVERSARY_DEFAULTS.step, { min: 0 }),
      radius: num(f['adversary-radius'], 'adversary-radius', ADVERSARY_DEFAULTS.radius, { min: 0 }),
      steps: num(f['adversary-steps'], 'adversary-steps', ADVERSARY_DEFAULTS.steps, { int: true, min: 1 }),
    },
  };
}

function num(v: unknown, flag: string, fallback: number, o: { min?: number; max?: number; int?: boolean } = {}): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n) || (o.int && !Number.isInteger(n)) || (o.min !== undefined && n < o.min) || (o.max !== undefined && n > o.max)) {
    const range = [o.min !== undefined ? `>= ${o.min}` : '', o.max !== undefined ? `<= ${o.max}` : ''].filter(Boolean).join(' and ');
    throw new UsageError(`--${flag} must be ${o.int ? 'an integer' : 'a number'}${range ? ` ${range}` : ''}, got "${v}"`);
  }
  return n;
}

function optNum(v: unknown, flag: string, o: { min?: number; max?: number; int?: boolean } = {}): number | undefined {
  return v === undefined ? undefined : num(v, flag, 0, o);
}

function choice<T extends string>(v: unknown, flag: string, allowed: readonly T[], fallback: T): T {
  if (v === undefined) return fallback;
  const hit = allowed.find((a) => a.toLowerCase() === String(v).toLowerCase());
  if (!hit) throw new UsageError(`--${flag} must be one of ${allowed.join(', ')}, got "${v}"`);
  return hit;
}

function sha256File(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** The model digest: of model.safetensors, or of the directory manifest ("<sha>  <file>\n" sorted), as saveCheckpoint reports. */
function modelDigests(dir: string): string[] {
  const files = readdirSync(dir).filter((f) => statSync(join(dir, f)).isFile()).sort();
  const listing = files.map((f) => `${sha256File(join(dir, f))}  ${f}\n`).join('');
  const out = [createHash('sha256').update(listing).digest('hex')];
  if (files.includes('model.safetensors')) out.push(sha256File(join(dir, 'model.safetensors')));
  return out;
}

function checkLocal(path: string, flag: string): void {
  if (!existsSync(path)) throw new ScanError(WorkerErrorReason.InvalidInput, `${flag} ${path}: does not exist`);
}

export function parseScanArgs(args: string[]): ScanOptions & { dataSha256?: string; evalDataSha256?: string; modelSha256?: string; unlearnDataSha256?: string; scratch?: string } {
  const s = { type: 'string' } as const;
  const b = { type: 'boolean' } as const;
  const f = parseFlags(args, {
    model: s, 'model-sha256': s, data: s, 'data-sha256': s, 'eval-data': s, 'eval-data-sha256': s, 'unlearn-data': s, 'unlearn-data-sha256': s, task: s,
    out: s, report: s, 'summary-file': s, scratch: s, reference: b,
    'victim-label': s, 'target-label': s, 'trigger-length': s, 'target-length': s, 'top-k': s, candidates: s, iterations: s,
    'inversion-samples': s, beta: s, 'two-sided-anchoring': b, 'anchor-repeats': b, 'position-mode': s, 'fixed-position': s, 'legacy-eval-position': s,
    seed: s, 'screen-limit': s, 'max-length': s, 'query-max-length': s, 'keep-word-initial': b, 'no-vocabulary-filter': b, dropout: b,
    'early-stop-patience': s, 'early-stop-loss': s, 'early-stop-asr': s, 'max-identifiers': s, 'tokens-per-batch': s,
    'detection-threshold': s, 'verdict-samples': s, 'eval-fraction': s,
    eliminate: b, 'force-eliminate': b, 'no-eliminate': b,
    'injection-rate': s, 'injection-scope': s, 'learning-rate': s, epochs: s, 'batch-size': s, 'warmup-ratio': s, 'gradient-clip': s, 'weight-decay': s,
    'unlearn-seed': s, trainable: s, 'unlearn-placement': s, 'adversarial-unlearning': b, 'unlearn-random-trigger': b, 'unlearn-known-trigger': b, 'adversary-step': s, 'adversary-radius': s, 'adversary-steps': s, 'known-trigger': s, 'known-attack': s, 'known-target-word': s, 'known-victim-label': s, 'known-target-label': s, backend: s,
  });
  const base = f.reference ? R : D;
  const task = choice(required(f.task, 'task'), 'task', ['defect', 'clone', 'search'] as const, 'defect');
  const elimFlags = [f.eliminate, f['force-eliminate'], f['no-eliminate']].filter(Boolean).length;
  if (elimFlags > 1) throw new UsageError('--eliminate, --force-eliminate and --no-eliminate exclude each other');
  const iterations = num(f.iterations, 'iterations', base.iterations, { int: true, min: 1 });
  // The default patience only applies when it is below the iteration count; an explicit one must be.
  const patience = num(f['early-stop-patience'], 'early-stop-patience', base.patience < iterations ? base.patience : 0, { int: true, min: 0 });
  if (patience > 0 && patience >= iterations) throw new UsageError(`--early-stop-patience ${patience} must be less than --iterations ${iterations}`);
  return {
    task,
    model: required(f.model, 'model'),
    data: required(f.data, 'data'),
    evalData: f['eval-data'] as string | undefined,
    unlearnData: f['unlearn-data'] as string | undefined,
    out: (f.out as string | undefined) ?? (typeof f.scratch === 'string' ? join(f.scratch, 'out') : undefined),
    report: f.report as string | undefined,
    summaryFile: (f['summary-file'] as string | undefined) ?? process.env.ELIBADCODE_SUMMARY_FILE,
    victimLabel: optNum(f['victim-label'], 'victim-label', { int: true, min: 0 }),
    targetLabel: optNum(f['target-label'], 'target-label', { int: true, min: 0 }),
    triggerLength: num(f['trigger-length'], 'trigger-length', base.triggerLength, { int: true, min: 1, max: 32 }),
    targetLength: num(f['target-length'], 'target-length', base.targetLength, { int: true, min: 1, max: 16 }),
    topK: num(f['top-k'], 'top-k', base.topK, { int: true, min: 1 }),
    candidates: num(f.candidates, 'candidates', base.candidates, { int: true, min: 1 }),
    iterations,
    inversionSamples: num(f['inversion-samples'], 'inversion-samples', base.inversionSamples, { int: true, min: 1 }),
    beta: num(f.beta, 'beta', base.beta, { min: 0 }),
    twoSided: f['two-sided-anchoring'] === true,
    anchorRepeats: f['anchor-repeats'] === true,
    positionMode: choice(f['position-mode'], 'position-mode', POSITION_MODE_OPTIONS, base.positionMode),
    fixedPosition: num(f['fixed-position'], 'fixed-position', base.fixedPosition, { int: true, min: 1 }),
    legacyEvalPosition: optNum(f['legacy-eval-position'], 'legacy-eval-position', { int: true, min: 1 }),
    seed: num(f.seed, 'seed', base.seed, { int: true, min: 0 }),
    screenLimit: num(f['screen-limit'], 'screen-limit', base.screenLimit, { int: true, min: 0 }),
    detectionThreshold: optNum(f['detection-threshold'], 'detection-threshold', { min: 0 }),
    patience,
    lossBelow: optNum(f['early-stop-loss'], 'early-stop-loss', { min: 0 }),
    asrAtLeast: optNum(f['early-stop-asr'], 'early-stop-asr', { min: 0, max: 1 }),
    maxLength: num(f['max-length'], 'max-length', base.maxLength, { int: true, min: 8 }),
    queryMaxLength: num(f['query-max-length'], 'query-max-length', base.queryMaxLength, { int: true, min: 4 }),
    keepWordInitial: f['keep-word-initial'] === true,
    ...(f['no-vocabulary-filter'] === true ? { unfilteredVocabulary: true } : {}),
    dropout: f.dropout === true,
    maxIdentifiers: num(f['max-identifiers'], 'max-identifiers', base.maxIdentifiers, { int: true, min: 1 }),
    verdictSamples: num(f['verdict-samples'], 'verdict-samples', base.verdictSamples, { int: true, min: 1 }),
    evalFraction: num(f['eval-fraction'], 'eval-fraction', base.evalFraction, { min: 0, max: 1 }),
    eliminate: f['no-eliminate'] ? 'never' : f['force-eliminate'] ? 'always' : 'auto',
    unlearning: {
      injectionRate: num(f['injection-rate'], 'injection-rate', base.unlearning.injectionRate, { min: 0, max: 1 }),
      injectionScope: choice(f['injection-scope'], 'injection-scope', ['victim', 'all'] as const, base.unlearning.injectionScope),
      learningRate: num(f['learning-rate'], 'learning-rate', task === 'search' ? SEARCH_UNLEARN_LEARNING_RATE : base.unlearning.learningRate, { min: 0 }),
      epochs: num(f.epochs, 'epochs', base.unlearning.epochs, { int: true, min: 1 }),
      batchSize: num(f['batch-size'], 'batch-size', base.unlearning.batchSize, { int: true, min: 1 }),
      warmupRatio: num(f['warmup-ratio'], 'warmup-ratio', base.unlearning.warmupRatio, { min: 0, max: 1 }),
      gradientClip: num(f['gradient-clip'], 'gradient-clip', base.unlearning.gradientClip, { min: 0 }),
      weightDecay: num(f['weight-decay'], 'weight-decay', base.unlearning.weightDecay, { min: 0, max: 1 }),
      seed: num(f['unlearn-seed'], 'unlearn-seed', base.unlearning.seed, { int: true, min: 0 }),
      trainable: choice(f.trainable, 'trainable', ['auto', 'head', 'all'] as const, 'auto'),
      placement: choice(f['unlearn-placement'], 'unlearn-placement', ['identifier', 'body-start', 'function-name'] as const, 'identifier'),
      ...adversaryOf(f),
      ...(f['unlearn-random-trigger'] === true ? { randomTrigger: true } : {}),
      ...(f['unlearn-known-trigger'] === true ? { knownTrigger: true } : {}),
    },
    knownTrigger: f['known-trigger'] as string | undefined,
    knownAttack: f['known-attack'] as string | undefined,
    knownTargetWord: f['known-target-word'] as string | undefined,
    knownVictimLabel: optNum(f['known-victim-label'], 'known-victim-label', { int: true, min: 0 }),
    knownTargetLabel: optNum(f['known-target-label'], 'known-target-label', { int: true, min: 0 }),
    tokensPerBatch: num(f['tokens-per-batch'], 'tokens-per-batch', base.tokensPerBatch, { int: true, min: 64 }),
    backend: f.backend as string | undefined,
    modelSha256: f['model-sha256'] as string | undefined,
    dataSha256: f['data-sha256'] as string | undefined,
    evalDataSha256: f['eval-data-sha256'] as string | undefined,
    unlearnDataSha256: f['unlearn-data-sha256'] as string | undefined,
    scratch: f.scratch as string | undefined,
  };
}

type ScanArgs = ReturnType<typeof parseScanArgs>;

/** Digests are checked on what was downloaded; messages name the flag's own value (the URI). */
function verifyInputs(o: ScanArgs, given: ScanArgs = o): void {
  checkLocal(o.model, '--model');
  checkLocal(o.data, '--data');
  if (o.evalData) checkLocal(o.evalData, '--eval-data');
  if (o.unlearnData) checkLocal(o.unlearnData, '--unlearn-data');
  if (o.modelSha256 && statSync(o.model).isDirectory() && !modelDigests(o.model).includes(o.modelSha256.toLowerCase())) {
    throw new ScanError(WorkerErrorReason.DigestMismatch, `--model ${given.model}: sha256 does not match --model-sha256 ${o.modelSha256}`);
  }
  for (const [file, shown, want, flag] of [[o.data, given.data, o.dataSha256, '--data'], [o.evalData, given.evalData, o.evalDataSha256, '--eval-data'], [o.unlearnData, given.unlearnData, o.unlearnDataSha256, '--unlearn-data']] as const) {
    if (file && want && sha256File(file) !== want.toLowerCase()) throw new ScanError(WorkerErrorReason.DigestMismatch, `${flag} ${shown}: sha256 does not match ${want}`);
  }
}

const hasScheme = (v: string | undefined) => v !== undefined && /^[a-z][a-z0-9+.-]*:\/\//i.test(v);

const INPUTS = [
  ['model', '--model', 'model'],
  ['data', '--data', 'data'],
  ['evalData', '--eval-data', 'data'],
  ['unlearnData', '--unlearn-data', 'data'],
] as const;

/** --scratch, or (when something is downloaded or uploaded) a temporary directory removed at exit. */
function scratchFor(o: ScanArgs): { dir?: string; temporary: boolean } {
  if (o.scratch) {
    mkdirSync(o.scratch, { recursive: true });
    return { dir: o.scratch, temporary: false };
  }
  const needed = [o.model, o.data, o.evalData, o.unlearnData, o.out, o.report].some(hasScheme);
  return needed ? { dir: mkdtempSync(join(tmpdir(), 'elibadcode-scan-')), temporary: true } : { temporary: false };
}

/** The options with every s3:// or https:// input replaced by its download in scratch/inputs/<flag>/. */
async function localInputs(o: ScanArgs, scratch: string | undefined): Promise<ScanArgs> {
  const local = { ...o };
  for (const [field, flag, kind] of INPUTS) {
    const uri = o[field];
    if (!hasScheme(uri)) continue;
    const dest = join(scratch!, 'inputs', flag.slice(2));
    rmSync(dest, { recursive: true, force: true }); // nothing left from an earlier run may join this input
    local[field] = await materialize(uri!, dest, kind, { flag });
  }
  return local;
}

interface OutputPlan {
  /** Where runScan writes (local). */
  out?: string;
  report?: string;
  /** Where publish uploads them, when --out/--report are s3://. */
  outUri?: string;
  reportUri?: string;
  artifactUris?: { modelUri?: string; reportUri?: string };
}

/** s3:// outputs are written in scratch first; the summary names their s3:// URIs. Checked before the scan starts. */
function outputPlan(o: ScanArgs, scratch: string | undefined): OutputPlan {
  for (const [v, flag] of [[o.out, '--out'], [o.report, '--report']] as const) {
    if (hasScheme(v) && !v!.startsWith('s3://')) throw new ScanError(WorkerErrorReason.InvalidInput, `${flag} ${v}: outputs go to a local path or an s3:// URI`);
  }
  const outUri = o.out?.startsWith('s3://') ? o.out : undefined;
  const reportUri = o.report?.startsWith('s3://') ? o.report : undefined;
  if (!outUri && !reportUri) return { out: o.out, report: o.report };
  let modelUri: string | undefined;
  let defaultReportUri: string | undefined;
  try {
    if (outUri) [modelUri, defaultReportUri] = [outputUri(outUri, 'model/'), outputUri(outUri, 'report.json')];
    if (reportUri) outputUri(reportUri, '');
  } catch (e) {
    throw new ScanError(WorkerErrorReason.InvalidInput, (e as Error).message);
  }
  // Missing credentials would otherwise only show after the whole scan.
  try {
    s3ConfigFromEnv();
  } catch (e) {
    throw new ScanError(WorkerErrorReason.UploadFailed, `${outUri ? `--out ${outUri}` : `--report ${reportUri}`}: ${(e as Error).message}`);
  }
  const out = outUri ? join(scratch!, 'out') : o.out;
  // A clean verdict writes no model: nothing from an earlier run in this scratch may be uploaded as this run's.
  if (outUri) rmSync(out!, { recursive: true, force: true });
  const report = reportUri ? join(scratch!, 'report', basename(reportUri) || 'report.json') : o.report;
  return { out, report, outUri, reportUri, artifactUris: { modelUri, reportUri: reportUri ?? (outUri && !o.report ? defaultReportUri : undefined) } };
}

async function publishOutputs(plan: OutputPlan): Promise<void> {
  if (plan.outUri) {
    await publish(plan.out!, plan.outUri, { flag: '--out', extra: plan.reportUri ? [{ file: plan.report!, uri: plan.reportUri }] : [] });
  } else if (plan.reportUri) {
    await publishFile(plan.report!, plan.reportUri, { flag: '--report' });
  }
}

export const scan: Command = {
  name: 'scan',
  summary: 'Scan a code model for a backdoor (EliBadCode): invert and anchor a trigger, decide, unlearn, verify.',
  usage,
  async run(args) {
    const o = parseScanArgs(args);
    const scratch = scratchFor(o);
    try {
      const plan = outputPlan(o, scratch.dir);
      const local = await localInputs(o, scratch.dir);
      verifyInputs(local, o);
      // With an upload ahead, the success summary waits for it: a worker killed mid-upload must not leave one behind.
      const uploads = plan.outUri !== undefined || plan.reportUri !== undefined;
      const sources = Object.fromEntries(INPUTS.filter(([field]) => hasScheme(o[field])).map(([field]) => [field, o[field]!]));
      const { report, summary } = await runScan({ ...local, sources, out: plan.out, report: plan.report, ...(uploads ? { summaryFile: undefined, artifactUris: plan.artifactUris } : {}) });
      await publishOutputs(plan);
      if (uploads && o.summaryFile) writeAtomically(o.summaryFile, summary);
      const c = report.options.find((x) => x.option === report.chosen)!;
      const v = report.verification;
      const pct = (x: number | undefined) => (x === undefined ? 'n/a' : `${(100 * x).toFixed(1)}%`);
      // Classification: ASR; code search: how often a triggered code outranks the gold one.
      const asr = (x: unknown) => (x && typeof x === 'object' ? ((x as { asr?: number }).asr ?? (x as { outrankRate?: number }).outrankRate) : undefined);
      const clean = (m: typeof v.cleanBefore | undefined) => (m ? m.mrr ?? m.f1 ?? m.accuracy : undefined);
      const knownLine = (k: NonNullable<typeof v.known>) => {
        const anr = (x: typeof k.before | undefined) => (x && 'anr' in x ? x.anr.toFixed(3) : 'n/a');
        const rank = 'anr' in k.before ? `; average normalised rank before ${anr(k.before)}, after ${anr(k.after)}` : '';
        const direction = k.targetLabel !== undefined ? `, ${k.victimLabel} -> ${k.targetLabel}${k.direction === 'scan' ? ' as scanned' : ''}` : '';
        return `known trigger ${JSON.stringify(k.trigger)} (${k.attack}${k.targetWord ? ` for "${k.targetWord}"` : ''}${direction}) ASR: before ${pct(k.before.asr)}, after ${pct(k.after?.asr)}${rank}`;
      };
      console.log([
        `verdict: ${report.verdict.verdict} (score ${report.verdict.score?.toFixed(3) ?? 'n/a'}, threshold ${report.verdict.threshold})`,
        `option: ${c.option}${c.targetLabel !== undefined ? ` (victim ${c.victimLabel} -> target ${c.targetLabel})` : ''}, best loss ${c.bestLoss.toFixed(4)} after ${c.iterations}/${c.maxIterations} iterations (${c.stop})`,
        `inverted trigger: ${JSON.stringify(c.raw.text)} [${c.raw.tokens.join(' ')}]${c.query ? `, query target ${JSON.stringify(c.query.text)}` : ''}`,
        `anchored trigger: ${JSON.stringify(c.anchored.text)} [${c.anchored.tokens.join(' ')}]`,
        `inverted-trigger ASR: before ${pct(asr(v.invertedBefore))}, after ${pct(asr(v.invertedAfter))}`,
        ...(v.known ? [knownLine(v.known)] : []),
        `clean ${o.task === 'search' ? 'MRR' : o.task === 'clone' ? 'F1' : 'accuracy'}: before ${pct(clean(v.cleanBefore))}, after ${pct(clean(v.cleanAfter))}`,
        `unlearning: ${report.unlearning.ran ? `${report.unlearning.injected} samples triggered, ${report.unlearning.steps} steps (${report.unlearning.trainable})` : report.unlearning.why}`,
        report.output?.modelDir ? `cleaned model: ${plan.artifactUris?.modelUri ?? report.output.modelDir} (sha256 ${report.output.sha256})` : 'cleaned model: not written',
        `report: ${plan.artifactUris?.reportUri ?? report.output?.reportFile}`,
        `time: ${report.durations.totalSeconds.toFixed(1)} s (scan ${report.durations.scanSeconds.toFixed(1)} s, unlearning ${report.durations.eliminateSeconds.toFixed(1)} s)`,
        ...(report.fallbacks.length ? ['fallbacks:', ...report.fallbacks.map((x) => `  - ${x}`)] : []),
      ].join('\n'));
      void summary;
      return EXIT.ok;
    } catch (e) {
      const reason = e instanceof ScanError || e instanceof StorageError ? e.reason : /out of memory|OOM/i.test((e as Error).message) ? WorkerErrorReason.OutOfMemory : WorkerErrorReason.Internal;
      if (o.summaryFile) {
        try {
          writeAtomically(o.summaryFile, errorSummary(reason, (e as Error).message, o.task));
        } catch {
          /* the error itself is reported below */
        }
      }
      throw e instanceof StorageError ? new ScanError(e.reason, e.message) : e;
    } finally {
      if (scratch.temporary) rmSync(scratch.dir!, { recursive: true, force: true });
    }
  },
};
