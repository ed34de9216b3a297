// Strata's Playground: GraphiQL talking to this server's own /query, opening with the example
// operations of internal/playground/examples.graphql.
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import 'graphiql/style.css';
import './index.css';
import { exampleTabs } from './examples.js';

// Same origin only: queries and mutations are POSTed to /query, subscriptions run over a
// WebSocket to the same /query (graphql-ws, so the graphql-transport-ws subprotocol), wss: when
// the page came over https.
const subscriptionUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/query`;
const fetcher = createGraphiQLFetcher({ url: '/query', subscriptionUrl });

createRoot(document.getElementById('playground')).render(
  <GraphiQL fetcher={fetcher} defaultTabs={exampleTabs()} />,
);
