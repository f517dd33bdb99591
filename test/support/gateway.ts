/**
 * Requests through the local cluster's Gateway (Traefik, started by e2e/cluster/cluster.sh): to its listener at
 * $GATEWAY_URL with the Host header of the route's hostname, as a client resolving that name to the Gateway's
 * address would send them. node:http, because fetch does not let a caller set Host.
 */
import { Agent, request } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { inferenceService } from '../../server/src/protocol/grpc-service.ts';
import { GRPC_INFERENCE_SERVICE } from '../../operator/api/contracts.ts';

export interface GatewayAnswer {
  status: number;
  /** x-model-version of the predictor that answered; absent when the gateway answered itself. */
  version?: string;
  body: any;
}

/** $GATEWAY_URL (from `cluster.sh env`), or a clear error saying how to get it. */
export function gatewayUrl(): string {
  const url = process.env.GATEWAY_URL;
  if (!url)
    throw new Error(
      'GATEWAY_URL is not set: run through `npm test`, or `eval "$(bash e2e/cluster/cluster.sh env)"` (the local cluster runs Traefik as its Gateway)',
    );
  return url;
}

export class GatewayClient {
  private readonly agent: Agent;
  private readonly target: URL;

  constructor(
    readonly host: string,
    url = gatewayUrl(),
    maxSockets = 64,
  ) {
    this.target = new URL(url);
    this.agent = new Agent({ keepAlive: true, maxSockets });
  }

  /** POST `body` as JSON to `path` with this client's Host; a network error or timeout is status 0. */
  post(path: string, body: unknown, timeoutMs = 10_000): Promise<GatewayAnswer> {
    const payload = JSON.stringify(body);
    return new Promise((resolve) => {
      const req = request(
        {
          agent: this.agent,
          hostname: this.target.hostname,
          port: this.target.port,
          method: 'POST',
          path,
          headers: {
            host: this.host,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(payload),
          },
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            try {
              parsed = JSON.parse(text);
            } catch {
              /* not JSON (a gateway's own error page): keep the text */
            }
            const version = res.headers['x-model-version'];
            resolve({ status: res.statusCode ?? 0, ...(typeof version === 'string' ? { version } : {}), body: parsed });
          });
          res.on('error', (error) => resolve({ status: 0, body: { error: error.message } }));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer from the gateway in ${timeoutMs} ms`)));
      req.on('error', (error) => resolve({ status: 0, body: { error: error.message } }));
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** A ModelInfer call's outcome through the gateway: the gRPC status and the answering predictor's x-model-version. */
export interface GrpcGatewayAnswer {
  code: grpc.status;
  version?: string;
  details?: string;
  response?: any;
}

/**
 * A real gRPC client (grpc-js) of the Open Inference Protocol that calls the Gateway's listener over h2c with
 * `host` as the :authority, as a client resolving the route's hostname to the Gateway's address would.
 */
export class GrpcGatewayClient {
  private readonly client: grpc.Client;

  constructor(
    readonly host: string,
    url = gatewayUrl(),
  ) {
    const Service = inferenceService();
    this.client = new Service(new URL(url).host, grpc.credentials.createInsecure(), { 'grpc.default_authority': host });
  }

  /** One unary call; a failed call is its status, never a rejection. */
  call(
    method: 'ModelInfer' | 'ModelMetadata' | 'ServerReady',
    request: object,
    timeoutMs = 10_000,
  ): Promise<GrpcGatewayAnswer> {
    return new Promise((resolve) => {
      let version: string | undefined;
      const call = (this.client as any)[method](
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + timeoutMs },
        (error: grpc.ServiceError | null, response: unknown) => {
          if (error) resolve({ code: error.code, details: error.details, ...(version ? { version } : {}) });
          else resolve({ code: grpc.status.OK, response, ...(version ? { version } : {}) });
        },
      );
      call.on('metadata', (metadata: grpc.Metadata) => {
        const value = metadata.get('x-model-version')[0];
        if (value !== undefined) version = String(value);
      });
    });
  }

  close(): void {
    this.client.close();
  }
}

/**
 * Whether a Traefik router's rule is for gRPC inference calls: an IngressRoute's `PathPrefix(`/inference.GRPC...`)`,
 * or the `PathRegexp("/inference\\\\.GRPC...")` Traefik builds for a GRPCRoute's method match (a regexp in a quoted string).
 */
export function isGrpcRule(rule: string): boolean {
  return rule.replace(/\\+\./g, '.').includes(`/${GRPC_INFERENCE_SERVICE}/`);
}

/**
 * The service Traefik runs for the route that matches `host`, from its API ($TRAEFIK_ADMIN_URL): what the data
 * plane does now (weights, mirrors), which the route object and its status only promise. Undefined until
 * Traefik has built a router for the host. `rule` picks among the host's routers: by default the one that is
 * not for gRPC calls (`isGrpcRule` picks that one).
 */
export async function traefikService(
  host: string,
  rule: (rule: string) => boolean = (r) => !isGrpcRule(r),
): Promise<any | undefined> {
  const admin = process.env.TRAEFIK_ADMIN_URL;
  if (!admin) throw new Error('TRAEFIK_ADMIN_URL is not set: eval "$(bash e2e/cluster/cluster.sh env)"');
  const routers = (await (await fetch(`${admin}/api/http/routers?per_page=1000`)).json()) as Array<{
    rule: string;
    service: string;
    provider: string;
  }>;
  // Traefik's own routes quote the host in backticks, the rules it builds for HTTPRoutes in double quotes.
  const router = routers.find(
    (r) => (r.rule.includes(`Host(\`${host}\`)`) || r.rule.includes(`Host("${host}")`)) && rule(r.rule),
  );
  if (!router) return undefined;
  const name = router.service.includes('@') ? router.service : `${router.service}@${router.provider}`;
  const response = await fetch(`${admin}/api/http/services/${encodeURIComponent(name)}`);
  return response.ok ? await response.json() : undefined;
}

/** How many servers Traefik balances over for one of its services (`name@provider`); 0 when it has none yet. */
export async function traefikServers(name: string): Promise<number> {
  const admin = process.env.TRAEFIK_ADMIN_URL;
  if (!admin) throw new Error('TRAEFIK_ADMIN_URL is not set: eval "$(bash e2e/cluster/cluster.sh env)"');
  const response = await fetch(`${admin}/api/http/services/${encodeURIComponent(name)}`);
  if (!response.ok) return 0;
  const service = (await response.json()) as { loadBalancer?: { servers?: unknown[] } };
  return service.loadBalancer?.servers?.length ?? 0;
}
