// Zaits' Node.js sample (seed 002_e138d80be09ef19b.txt, "Verifying Webhook Signatures"),
// runnable. The document's code is kept as written; only these lines are added or changed:
// `express` and `app` come from _mini_express.js (Express 4 emulated on node:http), the secret
// comes from $WEBHOOK_SECRET (the document hard-codes "whsec_1234567890abcdef"), the handler
// the document leaves undefined is a no-op, and the app listens.
'use strict';
const { express, serve } = require('./_mini_express.js');
const app = express();

function handleDocumentSigned(data) {} // not defined in the document

// ---- the document's code ----------------------------------------------------------------
const crypto = require("crypto");

function verifyWebhookSignature(payload, signature, secret) {
  const expectedSignature = crypto
    .createHmac("sha256", secret)
    .update(payload)
    .digest("hex");

  return `sha256=${expectedSignature}` === signature;
}

// Express.js example
app.post(
  "/webhooks/zaits",
  express.raw({ type: "application/json" }),
  (req, res) => {
    const signature = req.headers["x-zaits-signature"];
    const secret = process.env.WEBHOOK_SECRET; // the document: "whsec_1234567890abcdef"; // Your webhook secret

    if (!verifyWebhookSignature(req.body, signature, secret)) {
      return res.status(401).send("Invalid signature");
    }

    const event = JSON.parse(req.body);

    // Process the event
    switch (event.type) {
      case "document.signed":
        handleDocumentSigned(event.data);
        break;
      // ... handle other events
    }

    res.status(200).send("OK");
  }
);
// ---- end of the document's code ---------------------------------------------------------

serve(app);
