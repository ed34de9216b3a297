// Strata's Explorer: four views over the public GraphQL API, chosen by the URL's fragment so
// that each view can be linked to and the browser's back button works:
//   #/streams?prefix=…&category=…   search streams          #/stream/<id>?from=N   a stream's timeline
//   #/aggregate/<category>/<id>?v=N   an aggregate of any registered kind through its versions
//   #/live                              the live tail       #/stats   statistics
// Every list is paged: nothing reads a whole stream or the whole log.
import './index.css';
import { h, replace } from './dom.js';
import { getToken, setToken } from './api.js';
import { streamsView, streamView } from './streams.js';
import { aggregateView } from './aggregate.js';
import { liveView } from './live.js';
import { statsView } from './stats.js';

const views = [
  { path: 'streams', label: 'Streams' },
  { path: 'aggregate', label: 'Aggregate' },
  { path: 'live', label: 'Live tail' },
  { path: 'stats', label: 'Statistics' },
];

const main = h('main', { id: 'view', tabindex: '-1' });
const nav = h('nav', { 'aria-label': 'Views' },
  h('ul', {}, views.map((v) => h('li', {}, h('a', { href: `#/${v.path}`, 'data-view': v.path }, v.label)))));

function tokenForm() {
  const input = h('input', {
    id: 'token', type: 'password', autocomplete: 'off', placeholder: 'bearer token (when the server asks for one)',
    'aria-label': 'Bearer token', value: getToken(),
  });
  const state = h('span', { class: 'muted', id: 'token-state', 'aria-live': 'polite' }, getToken() ? 'token set' : '');
  return h('form', {
    class: 'token',
    onsubmit: (e) => {
      e.preventDefault();
      setToken(input.value.trim());
      state.textContent = input.value.trim() ? 'token set for this tab' : 'no token';
      route();
    },
  }, input, h('button', { type: 'submit' }, 'Use token'), state);
}

document.body.append(
  h('header', {}, h('h1', {}, h('a', { href: '#/streams' }, 'Strata Explorer')), nav, tokenForm()),
  main,
);

// The view in place: its stop function runs before the next view comes (the live tail closes
// its WebSocket, statistics stop refreshing).
let stop = null;

function parse() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, search = ''] = raw.split('?');
  const parts = path.split('/').map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  return { parts, params: new URLSearchParams(search) };
}

function route() {
  if (stop) stop();
  stop = null;
  const { parts, params } = parse();
  const name = parts[0] || 'streams';
  for (const a of nav.querySelectorAll('a')) {
    const current = a.dataset.view === name || (name === 'stream' && a.dataset.view === 'streams');
    if (current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const view = views.find((v) => v.path === (name === 'stream' ? 'streams' : name)) || views[0];
  document.title = `${view.label} · Strata Explorer`;
  replace(main);
  switch (name) {
    case 'stream':
      stop = streamView(main, parts.slice(1).join('/'), params);
      break;
    case 'aggregate':
      stop = aggregateView(main, parts[1] || '', parts.slice(2).join('/'), params);
      break;
    case 'live':
      stop = liveView(main, params);
      break;
    case 'stats':
      stop = statsView(main, params);
      break;
    default:
      stop = streamsView(main, params);
  }
}

window.addEventListener('hashchange', route);
route();
