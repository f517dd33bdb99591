// Offline validation of Loopline objects against the CRD schemas, for what the API server would check
// structurally (types, enums, patterns, bounds, required and unknown fields). CEL rules
// (x-kubernetes-validations) are not evaluated here; only the API server runs them.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { openApiSchema, type LooplineKind, type SchemaNode } from './crds.ts';

// ajv-formats is CommonJS; under NodeNext its default export arrives wrapped.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

export interface ValidatorOptions {
  /** Fill in schema defaults the way the API server's defaulting does (mutates the validated object). */
  applyDefaults?: boolean;
}

const INT_RANGES: Record<string, [number, number]> = {
  int32: [-(2 ** 31), 2 ** 31 - 1],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

function newAjv(options: ValidatorOptions): Ajv {
  // strictTypes off: Kubernetes int-or-string nodes carry a string pattern next to anyOf [integer, string].
  const ajv = new Ajv({ allErrors: true, strictTypes: false, useDefaults: options.applyDefaults ?? false });
  addFormats(ajv, ['date-time']);
  for (const [format, [min, max]] of Object.entries(INT_RANGES)) {
    ajv.addFormat(format, { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= min && n <= max });
  }
  return ajv;
}

/**
 * Turns a Kubernetes structural schema into JSON Schema with the API server's semantics: unknown
 * fields are errors (as kubectl's strict field validation reports them) unless the node preserves
 * them, list-type set means unique items, and OpenAPI 3.0's boolean `exclusiveMaximum`/`exclusiveMinimum`
 * (the form a CRD takes) become JSON Schema's numeric bounds.
 */
export function toJsonSchema(node: SchemaNode): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    if (key.startsWith('x-kubernetes-')) continue;
    if (key === 'properties') {
      out.properties = Object.fromEntries(
        Object.entries(value as Record<string, SchemaNode>).map(([name, child]) => [name, toJsonSchema(child)]),
      );
    } else if (key === 'items' || (key === 'additionalProperties' && typeof value === 'object')) {
      out[key] = toJsonSchema(value as SchemaNode);
    } else if (key === 'anyOf') {
      out.anyOf = (value as SchemaNode[]).map(toJsonSchema);
    } else if ((key === 'exclusiveMaximum' || key === 'exclusiveMinimum') && typeof value === 'boolean') {
      const bound = key === 'exclusiveMaximum' ? 'maximum' : 'minimum';
      if (value && typeof node[bound] === 'number') out[key] = node[bound];
    } else if (
      (key === 'maximum' || key === 'minimum') &&
      (node as Record<string, unknown>)[key === 'maximum' ? 'exclusiveMaximum' : 'exclusiveMinimum'] === true
    ) {
      // carried by the exclusive bound above
    } else {
      out[key] = value;
    }
  }
  const preserves = node['x-kubernetes-preserve-unknown-fields'] === true;
  if (node.type === 'object' && node.properties && !preserves && node.additionalProperties === undefined) {
    out.additionalProperties = false;
  }
  if (node['x-kubernetes-list-type'] === 'set') out.uniqueItems = true;
  return out;
}

const compiled = new Map<string, ValidateFunction>();

function compile(key: string, schema: SchemaNode, options: ValidatorOptions): ValidateFunction {
  const cacheKey = `${key}:${options.applyDefaults ? 'defaults' : 'plain'}`;
  let validate = compiled.get(cacheKey);
  if (!validate) {
    validate = newAjv(options).compile(toJsonSchema(schema));
    compiled.set(cacheKey, validate);
  }
  return validate;
}

/** Validates a whole object (apiVersion, kind, metadata, spec, status) of a kind. */
export function validatorFor(kind: LooplineKind, options: ValidatorOptions = {}): ValidateFunction {
  return compile(kind, openApiSchema(kind), options);
}

/** Validates a bare spec of a kind, e.g. the TrainingJob template inside an InferenceService. */
export function specValidatorFor(kind: LooplineKind, options: ValidatorOptions = {}): ValidateFunction {
  const spec = openApiSchema(kind).properties?.spec;
  if (!spec) throw new Error(`the ${kind} schema has no spec`);
  return compile(`${kind}.spec`, spec, options);
}

/** One line per error, with the field path in the dotted form kubectl uses, e.g. `spec.workers: must be >= 1`. */
export function describeErrors(errors: ErrorObject[] | null | undefined, root = ''): string[] {
  return (errors ?? []).map((error) => {
    const path = error.instancePath
      .split('/')
      .slice(1)
      .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
      .reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), root);
    const extra =
      error.keyword === 'additionalProperties'
        ? ` (${(error.params as { additionalProperty: string }).additionalProperty})`
        : error.keyword === 'enum'
          ? ` (${(error.params as { allowedValues: unknown[] }).allowedValues.join(', ')})`
          : '';
    return `${path || '<root>'}: ${error.message}${extra}`;
  });
}
