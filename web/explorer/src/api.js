// The Explorer's only way to the server: GraphQL over POST to /query, and subscriptions over a
// WebSocket to the same /query with the graphql-transport-ws protocol. A bearer token, when the
// user gave one, goes in the Authorization header and in connection_init.

const tokenKey = 'strata.explorer.token';

export function getToken() {
  return sessionStorage.getItem(tokenKey) || '';
}

export function setToken(token) {
  if (token) sessionStorage.setItem(tokenKey, token);
  else sessionStorage.removeItem(tokenKey);
}

function authorization() {
  const token = getToken();
  return token ? `Bearer ${token}` : '';
}

// GraphQLError carries the first error of an answer, with its extensions.code.
export class GraphQLError extends Error {
  constructor(message, code, extensions = {}) {
    super(code ? `${message} (${code})` : message);
    this.code = code;
    this.extensions = extensions;
  }
}

// query runs one operation and returns its data, or throws the first error.
export async function query(document, variables = {}) {
  const headers = { 'Content-Type': 'application/json' };
  const auth = authorization();
  if (auth) headers.Authorization = auth;
  const response = await fetch('/query', {
    method: 'POST',
    headers,
    body: JSON.stringify({ query: document, variables }),
  });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new GraphQLError(`the server answered ${response.status} without JSON`);
  }
  if (body.errors && body.errors.length > 0) {
    const e = body.errors[0];
    throw new GraphQLError(e.message, e.extensions && e.extensions.code, e.extensions);
  }
  return body.data;
}

// aggregateKinds lists the registered aggregates ({ name, category }, in the registry's order),
// asked once per page load: the registry is fixed while the server runs. A failed answer (no
// token yet, say) is not kept, so the next view asks again.
let kinds = null;
export function aggregateKinds() {
  if (!kinds) {
    kinds = query('query ExplorerAggregateKinds { aggregateKinds { name category } }').then((data) => data.aggregateKinds);
    kinds.catch(() => { kinds = null; });
  }
  return kinds;
}

// subscribe runs a subscription on its own WebSocket. onNext gets each result's data; onError
// an Error when the server refuses or the connection drops; onComplete when the server ends it.
// It returns a function that ends the subscription and closes the socket.
export function subscribe(document, variables, { onNext, onError, onComplete, onOpen }) {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const socket = new WebSocket(`${scheme}://${location.host}/query`, 'graphql-transport-ws');
  let closedByUs = false;
  let finished = false;
  const finish = (fn, arg) => {
    if (finished) return;
    finished = true;
    if (fn) fn(arg);
  };
  socket.onopen = () => {
    const auth = authorization();
    socket.send(JSON.stringify({ type: 'connection_init', payload: auth ? { Authorization: auth } : {} }));
  };
  socket.onmessage = (message) => {
    // Once ended, nothing more is delivered: a resumed tail gets what came after the last
    // event delivered here from its own subscription.
    if (closedByUs) return;
    let msg;
    try {
      msg = JSON.parse(message.data);
    } catch {
      return;
    }
    switch (msg.type) {
      case 'connection_ack':
        socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: document, variables } }));
        if (onOpen) onOpen();
        break;
      case 'ping':
        socket.send(JSON.stringify({ type: 'pong' }));
        break;
      case 'next':
        if (msg.payload.errors && msg.payload.errors.length > 0) {
          const e = msg.payload.errors[0];
          finish(onError, new GraphQLError(e.message, e.extensions && e.extensions.code));
          socket.close(1000);
          return;
        }
        onNext(msg.payload.data);
        break;
      case 'error': {
        const e = (msg.payload && msg.payload[0]) || { message: 'the subscription was refused' };
        finish(onError, new GraphQLError(e.message, e.extensions && e.extensions.code));
        socket.close(1000);
        break;
      }
      case 'complete':
        finish(onComplete);
        socket.close(1000);
        break;
      default:
    }
  };
  socket.onclose = (event) => {
    if (closedByUs) return;
    const text = `the connection closed (${event.code}${event.reason ? ': ' + event.reason : ''})`;
    // 4400–4499 are the server's refusals (4401: no valid token, 4429: too many connections):
    // reconnecting as is would be refused again. Other closes are worth a retry.
    const refused = event.code >= 4400 && event.code < 4500;
    finish(onError, refused ? new GraphQLError(text, `CLOSE_${event.code}`) : new Error(text));
  };
  return () => {
    closedByUs = true;
    finished = true;
    if (socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ id: '1', type: 'complete' }));
      socket.close(1000);
    } else if (socket.readyState === WebSocket.CONNECTING) {
      socket.onopen = () => socket.close(1000);
    }
  };
}
