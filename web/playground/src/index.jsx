// Strata's Playground: GraphiQL talking to this server's own /query, opening with the example
// operations of internal/playground/examples.graphql.
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import 'graphiql/style.css';
import './index.css';
import { exampleTabs } from './examples.js';

// Same origin only. Subscriptions will add a subscriptionUrl here once the server has them.
const fetcher = createGraphiQLFetcher({ url: '/query' });

createRoot(document.getElementById('playground')).render(
  <GraphiQL fetcher={fetcher} defaultTabs={exampleTabs()} />,
);
