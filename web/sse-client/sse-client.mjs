// A subscriber made with the npm graphql-sse client in distinct connections mode (one HTTP
// request per operation, Accept: text/event-stream), driven by internal/app's
// TestSSEClientCatchesUpGoesLiveAndResumes.
//
//   STRATA_TOKEN=... node sse-client.mjs http://host/query after category dropAfter
//
// It subscribes to Subscription.events of category after the position given and prints each
// event received as one JSON line on stdout. Once it has dropAfter events it drops the
// subscription (the request is aborted), prints {"resubscribe": position} with the position of
// the last event it took, and subscribes again with after set to it. When an event of type Stop
// arrives it waits a moment for any extra event (a duplicate would show), prints those too,
// and exits 0. Any error, or an end of the subscription it did not ask for, exits 1 with the
// reason on stderr. The token, when set, goes in the Authorization header.
//
// Its packages are pinned in package-lock.json beside it: graphql-sse 2 runs on Node.js 12 and
// later, with the fetch Node.js has had since 18.
import { createClient } from 'graphql-sse';

const [url, firstAfter, category, dropAfterArg] = process.argv.slice(2);
const dropAfter = Number.parseInt(dropAfterArg ?? '', 10);
if (!url || !firstAfter || !category || !Number.isInteger(dropAfter) || dropAfter < 1) {
  console.error('usage: node sse-client.mjs http://host/query after category dropAfter');
  process.exit(2);
}
// How long to listen past the Stop event for events that should not come.
const graceMs = 300;
const token = process.env.STRATA_TOKEN;

const client = createClient({
  url,
  singleConnection: false, // distinct connections mode
  headers: token ? { Authorization: `Bearer ${token}` } : {},
  retryAttempts: 0, // a test: a lost stream is a failure, not something to hide
});

function fail(reason) {
  console.error(`graphql-sse client: ${reason}`);
  process.exit(1);
}

let received = 0;
let last = firstAfter;
let stopping = false;

function subscribe(after) {
  let dropped = false;
  const unsubscribe = client.subscribe(
    {
      query: `subscription SSE($after: String, $category: String) {
        events(after: $after, category: $category) { streamId version type position }
      }`,
      variables: { after, category },
    },
    {
      next(result) {
        if (dropped) return; // delivered after the drop: the next subscription brings it again
        if (result.errors) fail(`errors: ${JSON.stringify(result.errors)}`);
        const event = result.data.events;
        process.stdout.write(JSON.stringify(event) + '\n');
        received++;
        last = event.position;
        if (received === dropAfter) {
          dropped = true;
          unsubscribe();
          process.stdout.write(JSON.stringify({ resubscribe: last }) + '\n');
          subscribe(last);
          return;
        }
        if (event.type === 'Stop' && !stopping) {
          stopping = true;
          setTimeout(async () => {
            await client.dispose();
            process.exit(0);
          }, graceMs);
        }
      },
      error(err) {
        if (dropped || stopping) return;
        if (err instanceof Error) fail(`subscription failed: ${err.message}`);
        fail(`subscription failed: ${JSON.stringify(err)}`);
      },
      complete() {
        if (!dropped && !stopping) fail(`the subscription completed after ${received} events`);
      },
    },
  );
}

subscribe(firstAfter);
