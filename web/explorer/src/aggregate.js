// An aggregate (an order or a user) through its versions: a slider from the first version to
// the last; at each, the state right after that version's event (order/user with atVersion)
// and what the event changed (its entry in history). Each position reads one history entry,
// so a long stream costs the same as a short one on the page. "Open in Playground" carries
// the very query the view ran.
import { h, replace, json, time } from './dom.js';
import { query } from './api.js';

const kinds = {
  order: {
    rows: (s) => [
      ['status', s.status], ['total', s.total], ['items', s.items.map((i) => `${i.quantity} × ${i.sku} at ${i.unitPrice}`).join(', ')],
      ['carrier', s.carrier], ['trackingNumber', s.trackingNumber], ['cancelReason', s.cancelReason],
    ],
    // The view's query: the aggregate at a version, and that version's history entry
    // (history's cursor is a version, so after: v-1 is the entry of version v).
    at: `query ExplorerOrderAtVersion($id: ID!, $version: Int!, $after: String!) {
  order(id: $id, atVersion: $version) {
    id status total version carrier trackingNumber cancelReason items { sku quantity unitPrice }
    history(first: 1, after: $after) {
      edges { node { event { version type recordedAt position metadata data } changes { field before after } } }
    }
  }
}`,
    asOf: `query ExplorerOrderAsOf($id: ID!, $asOf: Time!) { order(id: $id, asOf: $asOf) { version } }`,
  },
  user: {
    rows: (s) => [['name', s.name], ['email', s.email], ['status', s.status]],
    at: `query ExplorerUserAtVersion($id: ID!, $version: Int!, $after: String!) {
  user(id: $id, atVersion: $version) {
    id name email status version
    history(first: 1, after: $after) {
      edges { node { event { version type recordedAt position metadata data } changes { field before after } } }
    }
  }
}`,
    asOf: `query ExplorerUserAsOf($id: ID!, $asOf: Time!) { user(id: $id, asOf: $asOf) { version } }`,
  },
};

const versionsQuery = `query ExplorerVersions($stream: String!) { stream(id: $stream) { version firstVersion deleted } }`;

function show(value) {
  if (value === null || value === undefined) return '—';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

export function aggregateView(main, kind, id, params) {
  if (!kinds[kind]) kind = 'order';
  const kindSelect = h('select', { id: 'agg-kind', 'aria-label': 'Aggregate kind' },
    ['order', 'user'].map((k) => h('option', { value: k, selected: k === kind }, k)));
  const idInput = h('input', { id: 'agg-id', value: id, placeholder: 'the order or user id', autocomplete: 'off', 'aria-label': 'Aggregate id' });
  const body = h('div', { id: 'agg-body' });
  replace(main,
    h('h2', {}, 'Aggregate through time'),
    h('form', {
      class: 'search',
      onsubmit: (e) => {
        e.preventDefault();
        if (idInput.value.trim()) location.hash = `#/aggregate/${kindSelect.value}/${encodeURIComponent(idInput.value.trim())}`;
      },
    }, kindSelect, idInput, h('button', { type: 'submit' }, 'Open')),
    body);
  if (!id) {
    replace(body, h('p', { class: 'muted' }, 'Give an order or user id, or open one from the streams list.'));
    return () => {};
  }

  let alive = true;
  let seq = 0; // answers to older slider positions are dropped
  let timer = null;
  const slider = h('input', { id: 'version-slider', type: 'range', step: '1', 'aria-label': 'Version' });
  const label = h('output', { id: 'version-label', for: 'version-slider' });
  const state = h('div', { id: 'agg-state', 'aria-live': 'polite' });
  const link = h('a', { id: 'open-playground', href: '/', target: '_blank', rel: 'noopener' }, 'Open this view in the Playground ↗');
  const asOf = h('input', { id: 'agg-asof', type: 'datetime-local', step: '0.001', 'aria-label': 'As of (UTC)' });
  const asOfNote = h('span', { class: 'muted', 'aria-live': 'polite' });

  async function at(version) {
    const mine = ++seq;
    slider.value = String(version);
    label.textContent = `version ${version} of ${slider.max}`;
    const vars = { id, version, after: String(version - 1) };
    const doc = kinds[kind].at;
    link.href = `/?${new URLSearchParams({ query: doc, variables: JSON.stringify(vars, null, 2) })}`;
    history.replaceState(null, '', `#/aggregate/${kind}/${encodeURIComponent(id)}?v=${version}`);
    try {
      const data = await query(doc, vars);
      if (!alive || mine !== seq) return;
      const s = data[kind];
      if (!s) {
        replace(state, h('p', {}, `No ${kind} ${id} at version ${version}.`));
        return;
      }
      const entry = s.history.edges.length ? s.history.edges[0].node : null;
      const changed = new Map((entry ? entry.changes : []).map((c) => [c.field, c]));
      replace(state,
        entry ? h('p', { class: 'event-head' },
          h('span', { class: 'version' }, `v${entry.event.version}`),
          h('strong', { id: 'agg-event-type' }, entry.event.type),
          h('time', { datetime: entry.event.recordedAt }, time(entry.event.recordedAt)),
          h('span', { class: 'muted' }, `position ${entry.event.position}`)) : null,
        h('div', { class: 'columns' },
          h('section', { 'aria-labelledby': 'state-h' },
            h('h3', { id: 'state-h' }, 'State after this event'),
            h('table', { class: 'state' }, h('tbody', {}, kinds[kind].rows(s).map(([field, value]) => h('tr', { class: changed.has(field) ? 'changed' : '' },
              h('th', { scope: 'row' }, field),
              h('td', { 'data-field': field }, show(value))))))),
          h('section', { 'aria-labelledby': 'changes-h' },
            h('h3', { id: 'changes-h' }, 'What the event changed'),
            entry && entry.changes.length
              ? h('table', { class: 'diff', id: 'agg-changes' },
                h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Field'), h('th', { scope: 'col' }, 'Before'), h('th', { scope: 'col' }, 'After'))),
                h('tbody', {}, entry.changes.map((c) => h('tr', {},
                  h('th', { scope: 'row' }, c.field),
                  h('td', { class: 'before' }, h('del', {}, show(c.before))),
                  h('td', { class: 'after' }, h('ins', {}, show(c.after)))))))
              : h('p', { class: 'muted' }, 'Nothing the state shows.'),
            entry ? h('details', {}, h('summary', {}, 'the event'), h('pre', {}, json({ data: entry.event.data, metadata: entry.event.metadata }))) : null)));
    } catch (err) {
      if (alive && mine === seq) replace(state, h('p', { class: 'error', role: 'alert' }, err.message));
    }
  }

  async function load() {
    replace(body, h('p', { class: 'muted' }, 'Loading…'));
    try {
      const { stream } = await query(versionsQuery, { stream: `${kind}-${id}` });
      if (!alive) return;
      if (!stream) {
        replace(body, h('p', {}, `There is no ${kind} ${id}.`));
        return;
      }
      slider.min = String(stream.firstVersion);
      slider.max = String(stream.version);
      const step = (d) => at(Math.min(stream.version, Math.max(stream.firstVersion, Number(slider.value) + d)));
      slider.addEventListener('input', () => {
        label.textContent = `version ${slider.value} of ${slider.max}`;
        clearTimeout(timer);
        timer = setTimeout(() => at(Number(slider.value)), 120);
      });
      replace(body,
        h('p', {}, h('a', { href: `#/stream/${encodeURIComponent(`${kind}-${id}`)}` }, `Stream ${kind}-${id}`), `: ${stream.version} versions`,
          stream.deleted ? h('span', { class: 'badge bad' }, 'deleted') : ''),
        h('div', { class: 'slider' },
          h('button', { type: 'button', id: 'version-prev', 'aria-label': 'Previous version', onclick: () => step(-1) }, '←'),
          slider,
          h('button', { type: 'button', id: 'version-next', 'aria-label': 'Next version', onclick: () => step(1) }, '→'),
          label),
        h('form', {
          class: 'search',
          onsubmit: async (e) => {
            e.preventDefault();
            if (!asOf.value) return;
            const t = new Date(`${asOf.value}Z`);
            if (Number.isNaN(t.getTime())) return;
            try {
              const data = await query(kinds[kind].asOf, { id, asOf: t.toISOString() });
              if (!alive) return;
              if (!data[kind]) {
                asOfNote.textContent = `the ${kind} did not exist yet then`;
                return;
              }
              asOfNote.textContent = `at that time it was at version ${data[kind].version}`;
              at(data[kind].version);
            } catch (err) {
              asOfNote.textContent = err.message;
            }
          },
        }, h('label', { for: 'agg-asof' }, 'Go to the state as of (UTC)'), asOf, h('button', { type: 'submit' }, 'Go'), asOfNote),
        h('p', {}, link),
        state);
      const wanted = Number(params.get('v'));
      at(wanted >= stream.firstVersion && wanted <= stream.version ? wanted : stream.version);
    } catch (err) {
      if (alive) replace(body, h('p', { class: 'error', role: 'alert' }, err.message));
    }
  }
  load();
  return () => {
    alive = false;
    clearTimeout(timer);
  };
}
