// A WebSocket that comes back by itself: exponential backoff with jitter after a close,
// `onOpen` on every (re)connection so that the caller re-reads the state.

export type SocketFactory = (url: string) => WebSocket;

export interface IReconnectingOptions {
  url: () => string;
  onMessage: (data: unknown) => void;
  onOpen?: () => void;
  onState?: (state: 'open' | 'closed') => void;
  factory?: SocketFactory;
  minDelay?: number;
  maxDelay?: number;
}

/** the wait before attempt `n` (0-based) of reconnecting */
export function backoffDelay(n: number, min = 500, max = 15000, random: () => number = Math.random): number {
  const base = Math.min(max, min * Math.pow(2, n));
  return Math.round(base * (0.75 + 0.5 * random()));
}

export class ReconnectingSocket {
  private ws: WebSocket | null = null;
  private attempts = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  state: 'open' | 'closed' = 'closed';

  constructor(private readonly opts: IReconnectingOptions) {}

  start(): void {
    this.stopped = false;
    this.connect();
  }

  /** close now and connect again at once (e.g. the user asked to) */
  reconnect(): void {
    this.attempts = 0;
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close();
      this.ws = null;
    }
    this.setState('closed');
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close();
      this.ws = null;
    }
    this.setState('closed');
  }

  private setState(s: 'open' | 'closed'): void {
    if (this.state !== s) {
      this.state = s;
      this.opts.onState?.(s);
    }
  }

  private connect(): void {
    if (this.stopped) {
      return;
    }
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const factory = this.opts.factory || ((u: string) => new WebSocket(u));
    let ws: WebSocket;
    try {
      ws = factory(this.opts.url());
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.attempts = 0;
      this.setState('open');
      this.opts.onOpen?.();
    };
    ws.onmessage = (ev: MessageEvent) => {
      let data: unknown;
      try {
        data = JSON.parse(String(ev.data));
      } catch {
        return;
      }
      this.opts.onMessage(data);
    };
    ws.onclose = () => {
      if (this.ws === ws) {
        this.ws = null;
      }
      this.setState('closed');
      this.scheduleReconnect();
    };
    ws.onerror = () => {
      // onclose follows
    };
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.timer) {
      return;
    }
    const delay = backoffDelay(this.attempts++, this.opts.minDelay, this.opts.maxDelay);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect();
    }, delay);
  }
}
