/**
 * A small deterministic YAML emitter for JSON-shaped data (objects, arrays, strings, finite numbers,
 * booleans, null). Block style, two-space indents, keys in insertion order. A string is written
 * plain only when it is unambiguously a string in YAML 1.1 and 1.2; otherwise as a JSON string
 * literal, which is a valid YAML double-quoted scalar.
 */

const PLAIN = /^[A-Za-z_][A-Za-z0-9_./-]*$/;
/** Words some YAML parsers read as booleans or null (YAML 1.1 included). */
const RESERVED = /^(y|n|yes|no|on|off|true|false|null)$/i;

export function yamlScalar(v: unknown): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'string':
      return PLAIN.test(v) && !RESERVED.test(v) ? v : JSON.stringify(v);
    case 'number':
      if (!Number.isFinite(v)) throw new TypeError(`YAML: cannot emit the number ${v}`);
      return String(v);
    case 'boolean':
      return v ? 'true' : 'false';
    default:
      throw new TypeError(`YAML: cannot emit a ${typeof v}`);
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function isCollection(v: unknown): boolean {
  return (Array.isArray(v) && v.length > 0) || (isObj(v) && Object.keys(v).length > 0);
}

function inline(v: unknown): string {
  if (Array.isArray(v)) return '[]';
  if (isObj(v)) return '{}';
  return yamlScalar(v);
}

function emit(v: unknown, indent: number, lines: string[]): void {
  const pad = ' '.repeat(indent);
  if (Array.isArray(v)) {
    for (const item of v) {
      if (isCollection(item)) {
        // The item's first line goes after "- ", the rest indented to match.
        const sub: string[] = [];
        emit(item, indent + 2, sub);
        lines.push(`${pad}- ${sub[0]!.slice(indent + 2)}`, ...sub.slice(1));
      } else {
        lines.push(`${pad}- ${inline(item)}`);
      }
    }
    return;
  }
  if (isObj(v)) {
    for (const [k, val] of Object.entries(v)) {
      if (val === undefined) continue;
      const key = yamlScalar(k);
      if (isCollection(val)) {
        lines.push(`${pad}${key}:`);
        emit(val, indent + 2, lines);
      } else {
        lines.push(`${pad}${key}: ${inline(val)}`);
      }
    }
    return;
  }
  lines.push(pad + yamlScalar(v));
}

/** YAML text of a JSON-shaped value, ending in a newline. */
export function toYaml(value: unknown): string {
  if (!isCollection(value)) return inline(value) + '\n';
  const lines: string[] = [];
  emit(value, 0, lines);
  return lines.join('\n') + '\n';
}
