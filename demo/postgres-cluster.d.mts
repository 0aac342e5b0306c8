export const INSTALL_HINT: string;
export function findPostgresBin(options?: { env?: Record<string, string | undefined>; debianRoot?: string }): string;
export function freePort(): Promise<number>;
export interface PostgresCluster {
  /** Connects as the superuser `postgres` to database `postgres`. */
  url: string;
  port: number;
  dir: string;
  pid: number;
  stop(): Promise<void>;
}
export function startPostgresCluster(options?: { durable?: boolean; log?: (message: string) => void }): Promise<PostgresCluster>;
export function stopPostgresCluster(cluster: { pid: number; dir: string }): Promise<void>;
