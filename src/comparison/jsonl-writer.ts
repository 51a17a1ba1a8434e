/**
 * A JSON-lines file written in the background: appends never block or throw; lines are batched, the queue is
 * bounded (beyond it lines are dropped and counted), and the file rotates at `maxBytes` — `file` → `file.1` → … →
 * `file.<maxFiles - 1>`, the oldest deleted — so it never grows without bound. Files are created readable by the
 * owner only. Used by the comparison store and by traffic recording.
 */
import { type FileHandle, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface JsonlWriterOptions {
  file: string;
  maxBytes: number;
  maxFiles: number;
  maxQueueBytes: number;
  /** Called at each batch for a line to add (e.g. aggregated counters), or undefined. */
  extraLine?: () => string | undefined;
}

export class JsonlWriter {
  private queue: string[] = [];
  private queueBytes = 0;
  private draining: Promise<void> | undefined;
  private handle: FileHandle | undefined;
  private size = 0;
  private closed = false;
  /** Lines not written because the queue was full or a write failed. */
  dropped = 0;
  writeErrors = 0;
  lastWriteError: string | undefined;

  constructor(private readonly opts: JsonlWriterOptions) {}

  /** Queues a line (without its newline). Never throws. */
  append(line: string): void {
    if (this.closed) return;
    const bytes = Buffer.byteLength(line) + 1;
    if (this.queueBytes + bytes > this.opts.maxQueueBytes) {
      this.dropped++;
      return;
    }
    this.queue.push(line);
    this.queueBytes += bytes;
    this.kick();
  }

  /** Starts a background write if one is not running (e.g. when only `extraLine` has something). */
  kick(): void {
    if (this.draining || this.closed) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      if (this.queue.length > 0) this.kick();
    });
  }

  /** Resolves when everything queued so far is written (or has failed to be). */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    const h = this.handle;
    this.handle = undefined;
    await h?.close().catch(() => undefined);
  }

  private async drain(): Promise<void> {
    // Let the current tick's lines gather into one batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    for (;;) {
      const lines = this.queue;
      this.queue = [];
      this.queueBytes = 0;
      const extra = this.opts.extraLine?.();
      if (extra) lines.push(extra);
      if (lines.length === 0) return;
      try {
        await this.writeLines(lines);
      } catch (e) {
        this.writeErrors++;
        this.lastWriteError = (e as Error).message;
        this.dropped += lines.length;
        const h = this.handle;
        this.handle = undefined;
        await h?.close().catch(() => undefined);
      }
    }
  }

  private async ensureOpen(): Promise<FileHandle> {
    if (this.handle) return this.handle;
    await mkdir(dirname(this.opts.file), { recursive: true });
    const h = await open(this.opts.file, 'a', 0o600);
    this.size = (await stat(this.opts.file)).size;
    this.handle = h;
    return h;
  }

  private async writeLines(lines: string[]): Promise<void> {
    let chunk = '';
    let chunkBytes = 0;
    const writeChunk = async () => {
      if (chunkBytes === 0) return;
      const h = await this.ensureOpen();
      await h.write(chunk);
      this.size += chunkBytes;
      chunk = '';
      chunkBytes = 0;
    };
    await this.ensureOpen();
    for (const line of lines) {
      const bytes = Buffer.byteLength(line) + 1;
      if (this.size + chunkBytes + bytes > this.opts.maxBytes && this.size + chunkBytes > 0) {
        await writeChunk();
        await this.rotate();
      }
      chunk += `${line}\n`;
      chunkBytes += bytes;
    }
    await writeChunk();
  }

  private async rotate(): Promise<void> {
    const file = this.opts.file;
    const h = this.handle;
    this.handle = undefined;
    await h?.close();
    if (this.opts.maxFiles <= 1) {
      await rm(file, { force: true });
    } else {
      await rm(`${file}.${this.opts.maxFiles - 1}`, { force: true });
      for (let i = this.opts.maxFiles - 2; i >= 1; i--) await renameIfExists(`${file}.${i}`, `${file}.${i + 1}`);
      await renameIfExists(file, `${file}.1`);
    }
    this.size = 0;
  }
}

async function renameIfExists(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
