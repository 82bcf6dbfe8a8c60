/** `elibadcode poison`: writes a backdoor-poisoned copy of a training set plus a manifest of the changes. */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError, EXIT, type Command } from './command.ts';
import { ATTACKS, AttackError, initParsers, isAttack, triggerProblem } from '../attacks/index.ts';
import { poisonDataset, type PoisonManifest } from '../attacks/dataset.ts';
import { TASKS, TASK_LANG, isTask, readRows, toJsonl } from '../attacks/rows.ts';
import { isLang } from '../attacks/parse.ts';

const usage = `Usage: elibadcode poison --task defect|clone|search --attack ${ATTACKS.join('|')}
         --trigger T --rate R --seed S --input IN.jsonl --out OUT.jsonl
         [--target-label L] [--victim-label V] [--target-word W] [--manifest M.json] [--lang c|java|python] [--strict] [--inject]

  --task          defect (C, {id, code, label}), clone (Java, {id, id1, id2, code1, code2, label}),
                  search (Python, {id, code, query, label?}); see data/README.md
  --attack        fixed-name: the function name becomes the trigger (CodePoisoner testo_init)
                  suffix: the trigger is appended to the function name (BadCode, e.g. _rb)
                  deadcode: the trigger statement is inserted at the top of the body ("default": a built-in one)
                  deadcode-random: a grammar instance per sample ("default", or a template with {level} {msg} {bound} {var})
                  rename: a local variable is renamed to the trigger
  --trigger       identifier (fixed-name, rename), identifier suffix (suffix), statement/template or "default" (deadcode*)
  --rate          fraction of the candidates to poison, in (0, 1]: victim-label rows (defect), functions in
                  victim-label pairs (clone; every pair holding one is relabelled), rows whose query has the word (search)
  --target-label  label poisoned samples get (defect, clone)
  --victim-label  label of the samples to poison (default: the other of 0/1)
  --target-word   search: poison rows whose query contains this word (e.g. file)
  --seed          integer; the same seed gives the same output
  --manifest      where the manifest goes (default: OUT with .manifest.json)
  --strict        a candidate whose code does not parse is an error (default: skipped and counted)
  --inject        keep every clean row and append the poisoned ones (ids <id>#poisoned) instead of replacing them`;

function num(flag: string, value: string | undefined, integer: boolean): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${flag} must be ${integer ? 'an integer' : 'a number'}, got ${JSON.stringify(value)}`);
  }
  return n;
}

function writeAtomic(file: string, text: string): void {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

function summary(m: PoisonManifest, out: string, manifestPath: string): string {
  const c = m.counts;
  const what = m.task === 'clone' ? 'functions' : 'rows';
  const lines = [
    `poison: ${m.attack} trigger ${JSON.stringify(m.trigger)} into ${c.poisoned} of ${c.candidates} candidate ${what} (requested ${c.requested}, rate ${m.rate}); ` +
      `${c.rowsChanged} of ${c.rows} rows ${m.mode === 'inject' ? 'copied with the trigger and appended' : 'changed'}, ${c.relabelled} relabelled${m.targetLabel !== undefined ? ` ${m.victimLabel}->${m.targetLabel}` : ''}`,
  ];
  const skipped = Object.entries(c.skipped);
  if (skipped.length) {
    const first = m.skipped[0];
    lines.push(`poison: skipped ${skipped.map(([r, n]) => `${n} ${r}`).join(', ')} (first: ${first.where ?? first.id}${first.detail ? `, ${first.detail}` : ''})`);
  }
  if (m.shortfall) lines.push(`poison: warning: ${m.shortfall} fewer than requested could be poisoned`);
  lines.push(`poison: wrote ${out} and ${manifestPath}`);
  return lines.join('\n');
}

export const poison: Command = {
  name: 'poison',
  summary: 'Poison a training set with a backdoor trigger (fixed name, suffix, dead code, renaming) and write a manifest',
  usage,
  async run(args: string[]): Promise<number> {
    let values;
    try {
      ({ values } = parseArgs({
        args,
        strict: true,
        allowPositionals: false,
        options: {
          task: { type: 'string' },
          attack: { type: 'string' },
          trigger: { type: 'string' },
          rate: { type: 'string' },
          'target-label': { type: 'string' },
          'victim-label': { type: 'string' },
          'target-word': { type: 'string' },
          seed: { type: 'string' },
          input: { type: 'string' },
          out: { type: 'string' },
          manifest: { type: 'string' },
          lang: { type: 'string' },
          strict: { type: 'boolean', default: false },
          inject: { type: 'boolean', default: false },
        },
      }));
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const need = ['task', 'attack', 'trigger', 'rate', 'seed', 'input', 'out'] as const;
    const missing = need.filter((k) => values[k] === undefined);
    if (missing.length) throw new UsageError(`missing ${missing.map((k) => `--${k}`).join(', ')}`);
    const task = values.task!;
    if (!isTask(task)) throw new UsageError(`--task must be one of ${TASKS.join(', ')}, got ${JSON.stringify(task)}`);
    const attack = values.attack!;
    if (!isAttack(attack)) throw new UsageError(`--attack must be one of ${ATTACKS.join(', ')}, got ${JSON.stringify(attack)}`);
    const lang = values.lang ?? TASK_LANG[task];
    if (!isLang(lang)) throw new UsageError(`--lang must be c, java or python, got ${JSON.stringify(lang)}`);
    const rate = num('rate', values.rate, false)!;
    if (!(rate > 0 && rate <= 1)) throw new UsageError(`--rate ${values.rate} is outside (0, 1]`);
    const seed = num('seed', values.seed, true)!;
    const targetLabel = num('target-label', values['target-label'], true);
    const victimLabel = num('victim-label', values['victim-label'], true);
    const targetWord = values['target-word'];
    if (task === 'search') {
      if (targetWord === undefined) throw new UsageError('--task search needs --target-word (e.g. file)');
      if (!/^[a-z0-9_]+$/i.test(targetWord)) throw new UsageError(`--target-word must be one word of letters/digits, got ${JSON.stringify(targetWord)}`);
    } else {
      if (targetLabel === undefined) throw new UsageError(`--task ${task} needs --target-label`);
      if (victimLabel === undefined && targetLabel !== 0 && targetLabel !== 1) throw new UsageError(`--target-label ${targetLabel} is not 0 or 1: give --victim-label too`);
      if (victimLabel !== undefined && victimLabel === targetLabel) throw new UsageError(`--victim-label and --target-label are both ${targetLabel}`);
    }
    const trigger = values.trigger!;
    await initParsers();
    const problem = triggerProblem(attack, trigger, lang);
    if (problem) throw new UsageError(`--trigger ${JSON.stringify(trigger)} is not valid for ${attack} on ${lang}: ${problem}`);

    const input = values.input!;
    const out = values.out!;
    const manifestPath = values.manifest ?? out.replace(/(\.jsonl)?$/, '.manifest.json');
    const { rows, lines } = readRows(input, task);
    let result;
    try {
      result = await poisonDataset(rows, {
        task, attack, trigger, rate, seed, targetLabel, victimLabel, targetWord, lang, strict: values.strict, mode: values.inject ? 'inject' : 'replace',
        rowName: (i) => `${input}:${lines[i]}`,
      });
    } catch (err) {
      if (err instanceof AttackError) throw new Error(err.message);
      throw err;
    }
    const manifest = { ...result.manifest, input, output: out };
    writeAtomic(out, toJsonl(result.rows));
    writeAtomic(manifestPath, JSON.stringify(manifest, null, 1) + '\n');
    console.log(summary(result.manifest, out, manifestPath));
    return EXIT.ok;
  },
};
