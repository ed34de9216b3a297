// Strata's Playground: GraphiQL talking to this server's own /query, opening with the example
// operations of internal/transport/playground/examples.graphql, and with one more tab, shown first, when
// the URL carries ?query=…&variables=… (the Explorer's "Open in Playground" links do).
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

// GraphiQL opens defaultTabs on a first visit; later it restores the tabs it saved, and then
// the query and variables props select the tab holding them, or add one.
const params = new URLSearchParams(location.search);
const linked = params.get('query');
const props = { defaultTabs: exampleTabs() };
if (linked) {
  const variables = params.get('variables') || undefined;
  props.defaultTabs.unshift({ query: linked, variables });
  props.query = linked;
  props.variables = variables;
}

createRoot(document.getElementById('playground')).render(
  <GraphiQL fetcher={fetcher} {...props} />,
);
