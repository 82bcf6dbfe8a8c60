// Byte-level BPE tokenizer of a checkpoint (tokenizer.json), encoding code the way the
// CodeXGLUE fine-tuning scripts and `tokenizer(text, truncation=True, max_length=n)` do:
// <s> + first n-2 pieces + </s>, right-padded with <pad>.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

export interface Encoded {
  inputIds: number[][];
  attentionMask: number[][];
}

export class CodeTokenizer {
  readonly cls: number;
  readonly sep: number;
  readonly pad: number;
  readonly size: number;
  private readonly inner: Tokenizer;

  constructor(tokenizerJson: object, tokenizerConfig: Record<string, unknown>, file: string) {
    this.inner = new Tokenizer(tokenizerJson, tokenizerConfig);
    const special = (key: string, fallback: string): number => {
      const raw = tokenizerConfig[key];
      const token = typeof raw === 'string' ? raw : (raw as { content?: string } | undefined)?.content ?? fallback;
      const id = this.inner.token_to_id(token);
      if (id === undefined) throw new Error(`${file}: special token ${key}="${token}" is not in the vocabulary`);
      return id;
    };
    this.cls = special('cls_token', '<s>');
    this.sep = special('sep_token', '</s>');
    this.pad = special('pad_token', '<pad>');
    const vocab = this.inner.get_vocab(true);
    this.size = Math.max(...vocab.values()) + 1;
  }

  static fromDir(dir: string): CodeTokenizer {
    const file = join(dir, 'tokenizer.json');
    if (!existsSync(file)) {
      throw new Error(`${file}: missing; a checkpoint needs the fast tokenizer file (tokenizer.save_pretrained writes it)`);
    }
    const json = readJson(file);
    const config: Record<string, unknown> = {};
    for (const name of ['special_tokens_map.json', 'tokenizer_config.json']) {
      const path = join(dir, name);
      if (existsSync(path)) Object.assign(config, readJson(path));
    }
    return new CodeTokenizer(json, config, file);
  }

  /** Sub-word pieces of `text` without special tokens. */
  pieces(text: string): number[] {
    return this.inner.encode(text, { add_special_tokens: false }).ids;
  }

  tokens(ids: number[]): string[] {
    return ids.map((id) => this.inner.id_to_token(id) ?? `<${id}>`);
  }

  decode(ids: number[]): string {
    return this.inner.decode(ids, { skip_special_tokens: true, clean_up_tokenization_spaces: false });
  }

  idOf(token: string): number | undefined {
    return this.inner.token_to_id(token);
  }

  /** Encodes each text to at most maxLength ids; pads to maxLength or to the longest in the batch. */
  encode(texts: string[], maxLength: number, padTo: 'max' | 'longest' = 'longest'): Encoded {
    if (maxLength < 3) throw new Error(`maxLength ${maxLength} leaves no room for code between <s> and </s>`);
    const rows = texts.map((t) => [this.cls, ...this.pieces(t).slice(0, maxLength - 2), this.sep]);
    const width = padTo === 'max' ? maxLength : Math.max(...rows.map((r) => r.length));
    return {
      inputIds: rows.map((r) => [...r, ...new Array(width - r.length).fill(this.pad)]),
      attentionMask: rows.map((r) => [...new Array(r.length).fill(1), ...new Array(width - r.length).fill(0)]),
    };
  }
}

function readJson(file: string): any {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
}
