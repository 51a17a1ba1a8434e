import { createServer } from 'node:net';

/** A port nobody listens on right now (listen on 0, read it, close). Shared by the tests and the benchmark. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((r) => server.close(() => r()));
  if (!port) throw new Error('could not find a free port');
  return port;
}
