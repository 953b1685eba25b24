// Just enough of Express 4 (and its body-parser) for the seed documents' Node samples, on
// node:http with no npm packages, so each sample's own code runs unchanged.
//
// Emulated as Express 4.x / body-parser 1.x behave:
//   express.json():  parses only a matching Content-Type (default application/json), else
//                    req.body = {}; default limit 100kb (413 above it, by Content-Length
//                    before reading or while reading); strict: the body must start with { or [
//                    (else 400); an empty body is {}; a JSON.parse error is 400.
//   express.raw():   req.body is a Buffer for a matching Content-Type, else {}; limit 100kb.
//   res.status(), res.send(string | object | Buffer), res.json(), res.sendStatus().
//   A handler that throws, or a body-parser error: the default error handler answers
//   err.status (400, 413) or 500 with a small HTML page, as finalhandler does.
'use strict';

const http = require('node:http');

const DEFAULT_LIMIT = 100 * 1024; // body-parser's default '100kb'

function typeMatches(req, type) {
  const header = (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
  return header === type;
}

function httpError(status, message) {
  const err = new Error(message);
  err.status = status;
  return err;
}

function readBody(req, limit, callback) {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return callback(httpError(413, 'request entity too large'));
  }
  const chunks = [];
  let size = 0;
  let failed = false;
  req.on('data', (chunk) => {
    if (failed) return;
    size += chunk.length;
    if (size > limit) {
      failed = true;
      return callback(httpError(413, 'request entity too large'));
    }
    chunks.push(chunk);
  });
  req.on('end', () => {
    if (!failed) callback(null, Buffer.concat(chunks));
  });
}

function bodyParser(convert, options = {}) {
  const type = options.type || 'application/json';
  const limit = options.limit || DEFAULT_LIMIT;
  return (req, res, next) => {
    req.body = req.body || {};
    if (!typeMatches(req, type)) return next();
    readBody(req, limit, (err, buffer) => {
      if (err) return next(err);
      try {
        req.body = convert(buffer);
      } catch (parseError) {
        return next(httpError(400, parseError.message));
      }
      next();
    });
  };
}

function json(options) {
  return bodyParser((buffer) => {
    const text = buffer.toString('utf8');
    if (text.length === 0) return {};
    const first = text.trimStart()[0];
    if (first !== '{' && first !== '[') throw new SyntaxError('Unexpected token (strict mode)');
    return JSON.parse(text);
  }, options);
}

function raw(options) {
  return bodyParser((buffer) => buffer, options);
}

function decorate(res) {
  res.status = (code) => {
    res.statusCode = code;
    return res;
  };
  res.send = (body) => {
    if (body === undefined) body = '';
    if (Buffer.isBuffer(body)) {
      if (!res.getHeader('content-type')) res.setHeader('content-type', 'application/octet-stream');
    } else if (typeof body === 'object') {
      return res.json(body);
    } else {
      body = String(body);
      if (!res.getHeader('content-type')) res.setHeader('content-type', 'text/html; charset=utf-8');
    }
    res.setHeader('content-length', Buffer.byteLength(body));
    res.end(body);
    return res;
  };
  res.json = (value) => {
    res.setHeader('content-type', 'application/json; charset=utf-8');
    return res.send(JSON.stringify(value));
  };
  res.sendStatus = (code) => res.status(code).send(http.STATUS_CODES[code] || String(code));
  return res;
}

function fail(res, err) {
  const status = err && err.status >= 400 && err.status < 600 ? err.status : 500;
  if (res.headersSent) return res.end();
  const text = http.STATUS_CODES[status];
  res.statusCode = status;
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.end(`<!DOCTYPE html>\n<html><body><pre>${text}</pre></body></html>\n`);
}

function express() {
  const layers = []; // {method: 'POST' | null, path, handlers}

  function handle(req, res) {
    decorate(res);
    const path = req.url.split('?')[0];
    const chain = [];
    for (const layer of layers) {
      if (layer.path !== path) continue;
      if (layer.method !== null && layer.method !== req.method) continue;
      chain.push(...layer.handlers);
    }
    let index = 0;
    const next = (err) => {
      if (err) return fail(res, err);
      const handler = chain[index++];
      if (handler === undefined) {
        res.statusCode = 404;
        return res.end(`Cannot ${req.method} ${path}`);
      }
      try {
        handler(req, res, next);
      } catch (thrown) {
        fail(res, thrown);
      }
    };
    next();
  }

  const app = (req, res) => handle(req, res);
  app.use = (path, ...handlers) => layers.push({ method: null, path, handlers });
  app.post = (path, ...handlers) => layers.push({ method: 'POST', path, handlers });
  app.listen = (port, callback) => http.createServer(app).listen(port, '127.0.0.1', callback);
  return app;
}

express.json = json;
express.raw = raw;

// Start ``app`` on $PORT (0: any free port) and print "listening on <port>" for the runner.
function serve(app) {
  const server = app.listen(Number(process.env.PORT || 0), () => {
    console.log(`listening on ${server.address().port}`);
  });
  return server;
}

module.exports = { express, serve };
