// The notebook's `parameters` cell read on the client (used when the server cannot say), and
// the dialog's text fields turned back into values.
import type { IParameter } from './types';

interface ICellLike {
  cell_type?: string;
  source?: string | string[];
  metadata?: { tags?: string[] };
}

/** `name = value  # help` assignments of the first cell tagged `parameters`. */
export function parseParametersCell(cells: ICellLike[]): IParameter[] {
  const cell = cells.find(c => c.cell_type === 'code' && (c.metadata?.tags || []).includes('parameters'));
  if (!cell) {
    return [];
  }
  const source = Array.isArray(cell.source) ? cell.source.join('') : cell.source || '';
  const out: IParameter[] = [];
  for (const line of source.split('\n')) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*(?::\s*([A-Za-z_][\w[\], ]*))?\s*=\s*(.*)$/.exec(line);
    if (!m) {
      continue;
    }
    let value = m[3];
    let help: string | null = null;
    const hash = findComment(value);
    if (hash >= 0) {
      help = value.slice(hash + 1).trim() || null;
      value = value.slice(0, hash);
    }
    value = value.trim();
    out.push({ name: m[1], default: literal(value), type: m[2]?.trim() || typeOf(value), help });
  }
  return out;
}

function findComment(s: string): number {
  let quote = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === '\\') {
        i++;
      } else if (c === quote) {
        quote = '';
      }
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '#') {
      return i;
    }
  }
  return -1;
}

function typeOf(value: string): string | null {
  const v = literal(value);
  if (typeof v === 'boolean') {
    return 'bool';
  }
  if (typeof v === 'number') {
    return Number.isInteger(v) && !/[.eE]/.test(value) ? 'int' : 'float';
  }
  if (typeof v === 'string') {
    return 'str';
  }
  if (v === null) {
    return 'None';
  }
  return Array.isArray(v) ? 'list' : typeof v === 'object' ? 'dict' : null;
}

/** A Python literal as JSON-ish value (strings, numbers, True/False/None, lists, dicts); else the text. */
export function literal(text: string): unknown {
  const t = text.trim();
  if (t === 'True') {
    return true;
  }
  if (t === 'False') {
    return false;
  }
  if (t === 'None') {
    return null;
  }
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) {
    return Number(t);
  }
  const q = /^(['"])(.*)\1$/s.exec(t);
  if (q) {
    return q[2].replace(/\\(['"\\])/g, '$1');
  }
  try {
    return JSON.parse(t.replace(/\bTrue\b/g, 'true').replace(/\bFalse\b/g, 'false').replace(/\bNone\b/g, 'null').replace(/'/g, '"'));
  } catch {
    return t;
  }
}

/** The text a parameter's default shows in the dialog. */
export function displayValue(v: unknown, type?: string | null): string {
  if (v === null || v === undefined) {
    return '';
  }
  if (typeof v === 'string') {
    return v;
  }
  if (typeof v === 'number' && type === 'float' && Number.isInteger(v)) {
    return v.toFixed(1);
  }
  return JSON.stringify(v);
}

/** The dialog's text back to a value of the parameter's type. */
export function coerce(text: string, param: IParameter): unknown {
  const type = (param.type || '').toLowerCase();
  const t = text.trim();
  if (type === 'str' || (typeof param.default === 'string' && !type)) {
    return text;
  }
  if (type === 'int' || type === 'float' || typeof param.default === 'number') {
    const n = Number(t);
    if (t !== '' && !isNaN(n)) {
      return n;
    }
    throw new Error(`${param.name}: "${text}" is not a number`);
  }
  if (type === 'bool' || typeof param.default === 'boolean') {
    if (/^(true|1|yes)$/i.test(t)) {
      return true;
    }
    if (/^(false|0|no)$/i.test(t)) {
      return false;
    }
    throw new Error(`${param.name}: "${text}" is not true or false`);
  }
  if (t === '') {
    return null;
  }
  try {
    return JSON.parse(t);
  } catch {
    return literal(t);
  }
}
