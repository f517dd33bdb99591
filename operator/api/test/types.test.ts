// The TypeScript types are generated from crds/; this fails when a CRD changed and types.ts was not regenerated.
// test: no cluster
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TYPES_PATH, generateTypes } from '../generate-types.ts';
import { LOOPLINE_KINDS, openApiSchema, type SchemaNode } from '../crds.ts';

test('operator/api/types.ts is exactly what generate-types.ts makes from the CRDs', () => {
  const committed = readFileSync(TYPES_PATH, 'utf8');
  const fresh = generateTypes();
  if (committed !== fresh) {
    const line = fresh.split('\n').findIndex((text, i) => text !== committed.split('\n')[i]);
    assert.unreachable(`types.ts is stale from line ${line + 1}: run npx tsx operator/api/generate-types.ts`);
  }
});

test('every spec and status field of the CRDs appears in the generated types with its optionality', () => {
  const generated = generateTypes();
  for (const kind of LOOPLINE_KINDS) {
    for (const part of ['spec', 'status'] as const) {
      const node = openApiSchema(kind).properties![part] as SchemaNode;
      const body = new RegExp(
        `export interface ${kind}${part === 'spec' ? 'Spec' : 'Status'} \\{([\\s\\S]*?)\\n\\}\\n`,
      ).exec(generated);
      assert.ok(body, `no interface for ${kind}.${part}`);
      const required = new Set(node.required ?? []);
      for (const field of Object.keys(node.properties ?? {})) {
        assert.ok(
          body![1].includes(`\n  ${field}${required.has(field) ? '' : '?'}: `),
          `${kind}.${part}.${field} missing or wrong optionality`,
        );
      }
    }
  }
});

test.run();
