/** The id of this process among ers-bridge replicas, as the comparison records and pages name it: hostname:pid. */
import { hostname } from 'node:os';

export function replicaId(): string {
  return `${hostname()}:${process.pid}`;
}
