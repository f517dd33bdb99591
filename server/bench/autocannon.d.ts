// autocannon ships no types; the load generator uses a handful of fields.
declare module 'autocannon' {
  interface Result {
    requests: { total: number; average: number };
    non2xx: number;
    errors: number;
    timeouts: number;
    /** Present when the run had a warmup. */
    warmup?: Result;
  }
  interface Instance extends PromiseLike<Result> {
    on(
      event: 'response',
      listener: (client: unknown, statusCode: number, bytes: number, responseTime: number) => void,
    ): void;
  }
  export default function autocannon(options: Record<string, unknown>): Instance;
}
