// A graphql-sse client (distinct connections mode, the client's default retries) running one
// operation the server refuses before it runs, driven by internal/app's
// TestSSEClientGetsRefusalAsResult.
//
//   node sse-refused.mjs http://host/query 'subscription { ... }'
//
// It prints each result received as one JSON line on stdout, then "complete" when the
// operation completes, and exits 0. An error (what the client makes of a 4xx answer, after
// retrying it) exits 1 with the reason on stderr.
import { createClient } from 'graphql-sse';

const [url, query] = process.argv.slice(2);
if (!url || !query) {
  console.error("usage: node sse-refused.mjs http://host/query 'subscription { ... }'");
  process.exit(2);
}

const client = createClient({ url, singleConnection: false });
client.subscribe(
  { query },
  {
    next(result) {
      process.stdout.write(JSON.stringify(result) + '\n');
    },
    error(err) {
      console.error(`graphql-sse client: error: ${err instanceof Error ? err.message : JSON.stringify(err)}`);
      process.exit(1);
    },
    async complete() {
      process.stdout.write('complete\n');
      await client.dispose();
      process.exit(0);
    },
  },
);
