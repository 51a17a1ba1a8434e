import { describe, expect, it } from 'vitest';
import { storeReadiness } from '../../../src/ops/server.js';

describe('storeReadiness: the session store in /readyz', () => {
  const stayReady = { readyDuringStoreOutage: true };
  const strict = { readyDuringStoreOutage: false };

  it('is ready while the store answers, whatever the setting', () => {
    expect(storeReadiness(true, true, stayReady)).toEqual({ ready: true, check: 'reachable' });
    expect(storeReadiness(true, true, strict)).toEqual({ ready: true, check: 'reachable' });
  });

  it('stays ready while a store reached before is down (every replica shares it), unless the rules say not to', () => {
    expect(storeReadiness(false, true, stayReady)).toEqual({ ready: true, check: 'unreachable' });
    expect(storeReadiness(false, true, strict)).toEqual({ ready: false, check: 'unreachable' });
  });

  it('is unready while the store has never been reached since start (a wrong address or password)', () => {
    expect(storeReadiness(false, false, stayReady)).toEqual({ ready: false, check: 'never reached' });
    expect(storeReadiness(false, false, strict)).toEqual({ ready: false, check: 'never reached' });
  });
});
