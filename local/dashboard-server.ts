// LOCAL: the dashboard's web server for `npm start` (what a static host does in production).
// Serves DASHBOARD_DIR (dashboard/dist) on 127.0.0.1:DASHBOARD_PORT with the right content
// types and index.html for any other page path (SPA fallback). The page talks to the API on
// :54321 directly, as it would to a Supabase project.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

const port = Number(process.env.DASHBOARD_PORT ?? 54323);
const dir = path.resolve(process.env.DASHBOARD_DIR ?? 'dashboard/dist');
const host = '127.0.0.1';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};
const log = (fields: Record<string, unknown>) => console.log(JSON.stringify({ ts: new Date().toISOString(), ...fields }));

function send(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function serveFile(req: http.IncomingMessage, res: http.ServerResponse, file: string, size: number): void {
  const immutable = file.startsWith(path.join(dir, 'assets') + path.sep);
  res.writeHead(200, {
    'content-type': TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
    'content-length': size,
    // Vite's assets are content-hashed; index.html must always be revalidated to pick up a build.
    'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  fs.createReadStream(file).on('error', () => res.destroy()).pipe(res);
}

function serveStatic(req: http.IncomingMessage, res: http.ServerResponse, pathname: string): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    return send(res, 405, 'Method not allowed\n');
  }
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return send(res, 400, 'Bad request\n');
  }
  // No dot-files (the build stamp) and nothing outside the folder.
  if (decoded.includes('\0') || decoded.split('/').some((seg) => seg.startsWith('.'))) return send(res, 404, 'Not found\n');
  const file = path.join(dir, path.normalize(decoded));
  if (file !== dir && !file.startsWith(dir + path.sep)) return send(res, 404, 'Not found\n');
  const st = fs.statSync(file, { throwIfNoEntry: false });
  if (st?.isFile()) return serveFile(req, res, file, st.size);
  // A missing asset is a 404; any other path is a page of the app.
  if (path.extname(decoded) && decoded !== '/') return send(res, 404, 'Not found\n');
  const index = path.join(dir, 'index.html');
  const ist = fs.statSync(index, { throwIfNoEntry: false });
  if (!ist) return send(res, 503, 'The dashboard is not built (npm start builds it).\n');
  serveFile(req, res, index, ist.size);
}

const server = http.createServer((req, res) => {
  const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
  serveStatic(req, res, pathname);
});
server.keepAliveTimeout = 5000;
server.listen(port, host, () => log({ level: 'info', msg: 'listening', url: `http://${host}:${port}`, dir }));

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
