// Serve a Next.js-style route handler -- `export async function POST(req: Request)` returning
// a `Response` -- on node:http, with Node's built-in fetch classes. As in Next.js, a handler
// that throws is answered 500 with an empty body; there is no body-size limit.
'use strict';

const http = require('node:http');

function serveRouteHandler(path, handlers) {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', async () => {
      const route = req.url.split('?')[0];
      const handler = handlers[req.method];
      if (route !== path) {
        res.statusCode = 404;
        return res.end();
      }
      if (handler === undefined) {
        res.statusCode = 405;
        return res.end();
      }
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) {
        headers.set(name, Array.isArray(value) ? value.join(', ') : value);
      }
      const body = Buffer.concat(chunks);
      const request = new Request(`http://${req.headers.host}${req.url}`, {
        method: req.method,
        headers,
        body: body.length ? body : undefined,
      });
      let response;
      try {
        response = await handler(request);
      } catch (err) {
        console.error('route handler threw:', err && err.message);
        res.statusCode = 500;
        return res.end();
      }
      res.statusCode = response.status;
      response.headers.forEach((value, name) => res.setHeader(name, value));
      res.end(Buffer.from(await response.arrayBuffer()));
    });
  });
  server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
    console.log(`listening on ${server.address().port}`);
  });
  return server;
}

module.exports = { serveRouteHandler };
