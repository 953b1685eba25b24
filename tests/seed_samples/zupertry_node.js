// Zupertry's Node.js samples (seed 003_c3a77671eb28c177.txt), runnable: the "Signature
// verification" handler with the "Idempotency" section's duplicate check where that section
// puts it ("// ... signature verification ..."). The document's code is kept as written; only
// these lines are added: `express` and `app` come from _mini_express.js (Express 4 emulated on
// node:http), the document's $ZUPERTRY_WEBHOOK_SECRET is read as written, and the app listens.
'use strict';
const { express, serve } = require('./_mini_express.js');
const app = express();

// ---- the document's code ----------------------------------------------------------------
const crypto = require('crypto');
function verifySignature(rawBody, signatureHeader, secret) {
const expected = crypto
.createHmac('sha256', secret)
.update(rawBody) // must be the raw Buffer, not parsed JSON
.digest('hex');
return crypto.timingSafeEqual(
Buffer.from(signatureHeader, 'hex'),
Buffer.from(expected, 'hex')
);
}
// Express example
app.use('/webhooks/zupertry', express.raw({ type: 'application/json' }));
const processedJobs = new Set(); // use Redis or database in production
app.post('/webhooks/zupertry', (req, res) => {
const valid = verifySignature(
req.body,
req.headers['x-zupertry-signature'],
process.env.ZUPERTRY_WEBHOOK_SECRET
);
if (!valid) return res.status(401).json({ error: 'Invalid signature' });
const event = JSON.parse(req.body.toString());
// handle event...
const jobId = event.data.job_id;
if (processedJobs.has(jobId)) {
return res.json({ received: true, duplicate: true }); // already handled
}
processedJobs.add(jobId);
// process the event...
res.json({ received: true });
});
// ---- end of the document's code ---------------------------------------------------------

serve(app);
