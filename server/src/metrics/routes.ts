// GET /metrics for Prometheus, and the HTTP duration histogram every route feeds.
import type { FastifyInstance } from 'fastify';
import { SeriesCache, type ServerMetrics } from './metrics.ts';

/** `exposition` is the text /metrics answers: this process's registry, or the pod's workers aggregated. */
export function installMetrics(
  app: FastifyInstance,
  metrics: ServerMetrics,
  exposition: () => Promise<string> = () => metrics.registry.metrics(),
): void {
  const durations = new SeriesCache((method, route, status) =>
    metrics.httpRequestDuration.series({ method, route, status }),
  );
  // A callback hook: an async one would cost a promise per request.
  app.addHook('onResponse', (request, reply, done) => {
    // The route pattern, not the URL, keeps label cardinality bounded.
    const route = request.routeOptions.url ?? 'unmatched';
    durations.get(request.method, route, String(reply.statusCode)).observe(reply.elapsedTime / 1000);
    done();
  });
  app.get('/metrics', async (_request, reply) => {
    return reply.type(metrics.registry.contentType).send(await exposition());
  });
}
