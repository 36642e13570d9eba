// The followed task's live log: owns the /tasks/{id}/logs/follow socket (opened when a task is
// followed, re-opened after a drop, closed at the log's end, on an error, when another task is
// followed and when nobody watches any more) and hands what the server says, as messages, to the
// one view that watches it. The socket also serves finished tasks: it sends the log so far, then
// `end`; on every (re)connection the server sends the log from its start.
import { ReconnectingSocket, SocketFactory } from './socket';
import type { ILogLine, ITask } from './types';

export type LogFeedMessage =
  /** another task (or none) is followed now: start over */
  | { type: 'follow'; taskId: string | null }
  /** (re)connected: the log comes again from its start */
  | { type: 'restart' }
  | { type: 'lines'; lines: ILogLine[] }
  /** the task changed state */
  | { type: 'state'; task: ITask }
  /** the whole log was sent (the socket is closed) */
  | { type: 'end'; task?: ITask }
  /** the log cannot be read (the socket is closed) */
  | { type: 'error'; message: string };

export type LogListener = (msg: LogFeedMessage) => void;

export interface ILogFeedOptions {
  /** the follow socket's URL for a task */
  url: (taskId: string) => string;
  factory?: SocketFactory;
  /** a newer view of the task, as the log socket tells it */
  onTask?: (task: ITask) => void;
}

interface IServerMessage {
  type: string;
  lines?: ILogLine[];
  task?: ITask;
  message?: string;
}

export class LogFeed {
  /** the task whose log is followed (null: none) */
  taskId: string | null = null;
  private socket: ReconnectingSocket | null = null;
  private listener: LogListener | null = null;

  constructor(private readonly opts: ILogFeedOptions) {}

  /** Hand the messages to `listener` (it replaces any earlier one); the returned function
   * stops that and closes the socket. */
  watch(listener: LogListener): () => void {
    this.listener = listener;
    return () => {
      if (this.listener === listener) {
        this.listener = null;
        this.close();
        this.taskId = null;
      }
    };
  }

  /** follow task `id`'s log from its start (null: none) */
  follow(id: string | null): void {
    this.close();
    this.taskId = id;
    this.emit({ type: 'follow', taskId: id });
    if (!id) {
      return;
    }
    const socket = new ReconnectingSocket({
      url: () => this.opts.url(id),
      factory: this.opts.factory,
      onOpen: () => {
        if (socket === this.socket) {
          this.emit({ type: 'restart' });
        }
      },
      onMessage: data => {
        if (socket === this.socket) {
          this.onMessage(data as IServerMessage);
        }
      }
    });
    this.socket = socket;
    socket.start();
  }

  /** close the socket (the followed task stays: follow() it again to read on) */
  close(): void {
    this.socket?.stop();
    this.socket = null;
  }

  private onMessage(msg: IServerMessage): void {
    if (msg.type === 'lines' && msg.lines) {
      this.emit({ type: 'lines', lines: msg.lines });
    } else if (msg.type === 'state' && msg.task) {
      this.emit({ type: 'state', task: msg.task });
      this.opts.onTask?.(msg.task);
    } else if (msg.type === 'end') {
      this.close();
      this.emit({ type: 'end', task: msg.task });
      if (msg.task) {
        this.opts.onTask?.(msg.task);
      }
    } else if (msg.type === 'error') {
      this.close();
      this.emit({ type: 'error', message: msg.message || 'The log cannot be read.' });
    }
  }

  private emit(msg: LogFeedMessage): void {
    this.listener?.(msg);
  }
}
