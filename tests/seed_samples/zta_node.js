// Zero Trust Analytics' Node.js sample (seed 001_696827f4ccd808d2.txt, "Verification Code"),
// runnable. The document's code is kept as written; only these lines are added or changed:
// `express` and `app` come from _mini_express.js (Express 4 emulated on node:http), the secret
// comes from $WEBHOOK_SECRET (the document hard-codes 'whsec_xyz789'), and the app listens.
'use strict';
const { express, serve } = require('./_mini_express.js');
const app = express();

// ---- the document's code ----------------------------------------------------------------
const crypto = require('crypto');

function verifyWebhook(payload, signature, secret) {
  const expectedSignature = 'sha256=' +
    crypto
      .createHmac('sha256', secret)
      .update(JSON.stringify(payload))
      .digest('hex');

  return crypto.timingSafeEqual(
    Buffer.from(signature),
    Buffer.from(expectedSignature)
  );
}

// Express.js example
app.post('/webhook', express.json(), (req, res) => {
  const signature = req.headers['x-zta-signature'];
  const secret = process.env.WEBHOOK_SECRET; // the document: 'whsec_xyz789'; // Your webhook secret

  if (!verifyWebhook(req.body, signature, secret)) {
    return res.status(401).send('Invalid signature');
  }

  // Process the webhook
  console.log('Event:', req.body.event);
  res.status(200).send('OK');
});
// ---- end of the document's code ---------------------------------------------------------

serve(app);
