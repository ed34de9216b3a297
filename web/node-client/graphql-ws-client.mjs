// A subscriber made with the npm graphql-ws client (the graphql-transport-ws subprotocol, as
// GraphiQL speaks it), driven by internal/app's TestNodeGraphQLWSClientReceivesEvents.
//
//   node graphql-ws-client.mjs ws://host/query N [after] [category]
//
// It subscribes to Subscription.events of category (default "nodetest") after the position
// given, prints each event received as one JSON line on stdout, and once it has N it waits a
// moment for any extra event (a duplicate would show), prints those too, and exits 0. Any
// error or an early end of the subscription exits 1 with the reason on stderr.
//
// Its packages are pinned in package-lock.json beside it (`make node-client`, which make test
// runs, installs them): graphql-ws 5, which supports Node.js 18 (Debian 12's) and later, where
// graphql-ws 6 asks for Node.js 20; and ws, because Node.js has no global WebSocket before 22.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, countArg, after = null, category = 'nodetest'] = process.argv.slice(2);
const want = Number.parseInt(countArg ?? '', 10);
if (!url || !Number.isInteger(want) || want < 1) {
  console.error('usage: node graphql-ws-client.mjs ws://host/query N [after] [category]');
  process.exit(2);
}
// How long to listen past the Nth event for events that should not come.
const graceMs = 300;

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  lazy: true,
  retryAttempts: 0, // a test: a lost connection is a failure, not something to hide
  on: {
    connected: () => console.error('graphql-ws: connected'),
    closed: (event) => console.error(`graphql-ws: closed ${event?.code ?? ''} ${event?.reason ?? ''}`.trim()),
  },
});

function fail(reason) {
  console.error(`graphql-ws client: ${reason}`);
  process.exit(1);
}

let received = 0;
client.subscribe(
  {
    query: `subscription Node($after: String, $category: String) {
      events(after: $after, category: $category) { streamId version type position }
    }`,
    variables: { after, category },
  },
  {
    next(result) {
      if (result.errors) fail(`errors: ${JSON.stringify(result.errors)}`);
      process.stdout.write(JSON.stringify(result.data.events) + '\n');
      received++;
      if (received === want) {
        setTimeout(async () => {
          await client.dispose();
          process.exit(0);
        }, graceMs);
      }
    },
    error(err) {
      if (err instanceof Error) fail(`subscription failed: ${err.message}`);
      if (Array.isArray(err)) fail(`subscription failed: ${JSON.stringify(err)}`); // GraphQL errors
      if (err?.code) fail(`connection closed: ${err.code} ${err.reason ?? ''}`.trim()); // a CloseEvent
      fail(`connection failed: ${err?.message ?? err?.error?.message ?? err}`); // an ErrorEvent
    },
    complete() {
      if (received < want) fail(`the subscription completed after ${received} of ${want} events`);
    },
  },
);
