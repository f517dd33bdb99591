// A small HTTP client for tests: JSON in, status + headers + parsed body out.
export interface Answer<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export async function call<T = any>(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer<T>> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' || body instanceof Uint8Array ? (body as string) : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const response = await fetch(base + path, init);
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: response.status, headers: response.headers, body: parsed as T, text };
}

/** A V2 infer body for FP32 rows of the test models. */
export function v2Rows(rows: number[][], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    inputs: [{ name: 'input', shape: [rows.length, rows[0].length], datatype: 'FP32', data: rows.flat() }],
    ...extra,
  };
}

/** The admin token the hot-swap suites give their predictors (ADMIN_TOKEN). */
export const ADMIN_TOKEN = 'swap-secret';

/** A hot swap as the operator asks for one: PUT /admin/model with the admin token. */
export function swapModel<T = any>(base: string, body: Record<string, unknown>): Promise<Answer<T>> {
  return call<T>(base, 'PUT', '/admin/model', body, { authorization: `Bearer ${ADMIN_TOKEN}` });
}
