// ANSI SGR escape sequences (colours, bold, ...) to styled segments; other escapes dropped.

export interface IAnsiStyle {
  fg?: string; // a class suffix ('red', 'bright-blue') or a CSS colour ('rgb(...)')
  bg?: string;
  bold?: boolean;
  dim?: boolean;
  italic?: boolean;
  underline?: boolean;
  inverse?: boolean;
}

export interface IAnsiSegment {
  text: string;
  style: IAnsiStyle;
}

const NAMES = ['black', 'red', 'green', 'yellow', 'blue', 'magenta', 'cyan', 'white'];

function color256(n: number): string {
  if (n < 8) {
    return NAMES[n];
  }
  if (n < 16) {
    return 'bright-' + NAMES[n - 8];
  }
  if (n < 232) {
    const i = n - 16;
    const c = [Math.floor(i / 36), Math.floor(i / 6) % 6, i % 6].map(v => (v ? v * 40 + 55 : 0));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  }
  const g = (n - 232) * 10 + 8;
  return `rgb(${g},${g},${g})`;
}

// CSI sequences (ESC [ ... final byte), OSC (ESC ] ... BEL/ST) and lone ESC x
// eslint-disable-next-line no-control-regex
const ESCAPE = /\x1b\[([0-9;?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;

/** Split `text` into segments, carrying `state` (the style at the start) across lines. */
export function parseAnsi(text: string, state: IAnsiStyle = {}): { segments: IAnsiSegment[]; state: IAnsiStyle } {
  const segments: IAnsiSegment[] = [];
  let style: IAnsiStyle = { ...state };
  let last = 0;
  const push = (s: string) => {
    if (!s) {
      return;
    }
    const prev = segments[segments.length - 1];
    if (prev && sameStyle(prev.style, style)) {
      prev.text += s;
    } else {
      segments.push({ text: s, style: { ...style } });
    }
  };
  ESCAPE.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = ESCAPE.exec(text)) !== null) {
    push(text.slice(last, m.index));
    last = ESCAPE.lastIndex;
    if (m[2] === 'm') {
      style = applySgr(style, m[1]);
    }
  }
  push(text.slice(last));
  return { segments, state: style };
}

function sameStyle(a: IAnsiStyle, b: IAnsiStyle): boolean {
  return (
    a.fg === b.fg &&
    a.bg === b.bg &&
    !!a.bold === !!b.bold &&
    !!a.dim === !!b.dim &&
    !!a.italic === !!b.italic &&
    !!a.underline === !!b.underline &&
    !!a.inverse === !!b.inverse
  );
}

export function applySgr(style: IAnsiStyle, params: string): IAnsiStyle {
  const s: IAnsiStyle = { ...style };
  const codes = params === '' ? [0] : params.split(';').map(x => (x === '' ? 0 : parseInt(x, 10)));
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (c === 0) {
      for (const k of Object.keys(s)) {
        delete (s as Record<string, unknown>)[k];
      }
    } else if (c === 1) {
      s.bold = true;
    } else if (c === 2) {
      s.dim = true;
    } else if (c === 3) {
      s.italic = true;
    } else if (c === 4) {
      s.underline = true;
    } else if (c === 7) {
      s.inverse = true;
    } else if (c === 22) {
      s.bold = false;
      s.dim = false;
    } else if (c === 23) {
      s.italic = false;
    } else if (c === 24) {
      s.underline = false;
    } else if (c === 27) {
      s.inverse = false;
    } else if (c >= 30 && c <= 37) {
      s.fg = NAMES[c - 30];
    } else if (c === 39) {
      delete s.fg;
    } else if (c >= 40 && c <= 47) {
      s.bg = NAMES[c - 40];
    } else if (c === 49) {
      delete s.bg;
    } else if (c >= 90 && c <= 97) {
      s.fg = 'bright-' + NAMES[c - 90];
    } else if (c >= 100 && c <= 107) {
      s.bg = 'bright-' + NAMES[c - 100];
    } else if ((c === 38 || c === 48) && codes[i + 1] === 5 && i + 2 < codes.length) {
      const col = color256(codes[i + 2]);
      if (c === 38) {
        s.fg = col;
      } else {
        s.bg = col;
      }
      i += 2;
    } else if ((c === 38 || c === 48) && codes[i + 1] === 2 && i + 4 < codes.length) {
      const col = `rgb(${codes[i + 2]},${codes[i + 3]},${codes[i + 4]})`;
      if (c === 38) {
        s.fg = col;
      } else {
        s.bg = col;
      }
      i += 4;
    }
  }
  return s;
}

/** the text without any escape sequence (for search and download) */
export function stripAnsi(text: string): string {
  return text.replace(ESCAPE, '');
}
