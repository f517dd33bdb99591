// GET /metrics for Prometheus, and the HTTP duration histogram every route feeds.
import type { FastifyInstance } from 'fastify';
import type { ServerMetrics } from './metrics.ts';

export function installMetrics(app: FastifyInstance, metrics: ServerMetrics): void {
  // A callback hook: an async one would cost a promise per request.
  app.addHook('onResponse', (request, reply, done) => {
    // The route pattern, not the URL, keeps label cardinality bounded.
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpRequestDuration.observe({ method: request.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    done();
  });
  app.get('/metrics', async (_request, reply) => {
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
}
