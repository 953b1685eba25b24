// Ztrace's TypeScript route handler (seed 000_61cfd00050e481e7.txt, "webhook-handler.ts",
// lines 21-56) as plain JavaScript, runnable: the type annotations and the `!` are dropped,
// `import { createHmac } from 'crypto'` becomes require(), the four handlers the document
// leaves undefined are no-ops, and _mini_next.js serves POST the way Next.js does. The
// secret is the document's $WEBHOOK_SECRET.
'use strict';
const { serveRouteHandler } = require('./_mini_next.js');

async function handleAnalysisComplete(data) {} // not defined in the document
async function handleAnalysisError(data) {} // not defined in the document
async function handleBatchComplete(data) {} // not defined in the document
async function sendQuotaAlert(data) {} // not defined in the document

// ---- the document's code ----------------------------------------------------------------
// Webhook handler implementation
const { createHmac } = require('crypto');

async function POST(req) {
  const body = await req.text();
  const signature = req.headers.get('X-Ztrace-Signature');
  const timestamp = req.headers.get('X-Ztrace-Timestamp');

  // Verify webhook signature
  const expectedSig = createHmac('sha256', process.env.WEBHOOK_SECRET)
    .update(`${timestamp}.${body}`)
    .digest('hex');

  if (signature !== `sha256=${expectedSig}`) {
    return new Response('Invalid signature', { status: 401 });
  }

  const { event, data, timestamp: eventTime } = JSON.parse(body);

  switch(event) {
    case 'analysis.completed':
      await handleAnalysisComplete(data);
      break;
    case 'analysis.failed':
      await handleAnalysisError(data);
      break;
    case 'batch.completed':
      await handleBatchComplete(data);
      break;
    case 'quota.warning':
      await sendQuotaAlert(data);
      break;
  }

  return new Response('OK', { status: 200 });
}
// ---- end of the document's code ---------------------------------------------------------

serveRouteHandler('/api/webhooks/ztrace', { POST });
