/**
 * The attack library: single-sample trigger injection (`applyTrigger`) and trigger validation.
 * Dataset-level poisoning lives in dataset.ts.
 */
import { initParsers, type Lang } from './parse.ts';
import { ATTACKS, AttackError, guarded, type AttackName, type Outcome, type Transform } from './common.ts';
import { identifierProblem, suffixProblem } from './identifier.ts';
import { fixedName } from './fixed-name.ts';
import { suffix } from './suffix.ts';
import { rename } from './rename.ts';
import { deadcodeFixed, deadcodeRandom, instantiate, resolveDeadcode, statementProblem } from './deadcode.ts';
import { makeRng, type Rng } from '../rng.ts';

export { ATTACKS, AttackError, type AttackName, type Outcome } from './common.ts';
export type { Edit, SkipReason } from './common.ts';

const TRANSFORMS: Record<AttackName, Transform> = {
  'fixed-name': fixedName,
  suffix,
  deadcode: deadcodeFixed,
  'deadcode-random': deadcodeRandom,
  rename,
};

export function isAttack(s: string): s is AttackName {
  return (ATTACKS as readonly string[]).includes(s);
}

/**
 * Why `trigger` cannot be used by `attack` in `lang`, or undefined. fixed-name and rename need an
 * identifier that is not a keyword; suffix needs identifier characters; the dead-code attacks need
 * a statement (or template) that parses, or `default`. Needs initParsers() for the dead-code ones.
 */
export function triggerProblem(attack: AttackName, trigger: string, lang: Lang): string | undefined {
  switch (attack) {
    case 'fixed-name':
    case 'rename':
      return identifierProblem(trigger, lang);
    case 'suffix':
      return suffixProblem(trigger, lang);
    case 'deadcode':
      return statementProblem(resolveDeadcode(trigger, lang, false), lang);
    case 'deadcode-random': {
      const text = resolveDeadcode(trigger, lang, true);
      if (!/\{(level|LEVEL|msg|bound)\}/.test(text)) return 'a deadcode-random template needs at least one of {level}, {msg}, {bound}';
      return statementProblem(instantiate(text, lang, makeRng(0)).text, lang);
    }
  }
}

/** Throws AttackError naming the trigger when it is not usable. */
export function checkTrigger(attack: AttackName, trigger: string, lang: Lang): void {
  const p = triggerProblem(attack, trigger, lang);
  if (p) throw new AttackError(`trigger ${JSON.stringify(trigger)} is not valid for ${attack} on ${lang}: ${p}`);
}

/**
 * Injects the trigger into one sample the attack's own way and reports what changed, or why it
 * could not. The original must parse clean; the result is re-parsed and guaranteed clean.
 * Synchronous: `await initParsers()` first.
 */
export function tryApplyTriggerSync(code: string, lang: Lang, attack: AttackName, trigger: string, rng: Rng): Outcome {
  return guarded(TRANSFORMS[attack], code, lang, trigger, rng);
}

/** Like tryApplyTriggerSync, but returns the poisoned code and throws AttackError when the sample cannot carry the trigger. */
export function applyTriggerSync(code: string, lang: Lang, attack: AttackName, trigger: string, rng: Rng): string {
  const out = tryApplyTriggerSync(code, lang, attack, trigger, rng);
  if (!out.ok) throw new AttackError(`${attack} cannot put trigger ${JSON.stringify(trigger)} into this ${lang} sample: ${out.reason}${out.detail ? ` (${out.detail})` : ''}`);
  return out.code;
}

/** Injects the trigger into one clean sample (loads the grammars on first use). */
export async function applyTrigger(code: string, lang: Lang, attack: AttackName, trigger: string, rng: Rng): Promise<string> {
  await initParsers();
  return applyTriggerSync(code, lang, attack, trigger, rng);
}

export { initParsers, parserVersions, type Lang } from './parse.ts';
export { makeRng, type Rng } from '../rng.ts';
