// A real PostgreSQL for suites that write tables: the local cluster's (LOOPLINE_POSTGRES_URL, which
// `cluster.sh env` prints) when the suite runs against the cluster, else a server of this process's own, started
// by e2e/postgres/postgres.sh (Debian's binaries, a throwaway data directory) on a port derived from
// LOOPLINE_NATS_PORT, as the cluster derives its ports, and stopped again by `stop`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const SCRIPT = fileURLToPath(new URL('../../e2e/postgres/postgres.sh', import.meta.url));

export interface TestPostgres {
  /** Connection string, password included: pods get it through a Secret, never a log. */
  url: string;
  /** The server's binaries (psql among them). */
  bin: string;
  query<R extends pg.QueryResultRow = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
  stop(): Promise<void>;
}

async function portFree(port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** The first free port from the NATS port + 1100 on: the cluster's server has + 1000, other suites' take the next. */
async function derivedPort(): Promise<number> {
  const base = Number(process.env.LOOPLINE_NATS_PORT ?? 4223) + 1100;
  for (let port = base; port < base + 100; port++) if (await portFree(port)) return port;
  throw new Error(`no free port for PostgreSQL in ${base}..${base + 99}`);
}

export async function startPostgres(): Promise<TestPostgres> {
  const bin = execFileSync('bash', [SCRIPT, 'bin'], { encoding: 'utf8' }).trim();
  let url = process.env.LOOPLINE_POSTGRES_URL;
  let dir: string | undefined;
  if (!url) {
    dir = mkdtempSync(join(tmpdir(), 'loopline-postgres-'));
    const port = await derivedPort();
    execFileSync('bash', [SCRIPT, 'start', dir, String(port), '127.0.0.1'], { stdio: ['ignore', 'ignore', 'inherit'] });
    url = execFileSync('bash', [SCRIPT, 'url', dir, String(port), '127.0.0.1'], { encoding: 'utf8' }).trim();
  }
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on('error', () => undefined);
  return {
    url,
    bin,
    async query(sql, params) {
      return (await pool.query(sql, params)).rows;
    },
    async stop() {
      await pool.end();
      if (dir) execFileSync('bash', [SCRIPT, 'stop', dir], { stdio: 'ignore' });
    },
  };
}
