// Runs one query twice through Apollo Client's persisted-queries link (automatic persisted
// queries) against the server at the URL given, and prints one JSON array: each run's result.
// The first run sends the hash alone, is told PersistedQueryNotFound and sends the query with
// its hash; the second sends the hash alone and is answered. With "get", hashed requests go
// over GET (useGETForHashedQueries); the link sends the full query over POST either way.
// internal/app's TestApolloPersistedQueries runs it behind a proxy that records what arrived.
//
//   node apq.mjs http://127.0.0.1:8080/query post|get
import { createHash } from 'node:crypto';
import { ApolloLink, execute, gql, toPromise } from '@apollo/client/core/index.js';
import { createHttpLink } from '@apollo/client/link/http/index.js';
import { createPersistedQueryLink } from '@apollo/client/link/persisted-queries/index.js';

const [url, method] = process.argv.slice(2);
if (!url || (method !== 'post' && method !== 'get')) {
  console.error('usage: node apq.mjs <url of the GraphQL endpoint> post|get');
  process.exit(2);
}

const sha256 = (query) => createHash('sha256').update(query).digest('hex');
const link = ApolloLink.from([
  createPersistedQueryLink({ sha256, useGETForHashedQueries: method === 'get' }),
  createHttpLink({ uri: url }),
]);

// Each method runs its own operation, so that the second run's miss is not the first run's hit.
const query = gql(`
  query StreamVersion_${method}($id: String!) {
    stream(id: $id) {
      id
      version
    }
  }
`);

const results = [];
for (let i = 0; i < 2; i++) {
  results.push(await toPromise(execute(link, { query, variables: { id: 'apq-1' } })));
}
console.log(JSON.stringify(results));
