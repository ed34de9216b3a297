// Streams: search by id prefix or category (the streams query, keyset-paged), and one stream's
// events as a timeline, a page at a time (stream.events with fromVersion or backward). A stream
// of a registered aggregate (aggregateKinds) links to the aggregate view.
import { h, replace, json, time, tagList } from './dom.js';
import { query, aggregateKinds } from './api.js';

const pageSize = 50;

const streamsQuery = `query ExplorerStreams($prefix: String, $category: String, $first: Int, $after: String) {
  streams(prefix: $prefix, category: $category, first: $first, after: $after) {
    edges { node { id version deleted firstVersion } }
    pageInfo { hasNextPage endCursor }
  }
}`;

const streamQuery = `query ExplorerStream($id: String!, $from: Int!, $first: Int!) {
  stream(id: $id) {
    id version firstVersion deleted
    events(fromVersion: $from, first: $first) {
      edges { node { version type recordedAt position tags data metadata } }
    }
  }
}`;

// The last page: backward without fromVersion starts at the stream's last event.
const streamLastQuery = `query ExplorerStreamLast($id: String!, $first: Int!) {
  stream(id: $id) {
    id version firstVersion deleted
    events(first: $first, backward: true) {
      edges { node { version type recordedAt position tags data metadata } }
    }
  }
}`;

// aggregateOf says which registered aggregate a stream is of, if any: <category>-<id>, its
// category being the part before the first '-', as the store has it.
export function aggregateOf(streamId, kinds) {
  const i = streamId.indexOf('-');
  if (i <= 0 || i === streamId.length - 1) return null;
  const kind = streamId.slice(0, i);
  return kinds.some((k) => k.category === kind) ? { kind, id: streamId.slice(i + 1) } : null;
}

// knownKinds are the registered aggregates, or none when the server does not say: the streams
// still show, without links to the aggregate view.
function knownKinds() {
  return aggregateKinds().catch(() => []);
}

// withKinds is an answer with the registered aggregates. A failed answer is thrown once the
// other request has ended too, so that nothing the view asked for is still loading behind it.
async function withKinds(answer) {
  const kinds = knownKinds();
  try {
    return [await answer, await kinds];
  } catch (err) {
    await kinds;
    throw err;
  }
}

function aggregateHref(agg) {
  return `#/aggregate/${encodeURIComponent(agg.kind)}/${encodeURIComponent(agg.id)}`;
}

function errorBox(err) {
  return h('p', { class: 'error', role: 'alert' }, String(err.message || err));
}

export function streamsView(main, params) {
  const prefix = h('input', { id: 'stream-prefix', name: 'prefix', value: params.get('prefix') || '', placeholder: 'order-', autocomplete: 'off' });
  const category = h('input', { id: 'stream-category', name: 'category', value: params.get('category') || '', placeholder: 'order', autocomplete: 'off' });
  const results = h('div', { id: 'stream-results', 'aria-live': 'polite' });
  const form = h('form', {
    class: 'search',
    role: 'search',
    onsubmit: (e) => {
      e.preventDefault();
      const p = new URLSearchParams();
      if (prefix.value.trim()) p.set('prefix', prefix.value.trim());
      if (category.value.trim()) p.set('category', category.value.trim());
      const target = `#/streams?${p}`;
      if (location.hash === target) load();
      else location.hash = target;
    },
  },
  h('label', { for: 'stream-prefix' }, 'Id starts with'), prefix,
  h('label', { for: 'stream-category' }, 'Category'), category,
  h('button', { type: 'submit', id: 'stream-search' }, 'Search'));
  replace(main, h('h2', {}, 'Streams'), form, results);

  // pages holds the after cursor of each page shown so far, for Previous.
  const pages = [null];
  let alive = true;
  async function load() {
    replace(results, h('p', { class: 'muted' }, 'Loading…'));
    const vars = { first: pageSize, after: pages[pages.length - 1] };
    if (params.get('prefix')) vars.prefix = params.get('prefix');
    if (params.get('category')) vars.category = params.get('category');
    try {
      const [data, kinds] = await withKinds(query(streamsQuery, vars));
      if (!alive) return;
      const { edges, pageInfo } = data.streams;
      const rows = edges.map(({ node }) => {
        const agg = aggregateOf(node.id, kinds);
        return h('tr', {},
          h('td', {}, h('a', { class: 'stream-link', href: `#/stream/${encodeURIComponent(node.id)}` }, node.id)),
          h('td', { class: 'num' }, node.version),
          h('td', {}, node.deleted ? h('span', { class: 'badge bad' }, 'deleted') : ''),
          h('td', {}, agg ? h('a', { class: 'aggregate-link', href: aggregateHref(agg) }, `as ${agg.kind}`) : ''));
      });
      replace(results,
        edges.length === 0
          ? h('p', {}, 'No stream matches.')
          : h('table', {}, h('caption', {}, `Streams, page ${pages.length}`),
            h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Stream'), h('th', { scope: 'col', class: 'num' }, 'Version'), h('th', { scope: 'col' }, 'State'), h('th', { scope: 'col' }, 'Aggregate'))),
            h('tbody', {}, rows)),
        h('div', { class: 'pager' },
          h('button', { type: 'button', disabled: pages.length === 1, onclick: () => { pages.pop(); load(); } }, '← Previous page'),
          h('button', { type: 'button', id: 'streams-next', disabled: !pageInfo.hasNextPage, onclick: () => { pages.push(pageInfo.endCursor); load(); } }, 'Next page →')));
    } catch (err) {
      if (alive) replace(results, errorBox(err));
    }
  }
  load();
  return () => { alive = false; };
}

export function streamView(main, id, params) {
  const aggLink = h('div', { id: 'stream-aggregate' }); // once the registered aggregates are known
  const body = h('div', { id: 'stream-view', 'aria-live': 'polite' });
  const jump = h('input', { id: 'jump-version', type: 'number', min: '1', inputmode: 'numeric', 'aria-label': 'Version to start from' });
  replace(main,
    h('p', {}, h('a', { href: '#/streams' }, '← Streams')),
    h('h2', {}, 'Stream ', h('code', {}, id)),
    aggLink,
    h('form', {
      class: 'search',
      onsubmit: (e) => {
        e.preventDefault();
        if (jump.value) go({ from: Number(jump.value) });
      },
    }, h('label', { for: 'jump-version' }, 'From version'), jump, h('button', { type: 'submit' }, 'Go')),
    body);

  let alive = true;
  const go = (p) => {
    const q = new URLSearchParams();
    if (p.last) q.set('last', '1');
    else q.set('from', String(p.from));
    location.hash = `#/stream/${encodeURIComponent(id)}?${q}`;
  };
  async function load() {
    replace(body, h('p', { class: 'muted' }, 'Loading…'));
    const last = params.get('last') === '1';
    try {
      const [{ stream }, kinds] = await withKinds(last
        ? query(streamLastQuery, { id, first: pageSize })
        : query(streamQuery, { id, from: Math.max(1, Number(params.get('from')) || 1), first: pageSize }));
      if (!alive) return;
      const agg = aggregateOf(id, kinds);
      replace(aggLink, agg ? h('p', {}, h('a', { id: 'open-aggregate', href: aggregateHref(agg) }, `Open ${agg.kind} ${agg.id} through its versions →`)) : null);
      if (!stream) {
        replace(body, h('p', {}, 'This stream has no events.'));
        return;
      }
      let events = stream.events.edges.map((e) => e.node);
      if (last) events = events.reverse();
      const first = events.length ? events[0].version : stream.firstVersion;
      const lastShown = events.length ? events[events.length - 1].version : stream.firstVersion - 1;
      const pager = () => h('div', { class: 'pager' },
        h('button', { type: 'button', disabled: first <= stream.firstVersion, onclick: () => go({ from: stream.firstVersion }) }, '⇤ First'),
        h('button', { type: 'button', disabled: first <= stream.firstVersion, onclick: () => go({ from: Math.max(stream.firstVersion, first - pageSize) }) }, '← Earlier'),
        h('span', { class: 'muted' }, events.length ? `versions ${first}–${lastShown} of ${stream.version}` : 'no events here'),
        h('button', { type: 'button', id: 'timeline-later', disabled: lastShown >= stream.version, onclick: () => go({ from: lastShown + 1 }) }, 'Later →'),
        h('button', { type: 'button', disabled: lastShown >= stream.version, onclick: () => go({ last: true }) }, 'Last ⇥'));
      replace(body,
        h('p', {}, `Version ${stream.version}`, stream.deleted ? h('span', { class: 'badge bad' }, 'deleted') : '',
          stream.firstVersion > 1 ? h('span', { class: 'muted' }, ` (versions before ${stream.firstVersion} are hidden by its lifecycle settings)`) : ''),
        pager(),
        h('ol', { class: 'timeline', id: 'timeline' }, events.map((e) => h('li', { 'data-version': e.version },
          h('div', { class: 'event-head' },
            h('span', { class: 'version' }, `v${e.version}`),
            h('strong', { class: 'type' }, e.type),
            h('time', { datetime: e.recordedAt }, time(e.recordedAt)),
            h('span', { class: 'muted' }, `position ${e.position}`),
            tagList(e.tags)),
          h('details', {}, h('summary', {}, 'data and metadata'),
            h('pre', {}, json(e.data)), h('pre', { class: 'muted' }, json(e.metadata)))))),
        pager());
    } catch (err) {
      if (!alive) return;
      // Its lifecycle settings hide the versions asked for: start at the first one kept.
      if (err.code === 'STREAM_TRUNCATED' && err.extensions.firstVersion && !last) {
        go({ from: err.extensions.firstVersion });
        return;
      }
      replace(body, errorBox(err));
    }
  }
  load();
  return () => { alive = false; };
}
