// The zod -> structural schema post-processor, rule by rule, on small schemas.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { checkStructural, postProcess, re2Problem, SchemaError, zodToCrdSchema } from '../crds/openapi.ts';

const conv = (s: z.ZodType) => zodToCrdSchema(z.object({ f: s }));
const field = (s: z.ZodType): any => (conv(s).properties as Record<string, any>).f;

test('drops $schema, additionalProperties:false and propertyNames', () => {
  const out = postProcess({
    $schema: 'http://json-schema.org/draft-07/schema#',
    type: 'object',
    additionalProperties: false,
    propertyNames: { pattern: '^a' },
    properties: { a: { type: 'object', additionalProperties: false, properties: { b: { type: 'string' } } } },
  });
  assert.deepEqual(out, { type: 'object', properties: { a: { type: 'object', properties: { b: { type: 'string' } } } } });
  // io: 'output' would add additionalProperties:false everywhere; the converter must not keep it.
  const strict = z.toJSONSchema(z.object({ a: z.object({ b: z.string() }) }), { target: 'openapi-3.0', io: 'output' });
  assert.ok(JSON.stringify(strict).includes('"additionalProperties":false'));
  assert.ok(!JSON.stringify(postProcess(strict)).includes('additionalProperties'));
});

test('int | string union becomes x-kubernetes-int-or-string with the string pattern, no anyOf', () => {
  const f: Record<string, unknown> = field(z.union([z.int().min(0), z.string().max(10).regex(/^[0-9]+m$/)]).describe('q'));
  assert.deepEqual(f, { 'x-kubernetes-int-or-string': true, description: 'q', pattern: '^[0-9]+m$', maxLength: 10 });
});

test('number | string union is refused (floats in quantities)', () => {
  assert.throws(() => field(z.union([z.number(), z.string()])), (e: Error) => e instanceof SchemaError && /number and string/.test(e.message));
});

test('a union of other types is refused with its path', () => {
  assert.throws(() => field(z.union([z.string(), z.boolean()])), (e: Error) => e instanceof SchemaError && /<root>\.f: anyOf of types \[string, boolean\] is not structural/.test(e.message));
  assert.throws(() => field(z.union([z.object({ a: z.string() }), z.object({ b: z.int() })])), SchemaError);
});

test('a union of same-typed literals becomes one enum', () => {
  assert.deepEqual(field(z.union([z.literal('a'), z.literal('b'), z.enum(['c', 'a'])])), { type: 'string', enum: ['a', 'b', 'c'] });
});

test('open maps and unknown values become x-kubernetes-preserve-unknown-fields', () => {
  assert.deepEqual(field(z.record(z.string(), z.unknown())), { type: 'object', 'x-kubernetes-preserve-unknown-fields': true });
  assert.deepEqual(field(z.unknown()), { 'x-kubernetes-preserve-unknown-fields': true });
  // A typed map stays a typed map.
  assert.deepEqual(field(z.record(z.string(), z.string().max(5))), { type: 'object', additionalProperties: { type: 'string', maxLength: 5 } });
});

test('every node is typed, or int-or-string / preserve-unknown', () => {
  const out = conv(
    z.object({
      a: z.array(z.object({ b: z.union([z.int(), z.string()]), c: z.unknown(), d: z.record(z.string(), z.int()) })),
      e: z.literal('x'),
    }),
  );
  const visit = (n: any, p: string) => {
    assert.ok(typeof n.type === 'string' || n['x-kubernetes-int-or-string'] || n['x-kubernetes-preserve-unknown-fields'], `${p} untyped`);
    for (const [k, v] of Object.entries(n.properties ?? {})) visit(v, `${p}.${k}`);
    if (n.items) visit(n.items, `${p}[]`);
    if (n.additionalProperties) visit(n.additionalProperties, `${p}[*]`);
  };
  visit(out, 'root');
  assert.ok(!JSON.stringify(out).includes('anyOf'));
});

test('literals become enum (no const), defaults are kept, safe-integer bounds are dropped', () => {
  assert.deepEqual(field(z.literal('v1')), { type: 'string', enum: ['v1'] });
  assert.deepEqual(field(z.int().default(3)), { type: 'integer', default: 3 });
  assert.deepEqual(field(z.int().min(1).max(9)), { type: 'integer', minimum: 1, maximum: 9 });
  assert.deepEqual(field(z.int32()), { type: 'integer', format: 'int32' });
  const nested = field(z.object({ p: z.int().default(5) }).prefault({}));
  assert.deepEqual(nested.default, {});
  assert.equal(nested.properties.p.default, 5);
});

test('date-time keeps its format and loses zod\'s long pattern', () => {
  assert.deepEqual(field(z.iso.datetime()), { type: 'string', format: 'date-time' });
});

test('Kubernetes extensions from .meta() are copied; unknown extensions and keywords are refused', () => {
  const f = field(
    z.array(z.object({ type: z.string().max(10), v: z.string().max(5) })).max(4).meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] }),
  );
  assert.equal(f['x-kubernetes-list-type'], 'map');
  assert.deepEqual(f['x-kubernetes-list-map-keys'], ['type']);
  assert.throws(() => field(z.string().meta({ 'x-kubernetes-list-typo': 'x' })), /unknown extension x-kubernetes-list-typo/);
  assert.throws(() => field(z.string().meta({ examples: ['a'] })), /"examples" cannot be expressed/);
  assert.throws(() => field(z.string().meta({ foo: 1 })), /keyword "foo" is not part of a CRD schema/);
});

test('list-map keys must be required properties', () => {
  assert.throws(
    () => field(z.array(z.object({ type: z.string().optional() })).meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] })),
    /list-map key type must be required or defaulted/,
  );
});

test('CEL rules need bounded strings, lists and maps below them', () => {
  const rule = { 'x-kubernetes-validations': [{ rule: 'self == oldSelf', message: 'immutable' }] };
  assert.throws(() => field(z.string().meta(rule)), /<root>\.f: string reachable by the CEL rule at <root>\.f needs maxLength/);
  assert.throws(() => field(z.object({ a: z.array(z.int()) }).meta(rule)), /<root>\.f\.a: list reachable .* needs maxItems/);
  assert.throws(() => field(z.object({ m: z.record(z.string(), z.string().max(3)) }).meta(rule)), /needs maxProperties/);
  assert.doesNotThrow(() => field(z.object({ a: z.string().max(3), e: z.enum(['x']), l: z.array(z.int()).max(2) }).meta(rule)));
  assert.throws(() => field(z.string().max(3).meta({ 'x-kubernetes-validations': [{ rule: 'true' }] })), /has no message/);
});

test('patterns must be RE2', () => {
  assert.equal(re2Problem('^a(?=b)'), 'lookaround');
  assert.equal(re2Problem('^(?<!a)b'), 'lookaround');
  assert.equal(re2Problem('(a)\\1'), 'backreference');
  assert.equal(re2Problem('^[a-z]+$'), undefined);
  assert.throws(() => field(z.string().regex(/^a(?!b)/)), /pattern is not RE2 \(lookaround\)/);
});

test('$ref (recursive schemas) and mixed tuples are refused', () => {
  type Tree = { children: Tree[] };
  const T: z.ZodType<Tree> = z.lazy(() => z.object({ children: z.array(T) }));
  assert.throws(() => conv(T), SchemaError);
  assert.throws(() => field(z.tuple([z.string(), z.boolean()])), SchemaError);
});

test('checkStructural collects problems: junctor content, properties+additionalProperties, uniqueItems', () => {
  assert.throws(
    () =>
      checkStructural({
        type: 'object',
        properties: {
          a: { type: 'object', properties: { x: { type: 'string' } }, additionalProperties: { type: 'string' } },
          b: { type: 'array', items: { type: 'string' }, uniqueItems: true },
          c: { anyOf: [{ type: 'string' }, { type: 'integer' }] },
          d: { type: 'string', allOf: [{ description: 'x', maxLength: 3 }] },
        },
      }),
    (e: Error) =>
      /properties and additionalProperties/.test(e.message) &&
      /uniqueItems/.test(e.message) &&
      /<root>\.c: node has no type/.test(e.message) &&
      /"type" is not allowed inside allOf\/anyOf\/oneOf\/not/.test(e.message) &&
      /"description" is not allowed inside/.test(e.message),
  );
});
