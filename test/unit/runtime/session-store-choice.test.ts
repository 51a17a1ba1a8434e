import { describe, expect, it } from 'vitest';
import { RulesError } from '../../../src/rules/load.js';
import { secretResolver } from '../../../src/rules/secrets.js';
import { buildRuntime, closeRuntime } from '../../../src/runtime/runtime.js';
import { MemorySessionStore } from '../../../src/sessions/memory-store.js';
import { rulesFor } from '../../helpers/rules.js';

describe('ERS_BRIDGE_SESSION_STORE over the rules’ session store', () => {
  const rules = () =>
    rulesFor({
      apim: { baseUrl: 'http://127.0.0.1:9/referrals/FHIR', auth: 'none' },
      asids: { '999000000001': { apim: false } },
    });
  const build = (env: NodeJS.ProcessEnv) =>
    buildRuntime('store-choice.yaml', rules(), { resolveSecret: secretResolver({}), env });

  it('empty is not set: the rules decide (a compose override blanks it this way)', async () => {
    for (const env of [{ ERS_BRIDGE_SESSION_STORE: '' }, {}, { ERS_BRIDGE_SESSION_STORE: 'memory' }]) {
      const rt = await build(env);
      try {
        expect(rt.shared.store).toBeInstanceOf(MemorySessionStore);
      } finally {
        await closeRuntime(rt);
      }
    }
  });

  it('anything else that is not memory or a redis:// URL is refused, naming the variable', async () => {
    const refused = await build({ ERS_BRIDGE_SESSION_STORE: 'mem' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RulesError);
    expect(String((refused as Error).message)).toMatch(/ERS_BRIDGE_SESSION_STORE.*expected memory or a redis:\/\/ URL/);
  });
});
