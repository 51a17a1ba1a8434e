/** Writes schema/rules.schema.json from the zod schema, so editors validate rules files as ers-bridge does. */
import { writeFileSync } from 'node:fs';
import { z } from 'zod';
import { RulesSchema } from '../src/rules/schema.js';

export function rulesJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(RulesSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return {
    $id: 'https://github.com/ers-bridge/ers-bridge/schema/rules.schema.json',
    title: 'ers-bridge rules file',
    ...schema,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync(
    new URL('../schema/rules.schema.json', import.meta.url),
    `${JSON.stringify(rulesJsonSchema(), null, 2)}\n`,
  );
  console.log('wrote schema/rules.schema.json');
}
