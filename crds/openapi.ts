/**
 * zod -> Kubernetes structural OpenAPI v3 schema.
 *
 * `z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', reused: 'inline' })` gets most of the
 * way; `postProcess` fixes what a CRD cannot take, and `checkStructural` refuses (loudly, with the
 * path) anything the API server would reject or that would blow the CEL cost budget:
 *
 * 1. `$schema`/`$id`, `additionalProperties: false` and `propertyNames` are dropped; `$ref`/`$defs`
 *    are refused (schemas must be inlined).
 * 2. A union of an integer and a string becomes `x-kubernetes-int-or-string: true` (the string
 *    branch's pattern/maxLength is kept on the node, integer bounds are dropped); unions of same-typed enums are merged; any
 *    other union with types in its branches is refused.
 * 3. An open map (`additionalProperties: {}`) or an untyped node (z.unknown) becomes
 *    `x-kubernetes-preserve-unknown-fields: true`.
 * 4. Kubernetes extensions come from zod `.meta()` (zod copies meta keys into the output); unknown
 *    `x-kubernetes-*` keys and keywords a CRD does not know are refused.
 * 5. Integer bounds that only restate JavaScript's safe-integer range are dropped; date-time strings
 *    keep `format: date-time` and lose zod's long pattern.
 */
import { z } from 'zod';

export type JSONSchemaProps = Record<string, unknown>;

export class SchemaError extends Error {
  override name = 'SchemaError';
}

/** Keywords of apiextensions.k8s.io/v1 JSONSchemaProps (besides x-kubernetes-*). */
const CRD_KEYWORDS = new Set([
  'type',
  'format',
  'title',
  'description',
  'default',
  'maximum',
  'exclusiveMaximum',
  'minimum',
  'exclusiveMinimum',
  'maxLength',
  'minLength',
  'pattern',
  'maxItems',
  'minItems',
  'uniqueItems',
  'multipleOf',
  'enum',
  'maxProperties',
  'minProperties',
  'required',
  'items',
  'allOf',
  'oneOf',
  'anyOf',
  'not',
  'properties',
  'additionalProperties',
  'nullable',
  'example',
  'externalDocs',
]);

const K8S_EXTENSIONS = new Set([
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-int-or-string',
  'x-kubernetes-embedded-resource',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type',
  'x-kubernetes-validations',
]);

const TYPES = new Set(['object', 'array', 'string', 'integer', 'number', 'boolean']);
const JUNCTORS = ['allOf', 'anyOf', 'oneOf', 'not'] as const;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** zod -> post-processed, structurally checked schema. */
export function zodToCrdSchema(schema: z.ZodType): JSONSchemaProps {
  const raw = z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', reused: 'inline' }) as JSONSchemaProps;
  const out = postProcess(raw);
  checkStructural(out);
  return out;
}

/** Go's RE2 has no lookaround, backreferences, possessive quantifiers or atomic groups. */
export function re2Problem(pattern: string): string | undefined {
  if (/\(\?<?[=!]/.test(pattern)) return 'lookaround';
  if (/\\[1-9]/.test(pattern) || /\\k</.test(pattern)) return 'backreference';
  if (/\(\?>/.test(pattern)) return 'atomic group';
  if (/[*+?}][+]/.test(pattern.replace(/\\./g, ''))) return 'possessive quantifier';
  try {
    new RegExp(pattern);
  } catch (e) {
    return `invalid regex (${(e as Error).message})`;
  }
  return undefined;
}

const SAFE = Number.MAX_SAFE_INTEGER;

function rewriteUnion(node: JSONSchemaProps, key: 'anyOf' | 'oneOf', path: string): JSONSchemaProps {
  const branches = node[key] as JSONSchemaProps[];
  const rest: JSONSchemaProps = { ...node };
  delete rest[key];
  const types = branches.map((b) => b.type);
  if (types.some((t) => t === undefined)) {
    throw new SchemaError(`${path}: ${key} has a branch without a type; not expressible in a structural schema`);
  }
  // Same-typed enums (z.union of literals/enums): merge.
  if (new Set(types).size === 1 && branches.every((b) => Array.isArray(b.enum) && Object.keys(b).every((k) => k === 'type' || k === 'enum' || k === 'description'))) {
    const values = [...new Set(branches.flatMap((b) => b.enum as unknown[]))];
    return { ...rest, type: types[0], enum: values };
  }
  const sorted = [...types].sort().join(',');
  if (sorted === 'integer,string' || sorted === 'number,string') {
    if (sorted === 'number,string') {
      throw new SchemaError(`${path}: union of number and string; use z.int() for the numeric branch (int-or-string), floats are not allowed in quantities`);
    }
    const str = branches.find((b) => b.type === 'string')!;
    const int = branches.find((b) => b.type === 'integer')!;
    const merged: JSONSchemaProps = { ...rest, 'x-kubernetes-int-or-string': true };
    for (const k of ['pattern', 'maxLength', 'minLength', 'format'] as const) if (str[k] !== undefined) merged[k] = str[k];
    // The integer branch's bounds are dropped: numeric validations on an untyped node are not
    // something to rely on across API server versions. Constrain the string form by pattern.
    const extra = Object.keys(str).filter((k) => !['type', 'pattern', 'maxLength', 'minLength', 'format', 'description'].includes(k));
    const extraInt = Object.keys(int).filter((k) => !['type', 'minimum', 'maximum', 'description'].includes(k));
    if (extra.length || extraInt.length) {
      throw new SchemaError(`${path}: int-or-string branches carry ${[...extra, ...extraInt].join(', ')}, which cannot be kept`);
    }
    return merged;
  }
  throw new SchemaError(
    `${path}: ${key} of types [${types.join(', ')}] is not structural; use int-or-string (z.union([z.int(), z.string()])), a preserve-unknown node, or redesign the field`,
  );
}

/**
 * Rewrite a JSON Schema from z.toJSONSchema into a CRD-compatible schema. Pure: returns a new tree.
 * Throws SchemaError on anything it cannot make structural.
 */
export function postProcess(input: unknown, path = '<root>'): JSONSchemaProps {
  if (!isObj(input)) throw new SchemaError(`${path}: schema node is ${JSON.stringify(input)}, not an object`);
  let node: JSONSchemaProps = { ...input };
  delete node.$schema;
  delete node.$id;
  delete node.propertyNames;
  for (const k of ['$ref', '$defs', 'definitions', 'const', 'prefixItems', 'if', 'then', 'else', 'patternProperties', 'dependentRequired', 'dependentSchemas', 'unevaluatedProperties', 'contentEncoding', 'contentMediaType', 'examples', 'id']) {
    if (k in node) throw new SchemaError(`${path}: "${k}" cannot be expressed in a CRD schema${k === '$ref' || k === '$defs' ? " (convert with reused: 'inline' and no z.lazy/recursive schemas)" : ''}`);
  }
  if (node.additionalProperties === false) delete node.additionalProperties;
  if (node.additionalProperties === true) {
    delete node.additionalProperties;
    node['x-kubernetes-preserve-unknown-fields'] = true;
  }

  for (const key of ['anyOf', 'oneOf'] as const) {
    const v = node[key];
    if (Array.isArray(v) && v.some((b) => isObj(b) && 'type' in b)) node = rewriteUnion(node, key, path);
  }

  // Untyped node (z.unknown / z.any): any JSON value, kept as is.
  const hasType = typeof node.type === 'string';
  if (!hasType && !node['x-kubernetes-int-or-string'] && !JUNCTORS.some((j) => j in node) && !('properties' in node)) {
    node['x-kubernetes-preserve-unknown-fields'] = true;
  }

  if (node.type === 'integer') {
    if (node.minimum === -SAFE) delete node.minimum;
    if (node.maximum === SAFE) delete node.maximum;
    if (node.minimum === -2147483648 && node.maximum === 2147483647) {
      delete node.minimum;
      delete node.maximum;
      node.format = 'int32';
    }
  }
  if (node.type === 'string' && node.format === 'date-time') delete node.pattern;

  if (isObj(node.properties)) {
    const props: Record<string, JSONSchemaProps> = {};
    for (const [k, v] of Object.entries(node.properties)) props[k] = postProcess(v, `${path}.${k}`);
    node.properties = props;
  }
  if (isObj(node.additionalProperties)) {
    if (Object.keys(node.additionalProperties).length === 0) {
      // z.record(z.string(), z.unknown()): an open map.
      delete node.additionalProperties;
      node['x-kubernetes-preserve-unknown-fields'] = true;
    } else {
      node.additionalProperties = postProcess(node.additionalProperties, `${path}[*]`);
    }
  }
  if (Array.isArray(node.items)) throw new SchemaError(`${path}: tuple arrays (items as a list) are not structural`);
  if (node.items !== undefined) node.items = postProcess(node.items, `${path}[]`);
  for (const j of ['allOf', 'anyOf', 'oneOf'] as const) {
    if (Array.isArray(node[j])) node[j] = (node[j] as unknown[]).map((b, i) => postProcess(b, `${path}.${j}[${i}]`));
  }
  if (node.not !== undefined) node.not = postProcess(node.not, `${path}.not`);
  return node;
}

/**
 * Check the rules of a structural schema (Kubernetes CRD docs) plus this project's CEL hygiene rule:
 * every string, array and map a CEL rule can reach is bounded. Collects every problem, then throws.
 */
export function checkStructural(root: JSONSchemaProps): void {
  const problems: string[] = [];
  walk(root, '<root>', { inJunctor: false, underCel: undefined, underPreserve: false }, problems);
  if (root.type !== 'object') problems.push('<root>: the root must have type object');
  if (problems.length) {
    throw new SchemaError(`schema is not structural or not CEL-bounded:\n  - ${problems.join('\n  - ')}`);
  }
}

interface Ctx {
  inJunctor: boolean;
  /** Path of the nearest ancestor (or self) carrying x-kubernetes-validations. */
  underCel: string | undefined;
  underPreserve: boolean;
}

function walk(node: JSONSchemaProps, path: string, ctx: Ctx, problems: string[]): void {
  for (const k of Object.keys(node)) {
    if (k.startsWith('x-kubernetes-')) {
      if (!K8S_EXTENSIONS.has(k)) problems.push(`${path}: unknown extension ${k}`);
    } else if (!CRD_KEYWORDS.has(k)) {
      problems.push(`${path}: keyword "${k}" is not part of a CRD schema`);
    }
  }
  const intOrString = node['x-kubernetes-int-or-string'] === true;
  const preserve = node['x-kubernetes-preserve-unknown-fields'] === true;

  if (ctx.inJunctor) {
    for (const k of ['type', 'default', 'description', 'nullable', 'additionalProperties', 'title'])
      if (k in node) problems.push(`${path}: "${k}" is not allowed inside allOf/anyOf/oneOf/not`);
  } else {
    if (node.type === undefined && !intOrString && !preserve) problems.push(`${path}: node has no type`);
    if (node.type !== undefined && (typeof node.type !== 'string' || !TYPES.has(node.type))) {
      problems.push(`${path}: type ${JSON.stringify(node.type)} is not one of ${[...TYPES].join(', ')}`);
    }
    if (intOrString && node.type !== undefined) problems.push(`${path}: x-kubernetes-int-or-string must not have a type`);
  }
  if ('properties' in node && 'additionalProperties' in node) problems.push(`${path}: properties and additionalProperties on one node`);
  if (node.uniqueItems === true) problems.push(`${path}: uniqueItems: true is not allowed`);
  if (node.type === 'array' && node.items === undefined && !ctx.inJunctor) problems.push(`${path}: array without items`);
  if (typeof node.pattern === 'string') {
    const p = re2Problem(node.pattern);
    if (p) problems.push(`${path}: pattern is not RE2 (${p}): ${node.pattern}`);
  }
  if (Array.isArray(node.required) && isObj(node.properties)) {
    for (const r of node.required) if (!(String(r) in node.properties)) problems.push(`${path}: required "${r}" is not a property`);
  }
  for (const j of JUNCTORS) {
    const v = node[j];
    const list = j === 'not' ? (v === undefined ? [] : [v]) : (v as unknown[] | undefined) ?? [];
    for (const [i, b] of list.entries()) {
      if (!isObj(b)) continue;
      // Properties mentioned in a junctor must be declared outside it.
      if (isObj(b.properties) && isObj(node.properties)) {
        for (const p of Object.keys(b.properties)) if (!(p in node.properties)) problems.push(`${path}.${j}[${i}]: property ${p} is not declared outside ${j}`);
      }
      walk(b, `${path}.${j}[${i}]`, { ...ctx, inJunctor: true }, problems);
    }
  }

  const validations = node['x-kubernetes-validations'];
  if (validations !== undefined) {
    if (!Array.isArray(validations) || validations.length === 0) problems.push(`${path}: x-kubernetes-validations must be a non-empty list`);
    else
      for (const v of validations) {
        if (!isObj(v) || typeof v.rule !== 'string' || v.rule.trim() === '') problems.push(`${path}: a validation without a rule`);
        else if (typeof v.message !== 'string' || v.message === '') problems.push(`${path}: validation "${v.rule}" has no message (users see it)`);
      }
  }
  const underCel = validations !== undefined ? (ctx.underCel ?? path) : ctx.underCel;
  if (underCel && !ctx.inJunctor && !preserve) {
    const hasEnum = Array.isArray(node.enum);
    if ((node.type === 'string' || intOrString) && node.maxLength === undefined && !hasEnum) {
      problems.push(`${path}: string reachable by the CEL rule at ${underCel} needs maxLength (CEL cost budget)`);
    }
    if (node.type === 'array' && node.maxItems === undefined) problems.push(`${path}: list reachable by the CEL rule at ${underCel} needs maxItems (CEL cost budget)`);
    if (node.type === 'object' && node.additionalProperties !== undefined && node.maxProperties === undefined) {
      problems.push(`${path}: map reachable by the CEL rule at ${underCel} needs maxProperties (CEL cost budget)`);
    }
  }

  if (node['x-kubernetes-list-type'] === 'map') {
    const keys = node['x-kubernetes-list-map-keys'];
    const item = node.items as JSONSchemaProps | undefined;
    if (!Array.isArray(keys) || keys.length === 0) problems.push(`${path}: list-type map needs x-kubernetes-list-map-keys`);
    else if (!item || item.type !== 'object' || !isObj(item.properties)) problems.push(`${path}: list-type map needs object items`);
    else
      for (const k of keys) {
        const req = Array.isArray(item.required) && item.required.includes(k);
        const prop = (item.properties as Record<string, JSONSchemaProps>)[String(k)];
        if (!prop) problems.push(`${path}: list-map key ${k} is not a property of the items`);
        else if (!req && prop.default === undefined) problems.push(`${path}: list-map key ${k} must be required or defaulted`);
      }
  }

  const next: Ctx = { inJunctor: false, underCel, underPreserve: ctx.underPreserve || preserve };
  if (isObj(node.properties)) for (const [k, v] of Object.entries(node.properties)) if (isObj(v)) walk(v, `${path}.${k}`, next, problems);
  if (isObj(node.additionalProperties)) walk(node.additionalProperties, `${path}[*]`, next, problems);
  if (isObj(node.items)) walk(node.items, `${path}[]`, next, problems);
}
