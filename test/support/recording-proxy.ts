// A pass-through HTTP proxy in front of the Klaviyo sandbox that records every request in full (the sandbox's own
// log trims large bodies): when it started and ended, its answer, and the unique_ids of the events it carried.
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  startedAt: number;
  endedAt: number;
  method: string;
  path: string;
  status: number;
  uniqueIds: string[];
}

export interface RecordingProxy {
  url: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

const readBody = async (req: IncomingMessage) => {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};

export async function startRecordingProxy(targetUrl: string): Promise<RecordingProxy> {
  const requests: RecordedRequest[] = [];
  const server = createServer(async (req, res) => {
    const startedAt = Date.now();
    const body = await readBody(req);
    const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => !['host', 'connection', 'content-length'].includes(k))) as Record<string, string>;
    try {
      const answer = await fetch(targetUrl + req.url, { method: req.method, headers, body: body.length ? body : undefined });
      const payload = Buffer.from(await answer.arrayBuffer());
      const uniqueIds = [...body.toString('utf8').matchAll(/"unique_id":"([^"]+)"/g)].map((m) => m[1]!);
      requests.push({ startedAt, endedAt: Date.now(), method: req.method!, path: req.url!.split('?')[0]!, status: answer.status, uniqueIds });
      res.writeHead(answer.status, Object.fromEntries([...answer.headers].filter(([k]) => !['content-length', 'transfer-encoding', 'content-encoding', 'connection'].includes(k))));
      res.end(payload);
    } catch {
      res.socket?.destroy();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
